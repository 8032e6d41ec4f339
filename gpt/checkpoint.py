"""Checkpoints: weights in safetensors, everything else in JSON. Never pickle.

A checkpoint is a folder::

    meta.json                   config, tokenizer, training config, step, losses, format
    model-<sha12>.safetensors   the weights; the name carries the hash of its content
    train-state-<sha12>.safetensors   (optional) optimiser + RNG state of a stopped run (gpt.resume)

Saving is crash-safe: the new weights file is written under a new name (temp file +
rename), then ``meta.json`` is replaced atomically to point at it, and only then are
old weight files removed. A crash at any moment leaves either the old or the new
checkpoint complete, never a mix; ``meta.json`` records the weights' SHA-256, which is
checked on load.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import GPTConfig
from .data import atomic_write_bytes
from .model import GPT
from .tokenizers import tokenizer_from_dict

FORMAT = "playattention-checkpoint"
FORMAT_VERSION = 1
META = "meta.json"
ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = ROOT / "checkpoints"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_META_BYTES = 1_000_000


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match; the message says which and what to do."""


def _state_for_saving(model: GPT, half: bool) -> dict[str, torch.Tensor]:
    state = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_weights:
            continue  # tied to wte.weight: stored once
        t = t.detach().to("cpu").contiguous()
        state[name] = t.half() if half and t.is_floating_point() else t
    return state


def save_checkpoint(model: GPT, tokenizer, path: str | Path, *, half: bool = False, **meta: Any) -> Path:
    """Write ``model`` + ``tokenizer`` (+ any JSON-able ``meta``: step, losses, train config...)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} is a file; a checkpoint is a folder: choose a folder name that is not taken.")
    path.mkdir(parents=True, exist_ok=True)
    blob = st_save(_state_for_saving(model, half))
    sha = hashlib.sha256(blob).hexdigest()
    weights = f"model-{sha[:12]}.safetensors"
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(), "tokenizer": tokenizer.to_dict(),
        "weights": weights, "weights_sha256": sha, "dtype": "float16" if half else "float32",
        "n_params": model.num_params(), **meta,
    }
    text = json.dumps(record, indent=2, allow_nan=False)
    atomic_write_bytes(path / weights, blob)
    atomic_write_bytes(path / META, text.encode())
    for old in [*path.glob("model-*.safetensors"), *path.glob("train-state-*.safetensors")]:
        if old.name not in (weights, record.get("train_state")):  # gpt.resume's optimiser/RNG state
            old.unlink(missing_ok=True)
    for stale in path.glob(".*.tmp"):  # left by a writer that was killed mid-write
        stale.unlink(missing_ok=True)
    return path


def user_checkpoint_path(name: str) -> Path:
    """Where a user-saved checkpoint called ``name`` goes: checkpoints/user/<name>.

    Only plain names are accepted (letters, digits, ``_ . -``; no slashes, no ``..``), so a
    name can never point outside that folder.
    """
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise CheckpointError(f"invalid checkpoint name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                              "starting with a letter or digit (no slashes).")
    return CHECKPOINTS_DIR / "user" / name


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A shipped/saved checkpoint name (looked up in checkpoints/ and checkpoints/user/) or a path."""
    s = str(name_or_path)
    if NAME_RE.match(s) and not Path(s).exists():
        for base in (CHECKPOINTS_DIR, CHECKPOINTS_DIR / "user"):
            if (base / s / META).is_file():
                return base / s
        raise CheckpointError(f"no checkpoint named {s!r}; available: {', '.join(list_checkpoints()) or 'none'}.")
    return Path(s)


def list_checkpoints() -> list[str]:
    """Names of the shipped checkpoints and the user's saved ones."""
    names = []
    for base in (CHECKPOINTS_DIR, CHECKPOINTS_DIR / "user"):
        if base.is_dir():
            names += sorted(p.name for p in base.iterdir() if (p / META).is_file())
    return names


def read_json_object(path: Path, limit: int, label: str, kind: str, *, corrupt: str = "") -> dict[str, Any]:
    """A small JSON object from ``path``, reading at most ``limit`` bytes of it (a huge file is refused, not read).
    ``label`` names the file in messages, ``kind`` what it should be; ``corrupt`` ends the invalid-JSON one."""
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise CheckpointError(f"{label} is too large to be {kind}.")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{label} is not valid JSON ({e}){corrupt}.") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{label} is not a JSON object.")
    return obj


def read_hashed_file(folder: Path, name: Any, sha256: Any, what: str, where: str, *, prefix: str = "") -> bytes:
    """The bytes of the ``.safetensors`` file a meta.json names in ``folder``: refused unless the name is a bare
    file name (no path), the file is there and its SHA-256 is the recorded one. ``what``/``where`` word messages."""
    if (not isinstance(name, str) or "/" in name or "\\" in name or not name.startswith(prefix)
            or not name.endswith(".safetensors")):
        raise CheckpointError(f"{where} names an invalid {what} file {name!r}.")
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{where}: its {what} file {name} is missing.")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise CheckpointError(f"{where}: its {what} file {name} is corrupt or truncated (SHA-256 mismatch).")
    return blob


def read_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON record, checked for shape but without loading weights."""
    path = Path(path)
    meta_path = path / META if path.is_dir() else path
    if path.is_file() and path.name != META:
        raise CheckpointError(f"{path} is a file; a checkpoint is a folder holding {META} and a .safetensors file.")
    if not meta_path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: {META} is missing.")
    meta = read_json_object(meta_path, MAX_META_BYTES, str(meta_path), "checkpoint metadata",
                            corrupt="; the checkpoint is corrupt")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a playAttention checkpoint.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format version {meta.get('format_version')!r} is not supported "
                              f"(this version reads {FORMAT_VERSION}).")
    return meta


def load_checkpoint(name_or_path: str | Path, device: str | torch.device = "cpu", *, with_meta: bool = False):
    """Return ``(model, tokenizer)`` (plus ``meta`` if asked), model in eval mode, float32.

    ``name_or_path`` is a checkpoint folder, or the name of one under ``checkpoints/``
    (or ``checkpoints/user/``).
    """
    path = resolve_checkpoint(name_or_path)
    meta = read_meta(path)
    try:
        config = GPTConfig.from_dict(meta["config"])
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid config or tokenizer: {e}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model expects {config.vocab_size}; the vocabulary does not match.")
    weights = meta.get("weights", "")
    blob = read_hashed_file(path, weights, meta.get("weights_sha256"), "weights", f"checkpoint {path}")
    wpath = path / weights
    try:
        state = st_load(blob)  # safetensors: a JSON header + raw tensors; no code runs
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{wpath} is not a valid safetensors file ({e}).") from None
    model = GPT(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if config.tie_weights:
        state.setdefault("lm_head.weight", state.get("wte.weight"))
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: weights do not match its config ({str(e)[:300]}).") from None
    model.to(device).eval()
    return (model, tokenizer, meta) if with_meta else (model, tokenizer)
