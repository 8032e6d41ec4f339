"""What training changes: loss curves, learned position vectors, a head before vs after."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from ..heads import INDUCTION_THRESHOLD
from ..trace import PromptTrace
from .common import (KEY_AXIS, QUERY_AXIS, SCORE_COLORS, WEIGHT_COLORS, build_figure, check_same_tokens,
                     colorbar_right, message_figure, panel_row, panel_title, place_axes, token_axis,
                     token_categories, token_heatmap)


def loss_curves_figure(events: Sequence, *, x: str = "step", log_y: bool = False,
                       title: str | None = None, induction_step: int | None = None) -> go.Figure:
    """Train loss per step (thin), evaluated train/val loss (markers), vs step or wall time.

    The one loss chart: the Train tab redraws it on every training event, ``loss.html`` of a
    run folder and the report use it too. The figure keeps ``uirevision`` fixed, so a UI can
    redraw it while the user's zoom and legend choices stay put. ``title`` names the run.
    ``induction_step`` (optional) marks the step where an induction head first appeared
    (``explainer.heads.first_induction_step``) with a dashed vertical line.
    """
    if x not in ("step", "time"):
        raise ValueError(f"x must be 'step' or 'time', got {x!r}.")
    axis = "wall time (s)" if x == "time" else "step"
    what = f"Training and validation loss vs {axis}{', log scale' if log_y else ''}"
    xs = [getattr(e, "elapsed_s" if x == "time" else "step") for e in events]
    evals = [(xv, e) for xv, e in zip(xs, events) if e.val_loss is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[e.train_loss for e in events], name="train (batch)",
                             mode="lines", line=dict(width=1, color="rgba(31,119,180,0.45)")))
    fig.add_trace(go.Scatter(x=[a for a, _ in evals], y=[e.eval_train_loss for _, e in evals],
                             name="train (eval)", mode="lines+markers", line=dict(color="#1f77b4")))
    fig.add_trace(go.Scatter(x=[a for a, _ in evals], y=[e.val_loss for _, e in evals],
                             name="val (eval)", mode="lines+markers", line=dict(color="#d62728")))
    fig.update_layout(
        title=f"{title}: {what[0].lower()}{what[1:]}" if title else what, xaxis_title=axis,
        yaxis_title="cross-entropy loss (nats per token)", yaxis_type="log" if log_y else "linear",
        template="plotly_white", legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=50, b=40),
        uirevision="loss",
    )
    if induction_step is not None:
        _mark_induction(fig, events, int(induction_step), x)
    return fig


def _mark_induction(fig: go.Figure, events: Sequence, step: int, x: str) -> None:
    """A dashed line at the step an induction head appeared (at that step's wall time for x='time')."""
    at = step if x == "step" else next((e.elapsed_s for e in events if e.step >= step), None)
    if at is None:
        return
    fig.add_shape(type="line", x0=at, x1=at, y0=0, y1=1, xref="x", yref="paper", name="induction head",
                  line=dict(dash="dash", color="#d62728", width=1.5))
    fig.add_annotation(x=at, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                       text=f"induction head (score > {INDUCTION_THRESHOLD:g}) at step {step}",
                       font=dict(size=11, color="#d62728"))


def position_similarity_figure(model) -> go.Figure:
    """Cosine similarity between every pair of learned position vectors (rows of ``model.wpe``)."""
    title = "Cosine similarity of the learned position embeddings"
    if getattr(model, "wpe", None) is None:
        return message_figure(title, "This model has no learned position embeddings (pos_emb='none'): "
                                     "it only knows token order through the causal mask.")
    with torch.no_grad():
        unit = F.normalize(model.wpe.weight.detach().float().cpu(), dim=-1)
        sim = (unit @ unit.T).numpy()
    n = sim.shape[0]
    data = [dict(type="heatmap", z=sim, x=list(range(n)), y=list(range(n)), colorscale=SCORE_COLORS, zmin=-1,
                 zmax=1, zmid=0, name="cosine", colorbar=dict(title=dict(text="cosine", side="right")),
                 hovertemplate="position %{y} vs position %{x}<br>cosine = %{z:.4f}<extra></extra>")]
    return build_figure(
        data, {}, title=f"{title} ({n} positions x {model.wpe.weight.shape[1]} dims)",
        xaxis=dict(title="position", showgrid=False, constrain="domain"),
        yaxis=dict(title="position", autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False),
        height=520, margin=dict(l=60, r=20, t=70, b=50),
    )


def before_after_figure(before: PromptTrace, after: PromptTrace, layer: int, head: int, *,
                        labels: tuple[str, str] = ("untrained", "trained")) -> go.Figure:
    """The same head on the same prompt for two checkpoints, and their difference (after - before)."""
    check_same_tokens(before, after)
    before.check_head(layer, head)
    after.check_head(layer, head)
    tokens = after.tokens
    cats, axis = token_categories(tokens), token_axis(tokens)
    w_before, w_after = before.weights[layer, head], after.weights[layer, head]
    boxes = panel_row(3, gap=0.07, top=0.88)
    layout: dict = {}
    panels = [(f"{labels[0]}: weights", w_before, WEIGHT_COLORS, 0.0, "weight"),
              (f"{labels[1]}: weights", w_after, WEIGHT_COLORS, 0.0, "weight"),
              (f"difference ({labels[1]} − {labels[0]})", w_after - w_before, SCORE_COLORS, -1.0, "Δ weight")]
    data, annotations = [], []
    for p, (title, z, colors, zmin, name) in enumerate(panels):
        shared = (dict(matches="x"), dict(matches="y")) if p else ({}, {})
        axes = place_axes(layout, p, boxes[p], x=dict(title=KEY_AXIS, **axis, **shared[0]),
                          y=dict(title=QUERY_AXIS if p == 0 else None, autorange="reversed", **axis, **shared[1]))
        data.append(token_heatmap(z, cats, cats, axes, name=name, colors=colors, zmin=zmin, zmax=1.0,
                                  colorbar=colorbar_right(boxes[p], name) if p else None))
        annotations.append(panel_title(boxes[p], title))
    return build_figure(
        data, layout, annotations=annotations, height=440, margin=dict(l=60, r=60, t=90, b=80),
        title=f"Layer {layer}, head {head} on the same prompt: {labels[0]} vs {labels[1]}",
    )

