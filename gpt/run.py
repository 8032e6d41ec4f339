"""Run bookkeeping shared by the CLI, the ladder, the bench and the app: build a run, sample it,
finish it (final evaluation, checkpoint, loss.csv and report.md).

``gpt`` writes data only (CSV, JSON, Markdown); the loss chart of a run folder is drawn by
``explainer`` (``python -m explainer.report DIR`` writes ``loss.html`` from ``loss.csv``).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .checkpoint import ROOT, load_checkpoint, save_checkpoint
from .config import REFERENCE_LADDER, TrainConfig, preset_config
from .data import TokenData, atomic_write_bytes, load_text
from .evaluate import evaluate
from .generate import generate_text
from .model import GPT
from .tokenizers import get_tokenizer
from .trainer import Trainer, TrainEvent, estimate_loss

SAMPLE_TOKENS = 300
REPORTS_DIR = ROOT / "reports"  # where ``python -m gpt.ladder`` writes ladder.json
LOSS_CSV_FIELDS = ("step", "elapsed_s", "lr", "train_loss", "eval_train_loss", "val_loss", "tokens_per_s")


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
    """The report's sample: ``n`` tokens at temperature 0.8 from the start token, seeded."""
    return generate_text(model, tok, "", max_new_tokens=n, temperature=0.8, seed=seed).text


def finish_run(run: Run, out: Path, *, command: str, wall: float, title: str, sample_before: str,
               eval_batches: int = 200, half: bool = False, previous: dict | None = None,
               extra: dict | None = None) -> dict:
    """Measure the final losses, write the checkpoint, loss.csv and report.md; return the metadata.

    ``previous`` is the metadata of the checkpoint this run continued (steps and wall time add up).
    ``extra`` goes into meta.json as well (``gpt.resume.save_train_state``'s pointer to the training state).
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
        "n_params": run.model.num_params(), "title": title, **(extra or {}),
    }
    save_checkpoint(run.model, run.tokenizer, out, half=half, **meta)
    after = sample(run.model, run.tokenizer, t.config.seed)
    md = report_markdown(title=title, command=command, config=run.model.config.to_dict(),
                         train_config=t.config.to_dict(), meta=meta, sample_before=sample_before,
                         before_label="before this run (the checkpoint it continued)" if previous else "before training",
                         sample_after=after, sample_prompt="")
    atomic_write_bytes(Path(out) / "loss.csv", loss_csv(t.history).encode())
    atomic_write_bytes(Path(out) / "report.md", md.encode())
    return meta


def loss_csv(events: Sequence[TrainEvent]) -> str:
    """One row per optimiser step; the eval columns are empty between evaluations."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(LOSS_CSV_FIELDS)
    for e in events:
        w.writerow([e.step, f"{e.elapsed_s:.3f}", f"{e.lr:.6g}", f"{e.train_loss:.5f}",
                    "" if e.eval_train_loss is None else f"{e.eval_train_loss:.5f}",
                    "" if e.val_loss is None else f"{e.val_loss:.5f}", f"{e.tokens_per_s:.0f}"])
    return buf.getvalue()


def read_loss_csv(path: str | Path) -> list[TrainEvent]:
    """The events a ``loss.csv`` recorded, as TrainEvents (max_iters = the last step)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    last = int(rows[-1]["step"]) if rows else 0

    def num(v):
        return float(v) if v not in ("", None) else None

    return [TrainEvent(step=int(r["step"]), max_iters=last, train_loss=float(r["train_loss"]), lr=float(r["lr"]),
                       tokens_per_s=float(r["tokens_per_s"]), elapsed_s=float(r["elapsed_s"]),
                       val_loss=num(r["val_loss"]), eval_train_loss=num(r["eval_train_loss"]),
                       done=int(r["step"]) == last) for r in rows]


def report_markdown(*, title: str, command: str, config: dict, train_config: dict, meta: dict,
                    sample_before: str, sample_after: str, sample_prompt: str,
                    before_label: str = "before training") -> str:
    def table(d: dict) -> str:
        return "\n".join(["| key | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in d.items()])

    fence = "```"
    return f"""# {title}

Command: `{command}`

## Result
| measure | value |
|---|---|
| steps | {meta.get('step')} |
| final train loss | {meta.get('train_loss', float('nan')):.4f} |
| final val loss | {meta.get('val_loss', float('nan')):.4f} |
| val bits per character | {meta.get('val_bpc', float('nan')):.4f} |
| parameters | {meta.get('n_params'):,} |
| wall time | {meta.get('wall_time_s', 0):.1f} s |

The loss per step is in `loss.csv`; `python -m explainer.report <this folder>` draws it as `loss.html`.

## Model
{table(config)}

## Training
{table(train_config)}

## Sample {before_label} (prompt {sample_prompt!r})
{fence}
{sample_before}
{fence}

## Sample after training (prompt {sample_prompt!r})
{fence}
{sample_after}
{fence}
"""


def read_ladder(folder: str | Path = REPORTS_DIR) -> tuple[list[dict] | None, dict]:
    """(the rows ``python -m gpt.ladder`` measured, or None; the reference ladder's val losses)."""
    try:
        payload = json.loads((Path(folder) / "ladder.json").read_text(encoding="utf-8"))
        rows = payload["rows"]
        for r in rows:
            float(r["val_loss"]), float(r["val_bpc"]), int(r["params"]), float(r["wall_s"]), str(r["preset"])
        return (rows or None), payload.get("seed_numbers") or REFERENCE_LADDER
    except (OSError, ValueError, KeyError, TypeError):
        return None, REFERENCE_LADDER
