"""Bad input for what heads do: head roles and the logit lens, in Python and through /heads and /lens.

Same form as ``tests/test_bad_inputs.py``: each row is (surface, case id, call, expected fragment),
and ``call(t)`` returns the text the visitor gets back. A model without attention (bigram) has no
heads; unknown or untrained model keys, empty prompts and prompts the vocabulary cannot encode each
get a specific message, never a traceback.
"""
from __future__ import annotations

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from bad_input_surfaces import PROMPT, TINY, Surfaces, case, raises, surfaces_fixture, table_test
from explainer.heads import head_roles, in_context_learning_score
from explainer.lens import logit_lens
from gpt import GPT, GPTConfig, UnknownCharactersError

BIGRAM = {**TINY, "n_layer": 0, "n_head": 0}


class Heads(Surfaces):
    """The bad-input surfaces plus a session that trained a bigram (a model with no heads)."""

    def bigram(self) -> GPT:
        torch.manual_seed(0)
        return GPT(GPTConfig(vocab_size=self.char_tok.vocab_size, block_size=16, n_layer=0, n_head=1,
                             n_embd=16)).eval()

    def lens(self, prompt: str, **kw) -> str:
        return logit_lens(self.char, self.char_tok, prompt, **kw)

    def bigram_session(self, api: str, *args) -> str:
        """Train a bigram in a session of its own, then call ``api`` with that session's char model."""
        c = Client(self.url, verbose=False)
        try:
            c.predict(corpus="Tiny Shakespeare", upload=None, tokenizer="char", preset="bigram", **BIGRAM,
                      api_name="/train")
            with pytest.raises(AppError) as info:
                c.predict(*args, api_name=api)
            return str(info.value)
        finally:
            c.close()


CASES = [
    # --- Python API ---
    case("api", "head-roles-bigram-has-no-heads", lambda t: raises(ValueError, lambda: head_roles(t.bigram())),
         "has no attention layers (e.g. the bigram preset), so it has no heads"),
    case("api", "head-roles-context-too-short", lambda t: raises(ValueError, lambda: head_roles(
        GPT(GPTConfig(vocab_size=t.char_tok.vocab_size, block_size=3, n_layer=1, n_head=1, n_embd=16)))),
         "block_size 3 is too short for the role probes"),
    case("api", "icl-corpus-of-another-vocabulary", lambda t: raises(ValueError, lambda: in_context_learning_score(
        t.char, torch.full((100,), 60_000))), "was the corpus encoded with another tokenizer?"),
    case("api", "icl-corpus-too-short", lambda t: raises(ValueError, lambda: in_context_learning_score(
        t.char, torch.zeros(10, dtype=torch.long))), "needs more than block_size + 1 = 17"),
    case("api", "icl-corpus-not-tokens", lambda t: raises(ValueError, lambda: in_context_learning_score(
        t.char, "ROMEO: O")), "corpus must be a TokenData"),
    case("api", "lens-empty-prompt", lambda t: raises(ValueError, lambda: t.lens("")), "the prompt is empty"),
    case("api", "lens-unencodable-prompt", lambda t: raises(UnknownCharactersError, lambda: t.lens("ROMEO: 日本")),
         "'日', '本'"),
    case("api", "lens-k-zero", lambda t: raises(ValueError, lambda: t.lens(PROMPT, k=0)),
         "k must be a whole number from 1 to the vocabulary size"),
    # --- the app: /heads (model) ---
    case("app", "heads-unknown-model", lambda t: t.app_error("/heads", "no-such-model"),
         "unknown model 'no-such-model'; choose one of"),
    case("app", "heads-empty-model", lambda t: t.app_error("/heads", ""), "must be a model name"),
    case("app", "heads-session-model-not-trained", lambda t: t.app_error("/heads", "session-char"),
         "this session has not trained a char model yet"),
    case("app", "heads-bigram-has-no-heads", lambda t: t.bigram_session("/heads", "session-char"),
         "this model has no attention layers (e.g. the bigram preset), so it has no heads to give roles to"),
    # --- the app: /lens (prompt, model) ---
    case("app", "lens-unknown-model", lambda t: t.app_error("/lens", PROMPT, "no-such-model"),
         "unknown model 'no-such-model'; choose one of"),
    case("app", "lens-empty-prompt", lambda t: t.app_error("/lens", "", "untrained-char"), "the prompt is empty"),
    case("app", "lens-blank-prompt", lambda t: t.app_error("/lens", "   \n", "untrained-char"), "the prompt is empty"),
    case("app", "lens-unencodable-prompt", lambda t: t.app_error("/lens", "ROMEO: 日本", "untrained-char"),
         "2 character(s) are not in this model's vocabulary: '日', '本'"),
    case("app", "lens-prompt-too-long", lambda t: t.app_error("/lens", "x" * 100_000, "shakespeare-char"),
         "the prompt has 100,000 characters; the limit is"),
    case("app", "lens-session-model-not-trained", lambda t: t.app_error("/lens", PROMPT, "session-gpt2"),
         "this session has not trained a gpt2 model yet"),
]


t = surfaces_fixture(Heads, "bad-inputs-heads")


def test_the_heads_table_has_unique_ids():
    assert len({p.id for p in CASES}) == len(CASES) >= 15


test_heads_bad_input_gets_a_specific_message = table_test(CASES)
