"""The √d_k demo, the scale sweep, head ablation, bits per character, loss curves, positions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explainer import (ablation_figure, bits_per_char_of, head_ablation, loss_curves_figure,
                       position_similarity_figure, qk_variance_demo, scale_sweep, scale_sweep_figure,
                       softmax_saturation_figure, val_loss_at_scale, variance_histograms_figure)
from explainer.ablation import zero_head
from gpt import GPT, TokenData, preset_config
from gpt.evaluate import evaluate


@pytest.fixture(scope="module")
def demo():
    return qk_variance_demo()


def _text(fig) -> str:
    return " ".join([fig.layout.title.text or ""] + [a.text for a in fig.layout.annotations])


def test_variance_demo_measures_dk_and_one(demo):
    assert demo.dims == (4, 16, 64, 256)
    for d, var, scaled in zip(demo.dims, demo.variance, demo.scaled_variance):
        assert abs(var - d) <= 0.1 * d
        assert abs(scaled - 1) <= 0.1
    np.testing.assert_allclose(demo.variance, demo.dots.var(-1))
    np.testing.assert_allclose(demo.scaled_dots, demo.dots / np.sqrt(np.array(demo.dims))[:, None])


def test_unscaled_softmax_saturates_scaled_does_not(demo):
    assert (np.diff(demo.max_weight) > 0).all() and demo.max_weight[-1] > 0.85
    assert (np.diff(demo.entropy) < 0).all()
    spread = demo.scaled_max_weight.max() - demo.scaled_max_weight.min()
    assert spread < 0.05 and (demo.scaled_entropy > 0.8 * demo.uniform_entropy).all()


def test_variance_figures_show_the_measured_numbers(demo):
    hist = variance_histograms_figure(demo)
    text = _text(hist)
    for d, var, scaled in zip(demo.dims, demo.variance, demo.scaled_variance):
        assert f"d_k = {d}" in text and f"var(q·k) = {var:.2f}" in text and f"{scaled:.3f}" in text
    assert len(hist.data) == 2 * len(demo.dims)
    sat = softmax_saturation_figure(demo)
    by_name = {(t.name, t.xaxis): t for t in sat.data}
    np.testing.assert_allclose(by_name[("unscaled: softmax(q·k)", "x")].y, demo.max_weight)
    np.testing.assert_allclose(by_name[("scaled: softmax(q·k / √d_k)", "x2")].y, demo.scaled_entropy)
    assert hist.layout.template.layout.paper_bgcolor == "white"


def test_scale_sweep_uses_evaluate_and_restores_the_config(trained_char, char_data):
    model, tok, _ = trained_char
    sweep = scale_sweep(model, tok, "ROMEO: But soft", char_data, batches=2, batch_size=8)
    trained = model.config.head_dim ** -0.5
    assert sweep.labels == ["× 0.5", "× 1 (trained scale)", "× 2", "unscaled"]
    np.testing.assert_allclose(sweep.scales, [trained / 2, trained, trained * 2, 1.0])
    assert [t.scale for t in sweep.traces] == sweep.scales
    for s, tr in zip(sweep.scales, sweep.traces):  # each trace is the model's own pass at that scale
        direct = model.trace(torch.tensor([tr.ids]), attn_scale=s)
        np.testing.assert_allclose(tr.weights, torch.stack([a.weights[0] for a in direct.layers]).numpy(), atol=1e-6)
    with torch.no_grad():
        baseline = evaluate(model, char_data, batches=2, batch_size=8, seed=0).loss
    assert sweep.val_loss[1] == pytest.approx(baseline, abs=1e-6)  # × 1 is the model as trained
    assert sweep.val_loss[0] != sweep.val_loss[1] and min(sweep.val_loss) > 0
    again = val_loss_at_scale(model, char_data, 1.0, batches=2, batch_size=8).loss
    assert again == pytest.approx(sweep.val_loss[3], abs=1e-6)
    with torch.no_grad():  # the sweep left the model as trained
        assert evaluate(model, char_data, batches=2, batch_size=8, seed=0).loss == pytest.approx(baseline, abs=1e-7)
    fig = scale_sweep_figure(sweep, 1, 0)
    heat = [t for t in fig.data if t.type == "heatmap"]
    for t, tr in zip(heat, sweep.traces):
        np.testing.assert_array_equal(np.asarray(t.z, dtype=float), tr.weights[1, 0])
    np.testing.assert_allclose(fig.data[-1].y, sweep.val_loss)


def test_a_failed_evaluation_at_another_scale_leaves_the_model_as_it_was(trained_char):
    model, _, _ = trained_char
    x = torch.randint(0, model.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0))
    before = model(x)[0]
    too_short = TokenData(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long), 5, 5)
    with pytest.raises(ValueError, match="too short"):
        val_loss_at_scale(model, too_short, 3.0)
    assert torch.equal(model(x)[0], before) and model.config.attn_scale is None


def test_head_ablation_same_batches(trained_char, char_data):
    model, _, _ = trained_char
    calls = []
    result = head_ablation(model, char_data, batches=1, batch_size=8, seed=3, progress=lambda d, n: calls.append(d))
    L, H = model.config.n_layer, model.config.n_head
    assert result.loss.shape == (L, H) and calls == list(range(1, L * H + 2))
    with torch.no_grad():
        base = evaluate(model, char_data, batches=1, batch_size=8, seed=3).loss
        with model.hooks({"h.1.attn.hook_z": zero_head(2)}):
            one = evaluate(model, char_data, batches=1, batch_size=8, seed=3).loss
        assert abs(one - base) > 1e-7  # the hook took effect
    assert result.baseline_loss == pytest.approx(base, abs=1e-6)
    assert result.loss[1, 2] == pytest.approx(one, abs=1e-6)
    np.testing.assert_allclose(result.increase, result.loss - base)
    assert np.abs(result.increase).max() > 0
    fig = ablation_figure(result)
    (heat,) = fig.data
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), result.increase)
    assert heat.zmid == 0 and heat.zmin == -heat.zmax
    assert "zeroed" in fig.layout.title.text


def test_bits_per_char(trained_char, char_data, shakespeare, tiny_gpt2):
    model, tok, _ = trained_char
    result = bits_per_char_of(model, tok, char_data, batches=3, batch_size=8)
    assert result.bpc == pytest.approx(result.loss * len(char_data.val) / char_data.val_chars / math.log(2))
    assert result.tokens_per_char == 1.0 and 2 < result.bpc < 6
    from_text = bits_per_char_of(model, tok, shakespeare, batches=3, batch_size=8)
    assert from_text.loss == pytest.approx(result.loss, abs=1e-6)  # a corpus is split as in training
    gpt2_model, gpt2_tok = tiny_gpt2
    text = shakespeare[:60_000]
    bpe = bits_per_char_of(gpt2_model, gpt2_tok, text, batches=2, batch_size=4)
    data = TokenData.from_text(text, gpt2_tok)
    assert bpe.tokens_per_char < 0.5  # a BPE token covers several characters...
    assert bpe.bpc == pytest.approx(bpe.loss * len(data.val) / data.val_chars / math.log(2))  # ...so bpc is fair
    with pytest.raises(ValueError, match="tokenizer has"):
        bits_per_char_of(model, gpt2_tok, text)


def test_loss_curves_draw_the_events(trained_char):
    _, _, events = trained_char
    fig = loss_curves_figure(events)
    evals = [e for e in events if e.val_loss is not None]
    assert list(fig.data[0].y) == [e.train_loss for e in events]
    assert list(fig.data[1].y) == [e.eval_train_loss for e in evals]
    assert list(fig.data[2].y) == [e.val_loss for e in evals] and list(fig.data[2].x) == [e.step for e in evals]
    named = loss_curves_figure(events, title="gpt-tiny · char")
    assert named.layout.title.text == "gpt-tiny · char: training and validation loss vs step"
    assert fig.layout.title.text == "Training and validation loss vs step" and fig.layout.uirevision
    timed = loss_curves_figure(events, x="time", log_y=True)
    assert timed.layout.yaxis.type == "log" and list(timed.data[0].x) == [e.elapsed_s for e in events]
    assert "wall time" in timed.layout.title.text
    assert len(loss_curves_figure([]).data) == 3  # ready before the first event arrives
    with pytest.raises(ValueError):
        loss_curves_figure(events, x="epoch")


def test_position_similarity(trained_char, char_tok):
    model, _, _ = trained_char
    fig = position_similarity_figure(model)
    (heat,) = fig.data
    w = model.wpe.weight.detach()
    expected = torch.nn.functional.cosine_similarity(w[:, None], w[None], dim=-1).numpy()
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), expected, atol=1e-5)
    assert (heat.zmin, heat.zmax, heat.zmid) == (-1, 1, 0)
    no_pos = GPT(preset_config("block", char_tok.vocab_size, pos_emb="none"))
    msg = position_similarity_figure(no_pos)
    assert not msg.data and "pos_emb='none'" in _text(msg)
