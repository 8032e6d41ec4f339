"""A decoder-only GPT in one readable file.

Every formula appears once. Attention has two paths in the same module:

* the fast path, ``F.scaled_dot_product_attention`` (training and sampling), and
* the explicit path, which computes QK^T, the scaling, the mask and the softmax
  step by step (the teaching path, and the source of every figure).

Any intermediate can be read or replaced at a named hook point (TransformerLens style):
``h.0.attn.hook_pattern``, ``h.3.hook_resid_post``, ... (``GPT.hook_names()`` lists them).
``GPT.trace`` and ``GPT.run_with_cache`` capture through them; head ablation replaces
``h.N.attn.hook_z``. Tests check that both attention paths give the same logits.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .sampling import sample_next

# the stages of attention the explicit path exposes per layer, in order
ATTENTION_STAGES = ("q", "k", "v", "scores", "scaled", "masked", "pattern", "z")


def attention_scale(config: GPTConfig, override: float | None = None) -> float:
    """The factor that multiplies QK^T: ``override``, else the config's ``attn_scale``, else 1/√d_k.

    1/√d_k keeps the variance of q·k near 1 whatever the head size, so the softmax does not
    saturate (Vaswani et al. 2017, §3.2.1). A model with no heads has nothing to scale: 1.0.
    """
    if override is not None:
        return float(override)
    if config.attn_scale is not None:
        return float(config.attn_scale)
    return config.head_dim ** -0.5 if config.head_dim > 0 else 1.0


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put ``model`` in eval mode for the block, then restore whatever mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class HookPoint(nn.Identity):
    """A named place in the forward pass. Without hooks it returns its input untouched (and
    costs one module call); a forward hook on it can read the tensor or return a replacement."""


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
    weights: torch.Tensor  # (B, nh, T, T) softmax(masked): each row sums to 1 (hook_pattern)
    out: torch.Tensor  # (B, nh, T, hd) weights @ v, the head outputs before the projection (hook_z)


@dataclass
class ModelTrace:
    """What one explicit forward pass captured: per-layer attention and the logits."""

    layers: list[AttentionTrace]
    mask: torch.Tensor  # (T, T) bool, True where attention is allowed
    scale: float  # the factor applied to QK^T in this pass
    default_scale: float  # the model's own factor (what ``scale`` is when nothing is overridden)
    causal: bool
    logits: torch.Tensor  # (B, T, vocab_size)


class RunResult(NamedTuple):
    """What one forward pass returns: the logits and the attention settings it used."""

    logits: torch.Tensor  # (B, T, vocab_size)
    causal: bool
    scale: float


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
        for stage in ATTENTION_STAGES:  # hook_q, hook_k, ..., hook_pattern, hook_z
            setattr(self, f"hook_{stage}", HookPoint())

    def forward(self, x, *, causal: bool, scale: float, cache=None, layer=0, explicit=False):
        """Attention of every token to the ones it may see; ``cache`` is a KVCache or None."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim): each head sees its own slice of the channels
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # earlier tokens' keys and values come from the cache
            k, v = cache.write(layer, k, v)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        T_k = k.size(2)
        # one new query at the end may attend every key: its causal mask row is all True
        mask = causal_mask(T, T_k, x.device) if causal and T > 1 else None
        if explicit:
            y = self._explicit(q, k, v, mask, scale)
        else:
            drop = self.dropout if self.training else 0.0
            if mask is None or T == T_k:  # no mask, or the square causal mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=mask is not None, scale=scale)
            else:  # several new queries attend to cached keys: the mask is aligned at the end
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, scale=scale)
        y = self.hook_z(y)  # (B, nh, T, hd): each head's output, before the heads are mixed
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def _explicit(self, q, k, v, mask, scale):
        """Attention one stage at a time: the teaching path, and the source of every figure."""
        scores = self.hook_scores(q @ k.transpose(-2, -1))  # (B, nh, T, T_k): how well each query matches each key
        scaled = self.hook_scaled(scores * scale)  # keeps the variance ~1 so softmax does not saturate
        masked = self.hook_masked(scaled if mask is None else scaled.masked_fill(~mask, float("-inf")))
        weights = self.hook_pattern(F.softmax(masked, dim=-1))  # each row: where this token looks, summing to 1
        return self.attn_dropout(weights) @ v  # a weighted average of the values


