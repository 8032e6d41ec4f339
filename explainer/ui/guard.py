"""Check every raw input value of every event before Gradio or a handler touches it.

Gradio's own checks answer a wrong type with a traceback in the log, a pydantic dump, a repr
such as ``<gradio.components.slider.Slider object at 0x…>``, or "Something went wrong"; and it
stores each input in the session before any handler can refuse it. So ``install(demo)``
replaces the Blocks' ``validate_inputs`` (the first thing Gradio runs on a request's raw JSON
values) with one that checks the number of values and each value against its component, and
refuses with a ``gr.Error`` that says what was wrong and what to send: no traceback, no repr,
no path, one bounded log line. The rules, one per kind of component:

* Textbox: text (or null), at most ``limits.MAX_PROMPT_CHARS`` characters, no lone surrogates
  or Unicode non-characters (they cannot be encoded back into the response stream).
* Checkbox: JSON true or false, nothing else (null and "false" are refused alike).
* Slider / Number: a finite number within the component's bounds (a numeric string counts as
  its number); an empty Number stays empty.
* Radio / Dropdown: one of its choices; a Dropdown that accepts typed values takes text for a
  text picker (the model) and, for an index picker (layer, head, query, key), a whole number
  >= 0 or a label such as "head 2" (a negative number is refused, never read as its digits).
* File: null or an upload's ``{"path": ..., "meta": {"_type": "gradio.FileData"}}`` whose path
  is in Gradio's upload folder.
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import gradio as gr

from . import limits

log = logging.getLogger("playattention.ui")
MAX_LABEL_CHARS = 100  # a typed selector label ("#12 'x'") is short
MAX_INDEX = 10**6
_BAD_CHARS = re.compile("[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def clip(value, n: int = 60) -> str:
    """A short repr of a value for a message or a log line (never the whole input)."""
    text = repr(value)
    return text if len(text) <= n else text[:n] + f"… ({len(text):,} characters)"


def refuse(message: str, where: str = "") -> gr.Error:
    """The error the visitor sees, logged as one bounded line."""
    log.warning("rejected %s: %s", where or "a request", message[:300])
    return gr.Error(message, title="Please check your input", print_exception=False)


def label_of(block) -> str:
    return str(getattr(block, "label", None) or type(block).__name__)


def as_number(value) -> float | None:
    """A finite float for a JSON number or numeric string, else None (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        x = float(value)
    except (ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def check_text(block, value) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{label_of(block)} must be text, got {clip(value)}.")
    if len(value) > limits.MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(value):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}.")
    bad = _BAD_CHARS.search(value)
    if bad:
        raise ValueError(f"{label_of(block)} holds {bad.group()!r} at position {bad.start()}, which is not a "
                         "character (a lone surrogate or a Unicode non-character): send valid UTF-8 text.")


def check_number(block, value) -> None:
    lo, hi = getattr(block, "minimum", None), getattr(block, "maximum", None)
    if value is None and isinstance(block, gr.Number):
        return
    x = as_number(value)
    bounded = lo is not None and hi is not None
    span = f" between {_num(lo)} and {_num(hi)}" if bounded else ""
    if x is None or (bounded and not lo <= x <= hi):
        kind = "number" if bounded else "finite number (within float range)"
        raise ValueError(f"{label_of(block)} must be a {kind}{span}, got {clip(value)}.")
    if whole(block) and x != int(x):  # one rule: a whole-number field refuses 1.5, never rounds it
        raise ValueError(f"{label_of(block)} must be a whole number{span}, got {clip(value)}.")


def whole(block) -> bool:
    """A field that takes whole numbers: a Number with precision 0, a Slider with whole minimum and step."""
    if isinstance(block, gr.Slider):
        return float(block.minimum).is_integer() and float(block.step or 1).is_integer()
    return getattr(block, "precision", None) == 0


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def choice_values(block) -> list:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in (getattr(block, "choices", None) or [])]


