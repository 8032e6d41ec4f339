"""The app's Hugging Face models: found under a folder or in PLAYATTENTION_HF_MODELS, loaded once
in the background, shared read-only, bounded in number and size, failures said in words."""
from __future__ import annotations

import shutil
import threading

import pytest

from explainer import trace_prompt
from explainer.ui import byom

transformers = pytest.importorskip("transformers")
from hf_helpers import save_random_gpt2  # noqa: E402


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory):
    """checkpoints/hf/ stand-in with one small random GPT-2 saved by transformers."""
    root = tmp_path_factory.mktemp("hf")
    save_random_gpt2(root / "tiny-gpt2", n_layer=2, n_head=4, n_embd=64, n_positions=64)
    (root / "not-a-model").mkdir()  # no config.json: not listed
    return root


def test_folders_are_listed_and_loaded_once_in_the_background(hf_root, monkeypatch):
    monkeypatch.delenv(byom.ENV, raising=False)
    models = byom.HFModels(root=hf_root)
    assert models.keys() == ["hf-tiny-gpt2"]
    assert models.status("hf-tiny-gpt2") == "not loaded"
    models.start("hf-tiny-gpt2")
    slot = models.slots["hf-tiny-gpt2"]
    assert slot.thread.name.startswith("playattention-hf-") and slot.thread is not threading.current_thread()
    loaded = models.get("hf-tiny-gpt2", wait_s=120)
    assert models.status("hf-tiny-gpt2") == "ready" and "loading" not in models.label("hf-tiny-gpt2")
    assert models.get("hf-tiny-gpt2").model is loaded.model  # shared, never copied per visitor
    assert not any(p.requires_grad for p in loaded.model.parameters()) and not loaded.model.training
    assert loaded.tokenizer.vocab_size == 50257 and "2 layers × 4 heads" in loaded.label
    tr = trace_prompt(loaded.model, loaded.tokenizer, "ROMEO: But soft")
    assert tr.weights.shape[:2] == (2, 4)


def test_a_model_still_loading_says_so(hf_root, monkeypatch):
    monkeypatch.delenv(byom.ENV, raising=False)
    models = byom.HFModels(root=hf_root)
    gate = threading.Event()
    real = models._load
    monkeypatch.setattr(models, "_load", lambda *a: (gate.wait(30), real(*a)))
    models.start("hf-tiny-gpt2")
    assert "loading…" in models.label("hf-tiny-gpt2")
    with pytest.raises(ValueError, match="tiny-gpt2 is still loading"):
        models.get("hf-tiny-gpt2")
    gate.set()
    assert models.get("hf-tiny-gpt2", wait_s=120).key == "hf-tiny-gpt2"


def test_repo_ids_from_the_environment_offline(hf_root, monkeypatch):
    """This machine cannot reach the Hub: the listed repo fails with the folder to put its files in."""
    monkeypatch.setenv(byom.ENV, " openai-community/gpt2 , not a repo id!, openai-community/gpt2")
    models = byom.HFModels(root=hf_root)
    assert models.keys() == ["hf-tiny-gpt2", "hf-openai-community--gpt2"]
    with pytest.raises(ValueError) as e:
        models.get("hf-openai-community--gpt2", wait_s=60)
    assert "cannot be loaded" in str(e.value) and "checkpoints/hf/gpt2/" in str(e.value)
    assert models.status("hf-openai-community--gpt2") == "failed"
    assert "cannot be loaded" in models.label("hf-openai-community--gpt2")


def test_size_and_count_limits(hf_root, tmp_path, monkeypatch):
    monkeypatch.delenv(byom.ENV, raising=False)
    shutil.copytree(hf_root / "tiny-gpt2", tmp_path / "a")
    shutil.copytree(hf_root / "tiny-gpt2", tmp_path / "b")
    models = byom.HFModels(root=tmp_path)
    monkeypatch.setattr(byom, "MAX_HF_MODELS", 1)
    models.get("hf-a", wait_s=120)
    with pytest.raises(ValueError, match="holds at most 1 GPT-2 models at once"):
        models.get("hf-b")
    monkeypatch.setattr(byom, "MAX_HF_MODELS", 3)
    monkeypatch.setattr(byom, "MAX_HF_PARAMS", 1000)
    models.forget("hf-b")
    with pytest.raises(ValueError, match="b cannot be loaded: the model in 'b' has 3,3.*parameters; at most 1,000"):
        models.get("hf-b", wait_s=60)


def test_unknown_key_and_broken_folder(hf_root, tmp_path, monkeypatch):
    monkeypatch.delenv(byom.ENV, raising=False)
    (tmp_path / "pickled").mkdir()
    shutil.copy(hf_root / "tiny-gpt2" / "config.json", tmp_path / "pickled")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    models = byom.HFModels(root=tmp_path)
    with pytest.raises(ValueError, match="unknown Hugging Face model 'hf-nothing'"):
        models.get("hf-nothing")
    with pytest.raises(ValueError, match="only pickled weights"):
        models.get("hf-pickled", wait_s=60)


def test_every_session_sees_the_same_hf_model(hf_root, monkeypatch):
    """Wired into the sessions: listed in the menu, resolved by key, the very same object for two visitors."""
    from explainer.ui.session import Session

    monkeypatch.delenv(byom.ENV, raising=False)
    monkeypatch.setattr(byom, "hf_root", lambda: hf_root)
    monkeypatch.setattr(byom, "MODELS", byom.HFModels())
    a, b = Session(), Session()
    assert "hf-tiny-gpt2" in [k for _, k in a.choices()]  # listing it started its background load
    byom.MODELS.slots["hf-tiny-gpt2"].thread.join(120)
    ma, mb = a.model("hf-tiny-gpt2"), b.model("hf-tiny-gpt2")
    assert ma.model is mb.model and ma.tokenizer.vocab_size == 50257
    with pytest.raises(ValueError, match="has not uploaded a checkpoint yet"):
        a.model("uploaded")


def test_the_benchmark_measures_a_folder(hf_root):
    from explainer import bench_hf

    out = bench_hf.measure(hf_root / "tiny-gpt2", tokens=64, runs=1)
    assert out["shape"] == "2x4x64" and out["prompt_tokens"] == 64 and out["params"] > 50257 * 64
    assert out["load_s"] > 0 and out["trace_ms_median"] >= 0 and out["head_roles_ms_median"] >= 0
