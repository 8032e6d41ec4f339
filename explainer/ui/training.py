"""One training run of the Train tab: build it, train it in a thread, stop it, export it. No Gradio here.

The run lives in the visitor's session, so the model it trains is theirs alone. It trains in
its own named thread (``playattention-train-<id>``) that checks for a stop request before each
optimiser step; ``stop`` waits for that thread to end. The run's lock is held during each
step, so another tab can read the weights between steps.
"""
from __future__ import annotations

import shlex
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import limits, registry, run_files, train_roles

# where the run's files live and when they go (re-exported: the app and its tests name them here)
from .run_files import EXPORT_ROOT, RUNS_DIR, disk_used, purge, remove_stale_runs, retire  # noqa: F401
THREAD_PREFIX = "playattention-train-"  # training threads are named this + the run id
STOP_TIMEOUT_S = 60  # longest wait for the current optimiser step when stopping
SYNC_FIELDS = ("lock", "export_lock", "finished", "news", "thread")


@dataclass
class TrainSpec:
    """What the learner asked for, already checked against the limits."""

    tokenizer: str
    preset: str
    hp: dict  # from limits.check_train
    corpus_path: str | None = None  # None = Tiny Shakespeare
    corpus_name: str = "Tiny Shakespeare"

    def overrides(self) -> dict:
        return {k: self.hp[k] for k in limits.PRESET_FIELDS}

    def command(self, config=None) -> str:
        """The CLI command that reproduces this run: the model's flags, and a flag for every
        ``TrainConfig`` field of ``config`` (the run's own) that differs from the CLI default."""
        from gpt import TrainConfig

        hp = self.hp
        args = ["--preset", self.preset, "--tokenizer", self.tokenizer,
                "--block-size", hp["block_size"], "--n-layer", hp["n_layer"], "--n-head", hp["n_head"],
                "--n-embd", hp["n_embd"], "--dropout", hp["dropout"]]
        config = config or train_config(hp)
        for f in TrainConfig.cli_fields():
            value = getattr(config, f.name)
            if value != f.default and f.name != "device":
                args += ["--" + f.name.replace("_", "-"), f"{value:.6g}" if isinstance(value, float) else value]
        prefix = ""
        if self.corpus_name == train_roles.INDUCTION_NAME:  # rebuild the synthetic corpus first
            prefix = ("python -c \"from gpt.synthetic import induction_text; "
                      "open('induction-passages.txt', 'w').write(induction_text('passages'))\" && ")
            args += ["--data", "induction-passages.txt"]
        elif self.corpus_path:
            args += ["--data", self.corpus_name]
        args += ["--out", "checkpoints/user/my-run"]
        return prefix + "python -m gpt.train " + " ".join(shlex.quote(str(a)) for a in args)


class SessionEnded(ValueError):
    """The run's session ended (its files were retired and removed) while its export was being written."""


@dataclass
class Export:
    step: int
    zip_path: str
    report_path: str
    meta: dict


# The fastest recipe the project knows, gpt.config.FAST_RECIPE (gpt.bench's default): Muon for the
# hidden matrices, AdamW (beta1 0.8) for the rest, a short warm-up, then warmup-stable-decay. The Train
# tab's defaults are its lr, batch size and length; a learner's lr scales Muon's lr by the same factor.
from gpt.config import FAST_RECIPE  # noqa: E402


