"""Head roles while a run trains: scored at each evaluation, drawn next to the loss curve, the
induction head marked; the induction corpus and recipe in the Train tab. Real models, a real server."""
from __future__ import annotations

import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explainer.figures.training import loss_curves_figure
from explainer.heads import INDUCTION_THRESHOLD, ROLES, head_roles
from explainer.ui import train_roles
from gpt import GPT, TokenData, get_tokenizer
from gpt.config import preset_config

TEXT = "abcdefgh ijklmnop " * 40


def tiny(n_layer=2, n_head=2):
    tok = get_tokenizer("char", corpus=TEXT)
    torch.manual_seed(0)
    return GPT(preset_config("gpt-tiny", tok.vocab_size, n_layer=n_layer, n_head=n_head, n_embd=32,
                             block_size=16)), TokenData.from_text(TEXT, tok)


def event(step, val=None, elapsed=None):
    return SimpleNamespace(step=step, val_loss=val, train_loss=2.0, eval_train_loss=val,
                           elapsed_s=float(step) / 10 if elapsed is None else elapsed)


def test_observe_scores_the_model_at_evaluations_only():
    model, data = tiny()
    hist = train_roles.RoleHistory(model, data)
    hist.observe(model, event(1))  # not an evaluation
    hist.observe(model, None)  # the run ended
    assert hist.history == []
    hist.observe(model, event(10, val=3.0))
    (step, roles), = hist.history
    direct = head_roles(model)
    assert step == 10 and all(np.array_equal(roles.scores[r], direct.scores[r]) for r in ROLES)
    assert hist.icl[0][0] == 10 and isinstance(hist.icl[0][1], float)
    fig = hist.figure()
    assert "in-context-learning score at step 10" in fig.layout.title.text
    assert f"{hist.icl[0][1]:+.3f} nats" in fig.layout.title.text


def test_induction_step_is_the_first_evaluation_over_the_threshold():
    model, data = tiny()
    hist = train_roles.RoleHistory(model, data)
    for step in (10, 20, 30):
        hist.observe(model, event(step, val=3.0))
    assert hist.induction_step is None  # an untrained model has no induction head
    hist.history[1][1].scores["induction"][1, 0] = INDUCTION_THRESHOLD + 0.01  # step 20's record crosses the line
    assert hist.induction_step == 20


def test_a_model_without_heads_says_so():
    model, data = tiny(n_layer=0, n_head=0)
    hist = train_roles.RoleHistory(model, data)
    hist.observe(model, event(10, val=3.0))
    assert hist.history == [] and "no attention layers" in json.dumps(hist.figure().to_plotly_json())


def test_loss_curve_marks_the_induction_step():
    events = [event(s, val=3.0 - s / 100 if s % 10 == 0 else None) for s in range(1, 41)]
    assert not loss_curves_figure(events).layout.shapes  # unchanged without the marker
    fig = loss_curves_figure(events, induction_step=30)
    (line,), (note,) = fig.layout.shapes, fig.layout.annotations
    assert line.x0 == line.x1 == 30 and "step 30" in note.text
    timed = loss_curves_figure(events, x="time", induction_step=30)
    assert timed.layout.shapes[0].x0 == pytest.approx(3.0)  # that step's wall time


def test_induction_preset_trains_under_its_recipe():
    from explainer.ui.training import train_config
    from gpt.synthetic import INDUCTION_TRAIN

    hp = dict(iters=2000, lr=3e-3, batch_size=32, sample_every=0, seed=0)
    base = train_config(hp)
    cfg = train_roles.train_config("induction", base)
    assert cfg.optimizer == "adamw" and cfg.weight_decay == INDUCTION_TRAIN["weight_decay"] == 0.0
    assert cfg.lr == 3e-3 and cfg.batch_size == 32 and cfg.schedule == "wsd"
    assert train_roles.train_config("gpt-tiny", base) is base
    iters, lr, batch, corpus = train_roles.induction_recipe("induction")
    assert (iters, lr, batch, corpus) == (INDUCTION_TRAIN["max_iters"], 3e-3, 32, train_roles.INDUCTION)


# ---- through the launched app -------------------------------------------------------------------------

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402


def roles_points(plot: dict) -> dict:
    """{(layer, head, role): (steps, scores)} from the streamed roles chart."""
    out = {}
    for tr in json.loads(plot["plot"])["data"]:
        layer, head = (int(w.strip(",")) for w in tr["hovertemplate"].split("<br>")[0].split()[1::2])
        out[(layer, head, tr["name"])] = (tr["x"], tr["y"])
    return out


def test_train_streams_the_session_models_head_roles(app_url, tmp_path):
    from gpt import load_checkpoint

    c = Client(app_url, verbose=False)
    try:
        outs = list(c.submit(corpus="Tiny Shakespeare", upload=None, tokenizer="char", preset="gpt-tiny", iters=20,
                             lr=1e-3, batch_size=4, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
                             seed=0, sample_every=0, api_name="/train"))
    finally:
        c.close()
    assert len(outs[-1]) == 7
    plot, progress, stats, sample, ckpt, report, roles = outs[-1]
    points = roles_points(roles)
    assert len(points) == 2 * 2 * len(ROLES)
    with zipfile.ZipFile(ckpt) as z:
        z.extractall(tmp_path)
    folder = next(p.parent for p in tmp_path.rglob("meta.json"))
    model, _ = load_checkpoint(folder)
    final = head_roles(model)  # the model at its last step, which was an evaluation
    for (layer, head, role), (steps, scores) in points.items():
        assert steps == [10, 20]
        assert scores[-1] == pytest.approx(float(final.scores[role][layer, head]), abs=1e-5)
    assert "in-context-learning score at step 20" in json.loads(roles["plot"])["layout"]["title"]["text"]


@pytest.mark.slow
def test_an_induction_head_forms_in_the_app_and_is_marked(app_url, two_threads):
    from gpt.synthetic import INDUCTION_TRAIN

    c = Client(app_url, verbose=False)
    job = c.submit(corpus=train_roles.INDUCTION, upload=None, tokenizer="char", preset="induction",
                   iters=INDUCTION_TRAIN["max_iters"], lr=INDUCTION_TRAIN["lr"],
                   batch_size=INDUCTION_TRAIN["batch_size"], block_size=64, n_layer=2, n_head=2, n_embd=64,
                   dropout=0.0, seed=0, sample_every=0, api_name="/train")
    marked = None
    try:
        for out in job:
            loss = json.loads(out[0]["plot"])["layout"]
            if loss.get("shapes"):
                marked = out
                break
    finally:
        job.cancel()
        c.close()
    assert marked is not None, "no induction head formed in the whole run"
    step = int(json.loads(marked[0]["plot"])["layout"]["shapes"][0]["x0"])
    points = roles_points(marked[6])
    best = {s: max(y[i] for (_, _, r), (x, y) in points.items() if r == "induction" for i, xs in enumerate(x)
                   if xs == s) for s in next(iter(points.values()))[0]}
    assert best[step] > INDUCTION_THRESHOLD and all(v <= INDUCTION_THRESHOLD for s, v in best.items() if s < step)
    assert f"({step})" in json.loads(marked[6]["plot"])["layout"]["title"]["text"]
