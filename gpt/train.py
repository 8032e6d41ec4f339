"""Train a model from the command line and write a checkpoint plus a report.

    python -m gpt.train --preset gpt-tiny --tokenizer char --max-iters 2000 --out checkpoints/my-run
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_meta, resolve_checkpoint
from .config import PRESETS, TrainConfig
from .data import DataError
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
    return p


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed flags ask for (each field has a flag of the same name)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in TrainConfig.cli_fields()})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = "python -m gpt.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: {out} is a file; --out needs a folder (new or an earlier checkpoint's).", file=sys.stderr)
        return 2
    try:
        train = train_config_from(args)
        overrides = dict(block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                         n_embd=args.n_embd, dropout=args.dropout)
        previous = None
        if args.init_from:
            previous = read_meta(resolve_checkpoint(args.init_from))
            command = f"{previous.get('command', '')} && {command}"
        run = build_run(preset=args.preset, tokenizer=args.tokenizer, data=args.data, train=train,
                        model_overrides=overrides, init_from=args.init_from)
    except (ValueError, DataError, UnknownCharactersError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tok_desc = f"char ({run.tokenizer.vocab_size} symbols)" if isinstance(run.tokenizer, CharTokenizer) else "gpt2 BPE"
    label = f"continuing {args.init_from}" if args.init_from else args.preset
    print(f"{label}: {run.model.num_params():,} parameters, tokenizer {tok_desc}, "
          f"{len(run.data.train):,} train / {len(run.data.val):,} val tokens, device {run.trainer.device}")
    before = sample(run.model, run.tokenizer, args.seed)
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
    meta = finish_run(run, out, command=command, wall=wall, title=f"{args.preset} on {args.data or 'Tiny Shakespeare'}",
                      sample_before=before, half=args.half, previous=previous)
    print(f"val loss {meta['val_loss']:.4f}, {meta['val_bpc']:.4f} bits/char, {wall:.1f}s -> {out}/")
    print(f"loss per step in {out}/loss.csv; draw it with: python -m explainer.report {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
