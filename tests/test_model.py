"""The model: shapes, causality, fast path == explicit path, the ladder, generation."""
from __future__ import annotations

import math

import pytest
import torch

from gpt import GPT, PRESETS, GPTConfig, preset_config
from gpt.model import KVCache
from gpt.sampling import next_token_probs


def small(vocab=65, **kw):
    torch.manual_seed(0)
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16)
    base.update(kw)
    return GPT(GPTConfig(vocab_size=vocab, **base)).eval()


def test_shapes_and_loss():
    m = small()
    x = torch.randint(0, 65, (3, 16))
    logits, loss = m(x, x)
    assert logits.shape == (3, 16, 65)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    tr = m.trace(x)
    assert len(tr.layers) == 2
    L = tr.layers[0]
    assert L.q.shape == (3, 4, 16, 8) and L.weights.shape == (3, 4, 16, 16) and L.out.shape == (3, 4, 16, 8)


@pytest.mark.parametrize("causal", [True, False])
def test_future_tokens(causal):
    m = small(causal=causal)
    x = torch.randint(0, 65, (1, 16))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 65
    a, _ = m(x)
    b, _ = m(y)
    earlier_changed = (a[0, :-1] - b[0, :-1]).abs().max().item()
    if causal:
        assert earlier_changed == 0.0
    else:
        assert earlier_changed > 1e-4


@pytest.mark.parametrize("overrides", [
    {}, {"causal": False}, {"attn_scale": 1.0}, {"attn_scale": 0.37}, {"pos_emb": "none"},
    {"mlp": False, "residual": False, "n_layer": 1, "n_head": 1},
])
def test_fast_path_equals_explicit_path(overrides):
    m = small(**overrides)
    x = torch.randint(0, 65, (2, 16))
    fast, _ = m(x)
    tr = m.trace(x)
    assert (fast - tr.logits).abs().max().item() <= 1e-5


def test_trace_overrides_do_not_touch_config():
    m = small()
    x = torch.randint(0, 65, (1, 12))
    tr = m.trace(x, causal=False, attn_scale=1.0)
    assert tr.causal is False and tr.scale == 1.0 and bool(tr.mask.all())
    assert torch.allclose(tr.layers[0].scaled, tr.layers[0].scores)
    assert m.config.causal is True and m.config.attn_scale is None
    tr2 = m.trace(x)
    assert tr2.scale == pytest.approx(8 ** -0.5)
    assert torch.allclose(tr2.layers[1].scaled, tr2.layers[1].scores * 8 ** -0.5)
    assert (tr2.layers[1].weights.triu(1) == 0).all()


def test_hook_z_replacement_ablates_one_head_and_is_removed_after():
    from explainer.ablation import zero_head

    m = small()
    x = torch.randint(0, 65, (1, 16))
    full, _ = m(x)
    with m.hooks({"h.1.attn.hook_z": lambda z: None}):  # a reading hook changes nothing
        same, _ = m(x)
    assert torch.equal(full, same)
    seen = {}
    with m.hooks({"h.1.attn.hook_z": zero_head(2), "h.1.hook_attn_out": lambda a: seen.setdefault("a", a)}):
        ablated, _ = m(x)
    assert (ablated - full).abs().max() > 1e-6
    # the zeroed head contributes nothing: attn_out equals c_proj applied to the other heads alone
    _, got = m.run_with_cache(x, ["h.1.attn.hook_z"], explicit=False)
    z = got["h.1.attn.hook_z"].clone()
    z[:, 2] = 0
    proj = m.h[1].attn.c_proj(z.transpose(1, 2).reshape(1, 16, -1))
    assert (seen["a"] - proj).abs().max() <= 1e-6
    assert torch.equal(m(x)[0], full)  # the hooks are gone after the block


def test_hook_names_and_residual_capture():
    m = small()
    names = m.hook_names()
    assert names[0] == "h.0.hook_resid_pre" or "hook_embed" in names
    for i in range(2):
        for stage in ("q", "k", "v", "scores", "scaled", "masked", "pattern", "z"):
            assert f"h.{i}.attn.hook_{stage}" in names
        assert f"h.{i}.hook_resid_post" in names
    x = torch.randint(0, 65, (1, 10))
    res, got = m.run_with_cache(x, ["hook_embed", "h.0.hook_resid_post", "h.1.hook_resid_post", "hook_resid_final"])
    assert torch.equal(got["h.1.hook_resid_post"], got["hook_resid_final"])
    assert (m.lm_head(m.ln_f(got["hook_resid_final"])) - res.logits).abs().max() <= 1e-6
    expected_embed = m.wte(x) + m.wpe(torch.arange(10))
    assert torch.allclose(got["hook_embed"], expected_embed)
    with pytest.raises(ValueError, match="unknown hook point"):
        with m.hooks({"h.9.hook_resid_post": print}):
            pass


