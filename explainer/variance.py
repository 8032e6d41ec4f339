"""Why attention divides QKᵀ by √d_k: the numbers behind the scaling demo.

Two parts. Synthetic: for random unit-variance q and k, q·k has variance d_k, so wide heads
push softmax into saturation unless the dot product is scaled by 1/√d_k. Real: the same
trained model traced and evaluated with its scale changed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gpt.evaluate import evaluate
from gpt.model import attention_scale

from .trace import PromptTrace, row_entropy, trace_prompt

DEMO_DIMS = (4, 16, 64, 256)
SATURATION_DIMS = (4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class VarianceDemo:
    """q·k samples per d_k, their measured variances, and how peaked softmax rows get."""

    dims: tuple[int, ...]
    dots: np.ndarray  # (len(dims), samples) q·k, unscaled
    scaled_dots: np.ndarray  # (len(dims), samples) q·k / √d_k
    variance: np.ndarray  # (len(dims),) measured variance of q·k (theory: d_k)
    scaled_variance: np.ndarray  # (len(dims),) measured variance of q·k / √d_k (theory: 1)
    saturation_dims: tuple[int, ...]
    row_length: int  # keys per softmax row
    max_weight: np.ndarray  # (len(saturation_dims),) mean largest weight of a row, unscaled
    scaled_max_weight: np.ndarray  # same, scaled by 1/√d_k
    entropy: np.ndarray  # (len(saturation_dims),) mean row entropy in nats, unscaled
    scaled_entropy: np.ndarray  # same, scaled

    @property
    def uniform_entropy(self) -> float:
        """ln(row_length): the entropy of a row that attends evenly to every key."""
        return math.log(self.row_length)


def _softmax_stats(logits: torch.Tensor) -> tuple[float, float]:
    weights = torch.softmax(logits, dim=-1).numpy()
    return float(weights.max(-1).mean()), float(row_entropy(weights).mean())


def qk_variance_demo(dims=DEMO_DIMS, *, samples: int = 20000, saturation_dims=SATURATION_DIMS,
                     row_length: int = 32, rows: int = 500, seed: int = 0) -> VarianceDemo:
    """Sample unit-variance q, k and measure var(q·k) and softmax saturation, with and without 1/√d_k."""
    g = torch.Generator().manual_seed(seed)
    dots, scaled = [], []
    for d in dims:
        q = torch.randn(samples, d, generator=g, dtype=torch.float64)
        k = torch.randn(samples, d, generator=g, dtype=torch.float64)
        dot = (q * k).sum(-1)
        dots.append(dot.numpy())
        scaled.append((dot / math.sqrt(d)).numpy())
    stats = {"max": [], "smax": [], "ent": [], "sent": []}
    for d in saturation_dims:
        q = torch.randn(rows, 1, d, generator=g)
        k = torch.randn(rows, row_length, d, generator=g)
        logits = (q * k).sum(-1)  # (rows, row_length): one query against row_length keys
        m, e = _softmax_stats(logits)
        sm, se = _softmax_stats(logits / math.sqrt(d))
        stats["max"].append(m), stats["ent"].append(e), stats["smax"].append(sm), stats["sent"].append(se)
    dots_arr, scaled_arr = np.stack(dots), np.stack(scaled)
    return VarianceDemo(
        dims=tuple(dims), dots=dots_arr, scaled_dots=scaled_arr, variance=dots_arr.var(-1),
        scaled_variance=scaled_arr.var(-1), saturation_dims=tuple(saturation_dims), row_length=row_length,
        max_weight=np.array(stats["max"]), scaled_max_weight=np.array(stats["smax"]),
        entropy=np.array(stats["ent"]), scaled_entropy=np.array(stats["sent"]),
    )


@dataclass
class ScaleSweep:
    """One trained model traced and evaluated at several attention scales."""

    labels: list[str]  # e.g. "× 0.5", "× 1 (trained)", "× 2", "unscaled"
    scales: list[float]  # the factor that multiplied QKᵀ
    traces: list[PromptTrace]
    val_loss: list[float]  # mean validation loss per token (nats), same batches for every scale
    val_bpc: list[float]


def val_loss_at_scale(model, data, attn_scale: float, *, batches: int = 20, batch_size: int = 16,
                      seed: int = 0):
    """``gpt.evaluate`` with the attention scale overridden for this call only (the model is untouched)."""
    return evaluate(model, data, batches=batches, batch_size=batch_size, seed=seed, attn_scale=float(attn_scale))


def scale_sweep(model, tokenizer, prompt: str, data, *, multipliers=(0.5, 1.0, 2.0), batches: int = 20,
                batch_size: int = 16, seed: int = 0) -> ScaleSweep:
    """Trace ``prompt`` and measure val loss at the trained scale times each multiplier, and unscaled (× 1)."""
    trained = attention_scale(model.config)
    labels = [f"× {m:g} (trained scale)" if m == 1 else f"× {m:g}" for m in multipliers] + ["unscaled"]
    scales = [trained * m for m in multipliers] + [1.0]
    traces, losses, bpcs = [], [], []
    for s in scales:
        traces.append(trace_prompt(model, tokenizer, prompt, attn_scale=s))
        result = val_loss_at_scale(model, data, s, batches=batches, batch_size=batch_size, seed=seed)
        losses.append(result.loss)
        bpcs.append(result.bpc)
    return ScaleSweep(labels=labels, scales=scales, traces=traces, val_loss=losses, val_bpc=bpcs)
