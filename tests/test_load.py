"""Many visitors at once, bounded and on loopback only: 8 sessions inspect and generate while a 9th trains.

Each of the 8 first trains its own tiny model with its own seed and downloads its checkpoint.
Under load, every answer a session gets must be exactly what its own model gives (recomputed
here from its download), so no session ever sees another session's model. Latencies are
reported (printed, and written to tests/artifacts/load.json), never asserted.
"""
from __future__ import annotations

import pytest

import json
import statistics
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

from explainer import five_stages_figure, trace_prompt
from gpt import load_checkpoint
from gpt.generate import generate_text

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SESSIONS, ROUNDS = 8, 3
TIMEOUT_S = 120  # per request: a stuck request fails the test instead of hanging it
TRAIN = dict(corpus="Tiny Shakespeare", upload=None, tokenizer="char", lr=1e-3, dropout=0.0, sample_every=0)
OWN = dict(preset="single-head", iters=10, batch_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16)
LONG = dict(preset="block", iters=5000, batch_size=12, block_size=32, n_layer=2, n_head=4, n_embd=64, seed=0)
GEN = dict(prompt="ROMEO:", n=30, temperature=1.0, seed=7)


def train_own_model(client: Client, seed: int, folder: Path):
    """Train this session's tiny model; return (model, tokenizer, meta) loaded from its download."""
    zip_path = client.predict(**TRAIN, **OWN, seed=seed, api_name="/train")[4]
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)
    return load_checkpoint(next(folder.glob("*/meta.json")).parent, with_meta=True)


def prompt(round_: int) -> str:
    return f"But soft, what light {'!' * round_}"


def visit(client: Client) -> dict:
    """ROUNDS x (inspect a new prompt, generate): the outputs and how long each request took."""
    out = {"inspect": [], "generate": [], "inspect_s": [], "generate_s": []}
    for r in range(ROUNDS):
        t0 = time.perf_counter()
        stages = client.submit(prompt(r), "session-char", 0, 1, True, "×1", 0, 0, 1.0, 0, 1.0,
                               api_name="/inspect").result(TIMEOUT_S)[1]
        t1 = time.perf_counter()
        text = client.submit(GEN["prompt"], "session-char", GEN["n"], GEN["temperature"], 0, 1.0, GEN["seed"],
                             api_name="/generate").result(TIMEOUT_S)
        t2 = time.perf_counter()
        out["inspect"].append(json.loads(stages["plot"]))
        out["generate"].append(text)
        out["inspect_s"].append(t1 - t0)
        out["generate_s"].append(t2 - t1)
    return out


def percentiles(values: list[float]) -> dict:
    q = statistics.quantiles(values, n=20, method="inclusive")
    return {"n": len(values), "p50_s": round(statistics.median(values), 4), "p95_s": round(q[18], 4),
            "max_s": round(max(values), 4)}


def test_eight_sessions_inspect_and_generate_while_a_ninth_trains(app_url, tmp_path):
    clients = [Client(app_url, verbose=False) for _ in range(SESSIONS + 1)]
    trainer = None
    try:
        own = [train_own_model(c, seed, tmp_path / f"s{seed}") for seed, c in enumerate(clients[:SESSIONS], 1)]
        trainer = clients[SESSIONS].submit(**TRAIN, **LONG, api_name="/train")
        while not trainer.outputs():  # the 9th session is training before the others start
            assert not trainer.done(), trainer.result()
            time.sleep(0.1)
        with ThreadPoolExecutor(SESSIONS) as pool:
            visits = list(pool.map(visit, clients[:SESSIONS]))
        ninth_still_training = not trainer.done()
    finally:
        if trainer is not None:
            trainer.cancel()
        for c in clients:
            c.close()

    assert ninth_still_training
    assert len({meta["weights_sha256"] for _, _, meta in own}) == SESSIONS
    for (model, tok, _), seen in zip(own, visits):
        expected = GEN["prompt"] + generate_text(model, tok, GEN["prompt"], max_new_tokens=GEN["n"],
                                                 temperature=GEN["temperature"], seed=GEN["seed"]).text
        assert seen["generate"] == [expected] * ROUNDS
        for r, figure in enumerate(seen["inspect"]):
            assert figure == json.loads(five_stages_figure(trace_prompt(model, tok, prompt(r)), 0, 1).to_json())
    # the sessions' attention numbers all differ, so showing one session another's model would fail above
    assert len({json.dumps(seen["inspect"][0]) for seen in visits}) == SESSIONS

    report = {"sessions": SESSIONS, "rounds": ROUNDS, "trainer": LONG["preset"],
              "inspect": percentiles([s for v in visits for s in v["inspect_s"]]),
              "generate": percentiles([s for v in visits for s in v["generate_s"]])}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nload: inspect p50 {report['inspect']['p50_s']:.3f}s p95 {report['inspect']['p95_s']:.3f}s; "
          f"generate p50 {report['generate']['p50_s']:.3f}s p95 {report['generate']['p95_s']:.3f}s")
