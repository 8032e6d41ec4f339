"""Head, layer, query and key switches repaint in the browser from the trace a press sent
(``explainer.ui.inspect_store``): no request reaches the server, and every repainted number, colour range,
colour and title equals what the Python figure for that selection draws (the functions /inspect uses).
A layer the browser was not sent comes back from the server, one round trip.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from browser_helpers import browser, default_trace, open_page, require_chromium  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser

PROMPT = "JULIET: O Romeo, Romeo! wherefore art"
STAGES, QK = "#pa-five-stages .js-plotly-plot", "#qk-products .js-plotly-plot"
READY = (f"(() => {{ const gd = document.querySelector('{STAGES}'); return window.paInspect && gd && gd.layout"
         f" && gd.layout.meta && window.paInspect.id === gd.layout.meta.pa_trace; }})()")

require_chromium()


def press(page, prompt: str):
    page.fill("#pa-prompt textarea", prompt)
    page.click("#pa-inspect-btn")
    page.wait_for_function(f"(() => {{ const gd = document.querySelector('{STAGES}');"
                           f" return gd && gd.layout.title.text.includes('on {len(prompt)} tokens'); }})()")
    page.wait_for_function(READY)


@pytest.fixture(scope="module")
def page(browser, app_url):
    pg = open_page(browser, app_url, 1440, 1000)
    pg.get_by_role("tab", name="Inspect").click()
    pg.wait_for_selector("#pa-head-view [data-role=line]", state="attached")
    press(pg, PROMPT)
    joins = []
    pg.on("request", lambda r: joins.append(r.url) if "/queue/join" in r.url else None)
    pg.joins = joins
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def trace():
    return default_trace(PROMPT)


def pick(page, selector_id: str, label: str):
    page.click(f"#{selector_id} input")
    page.get_by_role("option", name=label, exact=True).first.click()


SHOWN_JS = """(sel) => { const gd = document.querySelector(sel);
  const typed = { f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
                  u2: Uint16Array, i4: Int32Array, u4: Uint32Array };
  const decode = (a) => {  // plotly's base64 form of a numpy array, as the server's figures arrive
    const s = atob(a.bdata), u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    const flat = Array.from(new typed[a.dtype.replace(/[<>|=]/g, '')](u.buffer));
    const shape = String(a.shape ?? flat.length).split(',').map(Number);
    if (shape.length < 2) return flat;
    return Array.from({ length: shape[0] }, (_, i) => flat.slice(i * shape[1], (i + 1) * shape[1]));
  };
  const plain = (a) => a == null ? null : a.bdata ? plain(decode(a)) :
    Array.from(a, r => (r != null && typeof r === 'object') ? plain(r) : (typeof r === 'number' && isNaN(r) ? null : r));
  return JSON.stringify({ data: gd.data.map(t => ({ z: plain(t.z), zmin: t.zmin ?? null, zmax: t.zmax ?? null,
      y: plain(t.y), text: plain(t.text), customdata: plain(t.customdata),
      tickvals: t.colorbar && t.colorbar.tickvals ? plain(t.colorbar.tickvals) : null,
      ticktext: t.colorbar && t.colorbar.ticktext ? plain(t.colorbar.ticktext) : null,
      color: t.marker ? plain([].concat(t.marker.color)) : null })),
    title: gd.layout.title.text, annotations: (gd.layout.annotations || []).map(a => a.text),
    meta: window.paInspect.shows(sel.split(' ')[0].slice(1)) }); }"""


def shown(page, sel: str) -> dict:
    return json.loads(page.evaluate(SHOWN_JS, sel))


def plain(a):
    """A figure's array as the browser lists it: nested lists, NaN as None."""
    if a is None:
        return None
    a = np.asarray(a, dtype=object) if not isinstance(a, np.ndarray) else a
    out = a.tolist()

    def clean(x):
        if isinstance(x, list):
            return [clean(y) for y in x]
        return None if isinstance(x, float) and math.isnan(x) else x
    return clean(out)


def assert_same(browser_fig: dict, fig, fields=("z", "zmin", "zmax", "tickvals", "ticktext")):
    """The browser's figure holds exactly the Python figure's numbers, strings and colours."""
    assert browser_fig["title"] == fig.layout.title.text
    assert browser_fig["annotations"] == [a.text for a in fig.layout.annotations]
    assert len(browser_fig["data"]) == len(fig.data)
    for i, (b, p) in enumerate(zip(browser_fig["data"], fig.data)):
        for name in fields:
            if name == "color":
                want = p.marker.color if "marker" in p else None
            elif name in ("tickvals", "ticktext"):
                want = p.colorbar[name] if "colorbar" in p else None
            else:
                want = p[name] if name in p else None
            if name == "color" and isinstance(want, str):
                want = [want]
            want = plain(want) if isinstance(want, (list, tuple, np.ndarray)) else want
            assert b[name] == want, (i, name)


