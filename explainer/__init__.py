"""playAttention's explainer: attention inside a tiny GPT as numpy arrays and plotly figures.

No Gradio here (the UI lives in ``explainer.ui``). The explainer reads tensors the model
captured with ``GPT.trace`` and never re-implements the model's math: every number a
figure shows is the model's own number.

Start with ``trace_prompt(model, tokenizer, prompt, causal=None, attn_scale=None)``,
which returns a ``PromptTrace``; the figure functions take that trace.
"""
from .trace import PromptTrace, row_entropy, trace_prompt

__all__ = ["PromptTrace", "trace_prompt", "row_entropy"]
