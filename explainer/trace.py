"""One prompt through the model's explicit attention path, as plain numpy arrays.

The explainer never recomputes attention: every array here is a tensor the model itself
captured in ``GPT.trace``. The only derived quantity is the entropy of each softmax row,
which summarises how spread out a head's attention is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpt.generate import encode_prompt
from gpt.model import eval_mode


@dataclass
class PromptTrace:
    """Everything one explicit forward pass saw, for a single prompt (batch of one).

    Shapes: L = layers, H = heads, T = prompt tokens, D = head_dim, V = vocabulary.
    """

    prompt: str
    ids: list[int]
    tokens: list[str]  # display strings: whitespace visible, BPE byte fragments as <e2 80>
    q: np.ndarray  # (L, H, T, D)
    k: np.ndarray  # (L, H, T, D)
    v: np.ndarray  # (L, H, T, D)
    scores: np.ndarray  # (L, H, T, T) raw QK^T
    scaled: np.ndarray  # (L, H, T, T) scores * scale
    masked: np.ndarray  # (L, H, T, T) scaled, -inf where attention is not allowed
    weights: np.ndarray  # (L, H, T, T) softmax of masked: rows sum to 1
    out: np.ndarray  # (L, H, T, D) weights @ v: each head's output before the projection
    entropy: np.ndarray  # (L, H, T) entropy of each softmax row, in nats
    mask: np.ndarray  # (T, T) bool, True where query i may attend key j
    logits: np.ndarray  # (V,) next-token logits after the last prompt token
    scale: float  # the factor that multiplied QK^T
    default_scale: float  # the model's own factor (1/sqrt(d_k) unless its config sets another)
    causal: bool  # whether the causal mask was applied
    scale_overridden: bool  # attn_scale was given for this trace (not the model's own setting)
    causal_overridden: bool  # causal was given for this trace (not the model's own setting)
    cropped: bool  # the prompt was longer than block_size: only its last block_size tokens were used
    used_start_token: bool  # the prompt was empty: the tokenizer's start token was used instead
    head_dim: int

    @property
    def n_layer(self) -> int:
        return self.weights.shape[0]

    @property
    def n_head(self) -> int:
        return self.weights.shape[1]

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def check_head(self, layer: int, head: int) -> None:
        """Raise a ValueError that names the valid range if (layer, head) does not exist."""
        if self.n_layer == 0:
            raise ValueError("this model has no attention layers (e.g. the bigram preset): nothing to show.")
        if not 0 <= int(layer) < self.n_layer:
            raise ValueError(f"layer must be in 0..{self.n_layer - 1}, got {layer!r}.")
        if not 0 <= int(head) < self.n_head:
            raise ValueError(f"head must be in 0..{self.n_head - 1}, got {head!r}.")


def row_entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each softmax row along the last axis, with 0·log 0 = 0."""
    w = weights.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0)
    return (-terms.sum(-1)).astype(np.float32)


def _stack(layers, name: str, empty_shape: tuple[int, ...]) -> np.ndarray:
    if not layers:
        return np.zeros(empty_shape, dtype=np.float32)
    return torch.stack([getattr(t, name)[0] for t in layers]).detach().cpu().float().numpy()


def trace_prompt(model, tokenizer, prompt: str, *, causal: bool | None = None,
                 attn_scale: float | None = None, max_tokens: int | None = None) -> PromptTrace:
    """Run the model's explicit attention path once on ``prompt`` and keep every stage.

    ``causal`` / ``attn_scale`` override the model's own setting for this call only, so the
    trained weights can be inspected with the mask removed or the scaling changed. A prompt
    longer than ``block_size`` (or ``max_tokens``, to keep figures legible) keeps its last that
    many token ids (``cropped``): ids, never re-encoded text, so nothing is invented; an empty
    prompt becomes the start token (``used_start_token``). Characters unknown to a char
    model raise ``gpt.UnknownCharactersError``.
    """
    limit = model.config.block_size if max_tokens is None else min(int(max_tokens), model.config.block_size)
    ids, cropped, used_start = encode_prompt(tokenizer, prompt or "", limit)
    idx = torch.tensor([ids], dtype=torch.long, device=model.device)
    with eval_mode(model):
        mt = model.trace(idx, causal=causal, attn_scale=attn_scale)
    T, D = len(ids), model.config.head_dim
    vec_shape, mat_shape = (0, 0, T, D), (0, 0, T, T)
    weights = _stack(mt.layers, "weights", mat_shape)
    return PromptTrace(
        prompt=prompt or "", ids=list(ids), tokens=list(tokenizer.token_strings(ids)),
        q=_stack(mt.layers, "q", vec_shape), k=_stack(mt.layers, "k", vec_shape),
        v=_stack(mt.layers, "v", vec_shape), scores=_stack(mt.layers, "scores", mat_shape),
        scaled=_stack(mt.layers, "scaled", mat_shape), masked=_stack(mt.layers, "masked", mat_shape),
        weights=weights, out=_stack(mt.layers, "out", vec_shape), entropy=row_entropy(weights),
        mask=mt.mask.cpu().numpy().astype(bool), logits=mt.logits[0, -1].detach().cpu().float().numpy(),
        scale=float(mt.scale), default_scale=float(mt.default_scale), causal=bool(mt.causal), scale_overridden=attn_scale is not None,
        causal_overridden=causal is not None, cropped=cropped, used_start_token=used_start, head_dim=D,
    )
