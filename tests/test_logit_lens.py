"""The logit lens: the last row is the model's own prediction, each earlier row is what a model cut
after that block would predict, and bad prompts get specific messages."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from explainer import logit_lens, logit_lens_figure
from gpt import GPT, UnknownCharactersError, preset_config

PROMPT = "ROMEO:\nBut soft, what light?"  # 27 characters: fits block_size 32 uncropped


def test_last_row_is_the_models_own_prediction(trained_char):
    model, tok, _ = trained_char
    lens = logit_lens(model, tok, PROMPT, k=5)
    idx = torch.tensor([lens.ids])
    with torch.no_grad():
        logits, _ = model(idx)
    probs = torch.softmax(logits[0], -1)
    top_p, top_i = probs.topk(5, -1)
    assert lens.top_ids.shape == lens.top_probs.shape == (model.config.n_layer + 1, len(lens.ids), 5)
    np.testing.assert_array_equal(lens.top_ids[-1], top_i.numpy())
    np.testing.assert_allclose(lens.top_probs[-1], top_p.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(lens.final_ids, top_i[:, 0].numpy())
    np.testing.assert_allclose(lens.final_probs[-1], lens.top_probs[-1, :, 0], rtol=1e-6)
    assert lens.tokens == tok.token_strings(lens.ids) and lens.tokens[6] == "↵"
    assert lens.top_tokens[-1, 0, 0] == tok.token_strings([int(top_i[0, 0])])[0]
    assert (np.diff(lens.top_probs, axis=-1) <= 0).all()  # most probable first


def test_each_row_is_the_prediction_of_the_model_cut_after_that_block(trained_char):
    """Row r = a copy of the model with only its first r blocks (row 0: no blocks, embeddings alone)."""
    model, tok, _ = trained_char
    lens = logit_lens(model, tok, PROMPT, k=3)
    idx = torch.tensor([lens.ids])
    for r in range(model.config.n_layer + 1):
        cut = copy.deepcopy(model)
        cut.h = cut.h[:r]
        with torch.no_grad():
            probs = torch.softmax(cut(idx)[0][0], -1)
        top_p, top_i = probs.topk(3, -1)
        assert (lens.top_ids[r] == top_i.numpy()).mean() > 0.99  # near-ties may swap
        np.testing.assert_allclose(lens.top_probs[r], top_p.numpy(), atol=1e-5)
        final = probs.gather(-1, torch.as_tensor(lens.final_ids)[:, None])[:, 0]
        np.testing.assert_allclose(lens.final_probs[r], final.numpy(), atol=1e-5)
    assert not np.array_equal(lens.top_ids[0], lens.top_ids[-1])  # the blocks change the prediction


def test_gpt2_tokens_and_a_cropped_prompt(tiny_gpt2):
    model, tok = tiny_gpt2
    long = " the cat sat on the mat" * 20
    lens = logit_lens(model, tok, long, k=4)
    assert lens.cropped and len(lens.ids) == model.config.block_size
    assert lens.top_tokens.shape == (3, 32, 4) and lens.tokens[-1] == "·mat"
    assert lens.row_names == ["embeddings", "after block 0", "after block 1"]


def test_bigram_has_one_row_and_it_is_the_prediction(char_tok):
    torch.manual_seed(0)
    model = GPT(preset_config("bigram", char_tok.vocab_size)).eval()
    lens = logit_lens(model, char_tok, "To be", k=2)
    assert lens.top_ids.shape == (1, 5, 2) and lens.row_names == ["embeddings"]
    with torch.no_grad():
        expect = model(torch.tensor([lens.ids]))[0][0].topk(2, -1).indices
    np.testing.assert_array_equal(lens.top_ids[0], expect.numpy())


@pytest.mark.parametrize("prompt", ["", "   \n "])
def test_empty_prompt_is_refused(trained_char, prompt):
    model, tok, _ = trained_char
    with pytest.raises(ValueError, match="prompt is empty"):
        logit_lens(model, tok, prompt)


def test_unknown_characters_are_named(trained_char):
    model, tok, _ = trained_char
    with pytest.raises(UnknownCharactersError, match="'é'"):
        logit_lens(model, tok, "café")


@pytest.mark.parametrize("k", [0, -1, 1000, 2.5, True])
def test_bad_k(trained_char, k):
    model, tok, _ = trained_char
    with pytest.raises(ValueError, match="k must be a whole number from 1 to the vocabulary size 65"):
        logit_lens(model, tok, "hello", k=k)


def test_figure_draws_the_lens(trained_char):
    model, tok, _ = trained_char
    lens = logit_lens(model, tok, "To be, or not", k=3)
    fig = logit_lens_figure(lens)
    (heat,) = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z), lens.top_probs[:, :, 0])
    assert (heat.zmin, heat.zmax) == (0, 1)
    assert np.asarray(heat.text).tolist() == lens.top_tokens[:, :, 0].tolist()
    assert heat.texttemplate == "%{text}"  # each cell prints its top token
    assert list(heat.y) == lens.row_names
    hover = np.asarray(heat.customdata)[1, 2]
    assert f"{lens.top_tokens[1, 2, 2]}  {lens.top_probs[1, 2, 2]:.4f}" in hover
    assert "Logit lens" in fig.layout.title.text


@pytest.mark.parametrize("scale", [1.0, 200.0])  # 200: logits beyond SAFE_EXP take the shifted path
def test_gpt2_vocabulary_rows_match_softmax_and_topk(tiny_gpt2, scale):
    """The two-stage top-k and the k + 1 probabilities equal torch's topk of the full softmax."""
    model, tok = tiny_gpt2
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)
    lens = logit_lens(model, tok, " the cat sat on the mat", k=6)
    idx = torch.tensor([lens.ids])
    for r in range(model.config.n_layer + 1):
        cut = copy.deepcopy(model)
        cut.h = cut.h[:r]
        with torch.no_grad():
            probs = torch.softmax(cut(idx)[0][0].double(), -1)
        top_p, top_i = probs.topk(6, -1)
        np.testing.assert_array_equal(lens.top_ids[r], top_i.numpy())
        np.testing.assert_allclose(lens.top_probs[r], top_p.numpy(), rtol=2e-4, atol=1e-7)
        final = probs.gather(-1, torch.as_tensor(lens.final_ids)[:, None])[:, 0]
        np.testing.assert_allclose(lens.final_probs[r], final.numpy(), rtol=2e-4, atol=1e-7)


def test_two_stage_topk_is_torch_topk():
    from explainer.lens import _topk

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 50_257, generator=g)
    x[3, 50_250] = 9.0  # the top in the tail after the last whole block
    x[4, 1000:1006] = torch.tensor([8.0, 7.5, 7.0, 6.5, 6.2, 6.1])  # the whole top-6 in one block
    for k in (1, 6, 12):
        values, ids = _topk(x, k)
        ref_v, ref_i = x.topk(k, dim=-1)
        assert torch.equal(values, ref_v) and torch.equal(ids, ref_i)
