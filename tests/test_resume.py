"""Resumable training: a run stopped at step 20 and resumed ends with the weights of the straight
40-step run. Dropout is on, so the torch RNG state matters as much as the optimiser moments,
the schedule position and the batch / eval generators."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt import GPT, CheckpointError, Trainer, TrainConfig, preset_config, save_checkpoint
from gpt.checkpoint import load_checkpoint
from gpt.resume import (corpus_sha256, decode, encode, load_train_state, resume_run, save_train_state,
                        state_bytes, state_from_bytes)
from gpt.train import main

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = dict(max_iters=40, batch_size=4, lr=3e-3, warmup_iters=5, eval_interval=10, eval_iters=2, seed=3)


def _trainer(char_data, char_tok, **cfg) -> Trainer:
    torch.manual_seed(3)
    model = GPT(preset_config("block", char_tok.vocab_size, n_embd=32, block_size=32, dropout=0.1))
    return Trainer(model, char_data, TrainConfig(**{**SETTINGS, **cfg}), tokenizer=char_tok)


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sb = b.state_dict()
    return max((v - sb[k]).abs().max().item() for k, v in a.state_dict().items())


def _stop_and_save(char_data, char_tok, shakespeare, folder: Path, **cfg) -> Trainer:
    t = _trainer(char_data, char_tok, stop_at=20, **cfg)
    events = list(t.run())
    assert t.step == 20 and events[-1].step == 20 and not events[-1].done
    extra = save_train_state(t, folder, {"data": None, "corpus_sha256": corpus_sha256(shakespeare)})
    save_checkpoint(t.model, char_tok, folder, step=t.step, **extra)
    return t


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_stopped_and_resumed_equals_the_straight_run(char_data, char_tok, shakespeare, tmp_path, optimizer):
    straight = _trainer(char_data, char_tok, optimizer=optimizer)
    full = list(straight.run())
    assert straight.step == 40
    _stop_and_save(char_data, char_tok, shakespeare, tmp_path / "ckpt", optimizer=optimizer)
    run, meta, state = resume_run(tmp_path / "ckpt")
    assert run.trainer.step == 20 and meta["train_state_step"] == 20
    rest = list(run.trainer.run())
    assert [e.step for e in rest] == list(range(21, 41)) and rest[-1].done
    assert _max_diff(run.model, straight.model) <= 1e-5
    assert [e.train_loss for e in rest] == [e.train_loss for e in full[20:]]  # the same batches and dropout
    assert [e.val_loss for e in rest] == [e.val_loss for e in full[20:]]  # the same eval stream
    assert [e.lr for e in rest] == [e.lr for e in full[20:]]  # the same schedule position


def test_each_part_of_the_state_matters(char_data, char_tok, shakespeare, tmp_path):
    """Resuming without the optimiser moments, or with fresh RNG streams, does not give the same weights:
    the test above would see a state that lost any of them."""
    straight = _trainer(char_data, char_tok)
    list(straight.run())
    _stop_and_save(char_data, char_tok, shakespeare, tmp_path / "ckpt")
    full_state = load_train_state(tmp_path / "ckpt")
    for broken in ("optimizer", "torch", "batch"):
        model, _ = load_checkpoint(tmp_path / "ckpt")
        t = Trainer(model.train(), char_data, TrainConfig(**SETTINGS), tokenizer=char_tok)
        state = {**full_state, "rng": dict(full_state["rng"])}
        if broken == "optimizer":
            state["optimizer"] = t.optimizer.state_dict()
        else:
            state["rng"][broken] = torch.Generator().manual_seed(99).get_state()
        t.restore(state)
        list(t.run())
        assert _max_diff(model, straight.model) > 1e-4, broken


def test_state_round_trips_through_safetensors(char_data, char_tok):
    t = _trainer(char_data, char_tok, stop_at=3)
    list(t.run())
    state = t.state()
    back = state_from_bytes(state_bytes(state))
    assert back["step"] == 3 and back["train_config"] == state["train_config"]
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]  # tuples (betas) stay tuples
    for pid, s in state["optimizer"]["state"].items():
        assert set(back["optimizer"]["state"][pid]) == set(s)
        assert all(torch.equal(back["optimizer"]["state"][pid][k], v) for k, v in s.items())
    assert all(torch.equal(back["rng"][k], v) for k, v in state["rng"].items())
    odd = {1: (1.5, float("inf"), None), "x": [True, {"$dict": 2}]}
    tensors: dict = {}
    assert decode(json.loads(json.dumps(encode(odd, tensors))), tensors) == odd


def test_state_is_refused_mid_step_and_after_a_settings_change(char_data, char_tok):
    t = _trainer(char_data, char_tok, stop_at=2)
    list(t.run())
    other = _trainer(char_data, char_tok, lr=1e-3)
    with pytest.raises(ValueError, match="these differ: lr"):
        other.restore(t.state())
    it = t.run()
    t.config.stop_at = 4
    next(it)
    t.mid_step = True  # what an exception inside a step leaves behind
    with pytest.raises(RuntimeError, match="middle of a step"):
        t.state()


# -- the CLI ---------------------------------------------------------------------------------------

CLI = ["--preset", "block", "--n-embd", "32", "--block-size", "32", "--dropout", "0.1", "--max-iters", "40",
       "--batch-size", "4", "--lr", "3e-3", "--warmup-iters", "5", "--eval-interval", "20", "--eval-iters", "2",
       "--seed", "1", "--threads", "1"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpt.train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _weights(folder: Path) -> GPT:
    return load_checkpoint(folder)[0]


@pytest.mark.slow
def test_cli_stop_at_then_resume_equals_the_straight_run(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r = _cli(*CLI, "--stop-at", "20", "--out", str(a))
    assert r.returncode == 0, r.stderr
    assert f"--resume {a} --out DIR" in r.stdout
    meta = json.loads((a / "meta.json").read_text())
    assert meta["step"] == 20 and meta["train_state_step"] == 20 and (a / meta["train_state"]).is_file()
    r = _cli("--resume", str(a), "--out", str(b))
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "at step 20/40" in r.stdout
    r = _cli(*CLI, "--out", str(c))
    assert r.returncode == 0, r.stderr
    assert _max_diff(_weights(b), _weights(c)) <= 1e-5
    done = json.loads((b / "meta.json").read_text())
    assert done["step"] == 40 and "train_state" not in done and not list(b.glob("train-state-*"))
    rows = [list(csv.DictReader(open(d / "loss.csv"))) for d in (b, c)]
    assert [r["step"] for r in rows[0]] == [str(i) for i in range(1, 41)]  # the curve continues
    assert [r["train_loss"] for r in rows[0]] == [r["train_loss"] for r in rows[1]]


def test_resume_of_a_folder_without_training_state(tmp_path, capsys, char_tok):
    save_checkpoint(GPT(preset_config("bigram", char_tok.vocab_size)), char_tok, tmp_path / "done", step=5)
    assert main(["--resume", str(tmp_path / "done"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "carries no training state" in err and "--init-from" in err and "Traceback" not in err
    assert main(["--resume", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "meta.json is missing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _stopped_folder(tmp_path, char_data, char_tok, shakespeare) -> Path:
    folder = tmp_path / "stopped"
    t = _trainer(char_data, char_tok, stop_at=2)
    list(t.run())
    extra = save_train_state(t, folder, {"data": None, "corpus_sha256": corpus_sha256(shakespeare)})
    save_checkpoint(t.model, char_tok, folder, step=2, **extra)
    return folder


def test_corrupted_training_state(tmp_path, capsys, char_data, char_tok, shakespeare):
    folder = _stopped_folder(tmp_path, char_data, char_tok, shakespeare)
    meta = json.loads((folder / "meta.json").read_text())
    path = folder / meta["train_state"]
    blob = bytearray(path.read_bytes())
    for damage in ("flip", "truncate"):
        path.write_bytes(bytes(blob[:-1] + bytes([blob[-1] ^ 1])) if damage == "flip" else bytes(blob[:200]))
        assert main(["--resume", str(folder), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert "training state" in err and "SHA-256 mismatch" in err and "Traceback" not in err, damage
    path.unlink()
    with pytest.raises(CheckpointError, match="training state .* is missing"):
        load_train_state(folder)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")  # hash made to match: still not a state file
    (folder / "meta.json").write_text(json.dumps({**meta, "train_state_sha256": __import__("hashlib").sha256(
        path.read_bytes()).hexdigest()}))
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load_train_state(folder)


def test_resume_refuses_new_settings_and_a_changed_corpus(tmp_path, capsys, char_data, char_tok, shakespeare):
    folder = _stopped_folder(tmp_path, char_data, char_tok, shakespeare)
    assert main(["--resume", str(folder), "--lr", "1e-2", "--out", str(tmp_path / "o")]) == 2
    assert "--lr cannot be given with it" in capsys.readouterr().err
    assert main(["--resume", str(folder), "--stop-at", "99", "--out", str(tmp_path / "o")]) == 2
    assert "stop_at must be a whole number from 1 to max_iters (40)" in capsys.readouterr().err
    assert main([*CLI, "--stop-at", "10", "--half", "--out", str(tmp_path / "o")]) == 2
    assert "drop --half or --stop-at" in capsys.readouterr().err
    state = load_train_state(folder)
    text = tmp_path / "corpus.txt"
    text.write_text(shakespeare[:-10])
    meta = json.loads((folder / "meta.json").read_text())
    state["run"] = {"data": str(text), "corpus_sha256": corpus_sha256(shakespeare)}
    blob = state_bytes(state)
    (folder / meta["train_state"]).write_bytes(blob)
    (folder / "meta.json").write_text(json.dumps({**meta, "train_state_sha256": __import__("hashlib").sha256(
        blob).hexdigest()}))
    assert main(["--resume", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "is not the text this run trained on" in capsys.readouterr().err
    assert math.isfinite(meta["n_params"])


def test_saving_again_without_state_removes_the_old_state_file(tmp_path, char_data, char_tok, shakespeare):
    folder = _stopped_folder(tmp_path, char_data, char_tok, shakespeare)
    assert len(list(folder.glob("train-state-*.safetensors"))) == 1
    model, tok = load_checkpoint(folder)
    save_checkpoint(model, tok, folder, step=40)  # a finished run written over the stopped one
    assert not list(folder.glob("train-state-*.safetensors"))
    with pytest.raises(CheckpointError, match="carries no training state"):
        load_train_state(folder)
