"""The model ladder's chart: validation loss per rung next to the reference ladder's numbers.

``ladder_figure`` is the interactive plotly chart (``ladder.html``, the Learn tab);
``ladder_svg`` draws the same bars as a dependency-free SVG for the README.
"""
from __future__ import annotations

from html import escape

import plotly.graph_objects as go

REFERENCE = "GPT-from-scratch ladder (its full GPT: 20 min on an A100)"


def ladder_figure(rows: list[dict]) -> go.Figure:
    names = [r["preset"] for r in rows]
    fig = go.Figure([
        go.Bar(x=names, y=[r["val_loss"] for r in rows], name="this project (val loss)", marker_color="#d62728",
               text=[f"{r['val_loss']:.2f}" for r in rows], textposition="outside",
               customdata=[[r["params"], r["val_bpc"]] for r in rows],
               hovertemplate="%{x}<br>val loss %{y:.4f}<br>%{customdata[1]:.3f} bits/char<br>%{customdata[0]:,} params<extra></extra>"),
        go.Bar(x=names, y=[r["seed_val_loss"] for r in rows], name="reference ladder", marker_color="#bbbbbb",
               hovertemplate="%{x}<br>reference val loss %{y:.2f}<extra></extra>"),
    ])
    fig.update_layout(title="The model ladder: validation loss per rung (lower is better)", barmode="group",
                      yaxis_title="val loss (nats per character)", template="plotly_white",
                      yaxis_range=[0, max(r["seed_val_loss"] for r in rows) * 1.15])
    return fig


def ladder_svg(rows: list[dict], width: int = 640, height: int = 300) -> str:
    """A dependency-free SVG bar chart of the same data, for the README."""
    left, bottom, top = 50, 40, 30
    top_val = max(max(r["val_loss"], r["seed_val_loss"]) for r in rows) * 1.15
    slot = (width - left - 10) / len(rows)
    bar = slot * 0.35

    def y(v):
        return top + (height - top - bottom) * (1 - v / top_val)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">Validation loss per rung (lower is better)</text>']
    for tick in range(0, int(top_val) + 1):
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, r in enumerate(rows):
        x0 = left + i * slot + slot * 0.12
        for j, (v, color) in enumerate(((r["val_loss"], "#d62728"), (r["seed_val_loss"], "#bbbbbb"))):
            xb = x0 + j * bar
            parts.append(f'<rect x="{xb:.1f}" y="{y(v):.1f}" width="{bar - 2:.1f}" height="{y(0) - y(v):.1f}" fill="{color}"/>'
                         f'<text x="{xb + bar / 2:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle">{v:.2f}</text>')
        parts.append(f'<text x="{x0 + bar:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(r["preset"])}</text>')
    parts.append(f'<rect x="{left + 10}" y="{height - 16}" width="10" height="10" fill="#d62728"/>'
                 f'<text x="{left + 24}" y="{height - 7}">this project</text>'
                 f'<rect x="{left + 120}" y="{height - 16}" width="10" height="10" fill="#bbbbbb"/>'
                 f'<text x="{left + 134}" y="{height - 7}">reference ladder</text></svg>')
    return "\n".join(parts)


