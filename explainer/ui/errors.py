"""Turn every failure into a message the learner can act on, never a traceback.

Handlers are wrapped with ``friendly``: the project's own errors (bad data, unknown
characters, invalid settings, a diverging run) become ``gr.Error`` with their message;
anything unexpected is logged on the server and shown as a short error.
"""
from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

log = logging.getLogger("playattention.ui")


MAX_MESSAGE_CHARS = 600  # a message never carries a whole (huge) input back, nor into the log


def as_gr_error(exc: BaseException, where: str = "a handler") -> gr.Error:
    """The gr.Error the learner sees for ``exc``; the log gets one bounded line (a traceback only for a bug)."""
    if isinstance(exc, gr.Error):
        return exc
    from gpt.trainer import TrainingDiverged

    from .admission import Busy

    text = str(exc)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "…"
    if isinstance(exc, Busy):
        log.warning("refused %s: %s", where, text[:200])
        return gr.Error(text, title="Training is busy", print_exception=False)
    if isinstance(exc, (ValueError, TrainingDiverged)):  # DataError, UnknownCharactersError, CheckpointError...
        log.warning("rejected %s: %s", where, text[:200])
        return gr.Error(text, title="Please check your input", print_exception=False)
    if isinstance(exc, MemoryError):
        log.warning("out of memory in %s", where)
        return gr.Error("out of memory: try a smaller model, batch or block size.", print_exception=False)
    log.error("unexpected error in %s: %s: %s", where, type(exc).__name__, text[:200], exc_info=exc)
    return gr.Error(f"Something went wrong on the server ({type(exc).__name__}); this is a bug, not your input.",
                    print_exception=False)


def friendly(fn):
    """Wrap a handler (plain or generator) so errors reach the UI as readable messages."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except GeneratorExit:
                raise
            except Exception as e:  # noqa: BLE001 - every error becomes a message
                raise as_gr_error(e, fn.__name__) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every error becomes a message
            raise as_gr_error(e, fn.__name__) from None
    return wrapper
