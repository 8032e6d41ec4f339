"""Continue training in the app: Stop keeps the run resumable, "Continue training" (/continue) goes on from
the step it stopped at, and the Train tab's zip, uploaded again, continues exactly too.

Real runs of a tiny model on Tiny Shakespeare, with dropout (so the random streams matter) and samples.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file

from explainer.ui import continue_run, limits, train_tab
from explainer.ui.session import Session
from explainer.ui.training import TrainingRun
from gpt import load_checkpoint

HP = dict(lr=3e-3, batch_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.1, seed=3)
ARGS = dict(corpus=train_tab.SHAKESPEARE, upload=None, tokenizer="char", preset="gpt-tiny", **HP)


def spec(iters: int, sample_every: int = 20):
    return train_tab.make_spec(ARGS["corpus"], None, "char", "gpt-tiny", iters, HP["lr"], HP["batch_size"],
                               HP["block_size"], HP["n_layer"], HP["n_head"], HP["n_embd"], HP["dropout"],
                               HP["seed"], sample_every)


def drive(run) -> None:
    """Train ``run`` in its thread to its end, reading its updates as the Train tab does."""
    if not run.running:
        run.start()
    for _ in run.updates(0.05):
        pass
    assert run.error is None and not run.running


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def straight():
    run = TrainingRun(spec(60))
    drive(run)
    return run


def test_stop_then_continue_equals_the_uninterrupted_run(straight):
    stopped = TrainingRun(spec(60))
    continue_run.plan(stopped.trainer, 25)  # stop after 25 of the planned 60 steps
    drive(stopped)
    assert stopped.trainer.step == 25 and continue_run.resumable(stopped)
    torch.manual_seed(12345)  # another visitor's run moves torch's global RNG in between ...
    torch.rand(100)
    stopped.export()  # ... and Stop downloads the checkpoint
    session = Session()
    session.add_run(stopped)
    run, new = continue_run.prepare(session, "latest", 35)
    assert run is stopped and not new
    continue_run.restart(run)
    drive(run)
    assert run.trainer.step == 60 and run.status == "done"
    assert same_weights(run.model, straight.model)
    assert [e.step for e in run.events] == list(range(1, 61))  # the curve goes on, not from 0
    assert [e.train_loss for e in run.events] == [e.train_loss for e in straight.events]
    assert [e.sample for e in run.events if e.sample] == [e.sample for e in straight.events if e.sample]
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(run.events, run.events[1:]))
    ours, theirs = run.trainer.optimizer.state_dict()["state"], straight.trainer.optimizer.state_dict()["state"]
    assert ours.keys() == theirs.keys() and all(
        torch.equal(ours[k][n], theirs[k][n]) for k in ours for n in ours[k] if torch.is_tensor(ours[k][n]))


def test_continuing_past_the_plan_extends_it_with_the_optimiser_state_kept(straight):
    run = TrainingRun(spec(60))
    drive(run)
    moments = {k: v["exp_avg"].clone() for k, v in run.trainer.optimizer.state.items() if "exp_avg" in v}
    assert moments, "the optimiser state is kept after the run ends"
    session = Session()
    session.add_run(run)
    continue_run.prepare(session, "latest", 20)
    assert run.trainer.config.max_iters == 80 and run.trainer.config.stop_at is None
    continue_run.restart(run)
    drive(run)
    assert [e.step for e in run.events] == list(range(1, 81)) and run.events[-1].max_iters == 80
    steps = {int(v["step"]) for v in run.trainer.optimizer.state.values() if "step" in v}
    assert steps == {80}  # the moments went on from step 60, not from a fresh optimiser
    assert not any(torch.equal(moments[k], run.trainer.optimizer.state[k]["exp_avg"]) for k in moments)


def test_the_state_is_freed_when_the_run_is_replaced_or_the_session_ends():
    session = Session()
    first = TrainingRun(spec(20))
    session.add_run(first)
    drive(first)
    assert first.trainer.optimizer.state
    second = TrainingRun(spec(20))
    session.add_run(second)  # a new run with the same tokenizer replaces it
    assert not first.trainer.optimizer.state
    drive(second)
    assert second.trainer.optimizer.state
    session.release()  # the tab closed or the session expired (expiry.forget calls this)
    assert not second.trainer.optimizer.state


def test_a_failed_run_keeps_nothing():
    run = TrainingRun(spec(20))
    run.status = "failed"
    run.close()
    assert not run.trainer.optimizer.state and not continue_run.resumable(run)


# --- through the launched app ---

def _step(progress: str) -> int:
    return int(re.search(r"step ([\d,]+) /", progress).group(1).replace(",", ""))


def _weights(zip_path: str, dest: Path):
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
        names = z.namelist()
    folder = next(p.parent for p in dest.rglob("meta.json"))
    return load_checkpoint(folder)[0], names, (folder / "loss.csv").read_text().splitlines()


@pytest.mark.slow
def test_app_stop_continue_and_upload_continue_give_the_uninterrupted_weights(app_url, tmp_path):
    total = 400
    client = Client(app_url, verbose=False)
    other = Client(app_url, verbose=False)
    try:
        job = client.submit(**ARGS, iters=total, sample_every=0, api_name="/train")
        next(iter(job))  # training has started ...
        out = client.predict(api_name="/export")  # ... press Stop: it stops and downloads
        stopped_at = _step(out[1])
        assert 0 < stopped_at < total and "stopped" in out[1]
        job.result(timeout=60)
        _, names, _ = _weights(out[4], tmp_path / "stopped")
        assert any(re.search(r"/train-state-[0-9a-f]{12}\.safetensors$", n) for n in names)  # the zip can resume
        half = (total - stopped_at) // 2
        mid = client.predict(source="my latest run", steps=half, corpus=train_tab.SHAKESPEARE, text_upload=None,
                             api_name="/continue")
        assert _step(mid[1]) == stopped_at + half
        done = client.predict(source="my latest run", steps=total - stopped_at - half,
                              corpus=train_tab.SHAKESPEARE, text_upload=None, api_name="/continue")
        assert f"step {total:,} / {total:,}" in done[1] and "finished" in done[1]
        continued, _, csv = _weights(done[4], tmp_path / "continued")
        assert [int(r.split(",")[0]) for r in csv[1:]] == list(range(1, total + 1))  # one curve, steps 1..total
        # the zip downloaded at Stop, uploaded in another session, continues exactly as well
        note = other.predict(handle_file(out[4]), api_name="/upload_checkpoint")[1]
        assert "uploaded checkpoint" in note
        up = other.predict(source="my uploaded checkpoint", steps=total - stopped_at,
                           corpus=train_tab.SHAKESPEARE, text_upload=None, api_name="/continue")
        assert f"step {total:,} / {total:,}" in up[1]
        uploaded, _, up_csv = _weights(up[4], tmp_path / "uploaded")
        assert [int(r.split(",")[0]) for r in up_csv[1:]] == list(range(1, total + 1))
    finally:
        client.close()
        other.close()
    straight = TrainingRun(spec(total, sample_every=0))
    drive(straight)
    assert same_weights(continued, straight.model)
    assert same_weights(uploaded, straight.model)


def test_only_the_latest_run_keeps_its_optimiser_state():
    """Continue takes the latest run only: a session's other model lets go of its optimiser state."""
    from explainer.ui.session import Session

    def tiny(tokenizer):
        return train_tab.make_spec(ARGS["corpus"], None, tokenizer, "gpt-tiny", 10, HP["lr"], HP["batch_size"],
                                   HP["block_size"], 1, 1, 8, 0.0, 0, 0)

    session = Session()
    char, gpt2 = TrainingRun(tiny("char")), TrainingRun(tiny("gpt2"))
    session.add_run(char)
    drive(char)
    assert char.trainer.optimizer.state
    session.add_run(gpt2)
    drive(gpt2)
    assert not char.trainer.optimizer.state and gpt2.trainer.optimizer.state
    assert session.runs == {"char": char, "gpt2": gpt2} and session.latest is gpt2  # both models stay
    session.release()