def train_config(hp: dict):
    """The TrainConfig for the app's runs: FAST_RECIPE's optimiser and schedule, ~10 evaluations."""
    from gpt import TrainConfig
    from gpt.config import warmup_for

    iters, r = hp["iters"], FAST_RECIPE
    scale = hp["lr"] / r["lr"]  # the learner's lr relative to the recipe's
    return TrainConfig(max_iters=iters, batch_size=hp["batch_size"], lr=hp["lr"], min_lr=r["min_lr"] * scale,
                       warmup_iters=min(r["warmup_iters"], warmup_for(iters)), beta1=r["beta1"], beta2=r["beta2"],
                       schedule=r["schedule"], decay_frac=r["decay_frac"], optimizer=r["optimizer"],
                       muon_lr=r["muon_lr"] * scale, muon_momentum=r["muon_momentum"], nesterov=r["nesterov"],
                       ns_steps=r["ns_steps"],
                       eval_interval=max(limits.MIN_EVAL_INTERVAL, iters // limits.EVALS_PER_RUN),
                       eval_iters=limits.EVAL_ITERS, sample_interval=hp["sample_every"],
                       sample_tokens=limits.SAMPLE_TOKENS, seed=hp["seed"])


def corpus(spec: TrainSpec):
    """(tokenizer, TokenData) for the run: shared Tiny Shakespeare data, or the upload's own."""
    if spec.corpus_path is None:
        return registry.tokenizer(spec.tokenizer), registry.shakespeare_data(spec.tokenizer)
    from gpt import TokenData, get_tokenizer, load_text

    text = load_text(spec.corpus_path)
    check_vocab(text, spec.tokenizer, spec.corpus_name)
    tok = get_tokenizer("char", corpus=text) if spec.tokenizer == "char" else registry.tokenizer("gpt2")
    return tok, TokenData.from_text(text, tok)


def check_vocab(text: str, tokenizer: str, name: str) -> None:
    """Refuse a char vocabulary whose checkpoint the loader would refuse (meta.json over its cap)."""
    from gpt.data import DataError

    distinct = len(set(text))
    if tokenizer == "char" and distinct > limits.MAX_CHAR_VOCAB:
        raise DataError(f"{name} has {distinct:,} distinct characters; the char tokenizer takes at most "
                        f"{limits.MAX_CHAR_VOCAB:,} (so its checkpoint loads again). Use the gpt2 tokenizer "
                        "or a text with fewer distinct characters.")


class TrainingRun:
    """A model being trained for one session, with its history and status."""

    def __init__(self, spec: TrainSpec):
        import torch
        from gpt import GPT, Trainer, preset_config
        from gpt.run import sample

        self.spec = spec
        self.id = uuid.uuid4().hex[:8]
        self.tokenizer, self.data = corpus(spec)
        config = preset_config(spec.preset, self.tokenizer.vocab_size, **spec.overrides())
        with torch.device("meta"):  # count parameters without allocating them
            n_params = GPT(config).num_params()
        limits.check_params(n_params, spec.tokenizer)
        self.data.check_block_size(config.block_size)
        torch.manual_seed(spec.hp["seed"])
        self.model = GPT(config)
        self.trainer = Trainer(self.model, self.data, train_roles.train_config(spec.preset, train_config(spec.hp)),
                               tokenizer=self.tokenizer)
        self.roles = train_roles.RoleHistory(self.model, self.data)  # head roles at each evaluation
        self.sample_before = sample(self.model, self.tokenizer, spec.hp["seed"], limits.SAMPLE_TOKENS)
        self._init_sync()
        self.status = "ready"
        self.stop_requested = False
        self.started = 0.0
        self.read_at = 0.0  # when the handler last asked for an update (the watchdog's clock)
        self.cancelled = lambda: False  # set by the handler: was its request cancelled (``cancels``)?
        self.error: Exception | None = None  # why the thread stopped, if it failed
        self.exported: Export | None = None
        self.delivery: Path | None = None  # the folder the current export is served from (run_files)
        self.files_retired = False  # cleanup ran: the run's files are on their way out

    def _init_sync(self) -> None:
        self.lock = threading.Lock()
        self.export_lock = threading.Lock()
        self.finished = threading.Event()
        self.news = threading.Event()  # set after an evaluation or a sample, and when the run ends
        self.thread: threading.Thread | None = None

    def __getstate__(self):  # locks and threads cannot be pickled (e.g. by ZeroGPU): rebuilt on load
        return {k: v for k, v in self.__dict__.items() if k not in SYNC_FIELDS}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_sync()
        if self.status != "training":
            self.finished.set()

    @property
    def events(self):
        return self.trainer.history

    @property
    def running(self) -> bool:
        return self.status == "training"

    @property
    def version(self) -> str:
        return f"{self.id}:{self.trainer.step}"

    def title(self) -> str:
        return f"{self.spec.preset} · {self.spec.tokenizer} · {self.spec.corpus_name}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def start(self) -> None:
        """Train in a background thread named ``playattention-train-<id>``; returns at once."""
        self.status, self.started = "training", time.monotonic()
        self.read_at = self.started
        self.thread = threading.Thread(target=self._train, name=THREAD_PREFIX + self.id, daemon=True)
        self.thread.start()

    def _train(self) -> None:
        """The thread: one optimiser step at a time until done, stopped, failed or out of time."""
        it = self.trainer.run()
        try:
            while self.status == "training":
                if self.stop_requested:
                    self.status = "stopped"
                elif self.elapsed() > limits.MAX_TRAIN_SECONDS:
                    self.status = "time limit"
                elif time.monotonic() - self.read_at > limits.TRAIN_WATCHDOG_S or self.cancelled():
                    self.status = "stopped"  # its request was cancelled, or nobody reads its updates
                else:
                    with self.lock:
                        ev = next(it, None)
                        self.roles.observe(self.model, ev)  # between steps, under the lock
                    if ev is None:
                        self.status = "done"
                    elif ev.val_loss is not None or ev.sample is not None:
                        self.news.set()
        except Exception as e:  # noqa: BLE001 - handed to the handler, which shows it
            self.error, self.status = e, "failed"
        finally:
            it.close()
            self.close()

    def updates(self, every: float) -> Iterator[None]:
        """Yield while the run trains: after each evaluation or sample, else every ``every`` seconds.

        Each time the handler asks for the next update feeds the watchdog: a run whose handler
        stopped asking for ``limits.TRAIN_WATCHDOG_S`` stops by itself.
        """
        while not self.finished.is_set():
            self.read_at = time.monotonic()
            self.news.wait(every)
            self.news.clear()
            if not self.finished.is_set():
                yield

    def request_stop(self) -> None:
        self.stop_requested = True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop after the current step and wait for the thread to end; True once it has."""
        self.request_stop()
        if self.thread is None:
            self.close()
        else:
            self.thread.join(timeout)
        return self.finished.is_set()

    def close(self) -> None:
        """The run is over (finished, stopped or never started): the model stays as it is.

        The gradients are freed; the optimiser's moments stay while the run can be continued
        (``continue_run.pause``) and are freed when it is replaced or its session ends (``cleanup``).
        """
        from . import continue_run

        if self.status in ("training", "ready"):
            self.status = "stopped"
        with self.lock:
            if not continue_run.pause(self):
                self.trainer.optimizer.state.clear()
            self.model.zero_grad(set_to_none=True)
            self.model.eval()
        self.finished.set()
        self.news.set()

    def wait(self, timeout: float) -> bool:
        return self.finished.wait(timeout)

    def export(self) -> Export:
        """Checkpoint (zip) + report for the model as it is now; cached until it changes."""
        import torch

        with self.export_lock, self.lock:
            step = self.trainer.step
            if self.exported and self.exported.step == step:
                return self.exported
            if not self.events:
                raise ValueError("training stopped before its first step: there is no trained model to download.")
            last = self.events[-1]
            if last.val_loss is None:  # stopped between evaluations: evaluate at this step
                g = torch.Generator().manual_seed(self.spec.hp["seed"] + 1)
                last.eval_train_loss, last.val_loss = self.trainer.evaluate(g)
            name = f"playattention-{self.spec.preset}-{self.spec.tokenizer}-step{step}"
            try:
                zip_path, report, meta = self._write_export(name, last)
            except OSError:
                if self.files_retired:  # the session's cleanup removed the folder being written
                    raise SessionEnded("this session ended while its download was being written: start a new "
                                       "run to download a model.") from None
                raise
            self.exported = Export(step, zip_path, str(report), meta)
            if self.files_retired:  # the session ended while this export ran: its files go with the others
                retire(self.delivery)
            return self.exported

    def _write_export(self, name: str, last) -> tuple[str, str, dict]:
        """The checkpoint folder, its zip and report in a fresh delivery folder: (zip, report, meta)."""
        from explainer.report import write_loss_html
        from gpt.run import Run, finish_run
        from . import continue_run

        out = RUNS_DIR / self.id / name
        shutil.rmtree(out.parent, ignore_errors=True)
        extra = continue_run.state_files(self, out)  # train-state-*.safetensors: the zip can be continued
        meta = finish_run(Run(self.model, self.tokenizer, self.data, self.trainer), out, extra=extra,
                          command=self.spec.command(self.trainer.config), wall=last.elapsed_s, title=self.title(),
                          sample_before=self.sample_before, eval_batches=limits.FINAL_EVAL_BATCHES)
        write_loss_html(out, self.events, title=self.title())
        self.model.eval()
        if self.delivery is not None:  # the previous export's link stays valid for the grace time
            retire(self.delivery)
        self.delivery = run_files.new_delivery(self.id)  # served by Gradio from there, never copied
        zip_path = shutil.make_archive(str(self.delivery / name), "zip", root_dir=out.parent, base_dir=name)
        return zip_path, shutil.copy2(out / "report.md", self.delivery / "report.md"), meta

    def cleanup(self) -> None:
        """Retire the exported files (the session ended or a newer run replaced this one).

        They are deleted ``limits.EXPORT_GRACE_S`` later, not now: an ``/export`` answer that is
        being delivered stays valid (``run_files``).
        """
        from . import continue_run
        continue_run.free(self)
        self.files_retired = True  # (an export still running retires its own folder: see export)
        retire(RUNS_DIR / self.id)
        if self.delivery is not None:
            retire(self.delivery)
