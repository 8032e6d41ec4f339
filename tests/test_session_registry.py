"""A session's runs and the registry's one-load-per-key cache, with real runs and real threads."""
from __future__ import annotations

import threading
import time

import pytest

from explainer.ui import limits, registry
from explainer.ui.session import Session
from explainer.ui.training import TrainingRun, TrainSpec

TINY = dict(iters=400, lr=1e-3, batch_size=4, block_size=8, n_layer=1, n_head=1, n_embd=16, dropout=0.0, seed=0,
            sample_every=0)


def spec(tokenizer="char", **hp):
    return TrainSpec(tokenizer, "single-head", limits.check_train(**{**TINY, **hp}))


def test_add_run_replaces_the_old_run_and_drop_run_forgets_it():
    session = Session()
    first = TrainingRun(spec())
    session.add_run(first)
    session.traces["x"] = 1
    first.start()
    second = TrainingRun(spec(seed=1))
    session.add_run(second)  # the same tokenizer: the first run is stopped and its files go
    assert first.finished.is_set() and first.status == "stopped"
    assert session.runs == {"char": second} and session.latest is second and not session.traces
    other = TrainingRun(spec("gpt2", iters=10))
    session.add_run(other)
    assert set(session.runs) == {"char", "gpt2"} and session.latest is other
    session.drop_run(second)
    assert set(session.runs) == {"gpt2"} and session.latest is other
    session.drop_run(other)
    assert session.runs == {} and session.latest is None
    with pytest.raises(ValueError, match="has not trained a char model yet"):
        session.model("session-char")


def test_a_run_stops_at_the_time_limit_and_keeps_its_model(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TRAIN_SECONDS", 0.3)
    run = TrainingRun(spec(iters=5000))
    run.start()
    assert run.wait(30)
    assert run.status == "time limit" and 0 < run.trainer.step < 5000
    step = run.trainer.step
    time.sleep(0.2)
    assert run.trainer.step == step  # the thread is gone, the model stays at that step


def test_once_loads_each_key_once_under_concurrent_first_calls():
    calls, started, release = [], threading.Event(), threading.Event()

    @registry.once
    def load(key):
        calls.append(key)
        if key == "slow":
            started.set()
            release.wait(10)
        return f"loaded {key}"

    results = []
    threads = [threading.Thread(target=lambda: results.append(load("slow"))) for _ in range(8)]
    for th in threads:
        th.start()
    assert started.wait(10)
    t0 = time.perf_counter()
    assert load("fast") == "loaded fast"  # another key never waits on the slow first load
    assert time.perf_counter() - t0 < 1.0
    release.set()
    for th in threads:
        th.join(10)
    assert results == ["loaded slow"] * 8 and calls.count("slow") == 1
    assert load("slow") == "loaded slow" and calls.count("slow") == 1
