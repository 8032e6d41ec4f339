"""The √d_k demo: variance of q·k, softmax saturation, and a real model at other scales."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..variance import ScaleSweep, VarianceDemo
from .common import (KEY_AXIS, QUERY_AXIS, WEIGHT_COLORS, build_figure, colorbar_right, panel_row, panel_title,
                     place_axes, token_axis, token_categories, token_heatmap)

UNSCALED, SCALED = "#d62728", "#1f77b4"
HIST_BINS = 60


def _density(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and probability density of samples (their own range, HIST_BINS bins)."""
    density, edges = np.histogram(samples, bins=HIST_BINS, density=True)
    return (edges[:-1] + edges[1:]) / 2, density


def variance_histograms_figure(demo: VarianceDemo) -> go.Figure:
    """Histograms of q·k (unscaled) and q·k/√d_k for each d_k, with the measured variances."""
    n = len(demo.dims)
    boxes = panel_row(n, gap=0.05, top=0.82)
    layout: dict = {}
    data, annotations = [], []
    for p, d in enumerate(demo.dims):
        axes = place_axes(layout, p, boxes[p], x=dict(title="value"),
                          y=dict(title="probability density" if p == 0 else None))
        for samples, name, color in ((demo.dots[p], "q·k (unscaled)", UNSCALED),
                                     (demo.scaled_dots[p], "q·k / √d_k (scaled)", SCALED)):
            x, y = _density(samples)
            data.append(dict(type="scatter", x=x, y=y, mode="lines", line=dict(color=color, shape="hvh"),
                             fill="tozeroy", name=name, legendgroup=name, showlegend=p == 0, xaxis=axes[0],
                             yaxis=axes[1], hovertemplate=f"{name}<br>value %{{x:.3f}}<br>density %{{y:.4f}}"
                                                          "<extra></extra>"))
        annotations.append(panel_title(
            boxes[p], f"d_k = {d}<br>var(q·k) = {demo.variance[p]:.2f} (theory {d})"
                      f"<br>var(q·k/√d_k) = {demo.scaled_variance[p]:.3f} (theory 1)", size=11))
    return build_figure(
        data, layout, annotations=annotations, height=400, margin=dict(l=60, r=20, t=110, b=50),
        title=f"q·k for random unit-variance q, k ({demo.dots.shape[1]:,} samples per d_k): variance grows "
              "with d_k; dividing by √d_k keeps it at 1",
        legend=dict(orientation="h", y=-0.2),
    )


def softmax_saturation_figure(demo: VarianceDemo) -> go.Figure:
    """Mean largest weight and mean entropy of a softmax row vs d_k, with and without 1/√d_k."""
    boxes = panel_row(2, gap=0.1, top=0.88)
    layout: dict = {}
    data = []
    dims = list(demo.saturation_dims)
    panels = (("mean largest weight in a row", demo.max_weight, demo.scaled_max_weight, [0, 1.02]),
              ("mean row entropy (nats)", demo.entropy, demo.scaled_entropy, [0, demo.uniform_entropy * 1.05]))
    for p, (label, raw, scaled, yrange) in enumerate(panels):
        axes = place_axes(layout, p, boxes[p], x=dict(title="d_k (head dimension)", type="log",
                                                      tickvals=dims, ticktext=[str(d) for d in dims]),
                          y=dict(title=label, range=yrange))
        for values, name, color in ((raw, "unscaled: softmax(q·k)", UNSCALED),
                                    (scaled, "scaled: softmax(q·k / √d_k)", SCALED)):
            data.append(dict(type="scatter", x=dims, y=values, mode="lines+markers", line=dict(color=color),
                             name=name, legendgroup=name, showlegend=p == 0, xaxis=axes[0], yaxis=axes[1],
                             hovertemplate=f"{name}<br>d_k = %{{x}}<br>{label} = %{{y:.4f}}<extra></extra>"))
    reference = [(f"uniform: 1/{demo.row_length}", 1 / demo.row_length, 0),
                 (f"uniform: ln {demo.row_length}", demo.uniform_entropy, 1)]
    for name, value, p in reference:
        axes = ("x" if p == 0 else "x2", "y" if p == 0 else "y2")
        data.append(dict(type="scatter", x=[dims[0], dims[-1]], y=[value, value], mode="lines", name=name,
                         line=dict(color="#999", dash="dot"), xaxis=axes[0], yaxis=axes[1], showlegend=False,
                         hovertemplate=f"{name} = {value:.4f}<extra></extra>"))
    annotations = [panel_title(boxes[0], "how peaked a row is (1 = all weight on one key)"),
                   panel_title(boxes[1], f"how spread a row is (dotted: even over {demo.row_length} keys)")]
    return build_figure(
        data, layout, annotations=annotations, height=400, margin=dict(l=60, r=20, t=90, b=50),
        title=f"Softmax saturation: random rows of {demo.row_length} keys, with and without the 1/√d_k scaling",
        legend=dict(orientation="h", y=-0.22),
    )


def scale_sweep_figure(sweep: ScaleSweep, layer: int, head: int) -> go.Figure:
    """One head's weights at each attention scale, and the model's val loss at that scale."""
    first = sweep.traces[0]
    first.check_head(layer, head)
    n = len(sweep.traces)
    heat_share = 0.74  # heatmaps on the left, the loss bars on the right, room for the colour bar between
    boxes = [(x0 * heat_share, x1 * heat_share, y0, y1) for x0, x1, y0, y1 in panel_row(n, gap=0.04, top=0.86)]
    boxes.append((0.84, 1.0, 0.0, 0.86))
    cats = token_categories(first.tokens)
    axis = token_axis(first.tokens)
    layout: dict = {}
    data, annotations = [], []
    for p, (label, scale, tr) in enumerate(zip(sweep.labels, sweep.scales, sweep.traces)):
        axes = place_axes(layout, p, boxes[p], x=dict(title=KEY_AXIS, **axis, **(dict(matches="x") if p else {})),
                          y=dict(title=QUERY_AXIS if p == 0 else None, autorange="reversed", showticklabels=p == 0,
                                 **axis, **(dict(matches="y") if p else {})))
        data.append(token_heatmap(tr.weights[layer, head], cats, cats, axes, name="weight", colors=WEIGHT_COLORS,
                                  zmin=0, zmax=1, colorbar=colorbar_right(boxes[p], "weight") if p == n - 1 else None))
        annotations.append(panel_title(boxes[p], f"{label}: QKᵀ × {scale:.4g}", size=11))
    axes = place_axes(layout, n, boxes[n], x=dict(type="category"), y=dict(title="val loss (nats/token)"))
    data.append(dict(type="bar", x=sweep.labels, y=sweep.val_loss, xaxis=axes[0], yaxis=axes[1],
                     name="val loss", marker=dict(color="#555"), text=[f"{v:.3f}" for v in sweep.val_loss],
                     textposition="outside", customdata=sweep.val_bpc,
                     hovertemplate="%{x}<br>val loss = %{y:.4f} nats/token<br>= %{customdata:.4f} bits/char"
                                   "<extra></extra>"))
    annotations.append(panel_title(boxes[n], "val loss at each scale (same batches)", size=11))
    return build_figure(
        data, layout, annotations=annotations, showlegend=False, height=430, margin=dict(l=60, r=30, t=90, b=90),
        title=f"Layer {layer}, head {head} of the trained model with its attention scale changed at inference",
    )
