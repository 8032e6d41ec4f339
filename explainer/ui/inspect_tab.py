"""Inspect tab: every stage of every head for your prompt, on any model.

``/inspect`` traces the prompt once (cached per model, prompt and toggles) and returns the
five-stage figure, the all-heads grid, the head view, the q·k products and the next-token
distribution; ``/generate`` samples a continuation with the same sampling settings.
Clicking a thumbnail of the grid selects that head.
"""
from __future__ import annotations

import gradio as gr

from . import common, head_view, inspect_store, inspect_views, limits, plot_html, registry, roles_panel
from .errors import friendly
from .inspect_views import SCALES, View
from .session import Session
from . import upload_panel

DEFAULT_PROMPT = "ROMEO: But soft, what light"


def _view(args) -> View:
    return View(*args)


def _for_html(out: tuple, *at: int) -> tuple:
    """``out`` with its items at ``at`` (figures drawn by ``plot_html`` components) as their values."""
    return tuple(plot_html.to_value(x) if i in at else x for i, x in enumerate(out))


def inspect(session: Session, prompt: str, model: str, layer: int, head: int, causal: bool, scale: str,
            query: int, key: int, temperature: float, top_k: int, top_p: float):
    """Trace the prompt through the model and draw every view of the selected head."""
    return inspect_views.full(session, _view((prompt, model, layer, head, causal, scale, query, key,
                                              temperature, top_k, top_p)))


def press(session: Session, *args):
    """The first half of a press: notes, five stages and selectors (painted before the rest)."""
    return _for_html(inspect_views.first(session, _view(args)), 1)


def press_rest(session: Session, *args):
    """The second half: all-heads grid, head view, q·k products and next-token chart."""
    return _for_html(inspect_views.rest(session, _view(args)), 0, 2, 3)


def opening(session: Session, opened: bool, *args):
    """The tab's first visit opens on the strongest previous-token head of the default prompt."""
    v = _view(args)
    if not opened:
        _, tr, _ = inspect_views.get_trace(session, v)
        v.layer, v.head = inspect_views.previous_token_head(tr)
    return (True, *_for_html(inspect_views.first(session, v), 1))


def press_store(session: Session, *args) -> str:
    """The third part of a press: the trace's arrays, so head / layer / query switches repaint in the browser."""
    return inspect_views.store(session, _view(args))


def redraw(session: Session, asked: str, *args):
    """The server's path for a switch the browser could not draw ('layer,head,query,key,nonce' in #pa-redraw)."""
    v = _view(args)
    try:
        v.layer, v.head, v.query, v.key = (inspect_views.index(n, x) for n, x in
                                           zip(("layer", "head", "query", "key"), str(asked).split(",")[:4]))
    except ValueError:
        raise ValueError(f"could not read a selection from {str(asked)[:40]!r}.") from None
    _, tr, _ = inspect_views.get_trace(session, v)
    tr.check_head(v.layer, v.head)
    inspect_views.fit(tr, v)
    return _for_html((*inspect_views.head_figures(tr, v), inspect_store.store_value(tr, v.layer, tr.ui_id)), 0, 2)


def pick_query(session: Session, evt: gr.EventData, *args):
    """A query locked in the head view: select it (the browser drew its q·k products when it could)."""
    v = _view(args)
    data = evt._data or {}
    v.query = inspect_views.index("query", data.get("query"))
    if data.get("drawn") is True:
        return v.query, gr.skip()
    _, tr, _ = inspect_views.get_trace(session, v)
    return v.query, plot_html.to_value(inspect_views.qk_figure(tr, v))


def redraw_distribution(session: Session, *args):
    loaded, tr, _ = inspect_views.get_trace(session, _view(args))
    return plot_html.to_value(inspect_views.distribution(loaded, tr, _view(args)))


def pick_head(session: Session, picked: str, *args):
    """A click on the all-heads grid: select that head and redraw its views."""
    if not picked:
        return (gr.skip(),) * 5
    v = _view(args)
    v.layer, v.head = inspect_views.pick(picked)
    if str(picked).split(",")[3:4] == ["c"]:  # the browser already drew that head: only the selectors change
        return (v.layer, v.head, *(gr.skip(),) * 3)
    _, tr, _ = inspect_views.get_trace(session, v)
    tr.check_head(v.layer, v.head)
    return _for_html((v.layer, v.head, *inspect_views.head_figures(tr, v)), 2, 4)


def trace_file(session: Session, *args) -> str:
    """The trace behind the views as a .npz (q, k, v, scores, weights, ... and tokens) for a notebook."""
    _, tr, _ = inspect_views.get_trace(session, _view(args))
    return inspect_views.trace_npz(tr)


