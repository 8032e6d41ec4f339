"""Inspect tab (being written)."""
import gradio as gr


def build(session, tab):
    gr.Markdown("Inspect")
