"""Helpers for the hardening tests: a dedicated in-process server, raw queue joins and their streams.

Raw HTTP is what an attacker (or a script) sends: no heartbeat, a session hash of its choosing.
Everything goes to 127.0.0.1 only and every wait is bounded.
"""
from __future__ import annotations

import json
import secrets
import socket
import time
from contextlib import contextmanager

import httpx

TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served():
    """(demo, url): the app launched in-process on its own port, closed (and its sessions freed) after."""
    from explainer.ui import build_demo, launch_kwargs
    from explainer.ui import session as sessions

    demo = build_demo()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                **launch_kwargs())
    try:
        yield demo, demo.local_url
    finally:
        for hash_ in list(sessions.LIVE.keys()):
            sessions.release_session(hash_)
        demo.close()


def fn_index(demo, api_name: str) -> int:
    return next(i for i, fn in demo.fns.items() if fn.api_name == api_name)


def new_hash() -> str:
    return secrets.token_hex(6)


def join(url: str, index: int, data: list, session_hash: str, client: httpx.Client | None = None) -> httpx.Response:
    """POST /gradio_api/queue/join as the browser does; nothing reads the event stream yet."""
    body = {"data": data, "fn_index": index, "session_hash": session_hash, "event_data": None, "trigger_id": None}
    return (client or httpx).post(f"{url}gradio_api/queue/join", content=json.dumps(body),  # \\u escapes kept
                                  headers={"content-type": "application/json"}, timeout=TIMEOUT_S)


def messages(url: str, session_hash: str, until: str = "process_completed", timeout: float = TIMEOUT_S) -> list:
    """The session's queue messages (parsed JSON) up to the first ``until`` message, or ``timeout`` s in all."""
    out, deadline = [], time.monotonic() + timeout
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session_hash},
                      timeout=timeout) as r:
        for line in r.iter_lines():
            if time.monotonic() > deadline:
                break
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            out.append(msg)
            if msg.get("msg") in (until, "process_completed", "close_stream"):
                break
    return out


def raw_call(url: str, api_name: str, data: list, body: str | None = None) -> tuple[str, str]:
    """POST /gradio_api/call/<api_name> (body as written, or JSON of data); (event kind, its data)."""
    content = body if body is not None else json.dumps({"data": data})
    r = httpx.post(f"{url}gradio_api/call/{api_name}", content=content,
                   headers={"content-type": "application/json"}, timeout=TIMEOUT_S)
    if r.status_code != 200:
        return f"http {r.status_code}", r.text
    stream = httpx.get(f"{url}gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=TIMEOUT_S).text
    kind = stream.split("\n", 1)[0].removeprefix("event: ").strip()
    return kind, stream.split("data:", 1)[1].strip() if "data:" in stream else ""