def generate(session: Session, prompt: str, model: str, max_new_tokens: int, temperature: float,
             top_k: int, top_p: float, seed: int) -> str:
    """Sample a continuation of the prompt from the chosen model (same seed, same text)."""
    session = session or Session()
    prompt = common.check_prompt(prompt, allow_empty=True)
    if not prompt.strip():
        gr.Info("Empty prompt: the model starts from its start token (newline for char, <|endoftext|> for gpt2).")
    loaded = session.model(model)
    gen = common.generate(loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                          top_k=top_k, top_p=top_p, seed=common.seed_value(seed))
    if gen.cropped:
        gr.Info(f"The prompt is longer than this model's context: it was conditioned on its last "
                f"{len(gen.prompt_ids)} tokens.")
    return prompt + gen.text


def refresh_models(session: Session, current: str):
    """The picker's choices for this session (its trained models appear after training)."""
    choices = (session or Session()).choices()
    keys = [k for _, k in choices]
    return gr.update(choices=choices, value=current if current in keys else registry.default_model_key())


def build(session: gr.State, tab: gr.Tab) -> None:
    """Lay out the Inspect tab and wire its events (called inside ``gr.Tab``).

    A press paints the five stages first, lets the browser show them (``plot_html.PAINTED_JS``),
    then paints the rest, then sends the trace's arrays to the browser (``.then`` steps). A pick
    of layer, head, query or key is then drawn in the browser (``inspect_store``, on the option's
    press and again on Gradio's ``select``: 6.31's Dropdown fires ``input`` twice per pick); what
    it cannot draw comes back through the hidden ``#pa-redraw`` box. Another panel selects a head
    by writing 'layer,head,nonce' into the hidden ``#head-pick`` box, with ',c' when the browser
    already drew it.
    """
    with gr.Row(elem_classes="pa-wrap"):
        prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt", scale=3, min_width=240, max_lines=3, elem_id="pa-prompt")
        model = gr.Dropdown(choices=Session().choices(), value=registry.default_model_key(), label="Model",
                            allow_custom_value=True, scale=2, min_width=200, elem_id="inspect-model")
        with gr.Column(scale=1, min_width=120):
            run = gr.Button("Inspect", variant="primary", elem_id="pa-inspect-btn")
    with gr.Row(elem_classes="pa-wrap"):
        layer = gr.Dropdown([("layer 0", 0)], value=0, label="Layer", allow_custom_value=True, min_width=150,
                            elem_id="inspect-layer")
        head = gr.Dropdown([("head 0", 0)], value=0, label="Head", allow_custom_value=True, min_width=150,
                           elem_id="inspect-head")
        causal = gr.Checkbox(True, label="Causal mask (decoder)", min_width=150, elem_id="inspect-causal")
        scale = gr.Radio(SCALES, value="×1", label="Attention scale (relative to 1/√d_k)", scale=2, min_width=240,
                         elem_id="inspect-scale")
    info = gr.Markdown(label="Notes", elem_id="inspect-notes")
    stages = plot_html.stages_html()
    plot_html.preload()
    # /inspect's figures: the page draws the same figures once each (plot_html), the API returns them as plots
    api_stages, api_grid, api_qk, api_dist = (gr.Plot(label=name, visible=False) for name in (
        "Five stages of the selected head", "All heads", "q·k products for the chosen query and key",
        "Next-token distribution"))
    with gr.Row(equal_height=False, elem_classes="pa-wrap"):
        with gr.Column(min_width=320):
            grid = plot_html.plot_html("heads-grid", "All heads (click a thumbnail to select that head)")
        with gr.Column(min_width=300):
            view = head_view.head_view_html()
    roles_panel.build(session, prompt, model)  # head roles + logit lens; a cell click selects via #head-pick
    with gr.Row(equal_height=True, elem_classes="pa-wrap"):
        query = gr.Dropdown([], value=limits.MAX_INSPECT_TOKENS - 1, label="Query token (the one attending)",
                            allow_custom_value=True, min_width=160, elem_id="inspect-query")
        key = gr.Dropdown([], value=0, label="Key token (the one attended to)", allow_custom_value=True,
                          min_width=160, elem_id="inspect-key")
    qk = plot_html.plot_html("qk-products", "q·k products for the chosen query and key", 520)
    with gr.Row(equal_height=True, elem_classes="pa-wrap"):
        temperature = common.slider(0, 2, value=1.0, step=0.05, label="Temperature (0 = greedy)")
        top_k = common.slider(0, 100, value=0, step=1, label="Top-k (0 = off)")
        top_p = common.slider(0.01, 1, value=1.0, step=0.01, label="Top-p (1 = off)")
    dist = plot_html.plot_html("next-token", "Next-token distribution")
    with gr.Row(elem_classes="pa-wrap"):
        n_new = common.slider(1, limits.MAX_NEW_TOKENS, value=100, step=1, label="New tokens")
        seed = common.number(0, label="Seed", precision=0, minimum=0, maximum=limits.MAX_SEED)
        with gr.Column(min_width=160):
            sample_btn = gr.Button("Sample a continuation (model as trained: mask / scale toggles not applied)",
                                   elem_id="inspect-generate")
    continuation = gr.Textbox(label="Continuation (same temperature / top-k / top-p; the model's own mask "
                                    "and scale)", lines=4, interactive=False, elem_id="inspect-continuation",
                              elem_classes="pa-mono")
    with gr.Row(elem_classes="pa-wrap"):
        trace_btn = gr.Button("Download this trace (.npz: q, k, v, scores, weights, tokens)",
                              elem_id="pa-trace-btn")
        trace_out = gr.File(label="Trace", elem_id="pa-trace-file", interactive=False)
    upload_panel.build(session, model)  # upload a checkpoint zip; Hugging Face GPT-2s are in the menu
    picked = gr.Textbox(visible="hidden", elem_id="head-pick")
    asked = gr.Textbox(visible="hidden", elem_id=inspect_store.REDRAW_ID)
    store = inspect_store.store_html()
    opened = gr.State(False)
    api = gr.Button(visible=False)

    view_inputs = [prompt, model, layer, head, causal, scale, query, key, temperature, top_k, top_p]
    lane = dict(concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    private = dict(api_visibility="private", **lane)
    # views updated in place: no loading overlays (their DOM work cost a press ~70 ms); the five stages' label
    # says "updating" from the press until its first step ends (figure drawn, unchanged, or an error)
    quiet = dict(private, show_progress="hidden")
    first_outputs = [info, stages, layer, head, query, key]
    rest_outputs = [grid, view, qk, dist]
    api.click(friendly(inspect), [session, *view_inputs],
              [info, api_stages, api_grid, view, api_qk, api_dist, layer, head, query, key],
              api_name="inspect", **lane)
    presses = [run.click, prompt.submit, model.select, causal.input, scale.input]
    gr.on(presses, None, None, None, js=plot_html.BUSY_JS)
    # a press while the last one is still running runs after it ("once", Gradio's default, would drop this
    # press's rest while the last press's rest was running, leaving the grid, head view and q·k on the old prompt)
    last = dict(quiet, trigger_mode="always_last")
    pressed = gr.on(presses, friendly(press), [session, *view_inputs], first_outputs, **last)
    # the label goes back (also when the figure did not change: the same prompt again) and the five stages are
    # painted before the rest of the press starts
    painted = pressed.then(None, js=plot_html.PAINTED_JS, trigger_mode="always_last")
    pressed.failure(None, js=plot_html.IDLE_JS)  # (a failed step ends the chain)
    painted.then(friendly(press_rest), [session, *view_inputs], rest_outputs, **last).then(
        friendly(press_store), [session, *view_inputs], store, **last)
    tab.select(refresh_models, [session, model], model, **private).then(
        friendly(opening), [session, opened, *view_inputs], [opened, *first_outputs], **quiet).then(
        None, js=plot_html.PAINTED_JS).then(
        friendly(press_rest), [session, *view_inputs], rest_outputs, **quiet).then(
        friendly(press_store), [session, *view_inputs], store, **quiet)
    # a switch of layer, head, query or key repaints in the browser from the store; what it cannot draw comes
    # back through #pa-redraw
    gr.on([layer.select, head.select, query.select, key.select], None, [layer, head, query, key], None,
          js="(l, h, q, k) => { window.paInspect && window.paInspect.select({ layer: l, head: h, query: q, key: k }); }")
    asked.change(friendly(redraw), [session, asked, *view_inputs], [stages, view, qk, store],
                 trigger_mode="always_last", **quiet)
    head.change(None, [head], None, js="(h) => { window.paHeadView && window.paHeadView.selectHead(h); }")
    query.change(None, [query], None, js="(q) => { window.paHeadView && window.paHeadView.outline(q); }")
    view.select(friendly(pick_query), [session, *view_inputs], [query, qk], trigger_mode="always_last", **quiet)
    gr.on([temperature.input, top_k.input, top_p.input], friendly(redraw_distribution), [session, *view_inputs],
          dist, trigger_mode="always_last", **quiet)
    picked.change(friendly(pick_head), [session, picked, *view_inputs], [layer, head, stages, view, qk], **quiet)
    trace_btn.click(friendly(trace_file), [session, *view_inputs], trace_out, **private)
    gr.on([sample_btn.click], friendly(generate), [session, prompt, model, n_new, temperature, top_k, top_p, seed],
          continuation, api_name="generate", **lane)
