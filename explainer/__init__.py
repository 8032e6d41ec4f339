"""playAttention's explainer: attention inside a tiny GPT as numpy arrays and plotly figures.

No Gradio here (the UI lives in ``explainer.ui``). The explainer reads tensors the model
captured with ``GPT.trace`` and never re-implements the model's math: every number a
figure shows is the model's own number. Every figure function returns a ``go.Figure``.

Trace once, then draw from the trace (these never run the network)::

    tr = trace_prompt(model, tokenizer, prompt, causal=None, attn_scale=None)  # -> PromptTrace
    five_stages_figure(tr, layer, head)            # QKᵀ -> × scale -> + mask -> softmax -> × V
    all_heads_figure(tr)                           # layers x heads; each cell's customdata = (layer, head)
    head_view_figure(tr, layer, heads=None)        # BertViz head view, line opacity = weight
    qk_products_figure(tr, layer, head, query, key)    # BertViz neuron view: q_d·k_d, sum, scale, softmax row
    averaging_trick_figure(tr, layer, head, size=8)    # uniform average -> softmax(masked zeros) -> learned
    causal_mask_figure(tr_causal, tr_open, layer, head)  # trace the prompt with causal=True and causal=False
    before_after_figure(tr_untrained, tr_trained, layer, head, labels=("untrained", "trained"))
    next_token_figure(tr, tokenizer, temperature=1.0, top_k=None, top_p=None, n=15)
    top_next_tokens(tr, tokenizer, temperature=1.0, top_k=None, top_p=None, n=10)  # [(id, text, p, raw p)]

The √d_k demo (synthetic numbers, then the real model at other scales)::

    demo = qk_variance_demo(dims=(4, 16, 64, 256))   # -> VarianceDemo (cache it: ~1 s)
    variance_histograms_figure(demo); softmax_saturation_figure(demo)
    sweep = scale_sweep(model, tokenizer, prompt, data, multipliers=(0.5, 1, 2), batches=20)  # + unscaled
    scale_sweep_figure(sweep, layer, head)

Training and evaluation (these run the model on validation batches)::

    loss_curves_figure(events, x="step" | "time", log_y=False)   # redraw per TrainEvent; zoom survives
    bits_per_char_of(model, tokenizer, corpus_text_or_TokenData, batches=50)  # -> gpt EvalResult(loss, bpc)
    result = head_ablation(model, data, batches=10, progress=None)             # -> AblationResult
    ablation_figure(result)
    position_similarity_figure(model)   # a message figure if pos_emb="none"

What heads do (these run the model on seeded random-token probes / the prompt)::

    roles = head_roles(model, seed=0, corpus=None)   # -> HeadRoles: .scores[role] (n_layer, n_head) in [0, 1]
    head_roles_figure(roles); role_history_figure([(step, roles), ...], induction_step=None)
    lens = logit_lens(model, tokenizer, prompt, k=5)  # -> LogitLens: .top_ids/.top_probs (n_layer+1, T, k)
    logit_lens_figure(lens)

Errors: ``trace_prompt`` lets ``gpt.UnknownCharactersError`` propagate (characters the char
model does not know); a layer/head out of range raises ``ValueError`` naming the valid range.
"""
from .ablation import AblationResult, bits_per_char_of, head_ablation
from .figures import (ablation_figure, all_heads_figure, averaging_trick_figure, before_after_figure,
                      causal_mask_figure, five_stages_figure, head_view_figure, loss_curves_figure,
                      next_token_figure, position_similarity_figure, qk_products_figure, scale_sweep_figure,
                      softmax_saturation_figure, top_next_tokens, variance_histograms_figure)
from .figures import head_roles_figure, logit_lens_figure, role_history_figure
from .heads import ROLES, HeadRoles, first_induction_step, head_roles
from .lens import LogitLens, logit_lens
from .trace import PromptTrace, row_entropy, trace_prompt
from .variance import ScaleSweep, VarianceDemo, qk_variance_demo, scale_sweep, val_loss_at_scale

__all__ = [
    "PromptTrace", "trace_prompt", "row_entropy",
    "five_stages_figure", "all_heads_figure", "head_view_figure", "qk_products_figure",
    "averaging_trick_figure", "causal_mask_figure", "before_after_figure",
    "next_token_figure", "top_next_tokens",
    "VarianceDemo", "qk_variance_demo", "variance_histograms_figure", "softmax_saturation_figure",
    "ScaleSweep", "scale_sweep", "val_loss_at_scale", "scale_sweep_figure",
    "loss_curves_figure", "bits_per_char_of", "AblationResult", "head_ablation", "ablation_figure",
    "position_similarity_figure",
    "ROLES", "HeadRoles", "head_roles", "first_induction_step", "LogitLens", "logit_lens",
    "head_roles_figure", "logit_lens_figure", "role_history_figure",
]
