"""Data flows one way: gpt imports no plotting and no UI; explainer (outside explainer.ui) no Gradio."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules(package: str) -> list[str]:
    path = ROOT / package.replace(".", "/")
    return [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(path)]) if not m.name.startswith("ui")]


def imported_after(mods: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods) +
            "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_gpt_imports_no_plotting_and_no_ui():
    mods = ["gpt"] + modules("gpt")
    assert "gpt.model" in mods and "gpt.run" in mods
    loaded = imported_after(mods)
    assert not {"plotly", "gradio", "explainer"} & loaded, sorted({"plotly", "gradio", "explainer"} & loaded)


def test_explainer_outside_its_ui_imports_no_gradio():
    mods = ["explainer"] + modules("explainer")
    assert "explainer.trace" in mods and not any(m.startswith("explainer.ui") for m in mods)
    assert "gradio" not in imported_after(mods)


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("explainer/ui/*.py")))
def test_the_ui_does_not_import_cli_scripts(path):
    text = (ROOT / path).read_text()
    for cli in ("gpt.train", "gpt.ladder", "gpt.bench", "gpt.sample"):
        assert f"from {cli} import" not in text and f"import {cli}" not in text, (path, cli)


def test_no_source_file_is_over_400_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in ROOT.glob("**/*.py")
            if "site-packages" not in p.parts and (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
