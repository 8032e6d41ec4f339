"""Plotly figures of a PromptTrace (and of a model's numbers), one topic per module."""
from .ablation import ablation_figure
from .heads import all_heads_figure, head_view_figure
from .masking import averaging_trick_figure, causal_mask_figure
from .neuron import qk_products_figure
from .next_token import next_token_figure, top_next_tokens
from .roles import head_roles_figure, logit_lens_figure, role_history_figure
from .scaling import scale_sweep_figure, softmax_saturation_figure, variance_histograms_figure
from .stages import five_stages_figure
from .training import before_after_figure, loss_curves_figure, position_similarity_figure

__all__ = [
    "five_stages_figure", "all_heads_figure", "head_view_figure", "qk_products_figure",
    "variance_histograms_figure", "softmax_saturation_figure", "scale_sweep_figure", "causal_mask_figure",
    "averaging_trick_figure", "next_token_figure", "top_next_tokens", "loss_curves_figure",
    "ablation_figure", "position_similarity_figure", "before_after_figure",
    "head_roles_figure", "logit_lens_figure", "role_history_figure",
]
