"""playAttention's explainer: attention inside a tiny GPT as numpy arrays and plotly figures.

No Gradio here (the UI lives in ``explainer.ui``). The explainer reads tensors the model
captured with ``GPT.trace`` and never re-implements the model's math: every number a
figure shows is the model's own number.

Trace once, then draw any figure from the trace (figures never run the network)::

    tr = trace_prompt(model, tokenizer, "ROMEO: But soft", causal=None, attn_scale=None)
    five_stages_figure(tr, layer, head)   # QKᵀ -> × scale -> + mask -> softmax -> × V
    all_heads_figure(tr)                  # layers x heads grid; customdata = (layer, head, ...)
    head_view_figure(tr, layer, heads=None)   # BertViz head view
"""
from .figures import all_heads_figure, five_stages_figure, head_view_figure
from .trace import PromptTrace, row_entropy, trace_prompt

__all__ = ["PromptTrace", "trace_prompt", "row_entropy", "five_stages_figure", "all_heads_figure",
           "head_view_figure"]
