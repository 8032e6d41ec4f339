"""What each attention head does: role scores read from the model's own attention weights.

``head_roles(model)`` runs the model once on seeded probes of random tokens and reads every
head's attention pattern at the hook points ``h.{i}.attn.hook_pattern`` (the softmax the
model itself computed; nothing is recomputed here). Each role score is the mean attention
a head puts on one particular key, so it is a fraction of the head's attention, in [0, 1].

The probes need no corpus and work for any vocabulary (char, GPT-2 BPE, ...): ``PROBE_BATCH``
sequences, each ``L`` random token ids drawn from the model's vocabulary (distinct within a
sequence when the vocabulary has at least ``L`` tokens) followed by the same ``L`` ids again,
so a probe is ``2L`` tokens with ``L = min(PROBE_LENGTH, block_size // 2)``. Positions count
from 0; the first copy is positions ``0..L-1``, the second ``L..2L-1``.

The roles (templates as in TransformerLens ``head_detector.py``, which scores a head by the
attention mass its pattern puts on a template; induction and duplicate-token heads as defined
by Olsson et al. 2022, "In-context learning and induction heads"):

* ``previous-token``: attention from position i to i−1, averaged over the first copy's
  positions i = 1..L−1 (plain random tokens) and the batch.
* ``first-token``: attention from position i to position 0, averaged over the same positions.
  A head that parks most of its attention on token 0 is an "attention sink" (StreamingLLM,
  Xiao et al. 2023, arXiv 2309.17453): softmax must put its weight somewhere, and a head with
  nothing to look at puts it on the first token.
* ``duplicate-token``: attention from each position t of the second copy (t = L..2L−1) to
  t−L, the earlier occurrence of the same token.
* ``induction``: attention from each position t of the second copy to t−L+1, the token
  *after* the earlier occurrence of the current token (the diagonal at offset −(L−1)): the
  head that lets a model continue "A B ... A" with "B".

``in_context_learning_score`` is Olsson et al.'s in-context-learning score: the loss late in
the context minus the loss early in it, on held-out text (negative: later tokens are predicted
better because the model uses its context).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gpt.data import TokenData
from gpt.model import eval_mode

ROLES = ("previous-token", "first-token", "duplicate-token", "induction")
# what a head with a high score does, as a phrase that follows "layer 1, head 0 ..."
ROLE_PHRASES = {
    "previous-token": "looks at the previous token",
    "first-token": "looks at the first token (an attention sink)",
    "duplicate-token": "looks at the earlier copy of the current token",
    "induction": "looks at the token after the earlier copy of the current token (induction)",
}
PROBE_BATCH = 8  # random sequences per probe
PROBE_LENGTH = 32  # L: tokens per copy (capped at block_size // 2)
ICL_BATCH = 16  # held-out windows for the in-context-learning score
ICL_EARLY, ICL_LATE, ICL_CONTEXT = 50, 500, 512  # Olsson et al.: token 50 and token 500 of a 512 context
INDUCTION_THRESHOLD = 0.4  # a head with an induction score above this counts as an induction head
NO_HEADS = ("this model has no attention layers (e.g. the bigram preset), so it has no heads to give roles to; "
            "choose a model with attention.")


@dataclass
class HeadRoles:
    """Every head's role scores, its best role, and (given a corpus) the model's ICL score."""

    scores: dict[str, np.ndarray]  # role -> (n_layer, n_head), each in [0, 1]
    best_role: np.ndarray  # (n_layer, n_head) str: the role each head scores highest on
    best_score: np.ndarray  # (n_layer, n_head): that score
    icl_score: float | None  # loss late in context minus loss early in it (None: no corpus given)
    icl_positions: tuple[int, int] | None  # (early, late) context positions the ICL score compares
    probe_length: int  # L: each probe sequence is L random tokens, then the same L again
    probe_batch: int
    seed: int

    @property
    def n_layer(self) -> int:
        return self.best_score.shape[0]

    @property
    def n_head(self) -> int:
        return self.best_score.shape[1]

    def best_head(self, role: str) -> tuple[int, int, float]:
        """(layer, head, score) of the head that scores highest on ``role``."""
        check_role(role)
        s = self.scores[role]
        layer, head = np.unravel_index(int(np.argmax(s)), s.shape)
        return int(layer), int(head), float(s[layer, head])

    def describe(self, role: str) -> str:
        """The best head of ``role`` in words, e.g. "layer 1, head 0 looks at the previous token with 94% of
        its attention"."""
        layer, head, score = self.best_head(role)
        return f"layer {layer}, head {head} {ROLE_PHRASES[role]} with {score:.0%} of its attention"