def test_head_switch_repaints_in_the_browser_with_the_models_numbers(page, trace):
    from explainer.figures.stages import five_stages_figure

    before = len(page.joins)
    layer = shown(page, STAGES)["meta"]["pa_layer"]
    head = (shown(page, STAGES)["meta"]["pa_head"] + 3) % trace.n_head
    pick(page, "inspect-head", f"head {head}")
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.includes('head {head}:')")
    assert len(page.joins) == before  # nothing went to the server
    assert_same(shown(page, STAGES), five_stages_figure(trace, layer, head))


def test_layer_switch_repaints_the_stages_and_the_head_view(page, trace):
    from explainer.figures.stages import five_stages_figure

    before = len(page.joins)
    meta = shown(page, STAGES)["meta"]
    layer, head = (meta["pa_layer"] + 2) % trace.n_layer, meta["pa_head"]
    pick(page, "inspect-layer", f"layer {layer}")
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.startsWith('Layer {layer},')")
    assert len(page.joins) == before
    assert_same(shown(page, STAGES), five_stages_figure(trace, layer, head))
    lines = page.evaluate(f"""() => [...document.querySelectorAll('#pa-head-view [data-role=line][data-head="{head}"]')]
      .map(l => [+l.dataset.query, +l.dataset.key, +l.dataset.weight])""")
    assert len(lines) == int(trace.mask.sum())
    for q, k, w in lines:
        assert w == float(trace.weights[layer, head, q, k])
    title = page.text_content("#pa-head-view .pa-hv-title")
    assert title.startswith(f"Layer {layer}:")


DRAWN_JS = """(head) => {  // what the five stages show; with a head: pick it first (read before plotly's redraw)
  const gd = document.querySelector('#pa-five-stages .js-plotly-plot');
  if (head !== null) window.paInspect.select({ head, quiet: true });
  return { images: [...gd.querySelectorAll('.heatmaplayer image')].map(im => im.getAttribute('href')),
           title: gd.querySelector('.gtitle').textContent,
           labels: gd._fullData.slice(0, 5).map(t => [...gd.querySelectorAll(`.ycb${t.uid}tick text`)].map(x => x.textContent)),
           pending: head !== null && !gd.layout.title.text.includes(`head ${head}:`) }; }"""


def test_a_head_switch_paints_at_once_what_plotly_then_draws(page, trace):
    """The fast paint (cells, title, colour-bar labels, before plotly's ~130 ms redraw) is plotly's own
    drawing: the same PNG for every panel, byte for byte, and the Python figure's title and tick labels."""
    from explainer.figures.stages import five_stages_figure

    layer = shown(page, STAGES)["meta"]["pa_layer"]
    head = (shown(page, STAGES)["meta"]["pa_head"] + 1) % trace.n_head
    painted = page.evaluate(DRAWN_JS, head)
    assert painted["pending"]  # read before plotly's redraw
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.includes('head {head}:')")
    page.wait_for_timeout(100)
    drawn = page.evaluate(DRAWN_JS, None)
    fig = five_stages_figure(trace, layer, head)
    assert painted["title"] == drawn["title"] == fig.layout.title.text
    assert painted["labels"] == drawn["labels"] == [list(t.colorbar.ticktext) for t in fig.data]
    assert len(painted["images"]) == 5 and painted["images"] == drawn["images"]
    assert_same(shown(page, STAGES), fig)


PRESS_SNAP = """(gd) => ({ images: [...gd.querySelectorAll('.heatmaplayer image')].map(im => im.getAttribute('href')),
  title: gd.querySelector('.gtitle').textContent,
  labels: gd._fullData.slice(0, 5).map(t => [...gd.querySelectorAll(`.ycb${t.uid}tick text`)].map(x => x.textContent)),
  ticks: [...gd.querySelectorAll('.xaxislayer-above text, .yaxislayer-above text')].map(x =>
    [x.parentNode.getAttribute('class'), x.textContent, x.getAttribute('transform')]),
  held: gd.layout.title.text })"""
