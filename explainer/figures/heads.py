"""Many heads at once: the layers x heads grid of weights, and BertViz's head view."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import (WEIGHT_COLORS, build_figure, message_figure, panel_grid, panel_title, place_axes,
                     token_categories)

HEAD_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#393b79", "#637939"]
OPACITY_LEVELS = 10  # head-view lines are drawn in this many opacity steps (one trace per step)
MIN_LINE_WEIGHT = 0.01  # lighter lines would be invisible; they are left out to keep the figure small


def _no_attention(trace: PromptTrace, title: str) -> go.Figure | None:
    if trace.n_layer == 0:
        return message_figure(title, "This model has no attention layers (e.g. the bigram preset).")
    return None


def all_heads_figure(trace: PromptTrace) -> go.Figure:
    """Every head's attention weights as a layers x heads grid of thumbnails.

    One heatmap per head, each with ``meta = [layer, head, mean row entropy]`` and a
    ``customdata`` of (layer, head) per cell, so a click in the UI maps straight back to
    its head. The per-cell payload is kept to uint8 so the grid stays small to send.
    """
    title = f"Attention weights of all {trace.n_layer} x {trace.n_head} heads (rows: layers, columns: heads)"
    empty = _no_attention(trace, title)
    if empty is not None:
        return empty
    L, H, T = trace.n_layer, trace.n_head, trace.n_tokens
    cats = token_categories(trace.tokens)
    boxes = panel_grid(L, H, hgap=0.012, vgap=0.03 if L > 1 else 0.0)
    thumb = dict(type="category", showticklabels=False, showgrid=False, zeroline=False, ticks="")
    layout: dict = {}
    data, annotations = [], []
    for n, box in enumerate(boxes):
        layer, head = divmod(n, H)
        axes = place_axes(layout, n, box, x=dict(thumb), y=dict(thumb, autorange="reversed"))
        custom = np.empty((T, T, 2), dtype=np.uint8)
        custom[..., 0], custom[..., 1] = layer, head
        mean_entropy = float(trace.entropy[layer, head].mean())
        data.append(dict(
            type="heatmap", z=trace.weights[layer, head], x=cats, y=cats, xaxis=axes[0], yaxis=axes[1],
            name=f"layer {layer}, head {head}", meta=[layer, head, mean_entropy], customdata=custom,
            colorscale=WEIGHT_COLORS, zmin=0, zmax=1, showscale=n == 0,
            colorbar=dict(title=dict(text="weight", side="right"), thickness=10, len=0.6),
            hovertemplate=("layer %{meta[0]}, head %{meta[1]}<br>mean entropy of this head's rows = "
                           "%{meta[2]:.4f} nats<br>query %{y}<br>key %{x}<br>weight = %{z:.4f}<extra></extra>"),
        ))
        if layer == 0:
            annotations.append(panel_title(box, f"head {head}", size=11))
        if head == 0:
            x0, _, y0, y1 = box
            annotations.append(dict(text=f"layer {layer}", x=x0, y=(y0 + y1) / 2, xref="paper", yref="paper",
                                    xanchor="right", textangle=-90, showarrow=False, font=dict(size=11)))
    return build_figure(
        data, layout, annotations=annotations, title=title, height=80 + max(160, 170 * L),
        margin=dict(l=40, r=20, t=80, b=20),
    )


def _head_lines(weights: np.ndarray, color: str, head: int) -> list[dict]:
    """One scatter trace per opacity step, each holding all query->key segments of that strength."""
    traces = []
    q_idx, k_idx = np.nonzero(weights >= MIN_LINE_WEIGHT)
    w = weights[q_idx, k_idx]
    level = np.minimum((w * OPACITY_LEVELS).astype(int), OPACITY_LEVELS - 1)
    for step in reversed(range(OPACITY_LEVELS)):  # strongest first: its legend swatch is the visible one
        sel = level == step
        if not sel.any():
            continue
        xs, ys = [], []
        for q, k in zip(q_idx[sel].tolist(), k_idx[sel].tolist()):
            xs += [0, 1, None]  # None breaks the line between segments (typed-array NaN would not)
            ys += [q, k, None]
        traces.append(dict(
            type="scatter", x=xs, y=ys, mode="lines", hoverinfo="skip", name=f"head {head}",
            legendgroup=f"head {head}", showlegend=not traces, opacity=(step + 0.5) / OPACITY_LEVELS,
            line=dict(color=color, width=2),
        ))
    return traces


def head_view_figure(trace: PromptTrace, layer: int, heads: list[int] | None = None) -> go.Figure:
    """BertViz's head view: lines from each query (left) to each key (right), opacity = weight.

    Heads are colour-coded and toggled from the legend. Opacity is the weight to within
    ±0.05 (lines are grouped into ``OPACITY_LEVELS`` steps, each drawn at its midpoint);
    lines under ``MIN_LINE_WEIGHT`` are not drawn.
    """
    title = f"Layer {layer}: which tokens each query attends to (line opacity = attention weight)"
    empty = _no_attention(trace, title)
    if empty is not None:
        return empty
    heads = list(range(trace.n_head)) if heads is None else [int(h) for h in heads]
    for head in heads:
        trace.head(layer, head)
    T = trace.n_tokens
    data: list[dict] = []
    for head in heads:
        data += _head_lines(trace.weights[layer, head], HEAD_COLORS[head % len(HEAD_COLORS)], head)
    positions = np.arange(T)
    for x, side, pos in ((0.0, "query (attending)", "middle left"), (1.0, "key (attended to)", "middle right")):
        data.append(dict(
            type="scatter", x=np.full(T, x), y=positions, mode="markers+text", text=trace.tokens,
            textposition=pos, marker=dict(size=6, color="#444"), showlegend=False, name=side,
            customdata=token_categories(trace.tokens), hovertemplate=f"{side}: %{{customdata}}<extra></extra>",
        ))
    shown = ", ".join(str(h) for h in heads)
    return build_figure(
        data, {}, title=f"{title}; heads {shown}", height=max(320, 16 * T + 120),
        xaxis=dict(range=[-0.35, 1.35], visible=False, fixedrange=True),
        yaxis=dict(autorange="reversed", visible=False),
        annotations=[dict(text="query (attending)", x=0, y=1.02, xref="x", yref="paper", showarrow=False),
                     dict(text="key (attended to)", x=1, y=1.02, xref="x", yref="paper", showarrow=False)],
        legend=dict(title=dict(text="head (click to hide)")), margin=dict(l=20, r=20, t=70, b=20),
    )
