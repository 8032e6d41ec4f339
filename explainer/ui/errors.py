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


def as_gr_error(exc: BaseException) -> gr.Error:
    """The gr.Error the learner sees for ``exc``."""
    if isinstance(exc, gr.Error):
        return exc
    from gpt.trainer import TrainingDiverged

    if isinstance(exc, (ValueError, TrainingDiverged)):  # DataError, UnknownCharactersError, CheckpointError...
        return gr.Error(str(exc), title="Please check your input", print_exception=False)
    if isinstance(exc, MemoryError):
        return gr.Error("out of memory: try a smaller model, batch or block size.", print_exception=False)
    log.exception("unexpected error in a UI handler")
    return gr.Error(f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). Please try again.")


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
                raise as_gr_error(e) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every error becomes a message
            raise as_gr_error(e) from None
    return wrapper
