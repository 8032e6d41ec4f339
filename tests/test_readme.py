"""The README's numbers that the code or the shipped files define cannot drift from them."""
from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_quick_start_and_ci_run_the_readme_commands():
    for command in ("pip install -r requirements.txt", "python app.py", "pytest"):
        assert command in README
    assert 'pytest -m "not slow and not browser"' in README  # the quick loop is documented
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^pytest$", ci, re.M), "CI must run the README's test command exactly"


def test_the_limits_table_is_the_code_s():
    from explainer.ui import limits

    assert limits.markdown() in README


def test_the_bad_input_count_is_the_tables():
    sys.path.insert(0, str(ROOT / "tests"))
    tables = sorted(p.stem for p in (ROOT / "tests").glob("test_bad_inputs*.py"))
    total = sum(len(importlib.import_module(name).CASES) for name in tables)
    quoted = re.search(r"hold (\d[\d,]*) such cases", README)
    assert quoted, "the README should say how many bad-input cases the tables hold"
    assert int(quoted.group(1).replace(",", "")) == total


@pytest.mark.parametrize("name", ["shakespeare-char", "shakespeare-gpt2"])
def test_the_shipped_checkpoint_rows_are_their_meta(name):
    meta = json.loads((ROOT / "checkpoints" / name / "meta.json").read_text())
    row = next(line for line in README.splitlines() if line.startswith(f"| `{name}` |"))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    assert f"{meta['step']:,}" == cells[3]
    assert cells[4].startswith(f"{meta['val_loss']:.3f}")
    assert cells[5] == f"{meta['val_bpc']:.3f}"
    assert cells[6].rstrip("*") == f"{round(meta['wall_time_s'] / 60)} min"


def test_the_ladder_table_and_its_run_time_are_ladder_json():
    rows = json.loads((ROOT / "reports" / "ladder.json").read_text())["rows"]
    for r in rows:
        line = next(x for x in README.splitlines() if x.startswith(f"| {r['preset']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == f"{r['params']:,}" and cells[3] == f"{r['val_loss']:.3f}" and cells[4] == f"{r['val_bpc']:.3f}"
    minutes = round(sum(r["wall_s"] for r in rows) / 60)
    assert f"The whole ladder takes about {minutes} minutes" in README
