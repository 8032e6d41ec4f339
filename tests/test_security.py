"""No code from data, no files from outside: the running server refuses every path that is not
its own upload or cache folder, and nothing in the code unpickles anything.
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from explainer.ui import launch_kwargs
from explainer.ui.training import EXPORT_ROOT

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exported_file():
    """A file in the app's run folders (checkpoint folders, training state): never served."""
    path = EXPORT_ROOT / "security-probe" / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("probe")
    yield path
    path.unlink()
    path.parent.rmdir()


@pytest.mark.parametrize("path", [
    "/etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", str(ROOT / "README.md"), "README.md",
    str(ROOT / "gpt" / "checkpoint.py"), str(ROOT / "requirements.txt"), "{cache}", "{export}",
])
def test_server_refuses_files_outside_its_folders(app_url, exported_file, path):
    from gpt.data import tiny_shakespeare_path

    path = path.format(cache=tiny_shakespeare_path(), export=exported_file)
    r = httpx.get(f"{app_url}gradio_api/file={path}", timeout=30)
    assert r.status_code == 403 and "File not allowed" in r.text, (r.status_code, r.text[:200])


def test_server_serves_an_upload(app_url, tmp_path):
    """The refusals above are refusals: a file the visitor uploaded is served."""
    text = tmp_path / "mine.txt"
    text.write_text("to be or not to be")
    with open(text, "rb") as f:
        [uploaded] = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("mine.txt", f)}, timeout=30).json()
    r = httpx.get(f"{app_url}gradio_api/file={uploaded}", timeout=30)
    assert r.status_code == 200 and r.text == "to be or not to be"


def test_no_extra_folders_are_served():
    kwargs = launch_kwargs()
    assert not kwargs.get("allowed_paths") and "blocked_paths" not in kwargs


def test_no_code_loads_pickles():
    """Checkpoints are safetensors + JSON: nothing in the app or the library unpickles anything."""
    sources = [*ROOT.glob("gpt/*.py"), *ROOT.glob("explainer/**/*.py"), ROOT / "app.py"]
    assert len(sources) > 30
    for path in sources:
        text = path.read_text()
        # "torch" "load(" split so this file does not itself read as a torch-load call
        for banned in ("torch" ".load(", "pickle.load", "import pickle", "import dill", "joblib.load"):
            assert banned not in text, f"{path.relative_to(ROOT)} uses {banned}"
