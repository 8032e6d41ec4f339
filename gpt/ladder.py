"""The model ladder: what each idea from "Let's build GPT" buys, on the same data and budget.

    python -m gpt.ladder                      # ~5 minutes on 2 cores
    python -m gpt.ladder --iters 20 --out /tmp/ladder   # smoke run

Writes ``ladder.json`` (read by the app's Learn tab) and ``ladder.md`` (the table);
``python -m explainer.report reports/`` draws ``ladder.svg`` (for the README) and ``ladder.html``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .config import PRESET_NOTES, REFERENCE_LADDER, TrainConfig, warmup_for
from .data import atomic_write_bytes
from .evaluate import evaluate
from .run import REPORTS_DIR, build_run

RUNGS = ["bigram", "single-head", "multi-head", "block", "gpt-tiny"]
# per-rung learning rates: the small rungs learn far faster at 1e-2 (multi-head: 2.42 at 3e-3,
# 2.16 at 1e-2 for the same 1500 steps); gpt-tiny is unstable that high
RUNG_LR = {"bigram": 1e-2, "single-head": 1e-2, "multi-head": 1e-2, "block": 6e-3, "gpt-tiny": 4e-3}
# AdamW momentum for every rung: 0.8 beat nanoGPT's 0.9 in gpt.bench's tuning (gpt-tiny at 2000
# steps: 1.603 with beta1 0.8, lr 4e-3; 1.679 with 0.9, lr 3e-3 at 1500 steps)
BETA1 = 0.8


def run_ladder(iters: int, batch_size: int, lr: float | None, seed: int, eval_batches: int, log=print) -> list[dict]:
    """Train each rung for the same steps and batch size; ``lr`` None = each rung's own (RUNG_LR)."""
    rows = []
    for preset in RUNGS:
        rate = lr or RUNG_LR[preset]
        train = TrainConfig(max_iters=iters, batch_size=batch_size, lr=rate, min_lr=rate / 20, beta1=BETA1,
                            warmup_iters=warmup_for(iters), eval_interval=max(1, iters), eval_iters=1, seed=seed,
                            device="cpu")
        run = build_run(preset=preset, tokenizer="char", data=None, train=train, model_overrides={"dropout": 0.0})
        t0 = time.perf_counter()
        for _ in run.trainer.run():
            pass
        wall = time.perf_counter() - t0
        res = evaluate(run.model, run.data, batches=eval_batches, batch_size=32, seed=0)
        row = {"preset": preset, "what": PRESET_NOTES[preset], "val_loss": round(res.loss, 4),
               "val_bpc": round(res.bpc, 4), "params": run.model.num_params(), "wall_s": round(wall, 1),
               "lr": train.lr,
               "block_size": run.model.config.block_size, "seed_val_loss": REFERENCE_LADDER[preset]}
        log(f"{preset:12s} val {row['val_loss']:.4f}  bpc {row['val_bpc']:.3f}  params {row['params']:>9,}  {wall:6.1f}s")
        rows.append(row)
    return rows


def ladder_markdown(rows: list[dict], budget: str) -> str:
    lines = [f"Budget per rung: {budget}. Char tokenizer, Tiny Shakespeare, val = last 10%.", "",
             "| rung | what it adds | params | lr | val loss | val bits/char | wall time | reference ladder's val loss |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['what']} | {r['params']:,} | {r.get('lr', 0):g} | {r['val_loss']:.3f} "
                     f"| {r['val_bpc']:.3f} "
                     f"| {r['wall_s']:.0f} s | {r['seed_val_loss']:.2f} |")
    return "\n".join(lines) + "\n"


def write_ladder(rows: list[dict], out: Path, budget: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"budget": budget, "rows": rows, "seed_numbers": REFERENCE_LADDER}
    atomic_write_bytes(out / "ladder.json", json.dumps(payload, indent=2).encode())
    atomic_write_bytes(out / "ladder.md", ladder_markdown(rows, budget).encode())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m gpt.ladder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="one lr for every rung (default: each rung's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-batches", type=int, default=200)
    p.add_argument("--out", type=Path, default=REPORTS_DIR)
    args = p.parse_args(argv)
    lr = f"lr {args.lr:g}" if args.lr else "lr per rung"
    budget = (f"{args.iters} steps x batch {args.batch_size}, {lr} (warmup + cosine to lr/20), AdamW beta1 {BETA1}, "
              f"seed {args.seed}")
    rows = run_ladder(args.iters, args.batch_size, args.lr, args.seed, args.eval_batches)
    write_ladder(rows, args.out, budget)
    print(ladder_markdown(rows, budget))
    print(f"wrote {args.out}/ladder.json and ladder.md; draw them with: python -m explainer.report {args.out}")


if __name__ == "__main__":
    main()
