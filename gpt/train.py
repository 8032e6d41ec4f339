"""Train a model from the command line and write a checkpoint plus a report.

    python -m gpt.train --preset gpt-tiny --tokenizer char --max-iters 2000 --out checkpoints/my-run
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint, read_meta, resolve_checkpoint, save_checkpoint
from .config import PRESETS, SCHEDULES, TrainConfig, preset_config
from .data import DataError, TokenData, load_text
from .evaluate import evaluate
from .generate import generate_text
from .model import GPT
from .report import report_markdown, write_run_files
from .tokenizers import CharTokenizer, UnknownCharactersError, get_tokenizer
from .trainer import Trainer, TrainingDiverged, estimate_loss

SAMPLE_TOKENS = 300


@dataclass
class Run:
    model: GPT
    tokenizer: object
    data: TokenData
    trainer: Trainer


def build_run(*, preset: str, tokenizer: str, data: str | None, train: TrainConfig,
              model_overrides: dict | None = None, init_from: str | None = None) -> Run:
    """Corpus -> tokenizer -> token data -> model -> trainer, each step checked.

    ``init_from`` continues from a checkpoint's weights, config and tokenizer (a fresh
    optimiser and schedule; the preset and overrides are ignored).
    """
    text = load_text(data)
    if init_from:
        model, tok = load_checkpoint(init_from)
        model.train()
    else:
        tok = get_tokenizer(tokenizer, corpus=text) if tokenizer == "char" else get_tokenizer(tokenizer)
    token_data = TokenData.from_text(text, tok)
    torch.manual_seed(train.seed)
    if not init_from:
        model = GPT(preset_config(preset, tok.vocab_size, **(model_overrides or {})))
    return Run(model, tok, token_data, Trainer(model, token_data, train, tokenizer=tok))


def sample(model, tok, seed: int, n: int = SAMPLE_TOKENS) -> str:
    return generate_text(model, tok, "", max_new_tokens=n, temperature=0.8, seed=seed).text


def finish_run(run: Run, out: Path, *, command: str, wall: float, title: str, sample_before: str,
               eval_batches: int = 200, half: bool = False, previous: dict | None = None) -> dict:
    """Measure the final losses, write the checkpoint and the report; return the metadata.

    ``previous`` is the metadata of the checkpoint this run continued (steps and wall time add up).
    """
    t = run.trainer
    res = evaluate(run.model, run.data, batches=eval_batches, batch_size=t.config.batch_size, seed=0)
    train_eval = t.history[-1].eval_train_loss if t.history else None
    if train_eval is None:  # stopped between evaluations (or before the first step)
        g = torch.Generator().manual_seed(0)
        train_eval = estimate_loss(run.model, run.data, "train", t.config.batch_size, t.config.eval_iters, g)
    meta = {
        "step": t.step + (previous or {}).get("step", 0), "train_loss": train_eval, "val_loss": res.loss,
        "val_bpc": res.bpc, "tokens_per_char": res.tokens_per_char,
        "wall_time_s": wall + (previous or {}).get("wall_time_s", 0.0), "command": command,
        "train_config": t.config.to_dict(), "corpus_chars": run.data.train_chars + run.data.val_chars,
        "n_params": run.model.num_params(),
    }
    save_checkpoint(run.model, run.tokenizer, out, half=half, **meta)
    after = sample(run.model, run.tokenizer, t.config.seed)
    md = report_markdown(title=title, command=command, config=run.model.config.to_dict(),
                         train_config=t.config.to_dict(), meta=meta, sample_before=sample_before,
                         before_label="before this run (the checkpoint it continued)" if previous else "before training",
                         sample_after=after, sample_prompt="")
    write_run_files(out, t.history, md, title)
    return meta


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gpt.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=list(PRESETS), default="gpt-tiny")
    p.add_argument("--tokenizer", choices=["char", "gpt2"], default="char")
    p.add_argument("--data", default=None, help="a UTF-8 text file (default: Tiny Shakespeare)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--max-iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=None)
    p.add_argument("--warmup-iters", type=int, default=100)
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="after warmup: cosine decay, or warmup-stable-decay (hold lr, then a linear decay)")
    p.add_argument("--decay-frac", type=float, default=0.4, help="wsd: the last fraction of steps that decays")
    p.add_argument("--beta1", type=float, default=0.9, help="AdamW beta1 (momentum)")
    p.add_argument("--beta2", type=float, default=0.99, help="AdamW beta2")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    for name in ("block-size", "n-layer", "n-head", "n-embd"):
        p.add_argument(f"--{name}", type=int, default=None, help="override the preset")
    p.add_argument("--dropout", type=float, default=None, help="override the preset")
    p.add_argument("--half", action="store_true", help="store weights in float16 (loaded as float32)")
    p.add_argument("--init-from", default=None,
                   help="continue training a checkpoint (its config and tokenizer; new optimiser and schedule)")
    return p


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
        train = TrainConfig(max_iters=args.max_iters, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                            warmup_iters=args.warmup_iters, schedule=args.schedule, decay_frac=args.decay_frac,
                            weight_decay=args.weight_decay, beta1=args.beta1, beta2=args.beta2,
                            eval_interval=args.eval_interval, eval_iters=args.eval_iters, seed=args.seed,
                            device=args.device)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
