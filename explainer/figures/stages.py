"""The five stages of one attention head, side by side: QKᵀ, scaling, mask, softmax, × V."""
from __future__ import annotations

import plotly.graph_objects as go

from ..trace import PromptTrace
from .common import (KEY_AXIS, MASK_GREY, MASK_NOTE, QUERY_AXIS, SCORE_COLORS, WEIGHT_COLORS, build_figure,
                     colorbar_right, panel_row, panel_title, place_axes, range_ticks, scale_label, symmetric_limit,
                     toggles_label, token_axis, token_categories, token_heatmap, without_masked)

MAX_KEY_TICKS = 16  # per panel: five panels share the width, so keys are labelled every k-th token
MAX_QUERY_TICKS = 16
QUERY_LINE = "#111111"


def _mask_title(trace: PromptTrace) -> str:
    if not trace.causal:
        return "3 · no mask (causal off: every key allowed)"
    return "3 · + causal mask (future keys → −∞)"


def output_width(head_dim: int) -> float:
    """The × V panel's width, relative to a score panel's: set by the head size alone, so every prompt on one
    model keeps the panels in their places (a press then repaints them in place: ``explainer.ui.paint_js``)."""
    return max(0.35, min(1.0, head_dim / 32))


def query_row_shapes(axes: list[tuple[str, str]], query: int) -> list[dict]:
    """An outline around row ``query`` of each query × key panel (the query picked in the head view)."""
    return [dict(type="rect", xref=f"{x} domain", x0=0, x1=1, yref=y, y0=query - 0.5, y1=query + 0.5,
                 line=dict(color=QUERY_LINE, width=1.5), fillcolor="rgba(0,0,0,0)", layer="above")
            for x, y in axes]


def five_stages_panels(trace: PromptTrace, layer: int, head: int) -> list[dict]:
    """The five panels of one head: title, z (the model's arrays), colour range and name.

    One definition of what each panel draws, shared by the figure and by the browser's
    in-place head switch (``explainer.ui.inspect_store`` sends these ranges and titles).
    """
    trace.check_head(layer, head)

    def panel(title, z, name, fixed=None):
        limit = symmetric_limit(z) if fixed is None else None
        zmin, zmax = fixed if fixed is not None else (-limit, limit)
        return dict(title=title, z=z, name=name, zmin=zmin, zmax=zmax, ticks=range_ticks(zmin, zmax))

    return [
        panel("1 · QKᵀ (raw scores)", trace.scores[layer, head], "QKᵀ"),
        panel(f"2 · {scale_label(trace)}", trace.scaled[layer, head], "scaled"),
        panel(_mask_title(trace), without_masked(trace.masked[layer, head], trace.mask), "masked score"),
        panel("4 · softmax → weights (rows sum to 1)", trace.weights[layer, head], "weight", fixed=(0, 1)),
        panel("5 · × V → head output", trace.out[layer, head], "output"),
    ]


def five_stages_title(trace: PromptTrace, layer: int, head: int) -> str:
    return f"Layer {layer}, head {head}: the five stages of attention on {trace.n_tokens} tokens{toggles_label(trace)}"


def five_stages_figure(trace: PromptTrace, layer: int, head: int, query: int | None = None) -> go.Figure:
    """QKᵀ → × scale → + mask → softmax → × V for one head, on shared token axes.

    Each score panel has its own colour scale, symmetric around 0 on that panel's own range
    (the scaled scores are small: on the raw scores' range they would look white); the
    weights use the fixed range 0..1; masked cells are gaps drawn in grey (the plot
    background), never a huge negative colour. Tick labels are thinned so they never
    collide; the hover names every token. ``query`` outlines that row in every panel.
    ``layout.meta.pa_axes`` lists the query × key panels' axes, so the browser can move that
    outline without a round trip.
    """
    tokens, T, D = trace.tokens, trace.n_tokens, trace.head_dim
    cats = token_categories(tokens)
    panels = five_stages_panels(trace, layer, head)
    boxes = panel_row(5, gap=0.05, widths=[1, 1, 1, 1, output_width(D)], top=0.9)
    layout: dict = {}
    data, annotations, grid_axes = [], [], []
    key_axis, query_ticks = token_axis(tokens, MAX_KEY_TICKS), token_axis(tokens, MAX_QUERY_TICKS)
    for i, p in enumerate(panels[:4]):
        shared = dict(matches="x") if i else {}
        query_axis = dict(title=QUERY_AXIS, **query_ticks) if i == 0 else dict(matches="y", showticklabels=False,
                                                                                showgrid=False)
        axes = place_axes(layout, i, boxes[i], x=dict(title=KEY_AXIS, **shared, **key_axis),
                          y=dict(autorange="reversed", **query_axis))
        colors = WEIGHT_COLORS if p["name"] == "weight" else SCORE_COLORS
        data.append(token_heatmap(p["z"], cats, cats, axes, name=p["name"], colors=colors, zmin=p["zmin"],
                                  zmax=p["zmax"], colorbar=colorbar_right(boxes[i], p["name"], p["ticks"])))
        annotations.append(panel_title(boxes[i], p["title"]))
        grid_axes.append(axes)
    if not trace.mask.all():
        annotations.append(dict(text=MASK_NOTE + ";<br>each score panel has its own colour range, symmetric around 0",
                                x=0, y=-0.26, xref="paper", yref="paper", showarrow=False, xanchor="left",
                                font=dict(size=11, color="#555")))
    axes = place_axes(layout, 4, boxes[4], x=dict(title="head channel (d_v)", showgrid=False, zeroline=False),
                      y=dict(autorange="reversed", matches="y", showticklabels=False, showgrid=False))
    out = panels[4]
    data.append(token_heatmap(out["z"], cats, list(range(D)), axes, name="output", colors=SCORE_COLORS,
                              zmin=out["zmin"], zmax=out["zmax"],
                              colorbar=colorbar_right(boxes[4], "output", out["ticks"])))
    annotations.append(panel_title(boxes[4], out["title"]))
    shapes = query_row_shapes(grid_axes, int(query)) if query is not None and 0 <= int(query) < T else []
    return build_figure(
        data, layout, annotations=annotations, shapes=shapes, height=500, margin=dict(l=60, r=50, t=90, b=100),
        title=five_stages_title(trace, layer, head), plot_bgcolor=MASK_GREY,
        meta=dict(pa_axes=[list(a) for a in grid_axes], pa_tokens=T, pa_layer=int(layer), pa_head=int(head)),
    )
