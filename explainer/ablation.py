"""Validation measurements through ``gpt.evaluate``: bits per character, and head ablation.

Both reuse the model's own forward pass and loss; the explainer adds only the bookkeeping
(which text, which heads are zeroed, same seeded batches for every comparison).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gpt.data import TokenData
from gpt.evaluate import EvalResult, evaluate


def _as_data(tokenizer, text_or_data) -> TokenData:
    if isinstance(text_or_data, TokenData):
        return text_or_data
    if isinstance(text_or_data, str):
        return TokenData.from_text(text_or_data, tokenizer)
    raise TypeError(f"expected the corpus text (str) or a gpt.TokenData, got {type(text_or_data).__name__}.")


def bits_per_char_of(model, tokenizer, text_or_data, *, batches: int = 50, batch_size: int = 16,
                     seed: int = 0) -> EvalResult:
    """Validation loss per token and bits per character (loss x tokens / characters / ln 2).

    ``text_or_data`` is a corpus (split 90/10 as in training, so this matches training's val
    loss) or a ``gpt.TokenData``. Bits per character lets char and BPE models be compared.
    """
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model expects "
                         f"{model.config.vocab_size}: use the tokenizer the model was trained with.")
    data = _as_data(tokenizer, text_or_data)
    with torch.no_grad():
        return evaluate(model, data, batches=batches, batch_size=batch_size, seed=seed)


@dataclass
class AblationResult:
    """Validation loss with each head zeroed in turn, against the intact model on the same batches."""

    baseline_loss: float
    loss: np.ndarray  # (n_layer, n_head) val loss with that one head's output zeroed
    batches: int
    batch_size: int
    seed: int

    @property
    def increase(self) -> np.ndarray:
        """How much worse the model gets without each head (negative: it did better without it)."""
        return self.loss - self.baseline_loss


def zero_head(head: int):
    """A hook for ``h.N.attn.hook_z`` (B, n_head, T, head_dim) that zeroes one head's output."""
    def hook(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, head] = 0.0
        return z
    return hook


def head_ablation(model, data: TokenData, *, batches: int = 10, batch_size: int = 16, seed: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> AblationResult:
    """Zero one head at a time (at its ``hook_z``) and measure val loss on the same seeded batches.

    ``progress(done, total)`` is called after each evaluation, for a progress bar.
    """
    L, H = model.config.n_layer, model.config.n_head
    if L == 0:
        raise ValueError("this model has no attention heads to ablate (e.g. the bigram preset).")
    total = 1 + L * H
    kw = dict(batches=batches, batch_size=batch_size, seed=seed)
    with torch.no_grad():
        baseline = evaluate(model, data, **kw).loss
        if progress:
            progress(1, total)
        loss = np.zeros((L, H))
        for layer in range(L):
            for head in range(H):
                with model.hooks({f"h.{layer}.attn.hook_z": zero_head(head)}):
                    loss[layer, head] = evaluate(model, data, **kw).loss
                if progress:
                    progress(2 + layer * H + head, total)
    return AblationResult(baseline_loss=baseline, loss=loss, batches=batches, batch_size=batch_size, seed=seed)
