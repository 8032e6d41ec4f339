"""BertViz's neuron view: how one query/key pair becomes one attention weight.

q and k come from the trace; their elementwise products q_d·k_d are the one thing drawn
here that the model never stores separately (they are the terms of its QKᵀ sum), and
the figure shows the model's own QKᵀ, scaled value and weight next to them.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import (MASK_GREY, SCORE_COLORS, build_figure, panel_title, place_axes, range_ticks, scale_label,
                     symmetric_limit, tick_step, toggles_label)

CHOSEN, OTHER = "#d62728", "#9ecae1"
MAX_ROW_TICKS = 20  # the softmax row labels every k-th key (hover names each)


def _check_position(name: str, value: int, n: int) -> int:
    if not 0 <= int(value) < n:
        raise ValueError(f"{name} must be a token position in 0..{n - 1}, got {value!r}.")
    return int(value)


def qk_ranges(trace: PromptTrace, layer: int, head: int) -> dict:
    """The q·k view's scales for one head, fixed over every query/key pair of it, so a switch of query or key
    moves the bars and cells and never the axes (the browser repaints it in place: ``explainer.ui.paint_js``).

    ``limit``: the largest |q_d| or |k_d| of the head (the q, k colour range, ∓limit, with 3 colour-bar ticks);
    ``products``: the y range of the q_d·k_d bars, 5 % beyond the largest |q_d·k_d| of any pair, which is
    max over d of max_i |q_id| · max_j |k_jd|; ``steps``: the y range of the QKᵀ and scaled bars, 25 % beyond
    the largest |QKᵀ| or |scaled| of the head (room for the value printed outside each bar).
    """
    trace.check_head(layer, head)
    q, k = trace.q[layer, head], trace.k[layer, head]
    limit = symmetric_limit(q, k)
    peak = float((np.abs(q).max(0) * np.abs(k).max(0)).max()) if q.size else 0.0
    peak = peak if peak > 0 else 1.0
    steps = symmetric_limit(trace.scores[layer, head], trace.scaled[layer, head])
    return dict(limit=limit, ticks=range_ticks(-limit, limit, n=3), products=[-1.05 * peak, 1.05 * peak],
                steps=[-1.25 * steps, 1.25 * steps])


def qk_products_figure(trace: PromptTrace, layer: int, head: int, query: int, key: int) -> go.Figure:
    """q and k of one pair, their products per channel, the sum QKᵀ, the scaling, and the softmax row, on the
    head's own fixed scales (``qk_ranges``)."""
    trace.check_head(layer, head)
    T, D = trace.n_tokens, trace.head_dim
    i, j = _check_position("query", query, T), _check_position("key", key, T)
    q, k = trace.q[layer, head, i], trace.k[layer, head, j]
    products = q * k
    score, scaled = float(trace.scores[layer, head, i, j]), float(trace.scaled[layer, head, i, j])
    row, allowed = trace.weights[layer, head, i], trace.mask[i]
    q_name, k_name = f"query #{i} '{trace.tokens[i]}'", f"key #{j} '{trace.tokens[j]}'"
    boxes = [(0.0, 0.56, 0.74, 0.93), (0.0, 0.56, 0.0, 0.56), (0.68, 1.0, 0.62, 0.93), (0.68, 1.0, 0.0, 0.44)]
    layout: dict = {}
    channels = list(range(D))
    ax0 = place_axes(layout, 0, boxes[0], x=dict(showticklabels=False, showgrid=False),
                     y=dict(type="category", autorange="reversed", showgrid=False))
    ranges = qk_ranges(trace, layer, head)
    ax1 = place_axes(layout, 1, boxes[1], x=dict(title="head channel d", matches="x"),
                     y=dict(title="q_d · k_d (head's range)", zeroline=True, range=ranges["products"]))
    ax2 = place_axes(layout, 2, boxes[2], x=dict(type="category"),
                     y=dict(title="value", zeroline=True, range=ranges["steps"]))
    step = tick_step(T, MAX_ROW_TICKS)
    ax3 = place_axes(layout, 3, boxes[3], x=dict(title="key (attended to)", tickmode="array", tickangle=0,
                                                 tickvals=list(range(T))[::step], ticktext=trace.tokens[::step]),
                     y=dict(title="weight", range=[0, 1.05]))
    limit = ranges["limit"]
    step_names = ["Σ q_d·k_d = QKᵀ", scale_label(trace)]
    data = [
        dict(type="heatmap", z=np.stack([q, k]), x=channels, y=[q_name, k_name], xaxis=ax0[0], yaxis=ax0[1],
             colorscale=SCORE_COLORS, zmin=-limit, zmax=limit, zmid=0, name="q, k",
             colorbar=dict(x=0.57, xanchor="left", y=0.835, len=0.2, thickness=8, tickfont=dict(size=9),
                           **ranges["ticks"]),
             hovertemplate="%{y}<br>channel %{x}: %{z:.4f}<extra></extra>"),
        dict(type="bar", x=channels, y=products, xaxis=ax1[0], yaxis=ax1[1], name="q_d · k_d",
             marker=dict(color=np.where(products >= 0, "#d6604d", "#4393c3")), customdata=np.stack([q, k], -1),
             hovertemplate=("channel %{x}<br>q = %{customdata[0]:.4f}, k = %{customdata[1]:.4f}"
                            "<br>q·k = %{y:.4f}<extra></extra>")),
        dict(type="bar", x=step_names, y=[score, scaled], xaxis=ax2[0], yaxis=ax2[1], name="steps",
             marker=dict(color=["#888", CHOSEN]), text=[f"{score:.4f}", f"{scaled:.4f}"], textposition="outside",
             hovertemplate="%{x}<br>%{y:.4f}<extra></extra>"),
        dict(type="bar", x=list(range(T)), y=row, xaxis=ax3[0], yaxis=ax3[1], name="softmax row",
             marker=dict(color=[CHOSEN if n == j else (OTHER if allowed[n] else MASK_GREY) for n in range(T)]),
             customdata=[f"#{n} '{t}'" + ("" if allowed[n] else " (masked)") for n, t in enumerate(trace.tokens)],
             hovertemplate="key %{customdata}<br>weight = %{y:.4f}<extra></extra>"),
    ]
    verdict = (f"weight of this key = {row[j]:.4f}" if allowed[j]
               else "this key is masked for this query: −∞ → weight exactly 0")
    annotations = [
        panel_title(boxes[0], f"q ({q_name}) and k ({k_name}), channel by channel"),
        panel_title(boxes[1], f"elementwise products q_d·k_d (sum = {products.astype(np.float64).sum():.4f})"),
        panel_title(boxes[2], "sum, then scale (head's range)"),
        panel_title(boxes[3], f"softmax row of query #{i}: {verdict}"),
    ]
    return build_figure(
        data, layout, annotations=annotations, showlegend=False, height=520, margin=dict(l=70, r=30, t=80, b=60),
        title=f"Layer {layer}, head {head}: how {q_name} scores {k_name} (QKᵀ = {score:.4f}, "
              f"scaled = {scaled:.4f}, " + (f"weight = {row[j]:.4f})" if allowed[j] else
                                            "masked: −∞ before softmax, weight exactly 0)") + toggles_label(trace),
        meta=dict(pa_layer=int(layer), pa_head=int(head), pa_query=i, pa_key=j),
    )

