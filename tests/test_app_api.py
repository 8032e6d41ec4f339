"""The app through its public API: launched in-process and driven with gradio_client.

Tiny presets only; nothing here relies on timing (other jobs may be loading the CPUs).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

PROMPT = "ROMEO: But soft"
# /train arguments after (corpus, upload, tokenizer, preset): a bigram that would run long
BIGRAM = dict(iters=5000, lr=1e-3, batch_size=8, block_size=32, n_layer=0, n_head=0, n_embd=32,
              dropout=0.0, seed=0, sample_every=0)


@pytest.fixture(scope="module")
def url(app_url):
    return app_url


@pytest.fixture(scope="module")
def client(url):
    c = Client(url, verbose=False)
    yield c
    c.close()


def train_args(corpus="Tiny Shakespeare", upload=None, tokenizer="char", preset="bigram", **overrides):
    return dict(corpus=corpus, upload=upload, tokenizer=tokenizer, preset=preset, **{**BIGRAM, **overrides})


def points(plot: dict) -> int:
    """Number of train-loss points in a streamed loss figure."""
    return len(json.loads(plot["plot"])["data"][0].get("x") or [])


def test_api_names_and_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/train", "/export", "/generate", "/inspect", "/compare"} <= set(api)
    assert [p["parameter_name"] for p in api["/generate"]["parameters"]] == [
        "prompt", "model", "max_new_tokens", "temperature", "top_k", "top_p", "seed"]


def test_train_streams_then_cancel_keeps_model_for_this_session_only(url, client):
    job = client.submit(**train_args(), api_name="/train")
    seen = []
    for out in job:
        seen.append(points(out[0]))
        if len(seen) >= 4:
            break
    job.cancel()
    assert seen[-1] > seen[0] >= 0 and sorted(seen) == seen, seen  # the curve gained points
    plot, progress, stats, sample, ckpt, report, roles = client.predict(api_name="/export")
    assert "stopped" in progress and "parameters" in stats and sample
    with zipfile.ZipFile(ckpt) as z:
        names = z.namelist()
    assert any(n.endswith("meta.json") for n in names) and any(n.endswith(".safetensors") for n in names)
    text = Path(report).read_text()
    assert "Sample before training" in text and "val bits per character" in text
    step = int(json.loads(plot["plot"])["data"][0]["x"][-1])
    assert 0 < step < BIGRAM["iters"]
    # the stopped model is this session's model ...
    out = client.predict(PROMPT, "session-char", 20, 0.0, 0, 1.0, 0, api_name="/generate")
    assert out.startswith(PROMPT) and len(out) == len(PROMPT) + 20
    # ... and nobody else's
    other = Client(url, verbose=False)
    with pytest.raises(AppError, match="has not trained a char model"):
        other.predict(PROMPT, "session-char", 20, 0.0, 0, 1.0, 0, api_name="/generate")
    other.close()


def test_train_to_the_end_on_an_upload(url, tmp_path):
    corpus = tmp_path / "abc.txt"
    corpus.write_text("abc cab bac acb " * 200)
    c = Client(url, verbose=False)
    try:
        outs = list(c.submit(**train_args(corpus="My uploaded .txt", upload=handle_file(str(corpus)), iters=20,
                                          block_size=8, sample_every=10), api_name="/train"))
        plot, progress, stats, sample, ckpt, report, roles = outs[-1]
        assert "step 20 / 20" in progress and "finished" in progress and "bits/char" in stats
        assert Path(ckpt).suffix == ".zip" and "abc.txt" in Path(report).read_text()
        assert sample.startswith("[step 20]")
        with pytest.raises(AppError, match="not in this model's vocabulary"):
            c.predict("xyz", "session-char", 5, 1.0, 0, 1.0, 0, api_name="/generate")
    finally:
        c.close()


def test_generate_is_seeded_and_matches_the_model(client):
    from explainer.ui.registry import untrained
    from gpt.generate import generate_text

    a = client.predict(PROMPT, "untrained-char", 30, 0.8, 0, 1.0, 7, api_name="/generate")
    b = client.predict(PROMPT, "untrained-char", 30, 0.8, 0, 1.0, 7, api_name="/generate")
    model, tok, _ = untrained("char")
    expected = generate_text(model, tok, PROMPT, max_new_tokens=30, temperature=0.8, seed=7).text
    assert a == b == PROMPT + expected


def test_generate_with_a_prompt_longer_than_the_context_returns_the_text_alone(client):
    from explainer.ui.registry import untrained
    from gpt.generate import generate_text

    model, tok, _ = untrained("char")
    prompt = "To be, or not to be: " * 20  # longer than block_size characters
    assert len(prompt) > model.config.block_size
    job = client.submit(prompt, "untrained-char", 12, 0.8, 0, 1.0, 3, api_name="/generate")
    out = job.result(timeout=120)
    expected = generate_text(model, tok, prompt, max_new_tokens=12, temperature=0.8, seed=3)
    assert expected.cropped and out == prompt + expected.text  # no note glued onto the text
    shown = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        if getattr(update, "log", None):
            shown.append(update.log[0])
    assert any("conditioned on its last" in m for m in shown), shown


def test_inspect_figures_are_explainers(client):
    from explainer import all_heads_figure, five_stages_figure, next_token_figure, trace_prompt
    from explainer.ui.registry import untrained

    out = client.predict(PROMPT, "untrained-char", 1, 2, True, "×1", 4, 2, 0.8, 0, 1.0, api_name="/inspect")
    notes, stages, grid, head_view, qk, dist, *_ = out
    model, tok, _ = untrained("char")
    tr = trace_prompt(model, tok, PROMPT)
    assert f"{len(PROMPT)} tokens" in notes
    assert json.loads(stages["plot"]) == json.loads(five_stages_figure(tr, 1, 2).to_json())
    assert json.loads(grid["plot"]) == json.loads(all_heads_figure(tr).to_json())
    assert json.loads(dist["plot"]) == json.loads(next_token_figure(tr, tok, temperature=0.8).to_json())
    from explainer.figures.heads import head_view_data  # the head view is an HTML view fed with this JSON

    assert json.loads(head_view) == json.loads(json.dumps(head_view_data(tr, 1, 2)))
    assert json.loads(qk["plot"])["data"]


def test_inspect_toggles_change_the_trace(client):
    args = (PROMPT, "untrained-char", 0, 0)
    on = client.predict(*args, True, "×1", 4, 2, 1.0, 0, 1.0, api_name="/inspect")
    off = client.predict(*args, False, "unscaled", 4, 2, 1.0, 0, 1.0, api_name="/inspect")
    assert "causal mask on" in on[0] and "causal mask off" in off[0] and "scale 1 " in off[0]
    assert on[1]["plot"] != off[1]["plot"]


def test_inspect_says_when_a_head_does_not_exist(client):
    from explainer.ui.registry import untrained

    n_head = untrained("char")[0].config.n_head
    notes = client.predict(PROMPT, "untrained-char", 0, n_head, True, "×1", 0, 0, 1.0, 0, 1.0, api_name="/inspect")[0]
    assert f"head {n_head} does not exist in this model: showing layer 0, head {n_head - 1}" in notes


def test_compare_grid(client):
    out = client.predict(PROMPT, 0, 0.8, 12, api_name="/compare")
    char_tokens, gpt2_tokens, *cells = out
    assert char_tokens["label"].startswith(f"char tokenizer: {len(PROMPT)} tokens")
    assert "".join(t["token"] for t in gpt2_tokens["value"]).replace("·", " ") == PROMPT
    mds, texts = cells[:4], cells[4:]
    assert all("bits/char" in md for md in mds[:2]) and all(t.startswith(PROMPT) for t in texts[:2])
    assert "12** new tokens" in mds[0] and "12** new tokens" in mds[1]


def test_shipped_checkpoint_serves_when_present(url, tmp_path, monkeypatch):
    import gpt.checkpoint as checkpoint
    from explainer.ui import registry
    from gpt import TrainConfig
    from gpt.run import build_run

    run = build_run(preset="single-head", tokenizer="char", data=None,
                    train=TrainConfig(max_iters=3, batch_size=4, eval_interval=3, eval_iters=1))
    list(run.trainer.run())
    checkpoint.save_checkpoint(run.model, run.tokenizer, tmp_path / "shakespeare-char", step=3, val_bpc=3.25)
    monkeypatch.setattr(checkpoint, "CHECKPOINTS_DIR", tmp_path)
    registry.stock.cache_clear()  # earlier tests loaded the real shipped model: forget it
    registry.untrained_bpc.cache_clear()
    c = Client(url, verbose=False)  # a fresh session: no model of its own
    try:
        trained_char = c.predict(PROMPT, 0, 0.8, 5, api_name="/compare")[4]
        assert "shakespeare-char (step 3)" in trained_char and "3.25** bits/char" in trained_char
        notes = c.predict(PROMPT, "shakespeare-char", 0, 0, True, "×1", 0, 0, 1.0, 0, 1.0, api_name="/inspect")[0]
        assert "shakespeare-char (step 3)" in notes and "1 layers × 1 heads" in notes
    finally:
        c.close()
        registry.stock.cache_clear()  # the untrained models took the fake checkpoint's shape
        registry.untrained_bpc.cache_clear()

