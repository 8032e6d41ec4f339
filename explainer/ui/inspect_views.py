"""Inspect tab logic: one cached trace per (model, prompt, toggles), many figures from it.

Every figure comes from ``explainer``; this module only chooses the trace and the
arguments. Sliders (layer, head, query, key, temperature, top-k, top-p) reuse the trace
cached in the session, so moving them never re-runs the network.
"""
from __future__ import annotations

import hashlib
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gradio as gr

from explainer import all_heads_figure, five_stages_figure, next_token_figure, qk_products_figure, trace_prompt
from explainer.figures.common import message_figure
from explainer.figures.heads import head_view_data
from gpt.data import atomic_write_bytes
from gpt.model import attention_scale

from . import common, head_view, inspect_store, limits

SCALES = ["×0.5", "×1", "×2", "unscaled"]


@dataclass
class View:
    """What every Inspect handler receives, so they all resolve the same cached trace."""

    prompt: str
    model: str
    layer: int = 0
    head: int = 0
    causal: bool = True
    scale: str = "×1"
    query: int = 0
    key: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        for name in ("layer", "head", "query", "key"):
            setattr(self, name, index(name, getattr(self, name)))


def index(name: str, value) -> int:
    """A selector's value as a whole number >= 0 (a typed label such as "head 2" or "#3 'b'" also works)."""
    match = re.search(r"\d+", str(value)) if not isinstance(value, (int, float)) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) and value >= 0:
        return int(value)
    if match:
        return int(match.group())
    raise ValueError(f"{name} must be a whole number >= 0, got {value!r}.")


def scale_factor(config, name: str) -> float | None:
    """attn_scale for a toggle: None keeps the model's own factor; the rest are relative to it."""
    if name not in SCALES:
        raise ValueError(f"attention scale must be one of {', '.join(SCALES)}, got {name!r}.")
    own = attention_scale(config)
    return {"×1": None, "×0.5": 0.5 * own, "×2": 2.0 * own, "unscaled": 1.0}[name]


def get_trace(session, v: View):
    """(loaded model, PromptTrace, prompt was cropped) from the session cache, tracing on a miss.

    The trace keeps the prompt's last MAX_INSPECT_TOKENS token ids (so every figure stays
    legible): ids are cropped, never decoded and re-encoded, so no character is invented.
    """
    prompt = common.check_prompt(v.prompt, allow_empty=False)
    loaded = session.model(v.model)
    cfg = loaded.model.config
    causal = None if bool(v.causal) == cfg.causal else bool(v.causal)
    attn_scale = scale_factor(cfg, v.scale)

    def compute():
        with common.using(loaded):
            return trace_prompt(loaded.model, loaded.tokenizer, prompt, causal=causal, attn_scale=attn_scale,
                                max_tokens=limits.MAX_INSPECT_TOKENS)

    key = ("trace", loaded.key, loaded.version, prompt, bool(v.causal), v.scale)
    tr = session.cached(key, compute)
    tr.ui_id = inspect_store.trace_id(key)  # the figures' meta.pa_trace: the browser's store must match it
    return loaded, tr, tr.cropped


def _or_message(title: str, draw, tag: str | None = None):
    """A figure (with ``tag``, the page's trace id, in its meta), or explainer's message figure saying why
    this one cannot be drawn."""
    try:
        fig = draw()
    except ValueError as e:
        return message_figure(title, str(e))
    if tag is not None:
        fig.layout.meta = {**(fig.layout.meta or {}), "pa_trace": tag}
    return fig


def _tag(tr, tagged: bool) -> str | None:
    """The trace id the page's views carry (the browser's store must match it); None for the API, whose
    figures are explainer's exactly."""
    return getattr(tr, "ui_id", "") if tagged else None


def qk_figure(tr, v: View, tagged: bool = True):
    """The q·k products of the selected head for the chosen query and key."""
    last = tr.n_tokens - 1
    query, key = min(int(v.query), last), min(int(v.key), last)  # a masked key is shown as masked
    return _or_message("q·k products", lambda: qk_products_figure(tr, int(v.layer), int(v.head), query, key),
                       _tag(tr, tagged))


def stages_figure(tr, v: View, tagged: bool = True):
    """The five stages of the selected head (the browser outlines the selected query's row)."""
    return _or_message("Five stages", lambda: five_stages_figure(tr, int(v.layer), int(v.head)), _tag(tr, tagged))


def head_view_value(tr, v: View, tagged: bool = True) -> str:
    """The interactive head view's value: every head of the selected layer, the selected one shown."""
    try:
        data = head_view_data(tr, int(v.layer), int(v.head))
    except ValueError as e:
        return head_view.to_value({"message": str(e)})
    return head_view.to_value({**data, "trace": _tag(tr, tagged)} if tagged else data)


def head_figures(tr, v: View):
    """Five stages, head view and q·k products of the selected head."""
    return stages_figure(tr, v), head_view_value(tr, v), qk_figure(tr, v)


