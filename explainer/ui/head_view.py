"""The interactive head view: BertViz's lines from each query to each key, drawn in the browser.

A ``gr.HTML`` whose value is ``explainer.figures.heads.head_view_data`` as JSON; the SVG is
built here in plain JavaScript (no CDN). Hover a token to see only its lines and their
weights, click to lock (click again or Escape releases), Tab / arrow keys move between
tokens. Locking a query triggers the component's ``select`` event with ``{"query": i}``;
hovering or locking outlines that row in the five stages without a round trip.
``window.paHeadView.selectHead(h)`` changes the emphasised head (the head selector calls it).
"""
from __future__ import annotations

import json

import gradio as gr

ELEM_ID = "pa-head-view"

TEMPLATE = """<div class="pa-hv"><div class="pa-hv-title"></div><div class="pa-hv-heads"></div>
<div class="pa-hv-status" aria-live="polite"></div><svg class="pa-hv-svg" role="img"></svg>
<div class="pa-hv-legend"></div></div>"""

CSS = """
.pa-hv { font-family: var(--font); max-width: 100%; overflow: hidden; }
.pa-hv-title { font-weight: 600; margin: 4px 0; }
.pa-hv-heads button { border: 2px solid var(--c); border-radius: 6px; padding: 2px 8px; margin: 2px;
  background: transparent; color: var(--c); cursor: pointer; font-size: 0.85em; min-height: 32px; }
.pa-hv-heads button.on { background: var(--c); color: white; }
.pa-hv-heads button.primary { outline: 2px solid #111; }
.pa-hv-status, .pa-hv-legend { font-size: 0.85em; color: var(--body-text-color-subdued); min-height: 1.3em; }
.pa-hv-svg { display: block; width: 100%; }
.pa-hv-svg [data-role=token] { cursor: pointer; font-family: var(--font-mono); font-size: 12px; }
.pa-hv-svg [data-role=token]:focus { outline: none; }
.pa-hv-svg [data-role=token].active text { font-weight: 700; fill: #000; }
.pa-hv-svg [data-role=token].active rect { fill: #ffe08a; }
.pa-hv-svg [data-role=token] rect { fill: transparent; }
.pa-hv-svg [data-role=weight] { font-size: 10px; font-family: var(--font-mono); }
"""

