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


@pytest.mark.parametrize("corpus", ["shakespeare", "induction"])
def test_the_recorded_command_asks_the_cli_for_the_run_s_exact_config(corpus):
    """The command in a run's meta.json / report.md gives gpt.train the TrainConfig the app used."""
    import dataclasses
    import shlex

    from explainer.ui import limits, train_roles
    from explainer.ui.training import TrainSpec, train_config
    from gpt.train import parser, train_config_from

    preset = "induction" if corpus == "induction" else "gpt-tiny"
    hp = limits.check_train(iters=120, lr=4e-3, batch_size=8, block_size=32, n_layer=2, n_head=2, n_embd=32,
                            dropout=0.1, seed=3, sample_every=0)
    spec = (TrainSpec("char", preset, hp, corpus_path="unused", corpus_name=train_roles.INDUCTION_NAME)
            if corpus == "induction" else TrainSpec("char", preset, hp))
    used = train_roles.train_config(preset, train_config(hp))
    command = spec.command(used)
    cli = shlex.split(command.split("&& ")[-1])
    assert cli[:3] == ["python", "-m", "gpt.train"]
    args = parser().parse_args(cli[3:])
    assert dataclasses.replace(train_config_from(args), device=used.device) == used
    assert (args.n_layer, args.n_head, args.n_embd, args.block_size, args.dropout) == (2, 2, 32, 32, 0.1)
    if corpus == "induction":
        assert "induction_text('passages')" in command and args.data == "induction-passages.txt"
