"""Learn tab: the guided walkthrough (steps in ``learn_steps``), one step at a time."""
from __future__ import annotations

import gradio as gr

from . import learn_steps, limits
from .errors import friendly
from .learn_steps import STEPS, TITLES, Context
from .session import Session

DEFAULT_PROMPT = "To be, or not to be"


def show(session: Session, title: str, prompt: str):
    """Text, up to two live figures and (on the last step) the ladder table for one step."""
    session = session or Session()
    i = learn_steps.step_index(title)
    step = STEPS[i]
    ctx = Context(session, prompt)
    figs = step.figures(ctx)
    text = f"### {step.title}\n\n{step.text}"
    table = gr.update(visible=False)
    if step.figures is learn_steps.LADDER_FIGURES:
        rows, reference = learn_steps.ladder()
        headers, values = learn_steps.ladder_table(rows, reference)
        label = ("Measured on this project (reports/ladder.json)" if rows else
                 "REFERENCE numbers from the GPT-from-scratch ladder (its full GPT: 20 min on an A100) — not measured here")
        table = gr.update(value={"headers": headers, "data": values}, label=label, visible=True)
    second = gr.update(value=figs[1], visible=True) if len(figs) > 1 else gr.update(value=None, visible=False)
    return text, figs[0], second, table, ctx.note()


def move(title: str, delta: int) -> str:
    i = learn_steps.step_index(title) if title in TITLES else 0
    return TITLES[max(0, min(len(TITLES) - 1, i + delta))]


def build(session: gr.State, tab: gr.Tab) -> None:
    """Lay out the Learn tab and wire its events (called inside ``gr.Tab``)."""
    step = gr.Radio(TITLES, value=TITLES[0], label="Steps", elem_id="learn-steps")
    text = gr.Markdown(elem_classes="pa-step-text", elem_id="learn-text")
    first = gr.Plot(show_label=False, elem_id="learn-figure")
    second = gr.Plot(show_label=False, visible=False, elem_id="learn-figure-2")
    table = gr.Dataframe(visible=False, interactive=False, wrap=True, elem_id="learn-ladder")
    with gr.Row():
        prev = gr.Button("← Previous", elem_id="learn-prev")
        nxt = gr.Button("Next →", variant="primary", elem_id="learn-next")
    prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt the figures use (Enter to redraw)", max_lines=2)
    note = gr.Markdown(elem_classes="pa-note")
    lane = dict(concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    outputs = [text, first, second, table, note]
    handler = friendly(show)
    gr.on([step.input, prompt.submit, tab.select], handler, [session, step, prompt], outputs,
          api_visibility="private", trigger_mode="always_last", **lane)
    for button, delta in ((prev, -1), (nxt, 1)):
        button.click(lambda t, d=delta: move(t, d), step, step, api_visibility="private", queue=False).then(
            handler, [session, step, prompt], outputs, api_visibility="private", **lane)
