"""What every browser test shares: Debian's chromium driven by Playwright (``playwright install`` cannot
fetch a browser here), launched as the browser benchmark launches it."""
from __future__ import annotations

import os

import pytest

from explainer.ui.bench_browser import CHROMIUM, LAUNCH_ARGS

WAIT_MS = 120_000  # generous: other jobs may be loading the CPUs


def require_chromium():
    """Skip the calling test module when chromium or Playwright is missing; return ``playwright.sync_api``."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: the browser test needs Debian's chromium (apt-get install chromium)",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


def launched_browser():
    """A generator fixture body: one headless chromium for a test module, closed after it."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, width: int = 1400, height: int = 1000, **kwargs):
    """A new page of ``url`` at this viewport, with the generous default timeout."""
    page = browser.new_page(viewport={"width": width, "height": height}, **kwargs)
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    return page


def default_trace(prompt: str):
    """The app's own default model traced on ``prompt``, as the server traces it for Inspect."""
    from explainer import trace_prompt
    from explainer.ui import limits, registry

    loaded = registry.stock(registry.default_model_key())
    return trace_prompt(loaded.model, loaded.tokenizer, prompt, max_tokens=limits.MAX_INSPECT_TOKENS)


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the test module that imports this fixture."""
    yield from launched_browser()


@pytest.fixture(scope="module")
def train_page(browser, app_url):
    """The shared app's Train tab at 1400 x 1000, ready to start."""
    page = open_page(browser, app_url)
    page.wait_for_selector("#train-start")
    yield page
    page.close()


def overlaps(boxes: list[dict]) -> list[tuple[int, int]]:
    """Pairs of bounding boxes that intersect (tick labels drawn over each other)."""
    def meet(a: dict, b: dict) -> bool:
        return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
                and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])

    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if meet(boxes[i], boxes[j])]


def tick_boxes(page, elem_id: str, axis: str) -> list[dict]:
    return page.evaluate(f"""[...document.querySelectorAll('#{elem_id} .{axis}tick text')]
        .map(t => t.getBoundingClientRect()).map(r => ({{x: r.x, y: r.y, width: r.width, height: r.height}}))""")
