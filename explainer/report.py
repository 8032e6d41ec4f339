"""Draw what ``gpt`` wrote: ``loss.html`` for a run folder, ``ladder.svg`` + ``ladder.html`` for a ladder.

    python -m explainer.report checkpoints/my-run     # loss.csv -> loss.html (plotly.js embedded: opens offline)
    python -m explainer.report reports/               # ladder.json -> ladder.svg, ladder.html

``gpt`` writes data only (CSV, JSON, Markdown); every chart is drawn here, by the same
figure functions the app uses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from gpt.data import atomic_write_bytes

from .figures.ladder import ladder_figure, ladder_svg
from .figures.training import loss_curves_figure


def write_loss_html(folder: str | Path, events: Sequence | None = None, title: str | None = None) -> Path:
    """``loss.html`` in a run folder, from ``events`` or from the folder's ``loss.csv``."""
    from gpt.run import read_loss_csv

    folder = Path(folder)
    if events is None:
        events = read_loss_csv(folder / "loss.csv")
    if title is None:
        try:
            title = json.loads((folder / "meta.json").read_text(encoding="utf-8")).get("title")
        except (OSError, ValueError):
            title = None
    html = loss_curves_figure(events, title=title or folder.name).to_html(include_plotlyjs=True, full_html=True)
    atomic_write_bytes(folder / "loss.html", html.encode())
    return folder / "loss.html"


def write_ladder_charts(folder: str | Path) -> list[Path]:
    """``ladder.svg`` and ``ladder.html`` beside the folder's ``ladder.json``."""
    from gpt.run import read_ladder

    folder = Path(folder)
    rows, _ = read_ladder(folder)
    if not rows:
        raise ValueError(f"{folder / 'ladder.json'} is missing or has no rows: run python -m gpt.ladder first.")
    atomic_write_bytes(folder / "ladder.svg", ladder_svg(rows).encode())
    atomic_write_bytes(folder / "ladder.html", ladder_figure(rows).to_html(include_plotlyjs=True).encode())
    return [folder / "ladder.svg", folder / "ladder.html"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m explainer.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="run folders (loss.csv) or ladder folders (ladder.json)")
    args = p.parse_args(argv)
    for folder in args.folders:
        try:
            if (folder / "ladder.json").is_file():
                written = write_ladder_charts(folder)
            elif (folder / "loss.csv").is_file():
                written = [write_loss_html(folder)]
            else:
                print(f"error: {folder} has neither loss.csv nor ladder.json.", file=sys.stderr)
                return 2
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {folder}: {e}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
