"""The Learn tab's walkthrough: nine short steps, each a sentence or two and live figures.

Figures come from ``explainer`` (the ladder's numbers from ``gpt.run.read_ladder``), drawn on a real model
and the learner's prompt: this session's trained char model if it has attention, else the
shipped ``shakespeare-char``, else the untrained one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import explainer as fx
from explainer.figures.common import message_figure

from . import common, registry

LAYER, HEAD = 0, 0
LECTURE_RUNGS = {"bigram": "bigram", "single-head": "single head", "multi-head": "multi-head",
                 "block": "transformer blocks (FFN + LayerNorm)", "gpt-tiny": "full GPT (20 min on an A100)"}


@dataclass
class Step:
    title: str
    text: str
    figures: Callable  # (Context) -> list of plotly figures


class Context:
    """The model and traces a step draws from; traces are cached in the session."""

    def __init__(self, session, prompt: str):
        self.session = session
        self.prompt = common.check_prompt(prompt, allow_empty=False)
        key = "session-char" if self._session_char_has_attention() else registry.default_model_key()
        self.loaded = session.model(key)

    def _session_char_has_attention(self) -> bool:
        run = self.session.runs.get("char")
        return run is not None and run.model.config.n_layer > 0

    def trace(self, causal: bool | None = None):
        lm = self.loaded
        if causal is not None and causal == lm.model.config.causal:
            causal = None  # the model's own setting: share the trace with the other steps

        def compute():
            with common.using(lm):
                return fx.trace_prompt(lm.model, lm.tokenizer, self.prompt, causal=causal)
        return self.session.cached(("learn", lm.key, lm.version, self.prompt, causal), compute)

    def note(self) -> str:
        extra = "" if not self.loaded.key.startswith("untrained") else \
            " Its weights are random, so the patterns are too: train a model (Train tab) and come back."
        return f"Figures drawn live by **{self.loaded.label}** on your prompt.{extra}"


@functools.cache
def variance_demo():
    """The synthetic √d_k demo: deterministic, so computed once and shared."""
    return fx.qk_variance_demo()


def ladder() -> tuple[list[dict] | None, dict]:
    """(measured rows from reports/ladder.json or None, the reference ladder's val losses)."""
    from gpt.run import read_ladder

    return read_ladder()


def ladder_table(rows, reference) -> tuple[list[str], list[list]]:
    """(headers, rows) for the ladder table: measured here, or the reference clearly labelled."""
    if rows:
        head = ["rung", "params", "val loss", "val bits/char", "train time (s)",
                "reference val loss (GPT-from-scratch ladder, its own sizes; full GPT 20 min on an A100)"]
        return head, [[r["preset"], f"{int(r['params']):,}", round(float(r["val_loss"]), 3),
                       round(float(r["val_bpc"]), 3), round(float(r["wall_s"]), 1),
                       reference.get(r["preset"], "")] for r in rows]
    return (["rung (reference ladder)", "val loss — REFERENCE from the GPT-from-scratch ladder, not measured here"],
            [[LECTURE_RUNGS.get(name, name), value] for name, value in reference.items()])


def _ladder_figures(ctx: Context):
    from explainer.figures.ladder import ladder_figure

    rows, reference = ladder()
    if rows and all("seed_val_loss" in r for r in rows):
        return [ladder_figure(rows)]
    return [message_figure("The model ladder", "Not measured on this machine yet: the table shows the "
                           "GPT-from-scratch ladder's reference numbers. Run `python -m gpt.ladder` to measure each rung here.")]


def _qkv(ctx: Context):
    tr = ctx.trace()
    q = tr.n_tokens - 1
    return [fx.qk_products_figure(tr, LAYER, HEAD, q, max(0, q - 1)), fx.five_stages_figure(tr, LAYER, HEAD)]


def _positions(ctx: Context):
    with common.using(ctx.loaded):
        return [fx.position_similarity_figure(ctx.loaded.model)]


def _variance(ctx: Context):
    demo = variance_demo()
    return [fx.variance_histograms_figure(demo), fx.softmax_saturation_figure(demo)]


INDUCTION_CHECKPOINT = "induction"  # trained by ``python -m explainer.bench --induction --out checkpoints/induction``


def _induction(ctx: Context):
    """Role grids and the best induction head on the prompt said twice: this session's char model if it
    has an induction head, else the shipped induction model, else the step's usual model."""
    from explainer.heads import INDUCTION_THRESHOLD

    from .roles_panel import roles_of

    loaded = ctx.loaded
    roles = roles_of(ctx.session, loaded) if loaded.model.config.n_layer else None
    if (roles is None or roles.best_head("induction")[2] <= INDUCTION_THRESHOLD) \
            and INDUCTION_CHECKPOINT in registry.checkpoint_names():
        loaded = registry.stock(INDUCTION_CHECKPOINT)
        roles = roles_of(ctx.session, loaded)
    if roles is None:
        return [message_figure("Head roles", "This model has no attention layers, so it has no heads.")]
    layer, head, _ = roles.best_head("induction")
    half = loaded.model.config.block_size // 2
    said_twice = loaded.tokenizer.decode(loaded.tokenizer.encode(ctx.prompt)[-half:]) * 2
    with common.using(loaded):
        tr = fx.trace_prompt(loaded.model, loaded.tokenizer, said_twice)
    return [fx.head_roles_figure(roles, title=loaded.label), fx.five_stages_figure(tr, layer, head)]


STEPS = [
    Step("1 · Attention is communication",
         "Think of the tokens as nodes of a directed graph. Each token sends a message along every edge that points "
         "to it and gathers a weighted sum of what it receives. In a GPT the edges only come from the token itself and "
         "earlier ones; each line below is one edge, drawn darker the more that token listens.",
         lambda ctx: [fx.head_view_figure(ctx.trace(), LAYER, [HEAD])]),
    Step("2 · The averaging trick",
         "The simplest way for a token to learn from its past is to average it. A lower-triangular matrix does that in "
         "one matrix multiply, and softmax over masked zeros builds the same matrix. Attention replaces the zeros with "
         "scores, so each token chooses whom to average.",
         lambda ctx: [fx.averaging_trick_figure(ctx.trace(), LAYER, HEAD, size=8)]),
    Step("3 · Queries, keys and values",
         "Every token emits a query (what am I looking for?), a key (what do I contain?) and a value (what I will say "
         "if you listen). The score of a pair is the dot product q·k: a sum of per-channel products, shown on top. "
         "Below: all scores of one head, then scaled, masked, softmaxed, and used to mix the values.",
         _qkv),
    Step("4 · Why divide by √d_k",
         "With unit-variance q and k, the dot product q·k has variance d_k: wide heads produce huge scores, and "
         "softmax turns huge scores into a one-hot vote. Multiplying by 1/√d_k keeps the variance at 1, so attention "
         "stays soft at initialisation and can learn.",
         _variance),
    Step("5 · Decoder mask, encoder, and cross-attention",
         "A decoder (GPT) must not see the future it is predicting, so a causal mask sets future scores to −∞. An "
         "encoder drops the mask and lets every token see every other. Both are *self*-attention: queries, keys and "
         "values come from the same tokens. In *cross*-attention the queries come from one sequence and the keys and "
         "values from another (e.g. a translation decoder reading the encoder's output).",
         lambda ctx: [fx.causal_mask_figure(ctx.trace(causal=True), ctx.trace(causal=False), LAYER, HEAD)]),
    Step("6 · No position without positional embeddings",
         "Attention is a weighted average over a set: shuffle the earlier tokens and each query gets the same result. "
         "The model knows order only because it adds a learned position vector to each token. Below: how similar the "
         "learned position vectors are to each other (neighbours end up alike after training).",
         _positions),
    Step("7 · Multi-head attention",
         "One head can only look for one kind of thing at a time. Several smaller heads run side by side, each with "
         "its own queries, keys and values, and their outputs are concatenated. Each colour below is one head of the "
         "first layer; the grid shows every head of every layer.",
         lambda ctx: [fx.head_view_figure(ctx.trace(), LAYER, None), fx.all_heads_figure(ctx.trace())]),
    Step("8 · The model ladder: bigram → GPT",
         "Each rung adds one idea to the one before: attention, several heads, blocks with an MLP, LayerNorm and "
         "residuals, then depth. The validation loss each rung reaches shows what each idea buys.",
         _ladder_figures),
    Step("9 · Induction heads: how a model copies",
         "Seen \"A B\" before and now at \"A\" again? Predict \"B\". Two heads do it together (Olsson et al. 2022): a "
         "previous-token head in layer 0 writes into each position which token came before it, and an induction "
         "head in layer 1 looks for the position whose previous token is the current one, and copies what is there. "
         "Top: every head scored on random tokens said twice (fraction of its attention, 0..1). Bottom: the best "
         "induction head on your prompt said twice: in the second copy it looks one step after the earlier copy, "
         "an off-diagonal stripe. The Shakespeare models have none (score ~0.02); the 2-layer \"induction\" model, "
         "trained on passages said twice, grows one in about a thousand steps, and its loss drops when it appears.",
         _induction),
]
TITLES = [s.title for s in STEPS]
LADDER_FIGURES = _ladder_figures  # the step that also shows the ladder table


def step_index(title: str) -> int:
    if title not in TITLES:
        raise ValueError(f"unknown step {title!r}.")
    return TITLES.index(title)
