"""Turning next-token logits into a token: temperature, top-k, top-p (nucleus).

Kept apart from the model so the explainer can redraw the distribution from cached
logits when a slider moves, without running the network again.
"""
from __future__ import annotations

import math

import torch

MAX_TEMPERATURE = 100.0


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ValueError with a message that says what a valid setting looks like."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number, got {temperature!r}.") from None
    if math.isnan(t) or t < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}.")
    if t > MAX_TEMPERATURE:
        raise ValueError(f"temperature {temperature!r} is too large; use at most {MAX_TEMPERATURE:g} "
                         "(above ~2 the samples are already close to uniform noise).")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1 (leave it unset for no limit), got {top_k!r}.")
    if top_p is not None:
        try:
            p = float(top_p)
        except (TypeError, ValueError):
            p = math.nan
        if math.isnan(p) or not 0 < p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 = no nucleus cut), got {top_p!r}.")


def next_token_probs(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """Probabilities over the vocabulary after temperature, top-k and top-p (last dim).

    Temperature 0 puts all mass on the argmax. top_k larger than the vocabulary keeps
    everything. Filtered-out tokens get probability exactly 0.
    """
    check_sampling(temperature, top_k, top_p)
    logits = logits.float()
    if temperature == 0:
        return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass strictly before each token
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)  # the top token always survives
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample one token per row of ``logits`` (B, vocab) -> (B, 1)."""
    if temperature == 0:
        check_sampling(temperature, top_k, top_p)
        return logits.argmax(-1, keepdim=True)
    probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)
