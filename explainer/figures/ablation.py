"""Head ablation: how much worse the model gets when each head is zeroed."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..ablation import AblationResult
from .common import SCORE_COLORS, build_figure, symmetric_limit


def ablation_figure(result: AblationResult) -> go.Figure:
    """Layers x heads heatmap of val-loss increase (ablated - intact), diverging around 0."""
    increase = result.increase
    L, H = increase.shape
    limit = symmetric_limit(increase)
    custom = np.stack([result.loss, np.full_like(result.loss, result.baseline_loss)], -1)
    data = [dict(
        type="heatmap", z=increase, x=[f"head {h}" for h in range(H)], y=[f"layer {layer}" for layer in range(L)],
        colorscale=SCORE_COLORS, zmin=-limit, zmax=limit, zmid=0, customdata=custom, texttemplate="%{z:+.3f}",
        colorbar=dict(title=dict(text="Δ val loss", side="right")), name="Δ val loss",
        hovertemplate=("%{y}, %{x}<br>val loss without this head = %{customdata[0]:.4f}"
                       "<br>intact model = %{customdata[1]:.4f}<br>increase = %{z:+.4f} nats/token<extra></extra>"),
    )]
    return build_figure(
        data, {}, title=(f"Val-loss increase when each head is zeroed (intact: {result.baseline_loss:.4f} nats/token; "
                         f"{result.batches} batches of {result.batch_size}, seed {result.seed}, same for every head)"),
        xaxis=dict(title="head", type="category", side="top"),
        yaxis=dict(title="layer", type="category", autorange="reversed"),
        height=120 + 70 * L, margin=dict(l=80, r=20, t=110, b=20),
    )
