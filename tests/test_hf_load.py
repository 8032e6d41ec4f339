"""gpt.load_pretrained against the reference implementation (transformers' GPT2LMHeadModel), offline.

The random reference model has its weights scaled up, so the GELU variant, every Conv1D
transpose and every LayerNorm parameter change the logits visibly.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gpt
from gpt import CheckpointError, load_pretrained
from gpt.hf import HF_FOLDER, HUB_PAGE

transformers = pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parent.parent


def _scale_up(model) -> None:
    """Weights large enough that gelu vs gelu_tanh and a missed transpose show in the logits."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:  # biases
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith("wte.weight") or name.endswith("wpe.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:  # Conv1D (in, out): std 1.5 / sqrt(fan_in)
                p.copy_(1.5 / p.shape[0] ** 0.5 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A random GPT2LMHeadModel (2 layers, 4 heads, n_embd 64, full vocab), saved with safetensors."""
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=128, vocab_size=50257,
                                  layer_norm_epsilon=1e-4, attn_implementation="eager")  # eager: attentions out
    ref = transformers.GPT2LMHeadModel(cfg)
    _scale_up(ref)
    ref.eval()
    folder = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    ref.save_pretrained(folder, safe_serialization=True)
    return ref, folder


@pytest.fixture(scope="module")
def prompt_ids():
    tok = gpt.get_tokenizer("gpt2")
    return torch.tensor([tok.encode("ROMEO: But soft, what light through yonder window breaks?")])


def _hf_logits(ref, idx):
    with torch.no_grad():
        return ref(idx).logits


def test_logits_match_transformers(reference, prompt_ids):
    ref, folder = reference
    model, tok = load_pretrained(folder)
    assert tok.vocab_size == 50257 and tok.name == "gpt2"
    cfg = model.config
    assert (cfg.activation, cfg.layer_norm_eps, cfg.block_size, cfg.bias, cfg.tie_weights) == (
        "gelu_tanh", 1e-4, 128, True, True)
    assert model.lm_head.weight is model.wte.weight and not model.training
    with torch.no_grad():
        ours = model(prompt_ids)[0]
    theirs = _hf_logits(ref, prompt_ids)
    assert theirs.abs().max() > 5  # the scaled-up weights give large logits
    assert (ours - theirs).abs().max().item() <= 2e-5


def test_the_gelu_variant_matters(reference, prompt_ids):
    """Exact GELU instead of the tanh approximation moves the logits: the test above can tell them apart."""
    ref, folder = reference
    model, _ = load_pretrained(folder)
    exact = gpt.GPT(gpt.GPTConfig(**{**model.config.to_dict(), "activation": "gelu"}))
    exact.load_state_dict(model.state_dict())
    with torch.no_grad():
        diff = (exact.eval()(prompt_ids)[0] - _hf_logits(ref, prompt_ids)).abs().max().item()
    assert diff > 1e-3


def test_greedy_continuation_matches_generate(reference, prompt_ids):
    ref, folder = reference
    model, _ = load_pretrained(folder)
    ours = model.generate(prompt_ids, 20, temperature=0)
    with torch.no_grad():
        theirs = ref.generate(prompt_ids, do_sample=False, max_new_tokens=20, min_new_tokens=20,
                              pad_token_id=50256)
    assert ours.shape == (1, prompt_ids.size(1) + 20)
    assert ours.tolist() == theirs.tolist()


def test_trace_matches_fast_path_and_transformers_attention(reference, prompt_ids):
    ref, folder = reference
    model, _ = load_pretrained(folder)
    tr = model.trace(prompt_ids)
    with torch.no_grad():
        fast = model(prompt_ids)[0]
        out = ref(prompt_ids, output_attentions=True)
    assert (tr.logits - fast).abs().max().item() <= 1e-5
    assert len(out.attentions) == len(tr.layers) == 2
    for ours, theirs in zip(tr.layers, out.attentions):
        assert (ours.weights - theirs).abs().max().item() <= 1e-5


def test_file_without_the_transformer_prefix(reference, prompt_ids, tmp_path):
    """The Hub's openai-community/gpt2 names tensors 'h.0.attn.c_attn.weight' and keeps the mask buffers."""
    ref, folder = reference
    state = {k.removeprefix("transformer."): v.contiguous() for k, v in ref.state_dict().items()
             if k != "lm_head.weight"}
    assert "h.0.attn.c_attn.weight" in state and not any(k.startswith("transformer.") for k in state)
    state["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 128, 128))
    state["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folder / "config.json", bare / "config.json")
    save_file(state, str(bare / "model.safetensors"))
    model, _ = load_pretrained(str(bare))
    with torch.no_grad():
        assert (model(prompt_ids)[0] - _hf_logits(ref, prompt_ids)).abs().max().item() <= 2e-5


# -- bad input: each a specific message --------------------------------------------------------------


def _copy(folder, dest: Path, config_edit=None) -> Path:
    shutil.copytree(folder, dest)
    if config_edit:
        cfg = json.loads((dest / "config.json").read_text())
        config_edit(cfg)
        (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def test_folder_without_config(reference, tmp_path):
    d = tmp_path / "noconf"
    d.mkdir()
    shutil.copy(reference[1] / "model.safetensors", d)
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_pretrained(d)
    with pytest.raises(CheckpointError, match="no folder 'nowhere'"):
        load_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(model_type="llama"), "model_type 'llama'"),
    (lambda c: c.update(architectures=["GPT2ForSequenceClassification"]), "GPT2ForSequenceClassification"),
    (lambda c: c.update(add_cross_attention=True), "add_cross_attention"),
    (lambda c: c.update(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    (lambda c: c.update(reorder_and_upcast_attn=True), "reorder_and_upcast_attn"),
    (lambda c: c.update(n_inner=100), "n_inner"),
    (lambda c: c.update(activation_function="relu"), "activation_function = 'relu'"),
    (lambda c: c.update(vocab_size=50304), "vocab_size 50304"),
    (lambda c: c.update(n_head=5), "n_embd \\(64\\) must be divisible by n_head \\(5\\)"),
])
def test_config_gpt_cannot_represent(reference, tmp_path, edit, match):
    with pytest.raises(CheckpointError, match=match):
        load_pretrained(_copy(reference[1], tmp_path / "m", edit))


def test_mismatched_tensor_shapes(reference, tmp_path):
    d = _copy(reference[1], tmp_path / "m", lambda c: c.update(n_positions=256))
    with pytest.raises(CheckpointError, match=r"tensor wpe.weight has shape \(128, 64\) but .* needs \(256, 64\)"):
        load_pretrained(d)
    d2 = _copy(reference[1], tmp_path / "m2", lambda c: c.update(n_layer=3))
    with pytest.raises(CheckpointError, match="lack 12 tensor"):
        load_pretrained(d2)


def test_truncated_safetensors(reference, tmp_path):
    d = _copy(reference[1], tmp_path / "m")
    w = d / "model.safetensors"
    blob = w.read_bytes()
    for cut in (len(blob) - 1000, 100, 5):
        w.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match="not a complete safetensors file"):
            load_pretrained(d)


class _Payload:
    """Unpickling this runs os.system, which would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "last.ckpt"])
def test_pickled_weights_never_run(reference, tmp_path, name):
    import pickle

    d = tmp_path / "pickled"
    d.mkdir()
    shutil.copy(reference[1] / "config.json", d)
    marker = tmp_path / "pwned"
    (d / name).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match=f"only pickled weights \\({name}\\).*never .*[Cc]onvert it to safetensors"):
        load_pretrained(d)
    assert not marker.exists()
    pickle.loads((d / name).read_bytes())  # the payload is real: unpickling it does create the file
    assert marker.exists()


def _run_offline(code: str, tmp_path: Path, offline_flag: bool) -> subprocess.CompletedProcess:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on: the "Hub" refuses at once, and no
        sock.bind(("127.0.0.1", 0))  # packet ever leaves this machine
        closed = sock.getsockname()[1]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(ROOT),
           "HF_ENDPOINT": f"http://127.0.0.1:{closed}"}
    env.pop("HF_HUB_OFFLINE", None)
    if offline_flag:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)  # the probe gives up after ~3 s; huggingface_hub alone retries ~25 s


@pytest.mark.parametrize("offline_flag", [True, False], ids=["HF_HUB_OFFLINE", "no-network"])
def test_repo_id_offline_names_the_folder(tmp_path, offline_flag):
    """This machine has no route to the Hub: a repo id fails fast with the folder to put the files in."""
    code = ("import time, gpt\n"
            "for rid in ('openai-community/gpt2', 'nobody-xyz/does-not-exist'):\n"
            "    t0 = time.perf_counter()\n"
            "    try:\n        gpt.load_pretrained(rid)\n"
            "    except gpt.CheckpointError as e:\n        print(e)\n"
            "    print('seconds', time.perf_counter() - t0)\n")
    r = _run_offline(code, tmp_path, offline_flag)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.strip().splitlines() if not ln.startswith("seconds")]
    assert len(lines) == 2, r.stdout
    # fails fast: the reachability probe gives up within ~3 s (huggingface_hub's own retries take ~25 s)
    assert all(float(ln.split()[1]) < 12 for ln in r.stdout.splitlines() if ln.startswith("seconds")), r.stdout
    assert "Hub is unreachable" in lines[0] and f"{HF_FOLDER}/gpt2/" in lines[0]
    assert f"{HUB_PAGE}openai-community/gpt2" in lines[0]  # the message names the download page (text only)
    assert f"{HF_FOLDER}/does-not-exist/" in lines[1]
    assert "Traceback" not in r.stderr


def test_invalid_repo_id_or_path(tmp_path):
    with pytest.raises(CheckpointError, match="no folder 'x'"):
        load_pretrained("not a repo id/x")
    f = tmp_path / "config.json"
    f.write_text("{}")
    with pytest.raises(CheckpointError, match="is a file"):
        load_pretrained(f)


def test_sharded_and_half_precision_files(reference, prompt_ids, tmp_path):
    """save_pretrained's shards (model.safetensors.index.json) and float16 weights load too (as float32)."""
    ref, _ = reference
    ref.save_pretrained(tmp_path / "sharded", safe_serialization=True, max_shard_size="2MB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "sharded" / "model.safetensors").exists()
    model, _ = load_pretrained(tmp_path / "sharded")
    with torch.no_grad():
        assert (model(prompt_ids)[0] - _hf_logits(ref, prompt_ids)).abs().max().item() <= 2e-5
    copy.deepcopy(ref).half().save_pretrained(tmp_path / "half", safe_serialization=True)  # the fixture stays fp32
    model, _ = load_pretrained(tmp_path / "half")
    assert model.wte.weight.dtype == torch.float32
    with torch.no_grad():
        assert (model(prompt_ids)[0] - _hf_logits(ref, prompt_ids)).abs().max().item() < 0.5  # float16 rounding
    (tmp_path / "sharded" / sorted((tmp_path / "sharded").glob("model-*.safetensors"))[0].name).unlink()
    with pytest.raises(CheckpointError, match="lacks the weight shard"):
        load_pretrained(tmp_path / "sharded")


def test_max_params_is_checked_from_the_config(reference):
    from gpt.hf import n_params, read_hf_config

    ref, folder = reference
    model, _ = load_pretrained(folder, max_params=10**9)
    assert n_params(read_hf_config(folder)) == model.num_params() == ref.num_parameters()
    with pytest.raises(CheckpointError, match=f"has {model.num_params():,} parameters; at most 1,000 can be"):
        load_pretrained(folder, max_params=1000)