def test_the_limits_table_counts_the_kept_state():
    text = limits.markdown()
    assert "optimiser state" in text and f"{limits.MAX_UPLOAD_MB} MB" in text


@pytest.mark.slow
def test_the_largest_exportable_zip_fits_the_upload_cap_and_uploads_back(tmp_path, two_threads):
    """A model near MAX_PARAMS, stopped after 1 step: its zip (weights + training state + reports) is within
    limits.MAX_CHECKPOINT_ZIP_BYTES, Gradio's upload cap (MAX_FILE_BYTES) admits it, and it imports back."""
    from explainer.ui.upload import import_checkpoint_zip

    args = [10, 1e-3, 1, 256, 6, 6, 384, 0.0, 0, 0]  # iters, lr, batch, block, layers, heads, n_embd, ...
    run = TrainingRun(train_tab.make_spec(train_tab.SHAKESPEARE, None, "char", "gpt-small", *args))
    assert run.model.num_params() > 0.85 * limits.MAX_PARAMS
    continue_run.plan(run.trainer, 1)
    drive(run)
    size = Path(run.export().zip_path).stat().st_size
    print(f"largest zip: {run.model.num_params():,} parameters -> {size / 2**20:.1f} MiB "
          f"(cap {limits.MAX_CHECKPOINT_ZIP_BYTES / 2**20:.1f} MiB)")
    # the cap allows AdamW's two moments (8 bytes a parameter); the app's Muon recipe keeps one buffer for its
    # matrices, so its zip is smaller, but never below half the cap (the cap is not absurdly loose)
    assert 0.5 * limits.MAX_CHECKPOINT_ZIP_BYTES * run.model.num_params() / limits.MAX_PARAMS < size
    assert size * limits.MAX_PARAMS / run.model.num_params() <= limits.MAX_CHECKPOINT_ZIP_BYTES
    assert limits.MAX_FILE_BYTES >= limits.MAX_CHECKPOINT_ZIP_BYTES > limits.MAX_UPLOAD_BYTES
    model, _, meta = import_checkpoint_zip(run.exported.zip_path, tmp_path / "up")
    assert same_weights(model, run.model) and meta["train_state_step"] == 1
    run.cleanup()
