"""trace_prompt: the arrays are the model's own, the stages fit together, prompts are handled."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainer import row_entropy, trace_prompt
from gpt import GPT, UnknownCharactersError, preset_config

PROMPT = "ROMEO: But soft, what light"


@pytest.fixture(scope="module")
def char_trace(trained_char):
    model, tok, _ = trained_char
    return trace_prompt(model, tok, PROMPT)


def test_shapes_and_metadata(trained_char, char_trace):
    model, tok, _ = trained_char
    tr = char_trace
    L, H, D, T = model.config.n_layer, model.config.n_head, model.config.head_dim, len(PROMPT)
    for name in ("q", "k", "v", "out"):
        assert getattr(tr, name).shape == (L, H, T, D), name
    for name in ("scores", "scaled", "masked", "weights"):
        assert getattr(tr, name).shape == (L, H, T, T), name
    assert tr.entropy.shape == (L, H, T)
    assert tr.mask.shape == (T, T) and tr.mask.dtype == bool
    assert tr.logits.shape == (tok.vocab_size,)
    assert tr.ids == tok.encode(PROMPT) and tr.tokens == tok.token_strings(tr.ids)
    assert tr.tokens[5:8] == [":", "·", "B"]  # whitespace made visible
    assert tr.scale == pytest.approx(D ** -0.5) and tr.causal is True
    assert not (tr.cropped or tr.used_start_token or tr.scale_overridden or tr.causal_overridden)


def test_softmax_rows_sum_to_one_and_causal_zeros(char_trace):
    w = char_trace.weights
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    above = np.triu(np.ones(w.shape[-2:], dtype=bool), k=1)
    assert (w[..., above] == 0.0).all()  # exactly zero, not just small
    assert np.isneginf(char_trace.masked[..., above]).all()
    np.testing.assert_array_equal(char_trace.mask, ~above)


def test_stages_fit_together(char_trace):
    tr = char_trace
    np.testing.assert_allclose(tr.scaled, tr.scores * tr.scale, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tr.scores, tr.q @ np.swapaxes(tr.k, -1, -2), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tr.out, tr.weights @ tr.v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tr.entropy, row_entropy(tr.weights))
    assert tr.entropy[..., 0].max() < 1e-6  # the first token can only look at itself


def test_traced_logits_equal_fast_path(trained_char, tiny_gpt2):
    for model, tok in (trained_char[:2], tiny_gpt2):
        tr = trace_prompt(model, tok, PROMPT)
        with torch.no_grad():
            fast, _ = model(torch.tensor([tr.ids]))
        assert np.abs(fast[0, -1].numpy() - tr.logits).max() <= 1e-5


def test_attn_scale_override(trained_char, char_trace):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, PROMPT, attn_scale=2.0)
    assert tr.scale == 2.0 and tr.scale_overridden
    np.testing.assert_allclose(tr.scaled, tr.scores * 2.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tr.scores[0], char_trace.scores[0])  # layer 0 sees the same q, k
    assert model.config.attn_scale is None  # the model's own setting is untouched


def test_masking_off_changes_earlier_rows(trained_char, char_trace):
    model, tok, _ = trained_char
    open_tr = trace_prompt(model, tok, PROMPT, causal=False)
    assert not open_tr.causal and open_tr.causal_overridden and open_tr.mask.all()
    assert np.isfinite(open_tr.masked).all()
    first_layer, masked_layer = open_tr.weights[0], char_trace.weights[0]
    changed = np.abs(first_layer - masked_layer).max(-1)  # (H, T): per head, per query row
    assert (changed[:, :-1] > 1e-4).all()  # every row that had masked keys now attends differently
    np.testing.assert_allclose(first_layer[:, -1], masked_layer[:, -1], atol=1e-6)  # the last row had none
    assert (open_tr.weights[..., np.triu(np.ones((len(PROMPT),) * 2, dtype=bool), 1)] > 0).all()


def test_long_prompt_is_cropped(trained_char, tiny_gpt2):
    for model, tok in (trained_char[:2], tiny_gpt2):
        text = PROMPT * 10
        tr = trace_prompt(model, tok, text)
        bs = model.config.block_size
        assert tr.cropped and tr.n_tokens == bs and tr.ids == tok.encode(text)[-bs:]
        assert tr.weights.shape[-1] == bs


def test_empty_prompt_uses_start_token(trained_char, tiny_gpt2):
    model, tok, _ = trained_char
    tr = trace_prompt(model, tok, "")
    assert tr.used_start_token and tr.ids == [tok.start_id] and tr.tokens == ["↵"]
    assert tr.weights.shape[-2:] == (1, 1) and (tr.weights == 1.0).all()
    model2, gpt2_tok = tiny_gpt2
    tr2 = trace_prompt(model2, gpt2_tok, "")
    assert tr2.used_start_token and tr2.ids == [50256] and tr2.tokens == ["<|endoftext|>"]


def test_unknown_characters_propagate(trained_char):
    model, tok, _ = trained_char
    with pytest.raises(UnknownCharactersError) as err:
        trace_prompt(model, tok, "ROMEO ☃ café")
    assert "☃" in err.value.unknown


def test_bpe_tokens_are_legible(tiny_gpt2):
    model, tok = tiny_gpt2
    tr = trace_prompt(model, tok, "But soft 🤗")
    assert tr.tokens == tok.token_strings(tr.ids)
    assert "·soft" in tr.tokens
    assert any(t.startswith("<") and t.endswith(">") for t in tr.tokens)  # a byte fragment, shown as bytes


def test_model_without_attention_traces_empty(char_tok):
    torch.manual_seed(0)
    bigram = GPT(preset_config("bigram", char_tok.vocab_size)).eval()
    tr = trace_prompt(bigram, char_tok, "ROMEO")
    assert tr.n_layer == 0 and tr.weights.shape == (0, 0, 5, 5) and tr.logits.shape == (char_tok.vocab_size,)
    with pytest.raises(ValueError, match="no attention layers"):
        tr.check_head(0, 0)


def test_inspect_crops_token_ids_never_re_encoded_text(gpt2_tok):
    """40 robots are ~120 BPE byte tokens: cutting the text back out of the last 64 ids would
    start on half a character and invent a '\\ufffd' the user never typed."""
    from explainer.ui import limits
    from explainer.ui.inspect_views import View, get_trace
    from explainer.ui.session import Session

    prompt = "🤖" * 40
    ids = gpt2_tok.encode(prompt)
    assert len(ids) > limits.MAX_INSPECT_TOKENS
    assert gpt2_tok.encode(gpt2_tok.decode(ids[-limits.MAX_INSPECT_TOKENS:])) != ids[-limits.MAX_INSPECT_TOKENS:]
    loaded, tr, cropped = get_trace(Session(), View(prompt=prompt, model="untrained-gpt2"))
    assert cropped and tr.cropped
    assert tr.ids == ids[-limits.MAX_INSPECT_TOKENS:]
    direct = trace_prompt(loaded.model, loaded.tokenizer, prompt, max_tokens=limits.MAX_INSPECT_TOKENS)
    np.testing.assert_array_equal(tr.logits, direct.logits)
