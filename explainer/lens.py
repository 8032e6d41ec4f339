"""The logit lens: what the model would predict if it stopped after each block.

nostalgebraist (2020), "interpreting GPT: the logit lens": apply the final LayerNorm and the
unembedding to the residual stream after every layer. Here the residual stream is read at the
model's hook points (``hook_embed`` = token + position embeddings, then ``h.{i}.hook_resid_post``)
and pushed through the model's own ``ln_f`` and ``lm_head`` modules, so nothing is
re-implemented. The pass stops at ``hook_resid_final`` (the last block's output, entering
``ln_f``): the last row is ``ln_f`` -> ``lm_head`` of it, which is what the model's forward does
next, so it is the model's own prediction (tests/test_logit_lens.py checks it against the logits).
TransformerLens offers the same as ``accumulated_resid`` + ``apply_ln_to_stack``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpt.generate import encode_prompt
from gpt.model import eval_mode

EMPTY_PROMPT = "the prompt is empty: type some text for the logit lens to read (one token at least)."


@dataclass
class LogitLens:
    """Top-k next tokens read from the residual stream at every depth, for one prompt.

    Rows: 0 = the embeddings alone, r = after block r-1, n_layer = after the last block (the
    model's own prediction). Shapes: R = n_layer + 1 rows, T = prompt tokens, k.
    """

    prompt: str
    ids: list[int]
    tokens: list[str]  # display strings of the prompt tokens
    top_ids: np.ndarray  # (R, T, k) int: the k most probable next tokens, most probable first
    top_probs: np.ndarray  # (R, T, k) their probabilities (softmax of ln_f -> lm_head at that depth)
    top_tokens: np.ndarray  # (R, T, k) object: display strings of top_ids
    final_ids: np.ndarray  # (T,) the model's own top-1 next token at each position (top_ids[-1, :, 0])
    final_probs: np.ndarray  # (R, T) probability each row gives to final_ids
    row_names: list[str]  # "embeddings", "after block 0", ...
    cropped: bool  # the prompt was longer than block_size: its last block_size tokens were used

    @property
    def n_rows(self) -> int:
        return self.top_ids.shape[0]


def _check_k(k, vocab_size: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= vocab_size:
        raise ValueError(f"k must be a whole number from 1 to the vocabulary size {vocab_size}, got {k!r}.")
    return int(k)


TOPK_BLOCK = 256  # vocabulary block of the two-stage top-k
SAFE_EXP = 60.0  # |max logit| below this: float32 exp(logit) is finite and the top token's is not 0


def _topk(x: torch.Tensor, k: int):
    """``x.topk(k, dim=-1)`` for (T, V) logits, in two stages when V is large.

    The k largest values of a row lie in the k blocks (of ``TOPK_BLOCK`` ids) with the largest
    block maxima, so: block maxima (one cheap pass), their top k, then the top k of those k blocks
    (and the ids after the last whole block). Same values as ``torch.topk``; ids differ only
    between exactly equal logits. On a GPT-2 vocabulary it is several times faster on a CPU.
    """
    T, V = x.shape
    blocks = V // TOPK_BLOCK
    if blocks < 4 * k:
        return x.topk(k, dim=-1)
    best = x[:, :blocks * TOPK_BLOCK].unflatten(-1, (blocks, TOPK_BLOCK)).amax(-1).topk(k, dim=-1).indices
    offsets = torch.arange(TOPK_BLOCK, device=x.device)
    cand = (best[..., None] * TOPK_BLOCK + offsets).flatten(1)  # (T, k * TOPK_BLOCK)
    if blocks * TOPK_BLOCK < V:
        cand = torch.cat([cand, torch.arange(blocks * TOPK_BLOCK, V, device=x.device).expand(T, -1)], dim=1)
    values, where = x.gather(1, cand).topk(k, dim=-1)
    return values, cand.gather(1, where)


class _Captured(Exception):
    """Raised at ``hook_resid_final``: every residual the lens reads is kept, the model's own
    unembedding is done here instead (the same ``ln_f`` -> ``lm_head``, once per row)."""


def _residuals(model, idx: torch.Tensor) -> torch.Tensor:
    """(R, T, C): the residual stream at the embeddings, after each block but the last, and entering
    ``ln_f`` (``hook_resid_final``, the last block's output), read at the model's hook points."""
    n = model.config.n_layer
    names = (["hook_embed"] + [f"h.{i}.hook_resid_post" for i in range(n - 1)] if n else []) + ["hook_resid_final"]
    got: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def fn(t: torch.Tensor) -> None:
            got[name] = t.detach()
            if name == "hook_resid_final":
                raise _Captured
        return fn

    with model.hooks({name: keep(name) for name in names}):
        try:
            model.run_with_cache(idx, [])
        except _Captured:
            pass
    return torch.cat([got[name] for name in names])


def _read_rows(model, resid: torch.Tensor, k: int):
    """(top-k probabilities, their ids, probability of the final row's top-1) per row of ``resid``.

    One (T, V) logits buffer is reused for every row (a GPT-2 row is 64 x 50,257 floats; a fresh
    tensor per row costs more in page faults than the matmul). Softmax is monotonic, so the
    top-k come from the raw logits, and only k + 1 probabilities per position are formed:
    p = exp(logit - log Z), log Z = m + log(sum(exp(logit - m))) with m the row's max (the shift
    by m is skipped when |m| < ``SAFE_EXP``: nothing can overflow), the exp taken in place. The last row (entering ``ln_f``) is read first: its top-1 is the model's
    own prediction, whose probability every row reports.
    """
    h = model.ln_f(resid)  # (R, T, C)
    weight, bias = model.lm_head.weight, model.lm_head.bias
    buf = torch.empty(h.shape[1], weight.shape[0], dtype=h.dtype, device=h.device)
    top_p, top_i, final_p = [], [], []
    final = None
    for row in reversed(h):
        torch.mm(row, weight.t(), out=buf)
        if bias is not None:
            buf.add_(bias)
        logits, ids = _topk(buf, k)
        final = ids[:, 0] if final is None else final
        picked = buf.gather(-1, final[:, None])
        m = logits[:, :1]
        if float(m.abs().max()) < SAFE_EXP:  # exp(logit) neither overflows nor loses the top: no shift needed
            log_z = buf.exp_().sum(-1, keepdim=True).log_()
        else:
            log_z = buf.sub_(m).exp_().sum(-1, keepdim=True).log_().add_(m)
        top_p.append((logits - log_z).exp().float())
        top_i.append(ids)
        final_p.append((picked - log_z).exp().squeeze(-1).float())
    return (torch.stack(top_p[::-1]), torch.stack(top_i[::-1]), torch.stack(final_p[::-1]))


@torch.no_grad()
def logit_lens(model, tokenizer, prompt: str, *, k: int = 5) -> LogitLens:
    """The logit lens of ``prompt``: top-``k`` next tokens at the embeddings and after each block.

    The prompt is encoded as in ``trace_prompt`` (``gpt.generate.encode_prompt``; a prompt longer
    than block_size keeps its last block_size tokens, ``cropped``). An empty prompt raises
    ValueError; characters the char vocabulary lacks raise ``gpt.UnknownCharactersError``.
    """
    k = _check_k(k, model.config.vocab_size)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(EMPTY_PROMPT)
    ids, cropped, _ = encode_prompt(tokenizer, prompt, model.config.block_size)
    idx = torch.tensor([ids], dtype=torch.long, device=model.device)
    with eval_mode(model):
        top_p, top_i, final_probs = _read_rows(model, _residuals(model, idx), k)
    final = top_i[-1, :, 0]  # (T,) the model's own top-1 at each position
    top_ids = top_i.cpu().numpy()
    strings = tokenizer.token_strings(top_ids.reshape(-1).tolist())
    return LogitLens(
        prompt=prompt, ids=list(ids), tokens=list(tokenizer.token_strings(ids)), top_ids=top_ids,
        top_probs=top_p.cpu().numpy().astype(np.float32),
        top_tokens=np.array(strings, dtype=object).reshape(top_ids.shape),
        final_ids=final.cpu().numpy(), final_probs=final_probs.cpu().numpy().astype(np.float32),
        row_names=["embeddings"] + [f"after block {i}" for i in range(model.config.n_layer)], cropped=cropped,
    )


__all__ = ["LogitLens", "logit_lens", "EMPTY_PROMPT"]
