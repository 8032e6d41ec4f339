"""Queued training never locks anyone out, and a cancelled run never trains on in the background.

Gradio's queue ``max_size`` counts every event alike, so training requests must never wait there:
``/train`` admits runs itself (``admission``), one training at a time, a bounded number waiting,
one waiting run per session. Raw ``/gradio_api/queue/join`` requests with fresh session hashes are
what a script sends. Deadlines are generous upper bounds on a loaded 2-core machine.
"""
from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import pytest
from gradio_client import Client

from explainer.ui import admission, limits
from explainer.ui import session as sessions
from explainer.ui.training import THREAD_PREFIX
from hardening_helpers import fn_index, join, messages, new_hash, served

JOINS = 70
DEADLINE_S = 60
LONG = ["Tiny Shakespeare", None, "char", "block", 5000, 1e-3, 12, 32, 2, 4, 64, 0.0, 0, 0]


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def eventually(condition, deadline_s: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture(scope="module")
def server():
    with served() as (demo, url):
        yield demo, url


def first_answer(url: str, session_hash: str) -> dict:
    """The first update or completion on a session's stream (a training run waiting, or refused)."""
    for msg in messages(url, session_hash, until="process_generating"):
        if msg.get("msg") in ("process_generating", "process_completed"):
            return msg
    return {}


def error_of(msgs: list) -> str:
    done = [m for m in msgs if m.get("msg") == "process_completed"]
    assert done, msgs[-3:]
    out = done[-1].get("output") or {}
    return str(out.get("error") or "") + str(out.get("title") or "")


def test_seventy_queued_trainings_leave_inspect_generate_compare_open(server):
    demo, url = server
    train = fn_index(demo, "train")
    first = new_hash()
    assert join(url, train, [None, *LONG], first).status_code == 200
    assert eventually(lambda: first in sessions.LIVE and sessions.LIVE[first].latest.running)
    hashes = [new_hash() for _ in range(JOINS)]
    try:
        answers = [join(url, train, [None, *LONG], h) for h in hashes]
        assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers if a.status_code != 200][:3]

        client = Client(url, verbose=False)
        try:
            took = {}
            for api, args in [("/inspect", ("ROMEO:", "untrained-char", 0, 0, True, "×1", 0, 0, 1.0, 0, 1.0)),
                              ("/generate", ("ROMEO:", "untrained-char", 5, 1.0, 0, 1.0, 0)),
                              ("/compare", ("ROMEO:", 0, 0.8, 5))]:
                start = time.monotonic()
                client.submit(*args, api_name=api).result(timeout=DEADLINE_S)
                took[api] = time.monotonic() - start
            print("while", JOINS, "trainings were queued, seconds:", {k: round(v, 2) for k, v in took.items()})
        finally:
            client.close()

        # the handlers run concurrently, so which joins got a place in line is not their order: read each
        # stream up to its first answer, a "waiting" update or the refusal
        outcome = {h: first_answer(url, h) for h in hashes}
        waiting = [h for h, m in outcome.items() if m.get("msg") == "process_generating"]
        refused = [h for h, m in outcome.items() if m.get("msg") == "process_completed"]
        assert len(waiting) + len(refused) == JOINS, {h: m.get("msg") for h, m in outcome.items()}
        assert 1 <= len(waiting) <= limits.MAX_WAITING_RUNS, len(waiting)
        assert all("waiting" in str(outcome[h].get("output", "")) for h in waiting)
        cap = f"{limits.MAX_WAITING_RUNS} runs are waiting; try again in a few minutes"
        texts = [error_of([outcome[h]]) for h in refused]
        assert texts and all(cap in t for t in texts), texts[:3]
        # a second training request from a session that already has one waiting is refused (the gate itself:
        # over HTTP its answer would share the stream with the first request's "waiting" updates)
        gate = admission.Gate(slots=1, max_waiting=2)
        gate.enter("a")
        gate.enter("b")
        with pytest.raises(admission.Busy, match="already has a training run waiting"):
            gate.enter("b")
    finally:
        for h in [*hashes, first]:  # the waiting ones first, so none is admitted when the running one stops
            sessions.release_session(h)


