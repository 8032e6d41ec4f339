"""Shared fixtures: the corpus from ../shared (never the network) and small trained models."""
from __future__ import annotations

import os

# no test may reach the real Hugging Face Hub (no network here, and traffic leaves loopback only): repo ids
# go to a closed loopback port unless a test points HF_ENDPOINT at its own stand-in Hub on 127.0.0.1
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

import shutil  # noqa: E402
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio notices a closed tab one heartbeat after it closed (15 s by default): 1 s keeps the tab-close tests short
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "1")
ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def _ensure_corpus() -> None:
    """Put Tiny Shakespeare in the cache from ../shared, so no test downloads anything."""
    from gpt.data import TINY_SHAKESPEARE_SHA256, _sha256, tiny_shakespeare_path

    dest = tiny_shakespeare_path()
    if dest.is_file() and _sha256(dest.read_bytes()) == TINY_SHAKESPEARE_SHA256:
        return
    if not SHARED_CORPUS.is_file():
        pytest.exit(f"Tiny Shakespeare not cached at {dest} and not found at {SHARED_CORPUS}", returncode=3)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHARED_CORPUS, dest)


_ensure_corpus()
torch.set_num_threads(1)  # tiny tensors: one thread is as fast and never oversubscribes


def _reuse_ssl_contexts() -> None:
    """gradio_client opens a new httpx client for every request and stream, and each loads the CA bundle
    (~40 ms of CPU) although every test request goes to loopback http: that was 40 % of the CPU of the
    load tests. The test clients share one context per setting instead; the app is not touched."""
    import functools

    import httpx._transports.default as transports

    create = transports.create_ssl_context
    if getattr(create, "shared", False):
        return
    cached = functools.lru_cache(maxsize=8)(create)

    def shared(*args, **kwargs):
        try:
            return cached(*args, **kwargs)
        except TypeError:  # an unhashable setting: build it as httpx would
            return create(*args, **kwargs)

    shared.shared = True
    transports.create_ssl_context = shared


_reuse_ssl_contexts()


@pytest.fixture
def two_threads():
    """A test that trains or evaluates for many seconds uses both cores (the rest run on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shakespeare() -> str:
    from gpt import load_tiny_shakespeare

    return load_tiny_shakespeare(download=False)


@pytest.fixture(scope="session")
def char_tok(shakespeare):
    from gpt import get_tokenizer

    return get_tokenizer("char", corpus=shakespeare)


@pytest.fixture(scope="session")
def gpt2_tok():
    from gpt import get_tokenizer

    return get_tokenizer("gpt2")


@pytest.fixture(scope="session")
def char_data(shakespeare, char_tok):
    from gpt import TokenData

    return TokenData.from_text(shakespeare, char_tok)


@pytest.fixture(scope="session")
def trained_char(char_data, char_tok):
    """A small char model really trained on Tiny Shakespeare (a few seconds), with its history."""
    from gpt import GPT, Trainer, TrainConfig, preset_config

    torch.manual_seed(0)
    model = GPT(preset_config("gpt-tiny", char_tok.vocab_size, n_layer=2, n_embd=64, block_size=32))
    cfg = TrainConfig(max_iters=200, batch_size=16, lr=3e-3, warmup_iters=20, eval_interval=100, eval_iters=20)
    trainer = Trainer(model, char_data, cfg, tokenizer=char_tok)
    events = list(trainer.run())
    model.eval()
    return model, char_tok, events


@pytest.fixture(scope="session")
def tiny_gpt2(gpt2_tok):
    """An untrained small GPT-2-BPE model (random weights, fixed seed)."""
    from gpt import GPT, preset_config

    torch.manual_seed(0)
    return GPT(preset_config("gpt-tiny", gpt2_tok.vocab_size, n_layer=2, n_embd=64, block_size=32)).eval(), gpt2_tok


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """The app launched in-process on a free loopback port, shared by the tests that drive it."""
    from explainer.ui import build_demo, launch_kwargs

    demo = build_demo()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                **launch_kwargs())
    yield demo.local_url
    demo.close()



@pytest.fixture(autouse=True, scope="module")
def no_run_outlives_its_module():
    """After each test module: a training run it left behind (a session its clients never closed) is stopped,
    so it cannot slow the next modules, and is reported as a warning."""
    yield
    import sys
    import threading
    import time
    import warnings

    if "explainer.ui.training" not in sys.modules:  # no app was loaded: no run can exist
        return
    from explainer.ui import session as sessions
    from explainer.ui.training import THREAD_PREFIX

    def training() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]

    if not training():
        return
    left = training()
    for session_hash in list(sessions.LIVE.keys()):
        sessions.release_session(session_hash)
    deadline = time.monotonic() + 30
    while training() and time.monotonic() < deadline:
        time.sleep(0.1)
    warnings.warn(f"training runs still going after the module: {left}; stopped (left: {training()})")
