"""HTTP requests Gradio's routes crash on get a 4xx answer and one log line, never a traceback.

Some malformed requests fail inside Gradio's routes before any app code runs: an unknown
``fn_index`` in ``/gradio_api/queue/join`` (KeyError, HTTP 500), an upload whose file part has
an empty filename (TypeError, HTTP 500), ``/gradio_api/queue/data`` for a session that does not
exist (an exception after the stream started). Uvicorn would log each with a full traceback.
``Guard`` is an ASGI middleware (given to FastAPI through ``launch(app_kwargs=...)``): it answers
those with a specific message and logs one bounded line. ``OneLine`` is a logging filter that
turns any traceback uvicorn still logs into one line.
"""
from __future__ import annotations

import json
import logging

log = logging.getLogger("playattention.ui")

MESSAGES = {  # (path suffix, exception type) -> (status, what was wrong and what to send)
    ("/queue/join", KeyError): (404, "unknown fn_index: this app has no such event. The events and their "
                                     "indices are listed at /gradio_api/info and /config."),
    ("/upload", TypeError): (400, "the upload must be a multipart form whose 'files' parts each have a "
                                  "file name, e.g. files=('corpus.txt', <bytes>)."),
}


def _message(path: str, exc: Exception) -> tuple[int, str]:
    for (suffix, kind), answer in MESSAGES.items():
        if path.rstrip("/").endswith(suffix) and isinstance(exc, kind):
            return answer
    return 500, f"the server could not handle this request ({type(exc).__name__})."


class Guard:
    """ASGI middleware: an exception from a route becomes a JSON answer (or a closed stream) + one log line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer and one line
            path = scope.get("path", "")
            status, text = _message(path, exc)
            detail = getattr(exc, "detail", None) or str(exc)
            log.warning("%s %s failed: %s: %s", scope.get("method", ""), path[:100], type(exc).__name__,
                        str(detail)[:200])
            if started:  # a stream that already began (e.g. queue/data of an unknown session) just ends
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except Exception:  # noqa: BLE001 - the client may be gone already
                    pass
                return
            body = json.dumps({"detail": text}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class OneLine(logging.Filter):
    """Keep a logged exception to its last line (type and message, bounded); drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {str(exc)[:200]}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def install_log_filter() -> None:
    """Uvicorn's and Gradio's error loggers write one line per failure."""
    for name in ("uvicorn.error", "uvicorn", "gradio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLine) for f in logger.filters):
            logger.addFilter(OneLine())