def test_chunked_prefill_with_the_cache_uses_the_offset_mask():
    """Several new tokens after cached ones: the causal mask is aligned at the end (the
    non-square SDPA branch); the logits equal a full forward."""
    m = small(block_size=16)
    idx = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(1))
    full, _ = m(idx)
    cache = KVCache(m.config, 2, idx.device)
    with torch.no_grad():
        parts = [m._run(idx[:, a:b], cache=cache).logits for a, b in ((0, 6), (6, 11), (11, 16))]
    assert (torch.cat(parts, dim=1) - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", list(PRESETS))
def test_ladder_presets_build_and_run(name):
    cfg = preset_config(name, 65)
    torch.manual_seed(0)
    m = GPT(cfg).eval()
    x = torch.randint(0, 65, (1, min(cfg.block_size, 20)))
    logits, _ = m(x)
    assert logits.shape == (1, x.size(1), 65)
    if cfg.n_layer:
        assert (m.trace(x).logits - logits).abs().max() <= 1e-5


def test_bigram_initial_loss_is_ln_vocab(char_data, char_tok):
    torch.manual_seed(0)
    m = GPT(preset_config("bigram", char_tok.vocab_size)).eval()
    x, y = char_data.get_batch("train", 32, 32, torch.Generator().manual_seed(0))
    _, loss = m(x, y)
    assert loss.item() == pytest.approx(math.log(char_tok.vocab_size), abs=0.05)


def test_tied_weights():
    m = small()
    assert m.lm_head.weight is m.wte.weight
    assert not GPT(preset_config("bigram", 65)).config.tie_weights


@pytest.mark.parametrize("bad, says", [
    (dict(n_embd=30, n_head=4), "n_embd (30) must be divisible by n_head (4); try n_embd = 32"),
    (dict(n_layer=-1), "n_layer must be a whole number >= 0, got -1"),
    (dict(dropout=1.5), "dropout must be in [0, 1), got 1.5"),
    (dict(pos_emb="sinusoid"), "pos_emb must be 'learned' or 'none', got 'sinusoid'"),
    (dict(block_size=0), "block_size must be a positive whole number, got 0"),
    (dict(attn_scale=float("nan")), "attn_scale must be a finite number or None, got nan"),
    (dict(activation="relu"), "activation must be one of gelu, gelu_tanh, got 'relu'"),
    (dict(layer_norm_eps=0), "layer_norm_eps must be a small positive number"),
])
def test_bad_config_messages(bad, says):
    with pytest.raises(ValueError) as e:
        GPTConfig(**{"vocab_size": 65, **bad})
    assert says in str(e.value)


def test_gelu_tanh_is_gpt2_s_approximation_and_changes_the_logits():
    exact, approx = small(), small(activation="gelu_tanh")
    approx.load_state_dict(exact.state_dict())
    x = torch.randn(1000) * 3
    assert torch.allclose(approx.h[0].mlp.gelu(x), 0.5 * x * (1 + torch.tanh((2 / math.pi) ** 0.5 * (x + 0.044715 * x ** 3))),
                          atol=1e-6)
    for p in exact.parameters():  # larger weights: the two GELUs part visibly
        p.data.mul_(8)
    approx.load_state_dict(exact.state_dict())
    idx = torch.randint(0, 65, (1, 16))
    assert (exact(idx)[0] - approx(idx)[0]).abs().max() > 1e-3


def test_generation_cache_equals_no_cache_greedy():
    m = small(block_size=16)
    idx = torch.tensor([[1, 2, 3]])
    # 40 new tokens: runs past block_size, so the sliding window is exercised too
    a = m.generate(idx, 40, temperature=0, use_cache=True)
    b = m.generate(idx, 40, temperature=0, use_cache=False)
    assert a.shape == (1, 43) and torch.equal(a, b)


def test_kv_cache_feeding_token_by_token_matches_full_forward():
    """The cache's keys/values give each new position exactly the logits a full forward gives,
    for a batch of two rows and up to the last slot of block_size."""
    m = small(block_size=16)
    idx = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(0))
    full, _ = m(idx)
    cache = KVCache(m.config, 2, idx.device)
    with torch.no_grad():
        first = m._run(idx[:, :5], cache=cache).logits
        steps = [m._run(idx[:, t:t + 1], cache=cache).logits for t in range(5, 16)]
    got = torch.cat([first] + steps, dim=1)
    assert cache.length == 16
    assert (got - full).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match="exceeds block_size"):
        m._run(idx[:, :1], cache=cache)


def test_generated_ids_are_ordinary_tensors_usable_for_training():
    """generate runs in inference mode but hands back a normal tensor: feeding it to a
    training step (which saves its input for backward) must work."""
    m = small().train()
    out = m.generate(torch.tensor([[5, 6]]), 10, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert not out.is_inference() and not torch.is_inference_mode_enabled()
    _, loss = m(out[:, :-1], out[:, 1:])
    loss.backward()
    assert m.wte.weight.grad is not None and m.wte.weight.grad.abs().sum() > 0


def test_generation_sampled_cache_equals_no_cache_same_seed():
    m = small()
    idx = torch.tensor([[5]])
    a = m.generate(idx, 12, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = m.generate(idx, 12, temperature=1.0, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(a, b)


def test_sampling_filters():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    p = next_token_probs(logits, temperature=1.0, top_k=2)
    assert (p[0, 2:] == 0).all() and p.sum().item() == pytest.approx(1.0)
    p = next_token_probs(logits, temperature=0)
    assert p[0].tolist() == [1, 0, 0, 0, 0]
    p = next_token_probs(logits, top_p=0.5)
    assert p[0, 0] == 1.0  # the top token alone has > 50% of the mass
    p = next_token_probs(logits, top_p=0.9)
    assert (p[0] > 0).sum() == 3
    hot = next_token_probs(logits, temperature=100.0)
    assert hot.max() - hot.min() < 0.02
    for bad in (dict(temperature=-1), dict(temperature=float("nan")), dict(top_k=0), dict(top_p=0.0),
                dict(top_p=1.5), dict(temperature=1e6)):
        with pytest.raises(ValueError):
            next_token_probs(logits, **bad)


def test_forward_overrides_match_trace_and_leave_config():
    m = small()
    x = torch.randint(0, 65, (1, 16))
    for kw in ({"attn_scale": 1.0}, {"causal": False}, {"attn_scale": 0.1, "causal": False}):
        fast, _ = m(x, **kw)
        assert (fast - m.trace(x, **kw).logits).abs().max() <= 1e-5
        assert (fast - m(x)[0]).abs().max() > 1e-6
    assert m.config.attn_scale is None and m.config.causal is True