class MLP(nn.Module):
    """Position-wise feed-forward: each token thinks about what it gathered."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        # exact GELU, or GPT-2's tanh approximation ("gelu_new" in Hugging Face configs)
        self.gelu = nn.GELU(approximate="tanh" if config.activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Communication (attention) then computation (MLP); pre-LayerNorm residual when configured."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.residual = config.residual
        eps = config.layer_norm_eps
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias) if config.residual else nn.Identity()
        self.attn = CausalSelfAttention(config)
        self.ln_2 = (nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
                     if config.residual and config.mlp else nn.Identity())
        self.mlp = MLP(config) if config.mlp else None
        self.hook_resid_pre = HookPoint()  # (B, T, C) the residual stream entering the block
        self.hook_attn_out = HookPoint()  # (B, T, C) what attention adds to it
        self.hook_mlp_out = HookPoint()  # (B, T, C) what the MLP adds to it
        self.hook_resid_post = HookPoint()  # (B, T, C) the residual stream leaving the block

    def forward(self, x, **attn_kw):
        x = self.hook_resid_pre(x)
        a = self.hook_attn_out(self.attn(self.ln_1(x), **attn_kw))
        x = x + a if self.residual else a
        if self.mlp is not None:
            m = self.hook_mlp_out(self.mlp(self.ln_2(x)))
            x = x + m if self.residual else m
        return self.hook_resid_post(x)


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
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.hook_embed = HookPoint()  # (B, T, C) token (+ position) embeddings: the residual stream at the start
        self.hook_resid_final = HookPoint()  # (B, T, C) the residual stream entering the final LayerNorm
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

    # -- hook points -------------------------------------------------------------------------------

    def hook_names(self) -> list[str]:
        """Every hook point's name, in forward order (``hook_embed``, ``h.0.hook_resid_pre``, ...)."""
        return [name for name, m in self.named_modules() if isinstance(m, HookPoint)]

    @contextlib.contextmanager
    def hooks(self, fns: dict[str, Callable[[torch.Tensor], torch.Tensor | None]]):
        """Inside the block, each forward pass calls ``fns[name](tensor)`` at that hook point;
        a returned tensor replaces the one flowing on, ``None`` leaves it unchanged."""
        points = dict(self.named_modules())
        unknown = [n for n in fns if not isinstance(points.get(n), HookPoint)]
        if unknown:
            raise ValueError(f"unknown hook point(s) {unknown}; e.g. 'h.0.attn.hook_pattern', "
                             "'h.0.hook_resid_post' (GPT.hook_names() lists them all).")
        handles = [points[n].register_forward_hook(lambda _m, _in, out, fn=fn: fn(out)) for n, fn in fns.items()]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_cache(self, idx, names: Iterable[str], *, explicit: bool = True, causal=None,
                       attn_scale=None) -> tuple[RunResult, dict[str, torch.Tensor]]:
        """One forward pass (no gradients) that keeps the tensors at the named hook points.

        ``explicit`` uses the step-by-step attention path, without which ``hook_scores`` ...
        ``hook_pattern`` are never reached (the fused kernel does not form the matrix).
        """
        store: dict[str, torch.Tensor] = {}

        def keep(name):
            return lambda t: store.__setitem__(name, t.detach())

        with torch.no_grad(), self.hooks({n: keep(n) for n in names}):
            result = self._run(idx, explicit=explicit, causal=causal, attn_scale=attn_scale)
        return result, store

    # -- forward passes ------------------------------------------------------------------------------

    def _run(self, idx, *, cache=None, explicit=False, causal=None, attn_scale=None) -> RunResult:
        """The one forward pass.

        With a ``cache``, ``idx`` holds only the tokens after the cached ones; their keys and
        values are added to the cache.
        """
        B, T = idx.shape
        cfg = self.config
        offset = cache.length if cache is not None else 0
        if offset + T > cfg.block_size:
            raise ValueError(f"sequence of {offset + T} tokens exceeds block_size {cfg.block_size}")
        causal = cfg.causal if causal is None else bool(causal)
        scale = attention_scale(cfg, attn_scale)
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(offset, offset + T, device=idx.device))
        x = self.drop(self.hook_embed(x))
        for i, block in enumerate(self.h):
            x = block(x, causal=causal, scale=scale, cache=cache, layer=i, explicit=explicit)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.ln_f(self.hook_resid_final(x)))
        return RunResult(logits, causal, scale)

    def forward(self, idx, targets=None, *, causal=None, attn_scale=None):
        """Fast path. Returns (logits (B, T, vocab), mean cross-entropy loss or None).

        ``causal`` / ``attn_scale`` override the config for this call only, as in ``trace``.
        """
        logits = self._run(idx, causal=causal, attn_scale=attn_scale).logits
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
        names = [f"h.{i}.attn.hook_{s}" for i in range(self.config.n_layer) for s in ATTENTION_STAGES]
        result, got = self.run_with_cache(idx, names, causal=causal, attn_scale=attn_scale)
        layers = [AttentionTrace(*(got[f"h.{i}.attn.hook_{s}"] for s in ATTENTION_STAGES))
                  for i in range(self.config.n_layer)]
        T = idx.size(1)
        mask = causal_mask(T, T, idx.device) if result.causal else torch.ones(T, T, dtype=torch.bool, device=idx.device)
        return ModelTrace(layers=layers, mask=mask, scale=result.scale, default_scale=attention_scale(self.config),
                          causal=result.causal, logits=result.logits)

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
                logits = self._run(idx[:, -1:], cache=cache).logits
            else:  # no cache, or the first step: encode the last block_size tokens
                logits = self._run(idx[:, -bs:], cache=cache).logits
            nxt = sample_next(logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                              generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
