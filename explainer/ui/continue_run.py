"""Continue training: a stopped (or finished) run of the Train tab, or an uploaded checkpoint zip. No Gradio.

A run that ends keeps its optimiser state (``pause``): ``Trainer.restore(Trainer.state())`` pins the
RNG states of that step, so nothing another visitor's run does to torch's global RNG in between changes
what the continued steps draw. ``plan`` asks for N more steps:

* within the run's planned iterations it is the same run, stopped at ``step + N`` (``stop_at``): a run
  stopped and continued to its plan ends with the weights of the uninterrupted run;
* beyond them the plan is extended (``max_iters = step + N``): the learning rate then follows the
  schedule of the new total (warm-up is not repeated; for ``wsd`` it rises back from its decayed value).

The state costs about two copies of the weights (AdamW moments; Muon one for its matrices) and is
freed (``free``) when the run is replaced, its session ends or expires. The Train tab's zip carries it
(``train-state-<sha12>.safetensors``, ``gpt.resume``), so an uploaded zip continues exactly; a
checkpoint without it (a finished CLI run, an older zip) is refused here: train it on with
``python -m gpt.train --init-from``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import limits, registry, training

TRAINED_ON = "corpus_sha256"


def pause(run) -> bool:
    """Keep ``run`` resumable as it ends (called under its lock, between steps); False if it cannot be."""
    t = run.trainer
    if run.status == "failed" or t.mid_step or not t.history:
        return False
    t.restore(t.state())  # RNG states of this step, applied when the run next starts
    return True


def resumable(run) -> bool:
    return run is not None and not run.running and bool(run.trainer.optimizer.state) and bool(run.events)


def free(run) -> None:
    """Let go of the optimiser state (the run was replaced or its session ended)."""
    with run.lock:
        run.trainer.optimizer.state.clear()


def check_steps(steps) -> int:
    return limits._whole("more steps", steps, 1, limits.MAX_ITERS)


def plan(trainer, steps: int) -> None:
    """The next ``run()`` takes ``steps`` more steps (see the module docstring)."""
    cfg, target = trainer.config, trainer.step + steps
    if target > limits.MAX_ITERS:
        raise ValueError(f"this run is at step {trainer.step:,}; {steps:,} more would pass the "
                         f"{limits.MAX_ITERS:,}-step limit: ask for at most {limits.MAX_ITERS - trainer.step:,}.")
    if target <= cfg.max_iters:
        trainer.config = dataclasses.replace(cfg, stop_at=None if target == cfg.max_iters else target)
    else:
        trainer.config = dataclasses.replace(cfg, max_iters=target, stop_at=None)


def restart(run) -> None:
    """Train the paused ``run`` on in its own thread (``plan`` first)."""
    run.stop_requested, run.error = False, None
    run.finished.clear()
    run.news.clear()
    run.start()


def run_info(run) -> dict:
    """What continuing ``run`` from its zip needs beyond the checkpoint: its settings and corpus (by hash)."""
    from gpt.resume import corpus_sha256

    text = registry.shakespeare_text() if run.spec.corpus_path is None else _read(run.spec.corpus_path)
    return {"data": None, TRAINED_ON: corpus_sha256(text), "corpus_name": run.spec.corpus_name,
            "preset": run.spec.preset, "tokenizer": run.spec.tokenizer, "hp": run.spec.hp}


def _read(path) -> str:
    from gpt import load_text

    return load_text(path)


def state_files(run, folder: Path) -> dict:
    """Write the paused run's training state into the export ``folder``; meta.json's fields ({} if none)."""
    from gpt.resume import save_train_state

    if not resumable(run):
        return {}
    return save_train_state(run.trainer, folder, run_info(run))


def _check_config(cfg) -> None:
    """An uploaded state's settings must be within what this server runs."""
    bad = [f"{k} {v}" for k, v, hi in (("batch_size", cfg.batch_size, limits.MAX_BATCH),
                                       ("max_iters", cfg.max_iters, limits.MAX_ITERS),
                                       ("eval_iters", cfg.eval_iters, limits.EVAL_ITERS),
                                       ("sample_tokens", cfg.sample_tokens, limits.SAMPLE_TOKENS)) if v > hi]
    if cfg.compile or cfg.device not in ("auto", "cpu"):
        bad.append(f"device {cfg.device} / compile {cfg.compile}")
    if bad:
        raise ValueError(f"the uploaded checkpoint's training settings are outside this server's limits "
                         f"({', '.join(bad)}).")


