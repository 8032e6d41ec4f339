"""Many heads at once: the layers x heads grid of weights, and BertViz's head view."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import WEIGHT_COLORS, build_figure, message_figure, place_axes, token_categories

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

    One heatmap per layer, its heads tiled side by side (NaN gaps between), which builds
    several times faster than one subplot per head. Each cell's ``customdata`` is
    (layer, head) as uint8, so a click in the UI maps straight back to its head, and the
    key-axis labels carry each head's mean row entropy into the hover.
    """
    title = f"Attention weights of all {trace.n_layer} x {trace.n_head} heads (rows: layers, columns: heads)"
    empty = _no_attention(trace, title)
    if empty is not None:
        return empty
    L, H, T = trace.n_layer, trace.n_head, trace.n_tokens
    step = T + 1  # one blank column between tiles
    queries = token_categories(trace.tokens)
    row_height = 1.0 / L
    layout: dict = {}
    data = []
    for layer in range(L):
        z = np.full((T, H * step - 1), np.nan, dtype=np.float32)
        custom = np.zeros(z.shape + (2,), dtype=np.uint8)
        custom[..., 0] = layer
        keys = []
        for head in range(H):
            cols = slice(head * step, head * step + T)
            z[:, cols] = trace.weights[layer, head]
            custom[:, cols, 1] = head
            entropy = trace.entropy[layer, head].mean()
            if head:
                keys.append(f"gap {head}")
            keys += [f"head {head} (mean row entropy {entropy:.4f} nats) · key {k}" for k in queries]
        top = 1.0 - layer * row_height
        box = (0.0, 1.0, max(0.0, top - row_height + 0.03), top)
        axes = place_axes(layout, layer, box,
                          x=dict(type="category", showgrid=False, zeroline=False, ticks="", side="top",
                                 tickmode="array", tickvals=[keys[h * step + T // 2] for h in range(H)],
                                 ticktext=[f"head {h}" for h in range(H)], showticklabels=layer == 0),
                          y=dict(type="category", autorange="reversed", showgrid=False, zeroline=False,
                                 showticklabels=False, title=f"layer {layer}"))
        data.append(dict(
            type="heatmap", z=z, x=keys, y=queries, xaxis=axes[0], yaxis=axes[1], customdata=custom,
            meta=[layer], name=f"layer {layer}", colorscale=WEIGHT_COLORS, zmin=0, zmax=1, hoverongaps=False,
            showscale=layer == 0, hovertemplate=("layer %{meta[0]}, %{x}<br>query %{y}<br>weight = %{z:.4f}"
                                                 "<extra></extra>"),
        ))
    data[0]["colorbar"] = dict(title=dict(text="weight", side="right"), thickness=10, len=0.6)
    return build_figure(data, layout, title=title, height=80 + max(160, 170 * L),
                        margin=dict(l=50, r=20, t=90, b=20))


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
        trace.check_head(layer, head)
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
