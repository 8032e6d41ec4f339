"""The causal mask: a head with and without it, and the lecture's averaging trick."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from ..trace import PromptTrace
from .common import (KEY_AXIS, QUERY_AXIS, WEIGHT_COLORS, build_figure, check_same_tokens, colorbar_right,
                     mask_overlay, panel_row, panel_title, place_axes, token_axis, token_categories, token_heatmap)

DECODER_NOTE = ("Decoder (GPT): each token may attend only to itself and earlier tokens, because it is trained "
                "to predict the next one. Encoder (BERT): every token attends to every token. Removing the mask "
                "at inference lets early tokens see the future, which these weights were never trained for.")


def _weights_panels(panels: list[tuple[str, np.ndarray, np.ndarray, list[str]]], title: str, note: str,
                    height: int = 520) -> go.Figure:
    """Side-by-side 0..1 weight heatmaps on shared token axes; grey overlay where a panel's mask forbids."""
    boxes = panel_row(len(panels), gap=0.06, top=0.88)
    layout: dict = {}
    data, annotations = [], []
    legend_done = False
    for p, (label, weights, mask, tokens) in enumerate(panels):
        cats, axis = token_categories(tokens), token_axis(tokens)
        shared = (dict(matches="x"), dict(matches="y")) if p else ({}, {})
        axes = place_axes(layout, p, boxes[p], x=dict(title=KEY_AXIS, **axis, **shared[0]),
                          y=dict(title=QUERY_AXIS if p == 0 else None, autorange="reversed", **axis, **shared[1]))
        last = p == len(panels) - 1
        data.append(token_heatmap(weights, cats, cats, axes, name="weight", colors=WEIGHT_COLORS, zmin=0, zmax=1,
                                  colorbar=colorbar_right(boxes[p], "weight") if last else None))
        if not mask.all():
            data.append(mask_overlay(mask, cats, *axes, showlegend=not legend_done))
            legend_done = True
        annotations.append(panel_title(boxes[p], label))
    annotations.append(dict(text=note, x=0, y=-0.36, xref="paper", yref="paper", showarrow=False, xanchor="left",
                            align="left", font=dict(size=11, color="#555")))
    return build_figure(data, layout, annotations=annotations, title=title, height=height,
                        margin=dict(l=60, r=60, t=90, b=150), legend=dict(orientation="h", x=1, xanchor="right",
                                                                            y=1.08))


def _wrap(text: str, width: int = 120) -> str:
    """Break a long note into lines for a plotly annotation (which does not wrap by itself)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def causal_mask_figure(with_mask: PromptTrace, without_mask: PromptTrace, layer: int, head: int) -> go.Figure:
    """The same head on the same prompt traced with ``causal=True`` and with ``causal=False``."""
    check_same_tokens(with_mask, without_mask)
    with_mask.check_head(layer, head)

    def label(tr: PromptTrace) -> str:
        return ("causal mask on (decoder: only the past)" if tr.causal
                else "mask off (encoder-style: past and future)")

    panels = [(label(tr), tr.weights[layer, head], tr.mask, tr.tokens) for tr in (with_mask, without_mask)]
    return _weights_panels(panels, f"Layer {layer}, head {head}: attention weights with and without the causal mask",
                           _wrap(DECODER_NOTE))


def averaging_trick_figure(trace: PromptTrace, layer: int, head: int, size: int = 8) -> go.Figure:
    """The lecture's three steps to attention, on the first ``size`` tokens of the prompt.

    1. uniform averaging of the past: a lower-triangular matrix with rows 1/(i+1);
    2. the same matrix as softmax of a masked zero matrix (zeros, −∞ where masked);
    3. this head's real, data-dependent weights (softmax of the masked, scaled QKᵀ).
    """
    trace.check_head(layer, head)
    n = max(1, min(int(size), trace.n_tokens))
    tokens, mask = trace.tokens[:n], trace.mask[:n, :n]
    lower = np.tril(np.ones((n, n)))
    uniform = lower / lower.sum(1, keepdims=True)
    zeros = torch.zeros(n, n).masked_fill(~torch.from_numpy(mask), float("-inf"))
    from_zeros = torch.softmax(zeros, dim=-1).numpy()
    learned = trace.weights[layer, head, :n, :n]
    note = ("Step 1 averages every earlier token equally. Step 2 gets the same matrix from softmax: zeros where "
            "attention is allowed, −∞ where it is masked. Step 3 replaces the zeros with the scaled scores QKᵀ, so "
            "each token chooses how much of each earlier token to take: the weights now depend on the data.")
    if not trace.causal:
        note += " (This trace has the mask off, so steps 2 and 3 also reach future tokens.)"
    if n < trace.n_tokens and not trace.causal:
        note += f" Only the first {n} keys are shown, so step 3's rows need not sum to 1 here."
    panels = [
        ("1 · uniform average of the past", uniform, np.tril(np.ones((n, n), dtype=bool)), tokens),
        ("2 · softmax(masked zeros)", from_zeros, mask, tokens),
        (f"3 · learned: layer {layer}, head {head}", learned, mask, tokens),
    ]
    return _weights_panels(panels, f"From averaging to attention on the first {n} tokens", _wrap(note))
