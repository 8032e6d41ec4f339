"""A writer killed with SIGKILL mid-save never leaves a broken or mixed checkpoint behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gpt import CheckpointError, load_checkpoint
from gpt.checkpoint import user_checkpoint_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent("""
    import sys, torch
    from gpt import GPT, GPTConfig, get_tokenizer, save_checkpoint
    tok = get_tokenizer("char", chars="abcdefghijklmnopqrstuvwxyz ")
    out = sys.argv[1]
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        models.append(GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=256, block_size=64)))
    i = 0
    print("ready", flush=True)
    while True:  # save forever, alternating two different models, until killed
        save_checkpoint(models[i % 2], tok, out, step=i % 2 + 1)
        i += 1
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_checkpoint_writes(tmp_path):
    ck = tmp_path / "ck"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected = {}
    for seed in (1, 2):  # the two states a reader may see, and nothing else
        torch.manual_seed(seed)
        from gpt import GPT, GPTConfig

        expected[seed] = GPT(GPTConfig(vocab_size=27, n_layer=2, n_head=2, n_embd=256, block_size=64)).wte.weight
    kills = 0
    for attempt in range(8):
        proc = subprocess.Popen([sys.executable, str(script), str(ck)], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.15 + 0.07 * attempt)  # land the kill at different points of the write cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        if not (ck / "meta.json").exists():
            continue  # killed before the first save finished: nothing was promised yet
        model, _, meta = load_checkpoint(ck, with_meta=True)
        assert meta["step"] in (1, 2)
        assert torch.equal(model.wte.weight, expected[meta["step"]])
        weights = [p.name for p in ck.glob("model-*.safetensors")]
        assert meta["weights"] in weights
    assert kills == 8
    assert (ck / "meta.json").exists(), "the writer never completed a save in 8 runs"
    leftovers = [p.name for p in ck.iterdir() if p.name.endswith(".tmp")]
    json.loads((ck / "meta.json").read_text())  # meta.json itself is always whole
    assert all(name.startswith(".") for name in leftovers)  # temp files are hidden and never loaded


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/b", "..", "", ".hidden", "x" * 80, "a..b"])
def test_user_checkpoint_names_cannot_escape(name):
    with pytest.raises(CheckpointError, match="invalid checkpoint name"):
        user_checkpoint_path(name)


def test_user_checkpoint_name_ok():
    p = user_checkpoint_path("my-run_2")
    assert p.parent.name == "user" and p.name == "my-run_2"


def test_load_by_traversal_name_is_not_a_lookup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError):
        load_checkpoint("../../etc/passwd")
