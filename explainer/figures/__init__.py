"""Plotly figures of a PromptTrace (and of a model's numbers), one topic per module."""
from .heads import all_heads_figure, head_view_figure
from .stages import five_stages_figure

__all__ = ["five_stages_figure", "all_heads_figure", "head_view_figure"]
