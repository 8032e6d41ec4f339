"""Text in, text out: prompt handling around ``GPT.generate``.

An empty or whitespace-only prompt starts from the tokenizer's documented start token:
newline for the char model, ``<|endoftext|>`` for GPT-2 BPE (as the untrained samples do).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import eval_mode
from .sampling import check_sampling

MAX_NEW_TOKENS = 5000


@dataclass
class Generation:
    text: str  # the generated continuation only
    prompt_ids: list[int]  # what the model was conditioned on (after cropping / start token)
    new_ids: list[int]
    cropped: bool  # the prompt was longer than block_size and was cut to its last block_size tokens
    used_start_token: bool


def encode_prompt(tokenizer, prompt: str, block_size: int) -> tuple[list[int], bool, bool]:
    """(ids, cropped, used_start_token) for a prompt; raises UnknownCharactersError for the char model.

    An empty or whitespace-only prompt becomes the start token alone.
    """
    ids = tokenizer.encode(prompt) if prompt.strip() else []
    if not ids:
        return [tokenizer.start_id], False, True
    cropped = len(ids) > block_size
    return ids[-block_size:], cropped, False


def generate_text(model, tokenizer, prompt: str = "", *, max_new_tokens: int = 200, temperature: float = 0.8,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = 0,
                  use_cache: bool = True) -> Generation:
    """Sample a continuation of ``prompt``. Same seed, same text."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a whole number >= 1 (how many tokens to add), "
                         f"got {max_new_tokens!r}.")
    if max_new_tokens > MAX_NEW_TOKENS:
        raise ValueError(f"max_new_tokens {max_new_tokens} is too many; the limit is {MAX_NEW_TOKENS}.")
    if top_k is not None and top_k >= tokenizer.vocab_size:
        top_k = None  # keeping every token is the same as no top-k
    check_sampling(temperature, top_k, top_p)
    ids, cropped, used_start = encode_prompt(tokenizer, prompt or "", model.config.block_size)
    device = model.device
    g = None
    if seed is not None:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    with eval_mode(model):
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=g, use_cache=use_cache)
    new = out[0, len(ids):].tolist()
    return Generation(tokenizer.decode(new), ids, new, cropped, used_start)
