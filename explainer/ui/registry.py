"""Read-only things every session shares: the corpus, tokenizers, shipped and untrained models.

Each is loaded once, lazily, on first use (never at build time, so the app starts fast),
and never modified afterwards: sessions only read them. A shipped checkpoint that is not
there yet (``shakespeare-char`` / ``shakespeare-gpt2``) falls back to the untrained model.
"""
from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field

from gpt.tokenizers import TOKENIZERS  # the tabs read the tokenizer list here

from . import limits

SHIPPED = {"char": "shakespeare-char", "gpt2": "shakespeare-gpt2"}


def once(fn):
    """functools.cache with one lock per argument tuple: concurrent first callers wait for one
    load, while calls for other arguments (and every cached call) never wait on it."""
    results, locks, guard = {}, {}, threading.Lock()

    @functools.wraps(fn)
    def wrapper(*args):
        if args in results:
            return results[args]
        with guard:
            lock = locks.setdefault(args, threading.Lock())
        try:
            with lock:
                if args not in results:
                    results[args] = fn(*args)
            return results[args]
        finally:  # the lock is only for the first load: a failed key keeps nothing
            with guard:
                if locks.get(args) is lock and not lock.locked():
                    del locks[args]

    def cache_clear():
        with guard:
            results.clear()
            locks.clear()

    wrapper.cache_clear = cache_clear
    wrapper.pending = lambda: len(locks)  # first loads under way (tests check that failures leave none)
    return wrapper


@dataclass
class Loaded:
    """A model ready to use, with what the UI says about it."""

    key: str
    model: object
    tokenizer: object
    label: str
    meta: dict = field(default_factory=dict)
    version: str = "0"  # changes whenever the weights may have changed (for caches)
    lock: object = None  # held while the weights may change (a session model in training)


@once
def shakespeare_text() -> str:
    from gpt import load_tiny_shakespeare

    return load_tiny_shakespeare()


@once
def tokenizer(name: str):
    """The char tokenizer of Tiny Shakespeare, or GPT-2 BPE."""
    from gpt import get_tokenizer

    return get_tokenizer("gpt2") if name == "gpt2" else get_tokenizer("char", corpus=shakespeare_text())


@once
def shakespeare_data(name: str):
    """Tiny Shakespeare as train/val tokens for one tokenizer (read-only, shared by all runs)."""
    from gpt import TokenData

    return TokenData.from_text(shakespeare_text(), tokenizer(name))


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# More kinds of model key (e.g. Hugging Face models) register a predicate here: key -> known?
KEY_KINDS: list = []


def known_key(key) -> bool:
    """Whether ``key`` names a model this registry (or a registered kind) can serve: no file is touched
    for a key that is not text, too long, or not a safe name."""
    if not isinstance(key, str) or not 0 < len(key) <= limits.MAX_KEY_CHARS or not SAFE_NAME.fullmatch(key):
        return False
    if key in {f"untrained-{t}" for t in TOKENIZERS} | {f"session-{t}" for t in TOKENIZERS} | set(SHIPPED.values()):
        return True
    return any(kind(key) for kind in KEY_KINDS) or key in checkpoint_names()


def check_key(key, choices: str = "") -> str:
    """``key`` if it is known, else a ValueError that quotes at most 60 characters of it."""
    if known_key(key):
        return key
    text = repr(key) if len(repr(key)) <= 60 else repr(key)[:60] + f"… ({len(repr(key)):,} characters)"
    hint = f"; choose one of: {choices}" if choices else ""
    raise ValueError(f"unknown model {text}{hint}.")


def checkpoint_names() -> list[str]:
    """Checkpoints on disk right now (a directory listing: cheap, so new ones show up)."""
    from gpt.checkpoint import list_checkpoints

    return list_checkpoints()


def has_shipped(tok: str) -> bool:
    return SHIPPED[tok] in checkpoint_names()


UNTRAINED_SEED = 1337


def untrained(tokenizer_name: str):
    """(model, tokenizer, meta) freshly initialised from a fixed seed: what 'before training' looks like.

    It has the shape and vocabulary of the shipped ``shakespeare-<tokenizer>`` model when
    that is present (so before/after compare like with like), else the gpt-tiny preset.
    """
    import torch
    from gpt import GPT, GPTConfig, preset_config
    from gpt.checkpoint import CHECKPOINTS_DIR, CheckpointError, read_meta
    from gpt.tokenizers import tokenizer_from_dict

    if tokenizer_name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer_name!r}; choose one of {', '.join(TOKENIZERS)}.")
    try:
        shipped = read_meta(CHECKPOINTS_DIR / SHIPPED[tokenizer_name])
        tok = tokenizer_from_dict(shipped["tokenizer"])
        config = GPTConfig.from_dict(shipped["config"])
    except CheckpointError:
        tok = tokenizer(tokenizer_name)
        config = preset_config("gpt-tiny", tok.vocab_size)
    torch.manual_seed(UNTRAINED_SEED)
    model = GPT(config).eval()
    meta = {"name": f"untrained-{tokenizer_name}", "step": 0, "seed": UNTRAINED_SEED, "config": config.to_dict()}
    return model, tok, meta


@once
def stock(key: str) -> Loaded:
    """A checkpoint from disk or an ``untrained-*`` model, loaded once and shared read-only."""
    from gpt.checkpoint import load_checkpoint

    if key.startswith("untrained-"):
        model, tok, meta = untrained(key.removeprefix("untrained-"))
    else:
        model, tok, meta = load_checkpoint(key, with_meta=True)
    if key.startswith("untrained-"):
        label = f"untrained ({tok.name}, random weights, seed {meta.get('seed')})"
    else:
        label = f"{key} (step {meta.get('step', '?')})"
    return Loaded(key, model, tok, label, meta, version=str(meta.get("weights_sha256", key))[:12])


@once
def untrained_bpc(tok: str) -> float:
    """Validation bits per character of the untrained model on Tiny Shakespeare."""
    from gpt.evaluate import evaluate

    m = stock(f"untrained-{tok}")
    return evaluate(m.model, shakespeare_data(tok), batches=limits.COMPARE_EVAL_BATCHES, batch_size=8).bpc


def default_model_key() -> str:
    """What Inspect shows first: the shipped char model, else the untrained one."""
    return SHIPPED["char"] if has_shipped("char") else "untrained-char"
