"""A GPT-2-shaped Hugging Face model (12 layers x 12 heads) in Inspect, in a real browser (Debian's
chromium via Playwright): the all-heads grid, the head view's twelve heads and the role grids stay
legible at 1440 and 390 px (no overlapping tick labels, nothing wider than the page), and before/after
training is said to be not applicable. Screenshots go to tests/artifacts/."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_helpers import browser, open_page, overlaps, require_chromium, tick_boxes  # noqa: F401

pytestmark = pytest.mark.browser
require_chromium()
pytest.importorskip("transformers")
from hf_helpers import save_random_gpt2  # noqa: E402

from explainer.ui import byom  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KEY, LAYERS, HEADS = "hf-gpt2-12x12", 12, 12
PROMPT = "ROMEO: But soft, what light through yonder window breaks? It is the east"
HV = "#pa-head-view"


@pytest.fixture(scope="module")
def hf_app(app_url, tmp_path_factory):
    """The shared app, its Hugging Face folder holding one random GPT-2 of GPT-2 small's depth and width in
    heads (n_embd 96, so it loads in a second), loaded before the page asks for it."""
    root = tmp_path_factory.mktemp("hf")
    save_random_gpt2(root / "gpt2-12x12", n_layer=LAYERS, n_head=HEADS, n_embd=96, n_positions=128)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(byom.ENV, raising=False)
        mp.setattr(byom, "hf_root", lambda: root)
        mp.setattr(byom, "MODELS", byom.HFModels())
        byom.MODELS.get(KEY, wait_s=120)
        yield app_url


def open_hf(browser, url: str, width: int):
    page = open_page(browser, url, width)
    page.get_by_role("tab", name="Inspect").click()
    page.wait_for_selector(f"{HV} [data-role=line]", state="attached")
    page.fill("#pa-prompt textarea", PROMPT)
    page.locator("#inspect-model input").click()
    page.get_by_role("option", name=byom.MODELS.label(KEY)).click()
    page.wait_for_function(f"document.querySelectorAll('{HV} .pa-hv-heads button').length === {HEADS}")
    page.wait_for_function("(() => { const gd = document.querySelector('#heads-grid .js-plotly-plot'); return gd && "
                           f"gd.layout && gd.layout.meta && gd.layout.meta.pa_grid.heads === {HEADS}; }})()")
    return page


@pytest.mark.parametrize("width", [1440, 390])
def test_twelve_by_twelve_heads_stay_legible(hf_app, browser, width):
    page = open_hf(browser, hf_app, width)
    try:
        grid = page.evaluate("document.querySelector('#heads-grid .js-plotly-plot').layout.meta.pa_grid")
        assert grid["layers"] == LAYERS and grid["heads"] == HEADS
        for axis in ("x", "y"):
            boxes = tick_boxes(page, "heads-grid", axis)
            assert len(boxes) == (HEADS if axis == "x" else LAYERS)
            assert not overlaps(boxes), f"{axis} tick labels of the all-heads grid overlap at {width} px"
        labels = page.evaluate("""['.gtitle', '.xtitle', '[data-testid=block-label]']
            .map(s => document.querySelector('#heads-grid ' + s))
            .map(e => e.getBoundingClientRect()).map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))""")
        assert not overlaps(labels + tick_boxes(page, "heads-grid", "x")), f"the grid's title runs into its label " \
                                                                            f"or head numbers at {width} px"
        colours = page.evaluate(f"[...document.querySelectorAll('{HV} .pa-hv-heads button')]"
                                ".map(b => getComputedStyle(b).borderTopColor)")
        assert len(set(colours)) == HEADS  # every head its own colour
        buttons = page.evaluate(f"[...document.querySelectorAll('{HV} .pa-hv-heads button')]"
                                ".map(b => b.getBoundingClientRect().right)")
        assert max(buttons) <= width, "a head toggle runs off the page"
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, "the page scrolls sideways"
        n = len(page.evaluate(f"[...document.querySelectorAll('{HV} [data-role=token][data-side=query]')]"))
        assert n == page.evaluate("document.querySelector('#heads-grid .js-plotly-plot').layout.meta.pa_grid.tokens")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"inspect-hf-12x12-{width}.png"), full_page=True)
    finally:
        page.close()


def test_role_grids_and_lens_of_twelve_layers_and_no_before_after(hf_app, browser):
    page = open_hf(browser, hf_app, 1440)
    try:
        page.get_by_text("Head roles: what each head does").click()
        page.click("#roles-btn")
        page.wait_for_function("(() => { const gd = document.querySelector('#head-roles .js-plotly-plot'); "
                               "return gd && gd.data && gd.data.length === 4; })()")
        page.wait_for_function("(() => { const gd = document.querySelector('#logit-lens .js-plotly-plot'); "
                               "return gd && gd.data && gd.data.length === 1; })()")
        for axis in ("x", "y"):
            assert not overlaps(tick_boxes(page, "head-roles", axis)), f"role-grid {axis} ticks overlap"
        rows = page.evaluate("document.querySelector('#logit-lens .js-plotly-plot').data[0].y.length")
        assert rows == LAYERS + 1  # the embeddings, then after each of the 12 blocks
        before = page.evaluate("(() => { const gd = document.querySelector('#head-roles-before .js-plotly-plot');"
                               " return gd.layout.title.text + ' | ' + gd.layout.annotations[0].text; })()")
        assert before.startswith("Before training: not applicable") and "trained elsewhere" in before
        page.screenshot(path=str(ARTIFACTS / "inspect-hf-12x12-roles.png"), full_page=True)
    finally:
        page.close()
