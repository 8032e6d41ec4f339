"""Inspect's "Use your own model" panel: upload a checkpoint zip, or pick a GPT-2 from Hugging Face.

Only widgets and wiring: the checks are ``upload.import_checkpoint_zip`` and ``byom``'s.
"""
from __future__ import annotations

import gradio as gr

from . import byom, limits, upload
from .errors import friendly
from .session import Session

HELP = (f"Upload the checkpoint zip the Train tab downloads (meta.json + weights, at most "
        f"{limits.MAX_PARAMS:,} parameters): it becomes this session's model (**uploaded** in the Model menu), "
        "visible to you only. GPT-2 models in the Hugging Face layout (config.json + model.safetensors) in "
        f"`checkpoints/hf/<name>/`, or listed by repo id in `{byom.ENV}`, appear in the menu for everyone; "
        f"they load in the background (at most {byom.MAX_HF_MODELS}, up to {byom.MAX_HF_PARAMS:,} parameters "
        "each). Before/after training comparisons do not apply to them: they were trained elsewhere.")


def use_upload(session: Session, path: str | None):
    """Validate the uploaded zip, make it the session's model and select it in the menu."""
    loaded = upload.adopt(session, path)
    cfg = loaded.model.config
    note = (f"Loaded **{loaded.label}**: {cfg.n_layer} layers × {cfg.n_head} heads, n_embd {cfg.n_embd}, "
            f"{loaded.model.num_params():,} parameters. Press Inspect.")
    return gr.update(choices=session.choices(), value=upload.UPLOADED), note


def build(session: gr.State, model: gr.Dropdown) -> None:
    """The panel (inside the Inspect tab's layout); its upload selects the new model in ``model``."""
    with gr.Accordion("Use your own model", open=False, elem_id="inspect-own-model"):
        gr.Markdown(HELP)
        file = gr.File(label="Checkpoint zip", file_types=[".zip"], type="filepath", elem_id="inspect-upload")
        status = gr.Markdown(elem_id="inspect-upload-status")
    file.upload(friendly(use_upload), [session, file], [model, status], api_name="upload_checkpoint",
                concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
