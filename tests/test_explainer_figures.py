"""Every trace figure builds for a char and a GPT-2 BPE model and draws exactly the trace's numbers."""
from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from explainer import (all_heads_figure, averaging_trick_figure, before_after_figure, causal_mask_figure,
                       five_stages_figure, head_view_figure, next_token_figure, qk_products_figure,
                       top_next_tokens, trace_prompt)
from explainer.figures.common import MASK_GREY, token_categories
from explainer.figures.heads import MIN_LINE_WEIGHT, head_view_data
from explainer.figures.stages import MAX_KEY_TICKS, MAX_QUERY_TICKS
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
    layout = fig.layout.template.layout
    assert layout.xaxis.automargin is False and layout.yaxis.automargin is False  # margins by hand: fast repaint
    assert layout.colorway == white.layout.colorway and fig.layout.template.data.heatmap == white.data.heatmap
    stages = {t.name: t for t in fig.data}
    _equal(stages["QKᵀ"].z, tr.scores[LAYER, HEAD])
    _equal(stages["scaled"].z, tr.scaled[LAYER, HEAD])
    _equal(stages["weight"].z, tr.weights[LAYER, HEAD])
    _equal(stages["output"].z, tr.out[LAYER, HEAD])
    masked = np.asarray(stages["masked score"].z, dtype=np.float64)
    assert np.isnan(masked[~tr.mask]).all() and np.isfinite(masked[tr.mask]).all()  # NaN, never -inf / -1e9
    np.testing.assert_array_equal(masked[tr.mask], tr.masked[LAYER, HEAD][tr.mask])
    assert fig.layout.plot_bgcolor == MASK_GREY  # the gaps (masked cells) show the grey background
    own = {"QKᵀ": tr.scores[LAYER, HEAD], "scaled": tr.scaled[LAYER, HEAD],
           "masked score": tr.masked[LAYER, HEAD][tr.mask], "output": tr.out[LAYER, HEAD]}
    for name, values in own.items():  # diverging scales centred on 0, each on its own range
        t = stages[name]
        assert t.zmid == 0 and t.zmax == pytest.approx(float(np.abs(values).max()), rel=1e-6) and t.zmin == -t.zmax
        assert t.colorbar.title.text == name or name == "output"
    assert stages["scaled"].zmax < stages["QKᵀ"].zmax  # not one shared range: the scaled panel is not washed out
    assert (stages["weight"].zmin, stages["weight"].zmax) == (0, 1)
    text = _text(fig)
    assert f"× 1/√{tr.head_dim} = {tr.head_dim ** -0.5:.4g}" in text and "masked" in text
    assert f"Layer {LAYER}, head {HEAD}" in text and f"on {tr.n_tokens} tokens" in fig.layout.title.text
    assert "[" not in fig.layout.title.text  # the model as trained: no toggle named
    step = -(-tr.n_tokens // MAX_KEY_TICKS)
    assert list(fig.layout.xaxis.ticktext) == tr.tokens[::step] and fig.layout.xaxis.title.text == "key (attended to)"
    assert fig.layout.yaxis.title.text == "query (attending)"
    assert "%{z:.4f}" in stages["weight"].hovertemplate and stages["weight"].y[3] == f"#3 '{tr.tokens[3]}'"
    assert not fig.layout.shapes
    outlined = five_stages_figure(tr, LAYER, HEAD, query=5)
    assert [(s.y0, s.y1) for s in outlined.layout.shapes] == [(4.5, 5.5)] * 4
    assert [s.yref for s in outlined.layout.shapes] == [a[1] for a in outlined.layout.meta["pa_axes"]]


def test_five_stages_ticks_never_crowd(trained_char):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, "a" * 32)
    fig = five_stages_figure(tr, 0, 0)
    assert len(fig.layout.xaxis.tickvals) <= MAX_KEY_TICKS and len(fig.layout.yaxis.tickvals) <= MAX_QUERY_TICKS
    assert list(fig.layout.xaxis.tickvals) == token_categories(tr.tokens)[::2]  # every 2nd of 32 keys
    assert len(fig.data[0].x) == 32  # every cell still there, its hover names the token


def test_five_stages_keep_their_places_for_every_prompt(trained_char):
    """The panels' places depend on the model alone (the fifth panel's width on the head size), so a new prompt
    changes only cells, labels and title: the browser paints a press in place (explainer.ui.paint_js)."""
    from explainer.figures.stages import output_width

    model, tok, _ = trained_char
    short, long = (five_stages_figure(trace_prompt(model, tok, p), 0, 0) for p in (PROMPT[:5], PROMPT * 3))
    axes = [k for k in short.layout.to_plotly_json() if k[1:5] == "axis"]
    assert len(axes) == 10
    assert [short.layout[k].domain for k in axes] == [long.layout[k].domain for k in axes]
    assert [a.x for a in short.layout.annotations] == [a.x for a in long.layout.annotations]
    assert output_width(8) == 0.35 and output_width(16) == 0.5 and output_width(64) == 1.0


def test_five_stages_labels_an_override_and_no_mask(trained_char):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, PROMPT, causal=False, attn_scale=2.0)
    fig = five_stages_figure(tr, 0, 0)
    assert "× 2 (override)" in _text(fig) and "no mask" in _text(fig)
    assert "causal mask off (changed)" in fig.layout.title.text and "scale changed to × 2" in fig.layout.title.text
    assert not any(t.name == "masked score" and np.isnan(np.asarray(t.z, dtype=float)).any() for t in fig.data)
    unscaled = five_stages_figure(trace_prompt(model, tok, PROMPT, attn_scale=1.0), 0, 0)
    assert "× 1 (override: unscaled)" in _text(unscaled) and "unscaled: QKᵀ × 1" in unscaled.layout.title.text


