"""Stopping is clean: no training thread outlives a cancelled run, the model stays usable at the step
it reached, and closing a browser tab mid-training stops its run and frees its model.

Training runs in a thread named ``playattention-train-<run id>``; the app's sessions that hold a
trained model are in ``session.LIVE`` (by Gradio session hash). Deadlines here are generous
upper bounds for a loaded machine, not timings under test.
"""
from __future__ import annotations

import gc
import os
import threading
import time
import weakref
import zipfile

import pytest
from gradio_client import Client

from explainer.ui import session as sessions
from explainer.ui.training import THREAD_PREFIX
from gpt import load_checkpoint
from gpt.generate import generate_text

CHROMIUM = "/usr/bin/chromium"
DEADLINE_S = 60
LONG_RUN = dict(corpus="Tiny Shakespeare", upload=None, tokenizer="char", preset="bigram", iters=5000, lr=1e-3,
                batch_size=8, block_size=32, n_layer=0, n_head=0, n_embd=32, dropout=0.0, seed=0, sample_every=0)


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def eventually(condition) -> bool:
    """Whether ``condition()`` becomes true within DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_cancel_leaves_no_training_thread_and_a_usable_model(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    try:
        job = client.submit(**LONG_RUN, api_name="/train")
        assert eventually(lambda: len(job.outputs()) >= 3)
        run = sessions.LIVE[client.session_hash].latest
        assert run.thread.name == THREAD_PREFIX + run.id and run.thread in training_threads()
        job.cancel()
        assert eventually(lambda: not training_threads())
        assert run.status == "stopped" and 0 < run.trainer.step < LONG_RUN["iters"]
        assert run.trainer.optimizer.state  # a stopped run stays resumable (Continue training; continue_run)

        out = client.predict("ROMEO:", "session-char", 20, 0.0, 0, 1.0, 0, api_name="/generate")
        assert out == "ROMEO:" + generate_text(run.model, run.tokenizer, "ROMEO:", max_new_tokens=20,
                                               temperature=0.0).text
        zip_path = client.predict(api_name="/export")[4]
    finally:
        client.close()
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(tmp_path)
    model, tok, meta = load_checkpoint(next(tmp_path.glob("*/meta.json")).parent, with_meta=True)
    assert meta["step"] == run.trainer.step  # the download is the model at the step it reached
    assert generate_text(model, tok, "ROMEO:", max_new_tokens=20, temperature=0.0).text == out[len("ROMEO:"):]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}")
@pytest.mark.slow
def test_closing_the_tab_mid_training_frees_its_model(app_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    known = set(sessions.LIVE.keys())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.set_default_timeout(DEADLINE_S * 2000)
            page.goto(app_url)
            page.click("#train-start")
            page.wait_for_function("(document.querySelector('#loss-plot .js-plotly-plot') || {}).data"
                                   " && document.querySelector('#loss-plot .js-plotly-plot').data[0].x.length > 0")
            [tab] = set(sessions.LIVE.keys()) - known
            run = sessions.LIVE[tab].latest
            thread, model = run.thread, weakref.ref(run.model)
            assert thread.is_alive()
            del run
            page.close()

            def model_freed() -> bool:
                gc.collect()
                return model() is None

            assert eventually(lambda: not thread.is_alive())
            assert eventually(lambda: tab not in sessions.LIVE)
            assert eventually(model_freed)
        finally:
            browser.close()
