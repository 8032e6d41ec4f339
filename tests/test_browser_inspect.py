"""Inspect in a real browser (Debian's chromium via Playwright): the interactive head view follows the
pointer and the keyboard, its lines carry the model's own weights, a locked query drives the other
views, and the tab reads at 390, 1280 and 1440 px (screenshots in tests/artifacts/).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from browser_helpers import (browser, default_trace, open_page, overlaps, require_chromium,  # noqa: F401
                             tick_boxes)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PROMPT = "ROMEO: But soft, what light through yonder"
HV = "#pa-head-view"

require_chromium()


def open_inspect(browser, url, width: int, height: int = 1000, prompt: str | None = PROMPT):
    page = open_page(browser, url, width, height, accept_downloads=True)
    page.get_by_role("tab", name="Inspect").click()
    page.wait_for_selector(f"{HV} [data-role=line]", state="attached")
    if prompt is not None:
        page.fill("#pa-prompt textarea", prompt)
        page.click("#pa-inspect-btn")
        page.wait_for_function(f"document.querySelectorAll('{HV} [data-role=token][data-side=query]').length"
                               f" === {len(prompt)}")
    return page


@pytest.fixture(scope="module")
def page(browser, app_url):
    pg = open_inspect(browser, app_url, 1440)
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def trace():
    return default_trace(PROMPT)


def selected(page) -> tuple[int, int]:
    layer = int(re.search(r"\d+", page.input_value("#inspect-layer input")).group())
    head = int(re.search(r"\d+", page.input_value("#inspect-head input")).group())
    return layer, head


def shown_lines(page) -> list[dict]:
    """Every head-view line the browser actually shows (display not none, opacity > 0)."""
    return page.evaluate(f"""() => [...document.querySelectorAll('{HV} [data-role=line]')]
      .filter(l => getComputedStyle(l).display !== 'none')
      .map(l => ({{q: +l.dataset.query, k: +l.dataset.key, w: l.dataset.weight, h: +l.dataset.head,
                  op: +l.getAttribute('stroke-opacity')}}))""")


def token(page, side: str, index: int):
    return page.locator(f"{HV} [data-role=token][data-side={side}][data-index='{index}']")


def test_hover_a_query_shows_only_its_lines_with_the_models_weights(page, trace):
    layer, head = selected(page)
    q = 17
    token(page, "query", q).hover()
    lines = shown_lines(page)
    assert lines and {ln["q"] for ln in lines} == {q}
    row = trace.weights[layer, head, q]
    assert sorted(ln["k"] for ln in lines) == list(range(q + 1))  # every allowed key: nothing thinned
    for ln in lines:
        assert abs(float(ln["w"]) - float(row[ln["k"]])) <= 1e-6
        assert ln["op"] == pytest.approx(float(ln["w"]), abs=1e-6)  # opacity = weight, exactly
    printed = page.evaluate(f"""() => [...document.querySelectorAll(
      '{HV} [data-role=token][data-side=key] [data-role=weight]')].map(t => t.textContent)""")
    assert printed[:q + 1] == [f"{row[k]:.3f}" for k in range(q + 1)]
    assert set(printed[q + 1:]) <= {"masked"}


def test_hover_a_key_shows_who_attends_to_it(page, trace):
    k = 5
    token(page, "key", k).hover()
    lines = shown_lines(page)
    assert {ln["k"] for ln in lines} == {k} and sorted(ln["q"] for ln in lines) == list(range(k, len(PROMPT)))


def test_click_locks_and_drives_the_other_views(page, trace):
    q = 12
    token(page, "query", q).click()
    page.mouse.move(5, 5)  # away from the head view
    page.wait_for_timeout(300)
    assert {ln["q"] for ln in shown_lines(page)} == {q}  # the lock survives the pointer leaving
    page.wait_for_function(f"document.querySelector('#inspect-query input').value.startsWith('#{q} ')")
    qk = "document.querySelector('#qk-products .js-plotly-plot')"
    page.wait_for_function(f"{qk}.layout.title.text.includes('query #{q} ')")
    shapes = page.evaluate("document.querySelector('#pa-five-stages .js-plotly-plot').layout.shapes")
    assert len(shapes) == 4 and all(s["y0"] == q - 0.5 and s["y1"] == q + 0.5 for s in shapes)
    token(page, "query", q).click()  # click again releases
    page.mouse.move(5, 5)
    assert {ln["q"] for ln in shown_lines(page)} == set(range(len(PROMPT)))
    token(page, "query", 3).click()
    page.keyboard.press("Escape")
    page.mouse.move(5, 5)
    assert len({ln["q"] for ln in shown_lines(page)}) == len(PROMPT)


def test_keyboard_moves_between_tokens(page):
    token(page, "query", 4).focus()
    page.keyboard.press("ArrowDown")
    assert {ln["q"] for ln in shown_lines(page)} == {5}
    page.keyboard.press("ArrowRight")  # to the key side, same position
    assert {ln["k"] for ln in shown_lines(page)} == {5}
    page.keyboard.press("Escape")


def test_heads_are_colour_coded_and_toggle(page):
    layer, head = selected(page)
    other = (head + 1) % 6
    before = {ln["h"] for ln in shown_lines(page)}
    assert before == {head}
    page.click(f"{HV} .pa-hv-heads button[data-head='{other}']")
    page.mouse.move(5, 5)
    lines = page.evaluate(f"""() => [...document.querySelectorAll('{HV} [data-role=line]')]
      .map(l => [+l.dataset.head, l.getAttribute('stroke')])""")
    colours = {h: c for h, c in lines}
    assert set(colours) == {head, other} and colours[head] != colours[other]
    page.click(f"{HV} .pa-hv-heads button[data-head='{other}']")
    assert {ln["h"] for ln in shown_lines(page)} == {head}


def test_head_selector_changes_the_head_view(page):
    layer, head = selected(page)
    other = (head + 2) % 6
    page.click("#inspect-head input")
    page.get_by_role("option", name=f"head {other}", exact=True).click()
    page.wait_for_function(f"document.querySelector('#pa-five-stages .js-plotly-plot').layout.title.text"
                           f".includes('head {other}:')")
    assert {ln["h"] for ln in shown_lines(page)} == {other}


def test_downloads(page, trace, tmp_path):
    stages = page.locator("#pa-five-stages")
    with page.expect_download() as svg:
        stages.locator(".pa-dl button[data-format=svg]").click()
    path = tmp_path / "stages.svg"
    svg.value.save_as(path)
    assert path.read_text().lstrip().startswith("<svg") and "five stages" in path.read_text()
    assert page.locator("#heads-grid .pa-dl button[data-format=png]").count() == 1
    page.click("#pa-trace-btn")
    link = page.locator("#pa-trace-file a[download], #pa-trace-file a").first
    link.wait_for()
    with page.expect_download() as npz:
        link.click()
    npz.value.save_as(tmp_path / "trace.npz")
    data = np.load(tmp_path / "trace.npz")
    assert list(data["tokens"]) == trace.tokens
    for name in ("q", "k", "v", "scores", "weights"):
        np.testing.assert_array_equal(data[name], getattr(trace, name))


QK_TEXTS = """() => [...document.querySelectorAll('#qk-products svg text')].filter(t => t.textContent.trim())
  .map(t => { const r = t.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height,
                                                             text: t.textContent }; }).filter(b => b.width > 0)"""


@pytest.mark.parametrize("width", [390, 1280, 1440])
def test_layout_at_each_width(browser, app_url, width):
    long = ("KING RICHARD II: Now, my lord, what news of the fleet and the army, and " * 2)[:100]
    pg = open_inspect(browser, app_url, width, 844 if width == 390 else 1000, prompt=None)
    try:
        pg.fill("#pa-prompt textarea", long)
        pg.click("#pa-inspect-btn")
        pg.wait_for_function(f"document.querySelectorAll('{HV} [data-role=token][data-side=query]').length === 64")
        pg.wait_for_timeout(1500)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
        gd = "document.querySelector('#pa-five-stages .js-plotly-plot')"
        ticks = pg.evaluate(f"{gd}.layout.xaxis.tickvals.length")
        assert ticks <= 16  # 64 keys: labels thinned so they never collide
        domains = pg.evaluate(f"[1,2,3,4,5].map(i => {gd}._fullLayout['yaxis' + (i > 1 ? i : '')].domain)")
        stacked = all(domains[i][0] >= domains[i + 1][1] for i in range(4))
        assert stacked == (width < 700)  # a phone: the five stages one under another
        right = pg.evaluate("Math.max(...[...document.querySelectorAll('#pa-five-stages .annotation-text, "
                            "#pa-five-stages .gtitle')].map(t => t.getBoundingClientRect().right))")
        assert right <= width, f"a five-stage title or note runs off the screen at {width} px"
        for elem_id, axes in (("heads-grid", ("x", "y")), ("pa-five-stages", ("x", "y", "x2", "x5"))):
            for axis in axes:
                assert not overlaps(tick_boxes(pg, elem_id, axis)), f"#{elem_id} {axis} tick labels overlap at {width} px"
        texts = pg.evaluate(QK_TEXTS)  # the q·k view: no label, title or value drawn over another
        assert texts and not overlaps(texts), [(texts[i]["text"], texts[j]["text"]) for i, j in overlaps(texts)]
        assert max(t["x"] + t["width"] for t in texts) <= width, f"a q·k text runs off the screen at {width} px"
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"inspect-{width}.png"), full_page=True)
    finally:
        pg.close()