def test_a_train_cancelled_at_once_stops_within_seconds(server):
    demo, url = server
    for h in list(sessions.LIVE.keys()):
        sessions.release_session(h)
    eventually(lambda: not training_threads())
    before = set(training_threads())  # the test is about the cancelled run's thread only
    client = Client(url, verbose=False)
    try:
        job = client.submit(*LONG, api_name="/train")
        time.sleep(0.05)
        job.cancel()
        eventually(lambda: set(training_threads()) - before, 3)  # it may or may not have started its thread
        assert eventually(lambda: not set(training_threads()) - before, limits.TRAIN_WATCHDOG_S + 20), \
            "a cancelled run kept training"
        run = sessions.LIVE.get(client.session_hash)
        if run is not None and run.latest is not None:
            assert run.latest.trainer.step < 5000
    finally:
        client.close()
        for h in list(sessions.LIVE.keys()):  # a run that trained on must not hold the slot for the next tests
            sessions.release_session(h)


def cancel(url: str, index: int, session_hash: str, event_id: str | None = None) -> httpx.Response:
    """POST /gradio_api/cancel as gradio_client does: event_id null until its join has been answered (Gradio
    refuses such a body with HTTP 422 and cancels nothing)."""
    return httpx.post(f"{url}gradio_api/cancel", json={"fn_index": index, "session_hash": session_hash,
                                                       "event_id": event_id}, timeout=DEADLINE_S)


def no_run_trains(before: set) -> bool:
    """No training thread besides ``before`` appears within 3 s (and none is left)."""
    time.sleep(3)
    return not set(training_threads()) - before


@pytest.mark.slow
def test_a_cancel_that_overtakes_its_join_stops_the_run(server):
    """gradio_client's cancel thread can post /cancel before its own join arrives: that orphan cancel
    (no event id, nothing of that session queued) stops the join that follows it."""
    demo, url = server
    before = set(training_threads())
    h = new_hash()
    try:
        cancel(url, fn_index(demo, "train"), h)
        assert join(url, fn_index(demo, "train"), [None, *LONG], h).status_code == 200
        done = [m for m in messages(url, h, timeout=DEADLINE_S) if m.get("msg") == "process_completed"]
        assert done and done[-1].get("success") is not False, done
        assert no_run_trains(before), "an overtaken run trained anyway"
        # the orphan cancel is used up: the session's next run trains
        assert join(url, fn_index(demo, "train"), [None, *TINY], h).status_code == 200
        done = [m for m in messages(url, h, timeout=DEADLINE_S) if m.get("msg") == "process_completed"]
        assert done and "step 10 / 10" in json.dumps(done[-1].get("output")), done[-1:]
    finally:
        sessions.release_session(h)


@pytest.mark.slow
def test_a_cancel_while_the_event_is_still_queued_stops_the_run(server, monkeypatch):
    """A cancel with no event id while the event waits in Gradio's queue matches no task and removes
    nothing; the run must still not train when the queue gets to it (pickup delayed here by 1.5 s)."""
    demo, url = server
    queue = demo._queue
    real_get_events = queue.get_events

    def slow_get_events():
        if any(time.monotonic() - e.enqueue_time < 1.5 for q in queue.event_queue_per_concurrency_id.values()
               for e in q.queue):
            return None
        return real_get_events()

    monkeypatch.setattr(queue, "get_events", slow_get_events)
    before = set(training_threads())
    h = new_hash()
    try:
        assert join(url, fn_index(demo, "train"), [None, *LONG], h).status_code == 200
        cancel(url, fn_index(demo, "train"), h)
        done = [m for m in messages(url, h, timeout=DEADLINE_S) if m.get("msg") == "process_completed"]
        assert done and done[-1].get("success") is not False, done  # ended, not refused
        assert no_run_trains(before), "a run cancelled in the queue trained anyway"
    finally:
        sessions.release_session(h)


TINY = ["Tiny Shakespeare", None, "char", "single-head", 10, 1e-3, 8, 16, 1, 1, 16, 0.0, 0, 0]


