"""The model ladder: what each idea from "Let's build GPT" buys, on the same data and budget.

    python -m gpt.ladder                      # ~5 minutes on 2 cores
    python -m gpt.ladder --iters 20 --out /tmp/ladder   # smoke run

Writes ``ladder.json`` (read by the app's Learn tab), ``ladder.md`` (the table),
``ladder.svg`` (for the README) and ``ladder.html`` (interactive plotly, JS embedded).
"""
from __future__ import annotations

import argparse
import json
import time
from html import escape
from pathlib import Path

import plotly.graph_objects as go

from .config import PRESET_NOTES, TrainConfig
from .data import atomic_write_bytes
from .evaluate import evaluate
from .train import build_run

RUNGS = ["bigram", "single-head", "multi-head", "block", "gpt-tiny"]
# val losses of the "GPT from scratch" lecture, for reference (its own model sizes)
SEED_NUMBERS = {"bigram": 2.58, "single-head": 2.41, "multi-head": 2.28, "block": 2.17, "gpt-tiny": 1.64}
# per-rung learning rates: the small rungs learn far faster at 1e-2 (multi-head: 2.42 at 3e-3,
# 2.16 at 1e-2 for the same 1500 steps); gpt-tiny is unstable that high
RUNG_LR = {"bigram": 1e-2, "single-head": 1e-2, "multi-head": 1e-2, "block": 6e-3, "gpt-tiny": 4e-3}
# AdamW momentum for every rung: 0.8 beat nanoGPT's 0.9 in gpt.bench's tuning (gpt-tiny at 2000
# steps: 1.603 with beta1 0.8, lr 4e-3; 1.679 with 0.9, lr 3e-3 at 1500 steps)
BETA1 = 0.8
REPORTS = Path(__file__).resolve().parent.parent / "reports"


def run_ladder(iters: int, batch_size: int, lr: float | None, seed: int, eval_batches: int, log=print) -> list[dict]:
    """Train each rung for the same steps and batch size; ``lr`` None = each rung's own (RUNG_LR)."""
    rows = []
    for preset in RUNGS:
        rate = lr or RUNG_LR[preset]
        train = TrainConfig(max_iters=iters, batch_size=batch_size, lr=rate, min_lr=rate / 20, beta1=BETA1,
                            warmup_iters=min(100, iters // 10), eval_interval=max(1, iters), eval_iters=1, seed=seed,
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
               "block_size": run.model.config.block_size, "seed_val_loss": SEED_NUMBERS[preset]}
        log(f"{preset:12s} val {row['val_loss']:.4f}  bpc {row['val_bpc']:.3f}  params {row['params']:>9,}  {wall:6.1f}s")
        rows.append(row)
    return rows


def ladder_markdown(rows: list[dict], budget: str) -> str:
    lines = [f"Budget per rung: {budget}. Char tokenizer, Tiny Shakespeare, val = last 10%.", "",
             "| rung | what it adds | params | lr | val loss | val bits/char | wall time | lecture's val loss |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['what']} | {r['params']:,} | {r.get('lr', 0):g} | {r['val_loss']:.3f} "
                     f"| {r['val_bpc']:.3f} "
                     f"| {r['wall_s']:.0f} s | {r['seed_val_loss']:.2f} |")
    return "\n".join(lines) + "\n"


def ladder_figure(rows: list[dict]) -> go.Figure:
    names = [r["preset"] for r in rows]
    fig = go.Figure([
        go.Bar(x=names, y=[r["val_loss"] for r in rows], name="this project (val loss)", marker_color="#d62728",
               text=[f"{r['val_loss']:.2f}" for r in rows], textposition="outside",
               customdata=[[r["params"], r["val_bpc"]] for r in rows],
               hovertemplate="%{x}<br>val loss %{y:.4f}<br>%{customdata[1]:.3f} bits/char<br>%{customdata[0]:,} params<extra></extra>"),
        go.Bar(x=names, y=[r["seed_val_loss"] for r in rows], name="lecture's reference", marker_color="#bbbbbb",
               hovertemplate="%{x}<br>reference val loss %{y:.2f}<extra></extra>"),
    ])
    fig.update_layout(title="The model ladder: validation loss per rung (lower is better)", barmode="group",
                      yaxis_title="val loss (nats per character)", template="plotly_white",
                      yaxis_range=[0, max(r["seed_val_loss"] for r in rows) * 1.15])
    return fig


def ladder_svg(rows: list[dict], width: int = 640, height: int = 300) -> str:
    """A dependency-free SVG bar chart of the same data, for the README."""
    left, bottom, top = 50, 40, 30
    top_val = max(max(r["val_loss"], r["seed_val_loss"]) for r in rows) * 1.15
    slot = (width - left - 10) / len(rows)
    bar = slot * 0.35

    def y(v):
        return top + (height - top - bottom) * (1 - v / top_val)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">Validation loss per rung (lower is better)</text>']
    for tick in range(0, int(top_val) + 1):
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, r in enumerate(rows):
        x0 = left + i * slot + slot * 0.12
        for j, (v, color) in enumerate(((r["val_loss"], "#d62728"), (r["seed_val_loss"], "#bbbbbb"))):
            xb = x0 + j * bar
            parts.append(f'<rect x="{xb:.1f}" y="{y(v):.1f}" width="{bar - 2:.1f}" height="{y(0) - y(v):.1f}" fill="{color}"/>'
                         f'<text x="{xb + bar / 2:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle">{v:.2f}</text>')
        parts.append(f'<text x="{x0 + bar:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(r["preset"])}</text>')
    parts.append(f'<rect x="{left + 10}" y="{height - 16}" width="10" height="10" fill="#d62728"/>'
                 f'<text x="{left + 24}" y="{height - 7}">this project</text>'
                 f'<rect x="{left + 120}" y="{height - 16}" width="10" height="10" fill="#bbbbbb"/>'
                 f'<text x="{left + 134}" y="{height - 7}">lecture reference</text></svg>')
    return "\n".join(parts)


def write_ladder(rows: list[dict], out: Path, budget: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"budget": budget, "rows": rows, "seed_numbers": SEED_NUMBERS}
    atomic_write_bytes(out / "ladder.json", json.dumps(payload, indent=2).encode())
    atomic_write_bytes(out / "ladder.md", ladder_markdown(rows, budget).encode())
    atomic_write_bytes(out / "ladder.svg", ladder_svg(rows).encode())
    atomic_write_bytes(out / "ladder.html", ladder_figure(rows).to_html(include_plotlyjs=True).encode())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m gpt.ladder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="one lr for every rung (default: each rung's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-batches", type=int, default=200)
    p.add_argument("--out", type=Path, default=REPORTS)
    args = p.parse_args(argv)
    lr = f"lr {args.lr:g}" if args.lr else "lr per rung"
    budget = (f"{args.iters} steps x batch {args.batch_size}, {lr} (warmup + cosine to lr/20), AdamW beta1 {BETA1}, "
              f"seed {args.seed}")
    rows = run_ladder(args.iters, args.batch_size, args.lr, args.seed, args.eval_batches)
    write_ladder(rows, args.out, budget)
    print(ladder_markdown(rows, budget))
    print(f"wrote {args.out}/ladder.json, ladder.md, ladder.svg, ladder.html")


if __name__ == "__main__":
    main()