# records the drawing right after each paint of a new figure (null: left to plotly)
WATCH_PRESS_JS = f"""(sel) => {{ const gd = document.querySelector(sel), snap = {PRESS_SNAP};
  const paint = window.__paPaint = window.__paPaint || window.paInspect.paintFigure;
  window.__paPress = [];
  window.paInspect.paintFigure = (g, fig) => {{ const ok = paint(g, fig); if (g === gd) window.__paPress.push(ok ? snap(gd) : null);
                                                return ok; }}; }}"""


def test_a_press_paints_at_once_what_plotly_then_draws(page, trace):
    """A new prompt's five stages are painted into the last drawing (cells, token tick labels, colour-bar labels,
    title) before plotly's full redraw, which then leaves them exactly as painted: the same PNG for every panel,
    the same labels in the same places. A press that changes more (the causal mask: another panel title) is drawn
    by plotly at once."""
    from explainer.figures.stages import five_stages_figure

    prompt = PROMPT[:-5]  # fewer tokens: the token labels move, and some go
    errors = []

    def on_error(error):
        errors.append(error)
    page.on("pageerror", on_error)
    page.evaluate(WATCH_PRESS_JS, STAGES)
    try:
        press(page, prompt)
        page.wait_for_timeout(100)
        painted = page.evaluate("window.__paPress")
        drawn = page.evaluate(f"({PRESS_SNAP})(document.querySelector('{STAGES}'))")
        meta = shown(page, STAGES)["meta"]
        fig = five_stages_figure(default_trace(prompt), meta["pa_layer"], meta["pa_head"])
        assert_same(shown(page, STAGES), fig)
        page.evaluate(WATCH_PRESS_JS, STAGES)
        page.click("#inspect-causal input")
        page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.includes('causal mask off')")
        unpainted = page.evaluate("window.__paPress")
    finally:
        page.evaluate("() => { window.paInspect.paintFigure = window.__paPaint; }")
    page.click("#inspect-causal input")
    page.wait_for_function(f"!document.querySelector('{STAGES}').layout.title.text.includes('causal mask')")
    press(page, PROMPT)  # while the last press's rest may still be running: the views end on this prompt
    page.remove_listener("pageerror", on_error)
    page.wait_for_function(f"(() => {{ const m = window.paInspect.shows('qk-products'); "
                           f"return m && m.pa_trace === window.paInspect.id; }})()", timeout=20_000)
    assert len(painted) == 1 and painted[0] is not None, painted
    fast = painted[0]
    assert f"on {len(prompt)} tokens" not in fast["held"]  # read before plotly held the new figure
    assert fast["title"] == drawn["title"] == fig.layout.title.text
    assert fast["labels"] == drawn["labels"] == [list(t.colorbar.ticktext) for t in fig.data]
    assert fast["ticks"] == drawn["ticks"]
    for axis, cls in (("xaxis", "xtick"), ("xaxis4", "x4tick"), ("yaxis", "ytick")):
        assert [t for c, t, _ in drawn["ticks"] if c == cls] == list(fig.layout[axis].ticktext)
    assert len(fast["images"]) == 5 and fast["images"] == drawn["images"]
    assert unpainted == [None]
    assert not errors  # plotly's redraw over the painted (and added) tick labels raised nothing


@pytest.mark.parametrize("query,key", [(20, 3), (7, 30)])  # (7, 30): a key after the query, masked
def test_query_and_key_switches_repaint_the_qk_view(page, trace, query, key):
    from explainer.figures.neuron import qk_products_figure

    before = len(page.joins)
    pick(page, "inspect-key", f"#{key} '{trace.tokens[key]}'")
    pick(page, "inspect-query", f"#{query} '{trace.tokens[query]}'")
    page.wait_for_function(f"document.querySelector('{QK}').layout.title.text.includes('query #{query} ')"
                           f" && document.querySelector('{QK}').layout.title.text.includes('key #{key} ')")
    assert len(page.joins) == before
    meta = shown(page, STAGES)["meta"]
    fig = qk_products_figure(trace, meta["pa_layer"], meta["pa_head"], query, key)
    assert_same(shown(page, QK), fig, fields=("z", "zmin", "zmax", "y", "text", "customdata", "color"))
    if key > query:
        assert "masked" in shown(page, QK)["title"]


