"""Helpers shared by the tabs: prompt checks, sliders whose errors name them, token highlighting, locked
model use, generation."""
from __future__ import annotations

import contextlib
import math

import gradio as gr

from . import limits

TOKEN_COLORS = {"even": "#c7dcff", "odd": "#ffd9a8", "not in vocabulary": "#ff8080"}


def check_prompt(prompt: str | None, *, allow_empty: bool) -> str:
    """The prompt, or a specific error for one that is empty (where that matters) or too long."""
    prompt = prompt or ""
    if len(prompt) > limits.MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}.")
    if not prompt.strip() and not allow_empty:
        raise ValueError("the prompt is empty: there is nothing to inspect. Type a few words (e.g. 'ROMEO:') "
                         "to see where the model attends.")
    return prompt


def in_range(label: str, value, minimum: float, maximum: float):
    """``value`` unchanged if it is a finite number in [minimum, maximum], else an error naming ``label``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and minimum <= x <= maximum):
        raise gr.Error(f"{label} must be a number between {_num(minimum)} and {_num(maximum)}, got {value!r}.",
                       title="Please check your input", print_exception=False)
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def named(component):
    """A bounded gr.Slider / gr.Number whose out-of-range value (sent through the API) gets a message
    naming it; Gradio's own check says only "Value 1000000.0 is greater than maximum value 2."

    Set on the instance: a subclass would make Gradio write a .pyi stub next to this module.
    """
    own = component.preprocess

    def preprocess(payload):
        if payload is not None or isinstance(component, gr.Slider):  # an empty Number stays None
            in_range(component.label, payload, component.minimum, component.maximum)
        return own(payload)

    component.preprocess = preprocess
    return component


def slider(minimum: float, maximum: float, **kwargs) -> gr.Slider:
    """gr.Slider whose out-of-range API value gets a message naming it (see ``named``)."""
    return named(gr.Slider(minimum, maximum, **kwargs))


def number(value: float, *, minimum: float, maximum: float, **kwargs) -> gr.Number:
    """A bounded gr.Number whose out-of-range API value gets a message naming it (see ``named``)."""
    return named(gr.Number(value, minimum=minimum, maximum=maximum, **kwargs))


def using(loaded):
    """Hold a session model's training lock while reading it (a no-op for shared models)."""
    return loaded.lock if loaded.lock is not None else contextlib.nullcontext()


def token_spans(tokenizer, prompt: str) -> list[tuple[str, str]]:
    """The prompt split into the tokenizer's tokens, as (visible text, colour class) pairs.

    Adjacent tokens alternate colours so every boundary shows; characters a char
    vocabulary does not have are marked.
    """
    from gpt.tokenizers import visible

    if getattr(tokenizer, "name", "") == "char":
        pieces = [(visible(c), c in tokenizer.stoi) for c in prompt]
    else:
        pieces = [(s, True) for s in tokenizer.token_strings(tokenizer.encode(prompt))]
    out, n = [], 0
    for text, known in pieces:
        out.append((text, ("even", "odd")[n % 2] if known else "not in vocabulary"))
        n += known
    return out


def token_label(tokenizer, spans: list[tuple[str, str]]) -> str:
    bad = sum(1 for _, cls in spans if cls == "not in vocabulary")
    extra = f", {bad} not in its vocabulary" if bad else ""
    return f"{tokenizer.name} tokenizer: {len(spans) - bad} tokens{extra}"


def highlighted(label: str, elem_id: str | None = None) -> gr.HighlightedText:
    return gr.HighlightedText(label=label, color_map=TOKEN_COLORS, show_legend=False, show_inline_category=False,
                              combine_adjacent=False, elem_id=elem_id, elem_classes="pa-mono")


def generate(loaded, prompt: str, *, max_new_tokens: int, temperature: float, top_k=None, top_p=None, seed=0):
    """gpt.generate_text on a resolved model, with the app's limits and clean numbers."""
    from gpt.generate import generate_text

    n = int(max_new_tokens)
    if not 1 <= n <= limits.MAX_NEW_TOKENS:
        raise ValueError(f"new tokens must be between 1 and {limits.MAX_NEW_TOKENS}, got {max_new_tokens!r}.")
    top_k = int(top_k) if top_k else None
    top_p = float(top_p) if top_p is not None and float(top_p) < 1 else None
    with using(loaded):
        return generate_text(loaded.model, loaded.tokenizer, prompt, max_new_tokens=n,
                             temperature=float(temperature), top_k=top_k, top_p=top_p, seed=int(seed or 0))


def seed_value(seed) -> int:
    if seed is None or float(seed) != int(seed) or not 0 <= int(seed) <= limits.MAX_SEED:
        raise ValueError(f"seed must be a whole number between 0 and {limits.MAX_SEED}, got {seed!r}.")
    return int(seed)
