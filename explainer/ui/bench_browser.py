"""How fast Inspect repaints in a real browser: ``python -m explainer.ui.bench_browser``.

A benchmark, not a test: it launches the app on a loopback port, drives Debian's chromium
through Playwright and prints medians of
  * press Inspect -> the five stages repainted for a new prompt (7 prompts of 20-60 characters),
  * head / layer / query selector change -> the views that depend on it repainted,
and the bytes the page read from the queue's streams per update, a press's all three steps
included (a wrapped ``fetch`` tees each response). Each time runs from the browser's first
``pointerdown`` of the action to the first animation frame that finds the figure in the new
state on screen (cells, labels and title, which the page paints in place: ``paint_js``), so it
includes the request, the server, the transfer, ``JSON.parse`` and the painting; and again to
when plotly's own state holds it (its redraw of the same figure, a frame later: hover,
downloads). Other jobs on the machine, and the host's speed from one hour to the next, move
these numbers (the same code measured 264-372 ms for a press within one evening): quote the
load and the quartiles with them, and compare versions side by side in one sitting.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PROMPTS = [  # distinct lengths (20..60 characters), so each press changes the token count
    "ROMEO: But soft, wha",
    "JULIET: O Romeo, Romeo! wherefo",
    "First Citizen: Before we proceed any f",
    "KING RICHARD II: Now, my lord, what news of t",
    "MENENIUS: I tell you, friends, most charitable car",
    "LADY MACBETH: Out, damned spot! out, I say! One; two: why",
    "HAMLET: To be, or not to be, that is the question: Whether ",
]
# the app's element ids (the old ones too, so the same script measured the code before the change)
FIVE_STAGES = "#pa-five-stages .js-plotly-plot, #five-stages .js-plotly-plot"
QK = "#qk-products .js-plotly-plot"
PROMPT_BOX = "#pa-prompt textarea, #inspect-prompt textarea"
INSPECT_BTN = "#pa-inspect-btn, #inspect-go"

# From the action's first pointerdown, a check on every animation frame records the first frame whose
# callbacks find the figure in the asked state (the frame that paints it), one time per condition. A check
# run by polling from Playwright instead would also count whatever long task came after that frame.
ARM_JS = """([sel, conds]) => { window.__paT0 = null; window.__paT = conds.map(() => null);
  const tests = conds.map(c => new Function('gd', 'return ' + c));
  const ok = (i) => { const gd = document.querySelector(sel); try { return !!(gd && gd.layout && tests[i](gd)); }
                      catch (e) { return false; } };
  const frame = () => { const now = performance.now(); let left = false;
    conds.forEach((_, i) => { if (window.__paT[i] === null) { if (ok(i)) window.__paT[i] = now - window.__paT0;
                                                             else left = true; } });
    if (left) requestAnimationFrame(frame); };
  addEventListener('pointerdown', () => { window.__paT0 = performance.now(); requestAnimationFrame(frame); },
                   {capture: true, once: true}); }"""
WAIT_JS = """async () => { while (!window.__paT || window.__paT.some(t => t === null)) await new Promise(r => setTimeout(r, 5));
  return window.__paT; }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _title(cond: str) -> str:
    return f"(gd.layout.title && (gd.layout.title.text || gd.layout.title) || '').{cond}"


def _painted(cond: str) -> str:
    """The title as drawn on screen (the fast paint writes it before plotly's state holds it)."""
    return f"((gd.querySelector('.gtitle') || {{}}).textContent || '').{cond}"


# counts the bytes the page reads from Gradio's queue streams (every update comes down one)
COUNT_JS = """(() => { window.__paBytes = 0; const fetch0 = window.fetch;
  window.fetch = async (...args) => { const r = await fetch0(...args);
    const url = String(args[0] && args[0].url || args[0]);
    if (!url.includes('/queue/') || !r.body) return r;
    const [mine, theirs] = r.body.tee(), reader = mine.getReader();
    (async () => { for (;;) { const { done, value } = await reader.read(); if (done) break;
                              window.__paBytes += value.byteLength; } })();
    return new Response(theirs, { status: r.status, statusText: r.statusText, headers: r.headers }); }; })()"""


class Meter:
    """Bytes of the queue's responses as the page reads them (a wrapped ``fetch``)."""

    def __init__(self, page):
        self.page = page

    def take(self) -> int:
        return int(self.page.evaluate("(() => { const n = window.__paBytes; window.__paBytes = 0; return n; })()"))


