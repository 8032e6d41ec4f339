"""Train a model from the command line and write a checkpoint plus a report.

    python -m gpt.train --preset gpt-tiny --tokenizer char --max-iters 2000 --out checkpoints/my-run
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from . import distributed
from .checkpoint import CheckpointError, read_meta, resolve_checkpoint
from .config import PRESETS, TrainConfig
from .data import DataError, load_text
from .resume import corpus_sha256, resume_run, save_train_state
from .run import build_run, finish_run, sample
from .tokenizers import TOKENIZERS, CharTokenizer, UnknownCharactersError
from .trainer import TrainingDiverged

def _progress(ev, tty: bool) -> str:
    line = (f"step {ev.step:>6}/{ev.max_iters}  loss {ev.train_loss:.4f}  lr {ev.lr:.2e}  "
            f"{ev.tokens_per_s:,.0f} tok/s  {ev.elapsed_s:,.1f}s")
    if ev.val_loss is not None:
        line += f"  | eval train {ev.eval_train_loss:.4f} val {ev.val_loss:.4f}"
    if tty:
        width = 24
        filled = int(width * ev.step / ev.max_iters)
        line = f"[{'#' * filled}{'.' * (width - filled)}] " + line
    return line


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _arg_type(field) -> type:
    """int / float / str from a TrainConfig field's annotation (``float | None`` -> float)."""
    name = str(field.type).split("|")[0].strip()
    if name == "bool":
        return lambda v: {"true": True, "false": False, "1": True, "0": False}[v.lower()]
    return {"int": int, "float": float, "str": str}[name]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gpt.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=list(PRESETS), default="gpt-tiny")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="char")
    p.add_argument("--data", default=None, help="a UTF-8 text file (default: Tiny Shakespeare)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    train = p.add_argument_group("training (defaults from gpt.TrainConfig)")
    for f in TrainConfig.cli_fields():
        train.add_argument(_flag(f.name), dest=f.name, type=_arg_type(f), default=f.default,
                           choices=f.metadata.get("choices"), help=f.metadata.get("help", "") + " (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    for name in ("block-size", "n-layer", "n-head", "n-embd"):
        p.add_argument(f"--{name}", type=int, default=None, help="override the preset")
    p.add_argument("--dropout", type=float, default=None, help="override the preset")
    p.add_argument("--half", action="store_true", help="store weights in float16 (loaded as float32)")
    p.add_argument("--init-from", default=None,
                   help="continue training a checkpoint (its config and tokenizer; new optimiser and schedule)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue a run stopped by --stop-at (or Ctrl-C) exactly: its settings, optimiser "
                        "state, schedule and random streams, up to its --max-iters (only --out, --stop-at, "
                        "--device and --threads may be given with it)")
    return p


RESUME_FLAGS = ("--resume", "--out", "--stop-at", "--device", "--threads")


def _setup(args: argparse.Namespace, argv: list[str]):
    """(run, metadata of the checkpoint continued or None, title, what a resumable state must record)."""
    if args.resume:
        given = [a.split("=", 1)[0] for a in argv if a.startswith("-")]
        other = [a for a in given if a not in RESUME_FLAGS]
        if other:
            raise ValueError(f"--resume continues the run with its original settings, so {other[0]} cannot be "
                             "given with it; to train on with other settings use --init-from.")
        run, previous, state = resume_run(args.resume, stop_at=args.stop_at,
                                          device=args.device if "--device" in given else None)
        threads = state["run"].get("threads")
        if threads and "--threads" not in given:  # the same thread count: the same float reductions
            torch.set_num_threads(threads)
        return run, previous, previous.get("title", "resumed run"), state["run"]
    train = train_config_from(args)
    if train.stop_at is not None and args.half:
        raise ValueError("--half stores float16 weights, from which a run cannot resume exactly: "
                         "drop --half or --stop-at.")
    overrides = dict(block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                     n_embd=args.n_embd, dropout=args.dropout)
    previous = read_meta(resolve_checkpoint(args.init_from)) if args.init_from else None
    run = build_run(preset=args.preset, tokenizer=args.tokenizer, data=args.data, train=train,
                    model_overrides=overrides, init_from=args.init_from)
    info = {"data": str(Path(args.data).resolve()) if args.data else None, "corpus_sha256":
            corpus_sha256(load_text(args.data)), "preset": args.preset, "tokenizer": args.tokenizer,
            "threads": args.threads}
    return run, previous, f"{args.preset} on {args.data or 'Tiny Shakespeare'}", info


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed flags ask for (each field has a flag of the same name)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in TrainConfig.cli_fields()})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not distributed.setup(args.device).is_main:  # under torchrun rank 0 alone prints and writes
        sys.stdout = open(os.devnull, "w")
    command = "python -m gpt.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: {out} is a file; --out needs a folder (new or an earlier checkpoint's).", file=sys.stderr)
        return 2
    try:
        run, previous, title, info = _setup(args, argv if argv is not None else sys.argv[1:])
    except (ValueError, DataError, UnknownCharactersError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if previous:
        command = f"{previous.get('command', '')} && {command}"
    t = run.trainer
    tok_desc = f"char ({run.tokenizer.vocab_size} symbols)" if isinstance(run.tokenizer, CharTokenizer) else "gpt2 BPE"
    label = (f"resuming {args.resume} at step {t.step}/{t.config.max_iters}" if args.resume
             else f"continuing {args.init_from}" if args.init_from else args.preset)
    print(f"{label}: {run.model.num_params():,} parameters, tokenizer {tok_desc}, "
          f"{len(run.data.train):,} train / {len(run.data.val):,} val tokens, device {t.device}")
    before = sample(run.model, run.tokenizer, t.config.seed)
    tty = sys.stdout.isatty()
    t0 = time.perf_counter()
    try:
        for ev in run.trainer.run():
            if ev.val_loss is not None or ev.done:
                print(("\r" if tty else "") + _progress(ev, tty), flush=True)
            elif tty:
                print("\r" + _progress(ev, tty), end="", flush=True)
    except TrainingDiverged as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {run.trainer.step}; saving the model as it is.")
    wall = time.perf_counter() - t0
    if not t.dist.is_main:
        return 0
    extra = None
    if t.step < t.config.max_iters and not t.mid_step and not args.half:  # stopped early, between steps
        extra = save_train_state(t, out, info)
    if args.resume:  # the resumed trainer counts steps from the start: only the wall time adds up
        previous = {"wall_time_s": previous.get("wall_time_s", 0.0)}
    meta = finish_run(run, out, command=command, wall=wall, title=title, sample_before=before, half=args.half,
                      previous=previous, extra=extra)
    if extra:
        print(f"stopped at step {t.step} of {t.config.max_iters}; continue exactly with: "
              f"python -m gpt.train --resume {out} --out DIR")
    print(f"val loss {meta['val_loss']:.4f}, {meta['val_bpc']:.4f} bits/char, {wall:.1f}s -> {out}/")
    print(f"loss per step in {out}/loss.csv; draw it with: python -m explainer.report {out}")
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        distributed.teardown()
    sys.exit(code)
