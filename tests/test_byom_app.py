"""Bring your own model through the launched app and gradio_client: an uploaded checkpoint zip is
that client's model only; a Hugging Face GPT-2 folder is everyone's; bad zips are refused in words."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import torch

gradio_client = pytest.importorskip("gradio_client")
transformers = pytest.importorskip("transformers")
from hf_helpers import save_random_gpt2  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from explainer.ui import byom  # noqa: E402
from gpt import GPT, preset_config, save_checkpoint  # noqa: E402

INSPECT = dict(prompt="ROMEO: But soft", layer=0, head=0, causal=True, scale="×1", query=5, key=0,
               temperature=1.0, top_k=0, top_p=1.0)


@pytest.fixture(scope="module")
def checkpoint_zip(tmp_path_factory, char_tok) -> Path:
    torch.manual_seed(0)
    model = GPT(preset_config("block", char_tok.vocab_size, n_embd=32, block_size=32))
    root = tmp_path_factory.mktemp("zip")
    save_checkpoint(model, char_tok, root / "playattention-block-char-step3", step=3)
    return Path(shutil.make_archive(str(root / "ckpt"), "zip", root_dir=root, base_dir="playattention-block-char-step3"))


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    save_random_gpt2(root / "tiny-gpt2", n_layer=2, n_head=3, n_embd=48, n_positions=64)
    return root


@pytest.mark.slow
def test_uploaded_checkpoint_is_this_clients_model(app_url, checkpoint_zip, tmp_path):
    a, b = Client(app_url, verbose=False), Client(app_url, verbose=False)
    try:
        value, note = a.predict(handle_file(str(checkpoint_zip)), api_name="/upload_checkpoint")
        assert "your uploaded checkpoint (char, step 3)" in note and "2 layers × 4 heads" in note
        out = a.predict(model="uploaded", **INSPECT, api_name="/inspect")
        assert out[0].startswith("**your uploaded checkpoint (char, step 3)**") and "2 layers × 4 heads" in out[0]
        with pytest.raises(AppError, match="has not uploaded a checkpoint yet"):
            b.predict(model="uploaded", **INSPECT, api_name="/inspect")
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("../../evil.txt", "x")
        with pytest.raises(AppError, match="a path outside its folder") as e:
            a.predict(handle_file(str(bad)), api_name="/upload_checkpoint")
        assert "Traceback" not in str(e.value)
        with pytest.raises(AppError, match="not a zip file"):
            a.predict(handle_file(str(_not_zip(tmp_path))), api_name="/upload_checkpoint")
    finally:
        a.close()
        b.close()


def _not_zip(tmp_path: Path) -> Path:
    p = tmp_path / "fake.zip"
    p.write_bytes(b"not a zip at all")
    return p


@pytest.mark.slow
def test_hf_folder_model_is_in_every_clients_menu_and_inspects(app_url, hf_root, monkeypatch):
    monkeypatch.delenv(byom.ENV, raising=False)
    monkeypatch.setattr(byom, "hf_root", lambda: hf_root)
    monkeypatch.setattr(byom, "MODELS", byom.HFModels())
    c = Client(app_url, verbose=False)
    try:
        byom.MODELS.get("hf-tiny-gpt2", wait_s=120)
        out = c.predict(model="hf-tiny-gpt2", **INSPECT, api_name="/inspect")
        assert out[0].startswith("**tiny-gpt2 (GPT-2 from Hugging Face, 2 layers × 3 heads)**")
        assert "d_k = 16" in out[0]  # the model's own shape, 48 / 3 heads
        text = c.predict(prompt="Hello", model="hf-tiny-gpt2", max_new_tokens=5, temperature=0, top_k=0,
                         top_p=1.0, seed=0, api_name="/generate")
        assert text.startswith("Hello") and len(text) > len("Hello")
    finally:
        c.close()


@pytest.mark.slow
def test_hf_model_head_roles_and_logit_lens_are_its_own_numbers(app_url, hf_root, monkeypatch):
    """Head roles and the logit lens work on a Hugging Face GPT-2 (its own numbers); before/after training
    is said to be not applicable, not drawn from a random twin."""
    import numpy as np

    import explainer as fx
    from test_roles_panel import array, figure

    monkeypatch.delenv(byom.ENV, raising=False)
    monkeypatch.setattr(byom, "hf_root", lambda: hf_root)
    monkeypatch.setattr(byom, "MODELS", byom.HFModels())
    c = Client(app_url, verbose=False)
    try:
        loaded = byom.MODELS.get("hf-tiny-gpt2", wait_s=120)
        grid, before, words = c.predict("hf-tiny-gpt2", api_name="/heads")
        roles = fx.head_roles(loaded.model)
        fig = figure(grid)
        assert fig.layout.title.text.startswith("tiny-gpt2 (GPT-2 from Hugging Face")
        for t in fig.data:
            assert array(t.z).shape == (2, 3)
            np.testing.assert_allclose(array(t.z), roles.scores[t.name], atol=1e-6)
        assert roles.describe("induction") in words
        note = figure(before)
        assert note.layout.title.text == "Before training: not applicable" and not note.data
        assert "was trained elsewhere" in note.layout.annotations[0].text
        plot = c.predict("Hello there, my friend", "hf-tiny-gpt2", api_name="/lens")
        lens = fx.logit_lens(loaded.model, loaded.tokenizer, "Hello there, my friend")
        (heat,) = figure(plot).data
        assert array(heat.z).shape == (3, lens.top_probs.shape[1])  # embedding + 2 layers, one column a token
        np.testing.assert_allclose(array(heat.z), lens.top_probs[:, :, 0], atol=1e-6)
    finally:
        c.close()