def test_toggles_are_named_in_every_title(trained_char):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, PROMPT, attn_scale=1.0)
    assert "unscaled" in all_heads_figure(tr).layout.title.text
    assert "unscaled" in next_token_figure(tr, tok).layout.title.text
    assert "unscaled" in head_view_data(tr, 0, 0)["title"] and "unscaled" in head_view_figure(tr, 0).layout.title.text
    plain = trace_prompt(model, tok, PROMPT)
    assert "[" not in next_token_figure(plain, tok).layout.title.text


def test_next_token_title_marks_a_cut_only(trained_char):
    model, tok, _ = trained_char
    short = next_token_figure(trace_prompt(model, tok, "ROMEO:"), tok).layout.title.text
    assert short.startswith("Next token after 'ROMEO:'")
    tr = trace_prompt(model, tok, PROMPT)
    long = next_token_figure(tr, tok).layout.title.text
    assert long.startswith("Next token after '…" + "".join(tr.tokens[-24:]) + "'")


def test_all_heads_grid_is_one_heatmap(case):
    model, _, tr, _ = case
    fig = all_heads_figure(tr)
    L, H, T = tr.n_layer, tr.n_head, tr.n_tokens
    assert len(fig.data) == 1  # one image-like trace, not one subplot per head
    heat = fig.data[0]
    z = np.asarray(heat.z)
    assert z.dtype == np.uint8 and z.shape == (L * T, H * T) and (heat.zmin, heat.zmax) == (0, 100)
    for layer in range(L):
        for head in range(H):
            tile = z[layer * T:(layer + 1) * T, head * T:(head + 1) * T].astype(float)
            assert np.abs(tile - tr.weights[layer, head] * 100).max() <= 0.5 + 1e-4  # whole percents
            assert heat.y[layer * T + 3] == f"layer {layer} · query #3 '{tr.tokens[3]}'"
            assert heat.x[head * T + 2] == f"head {head} · key #2 '{tr.tokens[2]}'"
    assert dict(fig.layout.meta)["pa_grid"] == dict(tokens=T, layers=L, heads=H)  # click -> (row // T, col // T)
    assert "rounded to 1 %" in fig.layout.title.text and "rounded" in heat.hovertemplate
    assert list(fig.layout.xaxis.ticktext) == [f"head {h}" for h in range(model.config.n_head)]
    assert len(fig.layout.shapes) == (H - 1) + (L - 1)  # the lines between tiles


def test_head_view_data_is_the_models_weights(case):
    _, _, tr, open_tr = case
    for trace in (tr, open_tr):
        data = json.loads(json.dumps(head_view_data(trace, LAYER, 1)))
        T = trace.n_tokens
        mask = np.unpackbits(np.frombuffer(base64.b64decode(data["mask"]), np.uint8))[:T * T].reshape(T, T)
        np.testing.assert_array_equal(mask.astype(bool), trace.mask)
        for head, b64 in enumerate(data["weights"]):
            kept = np.frombuffer(base64.b64decode(b64), "<f4")
            np.testing.assert_array_equal(kept, trace.weights[LAYER, head][trace.mask])  # exact float32
        assert data["tokens"] == trace.tokens and data["selected"] == 1 and len(set(data["colors"])) == trace.n_head
        assert "every pair drawn" in data["title"]
    with pytest.raises(ValueError, match="head must be in"):
        head_view_data(tr, LAYER, tr.n_head)


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
    assert "weight exactly 0" in future.layout.title.text and f"key #{i} " in future.layout.title.text
    with pytest.raises(ValueError, match="query must be"):
        qk_products_figure(tr, LAYER, HEAD, tr.n_tokens, 0)


def test_qk_products_keep_the_heads_scales_for_every_pair(case):
    """Every query/key pair of a head is drawn on the same scales (axes and colour bar), each one covering the
    head's largest value: a switch of query or key moves only bars and cells."""
    from explainer.figures.neuron import qk_ranges

    _, _, tr, _ = case
    T = tr.n_tokens
    figs = [qk_products_figure(tr, LAYER, HEAD, i, j) for i, j in ((T - 1, 0), (T // 2, T // 3), (1, T - 1))]
    scales = [(f.layout.yaxis2.range, f.layout.yaxis3.range, f.data[0].zmin, f.data[0].zmax,
               f.data[0].colorbar.ticktext) for f in figs]
    assert scales[0] == scales[1] == scales[2]
    r = qk_ranges(tr, LAYER, HEAD)
    q, k = tr.q[LAYER, HEAD], tr.k[LAYER, HEAD]
    every_product = np.abs(q[:, None, :] * k[None, :, :]).max()  # all T x T pairs, every channel
    assert r["products"] == [-1.05 * float(every_product), 1.05 * float(every_product)]
    assert r["limit"] == float(max(np.abs(q).max(), np.abs(k).max())) and figs[0].data[0].zmax == r["limit"]
    steps = max(np.abs(tr.scores[LAYER, HEAD]).max(), np.abs(tr.scaled[LAYER, HEAD]).max())
    assert list(figs[0].layout.yaxis3.range) == [-1.25 * float(steps), 1.25 * float(steps)]
    for f in figs:  # nothing drawn outside its axis
        assert max(abs(v) for v in f.data[1].y) <= f.layout.yaxis2.range[1]
        assert max(abs(v) for v in f.data[2].y) <= f.layout.yaxis3.range[1]


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
