"""Synthetic corpora on which induction heads form quickly: chunks of text, each said twice.

The stream is a sequence of chunks; each chunk is ``length`` random characters (``length``
drawn uniformly from ``min_len..max_len``) written twice in a row. The first copy of a
chunk cannot be predicted (loss ln V per character); the second copy can, but only by
looking back: find the earlier occurrence of the current character and copy the one after
it. That is exactly what an induction head does (Olsson et al. 2022, "In-context learning
and induction heads"), so this corpus gives the mechanism a strong, pure training signal.
Varying the chunk length matters: with a fixed length a model can copy "the token L back"
by position alone, without an induction head.

The alphabet defaults to Tiny Shakespeare's 65 characters, so a model trained on this text
has the same char vocabulary as the Shakespeare models and accepts the same prompts.

Random chunks alone are a slow start: nothing in them rewards the previous-token head that an
induction head builds on, so the loss sits on the ln V plateau for a long time. The recipe
(``induction_text("passages")`` + ``INDUCTION_TRAIN`` + the ``induction`` preset) mixes in
Shakespeare passages, which do reward it (measured 2026-12-01 on the shared 2-core machine,
load average ~7: score 0.58 at step 1,000, 0.70 at step 1,250; random chunks only: 0.03 at
step 2,000; Shakespeare passages only: 0.45 at step 2,000; plain Tiny Shakespeare: 0.00).
"""
from __future__ import annotations

import numpy as np

from .data import load_tiny_shakespeare

# the 65 distinct characters of Tiny Shakespeare, sorted (what CharTokenizer builds from it)
SHAKESPEARE_ALPHABET = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

DEFAULT_CHARS = 1_000_000
MIN_LEN, MAX_LEN = 6, 27
INDUCTION_CORPORA = ("passages", "random")
PASSAGES_RANDOM_FRACTION = 0.5  # half the chunks random characters, half Shakespeare passages
# how to train the ``induction`` preset (TrainConfig fields): untied, no weight decay, a high
# constant lr (warmup-stable-decay)
INDUCTION_TRAIN = dict(max_iters=2000, batch_size=32, lr=3e-3, weight_decay=0.0, schedule="wsd", warmup_iters=100)


def _check_sizes(**sizes: int) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}.")
    if sizes["min_len"] > sizes["max_len"]:
        raise ValueError(f"min_len ({sizes['min_len']}) must be at most max_len ({sizes['max_len']}).")


def repeated_chunk_ids(n_tokens: int, *, vocab_size: int = 65, min_len: int = MIN_LEN, max_len: int = MAX_LEN,
                       seed: int = 0) -> np.ndarray:
    """``n_tokens`` token ids (int64) in ``0..vocab_size-1``: random chunks, each repeated twice.

    Same arguments, same stream (numpy's PCG64 seeded with ``seed``). The last chunk is cut
    off at ``n_tokens``.
    """
    _check_sizes(n_tokens=n_tokens, vocab_size=vocab_size, min_len=min_len, max_len=max_len)
    if vocab_size < 2:
        raise ValueError("vocab_size must be at least 2: one symbol cannot make a random chunk.")
    rng = np.random.default_rng(seed)
    # enough chunk lengths to cover n_tokens even if every chunk is as short as possible
    lengths = rng.integers(min_len, max_len + 1, size=n_tokens // (2 * min_len) + 1)
    parts = []
    total = 0
    for length in lengths:
        chunk = rng.integers(0, vocab_size, size=int(length))
        parts += [chunk, chunk]
        total += 2 * int(length)
        if total >= n_tokens:
            break
    return np.concatenate(parts)[:n_tokens].astype(np.int64)


def repeated_passages_text(source: str, n_chars: int = DEFAULT_CHARS, *, random_fraction: float = 0.0,
                           min_len: int = MIN_LEN, max_len: int = MAX_LEN, seed: int = 0) -> str:
    """Passages of ``source`` (e.g. Tiny Shakespeare), each said twice: ``n_chars`` characters.

    Each passage is ``min_len..max_len`` characters from a random place in ``source``; with
    probability ``random_fraction`` it is random characters of the source's alphabet instead.
    Unlike random characters, a passage's first copy has ordinary text statistics, which a
    previous-token head helps to predict, so that head forms early; the second copy then
    rewards an induction head that builds on it (Olsson et al.'s two-step circuit).
    """
    if not isinstance(source, str) or len(source) <= max_len:
        raise ValueError(f"source must be a text longer than max_len ({max_len}) characters.")
    if not 0.0 <= float(random_fraction) <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}.")
    _check_sizes(n_chars=n_chars, min_len=min_len, max_len=max_len)
    rng = np.random.default_rng(seed)
    alphabet = np.array(sorted(set(source)))
    parts: list[str] = []
    total = 0
    while total < n_chars:
        length = int(rng.integers(min_len, max_len + 1))
        if rng.random() < random_fraction:
            chunk = "".join(alphabet[rng.integers(0, len(alphabet), size=length)])
        else:
            start = int(rng.integers(0, len(source) - length))
            chunk = source[start:start + length]
        parts += [chunk, chunk]
        total += 2 * length
    return "".join(parts)[:n_chars]


def repeated_chunks_text(n_chars: int = DEFAULT_CHARS, *, alphabet: str = SHAKESPEARE_ALPHABET,
                         min_len: int = MIN_LEN, max_len: int = MAX_LEN, seed: int = 0) -> str:
    """The same stream as text over ``alphabet`` (default: Tiny Shakespeare's 65 characters).

    With the default million characters every character of the alphabet occurs, so
    ``get_tokenizer("char", corpus=text)`` has exactly ``len(alphabet)`` tokens.
    """
    chars = sorted(set(alphabet))
    if len(chars) < 2:
        raise ValueError("the alphabet needs at least 2 distinct characters.")
    ids = repeated_chunk_ids(n_chars, vocab_size=len(chars), min_len=min_len, max_len=max_len, seed=seed)
    return "".join(np.array(chars)[ids])


def induction_text(kind: str = "passages", n_chars: int = DEFAULT_CHARS, *, seed: int = 0) -> str:
    """The induction recipe's corpus: ``"passages"`` (Tiny Shakespeare passages and random chunks,
    half each, every chunk said twice) or ``"random"`` (random chunks only)."""
    if kind == "passages":
        return repeated_passages_text(load_tiny_shakespeare(), n_chars, random_fraction=PASSAGES_RANDOM_FRACTION,
                                      seed=seed)
    if kind == "random":
        return repeated_chunks_text(n_chars, seed=seed)
    raise ValueError(f"unknown induction corpus {kind!r}; choose one of {', '.join(INDUCTION_CORPORA)}.")


__all__ = ["INDUCTION_CORPORA", "INDUCTION_TRAIN", "induction_text", "SHAKESPEARE_ALPHABET", "repeated_chunk_ids",
           "repeated_chunks_text", "repeated_passages_text"]