QK_SNAP = """(gd) => ({ image: gd.querySelector('.heatmaplayer image').getAttribute('href'),
  title: gd.querySelector('.gtitle').textContent,
  labels: [...gd.querySelectorAll('.subplot.xy .yaxislayer-above text')].map(x => x.textContent).sort(),
  notes: [...gd.querySelectorAll('.annotation-text')].map(x => x.textContent),
  bars: [...gd.querySelectorAll('.barlayer .point path')].map(p => [p.getAttribute('d'), p.style.fill]),
  values: [...gd.querySelectorAll('.barlayer .point text')].map(x => [x.textContent,
    ...(/translate\\(([^,]+),([^)]+)\\)/.exec(x.getAttribute('transform')) || []).slice(1).map(Number)]),
  held: gd.layout.title.text })"""
QK_PAINT_JS = f"""([sel, query, key]) => {{ const gd = document.querySelector(sel);
  window.paInspect.select({{ query, key, quiet: true }});
  return ({QK_SNAP})(gd); }}"""


@pytest.mark.parametrize("query,key", [(30, 30), (7, 30), (36, 2)])  # a masked key; both step bars turning round
def test_a_query_switch_paints_at_once_what_plotly_then_draws(page, trace, query, key):
    """Another query or key of the same head is painted into the q·k view (cells, bars on the head's fixed axes,
    the values printed on them, labels, title) before plotly's redraw, which leaves it as painted."""
    from explainer.figures.neuron import qk_products_figure

    painted = page.evaluate(QK_PAINT_JS, [QK, query, key])
    assert f"query #{query} " not in painted["held"]  # read before plotly held it
    page.wait_for_function(f"document.querySelector('{QK}').layout.title.text.includes('query #{query} ')"
                           f" && document.querySelector('{QK}').layout.title.text.includes('key #{key} ')")
    page.wait_for_timeout(100)
    drawn = page.evaluate(f"({QK_SNAP})(document.querySelector('{QK}'))")
    meta = shown(page, STAGES)["meta"]
    fig = qk_products_figure(trace, meta["pa_layer"], meta["pa_head"], query, key)
    assert painted["title"] == drawn["title"] == fig.layout.title.text
    assert painted["notes"] == drawn["notes"] == [a.text for a in fig.layout.annotations]
    assert painted["labels"] == drawn["labels"] == sorted(fig.data[0].y)
    assert painted["image"] == drawn["image"]
    assert painted["bars"] == drawn["bars"]
    assert [v[0] for v in painted["values"]] == [v[0] for v in drawn["values"]] == list(fig.data[2].text)
    for (_, px, py), (_, dx, dy) in zip(painted["values"], drawn["values"]):  # plotly centres each on its box
        assert abs(px - dx) < 0.05 and abs(py - dy) < 0.05, (painted["values"], drawn["values"])
    assert_same(shown(page, QK), fig, fields=("z", "zmin", "zmax", "y", "text", "customdata", "color", "ticktext"))


def test_a_layer_not_sent_comes_from_the_server(page, trace, monkeypatch):
    """A model too big for the browser's share gets only the selected layer; another is one round trip."""
    from explainer.figures.stages import five_stages_figure
    from explainer.ui import limits

    monkeypatch.setattr(limits, "MAX_CLIENT_TRACE_BYTES", 1)  # the app runs in this process
    press(page, PROMPT[:-1])
    assert page.evaluate("window.paInspect.select({ layer: 99, quiet: true })") is False
    meta = shown(page, STAGES)["meta"]
    layer = (meta["pa_layer"] + 1) % trace.n_layer
    before = len(page.joins)
    pick(page, "inspect-layer", f"layer {layer}")
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.startsWith('Layer {layer},')")
    assert len(page.joins) == before + 1
    short = default_trace(PROMPT[:-1])
    assert_same(shown(page, STAGES), five_stages_figure(short, layer, meta["pa_head"]))
    page.wait_for_function(READY)  # the store of that layer arrived with it: its heads switch here again
    head = (meta["pa_head"] + 1) % trace.n_head
    pick(page, "inspect-head", f"head {head}")
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.includes('head {head}:')")
    assert len(page.joins) == before + 1
    assert_same(shown(page, STAGES), five_stages_figure(short, layer, head))


BUSY_JS = """async () => { document.querySelector('#pa-inspect-btn').click();
  await new Promise(r => setTimeout(r, 10));
  const host = document.getElementById('pa-five-stages');
  return host.classList.contains('pa-busy') && getComputedStyle(host.querySelector('.pa-plot-label'), '::after').content; }"""
