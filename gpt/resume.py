"""Resumable training: the state a run needs to continue exactly, stored next to the weights.

    meta.json                          ... "train_state": "train-state-<sha12>.safetensors", its SHA-256, step
    train-state-<sha12>.safetensors    optimiser state, RNG states (torch CPU, the trainer's batch and
                                       eval generators), step, the run's settings and corpus hash

Every tensor (optimiser moments, RNG states) is a safetensors tensor; everything else (the
optimiser's param_groups, numbers, settings) is JSON in the safetensors header. Any
``torch.optim.Optimizer.state_dict()`` is stored this way, so AdamW and Muon alike. Never pickle.
The learning-rate schedule is a pure function of the step and the TrainConfig (``lr_at``), so
the step and the stored settings fix the schedule position.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .checkpoint import CheckpointError, load_checkpoint, read_hashed_file, read_meta, resolve_checkpoint
from .config import TrainConfig
from .data import TokenData, atomic_write_bytes, load_text
from .trainer import Trainer

STATE_FORMAT = "playattention-train-state"
STATE_VERSION = 1
STATE_PREFIX = "train-state-"
MAX_HEADER_BYTES = 50_000_000  # the JSON part: param_groups and settings, never this large


def encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON, each tensor moved into ``tensors`` and replaced by {"$tensor": key}.

    Tuples, dicts with non-string keys (an optimiser's state is keyed by parameter index) and
    non-finite floats are tagged so that ``decode`` gives back exactly the same structure.
    """
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"$tensor": key}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if isinstance(obj, tuple):
        return {"$tuple": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        return {"$dict": [[encode(k, tensors), encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in a training state")


def decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of ``encode``."""
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"$tensor"}:
        return tensors[obj["$tensor"]]
    if set(obj) == {"$float"}:
        return float(obj["$float"])
    if set(obj) == {"$tuple"}:
        return tuple(decode(v, tensors) for v in obj["$tuple"])
    if set(obj) == {"$dict"}:
        return {decode(k, tensors): decode(v, tensors) for k, v in obj["$dict"]}
    raise ValueError(f"unknown entry {sorted(obj)[:3]} in a training state")


def state_bytes(state: dict[str, Any]) -> bytes:
    """A trainer state (``Trainer.state()`` plus any JSON-able extras) as one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(state, tensors)
    meta = {"format": STATE_FORMAT, "format_version": str(STATE_VERSION),
            "state": json.dumps(skeleton, allow_nan=False)}
    return st_save(tensors, metadata=meta)


def state_from_bytes(blob: bytes) -> dict[str, Any]:
    """The state ``state_bytes`` wrote; anything else raises CheckpointError."""
    if len(blob) < 8:
        raise CheckpointError("the training state file is truncated.")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(len(blob) - 8, MAX_HEADER_BYTES):
        raise CheckpointError("the training state file is truncated or not a safetensors file.")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
        meta = header.get("__metadata__") or {}
        tensors = st_load(blob)  # safetensors: raw tensors behind a JSON header; no code runs
    except (UnicodeDecodeError, ValueError, AttributeError, SafetensorError, RuntimeError):
        raise CheckpointError("the training state file is not a valid safetensors file.") from None
    if meta.get("format") != STATE_FORMAT or meta.get("format_version") != str(STATE_VERSION):
        raise CheckpointError("the training state file is not a playAttention training state "
                              f"(format version {STATE_VERSION}).")
    try:
        return decode(json.loads(meta["state"]), tensors)
    except (KeyError, ValueError, TypeError):
        raise CheckpointError("the training state file's record is damaged.") from None


def save_train_state(trainer: Trainer, folder: str | Path, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the trainer's state into ``folder`` (atomically, under a new name that carries its
    hash) and return the fields that ``meta.json`` must carry to point at it.

    ``run`` is what rebuilding the run needs beyond the checkpoint (corpus path and hash, preset...).
    Call between steps, before anything else draws from the RNGs; ``save_checkpoint`` then
    writes meta.json and removes older state files.
    """
    blob = state_bytes({**trainer.state(), "run": run or {}})
    sha = hashlib.sha256(blob).hexdigest()
    name = f"{STATE_PREFIX}{sha[:12]}.safetensors"
    atomic_write_bytes(Path(folder) / name, blob)
    return {"train_state": name, "train_state_sha256": sha, "train_state_step": trainer.step}


def load_train_state(folder: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The training state a checkpoint folder carries, checked against the hash in its meta.json."""
    folder = Path(folder)
    meta = read_meta(folder) if meta is None else meta
    name = meta.get("train_state")
    if not name:
        raise CheckpointError(f"checkpoint {folder.name!r} carries no training state, so it cannot be resumed "
                              "(only a run stopped before its max-iters with --stop-at or Ctrl-C can). "
                              "Continue it with a fresh optimiser and schedule: --init-from.")
    blob = read_hashed_file(folder, name, meta.get("train_state_sha256"), "training state",
                            f"checkpoint {folder.name!r}", prefix=STATE_PREFIX)
    state = state_from_bytes(blob)
    if state.get("step") != meta.get("train_state_step"):
        raise CheckpointError(f"checkpoint {folder.name!r}: the training state is for step {state.get('step')}, "
                              f"the checkpoint says {meta.get('train_state_step')}.")
    return state


def corpus_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resume_run(folder: str | Path, *, stop_at: int | None = None, device: str | None = None):
    """``(Run, meta, state)`` continuing the stopped run in ``folder`` exactly: its weights,
    tokenizer, corpus (checked by hash), TrainConfig (only ``stop_at`` / ``device`` may change)
    and trainer state. The caller iterates ``run.trainer.run()``."""
    from .run import Run, read_loss_csv

    folder = resolve_checkpoint(folder)
    meta = read_meta(folder)
    state = load_train_state(folder, meta)
    if meta.get("dtype") != "float32":
        raise CheckpointError(f"checkpoint {folder.name!r} stores {meta.get('dtype')} weights; an exact resume "
                              "needs float32 (train without --half).")
    info = state.get("run") or {}
    text = load_text(info.get("data"))
    if corpus_sha256(text) != info.get("corpus_sha256"):
        raise CheckpointError(f"the corpus {info.get('data') or 'Tiny Shakespeare'} is not the text this run "
                              "trained on (SHA-256 differs); resuming needs the same corpus.")
    model, tok = load_checkpoint(folder)
    model.train()
    try:
        cfg = TrainConfig.from_dict({**state["train_config"], "stop_at": stop_at,
                                     **({"device": device} if device else {})})
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {folder.name!r}: its training settings cannot be used ({e}).") from None
    data = TokenData.from_text(text, tok)
    trainer = Trainer(model, data, cfg, tokenizer=tok)
    try:
        trainer.restore(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {folder.name!r}: its training state does not fit the model "
                              f"({str(e)[:200]}).") from None
    if (folder / "loss.csv").is_file():  # the loss curve continues where it stopped
        try:
            trainer.history = [e for e in read_loss_csv(folder / "loss.csv") if e.step <= trainer.step]
        except (OSError, ValueError, KeyError):
            trainer.history = []
    return Run(model, tok, data, trainer), meta, state


__all__ = ["save_train_state", "load_train_state", "resume_run", "state_bytes", "state_from_bytes",
           "encode", "decode", "corpus_sha256", "STATE_PREFIX"]
