"""Many heads at once: the layers x heads grid of weights, and BertViz's head view."""
from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import WEIGHT_COLORS, build_figure, message_figure, toggles_label, token_categories

HEAD_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#393b79", "#637939"]
OPACITY_LEVELS = 10  # head-view lines are drawn in this many opacity steps (one trace per step)
MIN_LINE_WEIGHT = 0.01  # lighter lines would be invisible; they are left out to keep the figure small
NAMED_HEADS = 4  # the all-heads grid names up to this many heads "head h"; more are numbered under "head"


def _no_attention(trace: PromptTrace, title: str) -> go.Figure | None:
    if trace.n_layer == 0:
        return message_figure(title, "This model has no attention layers (e.g. the bigram preset).")
    return None


def all_heads_figure(trace: PromptTrace) -> go.Figure:
    """Every head's attention weights as a layers x heads grid of thumbnails, in ONE heatmap.

    Tile (layer, head) is rows layer·T.. and columns head·T.. of a single (L·T) x (H·T)
    matrix, separated by white lines, so the browser draws one image instead of many
    subplots. The weights are sent as whole percents (uint8, 0..100): a thumbnail's colour
    cannot show finer steps and the hover says so; the five stages show exact values.
    ``layout.meta`` holds T, L and H, so a click at row r, column c selects head
    (r // T, c // T).
    """
    title = (f"Attention weights of all {trace.n_layer} x {trace.n_head} heads, in % rounded to 1 % "
             f"(rows: layers, columns: heads; click one){toggles_label(trace)}")
    empty = _no_attention(trace, title)
    if empty is not None:
        return empty
    L, H, T = trace.n_layer, trace.n_head, trace.n_tokens
    percent = np.rint(trace.weights * 100).astype(np.uint8)  # (L, H, T, T)
    z = percent.transpose(0, 2, 1, 3).reshape(L * T, H * T)  # row = (layer, query), column = (head, key)
    tokens = token_categories(trace.tokens)
    x = [f"head {h} · key {k}" for h in range(H) for k in tokens]
    y = [f"layer {lay} · query {q}" for lay in range(L) for q in tokens]
    lines = [dict(type="line", xref="x", yref="paper", x0=h * T - 0.5, x1=h * T - 0.5, y0=0, y1=1,
                  line=dict(color="white", width=3)) for h in range(1, H)]
    lines += [dict(type="line", xref="paper", yref="y", y0=lay * T - 0.5, y1=lay * T - 0.5, x0=0, x1=1,
                   line=dict(color="white", width=3)) for lay in range(1, L)]
    data = [dict(type="heatmap", z=z, x=x, y=y, name="weights", colorscale=WEIGHT_COLORS, zmin=0, zmax=100,
                 hoverongaps=False, colorbar=dict(title=dict(text="weight (%)", side="right"), thickness=10,
                                                  len=0.6),
                 hovertemplate="%{y}<br>%{x}<br>weight ≈ %{z} % (rounded)<extra></extra>")]
    middle = T // 2
    layout = dict(
        # labels level, never auto-rotated (plotly tilts them by the category spacing); past 4 heads the
        # number alone under an axis title "head", so 6 (or GPT-2's 12) still fit a phone's width
        xaxis=dict(type="category", showgrid=False, zeroline=False, ticks="", side="top", tickmode="array",
                   tickvals=[x[h * T + middle] for h in range(H)], tickangle=0,
                   ticktext=[f"head {h}" if H <= NAMED_HEADS else str(h) for h in range(H)],
                   title=dict(text="head" if H > NAMED_HEADS else None, standoff=2)),
        yaxis=dict(type="category", autorange="reversed", showgrid=False, zeroline=False, ticks="",
                   tickmode="array", tickvals=[y[lay * T + middle] for lay in range(L)],
                   ticktext=[f"layer {lay}" for lay in range(L)]),
        shapes=lines, meta=dict(pa_grid=dict(tokens=T, layers=L, heads=H)),
    )
    tile = min(120, max(40, round(540 / H)))  # about square in the tab's half-width column; 45 px for GPT-2's 12
    return build_figure(data, layout, title=dict(text=title, font=dict(size=13)),
                        height=80 + max(200, tile * L), margin=dict(l=70, r=20, t=90 + (22 if H > 8 else 0), b=20))


def head_view_data(trace: PromptTrace, layer: int, selected: int = 0) -> dict:
    """What the interactive head view draws (plain JSON): the tokens, the mask and every head's weights.

    Weights go as base64 float32 of the allowed (query, key) pairs in row order, the mask as
    packed bits (the model's own numbers, exactly: the browser reads them into a
    Float32Array, so each line's data-weight is the trace's value). Every allowed
    (query, key) pair gets a line; its opacity is its weight (0..1, linear, not thinned).
    """
    trace.check_head(layer, selected)
    H, T = trace.n_head, trace.n_tokens
    return dict(
        layer=int(layer), selected=int(selected), tokens=list(trace.tokens), n_tokens=T,
        colors=[HEAD_COLORS[h % len(HEAD_COLORS)] for h in range(H)],
        mask=b64_bits(trace.mask), weights=[b64_f32(trace.weights[layer, h][trace.mask]) for h in range(H)],
        title=head_view_title(trace, layer),
    )


def b64_f32(a: np.ndarray) -> str:
    """An array as base64 little-endian float32 (the browser reads it into a Float32Array, exactly)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def b64_bits(mask: np.ndarray) -> str:
    """A boolean array as base64 packed bits, row order, most significant bit first."""
    return base64.b64encode(np.packbits(mask.astype(np.uint8), axis=None).tobytes()).decode()


def head_view_title(trace: PromptTrace, layer: int) -> str:
    return (f"Layer {layer}: line from each query (left) to each key (right), opacity = weight "
            f"(0..1, every pair drawn){toggles_label(trace)}")


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
    title = (f"Layer {layer}: which tokens each query attends to (line opacity = attention weight)"
             f"{toggles_label(trace)}")
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
        legend=dict(title=dict(text=f"head (click to hide)<br>opacity in {OPACITY_LEVELS} steps (±0.05);"
                                     f"<br>weights < {MIN_LINE_WEIGHT} not drawn")), margin=dict(l=20, r=20, t=70, b=20),
    )