# a press has ended when the browser holds its trace (the store, the press's last step) and every view shows it
SETTLED_JS = """() => { const p = window.paInspect, s = p && p.shows('pa-five-stages'), q = p && p.shows('qk-products');
  return !!(p && p.id && s && q && s.pa_trace === p.id && q.pa_trace === p.id); }"""


def _timed(page, meter, steps, sel: str, cond: str, settle_ms: int = 250, exact: str | None = None,
           settled: str | None = None):
    """(ms until ``cond`` holds on screen, bytes read) and, with ``exact``, the ms until plotly's own state
    holds it too (a switch paints the five stages first and lets plotly redraw them a frame later). The bytes
    are counted until ``settled`` holds (the whole update arrived), then ``settle_ms`` more."""
    prepare, act = steps
    prepare()
    page.evaluate(ARM_JS, [sel, [cond] + ([exact] if exact else [])])
    meter.take()
    act()
    times = page.evaluate(WAIT_JS)
    if settled:
        page.wait_for_function(settled)
    page.wait_for_timeout(settle_ms)  # let the rest of the same update arrive before counting bytes
    return times[0], meter.take(), times[1] if exact else None


def _pick(page, selector_id: str, option):
    def prepare():
        page.click(f"#{selector_id} input")
        page.get_by_role("option", name=option).first.wait_for()

    def act():
        page.get_by_role("option", name=option).first.click()
    return prepare, act


def _press(page, prompt: str):
    def prepare():
        page.fill(PROMPT_BOX, prompt)

    def act():
        page.click(INSPECT_BTN)
    return prepare, act


def run(url: str, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[tuple[float, int]]] = {"press": [], "head": [], "layer": [], "query": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(120_000)
        page.add_init_script(COUNT_JS)
        page.goto(url)
        meter = Meter(page)
        page.get_by_role("tab", name="Inspect").click()
        page.wait_for_function(f"(() => {{ const gd = document.querySelector({FIVE_STAGES!r}); "
                               f"return gd && gd.data && gd.data.length > 0; }})()")
        page.wait_for_timeout(1000)
        for r in range(rounds):
            for i, prompt in enumerate(PROMPTS):
                n = len(prompt)
                results["press"].append(_timed(page, meter, _press(page, prompt), FIVE_STAGES,
                                               _painted(f"includes('on {n} tokens')"),
                                               exact=_title(f"includes('on {n} tokens')"), settled=SETTLED_JS))
                head, layer = (i + r) % 6, (i + 2 * r + 1) % 6
                results["head"].append(_timed(page, meter, _pick(page, "inspect-head", re.compile(f"^head {head}$")), FIVE_STAGES,
                                              _painted(f"includes('head {head}:')"),
                                              exact=_title(f"includes('head {head}:')")))
                results["layer"].append(_timed(page, meter, _pick(page, "inspect-layer", re.compile(f"^layer {layer}$")),
                                               FIVE_STAGES, _painted(f"startsWith('Layer {layer},')"),
                                               exact=_title(f"startsWith('Layer {layer},')")))
                q = (7 * i + r) % n
                option = re.compile(rf"^#{q} ")  # token strings show whitespace as visible marks
                results["query"].append(_timed(page, meter, _pick(page, "inspect-query", option), QK,
                                               _painted(f"includes('query #{q} ')"),
                                               exact=_title(f"includes('query #{q} ')")))
        browser.close()
    out = {}
    for name, v in results.items():
        ms = [m for m, _, _ in v]
        quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
        out[name] = dict(median_ms=round(statistics.median(ms), 1), p25_ms=round(quartiles[0], 1),
                         p75_ms=round(quartiles[2], 1), median_bytes=int(statistics.median(b for _, b, _ in v)),
                         n=len(v))
        if all(f is not None for _, _, f in v):
            out[name]["median_exact_ms"] = round(statistics.median(f for _, _, f in v), 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the 7 prompts")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from . import build_demo, launch_kwargs

    demo = build_demo()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True,
                **launch_kwargs())
    try:
        out = run(demo.local_url, args.rounds)
    finally:
        demo.close()
    load = os.getloadavg()[0]
    print(json.dumps({"load_1min": round(load, 2), **out}))
    for name, m in out.items():
        exact = f", plotly's own state {m['median_exact_ms']:.1f} ms" if "median_exact_ms" in m else ""
        print(f"{name:>6}: median {m['median_ms']:7.1f} ms on screen (quartiles {m['p25_ms']:.0f}-{m['p75_ms']:.0f})"
              f"{exact}, {m['median_bytes']:>8,} bytes per update (n={m['n']})")


if __name__ == "__main__":
    main()
