"""Every trace figure builds for a char and a GPT-2 BPE model and draws exactly the trace's numbers."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from explainer import (all_heads_figure, averaging_trick_figure, before_after_figure, causal_mask_figure,
                       five_stages_figure, head_view_figure, next_token_figure, qk_products_figure,
                       top_next_tokens, trace_prompt)
from explainer.figures.heads import MIN_LINE_WEIGHT
from gpt import GPT, next_token_probs, preset_config

PROMPT = "ROMEO: But soft, what light"
LAYER, HEAD = 1, 2


@pytest.fixture(scope="module", params=["char", "gpt2"])
def case(request):
    """(model, tokenizer, causal trace, trace with the mask off) for each tokenizer."""
    if request.param == "char":
        model, tok, _ = request.getfixturevalue("trained_char")
    else:
        model, tok = request.getfixturevalue("tiny_gpt2")
    return model, tok, trace_prompt(model, tok, PROMPT), trace_prompt(model, tok, PROMPT, causal=False)


def _text(fig: go.Figure) -> str:
    return " ".join([fig.layout.title.text or ""] + [a.text for a in fig.layout.annotations])


def _equal(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def test_five_stages_draws_every_stage(case):
    _, _, tr, _ = case
    fig = five_stages_figure(tr, LAYER, HEAD)
    assert isinstance(fig, go.Figure)
    white = pio.templates["plotly_white"]
    assert fig.layout.template.layout == white.layout and fig.layout.template.data.heatmap == white.data.heatmap
    stages = {t.name: t for t in fig.data}
    _equal(stages["QKᵀ"].z, tr.scores[LAYER, HEAD])
    _equal(stages["scaled"].z, tr.scaled[LAYER, HEAD])
    _equal(stages["weight"].z, tr.weights[LAYER, HEAD])
    _equal(stages["output"].z, tr.out[LAYER, HEAD])
    masked = np.asarray(stages["masked score"].z, dtype=np.float64)
    assert np.isnan(masked[~tr.mask]).all() and np.isfinite(masked[tr.mask]).all()  # NaN, never -inf / -1e9
    np.testing.assert_array_equal(masked[tr.mask], tr.masked[LAYER, HEAD][tr.mask])
    overlay = stages["masked"]  # the grey cells, with a legend entry
    assert overlay.showlegend and overlay.colorscale[0][1] == overlay.colorscale[-1][1]
    assert np.isnan(np.asarray(overlay.z, dtype=float)[tr.mask]).all()
    for name in ("QKᵀ", "scaled", "masked score", "output"):  # diverging scales centred on 0
        t = stages[name]
        assert t.zmid == 0 and t.zmin == -t.zmax > -np.inf
    assert stages["QKᵀ"].zmax == pytest.approx(max(np.abs(tr.scores[LAYER, HEAD]).max(),
                                                   np.abs(tr.scaled[LAYER, HEAD]).max()))
    assert (stages["weight"].zmin, stages["weight"].zmax) == (0, 1)
    text = _text(fig)
    assert f"× 1/√{tr.head_dim} = {tr.head_dim ** -0.5:.4g}" in text and "masked" in text
    assert f"Layer {LAYER}, head {HEAD}" in text
    assert list(fig.layout.xaxis.ticktext) == tr.tokens and fig.layout.xaxis.title.text == "key (attended to)"
    assert fig.layout.yaxis.title.text == "query (attending)"
    assert "%{z:.4f}" in stages["weight"].hovertemplate and stages["weight"].y[3] == f"#3 '{tr.tokens[3]}'"


def test_five_stages_labels_an_override_and_no_mask(trained_char):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, PROMPT, causal=False, attn_scale=2.0)
    fig = five_stages_figure(tr, 0, 0)
    assert "× 2 (override)" in _text(fig) and "no mask" in _text(fig)
    assert not any(t.name == "masked" for t in fig.data)
    unscaled = five_stages_figure(trace_prompt(model, tok, PROMPT, attn_scale=1.0), 0, 0)
    assert "× 1 (override: unscaled)" in _text(unscaled)


def test_all_heads_grid_has_every_head(case):
    model, _, tr, _ = case
    fig = all_heads_figure(tr)
    T, step = tr.n_tokens, tr.n_tokens + 1
    assert len(fig.data) == tr.n_layer  # one heatmap per layer, heads tiled side by side
    for layer, heat in enumerate(fig.data):
        assert heat.meta == (layer,) or list(heat.meta) == [layer]
        z, custom = np.asarray(heat.z, dtype=float), np.asarray(heat.customdata)
        assert z.shape == (T, tr.n_head * step - 1) and (custom[..., 0] == layer).all()
        for head in range(tr.n_head):
            cols = slice(head * step, head * step + T)
            np.testing.assert_array_equal(z[:, cols], tr.weights[layer, head])
            assert (custom[:, cols, 1] == head).all()  # a click maps back to (layer, head)
            entropy = f"mean row entropy {tr.entropy[layer, head].mean():.4f} nats"
            assert all(entropy in label and f"head {head}" in label for label in heat.x[cols])
            if head:
                assert np.isnan(z[:, head * step - 1]).all()  # a blank column between tiles
        assert (heat.zmin, heat.zmax) == (0, 1) and "%{z:.4f}" in heat.hovertemplate
        assert list(heat.y) == [f"#{i} '{t}'" for i, t in enumerate(tr.tokens)]
    assert list(fig.layout.xaxis.ticktext) == [f"head {h}" for h in range(model.config.n_head)]
    assert sum(bool(t.showscale) for t in fig.data) == 1


def test_head_view_lines_match_weights(case):
    _, _, tr, _ = case
    fig = head_view_figure(tr, LAYER)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert {t.legendgroup for t in lines} == {f"head {h}" for h in range(tr.n_head)}
    for head in range(tr.n_head):
        w = tr.weights[LAYER, head]
        segments = 0
        for t in (t for t in lines if t.legendgroup == f"head {head}"):
            qs, ks = t.y[0::3], t.y[1::3]
            assert np.abs(w[list(qs), list(ks)] - t.opacity).max() <= 0.05 + 1e-6
            segments += len(qs)
        assert segments == int((w >= MIN_LINE_WEIGHT).sum())
    labels = [t for t in fig.data if t.mode == "markers+text"]
    assert [list(t.text) for t in labels] == [tr.tokens, tr.tokens]
    only = head_view_figure(tr, LAYER, heads=[1])
    assert {t.legendgroup for t in only.data if t.mode == "lines"} == {"head 1"}


def test_qk_products_figure_sums_to_the_models_score(case):
    _, _, tr, _ = case
    i = tr.n_tokens - 1
    j = i // 2
    fig = qk_products_figure(tr, LAYER, HEAD, i, j)
    by_name = {t.name: t for t in fig.data}
    q, k = tr.q[LAYER, HEAD, i], tr.k[LAYER, HEAD, j]
    _equal(by_name["q_d · k_d"].y, q * k)
    assert float(np.sum(by_name["q_d · k_d"].y)) == pytest.approx(float(tr.scores[LAYER, HEAD, i, j]), abs=1e-4)
    _equal(by_name["steps"].y, [tr.scores[LAYER, HEAD, i, j], tr.scaled[LAYER, HEAD, i, j]])
    _equal(by_name["softmax row"].y, tr.weights[LAYER, HEAD, i])
    assert by_name["softmax row"].marker.color[j] == "#d62728"
    assert "× 1/√" in by_name["steps"].x[1]
    future = qk_products_figure(tr, LAYER, HEAD, 1, i)
    assert "masked" in _text(future) and future.data[-1].y[i] == 0
    with pytest.raises(ValueError, match="query must be"):
        qk_products_figure(tr, LAYER, HEAD, tr.n_tokens, 0)


def test_causal_mask_figure_shows_both(case):
    _, _, tr, open_tr = case
    fig = causal_mask_figure(tr, open_tr, LAYER, HEAD)
    weights = [t for t in fig.data if t.name == "weight"]
    _equal(weights[0].z, tr.weights[LAYER, HEAD])
    _equal(weights[1].z, open_tr.weights[LAYER, HEAD])
    assert all((t.zmin, t.zmax) == (0, 1) for t in weights)
    overlays = [t for t in fig.data if t.name == "masked"]
    assert len(overlays) == 1 and overlays[0].xaxis == "x"  # only the causal panel has masked cells
    assert "Decoder" in _text(fig) and "Encoder" in _text(fig)


def test_averaging_trick_three_matrices(case):
    _, _, tr, _ = case
    fig = averaging_trick_figure(tr, LAYER, HEAD, size=6)
    uniform, from_zeros, learned = [np.asarray(t.z, dtype=float) for t in fig.data if t.name == "weight"]
    expected = np.tril(np.ones((6, 6))) / np.arange(1, 7)[:, None]
    np.testing.assert_allclose(uniform, expected)
    np.testing.assert_allclose(from_zeros, expected, atol=1e-7)
    np.testing.assert_array_equal(learned, tr.weights[LAYER, HEAD, :6, :6])
    np.testing.assert_allclose(learned.sum(-1), 1.0, atol=1e-5)  # causal: the first 6 rows are complete


def test_next_token_figure_uses_the_sampler(case):
    _, tok, tr, _ = case
    settings = dict(temperature=0.7, top_k=5, top_p=0.9)
    expected = next_token_probs(torch.from_numpy(tr.logits), **settings).numpy()
    top = top_next_tokens(tr, tok, n=8, **settings)
    ids = [i for i, _, _, _ in top]
    assert ids[0] == int(expected.argmax()) and sum(p > 0 for _, _, p, _ in top) == int((expected > 0).sum())
    np.testing.assert_allclose([p for _, _, p, _ in top], expected[ids], rtol=1e-6)
    assert [s for _, s, _, _ in top] == tok.token_strings(ids)
    fig = next_token_figure(tr, tok, n=8, **settings)
    np.testing.assert_allclose(fig.data[0].x, expected[ids], rtol=1e-6)
    raw = torch.softmax(torch.from_numpy(tr.logits), -1).numpy()
    np.testing.assert_allclose(fig.data[1].x, raw[ids], rtol=1e-5)
    assert "temperature 0.7, top-k 5, top-p 0.9" in _text(fig)
    greedy = top_next_tokens(tr, tok, temperature=0, n=3)
    assert greedy[0][2] == 1.0 and greedy[1][2] == 0.0


def test_before_after_difference(case):
    model, tok, tr, _ = case
    torch.manual_seed(1)
    untrained = GPT(model.config).eval()
    before = trace_prompt(untrained, tok, PROMPT)
    fig = before_after_figure(before, tr, LAYER, HEAD)
    w_before, w_after, diff = fig.data
    _equal(w_before.z, before.weights[LAYER, HEAD])
    _equal(w_after.z, tr.weights[LAYER, HEAD])
    _equal(diff.z, tr.weights[LAYER, HEAD] - before.weights[LAYER, HEAD])
    assert (diff.zmin, diff.zmax, diff.zmid) == (-1, 1, 0) and (w_after.zmin, w_after.zmax) == (0, 1)
    with pytest.raises(ValueError, match="different token sequences"):
        before_after_figure(trace_prompt(untrained, tok, "JULIET"), tr, LAYER, HEAD)


def test_bad_layer_or_head_is_a_clear_error(case):
    _, _, tr, _ = case
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.1"):
        five_stages_figure(tr, 2, 0)
    with pytest.raises(ValueError, match=r"head must be in 0\.\.3"):
        head_view_figure(tr, 0, heads=[4])


def test_figures_of_a_model_without_attention(char_tok):
    torch.manual_seed(0)
    tr = trace_prompt(GPT(preset_config("bigram", char_tok.vocab_size)).eval(), char_tok, "ROMEO")
    assert "no attention layers" in _text(all_heads_figure(tr))
    assert "no attention layers" in _text(head_view_figure(tr, 0))
    with pytest.raises(ValueError, match="no attention layers"):
        five_stages_figure(tr, 0, 0)