IDLE = "!document.getElementById('pa-five-stages').classList.contains('pa-busy')"


def test_a_press_says_it_is_updating_until_its_figure_is_drawn(page, trace):
    """The views update in place (no loading overlays): the five stages' label says "updating" from the press
    until the new figure is drawn, and also stops saying it when the press fails."""
    page.fill("#pa-prompt textarea", PROMPT + "x")
    assert "updating" in page.evaluate(BUSY_JS)
    page.wait_for_function(f"document.querySelector('{STAGES}').layout.title.text.includes('on {len(PROMPT) + 1} tokens')")
    page.wait_for_function(IDLE)
    assert "updating" in page.evaluate(BUSY_JS)  # the same prompt again: the same figure, nothing to redraw
    page.wait_for_function(IDLE)
    page.fill("#pa-prompt textarea", PROMPT + "0")  # '0' is not in shakespeare-char's vocabulary: an error
    assert "updating" in page.evaluate(BUSY_JS)
    page.wait_for_function(IDLE)
    assert f"on {len(PROMPT) + 1} tokens" in page.evaluate(f"document.querySelector('{STAGES}').layout.title.text")
    # the error's message does not sit over the button: the visitor fixes the prompt and presses again at once
    boxes = page.evaluate("""() => ['[data-testid=toast-body]', '#pa-inspect-btn'].map(s => {
      const b = document.querySelector(s).getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })""")
    (tl, tt, tr, tb), (bl, bt, br, bb) = boxes
    assert tr <= bl or br <= tl or tb <= bt or bb <= tt, boxes
    press(page, PROMPT)


ORDER_JS = """async ([sel, n]) => { const log = [], t0 = performance.now();
  const f0 = window.fetch;
  window.fetch = (...a) => { if (String(a[0] && a[0].url || a[0]).includes('/queue/join')) log.push(['join', performance.now() - t0]);
                             return f0(...a); };
  const frame = () => { const title = document.querySelector(`${sel} .gtitle`);  // as drawn (the press's paint)
    if (title && title.textContent.includes(`on ${n} tokens`)) log.push(['painted', performance.now() - t0]);
    else requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  document.querySelector('#pa-inspect-btn').click();
  while (log.filter(e => e[0] === 'join').length < 2) await new Promise(r => setTimeout(r, 10));
  window.fetch = f0;
  return log; }"""


def test_a_press_shows_its_five_stages_before_the_rest_of_it_starts(page, trace):
    """The frame that paints the new five stages comes before the request for the rest of the press (grid,
    head view, q·k, next token): Gradio would start that request, and its preparation, in the same task that
    drew the figure, holding the frame back."""
    prompt = PROMPT[:-2]
    page.fill("#pa-prompt textarea", prompt)
    log = page.evaluate(ORDER_JS, [STAGES, len(prompt)])
    kinds = [k for k, _ in log]
    assert kinds[:3] == ["join", "painted", "join"], log
    page.wait_for_function(READY)
    press(page, PROMPT)


def test_a_press_while_the_last_ones_rest_runs_ends_on_its_own_prompt(page, trace, monkeypatch):
    """Two quick presses: the second one's grid, head view, q·k and next-token chart come after the first one's
    (Gradio's default trigger mode dropped them while the first one's were still computing, and the views stayed
    on the first prompt)."""
    import threading

    from explainer.ui import inspect_views

    rest, slowed = inspect_views.rest, threading.Event()

    def slow_once(*args, **kwargs):  # the first press's rest takes 1.5 s
        if not slowed.is_set():
            slowed.set()
            threading.Event().wait(1.5)
        return rest(*args, **kwargs)
    monkeypatch.setattr(inspect_views, "rest", slow_once)  # the app runs in this process
    first, second = PROMPT[:-3], PROMPT[:-4]  # '... wherefore ' and '... wherefore'
    page.fill("#pa-prompt textarea", first)
    page.click("#pa-inspect-btn")
    assert slowed.wait(20)
    press(page, second)
    page.wait_for_function(f"(() => {{ const m = window.paInspect.shows('qk-products'); "
                           f"return m && m.pa_trace === window.paInspect.id; }})()", timeout=20_000)
    assert shown(page, STAGES)["meta"]["pa_trace"] == page.evaluate("window.paInspect.id")
    dist = page.evaluate("document.querySelector('#next-token .js-plotly-plot').layout.title.text")
    assert "wherefore':" in dist, dist
    press(page, PROMPT)
