"""The ladder and the benchmark run end to end on a tiny budget (their numbers come from full runs)."""
from __future__ import annotations

import pytest

import json
import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_ladder_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gpt.ladder", "--iters", "8", "--eval-batches", "2", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "ladder.json").read_text())
    assert [row["preset"] for row in data["rows"]] == ["bigram", "single-head", "multi-head", "block", "gpt-tiny"]
    params = [row["params"] for row in data["rows"]]
    assert params[0] < params[1] <= params[2] < params[3] < params[4]
    assert all(0 < row["val_loss"] < 5 for row in data["rows"])
    assert "| bigram |" in (tmp_path / "ladder.md").read_text()
    assert not (tmp_path / "ladder.svg").exists()  # gpt writes data; explainer draws
    r = subprocess.run([sys.executable, "-m", "explainer.report", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    svg = (tmp_path / "ladder.svg").read_text()
    assert svg.startswith("<svg") and "gpt-tiny" in svg
    assert "plotly" in (tmp_path / "ladder.html").read_text()[:200_000].lower()


def test_bench_quick_prints_json_last():
    r = subprocess.run([sys.executable, "-m", "gpt.bench", "--quick", "--nanogpt-baseline"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(last) == {"ms_per_step", "seconds_to_val_1_89", "final_val_loss", "peak_rss_mb",
                         "sample_tok_s_cache", "sample_tok_s_nocache", "nanogpt_ratio"}
    assert last["nanogpt_ratio"] is None  # a --quick baseline (60 steps) has nothing to compare against
    assert last["ms_per_step"] > 0 and last["peak_rss_mb"] > 0
    assert "greedy outputs identical: True" in r.stdout
    assert "[this recipe] final val loss" in r.stdout
    assert "nanoGPT's recipe, 60 steps:" in r.stdout and "[nanoGPT recipe] final val loss" in r.stdout
