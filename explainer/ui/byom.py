"""Bring your own model: GPT-2-family models in the Hugging Face layout, shared by every session.

The menu lists every folder under ``checkpoints/hf/`` holding a ``config.json`` (with
``model.safetensors``) and every repo id in ``PLAYATTENTION_HF_MODELS`` (comma-separated, e.g.
``openai-community/gpt2``), under the key ``hf-<folder name>`` / ``hf-<owner>--<name>`` (a safe
name, as the registry's keys must be: ``hf-openai-community--gpt2``). Each is loaded
once per process, in a background thread (``playattention-hf-<n>``), and then shared read-only
by all sessions (eval mode, no gradients; never copied per visitor). Until it is ready, asking
for it says it is loading; a model that cannot be loaded says why (gpt.load_pretrained's message).
At most ``MAX_HF_MODELS`` such models and ``MAX_HF_PARAMS`` parameters each are held, so the
process's memory stays bounded.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from gpt.checkpoint import CHECKPOINTS_DIR

from . import limits

HF_PREFIX = "hf-"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")  # as registry keys
ENV = "PLAYATTENTION_HF_MODELS"
MAX_HF_MODELS = limits.MAX_HF_MODELS  # GPT-2 models held at once (the caps live in limits, for the README)
MAX_HF_PARAMS = limits.MAX_HF_PARAMS


def hf_root() -> Path:
    return CHECKPOINTS_DIR / "hf"


def env_repo_ids() -> list[str]:
    """The repo ids listed in PLAYATTENTION_HF_MODELS that look like repo ids (others are skipped)."""
    from gpt.hf import REPO_ID

    raw = os.environ.get(ENV, "")
    return [r for r in dict.fromkeys(s.strip() for s in raw.split(",")) if r and REPO_ID.match(r)]


def folders(root: Path | None = None) -> dict[str, Path]:
    """name -> folder for each directory under ``root`` with a config.json (a listing: cheap)."""
    root = hf_root() if root is None else root
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if SAFE_NAME.match(p.name) and p.is_dir() and (p / "config.json").is_file()}


def sources(root: Path | None = None) -> dict[str, str]:
    """key -> what gpt.load_pretrained is given: a folder path, or a repo id (a local folder of
    the same key wins)."""
    out = {HF_PREFIX + name: str(path) for name, path in folders(root).items()}
    for rid in env_repo_ids():
        out.setdefault(HF_PREFIX + rid.replace("/", "--"), rid)
    return out


def display_name(key: str) -> str:
    """``hf-openai-community--gpt2`` -> ``openai-community/gpt2``."""
    return key.removeprefix(HF_PREFIX).replace("--", "/")


@dataclass
class _Slot:
    status: str  # "loading" | "ready" | "failed"
    loaded: object = None  # registry.Loaded once ready
    error: str = ""
    thread: threading.Thread | None = None


class HFModels:
    """The process's Hugging Face models: started once, loaded in the background, shared read-only."""

    def __init__(self, root: Path | None = None):
        self.root = root
        self.slots: dict[str, _Slot] = {}
        self.lock = threading.Lock()

    def keys(self) -> list[str]:
        return list(sources(self.root))

    def status(self, key: str) -> str:
        """'not loaded', 'loading', 'ready' or 'failed'."""
        slot = self.slots.get(key)
        return slot.status if slot else "not loaded"

    def label(self, key: str) -> str:
        name = display_name(key)
        state = {"loading": ", loading…", "failed": ", cannot be loaded", "ready": ""}.get(self.status(key), "")
        return f"{name} (GPT-2, Hugging Face{state})"

    def start(self, key: str) -> None:
        """Begin loading ``key`` in a background thread, unless it is loading or loaded already."""
        src = sources(self.root).get(key)
        if src is None:
            raise ValueError(f"unknown Hugging Face model {key!r}; put a GPT-2 folder under checkpoints/hf/ or "
                             f"list its repo id in {ENV}.")
        with self.lock:
            if key in self.slots:  # loading, loaded, or failed (``forget`` lets it try again)
                return
            held = sum(1 for s in self.slots.values() if s.status in ("loading", "ready"))
            if held >= MAX_HF_MODELS:
                self.slots[key] = _Slot("failed", error=f"this server holds at most {MAX_HF_MODELS} GPT-2 models "
                                                        "at once; use one of those that are loaded.")
                return
            slot = self.slots[key] = _Slot("loading")
            slot.thread = threading.Thread(target=self._load, args=(key, src, slot), daemon=True,
                                           name=f"playattention-hf-{len(self.slots)}")
            slot.thread.start()

    def _load(self, key: str, src: str, slot: _Slot) -> None:
        from gpt.checkpoint import CheckpointError
        from gpt.hf import load_pretrained

        from .registry import Loaded

        try:
            model, tok = load_pretrained(src, max_params=MAX_HF_PARAMS)  # size checked from the config first
            model.requires_grad_(False)  # shared read-only: nothing may train it in place
            c = model.config
            meta = {"name": key, "source": "huggingface", "config": c.to_dict(), "n_params": model.num_params()}
            label = f"{display_name(key)} (GPT-2 from Hugging Face, {c.n_layer} layers × {c.n_head} heads)"
            slot.loaded = Loaded(key, model, tok, label, meta, version=key)
            slot.status = "ready"
        except (CheckpointError, ValueError, OSError) as e:
            slot.error, slot.status = str(e), "failed"
        except Exception as e:  # noqa: BLE001 - a background thread must record, never die silently
            slot.error, slot.status = f"loading failed ({type(e).__name__}).", "failed"

    def get(self, key: str, wait_s: float = 0.0):
        """The loaded model (``registry.Loaded``); starts loading it if needed. While it loads (after
        waiting up to ``wait_s``) or if it failed: ValueError with a message saying so."""
        self.start(key)
        slot = self.slots[key]
        if slot.status == "loading" and wait_s > 0 and slot.thread is not None:
            slot.thread.join(wait_s)
        if slot.status == "ready":
            return slot.loaded
        name = display_name(key)
        if slot.status == "loading":
            raise ValueError(f"{name} is still loading (a GPT-2 small takes about 10 s); try again in a moment.")
        raise ValueError(f"{name} cannot be loaded: {slot.error}")

    def forget(self, key: str) -> None:
        """Drop a failed slot, so that the next ``start`` tries again (e.g. after the files were added)."""
        with self.lock:
            if key in self.slots and self.slots[key].status == "failed":
                del self.slots[key]


MODELS = HFModels()  # the process's own


def is_hf_key(key: str) -> bool:
    """A key of a Hugging Face model the menu lists now (a listing: nothing is loaded)."""
    return isinstance(key, str) and key.startswith(HF_PREFIX) and key in sources()


def choices() -> list[tuple[str, str]]:
    """(label, key) for the model pickers; listing them starts their background loads."""
    out = []
    for key in MODELS.keys():
        MODELS.start(key)
        out.append((MODELS.label(key), key))
    return out


__all__ = ["HFModels", "MODELS", "HF_PREFIX", "ENV", "MAX_HF_MODELS", "MAX_HF_PARAMS", "sources", "folders",
           "env_repo_ids", "is_hf_key", "choices", "display_name"]
