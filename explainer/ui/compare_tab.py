"""Compare tab: one prompt, one seed, one temperature, four models (char / gpt2 x untrained / trained).

The prompt is shown split by each tokenizer, and each sample with its token count and the
model's validation bits per character, so the learner sees why raw BPE gibberish looks so
different from raw char gibberish, and compares the two fairly (per character, not per token).
"""
from __future__ import annotations

import html

import gradio as gr

from . import byom, common, limits, registry
from .errors import friendly
from .session import Session

CELLS = [("untrained", "char"), ("untrained", "gpt2"), ("trained", "char"), ("trained", "gpt2")]


def bits_per_char(session: Session, loaded, tok: str) -> tuple[float | None, str]:
    """(val bits/char, where it comes from: measured on the loaded weights or recorded at training, and on what)."""
    if loaded.key.startswith("untrained-"):
        return registry.untrained_bpc(tok), "measured on these weights, Tiny Shakespeare"
    if loaded.key.startswith("session-"):
        run = session.runs[tok]
        if run.exported and run.exported.step == run.trainer.step:
            return run.exported.meta["val_bpc"], f"recorded at training, {run.spec.corpus_name}"

        def measure():
            from gpt.evaluate import evaluate

            with common.using(loaded):
                return evaluate(run.model, run.data, batches=limits.COMPARE_EVAL_BATCHES, batch_size=8).bpc
        return session.cached(("bpc", loaded.version), measure), f"measured on these weights, {run.spec.corpus_name}"
    return loaded.meta.get("val_bpc"), "recorded at training, Tiny Shakespeare"


def cell(session: Session, stage: str, tok: str, prompt: str, seed: int, temperature: float, n: int):
    """(markdown, sample text) for one cell of the grid."""
    key = f"untrained-{tok}" if stage == "untrained" else session.trained(tok)
    if key is None:
        return (f"**trained · {tok}** — not available yet: train a {tok} model in the Train tab "
                f"(the shipped checkpoint `{registry.SHIPPED[tok]}` is not installed).", "")
    loaded = session.model(key)
    from gpt.tokenizers import UnknownCharactersError

    try:
        gen = common.generate(loaded, prompt, max_new_tokens=n, temperature=temperature, seed=seed)
    except UnknownCharactersError as e:
        gr.Warning(f"{tok} model: {e}")
        return f"**{stage} · {tok}** — {html.escape(loaded.label)}\n\n⚠️ {html.escape(str(e))}", ""
    bpc, on = bits_per_char(session, loaded, tok)
    bpc_text = f"val **{bpc:.2f}** bits/char ({html.escape(on)})" if bpc is not None else "val bits/char unknown"
    head = f"**{stage} · {tok}** — {html.escape(loaded.label)}"
    body = (f"prompt {len(gen.prompt_ids)} tokens · **{len(gen.new_ids)}** new tokens → "
            f"{len(gen.text):,} characters · {bpc_text}")
    return f"{head}\n\n{body}", prompt + gen.text


def compare(session: Session, prompt: str, seed: int, temperature: float, max_new_tokens: int):
    """Sample the same prompt from char/gpt2 x untrained/trained models, with tokens and bits/char."""
    session = session or Session()
    prompt = common.check_prompt(prompt, allow_empty=True)
    seed = common.seed_value(seed)
    n = int(max_new_tokens)
    if not 1 <= n <= limits.MAX_COMPARE_TOKENS:
        raise ValueError(f"new tokens must be between 1 and {limits.MAX_COMPARE_TOKENS}, got {max_new_tokens!r}.")
    if not prompt.strip():
        gr.Info("Empty prompt: each model starts from its start token (newline for char, <|endoftext|> for gpt2).")
    token_views = []
    for tok in registry.TOKENIZERS:
        t = registry.tokenizer(tok)
        spans = common.token_spans(t, prompt)
        token_views.append(gr.update(value=spans, label=common.token_label(t, spans)))
    cells = [cell(session, stage, tok, prompt, seed, temperature, n) for stage, tok in CELLS]
    return (*token_views, *[c[0] for c in cells], *[c[1] for c in cells])


def compare_if_empty(session: Session, prompt: str, seed: int, temperature: float, max_new_tokens: int,
                     shown: str):
    """On opening the tab: fill the grid once, so it never greets the learner empty."""
    if shown:
        return (gr.skip(),) * (2 + 2 * len(CELLS))
    return compare(session, prompt, seed, temperature, max_new_tokens)


def build(session: gr.State, tab: gr.Tab) -> None:
    """Lay out the Compare tab and wire its events (called inside ``gr.Tab``)."""
    gr.Markdown("Same prompt, same seed, same temperature: four models. Each tokenizer cuts the prompt "
                "differently (below), so an untrained gpt2 model strings together random *words and word pieces* "
                "while an untrained char model strings together random *characters*. Bits per character make "
                "the two comparable.", elem_classes="pa-note")
    if byom.MODELS.keys():
        gr.Markdown("The Hugging Face GPT-2 models in Inspect's menu are not in this grid: they were trained "
                    "elsewhere, so before and after training does not apply to them.", elem_classes="pa-note",
                    elem_id="compare-hf-note")
    with gr.Row(equal_height=True):
        prompt = gr.Textbox("ROMEO:", label="Prompt", scale=3, max_lines=3, elem_id="compare-prompt")
        seed = common.number(0, label="Seed", precision=0, minimum=0, maximum=limits.MAX_SEED, scale=1)
        temperature = common.slider(0, 2, value=0.8, step=0.05, label="Temperature", scale=2)
        n = common.slider(1, limits.MAX_COMPARE_TOKENS, value=60, step=1, label="New tokens", scale=2)
    go = gr.Button("Compare", variant="primary", elem_id="compare-go")
    with gr.Row():
        char_tokens = common.highlighted("char tokenizer", "compare-char-tokens")
        gpt2_tokens = common.highlighted("gpt2 tokenizer", "compare-gpt2-tokens")
    mds, texts = [], []
    for row in ("untrained", "trained"):
        with gr.Row(equal_height=True):
            for tok in registry.TOKENIZERS:
                with gr.Column(elem_classes="pa-cell"):
                    mds.append(gr.Markdown(f"**{row} · {tok}**", label=f"{row} {tok} model"))
                    texts.append(gr.Textbox(label=f"{row} {tok} sample", show_label=False, lines=6, max_lines=8,
                                            interactive=False,
                                            elem_id=f"compare-{row}-{tok}", elem_classes="pa-mono"))
    lane = dict(concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    outputs = [char_tokens, gpt2_tokens, *mds, *texts]
    gr.on([go.click, prompt.submit], friendly(compare), [session, prompt, seed, temperature, n], outputs,
          api_name="compare", **lane)
    tab.select(friendly(compare_if_empty), [session, prompt, seed, temperature, n, texts[0]], outputs,
               api_visibility="private", **lane)
