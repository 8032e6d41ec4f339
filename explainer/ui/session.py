"""A visitor's own things, kept in ``gr.State``: the models they trained and cached traces.

Nothing here is shared between visitors; shared read-only models come from ``registry``.
Model keys used across the tabs and the API:

* ``shakespeare-char`` / ``shakespeare-gpt2`` (and any other checkpoint on disk),
* ``session-char`` / ``session-gpt2``: the model this session trained last with that tokenizer,
* ``untrained-char`` / ``untrained-gpt2``: random weights from a fixed seed.

A session holds at most one trained model per tokenizer (its latest run) and
``limits.TRACE_CACHE_SIZE`` traces. When the visitor's tab closes, the app's ``unload`` handler
calls ``release_session``, which stops their training and lets go of their models at once;
Gradio deletes the emptied state an hour later (``cleanup_session``, the state's delete callback).
"""
from __future__ import annotations

import dataclasses
import weakref
from collections import OrderedDict

from . import byom, limits, registry, upload

# Sessions that trained a model, by Gradio session hash, so the unload handler can find them.
LIVE: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()


class Session:
    def __init__(self):
        self.runs: dict[str, object] = {}  # tokenizer -> TrainingRun (the latest one)
        self.latest = None  # the run the Train tab shows
        self.traces: OrderedDict = OrderedDict()
        self.uploaded: registry.Loaded | None = None  # a checkpoint zip uploaded in Inspect (upload.adopt)
        self.upload_folder = None

    def add_run(self, run) -> None:
        """``run`` becomes the latest run and this tokenizer's model. Only the latest run can be continued,
        so the other tokenizer's run lets go of its optimiser state (~2x its weights) now."""
        from . import continue_run

        old = self.runs.get(run.spec.tokenizer)
        if old is not None and old is not run:
            old.stop()
            old.cleanup()
        for other in self.runs.values():
            if other is not old and other is not run and not other.running:
                continue_run.free(other)
        self.runs[run.spec.tokenizer] = run
        self.latest = run
        self.traces.clear()

    def drop_run(self, run) -> None:
        """Forget a run that failed (e.g. diverged), so its broken weights are never shown."""
        if self.runs.get(run.spec.tokenizer) is run:
            del self.runs[run.spec.tokenizer]
        if self.latest is run:
            self.latest = None
        run.cleanup()

    def release(self) -> None:
        """Stop any training and drop every model, trace and exported file of this session."""
        runs = {id(r): r for r in [*self.runs.values(), self.latest] if r is not None}.values()
        for run in runs:
            run.stop()
            run.cleanup()
        self.runs.clear()
        self.latest = None
        self.traces.clear()
        upload.release(self)

    def model(self, key: str) -> registry.Loaded:
        """Resolve a model key (see the module docstring) to a loaded model.

        The key is checked first (``registry.check_key``): nothing is loaded or looked up on disk for
        a key that is not a known or safe name.
        """
        if byom.is_hf_key(key):  # a GPT-2 from Hugging Face, shared by all sessions (byom)
            return byom.MODELS.get(key, wait_s=1.0)
        if key == upload.UPLOADED:
            if self.uploaded is None:
                raise ValueError("this session has not uploaded a checkpoint yet: upload one in the Inspect tab.")
            return self.uploaded
        registry.check_key(key, ", ".join(k for _, k in self.choices()))
        if key.startswith("session-"):
            tok = key.split("-", 1)[1]
            run = self.runs.get(tok)
            if run is None:
                raise ValueError(f"this session has not trained a {tok} model yet: start one in the Train tab.")
            state = "training" if run.running else run.status
            label = f"your {run.spec.preset} ({tok}, step {run.trainer.step}, {state})"
            return registry.Loaded(key, run.model, run.tokenizer, label, meta={}, version=run.version, lock=run.lock)
        shipped_tok = {name: tok for tok, name in registry.SHIPPED.items()}.get(key)
        if shipped_tok and key not in registry.checkpoint_names():  # not shipped yet: the untrained model serves
            stand_in = registry.stock(f"untrained-{shipped_tok}")
            return dataclasses.replace(stand_in, label=f"untrained {shipped_tok} model ({key} is not shipped yet)")
        if not (key.startswith("untrained-") or key in registry.checkpoint_names()):
            raise ValueError(f"unknown model {key!r}; choose one of: {', '.join(k for _, k in self.choices())}.")
        return registry.stock(key)

    def trained(self, tok: str) -> str | None:
        """The 'trained' model key for a tokenizer: this session's, else the shipped one, else None."""
        if tok in self.runs:
            return f"session-{tok}"
        return registry.SHIPPED[tok] if registry.has_shipped(tok) else None

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) for the model pickers."""
        out = [(f"{name} (checkpoint)", name) for name in registry.checkpoint_names()]
        out += [(f"your trained {tok} model ({run.spec.preset})", f"session-{tok}") for tok, run in self.runs.items()]
        out += [(f"untrained {tok} model", f"untrained-{tok}") for tok in registry.TOKENIZERS]
        out += byom.choices()
        if self.uploaded is not None:
            out.append((self.uploaded.label, upload.UPLOADED))
        return out

    def cached(self, key: tuple, compute):
        """LRU cache of expensive results (traces), so sliders never re-run the network."""
        if key in self.traces:
            self.traces.move_to_end(key)
            return self.traces[key]
        value = compute()
        self.traces[key] = value
        while len(self.traces) > limits.TRACE_CACHE_SIZE:
            self.traces.popitem(last=False)
        return value


def bind(session: Session, session_hash: str | None) -> None:
    """Remember which Gradio session (browser tab or API client) this Session belongs to."""
    if session_hash:
        LIVE[session_hash] = session


def release_session(session_hash: str | None) -> None:
    """The tab closed (or the API client left): stop its training and free its models now."""
    from . import cancels
    from .admission import GATE

    GATE.drop(session_hash or "")  # a training request still waiting for the slot gives up
    cancels.forget(session_hash or "")
    session = LIVE.pop(session_hash or "", None)
    if session is not None:
        session.release()


def cleanup_session(session) -> None:
    """gr.State delete callback (an hour after the tab closed): release whatever is left."""
    if isinstance(session, Session):
        session.release()
