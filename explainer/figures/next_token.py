"""The next-token distribution, redrawn from cached logits when a sampling slider moves.

The probabilities come from ``gpt.sampling.next_token_probs`` (the function the sampler
itself uses) applied to ``trace.logits``: moving a slider never re-runs the network.
"""
from __future__ import annotations

import plotly.graph_objects as go
import torch

from gpt.sampling import next_token_probs

from ..trace import PromptTrace
from .common import build_figure, toggles_label

CONTEXT_TOKENS = 24  # the title quotes at most this many of the prompt's last tokens


def _settings_text(temperature: float, top_k: int | None, top_p: float | None) -> str:
    parts = ["greedy (temperature 0)" if temperature == 0 else f"temperature {temperature:g}"]
    if top_k is not None:
        parts.append(f"top-k {top_k}")
    if top_p is not None and top_p < 1:
        parts.append(f"top-p {top_p:g}")
    return ", ".join(parts)


def top_next_tokens(trace: PromptTrace, tokenizer, *, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, n: int = 10) -> list[tuple[int, str, float, float]]:
    """The ``n`` most likely next tokens: (id, display string, probability after the settings, raw probability)."""
    logits = torch.from_numpy(trace.logits)
    probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    raw = next_token_probs(logits, temperature=1.0)
    order = torch.argsort(probs * 2 + raw, descending=True)[: max(1, int(n))].tolist()  # ties broken by raw
    strings = tokenizer.token_strings(order)
    return [(i, s, float(probs[i]), float(raw[i])) for i, s in zip(order, strings)]


def next_token_figure(trace: PromptTrace, tokenizer, *, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, n: int = 15) -> go.Figure:
    """Bars: top tokens' probability after temperature / top-k / top-p; diamonds: the raw softmax (T = 1)."""
    top = top_next_tokens(trace, tokenizer, temperature=temperature, top_k=top_k, top_p=top_p, n=n)
    labels = [f"'{s}' #{i}" for i, s, _, _ in top]
    probs, raw = [p for _, _, p, _ in top], [r for _, _, _, r in top]
    kept = int((next_token_probs(torch.from_numpy(trace.logits), temperature=temperature, top_k=top_k,
                                 top_p=top_p) > 0).sum())
    settings = _settings_text(temperature, top_k, top_p)
    data = [
        dict(type="bar", x=probs, y=labels, orientation="h", name=f"after {settings}", marker=dict(color="#1f77b4"),
             text=[f"{p:.3f}" for p in probs], textposition="outside",
             hovertemplate="%{y}<br>probability = %{x:.4f}<extra>after settings</extra>"),
        dict(type="scatter", x=raw, y=labels, mode="markers", name="raw softmax (temperature 1, no cut)",
             marker=dict(symbol="diamond", size=9, color="#d62728"),
             hovertemplate="%{y}<br>raw probability = %{x:.4f}<extra>raw</extra>"),
    ]
    shown = trace.tokens[-CONTEXT_TOKENS:]
    cut = len(shown) < len(trace.tokens) or trace.cropped  # "…" only when the title does not show it all
    context = ("…" if cut else "") + "".join(shown)
    return build_figure(
        data, {}, title=f"Next token after '{context}': top {len(top)} with {settings} "
                        f"({kept} of {trace.logits.shape[0]} tokens possible){toggles_label(trace)}",
        xaxis=dict(title="probability", range=[0, 1.08]),
        yaxis=dict(title="next token", type="category", autorange="reversed", categoryorder="array",
                   categoryarray=labels),
        height=max(300, 26 * len(top) + 120), margin=dict(l=120, r=30, t=70, b=50),
        legend=dict(orientation="h", y=-0.15),
    )
