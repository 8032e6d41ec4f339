"""What every explainer figure shares: colour scales, hover text, panel layout, masking.

Figures are built from plain dicts (traces and axes placed by hand) rather than
``make_subplots`` and graph-object traces, and hover labels come from categorical token
axes rather than per-cell text: that keeps a figure build to a few milliseconds, so the
UI can redraw on every slider move.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio


def _plotly_white_for(trace_types: tuple[str, ...]) -> go.layout.Template:
    """plotly_white's layout and its styles for just the trace types these figures draw.

    Plotly deep-copies and validates a template on every figure; the full plotly_white
    carries styles for every trace type plotly knows and was the largest single cost of a
    build (about half of it under load). The figures look exactly the same.
    """
    white = pio.templates["plotly_white"]
    layout = go.Layout(white.layout)
    # margins are set by hand: automargin makes plotly.js measure every tick label and redraw
    # until the margins settle, the largest cost of a repaint in the browser
    layout.xaxis.automargin = layout.yaxis.automargin = False
    return go.layout.Template(layout=layout, data={t: white.data[t] for t in trace_types})


TEMPLATE = _plotly_white_for(("heatmap", "scatter", "bar"))
SCORE_COLORS = "RdBu_r"  # diverging: negative blue, 0 white, positive red
WEIGHT_COLORS = "Blues"  # 0 white .. 1 dark blue
MASK_GREY = "#c8c8c8"
KEY_AXIS = "key (attended to)"
QUERY_AXIS = "query (attending)"
MASK_NOTE = "grey = masked (−∞ before softmax, weight exactly 0)"


def message_figure(title: str, message: str) -> go.Figure:
    """An empty figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14))
    fig.update_layout(title=title, template=TEMPLATE, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      height=300)
    return fig


def symmetric_limit(*arrays: np.ndarray) -> float:
    """The largest finite |value| across arrays: zmin/zmax = ∓ this keeps 0 at the colour midpoint."""
    finite = [np.abs(a[np.isfinite(a)]) for a in arrays]
    peak = max((float(f.max()) for f in finite if f.size), default=0.0)
    return peak if peak > 0 else 1.0


def without_masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A float copy with NaN where attention is not allowed, so the cell is drawn as a gap."""
    out = np.array(values, dtype=np.float32)
    out[~mask] = np.nan
    return out


def token_categories(tokens: list[str]) -> list[str]:
    """Unique axis categories '#3 'R'': repeated tokens stay apart and hover names the token."""
    return [f"#{i} '{t}'" for i, t in enumerate(tokens)]


def tick_step(n: int, max_ticks: int) -> int:
    """Label every ``step``-th token so at most ``max_ticks`` labels share an axis (they never collide)."""
    return max(1, -(-int(n) // max(1, int(max_ticks))))


def token_axis(tokens: list[str], max_ticks: int | None = None) -> dict:
    """A categorical axis over token positions whose tick labels are the bare token strings.

    With ``max_ticks`` only every k-th token is labelled (the hover always names the full token).
    """
    cats = token_categories(tokens)
    step = tick_step(len(tokens), max_ticks or max(1, len(tokens)))
    return dict(type="category", tickmode="array", tickvals=cats[::step], ticktext=list(tokens)[::step],
                tickangle=0, tickfont=dict(size=10), showgrid=False, zeroline=False)


def mask_overlay(mask: np.ndarray, cats: list[str], xaxis: str, yaxis: str, showlegend: bool) -> dict:
    """Grey cells where attention is not allowed, with a 'masked' legend entry and hover."""
    return dict(
        type="heatmap", z=np.where(mask, np.float32(np.nan), np.float32(1.0)), x=cats, y=cats, xaxis=xaxis, yaxis=yaxis,
        colorscale=[[0, MASK_GREY], [1, MASK_GREY]], zmin=0, zmax=1, showscale=False, hoverongaps=False,
        name="masked", showlegend=showlegend, legendgroup="masked",
        hovertemplate="query %{y}<br>key %{x}<br>masked: not allowed (−∞)<extra></extra>",
    )


def axis_names(index: int) -> tuple[str, str]:
    """Trace references ('x3', 'y3') and layout keys ('xaxis3', 'yaxis3') for panel ``index`` (0-based)."""
    n = "" if index == 0 else str(index + 1)
    return f"x{n}", f"y{n}"


def panel_row(n: int, *, gap: float = 0.04, widths: list[float] | None = None,
              bottom: float = 0.0, top: float = 1.0) -> list[tuple[float, float, float, float]]:
    """Left-to-right panel boxes (x0, x1, y0, y1) in paper coordinates."""
    widths = widths or [1.0] * n
    usable = 1.0 - gap * (n - 1)
    total = sum(widths)
    boxes, x = [], 0.0
    for w in widths:
        span = usable * w / total
        boxes.append((x, x + span, bottom, top))
        x += span + gap
    return boxes


def place_axes(layout: dict, index: int, box: tuple[float, float, float, float], *,
               x: dict | None = None, y: dict | None = None) -> tuple[str, str]:
    """Put panel ``index``'s axes in ``box``; returns the trace's (xaxis, yaxis) references."""
    xref, yref = axis_names(index)
    x0, x1, y0, y1 = (min(1.0, max(0.0, v)) for v in box)
    layout["xaxis" + xref[1:]] = dict(domain=[x0, x1], anchor=yref, **(x or {}))
    layout["yaxis" + yref[1:]] = dict(domain=[y0, y1], anchor=xref, **(y or {}))
    return xref, yref


def panel_title(box: tuple[float, float, float, float], text: str, size: int = 12) -> dict:
    """An annotation centred above a panel (what make_subplots' subplot_titles would draw)."""
    x0, x1, _, y1 = box
    return dict(text=text, x=(x0 + x1) / 2, y=y1, xref="paper", yref="paper", xanchor="center",
                yanchor="bottom", showarrow=False, font=dict(size=size))


def colorbar_right(box: tuple[float, float, float, float], title: str, ticks: dict | None = None) -> dict:
    """A slim vertical colour bar just right of a panel, as tall as the panel (``ticks``: ``range_ticks``)."""
    x0, x1, y0, y1 = box
    return dict(x=x1 + 0.004, xanchor="left", y=(y0 + y1) / 2, yanchor="middle", len=y1 - y0,
                lenmode="fraction", thickness=8, title=dict(text=title, side="right"), tickfont=dict(size=9),
                **(ticks or {}))


def tick_label(v: float) -> str:
    """A colour-bar label: 3 significant digits (an exponent only outside 0.001..10,000), plotly's minus sign."""
    if v == 0:
        return "0"
    text = f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.2e}"
    if "e" in text and 1e-3 <= abs(v) < 1e4:  # 9999.5 rounds up to '1e+04'
        text = f"{v:.0f}"
    return text.replace("-", "\u2212")


