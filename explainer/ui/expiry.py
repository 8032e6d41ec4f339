"""Free every visitor's memory and files: when the tab closes, and when it has been idle too long.

Raw-HTTP clients never open a heartbeat, so tab-close cleanup (``unload``) never fires for them;
Gradio itself keeps a closed session's state for an hour and every ``SessionState`` (a copy of
the page config, the session's traces and models) until 10,000 sessions exist. So a sweeper
thread ``forget``s, through Gradio's ``state_holder``:

* sessions idle longer than ``limits.session_ttl_s()`` (env ``PLAYATTENTION_SESSION_TTL_S``),
* the least recently used idle sessions beyond ``limits.MAX_SESSIONS`` (and beyond
  ``limits.MAX_TRAINED_SESSIONS`` holding trained models),

never one with a request in flight or a run training. Forgetting releases the Session (stops its
training, drops its models and traces, retires its run folders), removes Gradio's state for it,
deletes retired run folders whose grace time is over, and hands freed heap back to the system.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
import weakref

from . import limits, training
from .session import LIVE, Session, release_session

log = logging.getLogger("playattention.ui")


def sessions_of(state) -> list[Session]:
    return [v for v in getattr(state, "state_data", {}).values() if isinstance(v, Session)]


def busy(demo, session_hash: str) -> bool:
    """A request of this session is queued or running, or one of its runs trains."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and queue.pending_event_ids_session.get(session_hash):
        return True
    state = demo.state_holder.session_data.get(session_hash)
    found = sessions_of(state) + ([LIVE[session_hash]] if session_hash in LIVE else [])
    return any(run.running for s in found for run in [*s.runs.values(), s.latest] if run is not None)


def forget(demo, session_hash: str) -> None:
    """Release everything of one session now and drop Gradio's state for it."""
    holder = demo.state_holder
    with holder.lock:
        state = holder.session_data.pop(session_hash, None)
        holder.time_last_used.pop(session_hash, None)
    for session in sessions_of(state):
        session.release()
    release_session(session_hash)


def sweep(demo, now: float | None = None) -> int:
    """Forget expired and surplus idle sessions; return how many were forgotten."""
    holder = demo.state_holder
    now = time.time() if now is None else now
    ttl = limits.session_ttl_s()
    with holder.lock:
        by_age = sorted(holder.time_last_used.items(), key=lambda kv: kv[1])
    idle = [(h, now - t.timestamp()) for h, t in by_age if not busy(demo, h)]
    doomed = {h for h, age in idle if age > ttl}
    alive = [h for h, _ in idle if h not in doomed]
    doomed.update(alive[:max(0, len(by_age) - len(doomed) - limits.MAX_SESSIONS)])
    trained = [h for h in alive if h not in doomed and any(s.runs for s in sessions_of(holder.session_data.get(h)))]
    doomed.update(trained[:max(0, len(trained) - limits.MAX_TRAINED_SESSIONS)])
    for h in doomed:
        forget(demo, h)
    training.purge()
    if doomed:
        trim()
    return len(doomed)


def demo_of(request):
    """The Blocks serving this request (None for a direct call)."""
    app = getattr(getattr(request, "request", None), "app", None)
    return app.get_blocks() if hasattr(app, "get_blocks") else None


def make_room(demo, need: int, keep: str | None = None) -> bool:
    """Forget the least recently used idle sessions holding trained models (never ``keep``) until the other
    sessions' run files plus ``need`` bytes fit ``limits.MAX_RUN_DISK_BYTES``; True when they fit.

    ``keep``'s own run files do not count: it holds at most one run per tokenizer, and its new run replaces one."""
    holder = getattr(demo, "state_holder", None)
    mine = sessions_of(holder.session_data.get(keep)) if holder is not None and keep else []
    mine += [LIVE[keep]] if keep in LIVE else []
    own = {run.id for s in mine for run in [*s.runs.values(), s.latest] if run is not None}

    def fits() -> bool:
        return training.disk_used(exclude=own) + need <= limits.MAX_RUN_DISK_BYTES

    if fits() or holder is None:
        return fits()
    with holder.lock:
        by_age = [h for h, _ in sorted(holder.time_last_used.items(), key=lambda kv: kv[1])]
    for h in by_age:
        if h != keep and not busy(demo, h) and any(s.runs for s in sessions_of(holder.session_data.get(h))):
            forget(demo, h)
            if fits():
                return True
    return fits()


def trim() -> None:
    """Give freed heap pages back to the system (glibc keeps them otherwise)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def start(demo) -> threading.Thread:
    """Sweep every ``limits.sweep_interval_s()`` while the demo exists (a daemon thread)."""
    ref = weakref.ref(demo)

    def loop():
        while (d := ref()) is not None:
            try:
                sweep(d)
            except Exception:  # noqa: BLE001 - a failed sweep must never kill the sweeper
                log.warning("session sweep failed", exc_info=True)
            del d
            time.sleep(limits.sweep_interval_s())

    thread = threading.Thread(target=loop, name="playattention-sweeper", daemon=True)
    thread.start()
    return thread
