"""A decoder-only GPT in one readable file.

Every formula appears once. Attention has two paths in the same module:

* the fast path, ``F.scaled_dot_product_attention`` (training and sampling), and
* the explicit path, which computes QK^T, the scaling, the mask and the softmax
  step by step and returns every stage as an ``AttentionTrace`` (inspection).

A test checks that both paths give the same logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig, resolve_scale
from .sampling import sample_next


class KVCache:
    """Keys and values of the tokens seen so far, for every layer, in buffers sized to block_size.

    Writing each new token's k, v into a preallocated slot (instead of concatenating onto the
    old tensors) keeps a sampling step from re-copying the whole cache.
    """

    def __init__(self, config: GPTConfig, batch: int, device, dtype=torch.float32):
        shape = (config.n_layer, batch, config.n_head, config.block_size, config.head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0  # tokens cached (advanced by GPT._run after all layers have written)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this call's k, v (B, nh, T, hd) after the cached ones; return all keys and values."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


@dataclass
class AttentionTrace:
    """Every stage of one layer's attention, per head: tensors of shape (B, n_head, T, ...)."""

    q: torch.Tensor  # (B, nh, T, hd) queries
    k: torch.Tensor  # (B, nh, T, hd) keys
    v: torch.Tensor  # (B, nh, T, hd) values
    scores: torch.Tensor  # (B, nh, T, T) raw QK^T
    scaled: torch.Tensor  # (B, nh, T, T) QK^T * scale
    masked: torch.Tensor  # (B, nh, T, T) scaled, with -inf where attention is not allowed
    weights: torch.Tensor  # (B, nh, T, T) softmax(masked): each row sums to 1
    out: torch.Tensor  # (B, nh, T, hd) weights @ v, the head outputs before the projection


@dataclass
class ModelTrace:
    """What one explicit forward pass captured: per-layer attention and the logits."""

    layers: list[AttentionTrace]
    mask: torch.Tensor  # (T, T) bool, True where attention is allowed
    scale: float  # the factor applied to QK^T
    causal: bool
    logits: torch.Tensor  # (B, T, vocab_size)


def causal_mask(t_q: int, t_k: int, device: torch.device | None = None) -> torch.Tensor:
    """(t_q, t_k) bool mask, True where query i may attend key j (j <= i, aligned at the end)."""
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention: all heads computed at once from one QKV projection."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_dim = config.head_dim
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout

    def forward(self, x, *, causal: bool, scale: float, cache=None, layer=0, capture=False, head_mask=None):
        """Return (y, trace). ``trace`` is None unless ``capture``; ``cache`` is a KVCache or None."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim): each head sees its own slice of the channels
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # earlier tokens' keys and values come from the cache
            k, v = cache.write(layer, k, v)
        T_k = k.size(2)
        # one new query at the end may attend every key: its causal mask row is all True
        mask = causal_mask(T, T_k, x.device) if causal and T > 1 else None

        trace = None
        if capture:
            y, trace = self._explicit(q, k, v, mask, scale)
        else:
            drop = self.dropout if self.training else 0.0
            if mask is None or T == T_k:  # no mask, or the square causal mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=mask is not None, scale=scale)
            else:  # new queries attend to cached keys: the mask is aligned at the end
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, scale=scale)
        if head_mask is not None:  # ablation: zero (or weight) whole heads
            y = y * head_mask.view(1, -1, 1, 1).to(y.dtype)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y)), trace

    def _explicit(self, q, k, v, mask, scale):
        """Attention one stage at a time: the teaching path, and the source of every figure."""
        scores = q @ k.transpose(-2, -1)  # (B, nh, T, T_k): how well each query matches each key
        scaled = scores * scale  # keeps the variance ~1 so softmax does not saturate
        masked = scaled if mask is None else scaled.masked_fill(~mask, float("-inf"))
        weights = F.softmax(masked, dim=-1)  # each row: where this token looks, summing to 1
        out = self.attn_dropout(weights) @ v  # a weighted average of the values
        return out, AttentionTrace(q, k, v, scores, scaled, masked, weights, out)


class MLP(nn.Module):
    """Position-wise feed-forward: each token thinks about what it gathered."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Communication (attention) then computation (MLP); pre-LayerNorm residual when configured."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.residual = config.residual
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias) if config.residual else nn.Identity()
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias) if config.residual and config.mlp else nn.Identity()
        self.mlp = MLP(config) if config.mlp else None

    def forward(self, x, **attn_kw):
        a, trace = self.attn(self.ln_1(x), **attn_kw)
        x = x + a if self.residual else a
        if self.mlp is not None:
            m = self.mlp(self.ln_2(x))
            x = x + m if self.residual else m
        return x, trace


