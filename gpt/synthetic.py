"""A synthetic corpus on which induction heads form quickly: random chunks, each said twice.

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
"""
from __future__ import annotations

import numpy as np

# the 65 distinct characters of Tiny Shakespeare, sorted (what CharTokenizer builds from it)
SHAKESPEARE_ALPHABET = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

DEFAULT_CHARS = 1_000_000
MIN_LEN, MAX_LEN = 6, 27


def repeated_chunk_ids(n_tokens: int, *, vocab_size: int = 65, min_len: int = MIN_LEN, max_len: int = MAX_LEN,
                       seed: int = 0) -> np.ndarray:
    """``n_tokens`` token ids (int64) in ``0..vocab_size-1``: random chunks, each repeated twice.

    Same arguments, same stream (numpy's PCG64 seeded with ``seed``). The last chunk is cut
    off at ``n_tokens``.
    """
    for name, v in (("n_tokens", n_tokens), ("vocab_size", vocab_size), ("min_len", min_len),
                    ("max_len", max_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}.")
    if vocab_size < 2:
        raise ValueError("vocab_size must be at least 2: one symbol cannot make a random chunk.")
    if min_len > max_len:
        raise ValueError(f"min_len ({min_len}) must be at most max_len ({max_len}).")
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


__all__ = ["SHAKESPEARE_ALPHABET", "repeated_chunk_ids", "repeated_chunks_text"]
