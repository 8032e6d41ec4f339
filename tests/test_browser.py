"""The app in a real browser (Debian's chromium via Playwright): every tab, live training, Stop,
picking a head from the all-heads grid. Screenshots of each tab go to tests/artifacts/.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_helpers import browser, open_page, require_chromium, train_page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

require_chromium()


@pytest.fixture(scope="module")
def url(app_url):
    return app_url


@pytest.fixture(scope="module")
def page(train_page):
    return train_page


def plot_js(elem_id: str, expr: str) -> str:
    """A JS expression over the plotly graph inside the gr.Plot with this elem_id (null until drawn)."""
    return f"(() => {{ const gd = document.querySelector('#{elem_id} .js-plotly-plot'); " \
           f"return gd && gd.data ? ({expr}) : null; }})()"


def title_of(page, elem_id: str) -> str | None:
    return page.evaluate(plot_js(elem_id, "gd.layout.title && (gd.layout.title.text || gd.layout.title)"))


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_train_live_then_stop(page):
    page.click("#train-start")
    points = plot_js("loss-plot", "gd.data[0].x.length")
    page.wait_for_function(f"{points} >= 1")
    first = page.evaluate(points)
    page.wait_for_function(f"{points} > {first}")  # the curve gains points while training runs
    page.click("#train-stop")
    page.wait_for_function("document.querySelector('#train-progress').innerText.includes('stopped')")
    page.wait_for_function("document.querySelector('#train-stats').innerText.includes('bits/char')")
    steps = page.evaluate(points)
    page.wait_for_timeout(1500)
    assert page.evaluate(points) == steps  # stopped: no more points
    shot(page, "train")


def test_compare_fills_the_grid(page):
    open_tab(page, "Compare")
    page.wait_for_function("document.querySelector('#compare-untrained-gpt2 textarea').value.length > 0")
    assert "ROMEO" in page.input_value("#compare-untrained-char textarea")
    assert page.locator("#compare-gpt2-tokens").inner_text().strip()
    shot(page, "compare")


def test_inspect_click_a_thumbnail_selects_that_head(page):
    open_tab(page, "Inspect")
    page.wait_for_function(plot_js("heads-grid", "gd.data.length > 0"))
    page.wait_for_function(plot_js("pa-five-stages", "gd.data.length > 0"))
    layers, heads = map(int, re.search(r"(\d+) layers × (\d+) heads", page.inner_text("#inspect-notes")).groups())
    current = int(re.search(r"head (\d+)", title_of(page, "pa-five-stages")).group(1))
    target = (current + 1) % heads
    grid = page.locator("#heads-grid .js-plotly-plot")
    grid.scroll_into_view_if_needed()
    box, size = grid.bounding_box(), page.evaluate(plot_js("heads-grid", "gd._fullLayout._size"))
    # one heatmap tiles the plotting area, layers as rows and heads as columns: click layer 0, head `target`
    page.mouse.click(box["x"] + size["l"] + size["w"] * (target + 0.5) / heads,
                     box["y"] + size["t"] + size["h"] * 0.5 / layers)
    title = plot_js("pa-five-stages", "JSON.stringify(gd.layout.title)")
    page.wait_for_function(f"{title} !== null && {title}.includes('Layer 0, head {target}:')")
    page.wait_for_function(f"document.querySelector('#inspect-head input').value === 'head {target}'")
    shot(page, "inspect")


def test_learn_walkthrough(page):
    open_tab(page, "Learn")
    page.wait_for_function(plot_js("learn-figure", "gd.data.length > 0"))
    first = page.inner_text("#learn-text")
    page.click("#learn-next")
    page.wait_for_function(f"!document.querySelector('#learn-text').innerText.includes({first.splitlines()[0]!r})")
    assert "averaging" in page.inner_text("#learn-text").lower()
    page.wait_for_function(plot_js("learn-figure", "gd.data.length > 0"))
    shot(page, "learn")


def test_train_tab_on_a_phone(browser, app_url):
    """At 390 x 844 the Train tab stacks: nothing wider than the screen, buttons big enough for a thumb."""
    page = open_page(browser, app_url, 390, 844)
    try:
        page.wait_for_selector("#train-start")
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for button in ("#train-start", "#train-stop"):
            box = page.locator(button).bounding_box()
            assert box["height"] >= 40 and box["x"] >= 0 and box["x"] + box["width"] <= 390, button
        shot(page, "train-390")
    finally:
        page.close()
