"""Train tab: pick a corpus, tokenizer and rung of the ladder, then watch the loss fall live.

``/train`` streams (loss figure, progress, stats, sample, checkpoint zip, report, head-roles chart) after
each evaluation, sample, or at most every ``limits.UI_UPDATE_S`` seconds; the run itself trains
in its own thread (``training.TrainingRun``). Stop, cancelling the job or closing the tab halts it
at the next step and waits for the thread to end; the model stays as it is and becomes this
session's model for the other tabs. ``/export`` stops the session's run if needed and
returns the checkpoint zip and the report.
"""
from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from explainer.figures.training import loss_curves_figure
from gpt.accel import device_status
from gpt.config import PRESETS
from gpt.tokenizers import TOKENIZERS

from . import admission, cancels, common, expiry, limits, run_files, train_roles, training
from .errors import friendly
from .gpu import gpu
from .session import Session, bind
from .training import TrainingRun, TrainSpec

SHAKESPEARE, UPLOAD = "Tiny Shakespeare", "My uploaded .txt"
STOP_WAIT_S = 120
WAIT_POLL_S = 1.0  # a waiting request shows its place in line this often
TRAINING_EVENTS = ("train", "continue")  # the api_names a cancel of which stops a run


def preset_values(preset: str) -> dict:
    """The ladder preset's shape, as the sliders show it (bigram has no layers or heads)."""
    from gpt.config import PRESET_NOTES, PRESETS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    p = PRESETS[preset]
    return dict(block_size=p["block_size"], n_layer=p["n_layer"], n_head=p["n_head"], n_embd=p["n_embd"],
                dropout=p.get("dropout", 0.0), note=PRESET_NOTES.get(preset, ""))


def progress_html(run: TrainingRun | None) -> str:
    if run is None:
        return "<div class='pa-progress'><div class='pa-bar' style='width:0%'></div></div>" \
               "<div class='pa-progress-label'>not started</div>"
    step, total = run.trainer.step, run.trainer.config.max_iters
    pct = 100.0 * step / max(1, total)
    states = {"training": "training…", "done": "finished", "stopped": "stopped — model kept as it is",
              "time limit": f"stopped at the {limits.MAX_TRAIN_SECONDS // 60}-minute limit — model kept"}
    state = states.get(run.status, run.status)
    return (f"<div class='pa-progress'><div class='pa-bar' style='width:{pct:.1f}%'></div></div>"
            f"<div class='pa-progress-label'>step {step:,} / {total:,} · {pct:.0f}% · {html.escape(state)}</div>")


def stats_markdown(run: TrainingRun | None) -> str:
    if run is None:
        return "Press **Start** to train. The loss curve, tokens/s and samples appear here as it runs."
    evs = run.events
    parts = [f"**{run.model.num_params():,}** parameters on {device_status(run.trainer.device)}"]
    if evs:
        ev = evs[-1]
        cfg = run.trainer.config
        tps = ev.step * cfg.batch_size * run.model.config.block_size / max(ev.elapsed_s, 1e-9)
        parts += [f"**{tps:,.0f}** tokens/s", f"**{ev.elapsed_s:,.1f}** s elapsed",
                  f"train loss **{ev.train_loss:.3f}**"]
        vals = [e for e in evs if e.val_loss is not None]
        if vals:
            parts.append(f"val loss **{vals[-1].val_loss:.3f}** (step {vals[-1].step})")
    if run.exported:
        parts.append(f"final val **{run.exported.meta['val_bpc']:.3f}** bits/char")
    return " · ".join(parts)


def latest_sample(run: TrainingRun | None) -> str:
    if run is None:
        return ""
    for ev in reversed(run.events):
        if ev.sample is not None:
            return f"[step {ev.step}]\n{ev.sample}"
    return f"[before training, step 0]\n{run.sample_before}"


def render(run: TrainingRun | None, session: Session, files: bool = False):
    """The Train tab's outputs for the run's current state."""
    fig = loss_curves_figure(run.events if run else [], title=run.title() if run else None,
                             induction_step=train_roles.induction_step(run))
    zip_path = report = None
    if files and run is not None and run.exported:
        zip_path, report = run.exported.zip_path, run.exported.report_path
    return (fig, progress_html(run), stats_markdown(run), latest_sample(run), zip_path, report, session,
            train_roles.figure(run))


