"""The Train tab's "Continue training" controls: train the session's run, or an uploaded zip, N more steps.

Only widgets and wiring; what continuing means is ``continue_run``'s. ``/continue`` streams the same
outputs as ``/train`` (loss figure, progress, stats, sample, checkpoint zip, report); the loss curve
and the step count go on from where the run stopped.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from . import common, continue_run, limits, train_tab, upload
from .errors import friendly
from .gpu import gpu
from .session import Session

LATEST, UPLOADED = "my latest run", "my uploaded checkpoint"
SOURCES = {LATEST: "latest", UPLOADED: "uploaded"}
HELP = ("Stop keeps the run resumable: its optimiser state, step and random streams stay while this session "
        "lives. Continue it for more steps: within its planned iterations it is the same run (the weights equal "
        "an uninterrupted run's); beyond them the plan is extended and the learning rate follows the schedule of "
        "the new total. A checkpoint zip downloaded here carries that state: upload it to continue it "
        "(trained on Tiny Shakespeare, or on the .txt chosen above). A zip without it is refused.")


def continue_training(session: Session, source: str, steps, corpus: str, text_upload,
                      request: gr.Request = None):
    """Continue the session's run (or its uploaded checkpoint) for ``steps`` more steps, streaming."""
    if session is None:
        session = Session()
    corpus_path = corpus_name = None
    if corpus == train_tab.UPLOAD and text_upload:
        train_tab.check_upload_size(text_upload)
        corpus_path, corpus_name = str(text_upload), train_tab._file_name(text_upload)
    if source not in SOURCES:
        raise ValueError(f"continue must be one of: {', '.join(SOURCES)}; got {source!r}.")

    def prepare():
        run, new = continue_run.prepare(session, SOURCES[source], steps, corpus_path, corpus_name or "")
        if new:
            session.add_run(run)
        session.traces.clear()
        return run

    yield from train_tab.stream_in_slot(session, request, prepare, continue_run.restart)


def use_upload(session: Session, path):
    """The uploaded checkpoint zip becomes the session's ``uploaded`` model, ready to continue."""
    loaded = upload.adopt(session, path)
    state = "carries its training state: press Continue training" if loaded.meta.get("train_state") else \
        "carries no training state, so it cannot be continued here (Inspect can show it)"
    return gr.update(value=UPLOADED), f"Loaded **{loaded.label}**; it {state}."


@dataclass
class Widgets:
    source: gr.Radio
    steps: gr.Slider
    file: gr.File
    status: gr.Markdown
    button: gr.Button


def build() -> Widgets:
    """The controls (inside the Train tab's left column); ``wire`` connects them."""
    with gr.Accordion("Continue training", open=False, elem_id="train-continue-panel"):
        gr.Markdown(HELP, elem_classes="pa-note")
        with gr.Row():
            source = gr.Radio(list(SOURCES), value=LATEST, label="Continue")
            steps = common.slider(1, limits.MAX_ITERS, value=100, step=1, label="More steps")
        file = gr.File(label="Checkpoint zip to continue", file_types=[".zip"], type="filepath",
                       elem_id="train-upload-checkpoint")
        status = gr.Markdown(elem_id="train-continue-status")
        button = gr.Button("Continue training", elem_id="train-continue")
    return Widgets(source, steps, file, status, button)


def wire(w: Widgets, session, corpus, text_upload, outputs):
    """Wire the controls; returns the ``/continue`` event (Stop cancels it like ``/train``)."""
    w.file.upload(friendly(use_upload), [session, w.file], [w.source, w.status], api_visibility="private",
                  concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    return w.button.click(gpu(limits.MAX_TRAIN_SECONDS + 60)(friendly(continue_training)),
                          [session, w.source, w.steps, corpus, text_upload], outputs, api_name="continue",
                          concurrency_id="train", concurrency_limit=None, show_progress="minimal")
