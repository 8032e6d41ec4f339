"""What heads do: role-score grids, the logit lens, and role scores over training."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..heads import INDUCTION_THRESHOLD, ROLE_PHRASES, ROLES, HeadRoles
from ..lens import LogitLens
from .common import WEIGHT_COLORS, build_figure, message_figure, panel_row, panel_title, place_axes

ROLE_COLORS = {"previous-token": "#1f77b4", "first-token": "#7f7f7f", "duplicate-token": "#2ca02c",
               "induction": "#d62728"}
SINK_NOTE = ("first-token: a head that parks its attention on token 0 is an 'attention sink' "
             "(StreamingLLM, arXiv 2309.17453): softmax must put its weight somewhere.")
MAX_TEXT_HEADS = 8  # a role grid prints its scores in the cells up to this many heads a layer


def head_roles_figure(roles: HeadRoles, *, title: str | None = None) -> go.Figure:
    """One layers x heads grid per role, side by side; colour = score on a fixed 0..1 scale.

    Each cell shows its score as text (up to ``MAX_TEXT_HEADS`` heads a layer; wider grids leave no room,
    e.g. GPT-2's 12), the hover gives it to four decimals, and its
    ``customdata`` is (layer, head), so a click in the UI maps straight back to the head.
    """
    L, H = roles.n_layer, roles.n_head
    boxes = panel_row(len(ROLES), gap=0.03, bottom=0.0, top=0.86)
    layout: dict = {"annotations": []}
    data = []
    custom = np.stack(np.meshgrid(np.arange(L), np.arange(H), indexing="ij"), axis=-1).astype(np.uint8)
    for i, (role, box) in enumerate(zip(ROLES, boxes)):
        axes = place_axes(layout, i, box,
                          x=dict(title="head", tickmode="array", tickvals=list(range(H)), showgrid=False),
                          y=dict(title="layer" if i == 0 else None, tickmode="array", tickvals=list(range(L)),
                                 autorange="reversed", showgrid=False, showticklabels=i == 0))
        data.append(dict(
            type="heatmap", z=roles.scores[role], x=list(range(H)), y=list(range(L)), xaxis=axes[0],
            yaxis=axes[1], customdata=custom, name=role, colorscale=WEIGHT_COLORS, zmin=0, zmax=1,
            showscale=i == len(ROLES) - 1, texttemplate="%{z:.2f}" if H <= MAX_TEXT_HEADS else "",
            textfont=dict(size=10),
            hovertemplate=(f"layer %{{customdata[0]}}, head %{{customdata[1]}}<br>{role} score = %{{z:.4f}}"
                           f"<br>({ROLE_PHRASES[role]})<extra></extra>"),
        ))
        layout["annotations"].append(panel_title(box, role))
    data[-1]["colorbar"] = dict(title=dict(text="score (fraction of attention)", side="right"), thickness=10)
    what = (f"Head roles: the fraction of each head's attention on the role's key<br><sup>random-token probes: "
            f"{roles.probe_batch} sequences of {roles.probe_length} tokens said twice, seed {roles.seed}</sup>")
    layout["annotations"].append(dict(text=SINK_NOTE, x=0, y=0, yshift=-62, xref="paper", yref="paper",
                                      showarrow=False, xanchor="left", yanchor="top", font=dict(size=10)))
    return build_figure(data, layout, title=f"{title}: {what}" if title else what,
                        height=190 + max(140, 34 * L), margin=dict(l=60, r=40, t=90, b=100))


def logit_lens_figure(lens: LogitLens) -> go.Figure:
    """Rows: the embeddings and each block; columns: prompt positions. Each cell names the top
    next token read from the residual stream there; colour = its probability (0..1, fixed)."""
    R, T, k = lens.top_ids.shape
    title = (f"Logit lens: the most probable next token after each position, read from the residual stream "
             f"through the model's final LayerNorm and unembedding (colour = its probability; top {k} in the hover)")
    if T == 0:
        return message_figure(title, "The prompt has no tokens.")
    cols = [f"#{t} '{s}'" for t, s in enumerate(lens.tokens)]
    rows = list(lens.row_names)
    hover = np.empty((R, T), dtype=object)
    for r in range(R):
        for t in range(T):
            top = "<br>".join(f"{lens.top_tokens[r, t, j]!s}  {lens.top_probs[r, t, j]:.4f}" for j in range(k))
            hover[r, t] = (f"{top}<br>p(model's final top-1 '{lens.top_tokens[-1, t, 0]}') = "
                           f"{lens.final_probs[r, t]:.4f}")
    data = [dict(
        type="heatmap", z=lens.top_probs[:, :, 0], x=cols, y=rows, text=lens.top_tokens[:, :, 0],
        texttemplate="%{text}", textfont=dict(size=10), customdata=hover, colorscale=WEIGHT_COLORS, zmin=0,
        zmax=1, name="top-1", colorbar=dict(title=dict(text="probability of the top token", side="right"),
                                            thickness=10),
        hovertemplate="%{y}, after %{x}<br>%{customdata}<extra></extra>",
    )]
    return build_figure(
        data, {}, title=title, height=140 + 34 * R,
        xaxis=dict(type="category", tickmode="array", tickvals=cols, ticktext=list(lens.tokens), tickangle=0,
                   showgrid=False, title="prompt position (the token the prediction follows)"),
        yaxis=dict(type="category", autorange="reversed", showgrid=False, title="depth"),
        margin=dict(l=110, r=40, t=70, b=50),
    )


def role_history_figure(history: Sequence[tuple[int, HeadRoles]], *, induction_step: int | None = None) -> go.Figure:
    """Small multiples over training: one panel per head, its four role scores vs step (colour = role).

    ``history`` is [(step, HeadRoles), ...] in step order; ``induction_step`` (if given) is marked
    with a dashed line in every panel.
    """
    title = "Head roles during training: each head's role scores (fraction of its attention) vs step"
    if not history:
        return message_figure(title, "No evaluations yet: the scores appear at the first evaluation.")
    steps = [int(s) for s, _ in history]
    L, H = history[0][1].n_layer, history[0][1].n_head
    if any(r.n_layer != L or r.n_head != H for _, r in history):
        raise ValueError("every HeadRoles in the history must come from the same model shape.")
    layout: dict = {"annotations": [], "shapes": []}
    data = []
    row_gap = 0.08
    row_h = (1.0 - row_gap * (L - 1)) / L
    for layer in range(L):
        top = 1.0 - layer * (row_h + row_gap)
        for head, box in enumerate(panel_row(H, gap=0.03, bottom=top - row_h, top=top)):
            i = layer * H + head
            axes = place_axes(layout, i, box, x=dict(showticklabels=layer == L - 1, title="step" if layer == L - 1
                                                     else None),
                              y=dict(range=[0, 1.02], showticklabels=head == 0, title="score" if head == 0 else None))
            for role in ROLES:
                data.append(dict(
                    type="scatter", mode="lines+markers", x=steps, y=[float(r.scores[role][layer, head])
                                                                     for _, r in history],
                    xaxis=axes[0], yaxis=axes[1], name=role, legendgroup=role, showlegend=i == 0,
                    line=dict(color=ROLE_COLORS[role], width=1.5), marker=dict(size=4),
                    hovertemplate=f"layer {layer}, head {head}<br>step %{{x}}<br>{role} = %{{y:.4f}}<extra></extra>",
                ))
            layout["annotations"].append(panel_title(box, f"layer {layer}, head {head}", size=11))
            if induction_step is not None:
                layout["shapes"].append(dict(type="line", x0=induction_step, x1=induction_step, y0=0, y1=1,
                                             xref=axes[0], yref=f"{axes[1]} domain",
                                             line=dict(dash="dash", color=ROLE_COLORS["induction"], width=1)))
    marked = (f"; dashed: first step with an induction score > {INDUCTION_THRESHOLD:g} "
              f"({induction_step})") if induction_step is not None else ""
    return build_figure(data, layout, title=title + marked, height=120 + 170 * L,
                        legend=dict(orientation="h", y=-0.12), margin=dict(l=60, r=20, t=80, b=60),
                        uirevision="roles")


__all__ = ["head_roles_figure", "logit_lens_figure", "role_history_figure", "ROLE_COLORS"]