def from_checkpoint(folder: Path, steps: int, corpus_path: str | None = None, corpus_name: str = ""):
    """A new TrainingRun continuing the checkpoint in ``folder`` exactly (weights, optimiser, step,
    schedule, RNG states, loss curve), planned for ``steps`` more steps; ValueError saying why not.

    Nothing in the zip names a file to read: the corpus is Tiny Shakespeare or the Train tab's uploaded
    .txt, whichever has the SHA-256 the state records.
    """
    from gpt import CheckpointError, TrainConfig, Trainer, load_checkpoint
    from gpt.config import PRESETS
    from gpt.resume import corpus_sha256, load_train_state
    from gpt.run import read_loss_csv
    from gpt.tokenizers import TOKENIZERS

    try:
        state = load_train_state(folder)
    except CheckpointError as e:
        text = str(e).replace(f"checkpoint {folder.name!r}", "the uploaded checkpoint")
        if "carries no training state" in text:
            text = ("the uploaded checkpoint carries no training state (optimiser, step, random streams), so it "
                    "cannot be continued exactly here. Zips downloaded from this Train tab carry it; train a "
                    "checkpoint without it on with: python -m gpt.train --init-from DIR.")
        raise ValueError(text) from None
    info = state.get("run") or {}
    if info.get("preset") not in PRESETS or info.get("tokenizer") not in TOKENIZERS or not isinstance(
            info.get("hp"), dict):
        raise ValueError("the uploaded checkpoint's training state was not written by this app's Train tab "
                         "(no preset, tokenizer and settings): continue it with python -m gpt.train --resume.")
    try:
        hp = limits.check_train(**{k: info["hp"].get(k) for k in ("iters", "lr", "batch_size", "block_size",
                                   "n_layer", "n_head", "n_embd", "dropout", "seed", "sample_every")})
        cfg = TrainConfig.from_dict({**state["train_config"]})
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"the uploaded checkpoint's training settings cannot be used here ({e}).") from None
    _check_config(cfg)
    want = info.get(TRAINED_ON)
    name = str(info.get("corpus_name") or "its corpus")[:80]
    if corpus_path and corpus_sha256(_read(corpus_path)) == want:
        spec = training.TrainSpec(info["tokenizer"], info["preset"], hp, str(corpus_path), corpus_name)
    elif corpus_sha256(registry.shakespeare_text()) == want:
        spec = training.TrainSpec(info["tokenizer"], info["preset"], hp)
    else:
        raise ValueError(f"the uploaded checkpoint was trained on {name!r}, not on the corpus chosen here: "
                         "choose 'My uploaded .txt' with that same text to continue it.")
    run = training.TrainingRun(spec)  # the same preset, tokenizer and corpus; its weights come next
    model, tok = load_checkpoint(folder)
    if model.config.to_dict() != run.model.config.to_dict() or tok.to_dict() != run.tokenizer.to_dict():
        run.cleanup()
        raise ValueError("the uploaded checkpoint's model or vocabulary differs from what its training state "
                         "describes; it cannot be continued.")
    run.model.load_state_dict(model.state_dict())
    run.trainer = Trainer(run.model, run.data, cfg, tokenizer=run.tokenizer)
    try:
        run.trainer.restore(state)
    except (KeyError, TypeError, ValueError, RuntimeError):
        run.cleanup()
        raise ValueError("the uploaded checkpoint's optimiser state does not fit its model; it cannot be "
                         "continued.") from None
    try:
        run.trainer.history = [e for e in read_loss_csv(folder / "loss.csv") if e.step <= run.trainer.step]
    except (OSError, ValueError, KeyError, IndexError):
        run.trainer.history = []
    from gpt.run import sample

    run.sample_before = sample(run.model, run.tokenizer, hp["seed"], limits.SAMPLE_TOKENS)
    plan(run.trainer, steps)
    return run


def prepare(session, source: str, steps, corpus_path: str | None = None, corpus_name: str = ""):
    """``(run, new)``: the run to continue for ``steps`` more steps, planned; ``new`` if it must join the
    session. ``source`` is "latest" (the Train tab's run) or "uploaded" (the session's uploaded zip)."""
    steps = check_steps(steps)
    if source == "uploaded":
        folder = getattr(session, "upload_folder", None)
        if session is None or session.uploaded is None or folder is None:
            raise ValueError("no checkpoint uploaded yet: upload the zip the Train tab downloads (here or in "
                             "Inspect), then press Continue training.")
        return from_checkpoint(Path(folder) / "checkpoint", steps, corpus_path, corpus_name), True
    run = session.latest if session is not None else None
    if run is None:
        raise ValueError("there is no run to continue yet: press Start training first (or upload a checkpoint "
                         "zip and continue that).")
    if run.running:
        raise ValueError("this run is still training: press Stop first, then Continue training.")
    if not resumable(run):
        raise ValueError("this run cannot be continued (it failed, or stopped before its first step): "
                         "start a new one.")
    plan(run.trainer, steps)
    return run, False


__all__ = ["pause", "free", "plan", "restart", "prepare", "from_checkpoint", "state_files", "resumable"]