def check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}.")


def probe_length(block_size: int) -> int:
    """L for a model with this context: ``min(PROBE_LENGTH, block_size // 2)``, so 2L tokens fit."""
    length = min(PROBE_LENGTH, int(block_size) // 2)
    if length < 2:
        raise ValueError(f"block_size {block_size} is too short for the role probes: they need at least 4 tokens.")
    return length


def repeated_probe(vocab_size: int, length: int, *, batch: int = PROBE_BATCH, seed: int = 0) -> torch.Tensor:
    """(batch, 2·length) token ids: ``length`` random ids, then the same ids again (seeded).

    Ids are distinct within a sequence when ``vocab_size >= length`` (each token then has exactly
    one earlier occurrence in the second copy), else drawn with replacement.
    """
    g = torch.Generator().manual_seed(int(seed))
    if vocab_size >= length:
        first = torch.stack([torch.randperm(vocab_size, generator=g)[:length] for _ in range(batch)])
    else:
        first = torch.randint(vocab_size, (batch, length), generator=g)
    return torch.cat([first, first], dim=1)


class _AllCaptured(Exception):
    """Raised by the last layer's pattern hook: every pattern is kept, the rest of the pass is not needed."""


def attention_patterns(model, idx: torch.Tensor) -> torch.Tensor:
    """(n_layer, B, n_head, T, T): the softmax weights the model computed, read at ``hook_pattern``.

    The pass stops right after the last layer's pattern (TransformerLens' ``stop_at_layer`` idea):
    the final LayerNorm and unembedding are skipped, which for a GPT-2 vocabulary (50,257 logits
    per token) is most of the cost of a forward pass.
    """
    names = [f"h.{i}.attn.hook_pattern" for i in range(model.config.n_layer)]
    got: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def fn(t: torch.Tensor) -> None:
            got[name] = t.detach()
            if name == names[-1]:
                raise _AllCaptured
        return fn

    with eval_mode(model), model.hooks({n: keep(n) for n in names}):
        try:
            model.run_with_cache(idx.to(model.device), [])
        except _AllCaptured:
            pass
    return torch.stack([got[n] for n in names]).float().cpu()


def role_scores(patterns: torch.Tensor, length: int) -> dict[str, np.ndarray]:
    """The four role scores from patterns (n_layer, B, n_head, 2L, 2L) of the repeated probe."""
    L = length

    def diagonal(offset: int) -> torch.Tensor:  # (n_layer, B, n_head, n): A[i, i + offset] for i = -offset..
        return torch.diagonal(patterns, offset=offset, dim1=-2, dim2=-1)

    picked = {
        "previous-token": diagonal(-1)[..., :L - 1],  # queries 1..L-1 -> keys 0..L-2
        "first-token": patterns[..., 1:L, 0],  # queries 1..L-1 -> key 0
        "duplicate-token": diagonal(-L),  # queries L..2L-1 -> keys 0..L-1
        "induction": diagonal(-(L - 1))[..., 1:],  # queries L..2L-1 -> keys 1..L
    }
    return {role: v.mean(dim=(1, 3)).clamp(0.0, 1.0).numpy().astype(np.float32) for role, v in picked.items()}


def _token_ids(corpus, vocab_size: int) -> torch.Tensor:
    if isinstance(corpus, TokenData):
        ids = corpus.val
    elif isinstance(corpus, (torch.Tensor, np.ndarray, list, tuple)):
        ids = torch.as_tensor(np.asarray(corpus))
    else:
        raise ValueError("corpus must be a TokenData (e.g. TokenData.from_text(text, tokenizer)) or a 1-D "
                         f"sequence of token ids, got {type(corpus).__name__}.")
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError("corpus token ids must be a 1-D sequence of whole numbers.")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"corpus token ids must be in 0..{vocab_size - 1} (this model's vocabulary); "
                         "was the corpus encoded with another tokenizer?")
    return ids.long()


