"""The five stages of one attention head, side by side: QKᵀ, scaling, mask, softmax, × V."""
from __future__ import annotations

import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import (KEY_AXIS, MASK_NOTE, QUERY_AXIS, SCORE_COLORS, WEIGHT_COLORS, axis_names, build_figure,
                     colorbar_right, mask_overlay, panel_row, panel_title, place_axes, scale_label,
                     symmetric_limit, token_axis, token_categories, token_heatmap, without_masked)


def _mask_title(trace: PromptTrace) -> str:
    if not trace.causal:
        return "3 · no mask (causal off: every key allowed)"
    return "3 · + causal mask (future keys → −∞)"


def five_stages_figure(trace: PromptTrace, layer: int, head: int) -> go.Figure:
    """QKᵀ → × scale → + mask → softmax → × V for one head, on shared token axes.

    The three score panels share one colour scale symmetric around 0, so the shrinking done
    by the scaling is visible; the weights use the fixed range 0..1; masked cells are gaps
    (NaN) drawn grey, never a huge negative colour.
    """
    trace.check_head(layer, head)
    tokens, T, D = trace.tokens, trace.n_tokens, trace.head_dim
    cats = token_categories(tokens)
    scores, scaled = trace.scores[layer, head], trace.scaled[layer, head]
    limit = symmetric_limit(scores, scaled)
    out = trace.out[layer, head]
    out_limit = symmetric_limit(out)
    boxes = panel_row(5, gap=0.045, widths=[1, 1, 1, 1, max(0.35, min(1.0, D / max(T, 1)))], top=0.9)
    score = dict(colors=SCORE_COLORS, zmin=-limit, zmax=limit)
    panels = [
        ("1 · QKᵀ (raw scores)", scores, "QKᵀ", score, None),
        (f"2 · {scale_label(trace)}", scaled, "scaled", score, None),
        (_mask_title(trace), without_masked(trace.masked[layer, head], trace.mask), "masked score", score,
         "score"),
        ("4 · softmax → weights (rows sum to 1)", trace.weights[layer, head], "weight",
         dict(colors=WEIGHT_COLORS, zmin=0, zmax=1), "weight"),
    ]
    layout: dict = {}
    data, annotations = [], []
    axis = token_axis(tokens)
    for i, (title, z, name, style, bar) in enumerate(panels):
        shared = dict(matches="x") if i else {}
        query_axis = dict(title=QUERY_AXIS, **axis) if i == 0 else dict(matches="y", showticklabels=False)
        axes = place_axes(layout, i, boxes[i], x=dict(title=KEY_AXIS, **shared, **axis),
                          y=dict(autorange="reversed", **query_axis))
        data.append(token_heatmap(z, cats, cats, axes, name=name, **style,
                                  colorbar=colorbar_right(boxes[i], bar) if bar else None))
        annotations.append(panel_title(boxes[i], title))
    if not trace.mask.all():
        data.append(mask_overlay(trace.mask, cats, *axis_names(2), showlegend=True))
        annotations.append(dict(text=MASK_NOTE, x=0, y=-0.24, xref="paper", yref="paper", showarrow=False,
                                xanchor="left", font=dict(size=11, color="#666")))
    axes = place_axes(layout, 4, boxes[4], x=dict(title="head channel (d_v)", showgrid=False, zeroline=False),
                      y=dict(autorange="reversed", matches="y", showticklabels=False))
    data.append(token_heatmap(out, cats, list(range(D)), axes, name="output", colors=SCORE_COLORS,
                              zmin=-out_limit, zmax=out_limit, colorbar=colorbar_right(boxes[4], "output")))
    annotations.append(panel_title(boxes[4], "5 · × V → head output"))
    return build_figure(
        data, layout, annotations=annotations, height=440, margin=dict(l=60, r=50, t=80, b=90),
        title=f"Layer {layer}, head {head}: the five stages of attention on {T} tokens",
        legend=dict(orientation="h", x=1, xanchor="right", y=-0.2),
    )
