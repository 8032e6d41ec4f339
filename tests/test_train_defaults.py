"""The Train tab opens on the fastest recipe the project knows (README / gpt/bench.py), and passes all of it on."""
from __future__ import annotations

import pytest


def test_fast_recipe_is_the_benchmarks():
    from explainer.ui.training import FAST_RECIPE

    assert FAST_RECIPE == dict(lr=6e-3, batch_size=16, iters=700, beta1=0.8, warmup_iters=30, schedule="wsd",
                               decay_frac=0.4, min_lr_ratio=1 / 20)


def test_train_tab_defaults_and_config():
    from explainer.ui import build_demo, training

    demo = build_demo()
    labelled = {}
    for block in demo.blocks.values():
        labelled.setdefault(getattr(block, "label", None), block)  # the Train tab is built first
    assert labelled["Learning rate"].value == pytest.approx(6e-3)
    assert labelled["Batch size"].value == 16 and labelled["Iterations"].value == 700
    cfg = training.train_config(dict(iters=700, batch_size=16, lr=6e-3, sample_every=100, seed=0))
    assert (cfg.beta1, cfg.schedule, cfg.decay_frac, cfg.warmup_iters) == (0.8, "wsd", 0.4, 30)
    assert cfg.min_lr == pytest.approx(6e-3 / 20) and cfg.lr == pytest.approx(6e-3) and cfg.batch_size == 16
    short = training.train_config(dict(iters=20, batch_size=4, lr=1e-3, sample_every=0, seed=0))
    assert short.warmup_iters < 20 and short.min_lr == pytest.approx(1e-3 / 20)  # a short run still decays