def previous_token_head(tr) -> tuple[int, int]:
    """The (layer, head) whose queries put the most weight on the token just before them.

    Mean of weights[i, i-1] over the prompt's queries 1..T-1, straight from this trace: the
    head Inspect opens on, since a previous-token head is the easiest pattern to read.
    """
    if tr.n_layer == 0 or tr.n_tokens < 2:
        return 0, 0
    prev = tr.weights.diagonal(offset=-1, axis1=2, axis2=3).mean(-1)  # (L, H)
    layer, head = divmod(int(prev.argmax()), tr.n_head)
    return layer, head


def distribution(loaded, tr, v: View):
    """The next-token distribution after temperature / top-k / top-p, from the cached logits."""
    top_k = int(v.top_k) or None
    top_p = float(v.top_p) if float(v.top_p) < 1 else None
    return next_token_figure(tr, loaded.tokenizer, temperature=float(v.temperature), top_k=top_k, top_p=top_p)


def notes(loaded, tr, cropped: bool) -> str:
    parts = [f"**{loaded.label}** · {tr.n_tokens} tokens · {tr.n_layer} layers × {tr.n_head} heads · "
             f"d_k = {tr.head_dim} · scale {tr.scale:.4g} · causal mask {'on' if tr.causal else 'off'}"]
    if cropped:
        parts.append(f"The prompt was cut to its last {tr.n_tokens} tokens.")
    if tr.n_layer == 0:
        parts.append("This model has no attention (bigram): only the next-token distribution applies.")
    return "  \n".join(parts)


def selectors(tr, v: View) -> tuple:
    """Dropdown updates listing this model's layers and heads and this prompt's tokens."""
    layers, heads = range(max(1, tr.n_layer)), range(max(1, tr.n_head))
    tokens = [(f"#{i} '{t}'", i) for i, t in enumerate(tr.tokens)]
    return (gr.update(choices=[(f"layer {i}", i) for i in layers], value=int(v.layer)),
            gr.update(choices=[(f"head {i}", i) for i in heads], value=int(v.head)),
            gr.update(choices=tokens, value=int(v.query)), gr.update(choices=tokens, value=int(v.key)))


def first(session, v: View, tagged: bool = True) -> tuple:
    """What a press repaints first: notes, the five stages and the fitted selectors."""
    loaded, tr, cropped = get_trace(session, v)
    text = fit(tr, v)
    return (notes(loaded, tr, cropped) + text, stages_figure(tr, v, tagged), *selectors(tr, v))


def rest(session, v: View, tagged: bool = True) -> tuple:
    """What follows the five stages: all-heads grid, head view, q·k products, next-token chart."""
    loaded, tr, _ = get_trace(session, v)
    fit(tr, v)
    return (all_heads_figure(tr), head_view_value(tr, v, tagged), qk_figure(tr, v, tagged),
            distribution(loaded, tr, v))


def store(session, v: View) -> str:
    """The trace's arrays for the browser (``inspect_store``), sent after the figures."""
    _, tr, _ = get_trace(session, v)
    fit(tr, v)
    return inspect_store.store_value(tr, int(v.layer), tr.ui_id)


def fit(tr, v: View) -> str:
    """Clamp the View to this trace (in place); a note when the asked head does not exist."""
    asked = int(v.layer), int(v.head)
    v.layer, v.head = min(asked[0], max(0, tr.n_layer - 1)), min(asked[1], max(0, tr.n_head - 1))
    v.query, v.key = min(int(v.query), tr.n_tokens - 1), min(int(v.key), tr.n_tokens - 1)
    if tr.n_layer and asked != (v.layer, v.head):
        return (f"  \nLayer {asked[0]}, head {asked[1]} does not exist in this model: "
                f"showing layer {v.layer}, head {v.head}.")
    return ""


def full(session, v: View) -> tuple:
    """Everything /inspect returns: notes, five-stage figure, grid, head view, q·k, next token, selectors.

    The figures are explainer's exactly: without the trace tag the page's in-browser switches use.
    """
    text, stages, *chosen = first(session, v, tagged=False)
    grid, view, qk, dist = rest(session, v, tagged=False)
    return (text, stages, grid, view, qk, dist, *chosen)


def pick(text: str) -> tuple[int, int]:
    """'layer,head,nonce' from the grid's click bridge -> (layer, head)."""
    try:
        layer, head = (int(float(x)) for x in str(text).split(",")[:2])
    except ValueError:
        raise ValueError(f"could not read a head from {text!r}.") from None
    return layer, head


TRACE_DIR = Path(tempfile.gettempdir()) / "playattention-traces"
TRACE_ARRAYS = ("q", "k", "v", "scores", "scaled", "masked", "weights", "out", "mask", "logits")


def trace_npz(tr) -> str:
    """Write the trace as a .npz (the model's arrays, its token strings and ids, its settings); returns its path.

    Named by its content's hash, so the same trace is written once.
    """
    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: getattr(tr, name) for name in TRACE_ARRAYS},
                        tokens=np.array(tr.tokens, dtype=str), ids=np.array(tr.ids, dtype=np.int64),
                        scale=np.float64(tr.scale), causal=np.bool_(tr.causal), prompt=np.array(tr.prompt))
    data = buf.getvalue()
    path = TRACE_DIR / f"trace-{hashlib.sha256(data).hexdigest()[:16]}.npz"
    if not path.exists():
        TRACE_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return str(path)