def make_spec(corpus, upload, tokenizer, preset, iters, lr, batch_size, block_size, n_layer, n_head,
              n_embd, dropout, seed, sample_every) -> TrainSpec:
    """Check every input against the limits; a specific ValueError for anything out of range."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}.")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}.")
    hp = limits.check_train(iters=iters, lr=lr, batch_size=batch_size, block_size=block_size, n_layer=n_layer,
                            n_head=n_head, n_embd=n_embd, dropout=dropout, seed=seed, sample_every=sample_every)
    if corpus == UPLOAD:
        if not upload:
            raise ValueError("choose a .txt file to upload first (or pick Tiny Shakespeare).")
        if not Path(str(upload)).is_file():
            raise ValueError(f"{_file_name(upload)} is no longer on the server (uploads are kept "
                             f"{limits.session_ttl_s() / 60:g} minutes): upload it again.")
        check_upload_size(upload)
        return TrainSpec(tokenizer, preset, hp, corpus_path=str(upload), corpus_name=_file_name(upload))
    if corpus == train_roles.INDUCTION:
        return TrainSpec(tokenizer, preset, hp, corpus_path=train_roles.induction_corpus_file(),
                         corpus_name=train_roles.INDUCTION_NAME)
    return TrainSpec(tokenizer, preset, hp)


def _file_name(path) -> str:
    return Path(str(path)).name


def train(session: Session, corpus: str, upload, tokenizer: str, preset: str, iters: int, lr: float,
          batch_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float,
          seed: int, sample_every: int, request: gr.Request = None):
    """Train a model from the ladder, streaming the live loss curve; Stop keeps the model.

    The request waits for the training slot here (``admission``), never in Gradio's queue.
    """
    if session is None:
        session = Session()
    spec = make_spec(corpus, upload, tokenizer, preset, iters, lr, batch_size, block_size, n_layer, n_head,
                     n_embd, dropout, seed, sample_every)

    def prepare() -> TrainingRun:
        run = TrainingRun(spec)
        session.add_run(run)
        return run

    yield from stream_in_slot(session, request, prepare, TrainingRun.start)


def stream_in_slot(session: Session, request, prepare, start):
    """Wait for the training slot (showing the place in line), make the run (``prepare()``), ``start`` it and
    stream it to its end, then export it. Shared by /train and /continue.

    A cancel that overtook this request (``cancels``: sent before Gradio started it) ends it before it
    trains, or stops the run at its next update."""
    cancelled = cancels.watcher(request, TRAINING_EVENTS)

    def make_room() -> None:  # before waiting in line (a full disk is said at once) and again once admitted
        if not expiry.make_room(expiry.demo_of(request), limits.MAX_RUN_FILES_BYTES, keep=owner):
            raise ValueError(f"the server's disk for training runs is full ({training.disk_used() / 1e6:,.0f} of "
                             f"{limits.MAX_RUN_DISK_BYTES / 1e6:,.0f} MB, other visitors' runs still in use): "
                             "try again in a few minutes.")

    if cancelled():
        return
    owner = request.session_hash if request is not None and request.session_hash else f"local-{id(session)}"
    make_room()
    ticket = admission.GATE.enter(owner)
    try:
        place = ticket.wait(0)
        while place:
            if cancelled():
                return
            yield waiting(place)
            place = ticket.wait(WAIT_POLL_S)
        if cancelled():
            return
        make_room()
        run = prepare()
        ticket.hold(run)
        bind(session, request.session_hash if request else None)
        run.cancelled = cancelled  # the training thread stops at its next step once the request is cancelled
        start(run)
        try:
            yield render(run, session)
            for _ in run.updates(limits.UI_UPDATE_S):
                if cancelled():
                    break
                yield render(run, session)
        finally:  # also when the job is cancelled or the tab closes: no training thread outlives the handler
            run.stop()
    finally:
        ticket.release()
    if cancelled() or session.latest is not run or run.files_retired:  # the tab closed, the job was cancelled
        return  # or the session expired meanwhile: nobody to export for (Stop exports in its own handler)
    if run.error is not None:
        session.drop_run(run)
        raise run.error
    if run.status == "time limit":
        gr.Warning(f"Training reached the {limits.MAX_TRAIN_SECONDS // 60}-minute limit for one run; "
                   "the model is kept as it is.")
    try:
        run.export()
    except training.SessionEnded:  # the session's cleanup ran while the export was being written
        return
    yield render(run, session, files=True)


def waiting(place: int):
    """The Train tab's outputs while the request waits for the training slot."""
    ahead = "you are next" if place == 1 else f"{place - 1} runs are ahead of you"
    text = (f"Waiting for the training slot ({limits.TRAIN_CONCURRENCY} run trains at a time; {ahead}). "
            "Training starts by itself; keep this tab open.")
    bar = ("<div class='pa-progress'><div class='pa-bar' style='width:0%'></div></div>"
           f"<div class='pa-progress-label'>waiting · {html.escape(ahead)}</div>")
    return gr.skip(), bar, text, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()


