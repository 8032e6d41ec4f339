"""The logit lens: what the model would predict if it stopped after each block.

nostalgebraist (2020), "interpreting GPT: the logit lens": apply the final LayerNorm and the
unembedding to the residual stream after every layer. Here the residual stream is read at the
model's hook points (``hook_embed`` = token + position embeddings, then ``h.{i}.hook_resid_post``)
and pushed through the model's own ``ln_f`` and ``lm_head`` modules, so nothing is
re-implemented. After the last block the row is the model's own logits, which is the same
computation (``ln_f`` -> ``lm_head`` of the last block's output), not a second copy of it.
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


def _read(logits: torch.Tensor, k: int, final: torch.Tensor | None = None):
    """(top-k probabilities, their ids, probability of ``final``) for (R, T, V) logits; ``final`` (R, T)
    defaults to each row's own top-1. p = exp(logit - logsumexp) for just these tokens: no full softmax."""
    log_z = torch.logsumexp(logits, dim=-1, keepdim=True)
    top_logits, top_i = logits.topk(k, dim=-1)
    final = top_i[..., 0] if final is None else final
    final_p = (logits.gather(-1, final.unsqueeze(-1)) - log_z).exp().squeeze(-1)
    return (top_logits - log_z).exp(), top_i, final_p


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
    # the residual stream entering each block; the last row is the model's own logits, which are
    # exactly ln_f -> lm_head of the last block's output (h.{n_layer-1}.hook_resid_post)
    names = ["hook_embed"] + [f"h.{i}.hook_resid_post" for i in range(model.config.n_layer - 1)]
    idx = torch.tensor([ids], dtype=torch.long, device=model.device)
    with eval_mode(model):
        result, got = model.run_with_cache(idx, names, explicit=False)
        top_p, top_i, final_probs = _read(result.logits.float(), k)  # the model's own prediction: the last row
        final = top_i[0, :, 0]  # (T,) the model's own top-1 at each position
        if model.config.n_layer:  # the earlier rows, each read on its own (no (R, T, V) concatenation)
            earlier = model.lm_head(model.ln_f(torch.cat([got[n] for n in names]))).float()  # (R-1, T, V)
            rows = _read(earlier, k, final.expand(earlier.shape[0], -1))
            top_p, top_i, final_probs = (torch.cat([a, b]) for a, b in zip(rows, (top_p, top_i, final_probs)))
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