JS = r"""
const ROW = 16, PAD = 6;
let data = null, active = null, locked = false, visible = new Set(), primary = 0;
const svg = element.querySelector('.pa-hv-svg');
const status = element.querySelector('.pa-hv-status');
const f32 = (b64) => { const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new Float32Array(u.buffer); };
const bits = (b64, n) => { const s = atob(b64), out = new Uint8Array(n * n);
  for (let i = 0; i < n * n; i++) out[i] = (s.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1; return out; };
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function geometry() {
  const W = Math.max(280, element.clientWidth || 600);
  return { W, xl: Math.round(W * 0.3), xr: Math.round(W * 0.7) };
}

function headLines(h) {
  const { xl, xr } = geometry(), T = data.n_tokens, w = data.w[h], c = data.colors[h];
  const parts = [`<g data-head="${h}">`];
  for (let q = 0; q < T; q++) {
    parts.push(`<g data-q="${q}">`);
    for (let k = 0; k < T; k++) {
      if (!data.mask[q * T + k]) continue;
      const v = w[q * T + k];
      parts.push(`<line data-role="line" data-head="${h}" data-query="${q}" data-key="${k}" data-weight="${v}" ` +
        `x1="${xl + PAD}" y1="${q * ROW + ROW / 2 + 20}" x2="${xr - PAD}" y2="${k * ROW + ROW / 2 + 20}" ` +
        `stroke="${c}" stroke-width="2" stroke-opacity="${v}"/>`);
    }
    parts.push('</g>');
  }
  parts.push('</g>');
  return parts.join('');
}

function tokens(side) {
  const { xl, xr } = geometry(), left = side === 'query';
  return data.tokens.map((t, i) => {
    const y = i * ROW + 20, x = left ? xl : xr;
    return `<g data-role="token" data-side="${side}" data-index="${i}" tabindex="0" ` +
      `aria-label="${side} #${i} ${esc(t)}"><rect x="${left ? 0 : xr}" y="${y}" width="${geometry().W * 0.3}" ` +
      `height="${ROW}"/><text x="${left ? x - PAD : x + PAD}" y="${y + ROW - 4}" ` +
      `text-anchor="${left ? 'end' : 'start'}">${esc(t)}</text>` +
      `<text data-role="weight" x="${left ? 4 : geometry().W - 4}" y="${y + ROW - 4}" ` +
      `text-anchor="${left ? 'start' : 'end'}"></text></g>`;
  }).join('');
}

function draw() {
  const { W, xl, xr } = geometry(), T = data.n_tokens, H = T * ROW + 30;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('height', H);
  const heads = [...visible].sort((a, b) => (a === primary) - (b === primary)).map(headLines).join('');
  svg.innerHTML = `<text x="2" y="12" font-size="11">query (attending)</text>` +
    `<text x="${W - 2}" y="12" text-anchor="end" font-size="11">key (attended to)</text>` +
    `<g class="pa-lines">${heads}</g>${tokens('query')}${tokens('key')}`;
  const bar = element.querySelector('.pa-hv-heads');
  bar.innerHTML = data.colors.map((c, h) => `<button type="button" data-head="${h}" style="--c:${c}" ` +
    `class="${visible.has(h) ? 'on' : ''} ${h === primary ? 'primary' : ''}" aria-pressed="${visible.has(h)}">` +
    `head ${h}</button>`).join('');
  bar.querySelectorAll('button').forEach(b => b.addEventListener('click', () => {
    const h = +b.dataset.head; visible.has(h) ? visible.delete(h) : visible.add(h); draw(); }));
  apply();
}

function apply() {
  const T = data.n_tokens;
  svg.querySelectorAll('[data-role=token]').forEach(g => {
    const on = active && g.dataset.side === active.side && +g.dataset.index === active.index;
    g.classList.toggle('active', !!on); g.querySelector('[data-role=weight]').textContent = ''; });
  svg.querySelectorAll('[data-role=line]').forEach(l => {
    const show = !active || (active.side === 'query' ? +l.dataset.query : +l.dataset.key) === active.index;
    l.style.display = show ? '' : 'none'; });
  if (!active) { status.textContent = 'Hover a token to see only its lines; click to lock.'; outline(null); return; }
  const other = active.side === 'query' ? 'key' : 'query', w = data.w[primary], i = active.index;
  svg.querySelectorAll(`[data-role=token][data-side=${other}]`).forEach(g => {
    const j = +g.dataset.index, [q, k] = active.side === 'query' ? [i, j] : [j, i];
    const t = g.querySelector('[data-role=weight]');
    t.textContent = data.mask[q * T + k] ? w[q * T + k].toFixed(3) : 'masked';
    t.setAttribute('fill', data.colors[primary]); });
  status.textContent = `${active.side} #${i} '${data.tokens[i]}'` + (locked ? ' (locked: click again or Esc)' : '') +
    ` · numbers: head ${primary}'s weights ` + (active.side === 'query' ? 'to each key' : 'from each query');
  outline(active.side === 'query' ? i : null);
}

function outline(q) {  // the five stages: outline this query's row in every query x key panel
  const gd = document.querySelector('#pa-five-stages .js-plotly-plot');
  const axes = gd && gd.layout && gd.layout.meta && gd.layout.meta.pa_axes;
  if (!axes || !window.Plotly) return;
  const keep = q === null ? (window.paLockedQuery ?? null) : q;
  if (keep === null && !(gd.layout.shapes || []).length) return;
  const now = gd.layout.shapes || [];
  if (keep !== null && now.length === axes.length && now[0].y0 === keep - 0.5) return;
  const shapes = keep === null ? [] : axes.map(([x, y]) => ({ type: 'rect', xref: x + ' domain', x0: 0, x1: 1,
    yref: y, y0: keep - 0.5, y1: keep + 0.5, line: { color: '#111', width: 1.5 }, layer: 'above' }));
  window.Plotly.relayout(gd, { shapes });
}

function pick(g, lock) {
  const sel = { side: g.dataset.side, index: +g.dataset.index };
  const same = active && active.side === sel.side && active.index === sel.index;
  if (lock) {
    locked = !(locked && same); active = locked ? sel : null;
    if (locked && sel.side === 'query') {
      window.paLockedQuery = sel.index;
      const drawn = !!(window.paInspect && window.paInspect.select({ query: sel.index, quiet: true }));
      trigger('select', { query: sel.index, drawn });
    }
  } else if (!locked) active = sel;
  apply();
}

svg.addEventListener('mouseover', e => { const g = e.target.closest('[data-role=token]'); if (g) pick(g, false); });
svg.addEventListener('mouseleave', () => { if (!locked) { active = null; apply(); } });
svg.addEventListener('click', e => { const g = e.target.closest('[data-role=token]'); if (g) pick(g, true); });
svg.addEventListener('focusin', e => { const g = e.target.closest('[data-role=token]'); if (g) pick(g, false); });
svg.addEventListener('keydown', e => {
  const g = e.target.closest('[data-role=token]'); if (!g) return;
  let side = g.dataset.side, i = +g.dataset.index;
  if (e.key === 'Escape') { locked = false; active = null; apply(); return; }
  if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(g, true); return; }
  if (e.key === 'ArrowUp') i = Math.max(0, i - 1); else if (e.key === 'ArrowDown') i = Math.min(data.n_tokens - 1, i + 1);
  else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') side = e.key === 'ArrowLeft' ? 'query' : 'key';
  else return;
  e.preventDefault();
  svg.querySelector(`[data-role=token][data-side=${side}][data-index="${i}"]`).focus();
});
document.addEventListener('keydown', e => { if (e.key === 'Escape' && locked) { locked = false; active = null; apply(); } });

function show(d, selected) {  // decoded data: {layer, tokens, n_tokens, colors, mask, w: [per head], title, trace}
  if (data && d.trace && data.trace === d.trace && data.layer === d.layer) { window.paHeadView.selectHead(selected); return; }
  data = d; primary = selected; visible = new Set([primary]); active = null; locked = false;
  element.querySelector('.pa-hv-title').textContent = d.title;
  element.querySelector('.pa-hv-legend').textContent = 'Line opacity = the weight itself (0 = invisible, 1 = opaque), ' +
    'one line per allowed (query, key) pair, none thinned. Colours = heads; the buttons show or hide a head.';
  draw();
}

function load() {
  if (!props.value) { svg.innerHTML = ''; return; }
  const v = JSON.parse(props.value), T = v.n_tokens;
  if (v.message) {  // nothing to draw (e.g. a model without attention): say why
    data = null; svg.innerHTML = ''; element.querySelector('.pa-hv-heads').innerHTML = '';
    element.querySelector('.pa-hv-title').textContent = 'Head view: ' + v.message;
    status.textContent = ''; element.querySelector('.pa-hv-legend').textContent = ''; return;
  }
  const mask = bits(v.mask, T);
  const full = (b64) => { const kept = f32(b64), w = new Float32Array(T * T);  // allowed pairs, row order
    for (let i = 0, n = 0; i < T * T; i++) if (mask[i]) w[i] = kept[n++]; return w; };
  data = null;
  show({ ...v, w: v.weights.map(full), mask }, v.selected);
}
window.paHeadView = { outline: (q) => { window.paLockedQuery = (q === null || q === undefined) ? null : +q; outline(null); },
  show,
  selectHead: (h) => { if (!data || h === null || h === undefined) return;
  h = +h; if (h === primary || !(h < data.colors.length)) return; visible.delete(primary); primary = h; visible.add(h); draw(); } };
load();
watch('value', load);
"""


def head_view_html(**kwargs) -> gr.HTML:
    """The head view component (its value: ``to_value(head_view_data(...))``)."""
    return gr.HTML("", html_template=TEMPLATE, css_template=CSS, js_on_load=JS, elem_id=ELEM_ID,
                   label="Head view", **kwargs)


def to_value(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))