def export(session: Session):
    """Stop this session's training run if it is running, then return its checkpoint and report."""
    run = session.latest if session else None
    if run is None:
        gr.Info("Nothing to stop or download yet: start a training run first.")
        return render(None, session or Session())
    run.request_stop()
    if not run.wait(STOP_WAIT_S):
        raise gr.Error("the run did not stop in time; press Stop again.")
    run.export()
    return render(run, session, files=True)


def request_stop(session: Session) -> None:
    """Ask the running generator to stop at its next step (the cancel also closes it)."""
    if session is not None and session.latest is not None:
        session.latest.request_stop()


def check_upload_size(path) -> None:
    """Refuse a file over the upload cap (Gradio refuses larger uploads too; this covers any other path in)."""
    from gpt.data import DataError

    p = Path(str(path))
    if p.stat().st_size > limits.MAX_UPLOAD_BYTES:
        raise DataError(f"{p.name} is {p.stat().st_size / 2**20:.1f} MB; uploads are limited to "
                        f"{limits.MAX_UPLOAD_MB} MB. Upload a smaller excerpt.")


def check_upload(path):
    """Validate an upload as soon as it arrives: empty, binary or non-UTF-8 files are refused."""
    from gpt.data import DataError, decode_text

    if not path:
        return gr.update(), "No file yet: upload a UTF-8 .txt file."
    p = Path(str(path))
    try:
        check_upload_size(p)
        text = decode_text(p.read_bytes(), p.name)
    except DataError as e:
        gr.Warning(str(e), title="This file cannot be used")
        return gr.update(value=None), f"⚠️ {html.escape(str(e))}"
    return gr.update(), f"**{html.escape(p.name)}**: {len(text):,} characters, {len(set(text))} distinct."


def on_corpus(corpus: str, upload):
    if corpus == UPLOAD:
        return gr.update(visible=True), ("Upload a UTF-8 .txt file (a few hundred KB trains well)." if not upload
                                         else gr.skip())
    if corpus == train_roles.INDUCTION:
        return gr.update(visible=False), train_roles.corpus_note()
    return gr.update(visible=False), "Using Tiny Shakespeare (1.1 M characters)."


def on_preset(preset: str):
    v = preset_values(preset)
    return v["block_size"], v["n_layer"], v["n_head"], v["n_embd"], v["dropout"], f"*{v['note']}*"


