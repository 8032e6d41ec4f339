"""Validation loss and bits per character: the fair way to compare char and BPE models.

A GPT-2 BPE token covers ~3.1 characters of Shakespeare, a char token exactly one, so loss per
token is not comparable. Bits per character is: loss x tokens / characters / ln 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import TokenData
from .trainer import estimate_loss


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy per token (nats)
    bpc: float  # bits per character
    tokens_per_char: float
    batches: int


def bits_per_char(loss_per_token: float, data: TokenData) -> float:
    """Convert a validation loss per token into bits per character of the validation text."""
    return loss_per_token * len(data.val) / data.val_chars / math.log(2)


def evaluate(model, data: TokenData, *, batches: int = 200, batch_size: int = 16, seed: int = 0,
             attn_scale: float | None = None, causal: bool | None = None) -> EvalResult:
    """Mean validation loss over ``batches`` seeded random batches, and its bits per character.

    ``attn_scale`` / ``causal`` override the model's own setting (hooks set on the model, as head
    ablation does, apply too).
    """
    data.check_block_size(model.config.block_size)
    g = torch.Generator().manual_seed(seed)
    loss = estimate_loss(model, data, "val", batch_size, batches, g, attn_scale=attn_scale, causal=causal)
    return EvalResult(loss=loss, bpc=bits_per_char(loss, data),
                      tokens_per_char=len(data.val) / data.val_chars, batches=batches)
