"""The whole app: a header, one tab per module, the queue, and what ``launch`` needs.

Building the Blocks loads no model and no corpus (everything heavy is lazy), so the
first page is served quickly; the tabs fill themselves in on first use.
"""
from __future__ import annotations

import weakref

import gradio as gr

from . import (cancels, compare_tab, expiry, guard, guard_http, inspect_page, inspect_tab, learn_tab, limits,
               roles_panel, train_tab, training)
from .session import Session, cleanup_session

# system fonts only: the page fetches nothing from font CDNs (works offline, renders the same)
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "DejaVu Sans", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace"]

HEADER = """# playAttention
**See attention inside a tiny GPT.** *Train* a model from the bigram up to a small GPT and watch the loss fall;
*Compare* char and GPT-2 tokenizers before and after training; *Inspect* every stage of every head;
*Learn* the ideas step by step."""

CSS = """
.pa-progress { height: 14px; border-radius: 7px; background: var(--neutral-200); overflow: hidden; }
.pa-bar { height: 100%; background: var(--color-accent); transition: width .3s ease; }
.pa-progress-label { font-size: 0.9em; margin-top: 4px; color: var(--body-text-color-subdued); }
.pa-note { font-size: 0.92em; color: var(--body-text-color-subdued); }
.pa-cell { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; }
.pa-step-text { font-size: 1.05em; line-height: 1.5; }
.pa-mono textarea, .pa-mono .textfield { font-family: var(--font-mono); }
/* messages (Gradio's toasts) come up at the bottom: at the top right they covered Inspect's button, so a visitor
   who had fixed the prompt could not press again until the message went, 10 s later */
.toast-wrap { top: auto !important; bottom: var(--size-4); }
"""

HEAD_JS = inspect_page.HEAD_JS + roles_panel.HEAD_JS  # the Inspect figures' click bridges, downloads and phone layout


def build_demo() -> gr.Blocks:
    """The playAttention Blocks, with its queue configured (not launched)."""
    training.remove_stale_runs()
    ttl = max(1, int(limits.session_ttl_s()))  # Gradio's cache keeps uploads as long (downloads: run_files)
    with gr.Blocks(title="playAttention", delete_cache=(ttl, ttl)) as demo:
        session = gr.State(Session(), delete_callback=cleanup_session)  # deep-copied for each visitor
        gr.Markdown(HEADER)
        with gr.Tabs():
            with gr.Tab("Train", id="train"):
                train_tab.build(session)
            with gr.Tab("Compare", id="compare") as compare:
                compare_tab.build(session, compare)
            with gr.Tab("Inspect", id="inspect") as inspect:
                inspect_tab.build(session, inspect)
            with gr.Tab("Learn", id="learn") as learn:
                learn_tab.build(session, learn)
        demo.unload(releaser(demo))
    demo.queue(max_size=limits.QUEUE_MAX_SIZE, default_concurrency_limit=limits.INSPECT_CONCURRENCY)
    guard.install(demo)  # every raw input value is checked before Gradio or a handler sees it
    guard_http.install_log_filter()
    expiry.start(demo)  # idle sessions (raw-HTTP clients never send a heartbeat) expire too
    return demo


def releaser(demo: gr.Blocks):
    """The unload handler: when a tab closes (its heartbeat drops), free its runs, models and traces now.

    Gradio itself would keep a closed session's state for an hour before the delete callback runs.
    """
    ref = weakref.ref(demo)

    def release(request: gr.Request) -> None:
        if (d := ref()) is not None and request.session_hash:
            expiry.forget(d, request.session_hash)
            expiry.trim()  # hand the freed heap back now: the sweeper (which also trims) finds nothing left
    return release


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch``: theme, CSS and the click bridge go here in Gradio 6.

    No port or host is set: Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (as Spaces do).
    """
    theme = gr.themes.Soft(primary_hue="indigo", font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    from starlette.middleware import Middleware

    return dict(theme=theme, css=CSS + inspect_page.CSS, head=HEAD_JS,
                max_file_size=limits.MAX_FILE_BYTES, show_error=True,
                app_kwargs={"middleware": [Middleware(guard_http.Guard), Middleware(cancels.Watch)]})
