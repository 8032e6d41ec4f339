"""A cancel that overtakes its event still stops it. No Gradio here.

Gradio's ``/gradio_api/cancel`` stops an event's running task and removes it from the queue by
its event id. A client that cancels right after it joined (gradio_client's ``Job.cancel()``
50 ms after ``submit``) may not know the event id yet, and the event may not have started: the
cancel is then a no-op, and the event runs to its end while nobody reads it. Gradio keeps
iterating the handler, so the training watchdog (which stops a run nobody asks updates of)
never fires, and a cancelled 5,000-step run holds the training slot for minutes.

``Watch`` is an ASGI middleware that stamps each ``queue/join`` with its arrival time (in the
request's ``state``, which the handler's ``gr.Request`` carries) and notes every cancel by
(session, fn_index). A training handler asks ``watcher(request, api_names)()`` before it waits,
while it waits and at every update, and its training thread at every step: was a cancel for
this session and one of these events received after this request joined? So a cancelled run
stops at its next step, not when the watchdog notices that nobody reads it. A cancel can even
arrive *before* its join (the client's cancel thread overtakes its join request): a cancel that
names no event id and matches no queued or running event of that session is an orphan, and it
applies to that session's next join of that event within ``ORPHAN_S``.
"""
from __future__ import annotations

import json
import threading
import time

JOINED = "pa_joined_at"  # the key in the join request's ASGI state
MAX_CANCEL_BODY = 4096  # a cancel body is {"fn_index", "session_hash", "event_id"}: tiny
MAX_NOTED = 10_000  # cancels remembered at once (oldest forgotten first)
ORPHAN_S = 5.0  # an orphan cancel applies to a join of its session and event this soon after it

# (session_hash, fn_index) -> (when the last cancel arrived, whether it was an orphan)
_cancels: dict[tuple[str, int], tuple[float, bool]] = {}
_lock = threading.Lock()


def note(session_hash: str, fn_index: int, *, orphan: bool = False, at: float | None = None) -> None:
    """Remember that a cancel for this session's event ``fn_index`` arrived (now, or ``at``)."""
    with _lock:
        _cancels.pop((session_hash, fn_index), None)
        _cancels[(session_hash, fn_index)] = (time.monotonic() if at is None else at, orphan)
        while len(_cancels) > MAX_NOTED:
            _cancels.pop(next(iter(_cancels)))


def forget(session_hash: str) -> None:
    """The session ended: drop its cancels."""
    with _lock:
        for key in [k for k in _cancels if k[0] == session_hash]:
            del _cancels[key]


def joined_at(request) -> float | None:
    """When this handler's ``queue/join`` arrived (monotonic), or None (a direct call, not through the app)."""
    state = getattr(getattr(request, "request", None), "scope", {}).get("state") or {}
    value = state.get(JOINED)
    return value if isinstance(value, float) else None


def fn_ids(request, api_names) -> list[int]:
    """The fn_index of each event named ``api_names`` in the app that serves ``request``."""
    app = getattr(getattr(request, "request", None), "app", None)
    blocks = app.get_blocks() if hasattr(app, "get_blocks") else None
    return [i for i, fn in (getattr(blocks, "fns", None) or {}).items() if getattr(fn, "api_name", None) in api_names]


def watcher(request, api_names):
    """A check cheap enough for every training step: has a cancel for this request's session and one of the
    events ``api_names`` arrived after this request joined the queue, or an orphan cancel just before it?
    (Never, for a direct call that did not come through the queue.) An orphan cancel is used up by the
    join it stops."""
    joined = joined_at(request)
    session_hash = getattr(request, "session_hash", None)
    if joined is None or not session_hash:
        return lambda: False
    keys = [(session_hash, fn) for fn in fn_ids(request, api_names)]

    def cancelled() -> bool:
        with _lock:
            for key in keys:
                at, orphan = _cancels.get(key, (-1.0, False))
                if at >= joined:
                    return True
                if orphan and 0 <= joined - at <= ORPHAN_S:
                    del _cancels[key]
                    return True
        return False

    return cancelled



def _pending(app, session_hash: str, fn_index: int) -> bool:
    """Gradio's queue holds (queued or running) an event ``fn_index`` of this session."""
    queue = getattr(app.get_blocks(), "_queue", None) if hasattr(app, "get_blocks") else None
    if queue is None:
        return True  # cannot tell: never treat the cancel as an orphan
    events = queue.event_ids_to_events
    ids = queue.pending_event_ids_session.get(session_hash, ())
    return any(getattr(getattr(events.get(i), "fn", None), "_id", None) == fn_index for i in ids)


class Watch:
    """ASGI middleware: stamp queue joins with their arrival, note cancels; the request itself is unchanged."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("method") == "POST":
            path = scope.get("path", "").rstrip("/")
            if path.endswith("/queue/join"):
                scope.setdefault("state", {})[JOINED] = time.monotonic()
            elif path.endswith("/cancel"):
                receive = await _noting(receive, scope.get("app"))
        return await self.app(scope, receive, send)


async def _noting(receive, app):
    """Read the cancel's (small) body, note it, and hand the same messages on to Gradio."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message.get("type") != "http.request" or not message.get("more_body") or size > MAX_CANCEL_BODY:
            break
    if size <= MAX_CANCEL_BODY:
        try:
            body = json.loads(b"".join(m.get("body", b"") for m in messages))
            session_hash, fn_index = body.get("session_hash"), body.get("fn_index")
            if isinstance(session_hash, str) and type(fn_index) is int:
                orphan = body.get("event_id") is None and not _pending(app, session_hash, fn_index)
                note(session_hash[:200], fn_index, orphan=orphan)
        except (ValueError, AttributeError):
            pass  # not JSON: Gradio answers it as it would have

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay
