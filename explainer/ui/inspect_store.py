"""The trace in the browser: head, layer, query and key switches repaint without a round trip.

After a press, ``store_value`` sends the trace's own arrays (q, k, scores, scaled, weights,
out) as base64 float32, every layer while they fit in ``limits.MAX_CLIENT_TRACE_BYTES``
(else the selected layer only), with what the figures take from Python: the five panels'
colour ranges, tick labels and titles (``five_stages_panels``), the head view's titles and
colours and the q·k view's colours. The script below then redraws the five stages, the head
view and the q·k products in place: a head or layer switch first paints the five stages' cells,
title and colour-bar labels straight into plotly's drawing (``paintStages``; on a phone, whose
titles are wrapped, it redraws at once instead), then ``Plotly.react`` brings plotly's own state
to the same figure. A query or key switch paints the q·k view in place the same way
(``paint_js.paintQk``: its axes are fixed per head, ``figures.neuron.qk_ranges``, sent here too). It only moves the model's numbers into the figures and formats them as the
Python figures do (browser tests compare the two, pixel for pixel for the fast paint).
A layer that was not sent, or a store older than the figures, goes to the server through
the hidden ``#pa-redraw`` box (one round trip, the old path).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

import gradio as gr

from explainer.figures.common import MASK_GREY, scale_label, toggles_label
from explainer.figures.heads import HEAD_COLORS, b64_bits, b64_f32, head_view_title
from explainer.figures.neuron import CHOSEN, OTHER, qk_ranges
from explainer.figures.stages import five_stages_panels, five_stages_title

from . import limits, paint_js

ELEM_ID = "pa-inspect-store"
REDRAW_ID = "pa-redraw"
ARRAYS = ("q", "k", "scores", "scaled", "weights", "out")
POSITIVE, NEGATIVE = "#d6604d", "#4393c3"  # the q·k products' bar colours (explainer.figures.neuron)


def trace_id(key: tuple) -> str:
    """A short name for one cached trace (model version, prompt, toggles): the figures carry it in meta."""
    return hashlib.sha1(repr(key).encode()).hexdigest()[:16]


def client_layers(tr, layer: int) -> list[int]:
    """Every layer if the arrays fit the cap, else only the selected one."""
    T, D, H = tr.n_tokens, tr.head_dim, tr.n_head
    per_layer = 4 * H * (3 * T * T + 3 * T * D)
    if per_layer * tr.n_layer <= limits.MAX_CLIENT_TRACE_BYTES:
        return list(range(tr.n_layer))
    return [int(layer)]


def store_value(tr, layer: int, ui_id: str) -> str:
    """The JSON the store component holds ('' for a model without attention)."""
    if tr.n_layer == 0:
        return ""
    layers = client_layers(tr, layer)
    T = tr.n_tokens
    masked_same = bool(np.array_equal(tr.masked[:, :, tr.mask], tr.scaled[:, :, tr.mask]))
    names = ARRAYS if masked_same else (*ARRAYS, "masked")
    stages = {}
    for lay in layers:
        stages[lay] = []
        for h in range(tr.n_head):
            panels = five_stages_panels(tr, lay, h)
            stages[lay].append(dict(title=five_stages_title(tr, lay, h), zmin=[float(p["zmin"]) for p in panels],
                                    zmax=[float(p["zmax"]) for p in panels],
                                    ticks=[{k: list(v) for k, v in p["ticks"].items()} for p in panels]))
    value = dict(
        id=ui_id, T=T, D=tr.head_dim, L=tr.n_layer, H=tr.n_head, layers=layers, tokens=list(tr.tokens),
        mask=b64_bits(tr.mask),
        masked_same=masked_same, arrays={n: {lay: b64_f32(getattr(tr, n)[lay]) for lay in layers} for n in names},
        stages=stages, head_view=dict(titles={lay: head_view_title(tr, lay) for lay in layers},
                                      colors=[HEAD_COLORS[h % len(HEAD_COLORS)] for h in range(tr.n_head)]),
        qk=dict(chosen=CHOSEN, other=OTHER, grey=MASK_GREY, positive=POSITIVE, negative=NEGATIVE,
                scale_label=scale_label(tr), toggles=toggles_label(tr),
                ranges={lay: [qk_ranges(tr, lay, h) for h in range(tr.n_head)] for lay in layers}),
    )
    return json.dumps(value, separators=(",", ":"))


JS = paint_js.JS + r"""
const bits = (b64, n) => { const s = atob(b64), out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (s.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1; return out; };
const plot = (id) => document.querySelector(`#${id} .js-plotly-plot`);
const num = (x) => { const m = /\d+/.exec(String(x ?? '')); return m ? +m[0] : null; };
let S = null;

function arr(name, l) {  // (H, T, X) float32 of layer l, decoded once
  const key = name + l;
  if (!(key in S.cache)) { const b = S.arrays[name] && S.arrays[name][l]; S.cache[key] = b ? f32(b) : null; }
  return S.cache[key];
}
const fmt = (x) => x.toFixed(4);

function stagesZ(l, h) {
  const T = S.T, D = S.D, tt = h * T * T, td = h * T * D;
  const masked = S.masked_same ? arr('scaled', l) : arr('masked', l);
  return [rows(arr('scores', l), tt, T, T), rows(arr('scaled', l), tt, T, T), rows(masked, tt, T, T, S.mask),
          rows(arr('weights', l), tt, T, T), rows(arr('out', l), td, T, D)];
}

// which layer / head / query / key a figure shows: its meta when it came from the server, else what this
// script drew into it (kept on the graph div: a change of layout.meta would cost plotly a full redraw)
function shows(gd) {
  const m = gd && gd.layout && gd.layout.meta;
  if (!m) return null;
  return gd.__paShows && gd.__paShows.data === gd.data ? gd.__paShows : m;
}
function react(gd, data, layout, what) {  // redraw in place; the page's hooks (inspect_page) need not run again
  const stacked = gd.__paStacked === gd.data, outlined = gd.__paOutlined === gd.data, before = shows(gd);
  window.Plotly.react(gd, data, layout, gd._context);
  gd.__paShows = { ...before, ...what, data: gd.data };
  if (stacked) gd.__paStacked = gd.data;
  if (outlined) gd.__paOutlined = gd.data;
}

function drawStages(gd, l, h, z) {  // the exact figure for (l, h): plotly's own state, hover included
  const st = S.stages[l][h];
  z = z || stagesZ(l, h);
  const data = gd.data.map((t, i) => i < 5 ? { ...t, z: z[i], zmin: st.zmin[i], zmax: st.zmax[i],
                                               colorbar: { ...t.colorbar, ...st.ticks[i] } } : t);
  const layout = { ...gd.layout, title: { ...gd.layout.title, text: st.title } };
  react(gd, data, layout, { pa_layer: l, pa_head: h });
}

// The fast paint of a switch (paint_js): the cells, title and colour-bar labels first; drawStages then
// brings plotly's state (hover, downloads) to the same figure a frame later
function paintStages(gd, l, h) {  // the z painted; null when the figure is not plotly's five-stage drawing
  const st = S.stages[l][h], full = gd._fullData || [];
  const images = full.slice(0, 5).map(t => heatmapImage(gd, t)), labels = full.slice(0, 5).map(t => barLabels(gd, t));
  const title = gd.querySelector('.gtitle');
  if (full.length < 5 || images.some(im => !im) || !title || title.querySelector('tspan') ||
      labels.some((ls, i) => ls.length !== st.ticks[i].ticktext.length)) return null;
  const z = stagesZ(l, h);
  images.forEach((im, i) => im.setAttribute('href', pixels(z[i], colorOf(full[i].colorscale, st.zmin[i], st.zmax[i]))));
  labels.forEach((ls, i) => setLabels(ls, st.ticks[i].ticktext));
  setText(title, st.title);
  gd.__paShows = { ...shows(gd), pa_layer: l, pa_head: h, data: gd.data };
  return z;
}

function headView(l) {  // what explainer.figures.heads.head_view_data holds, decoded
  const w = arr('weights', l), T = S.T;
  return { layer: l, tokens: S.tokens, n_tokens: T, colors: S.head_view.colors, mask: S.mask,
           w: S.head_view.colors.map((_, h) => w.subarray(h * T * T, (h + 1) * T * T)),
           title: S.head_view.titles[l], trace: S.id };
}

let qkDraws = 0;
function drawQk(gd, l, h, i, j) {  // explainer.figures.neuron.qk_products_figure, for another pair
  const T = S.T, D = S.D, c = S.qk, qa = arr('q', l), ka = arr('k', l), tt = h * T * T;
  const q = Array.from(qa.subarray((h * T + i) * D, (h * T + i + 1) * D));
  const k = Array.from(ka.subarray((h * T + j) * D, (h * T + j + 1) * D));
  const products = q.map((x, d) => Math.fround(x * k[d]));
  const sum = products.reduce((a, b) => a + b, 0);
  const score = arr('scores', l)[tt + i * T + j], scaled = arr('scaled', l)[tt + i * T + j];
  const row = Array.from(arr('weights', l).subarray(tt + i * T, tt + (i + 1) * T));
  const allowed = (n) => !!S.mask[i * T + n];
  const r = c.ranges[l][h];  // the head's fixed scales (explainer.figures.neuron.qk_ranges)
  const qName = `query #${i} '${S.tokens[i]}'`, kName = `key #${j} '${S.tokens[j]}'`;
  const verdict = allowed(j) ? `weight of this key = ${fmt(row[j])}` : 'this key is masked for this query: −∞ → weight exactly 0';
  const data = gd.data.map(t => ({ ...t }));
  Object.assign(data[0], { z: [q, k], y: [qName, kName], zmin: -r.limit, zmax: r.limit,
                           colorbar: { ...data[0].colorbar, ...r.ticks } });
  Object.assign(data[1], { y: products, customdata: q.map((x, d) => [x, k[d]]),
                           marker: { ...data[1].marker, color: products.map(p => p >= 0 ? c.positive : c.negative) } });
  Object.assign(data[2], { y: [score, scaled], text: [fmt(score), fmt(scaled)] });
  Object.assign(data[3], { y: row, customdata: S.tokens.map((t, n) => `#${n} '${t}'` + (allowed(n) ? '' : ' (masked)')),
                           marker: { ...data[3].marker,
                                     color: row.map((_, n) => n === j ? c.chosen : (allowed(n) ? c.other : c.grey)) } });
  const annotations = (gd.layout.annotations || []).map(a => ({ ...a }));
  annotations[0].text = `q (${qName}) and k (${kName}), channel by channel`;
  annotations[1].text = `elementwise products q_d·k_d (sum = ${fmt(sum)})`;
  annotations[3].text = `softmax row of query #${i}: ${verdict}`;
  const title = `Layer ${l}, head ${h}: how ${qName} scores ${kName} (QKᵀ = ${fmt(score)}, scaled = ${fmt(scaled)}, ` +
    (allowed(j) ? `weight = ${fmt(row[j])})` : 'masked: −∞ before softmax, weight exactly 0)') + c.toggles;
  const layout = { ...gd.layout, annotations, title: { ...gd.layout.title, text: title },
                  yaxis2: { ...gd.layout.yaxis2, range: r.products }, yaxis3: { ...gd.layout.yaxis3, range: r.steps } };
  const what = { pa_layer: l, pa_head: h, pa_query: i, pa_key: j }, before = shows(gd), drawn = gd.data, mine = ++qkDraws;
  // another pair of the same head: painted in place at once (paint_js), plotly's own drawing a frame later
  if (before.pa_layer === l && before.pa_head === h && paintQk(gd, data, layout)) {
    gd.__paShows = { ...before, ...what, data: gd.data };
    requestAnimationFrame(() => setTimeout(() => { if (mine === qkDraws && gd.data === drawn) react(gd, data, layout, what); }, 0));
  } else react(gd, data, layout, what);
}

function redraw(l, h, q, k) {  // the server's path: a layer this store does not hold, or a newer trace
  const box = document.querySelector('#pa-redraw textarea, #pa-redraw input');
  if (!box) return;
  box.value = `${l},${h},${q},${k},${Date.now()}`;
  box.dispatchEvent(new Event('input', { bubbles: true }));
}

let ticket = 0, painted = 0, restAt = 0;  // restAt: the ticket whose views wait for a frame
function select(req) {  // {layer, head, query, key}, any of them; true when drawn here
  const gs = plot('pa-five-stages'), gq = plot('qk-products');
  const ms = shows(gs), mq = shows(gq);
  const pick = (name, fallback) => { const v = num(req[name]); return v === null ? fallback : v; };
  const l = pick('layer', ms ? ms.pa_layer : 0), h = pick('head', ms ? ms.pa_head : 0);
  const q = pick('query', mq ? mq.pa_query : 0), k = pick('key', mq ? mq.pa_key : 0);
  const here = S && window.Plotly && ms && ms.pa_layer !== undefined && ms.pa_trace === S.id &&
               mq && mq.pa_query !== undefined && mq.pa_trace === S.id && S.layers.includes(l) && h < S.H;
  if (!here) { if (!req.quiet) redraw(l, h, q, k); return false; }
  const qq = Math.min(q, S.T - 1), kk = Math.min(k, S.T - 1), mine = ++ticket;
  const rest = () => {  // the head view and the q·k products, from the state of that moment
    if (mine !== ticket) return;  // a newer selection draws them
    restAt = 0;
    const m = shows(gq);
    if (window.paHeadView) window.paHeadView.show(headView(l), h);
    if (l !== m.pa_layer || h !== m.pa_head || qq !== m.pa_query || kk !== m.pa_key) drawQk(gq, l, h, qq, kk);
  };
  if (l !== ms.pa_layer || h !== ms.pa_head) {
    // plotly's own redraw follows this paint unless a later paint or a server figure came first (a later
    // select of the same pick finds the stages painted and leaves it)
    const drawn = gs.data, z = paintStages(gs, l, h), paint = ++painted;
    restAt = mine;
    const exact = () => { if (paint === painted && gs.data === drawn) drawStages(gs, l, h, z); };
    if (!z) drawStages(gs, l, h);
    requestAnimationFrame(() => setTimeout(() => {  // the five stages are on screen: the other views, then
      rest();                                       // plotly's own redraw of the same five stages
      if (z) requestAnimationFrame(() => setTimeout(exact, 0));
    }, 0));
  } else if (restAt) {  // a paint's other views are still to come (e.g. Gradio's own select of the same pick):
    restAt = mine;       // they come after its frame, never inside this input event
    requestAnimationFrame(() => setTimeout(rest, 0));
  } else rest();
  return true;
}

// a pick in one of the selectors is drawn on the pointer's press, before Gradio's own select event
// (which arrives ~100 ms later and finds the views already showing it)
const SELECTORS = { 'inspect-layer': 'layer', 'inspect-head': 'head', 'inspect-query': 'query', 'inspect-key': 'key' };
document.addEventListener('mousedown', (e) => {
  const opt = e.target.closest && e.target.closest('[role=option]');
  const box = opt && opt.closest(Object.keys(SELECTORS).map(id => '#' + id).join(', '));
  const v = box && num(opt.getAttribute('aria-label') || opt.textContent);
  if (box && v !== null) select({ [SELECTORS[box.id]]: v, quiet: true });
}, { capture: true });

function load() {
  if (!props.value) { S = null; return; }
  const v = JSON.parse(props.value);
  S = { ...v, mask: bits(v.mask, v.T * v.T), cache: {} };
}
window.paInspect = {
  select, get id() { return S && S.id; }, shows: (id) => { const s = shows(plot(id)); return s && { ...s, data: undefined }; },
  pickHead(l, h) { return select({ layer: l, head: h, quiet: true }); },
  paintFigure,
};
load();
watch('value', load);
"""


def store_html() -> gr.HTML:
    """The (hidden) store: its value is ``store_value(...)``; its script defines ``window.paInspect``."""
    return gr.HTML("", html_template="<div></div>", js_on_load=JS, elem_id=ELEM_ID, visible="hidden")