def icl_positions(block_size: int) -> tuple[int, int]:
    """(early, late): Olsson's tokens 50 and 500 of a 512-token context, scaled to ``block_size``."""
    early = max(1, round(block_size * ICL_EARLY / ICL_CONTEXT))
    late = min(block_size - 1, round(block_size * ICL_LATE / ICL_CONTEXT))
    return early, late


@torch.no_grad()
def in_context_learning_score(model, corpus, *, seed: int = 0, batch: int = ICL_BATCH) -> tuple[float, tuple[int, int]]:
    """(score, (early, late)): mean loss at context position ``late`` minus at ``early``.

    Olsson et al. 2022 define the in-context-learning score as the loss of the 500th token in
    the context minus the loss of the 50th, averaged over examples; here the positions are
    scaled to the model's context (``icl_positions``) and each loss is the model's own
    cross-entropy averaged over ``batch`` windows of ``block_size`` tokens drawn (seeded) from
    the held-out text: ``corpus.val`` of a TokenData, or the given token ids. Negative means
    the model predicts better late in the context, i.e. it learns in context.
    """
    bs = model.config.block_size
    ids = _token_ids(corpus, model.config.vocab_size)
    if ids.numel() <= bs + 1:
        raise ValueError(f"the held-out text has {ids.numel()} tokens; the in-context-learning score needs more "
                         f"than block_size + 1 = {bs + 1}.")
    g = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(ids.numel() - bs - 1, (batch,), generator=g)
    window = ids[starts[:, None] + torch.arange(bs + 1)]
    early, late = icl_positions(bs)
    losses = []
    with eval_mode(model):
        for chunk in window.split(4):  # 4 windows at a time keeps a GPT-2-vocabulary logits tensor small
            x, y = chunk[:, :-1].to(model.device), chunk[:, 1:].to(model.device)
            logits, _ = model(x)
            picked = logits[:, [early, late]].float()
            losses.append(F.cross_entropy(picked.transpose(1, 2), y[:, [early, late]], reduction="none"))
    loss = torch.cat(losses).mean(0)
    return float(loss[1] - loss[0]), (early, late)


def head_roles(model, *, seed: int = 0, corpus=None, batch: int = PROBE_BATCH) -> HeadRoles:
    """Score every head on the four roles (see the module docstring for the exact definitions).

    One forward pass on ``repeated_probe(vocab_size, L, batch=batch, seed=seed)``; same model and
    seed, same scores. ``corpus`` (a TokenData or 1-D token ids) adds the in-context-learning
    score. A model without attention layers raises ValueError: it has no heads.
    """
    cfg = model.config
    if cfg.n_layer == 0:
        raise ValueError(NO_HEADS)
    length = probe_length(cfg.block_size)
    patterns = attention_patterns(model, repeated_probe(cfg.vocab_size, length, batch=batch, seed=seed))
    scores = role_scores(patterns, length)
    stacked = np.stack([scores[r] for r in ROLES])
    best = stacked.argmax(0)
    icl, positions = (None, None) if corpus is None else in_context_learning_score(model, corpus, seed=seed)
    return HeadRoles(scores=scores, best_role=np.array(ROLES)[best], best_score=stacked.max(0),
                     icl_score=icl, icl_positions=positions, probe_length=length, probe_batch=batch, seed=int(seed))


def first_induction_step(history, threshold: float = INDUCTION_THRESHOLD) -> int | None:
    """The first step of [(step, HeadRoles), ...] at which some head's induction score exceeds ``threshold``."""
    for step, roles in history:
        if float(roles.scores["induction"].max()) > threshold:
            return int(step)
    return None


__all__ = ["HeadRoles", "first_induction_step", "INDUCTION_THRESHOLD", "head_roles", "ROLES", "ROLE_PHRASES",
           "repeated_probe", "role_scores",
           "in_context_learning_score", "icl_positions", "probe_length"]