def check_choice(block, value) -> None:
    if getattr(block, "allow_custom_value", False):
        return check_typed(block, value)
    values = choice_values(block)
    if value not in values or isinstance(value, bool):
        shown = ", ".join(str(v) for v in values)
        raise ValueError(f"{label_of(block)} must be one of: {shown}; got {clip(value)}.")


def check_typed(block, value) -> None:
    """A Dropdown that also takes typed values: text for a text picker, an index for an index picker."""
    if isinstance(block.value, str):  # the model picker: its key is checked by the registry next
        if not isinstance(value, str) or not value:
            raise ValueError(f"{label_of(block)} must be a model name (text) such as 'shakespeare-char', "
                             f"got {clip(value)}.")
        if len(value) > limits.MAX_KEY_CHARS:
            raise ValueError(f"{label_of(block)} is {len(value):,} characters long; a model name has at most "
                             f"{limits.MAX_KEY_CHARS}.")
        return
    name = label_of(block).split(" (")[0].lower()
    x = as_number(value)
    if x is not None:
        if x != int(x) or not 0 <= x <= MAX_INDEX:
            raise ValueError(f"{name} must be a whole number >= 0, got {clip(value)}.")
        return
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS or not re.search(r"\d", value):
        raise ValueError(f"{name} must be a whole number >= 0, got {clip(value)}.")


def check_file(block, value, upload_dir: Path | None) -> None:
    if value is None:
        return
    how = ("upload the file first (POST /gradio_api/upload), then send {\"path\": <the path it returned>, "
           "\"meta\": {\"_type\": \"gradio.FileData\"}}")
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise ValueError(f"{label_of(block)} must be an uploaded file: {how}.")
    if value.get("meta") != {"_type": "gradio.FileData"}:
        raise ValueError(f"{label_of(block)} has no meta {{\"_type\": \"gradio.FileData\"}}: {how}.")
    path = value["path"]
    if upload_dir is not None and not (Path(path).is_absolute() and _inside(Path(path), upload_dir)):
        raise ValueError(f"{label_of(block)}: that file is not in this app's upload folder (it was not uploaded "
                         f"by a user): {how}.")


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def check_value(block, value, upload_dir: Path | None = None) -> None:
    """Raise ValueError saying what is wrong with ``value`` for ``block``."""
    if isinstance(block, gr.State):
        return
    if isinstance(block, gr.Checkbox):
        if not isinstance(value, bool):
            raise ValueError(f"{label_of(block)} must be true or false, got {clip(value)}.")
    elif isinstance(block, gr.Textbox):
        check_text(block, value)
    elif isinstance(block, (gr.Slider, gr.Number)):
        check_number(block, value)
    elif isinstance(block, (gr.Radio, gr.Dropdown)):
        check_choice(block, value)
    elif isinstance(block, gr.File):
        check_file(block, value, upload_dir)


def install(demo: gr.Blocks) -> None:
    """Check every event's raw values first (see the module docstring)."""
    own = demo.validate_inputs

    def validate_inputs(block_fn, inputs):
        where = f"/{block_fn.api_name}" if block_fn.api_name else (block_fn.name or "an event")
        wanted = [b for b in block_fn.inputs if not b.skip_api]
        if not isinstance(inputs, list) or len(inputs) != len(block_fn.inputs):
            names = ", ".join(label_of(b) for b in wanted) or "none"
            got = len(inputs) if isinstance(inputs, list) else 0
            states = len(block_fn.inputs) - len(wanted)
            raw = (f" A raw queue/join sends {len(block_fn.inputs)}: the same with null in place of the session "
                   f"state ({states} of them, where the event's inputs list them)." if states else "")
            raise refuse(f"{where} takes {len(wanted)} values ({names}); got {got}.{raw}", where)
        upload_dir = _upload_dir(demo)
        for block, value in zip(block_fn.inputs, inputs):
            try:
                check_value(block, value, upload_dir)
            except ValueError as e:
                raise refuse(str(e), where) from None
        own(block_fn, inputs)

    demo.validate_inputs = validate_inputs


def _upload_dir(demo) -> Path | None:
    folder = getattr(getattr(demo, "server_app", None), "uploaded_file_dir", None)
    return Path(folder) if folder else None