def range_ticks(zmin: float, zmax: float, n: int = 5) -> dict:
    """``n`` colour-bar ticks at even steps from zmin to zmax, the ends included: the bar states its exact
    range, and the ticks sit at the same places for every head (the browser swaps only their labels)."""
    vals = [zmin + k * (zmax - zmin) / (n - 1) for k in range(n)]
    return dict(tickvals=vals, ticktext=[tick_label(v) for v in vals])


def scale_label(trace) -> str:
    """What multiplied QK^T, e.g. '× 1/√16 = 0.25' or '× 2 (override)'."""
    if trace.scale_overridden:
        kind = "override: unscaled" if trace.scale == 1.0 else "override"
        return f"× {trace.scale:g} ({kind})"
    if abs(trace.scale - trace.default_scale) <= 1e-12 * max(1.0, trace.default_scale):
        return f"× 1/√{trace.head_dim} = {trace.scale:.4g}"
    return f"× {trace.scale:g} (model setting)"


def check_same_tokens(a, b) -> None:
    """Comparisons of two traces only make sense on the same token sequence."""
    if a.ids != b.ids:
        raise ValueError("the two traces are of different token sequences; trace the same prompt "
                         "with the same tokenizer for both.")


def token_heatmap(z: np.ndarray, query_cats: list[str], key_cats: list, axes: tuple[str, str], *,
                  name: str, colors: str, zmin: float, zmax: float, colorbar: dict | None = None) -> dict:
    """A query x key heatmap trace whose hover names both tokens and the exact value."""
    key_word = "key" if isinstance(key_cats[0] if len(key_cats) else "", str) else "channel"
    trace = dict(
        type="heatmap", z=z, x=key_cats, y=query_cats, xaxis=axes[0], yaxis=axes[1], name=name,
        colorscale=colors, zmin=zmin, zmax=zmax, hoverongaps=False, showscale=colorbar is not None,
        hovertemplate=f"query %{{y}}<br>{key_word} %{{x}}<br>{name} = %{{z:.4f}}<extra></extra>",
    )
    if zmin == -zmax:
        trace["zmid"] = 0
    if colorbar is not None:
        trace["colorbar"] = colorbar
    return trace


def build_figure(data: list[dict], layout: dict, **layout_updates) -> go.Figure:
    """One validated go.Figure from plain dicts, in the explainer's template."""
    return go.Figure(dict(data=data, layout=dict(layout, template=TEMPLATE, **layout_updates)))


def toggles_label(trace) -> str:
    """What Inspect's toggles changed, for figure titles: '' when the model runs as it was trained."""
    parts = []
    if trace.scale_overridden:
        if trace.scale == 1.0:
            parts.append("unscaled: QKᵀ × 1")
        else:
            parts.append(f"scale changed to × {trace.scale:.4g} ({trace.scale / trace.default_scale:g} × the model's)")
    if trace.causal_overridden:
        parts.append("causal mask " + ("on" if trace.causal else "off") + " (changed)")
    return f" [{'; '.join(parts)}]" if parts else ""
