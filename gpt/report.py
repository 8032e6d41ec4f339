"""What a training run leaves behind besides the checkpoint: loss.csv, loss.html, report.md."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go

from .data import atomic_write_bytes
from .trainer import TrainEvent


def loss_figure(events: Sequence[TrainEvent], *, x: str = "step", log_y: bool = False,
                title: str = "Loss") -> go.Figure:
    """Train loss per step (thin), evaluated train/val loss (markers), vs step or wall time."""
    xs = [getattr(e, "elapsed_s" if x == "time" else "step") for e in events]
    evals = [(xv, e) for xv, e in zip(xs, events) if e.val_loss is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[e.train_loss for e in events], name="train (batch)",
                             mode="lines", line=dict(width=1, color="rgba(31,119,180,0.45)")))
    fig.add_trace(go.Scatter(x=[a for a, _ in evals], y=[e.eval_train_loss for _, e in evals],
                             name="train (eval)", mode="lines+markers", line=dict(color="#1f77b4")))
    fig.add_trace(go.Scatter(x=[a for a, _ in evals], y=[e.val_loss for _, e in evals],
                             name="val (eval)", mode="lines+markers", line=dict(color="#d62728")))
    fig.update_layout(
        title=title, xaxis_title="wall time (s)" if x == "time" else "step",
        yaxis_title="cross-entropy loss (nats per token)", yaxis_type="log" if log_y else "linear",
        template="plotly_white", legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=50, b=40),
        uirevision="loss",
    )
    return fig


def loss_csv(events: Sequence[TrainEvent]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["step", "elapsed_s", "lr", "train_loss", "eval_train_loss", "val_loss", "tokens_per_s"])
    for e in events:
        w.writerow([e.step, f"{e.elapsed_s:.3f}", f"{e.lr:.6g}", f"{e.train_loss:.5f}",
                    "" if e.eval_train_loss is None else f"{e.eval_train_loss:.5f}",
                    "" if e.val_loss is None else f"{e.val_loss:.5f}", f"{e.tokens_per_s:.0f}"])
    return buf.getvalue()


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


def write_run_files(out: Path, events: Sequence[TrainEvent], report_md: str, title: str) -> None:
    """loss.csv, loss.html (plotly.js embedded: opens offline) and report.md, each written atomically."""
    out = Path(out)
    atomic_write_bytes(out / "loss.csv", loss_csv(events).encode())
    html = loss_figure(events, title=title).to_html(include_plotlyjs=True, full_html=True)
    atomic_write_bytes(out / "loss.html", html.encode())
    atomic_write_bytes(out / "report.md", report_md.encode())
