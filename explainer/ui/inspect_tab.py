"""Inspect tab: every stage of every head for your prompt, on any model.

``/inspect`` traces the prompt once (cached per model, prompt and toggles) and returns the
five-stage figure, the all-heads grid, the head view, the q·k products and the next-token
distribution; ``/generate`` samples a continuation with the same sampling settings.
Clicking a thumbnail of the grid selects that head.
"""
from __future__ import annotations

import gradio as gr

from . import common, inspect_views, limits, registry
from .errors import friendly
from .inspect_views import SCALES, View
from .session import Session
from . import roles_panel, upload_panel

DEFAULT_PROMPT = "ROMEO: But soft, what light"


def _view(args) -> View:
    return View(*args)


def inspect(session: Session, prompt: str, model: str, layer: int, head: int, causal: bool, scale: str,
            query: int, key: int, temperature: float, top_k: int, top_p: float):
    """Trace the prompt through the model and draw every view of the selected head."""
    return inspect_views.full(session, _view((prompt, model, layer, head, causal, scale, query, key,
                                              temperature, top_k, top_p)))


def redraw_head(session: Session, *args):
    _, tr, _ = inspect_views.get_trace(session, _view(args))
    return inspect_views.head_figures(tr, _view(args))


def redraw_qk(session: Session, *args):
    _, tr, _ = inspect_views.get_trace(session, _view(args))
    return inspect_views.qk_figure(tr, _view(args))


def redraw_distribution(session: Session, *args):
    loaded, tr, _ = inspect_views.get_trace(session, _view(args))
    return inspect_views.distribution(loaded, tr, _view(args))


def pick_head(session: Session, picked: str, *args):
    """A click on the all-heads grid: select that head and redraw its views."""
    if not picked:
        return (gr.skip(),) * 5
    v = _view(args)
    v.layer, v.head = inspect_views.pick(picked)
    _, tr, _ = inspect_views.get_trace(session, v)
    tr.check_head(v.layer, v.head)
    return (v.layer, v.head, *inspect_views.head_figures(tr, v))


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
    """Lay out the Inspect tab and wire its events (called inside ``gr.Tab``)."""
    with gr.Row():
        prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt", scale=3, max_lines=3, elem_id="inspect-prompt")
        model = gr.Dropdown(choices=Session().choices(), value=registry.default_model_key(), label="Model",
                            allow_custom_value=True, scale=2,
                            elem_id="inspect-model")
        with gr.Column(scale=1, min_width=120):
            run = gr.Button("Inspect", variant="primary", elem_id="inspect-go")
    with gr.Row():
        layer = gr.Dropdown([("layer 0", 0)], value=0, label="Layer", allow_custom_value=True, elem_id="inspect-layer")
        head = gr.Dropdown([("head 0", 0)], value=0, label="Head", allow_custom_value=True, elem_id="inspect-head")
        causal = gr.Checkbox(True, label="Causal mask (decoder)", elem_id="inspect-causal")
        scale = gr.Radio(SCALES, value="×1", label="Attention scale (relative to 1/√d_k)", scale=2,
                         elem_id="inspect-scale")
    info = gr.Markdown(label="Notes", elem_id="inspect-notes")
    stages = gr.Plot(label="Five stages of the selected head", elem_id="five-stages")
    with gr.Row(equal_height=False):
        grid = gr.Plot(label="All heads (click a thumbnail to select that head)", elem_id="heads-grid")
        head_view = gr.Plot(label="Head view", elem_id="head-view")
    roles_panel.build(session, prompt, model)  # head roles + logit lens; a cell click selects via #head-pick
    with gr.Row(equal_height=True):
        query = gr.Dropdown([], value=limits.MAX_INSPECT_TOKENS - 1, label="Query token (the one attending)",
                            allow_custom_value=True, elem_id="inspect-query")
        key = gr.Dropdown([], value=0, label="Key token (the one attended to)", allow_custom_value=True,
                          elem_id="inspect-key")
    qk = gr.Plot(label="q·k products for the chosen query and key", elem_id="qk-products")
    with gr.Row(equal_height=True):
        temperature = common.slider(0, 2, value=1.0, step=0.05, label="Temperature (0 = greedy)")
        top_k = common.slider(0, 100, value=0, step=1, label="Top-k (0 = off)")
        top_p = common.slider(0.01, 1, value=1.0, step=0.01, label="Top-p (1 = off)")
    dist = gr.Plot(label="Next-token distribution", elem_id="next-token")
    with gr.Row():
        n_new = common.slider(1, limits.MAX_NEW_TOKENS, value=100, step=1, label="New tokens")
        seed = common.number(0, label="Seed", precision=0, minimum=0, maximum=limits.MAX_SEED)
        with gr.Column(min_width=160):
            sample_btn = gr.Button("Sample a continuation", elem_id="inspect-generate")
    continuation = gr.Textbox(label="Continuation (same temperature / top-k / top-p)", lines=4,
                              interactive=False, elem_id="inspect-continuation", elem_classes="pa-mono")
    upload_panel.build(session, model)  # upload a checkpoint zip; Hugging Face GPT-2s are in the menu
    picked = gr.Textbox(visible="hidden", elem_id="head-pick")

    view_inputs = [prompt, model, layer, head, causal, scale, query, key, temperature, top_k, top_p]
    lane = dict(concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    full_outputs = [info, stages, grid, head_view, qk, dist, layer, head, query, key]
    gr.on([run.click, prompt.submit, model.input, causal.input, scale.input], friendly(inspect),
          [session, *view_inputs], full_outputs, api_name="inspect", **lane)
    tab.select(refresh_models, [session, model], model, api_visibility="private", **lane).then(
        friendly(inspect), [session, *view_inputs], full_outputs, api_visibility="private", **lane)
    gr.on([layer.input, head.input], friendly(redraw_head), [session, *view_inputs], [stages, head_view, qk],
          api_visibility="private", trigger_mode="always_last", **lane)
    gr.on([query.input, key.input], friendly(redraw_qk), [session, *view_inputs], qk,
          api_visibility="private", trigger_mode="always_last", **lane)
    gr.on([temperature.input, top_k.input, top_p.input], friendly(redraw_distribution), [session, *view_inputs],
          dist, api_visibility="private", trigger_mode="always_last", **lane)
    picked.change(friendly(pick_head), [session, picked, *view_inputs], [layer, head, stages, head_view, qk],
                  api_visibility="private", **lane)
    gr.on([sample_btn.click], friendly(generate), [session, prompt, model, n_new, temperature, top_k, top_p, seed],
          continuation, api_name="generate", **lane)