class GPT(nn.Module):
    """Token (+ position) embeddings -> n_layer blocks -> final LayerNorm -> lm_head."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.pos_emb == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * max(1, config.n_layer)))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.wte.weight.device

    def _run(self, idx, *, cache=None, capture=False, causal=None, attn_scale=None, head_mask=None):
        """The one forward pass. Returns (logits, traces, causal, scale).

        With a ``cache``, ``idx`` holds only the tokens after the cached ones; their keys and
        values are added to the cache.
        """
        B, T = idx.shape
        cfg = self.config
        offset = cache.length if cache is not None else 0
        if offset + T > cfg.block_size:
            raise ValueError(f"sequence of {offset + T} tokens exceeds block_size {cfg.block_size}")
        causal = cfg.causal if causal is None else bool(causal)
        scale = resolve_scale(cfg.attn_scale if attn_scale is None else attn_scale, cfg.head_dim)
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(offset, offset + T, device=idx.device))
        x = self.drop(x)
        traces = []
        for i, block in enumerate(self.h):
            x, trace = block(x, causal=causal, scale=scale, cache=cache, layer=i, capture=capture,
                             head_mask=None if head_mask is None else head_mask[i])
            traces.append(trace)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.ln_f(x))
        return logits, traces, causal, scale

    def forward(self, idx, targets=None, *, head_mask=None, causal=None, attn_scale=None):
        """Fast path. Returns (logits (B, T, vocab), mean cross-entropy loss or None).

        ``head_mask`` (n_layer, n_head) multiplies each head's output (0 = ablate the head);
        ``causal`` / ``attn_scale`` override the config for this call only, as in ``trace``.
        """
        logits, _, _, _ = self._run(idx, head_mask=head_mask, causal=causal, attn_scale=attn_scale)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def trace(self, idx, *, causal=None, attn_scale=None) -> ModelTrace:
        """Explicit path: run the model once and return every attention stage of every layer.

        ``causal`` / ``attn_scale`` override the config for this call only, so the trained
        weights can be seen with the mask removed or the scaling changed.
        """
        logits, traces, causal, scale = self._run(idx, capture=True, causal=causal, attn_scale=attn_scale)
        T = idx.size(1)
        mask = causal_mask(T, T, idx.device) if causal else torch.ones(T, T, dtype=torch.bool, device=idx.device)
        return ModelTrace(layers=traces, mask=mask, scale=scale, causal=causal, logits=logits)

    def generate(self, idx, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None,
                 generator: torch.Generator | None = None, use_cache=True):
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return the whole sequence.

        The context is at most ``block_size`` tokens: a longer prompt is cropped to its last
        ``block_size`` tokens. With the KV cache, each step feeds only the newest token and
        reuses the keys/values of earlier ones. Positions are absolute (learned), so once the
        window slides the cached keys would sit at the wrong positions: from then on the cache
        is dropped and every step re-encodes the last ``block_size`` tokens, which is exactly
        what the no-cache path computes, so greedy outputs are identical either way.
        Temperature 0 means greedy (argmax).
        """
        # inference mode skips all autograd bookkeeping (~10 % faster than no_grad here); the
        # clone makes the result an ordinary tensor again, usable anywhere, even as training input
        with torch.inference_mode():
            out = self._sample(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                               generator=generator, use_cache=use_cache)
        return out.clone()

    def _sample(self, idx, max_new_tokens, *, temperature, top_k, top_p, generator, use_cache):
        bs = self.config.block_size
        cache = KVCache(self.config, idx.size(0), idx.device, self.wte.weight.dtype) if use_cache else None
        for _ in range(max_new_tokens):
            if idx.size(1) > bs:
                cache = None  # the window slides: cached keys would sit at the wrong positions
            if cache is not None and cache.length:
                logits, _, _, _ = self._run(idx[:, -1:], cache=cache)
            else:  # no cache, or the first step: encode the last block_size tokens
                logits, _, _, _ = self._run(idx[:, -bs:], cache=cache)
            nxt = sample_next(logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                              generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
