"""playAttention's Gradio front end: one module per tab, plus shared helpers.

``build_demo()`` builds the Blocks; ``launch_kwargs()`` holds what ``launch`` needs.
"""
from .layout import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs"]