def test_an_export_racing_a_new_train_is_never_a_dead_link(server):
    """/export and a new /train of the same session at once: the export's files are still delivered."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    _, url = server
    client = Client(url, verbose=False)
    try:
        client.predict(*TINY, api_name="/train")
        with ThreadPoolExecutor(2) as pool:
            for seed in range(1, 6):
                export = pool.submit(client.predict, api_name="/export")
                train = pool.submit(client.predict, *TINY[:-2], seed, 0, api_name="/train")
                zip_path, report = export.result(timeout=DEADLINE_S)[4:6]
                assert Path(zip_path).stat().st_size > 0 and Path(report).read_text().startswith("#")
                train.result(timeout=DEADLINE_S)
    finally:
        client.close()


def test_a_replaced_run_keeps_its_files_for_the_grace_time(tmp_path):
    from explainer.ui import training

    folder = training.RUNS_DIR / "grace-probe"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text("# probe")
    training.retire(folder)
    training.purge()  # (other tests' retired folders may be due by now: only this one's fate is checked)
    assert folder.exists()  # not yet: an answer may be on its way
    assert training.purge(time.monotonic() + limits.EXPORT_GRACE_S + 1) >= 1 and not folder.exists()


def test_an_export_answer_survives_the_run_being_replaced_before_delivery():
    """Deterministic form of the race: /export has answered, the browser has not fetched the files yet,
    and a new run of the same session replaces the old one. The answered files must still be there."""
    from pathlib import Path

    from explainer.ui import train_tab
    from explainer.ui.session import Session
    from explainer.ui.training import TrainingRun, TrainSpec

    hp = limits.check_train(iters=10, lr=1e-3, batch_size=4, block_size=8, n_layer=1, n_head=1, n_embd=16,
                            dropout=0.0, seed=0, sample_every=0)
    session = Session()
    run = TrainingRun(TrainSpec("char", "single-head", hp))
    session.add_run(run)
    run.start()
    assert run.wait(60)
    zip_path, report = train_tab.export(session)[4:6]
    session.add_run(TrainingRun(TrainSpec("char", "single-head", {**hp, "seed": 1})))  # replaces (and cleans) it
    assert Path(zip_path).is_file() and Path(report).is_file()
    session.release()


def test_an_export_that_ends_after_its_session_leaves_no_files():
    """The tab closed (the run's files retired) while /export was still writing the zip: the folder that
    export made goes with the run's other files, not left behind for the life of the process."""
    from explainer.ui import run_files
    from explainer.ui.training import TrainingRun, TrainSpec

    hp = limits.check_train(iters=10, lr=1e-3, batch_size=4, block_size=8, n_layer=1, n_head=1, n_embd=16,
                            dropout=0.0, seed=0, sample_every=0)
    run = TrainingRun(TrainSpec("char", "single-head", hp))
    run.start()
    assert run.wait(60)
    run.cleanup()  # the session ended first
    export = run.export()
    assert run.delivery in run_files.retired()
    assert run_files.purge(time.monotonic() + limits.EXPORT_GRACE_S + 1) >= 1
    assert not run.delivery.exists() and not (run_files.RUNS_DIR / run.id).exists()
    assert export.zip_path.startswith(str(run.delivery))


def test_an_export_whose_session_ends_midway_says_so(monkeypatch):
    """The tab closed while the run's export was writing its folder (the race behind an intermittent
    tab-close failure): the session's cleanup removes that folder under the export, which says the session
    ended (a ValueError, so no traceback reaches the log) instead of failing with the FileNotFoundError."""
    import explainer.report
    from explainer.ui import run_files
    from explainer.ui.training import SessionEnded, TrainingRun, TrainSpec

    hp = limits.check_train(iters=10, lr=1e-3, batch_size=4, block_size=8, n_layer=1, n_head=1, n_embd=16,
                            dropout=0.0, seed=0, sample_every=0)
    run = TrainingRun(TrainSpec("char", "single-head", hp))
    run.start()
    assert run.wait(60)
    write = explainer.report.write_loss_html

    def session_ends_meanwhile(out, *args, **kwargs):
        write(out, *args, **kwargs)
        run.files_retired = True  # what the session's cleanup does first, then its purge removes the folder
        shutil.rmtree(run_files.RUNS_DIR / run.id)

    monkeypatch.setattr(explainer.report, "write_loss_html", session_ends_meanwhile)
    with pytest.raises(SessionEnded, match="session ended while its download was being written"):
        run.export()
    assert issubclass(SessionEnded, ValueError)
    assert not (run_files.RUNS_DIR / run.id).exists()
