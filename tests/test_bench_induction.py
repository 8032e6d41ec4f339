"""``python -m explainer.bench --induction`` runs end to end (a few steps): one JSON line last, with the
contract's keys, and ``--out`` writes a checkpoint that ``load_checkpoint`` loads."""
from __future__ import annotations

import json

import pytest

from explainer import bench, head_roles
from gpt import load_checkpoint


def test_induction_bench_prints_its_json_and_saves_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "induction"
    result = bench.main(["--induction", "--iters", "25", "--eval-every", "10", "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == result
    assert {"induction_step", "induction_seconds", "max_induction_score"} <= set(result)
    assert result["steps"] == 25 and sum(line.startswith("step ") for line in lines) == 3  # 10, 20 and the last
    assert result["induction_step"] is None and result["induction_seconds"] is None  # 25 steps: too early
    assert 0 <= result["max_induction_score"] < 0.4
    model, tok = load_checkpoint(out)
    assert model.config.n_layer == 2 and not model.config.mlp and not model.config.tie_weights
    assert tok.vocab_size == 65
    assert head_roles(model).best_head("induction")[2] == pytest.approx(result["final_induction_score"], abs=5e-5)