def build(session: gr.State) -> None:
    """Lay out the Train tab and wire its events (called inside ``gr.Tab``)."""
    p = preset_values("gpt-tiny")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            corpus = gr.Radio([SHAKESPEARE, UPLOAD, train_roles.INDUCTION], value=SHAKESPEARE, label="Corpus")
            upload = gr.File(label="Your own text (.txt, UTF-8)", file_types=[".txt"], type="filepath", visible=False)
            corpus_info = gr.Markdown("Using Tiny Shakespeare (1.1 M characters).")
            with gr.Row():
                tokenizer = gr.Radio(list(TOKENIZERS), value="char", label="Tokenizer")
                preset = gr.Dropdown(list(PRESETS), value="gpt-tiny", label="Preset (model ladder)")
            preset_note = gr.Markdown(f"*{p['note']}*")
            with gr.Accordion("Hyperparameters", open=True):
                with gr.Row():
                    iters = common.slider(limits.MIN_ITERS, limits.MAX_ITERS, value=training.FAST_RECIPE["max_iters"],
                                          step=10, label="Iterations")
                    lr = gr.Number(training.FAST_RECIPE["lr"], label="Learning rate",
                                   info=f"{limits.MIN_LR:g} .. {limits.MAX_LR:g}; Muon for the weight matrices "
                                        f"(its lr scales with this one: {training.FAST_RECIPE['muon_lr']:g} at "
                                        f"{training.FAST_RECIPE['lr']:g}), AdamW β1 0.8 for the rest; warm-up, "
                                        "stable, the last 40 % decaying to lr/20")
                with gr.Row():
                    batch = common.slider(1, limits.MAX_BATCH, value=training.FAST_RECIPE["batch_size"], step=1,
                                          label="Batch size")
                    block = common.slider(2, limits.MAX_BLOCK, value=p["block_size"], step=1, label="Block size")
                with gr.Row():
                    layers = common.slider(0, limits.MAX_LAYERS, value=p["n_layer"], step=1, label="Layers")
                    heads = common.slider(0, limits.MAX_HEADS, value=p["n_head"], step=1, label="Heads")
                with gr.Row():
                    n_embd = common.slider(8, limits.MAX_EMBD, value=p["n_embd"], step=8, label="n_embd")
                    dropout = common.slider(0, limits.MAX_DROPOUT, value=p["dropout"], step=0.05, label="Dropout")
                with gr.Row():
                    seed = common.number(0, label="Seed", precision=0, minimum=0, maximum=limits.MAX_SEED)
                    sample_every = common.slider(0, 1000, value=100, step=10, label="Sample every",
                                                 info="steps; 0 = off")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
            from . import continue_panel  # imports this module: imported here, not at the top
            more = continue_panel.build()
            with gr.Accordion("Limits on this shared machine", open=False):
                gr.Markdown("One run trains at a time; a few more wait their turn. Beyond a limit you get a message "
                            "saying what to change.\n\n" + limits.markdown(), elem_classes="pa-note")
        with gr.Column(scale=3, min_width=420):
            progress = gr.HTML(progress_html(None), label="Progress", elem_id="train-progress")
            plot = gr.Plot(label="Loss (train and validation)", elem_id="loss-plot")
            roles_plot = gr.Plot(label="Head roles at each evaluation", elem_id="roles-history-plot")
            stats = gr.Markdown(stats_markdown(None), label="Stats", elem_id="train-stats")
            sample = gr.Textbox(label="Latest sample (temperature 1, from the start token)", lines=6,
                                max_lines=10, interactive=False, elem_id="train-sample", elem_classes="pa-mono")
            with gr.Row():
                ckpt = gr.DownloadButton("Download checkpoint (.zip)", elem_id="download-checkpoint")
                report = gr.DownloadButton("Download training report (.md)", elem_id="download-report")
                ckpt.keep_in_cache = run_files.KeepLive(ckpt.keep_in_cache)  # Gradio's schedule leaves live exports
            gr.Markdown("Downloads are ready when a run finishes or is stopped.", elem_classes="pa-note")

    outputs = [plot, progress, stats, sample, ckpt, report, session, roles_plot]
    corpus.change(on_corpus, [corpus, upload], [upload, corpus_info], api_visibility="private", queue=False)
    upload.upload(friendly(check_upload), upload, [upload, corpus_info], api_visibility="private")
    preset.change(friendly(on_preset), preset, [block, layers, heads, n_embd, dropout, preset_note], api_visibility="private")
    preset.change(train_roles.induction_recipe, preset, [iters, lr, batch, corpus], api_visibility="private")
    inputs = [session, corpus, upload, tokenizer, preset, iters, lr, batch, block, layers, heads, n_embd, dropout,
              seed, sample_every]
    train_ev = start.click(gpu(limits.MAX_TRAIN_SECONDS + 60)(friendly(train)), inputs, outputs, api_name="train",
                           concurrency_id="train", concurrency_limit=None,  # admission.GATE limits it
                           show_progress="minimal")
    continue_ev = continue_panel.wire(more, session, corpus, upload, outputs)  # /continue
    stop.click(request_stop, session, None, cancels=[train_ev, continue_ev], queue=False,
               api_visibility="private").then(
        friendly(export), session, outputs, api_name="export", concurrency_id="export", concurrency_limit=2,
        show_progress="minimal")
