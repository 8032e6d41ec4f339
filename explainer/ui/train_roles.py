"""Head roles while a run trains: every head scored at each evaluation, and the induction corpus.

``RoleHistory.observe`` runs in the training thread, under the run's lock, right after the
optimiser step that evaluated: ``explainer.head_roles`` on the run's own model (one forward
pass on the seeded random-token probe, ~30-70 ms on the ladder's small models) plus Olsson et
al.'s in-context-learning score on the run's held-out text. The Train tab draws the history as
``role_history_figure`` next to the loss curve, and marks on the loss curve the first
evaluation at which some head's induction score exceeds ``INDUCTION_THRESHOLD``.

The ``induction`` corpus choice is ``gpt.synthetic.induction_text("passages")`` (chunks said
twice, half Tiny Shakespeare passages, half random characters), written once to the cache;
picking the ``induction`` preset also sets the recipe it grows an induction head under
(``gpt.synthetic.INDUCTION_TRAIN``: AdamW, lr 3e-3, no weight decay, batch 32).
"""
from __future__ import annotations

import threading
from dataclasses import replace

from explainer.figures.common import message_figure
from explainer.figures.roles import role_history_figure
from explainer.heads import NO_HEADS, first_induction_step, head_roles, in_context_learning_score

INDUCTION = "Repeated passages + random chunks (induction)"
INDUCTION_NAME = "repeated passages + random chunks"
INDUCTION_PRESET = "induction"
ICL_WINDOWS = 8  # held-out windows per in-context-learning score while training (cheap with a GPT-2 vocabulary)
TITLE = "Head roles during training"
_file_lock = threading.Lock()


def induction_corpus_file() -> str:
    """The synthetic induction corpus as a UTF-8 file in the data cache (written once, atomically)."""
    from gpt.data import atomic_write_bytes, cache_dir
    from gpt.synthetic import induction_text

    path = cache_dir() / "synthetic" / "induction-passages.txt"
    with _file_lock:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, induction_text("passages").encode("utf-8"))
    return str(path)


def corpus_note() -> str:
    return ("Chunks of 6-27 characters, each said twice: half Tiny Shakespeare passages, half random characters "
            "(1 M characters). The second copy can only be predicted by copying: an **induction head**. "
            "Pick the *induction* preset to watch one form.")


def induction_recipe(preset: str):
    """(iterations, learning rate, batch size, corpus) the ``induction`` preset trains under; else no change."""
    import gradio as gr
    from gpt.synthetic import INDUCTION_TRAIN

    if preset != INDUCTION_PRESET:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    r = INDUCTION_TRAIN
    return r["max_iters"], r["lr"], r["batch_size"], INDUCTION


def train_config(preset: str, config):
    """The app's TrainConfig, with the induction recipe's optimiser settings for the ``induction`` preset.

    ``INDUCTION_TRAIN``: plain AdamW (not Muon), no weight decay, a longer warm-up (capped by
    ``gpt.config.warmup_for``); lr and batch size stay the ones the learner chose.
    """
    if preset != INDUCTION_PRESET:
        return config
    from gpt.config import warmup_for
    from gpt.synthetic import INDUCTION_TRAIN

    return replace(config, optimizer="adamw", weight_decay=INDUCTION_TRAIN["weight_decay"],
                   warmup_iters=min(INDUCTION_TRAIN["warmup_iters"], warmup_for(config.max_iters)))


class RoleHistory:
    """[(step, HeadRoles)] of one run, one entry per evaluation, and the ICL score at each."""

    def __init__(self, model, data):
        cfg = model.config
        self.data = data
        self.has_heads = cfg.n_layer > 0 and cfg.n_head > 0 and cfg.block_size >= 4
        self.history: list = []  # (step, HeadRoles); appended by the training thread only
        self.icl: list = []  # (step, score or None)

    def observe(self, model, ev) -> None:
        """Score the heads if ``ev`` (the step just taken) was an evaluation. Call under the run's lock."""
        if ev is None or ev.val_loss is None or not self.has_heads:
            return
        roles = head_roles(model)
        try:
            icl = in_context_learning_score(model, self.data, batch=ICL_WINDOWS)[0]
        except ValueError:  # held-out text shorter than one context
            icl = None
        self.history.append((ev.step, roles))
        self.icl.append((ev.step, icl))

    @property
    def induction_step(self) -> int | None:
        return first_induction_step(list(self.history))

    def figure(self):
        """Small multiples (score vs step per head, colour = role), the ICL score in the title."""
        if not self.has_heads:
            return message_figure(TITLE, NO_HEADS)
        history, icl = list(self.history), list(self.icl)
        fig = role_history_figure(history, induction_step=first_induction_step(history))
        scored = [(s, v) for s, v in icl if v is not None]
        if scored:
            step, score = scored[-1]
            fig.update_layout(title_text=f"{fig.layout.title.text}<br><sup>in-context-learning score at step {step}: "
                                         f"{score:+.3f} nats (loss late in the context minus early; negative = "
                                         "the model uses its context)</sup>")
        return fig


def figure(run):
    """The roles chart of a run (None: before any run)."""
    if run is None or getattr(run, "roles", None) is None:
        return message_figure(TITLE, "Start a run: every head's role scores appear at each evaluation.")
    return run.roles.figure()


def induction_step(run) -> int | None:
    return None if run is None or getattr(run, "roles", None) is None else run.roles.induction_step


__all__ = ["INDUCTION", "RoleHistory", "figure", "induction_corpus_file", "induction_recipe", "induction_step",
           "train_config"]
