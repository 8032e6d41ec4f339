"""The Train tab opens on the fastest recipe the project knows (gpt.config.FAST_RECIPE, gpt.bench's default)."""
from __future__ import annotations

import pytest


def test_the_app_s_recipe_is_the_benchmark_s():
    from explainer.ui.training import FAST_RECIPE
    from gpt.config import FAST_RECIPE as GPT_RECIPE

    assert FAST_RECIPE is GPT_RECIPE  # one recipe: gpt.bench's defaults are read from the same dict
    assert FAST_RECIPE["optimizer"] == "muon" and FAST_RECIPE["schedule"] == "wsd"


def test_train_tab_defaults_and_config():
    from explainer.ui import build_demo, training

    r = training.FAST_RECIPE
    demo = build_demo()
    labelled = {}
    for block in demo.blocks.values():
        labelled.setdefault(getattr(block, "label", None), block)  # the Train tab is built first
    assert labelled["Learning rate"].value == pytest.approx(r["lr"])
    assert labelled["Batch size"].value == r["batch_size"] and labelled["Iterations"].value == r["max_iters"]
    cfg = training.train_config(dict(iters=r["max_iters"], batch_size=r["batch_size"], lr=r["lr"], sample_every=100,
                                     seed=0))
    for key in ("optimizer", "beta1", "beta2", "schedule", "decay_frac", "warmup_iters", "min_lr", "muon_lr",
                "muon_momentum", "nesterov", "ns_steps", "batch_size", "max_iters", "lr"):
        assert getattr(cfg, key) == pytest.approx(r[key]) if isinstance(r[key], float) else getattr(cfg, key) == r[key], key
    half = training.train_config(dict(iters=100, batch_size=8, lr=r["lr"] / 2, sample_every=0, seed=0))
    assert half.muon_lr == pytest.approx(r["muon_lr"] / 2) and half.min_lr == pytest.approx(r["min_lr"] / 2)
    short = training.train_config(dict(iters=20, batch_size=4, lr=1e-3, sample_every=0, seed=0))
    assert short.warmup_iters < 20 and short.min_lr < short.lr  # a short run still warms up and decays
