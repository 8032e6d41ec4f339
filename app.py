"""playAttention: ``python app.py`` serves the app.

Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (as on Hugging Face
Spaces), else 127.0.0.1:7860. All UI code lives in ``explainer/ui``.
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explainer.ui import build_demo, launch_kwargs  # noqa: E402  (analytics must be off before gradio loads)

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
