"""Head roles: hand-built heads whose jobs are known by construction, a real training run in
which an induction head forms, and the bad inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explainer import head_roles, head_roles_figure, role_history_figure
from explainer.heads import ROLES, first_induction_step, repeated_probe
from gpt import GPT, GPTConfig, load_checkpoint, TokenData, Trainer, TrainConfig, get_tokenizer, preset_config
from gpt.synthetic import INDUCTION_TRAIN, induction_text, repeated_chunk_ids

ROOT = Path(__file__).resolve().parent.parent
V, T, E = 16, 32, 64  # vocabulary, block_size, n_embd (2 heads of 32 dims)
SHARP = 12 * 32 ** 0.5  # query gain: scaled score 12 on the matching key, 0 elsewhere (softmax ~0.99999)


def blank_model(n_layer: int) -> GPT:
    """Attention only (no MLP, no residual, no biases), two heads a layer, every weight zero: the crafted
    models below set just the weights that give each head its role."""
    m = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=n_layer, n_head=2, n_embd=E, mlp=False, residual=False,
                      bias=False, tie_weights=False))
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    return m


def crafted_model() -> GPT:
    """Two layers, two heads each, no residual stream, one-hot embeddings; every weight set by hand.

    Input x0: dims 0..15 one-hot token, dims 16..47 one-hot position.
    Layer 0, head 0: query = position i shifted to i-1, key = position: attends to the previous token.
    Layer 0, head 1: query = key = position: attends to itself. Both heads' values carry the token, and
    c_proj writes them to x1 dims 0..15 (the previous token) and 16..31 (the current token).
    Layer 1, head 0: query = current token, key = previous token: attends to the token *after* an
    earlier copy of the current token, i.e. an induction head.
    Layer 1, head 1: query = key = current token: half on itself, half on the earlier copy (a
    duplicate-token head; with no position signal it cannot tell the two apart).
    """
    m = blank_model(n_layer=2)
    with torch.no_grad():
        m.wte.weight[:, :V] = torch.eye(V)
        m.wpe.weight[:, V:V + T] = torch.eye(T)
        m.ln_f.weight.fill_(1.0)
        q, k, v = (slice(0, E), slice(E, 2 * E), slice(2 * E, 3 * E))
        w0 = m.h[0].attn.c_attn.weight  # (3E, E): rows q | k | v, each split into two heads of 32
        for p in range(T):
            if p + 1 < T:
                w0[q][p, V + p + 1] = SHARP  # head 0 query dim p <- position p+1
            w0[k][p, V + p] = 1.0  # head 0 key dim p <- position p
            w0[q][32 + p, V + p] = SHARP  # head 1 query dim p <- position p
            w0[k][32 + p, V + p] = 1.0
        for a in range(V):
            w0[v][a, a] = 1.0  # head 0 value: the token
            w0[v][32 + a, a] = 1.0  # head 1 value: the token
            m.h[0].attn.c_proj.weight[a, a] = 1.0  # x1[0..15] <- head 0: previous token
            m.h[0].attn.c_proj.weight[V + a, 32 + a] = 1.0  # x1[16..31] <- head 1: current token
        w1 = m.h[1].attn.c_attn.weight
        for a in range(V):
            w1[q][a, V + a] = SHARP  # head 0 query: current token
            w1[k][a, a] = 1.0  # head 0 key: previous token
            w1[q][32 + a, V + a] = SHARP  # head 1 query: current token
            w1[k][32 + a, V + a] = 1.0  # head 1 key: current token
    return m.eval()


def test_crafted_heads_are_found_with_their_roles():
    roles = head_roles(crafted_model())
    s = roles.scores
    assert set(s) == set(ROLES) and all(a.shape == (2, 2) for a in s.values())
    assert s["previous-token"][0, 0] > 0.99
    # > 0.95, not 1: at the first query of the second copy, position 0 (which saw no previous token and
    # carries its own) matches as well as position 1, taking half of that one query's attention
    assert s["induction"][1, 0] > 0.95
    assert s["duplicate-token"][1, 1] == pytest.approx(0.5, abs=0.01)
    # the self-attending head puts nothing on the previous or first token beyond position 1's own
    assert s["previous-token"][0, 1] < 0.01 and s["first-token"][0, 1] < 0.01
    assert s["induction"][1, 1] < 0.01 and s["duplicate-token"][1, 0] < 0.05
    assert roles.best_role[0, 0] == "previous-token" and roles.best_role[1, 0] == "induction"
    assert roles.best_role[1, 1] == "duplicate-token"
    assert roles.best_head("induction")[:2] == (1, 0)
    assert roles.describe("previous-token").startswith("layer 0, head 0 looks at the previous token with 10")


def first_token_model() -> GPT:
    """One layer: head 0 attends to position 0 from everywhere (an attention sink), head 1 to the previous one."""
    m = blank_model(n_layer=1)
    with torch.no_grad():
        m.wpe.weight[:, :T] = torch.eye(T)
        w = m.h[0].attn.c_attn.weight
        for p in range(T):
            w[0, p] = SHARP  # head 0 query dim 0 <- every position: matches key dim 0 = position 0 only
            w[E + p, p] = 1.0  # head 0 key: position
            if p + 1 < T:
                w[32 + p, p + 1] = SHARP  # head 1 query dim p <- position p+1
            w[E + 32 + p, p] = 1.0
    return m.eval()


def test_crafted_first_token_head_is_an_attention_sink():
    roles = head_roles(first_token_model())
    assert roles.scores["first-token"][0, 0] > 0.99 and roles.best_role[0, 0] == "first-token"
    assert roles.scores["previous-token"][0, 1] > 0.99 and roles.best_role[0, 1] == "previous-token"
    # position 1's previous token is position 0: 1 of the L-1 = 15 averaged queries
    assert roles.scores["previous-token"][0, 0] == pytest.approx(1 / 15, abs=0.01)
    assert roles.scores["first-token"][0, 1] == pytest.approx(1 / 15, abs=0.01)


def test_scores_match_a_loop_over_the_models_own_trace(trained_char):
    """Each score is the mean of the named entries of the attention pattern GPT.trace returns."""
    model, _, _ = trained_char
    roles = head_roles(model, seed=3)
    L = roles.probe_length
    assert L == model.config.block_size // 2 == 16
    probe = repeated_probe(model.config.vocab_size, L, seed=3)
    tr = model.trace(probe)
    for layer in range(model.config.n_layer):
        A = tr.layers[layer].weights.numpy()  # (B, H, 2L, 2L)
        expect = {
            "previous-token": np.mean([A[:, :, i, i - 1] for i in range(1, L)], axis=(0, 1)),
            "first-token": np.mean([A[:, :, i, 0] for i in range(1, L)], axis=(0, 1)),
            "duplicate-token": np.mean([A[:, :, t, t - L] for t in range(L, 2 * L)], axis=(0, 1)),
            "induction": np.mean([A[:, :, t, t - L + 1] for t in range(L, 2 * L)], axis=(0, 1)),
        }
        for role in ROLES:
            np.testing.assert_allclose(roles.scores[role][layer], expect[role], atol=1e-6)


def test_shipped_char_model_has_a_previous_token_head_and_no_induction_head():
    """Measured 2026-12-01: previous-token 0.97 (layer 0), induction 0.02: Shakespeare alone does not grow one."""
    model, _ = load_checkpoint(ROOT / "checkpoints" / "shakespeare-char")
    roles = head_roles(model)
    layer, _, score = roles.best_head("previous-token")
    assert layer == 0 and score > 0.9
    assert roles.scores["induction"].max() < 0.1


def test_probe_is_seeded_repeated_and_distinct():
    a, b = repeated_probe(65, 32, seed=5), repeated_probe(65, 32, seed=5)
    assert torch.equal(a, b) and a.shape == (8, 64)
    assert torch.equal(a[:, :32], a[:, 32:])
    assert all(len(set(row[:32].tolist())) == 32 for row in a)
    assert not torch.equal(a, repeated_probe(65, 32, seed=6))
    small = repeated_probe(5, 8, seed=0)  # vocabulary smaller than L: drawn with replacement
    assert small.max() < 5 and torch.equal(small[:, :8], small[:, 8:])


def test_bigram_model_has_no_heads():
    with pytest.raises(ValueError, match="no attention layers.*no heads"):
        head_roles(GPT(preset_config("bigram", 65)))


@pytest.mark.parametrize("corpus, words", [("some text", "TokenData"), ([1, 2, 99], "0..15"),
                                           (list(range(10)), "needs more")])
def test_bad_corpus_messages(corpus, words):
    with pytest.raises(ValueError, match=words):
        head_roles(crafted_model(), corpus=corpus)


def test_role_figures_are_the_scores():
    roles = head_roles(crafted_model())
    fig = head_roles_figure(roles)
    assert [t.name for t in fig.data] == list(ROLES)
    for t in fig.data:
        np.testing.assert_array_equal(np.asarray(t.z), roles.scores[t.name])
        assert (t.zmin, t.zmax) == (0, 1)
        assert np.asarray(t.customdata)[1, 0].tolist() == [1, 0]
    hist = role_history_figure([(0, roles), (50, roles)], induction_step=50)
    assert len(hist.data) == 4 * 4 and "step" in hist.layout.title.text
    assert list(hist.data[4 * 2 + 3].y) == pytest.approx([roles.scores["induction"][1, 0]] * 2)


@pytest.mark.slow
def test_an_induction_head_forms_on_repeated_passages(two_threads):
    """The induction preset and recipe on its corpus: no induction head at first, one within 1,500 steps,
    and the in-context-learning score turns negative (later tokens predicted better)."""
    text = induction_text("passages", 400_000)
    tok = get_tokenizer("char", corpus=text)
    data = TokenData.from_text(text, tok)
    torch.manual_seed(0)
    model = GPT(preset_config("induction", tok.vocab_size))
    before = head_roles(model, corpus=data)
    assert before.scores["induction"].max() < 0.1 and abs(before.icl_score) < 0.1
    cfg = TrainConfig(**dict(INDUCTION_TRAIN, max_iters=1500, eval_interval=10_000, eval_iters=1))
    history = []
    for ev in Trainer(model, data, cfg).run():
        if ev.step % 125 == 0:
            history.append((ev.step, head_roles(model)))
            if history[-1][1].scores["induction"].max() > 0.5:
                break  # formed (about step 875): the rest of the 1,500 steps would only sharpen it
    after = head_roles(model, corpus=data, seed=7)  # a fresh probe, not the one watched during training
    assert after.scores["induction"].max() > 0.4, after.scores["induction"]
    assert after.best_head("induction")[0] == 1  # it builds on layer 0: only the second layer can do it
    step = first_induction_step(history)
    assert step is not None and history[0][1].scores["induction"].max() < 0.1
    assert after.icl_score < before.icl_score - 0.2


def test_synthetic_stream_repeats_every_chunk():
    ids = repeated_chunk_ids(2000, seed=1)
    assert ids.min() >= 0 and ids.max() < 65 and len(ids) == 2000
    pos, lengths = 0, []
    while pos < 1900:  # walk chunk by chunk: each is followed by itself
        n = next(n for n in range(6, 28) if np.array_equal(ids[pos:pos + n], ids[pos + n:pos + 2 * n]))
        lengths.append(n)
        pos += 2 * n
    assert len(set(lengths)) > 5  # lengths vary, so a model cannot copy by a fixed offset
    assert np.array_equal(ids, repeated_chunk_ids(2000, seed=1))
    with pytest.raises(ValueError, match="min_len"):
        repeated_chunk_ids(10, min_len=9, max_len=3)
