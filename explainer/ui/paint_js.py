"""Painting the model's numbers straight into plotly's drawing of the five stages, before plotly's redraw.

Plotly draws each heatmap as one pixel per cell in an ``<image>`` (``image-rendering: pixelated``),
and any change of the five stages costs it a full redraw of the five panels: 100-230 ms on a
2-core machine. The functions below write the cells with plotly's own colour rule, and the labels
and title as text, so a change is on screen in a few milliseconds; plotly's redraw of the same
figure follows a frame later and brings its own state (hover, downloads) to it. Browser tests
check that plotly's redraw leaves every pixel and label as painted.

A head or layer switch uses them (``inspect_store.paintStages``, from the trace's arrays in the
browser), and so does a press (``paintFigure``, from the new figure the server sent, which the
five stages' component hands over before calling ``Plotly.react``). A press's paint only runs
when nothing but the cells, the token tick labels, the colour-bar labels and the title changed
(the same model, toggles and layout: the panels keep their places, since the fifth panel's
width depends on the head size only); anything else is drawn by plotly at once.

A third paint (``paintQk``) moves the q·k view to another query or key of the same head: the
cells of q and k, the bars (their axes are fixed per head: ``figures.neuron.qk_ranges``), the
values printed on them, the labels and the title.

``JS`` is a fragment of the store's script (``inspect_store.JS``), which defines
``window.paInspect.paintFigure``.
"""
from __future__ import annotations

JS = r"""
const f32 = (b64) => { const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new Float32Array(u.buffer); };
function rows(a, off, n, m, mask) {  // n rows of m values from a[off..]; masked cells (mask 0) become gaps
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = new Array(m);
    for (let j = 0; j < m; j++) r[j] = mask && !mask[i * m + j] ? null : a[off + i * m + j];
    out[i] = r;
  }
  return out;
}

const rgba = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c);
  if (m) { const v = m[1].split(',').map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; }
  const x = c.replace('#', ''); return [0, 2, 4].map(i => parseInt(x.slice(i, i + 2), 16)).concat([1]); };
function colorOf(scale, zmin, zmax) {  // plotly's makeColorScaleFunc: d3 v3 clamped polylinear on RGBA
  const dom = scale.map(s => zmin + s[0] * (zmax - zmin)), rng = scale.map(s => rgba(s[1])), k = dom.length - 1;
  return (x) => {
    let lo = 1, hi = k;  // d3.bisect (right) over dom[1..k]
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (x < dom[mid]) hi = mid; else lo = mid + 1; }
    const j = lo - 1, a = dom[j], b = (dom[j + 1] - a) || 1 / (dom[j + 1] - a);
    const t = Math.max(0, Math.min(1, (x - a) / b)), p = rng[j], q = rng[j + 1];
    return [0, 1, 2, 3].map(c => p[c] * (1 - t) + q[c] * t);
  };
}
const canvas = document.createElement('canvas');
function pixels(z, color) {  // one pixel per cell, row 0 on top; gaps (masked) transparent
  const m = z.length, n = z[0].length;
  canvas.width = n; canvas.height = m;
  const ctx = canvas.getContext('2d'), img = ctx.createImageData(n, m), px = img.data;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    const v = z[i][j], o = (i * n + j) * 4;
    if (v === null || v === undefined || Number.isNaN(v)) continue;
    const c = color(v);
    px[o] = Math.round(c[0]); px[o + 1] = Math.round(c[1]); px[o + 2] = Math.round(c[2]); px[o + 3] = Math.round(c[3] * 255);
  }
  ctx.putImageData(img, 0, 0);
  return canvas.toDataURL();
}
function setText(el, text) { el.textContent = text; el.setAttribute('data-unformatted', text); }
const setLabels = (els, texts) => els.forEach((el, k) => setText(el, texts[k]));
const plain = (s) => !/[<&]/.test(String(s));  // plotly reads text as pseudo-HTML (<br>, entities): left to it
const heatmapImage = (gd, t) => gd.querySelector(`.subplot.${t.xaxis}${t.yaxis} .heatmaplayer image`);
const barLabels = (gd, t) => [...gd.querySelectorAll(`.cb${t.uid} .ycb${t.uid}tick text`)];

// ---- a press: the new figure painted into the drawing of the last one ----
const AXIS = /^([xy])axis(\d*)$/;
const shapeOf = (a) => Array.isArray(a) ? (typeof a[0] === 'number' ? a.length : 'categories') : (a && a.shape);
function decode(z) {  // plotly's JSON of a float32 matrix ({dtype, bdata, shape}) or nested lists, as rows
  if (Array.isArray(z)) return z.length && Array.isArray(z[0]) ? z : null;
  if (!z || z.dtype !== 'f4' || !z.bdata) return null;
  const a = f32(z.bdata), shape = String(z.shape).split(',').map(Number);
  return shape.length === 2 && shape[0] * shape[1] === a.length && a.length ? rows(a, 0, shape[0], shape[1]) : null;
}
function frameOf(data, layout) {  // the figure without what a new prompt changes (plotly writes ranges and axis types back)
  const L = { ...layout, title: { ...(layout.title || {}), text: null }, meta: null, shapes: null, autosize: null };
  Object.keys(L).filter(k => AXIS.test(k)).forEach(k => {
    L[k] = { ...L[k], tickvals: null, ticktext: null, range: null, autorange: null, type: null }; });
  const D = data.map(t => ({ ...t, z: null, zmin: null, zmax: null, zmid: null, uid: null, x: shapeOf(t.x), y: shapeOf(t.y),
                             colorbar: t.colorbar && { ...t.colorbar, ticktext: null, tickvals: null } }));
  return JSON.stringify([D, L], (k, v) => v && typeof v === 'object' && !Array.isArray(v) ?  // keys sorted
    Object.fromEntries(Object.keys(v).sort().map(key => [key, v[key]])) : v);
}
function tickPlan(gd, data, layout) {  // each labelled token axis: its tick groups and the labels it gets
  const plan = [];
  for (const key of Object.keys(layout).filter(k => AXIS.test(k))) {
    const a = layout[key], [, letter, n] = AXIS.exec(key), id = letter + n, ax = gd._fullLayout[key];
    if (!ax || ax.showticklabels === false || ax.type !== 'category') continue;
    const t = data.find(tr => tr[letter + 'axis'] === id), cats = t && t[letter];
    const layer = t && gd.querySelector(`.subplot.${t.xaxis}${t.yaxis} .${letter}axislayer-above`);
    const groups = layer ? [...layer.querySelectorAll(`g.${id}tick`)] : [];
    if (a.tickmode !== 'array' || !Array.isArray(cats) || !groups.length || !groups[0].querySelector('text')) return null;
    const at = new Map(cats.map((c, i) => [c, i])), vals = a.tickvals || [], text = a.ticktext || [];
    // plotly reads labels as pseudo-HTML (<br>, entities): such labels are left to it
    if (vals.length !== text.length || vals.some(v => !at.has(v)) || !text.every(plain)) return null;
    // where plotly puts a label: 0 + _offset + l2p(i), l2p rounded to 0.01 px, on the range [-0.5, n - 0.5]
    const m = ax._length / cats.length, l2p = (i) => Math.round((m * 0.5 + m * i) * 100) / 100;
    plan.push({ layer, groups, letter, labels: text.map(String), at: vals.map(v => 0 + ax._offset + l2p(at.get(v))) });
  }
  return plan;
}
function paintTicks({ layer, groups, letter, labels, at }) {
  while (groups.length < labels.length) { const g = groups[groups.length - 1].cloneNode(true); layer.appendChild(g); groups.push(g); }
  groups.splice(labels.length).forEach(g => g.remove());
  groups.forEach((g, k) => {
    const el = g.querySelector('text'), m = /translate\(([^,]+),([^)]+)\)/.exec(el.getAttribute('transform') || '');
    const [x, y] = m ? [m[1], m[2]] : ['0', '0'];
    setText(el, labels[k]);
    el.setAttribute('transform', letter === 'x' ? `translate(${at[k]},${y})` : `translate(${x},${at[k]})`);
  });
}
function paintFigure(gd, fig) {  // true: painted (plotly's redraw is still to come); false: plotly must draw it now
  const data = fig.data || [], layout = fig.layout || {}, full = gd._fullData || [], title = gd.querySelector('.gtitle');
  const m = gd.layout && gd.layout.meta, nm = layout.meta;
  if (!m || !m.pa_axes || !nm || !nm.pa_axes || !gd.data || data.length !== 5 || full.length !== 5 ||
      (layout.shapes || []).length || !title || title.querySelector('tspan') || !layout.title) return false;
  if (frameOf(gd.data, gd.layout) !== frameOf(data, layout)) return false;
  const z = data.map(t => decode(t.z)), images = full.map(t => heatmapImage(gd, t)), bars = full.map(t => barLabels(gd, t));
  if (z.some(r => !r) || images.some(im => !im) || data.some(t => !Array.isArray(t.colorscale) ||
      typeof t.zmin !== 'number' || typeof t.zmax !== 'number') ||
      bars.some((ls, i) => ls.length !== ((data[i].colorbar || {}).ticktext || []).length)) return false;
  const ticks = tickPlan(gd, data, layout);
  if (!ticks) return false;
  images.forEach((im, i) => im.setAttribute('href', pixels(z[i], colorOf(data[i].colorscale, data[i].zmin, data[i].zmax))));
  bars.forEach((ls, i) => setLabels(ls, data[i].colorbar.ticktext));
  ticks.forEach(paintTicks);
  setText(title, layout.title.text);
  gd.querySelectorAll('.shapelayer path').forEach(p => { p.style.display = 'none'; });  // the new figure has none
  gd.__paShows = { ...m, pa_trace: null, data: gd.data };  // no switch is drawn here until plotly holds the new figure
  return true;
}

// ---- a query or key switch: another pair of the same head painted into the q·k view ----
const sameRange = (a, b) => !!a && !!b && a.length === 2 && a[0] === b[0] && a[1] === b[1];
const BAR = /^M([^,]+),([^V]+)V([^H]+)H([^V]+)V([^Z]+)Z$/;
function barPlan(gd, t, ya, values, colors, texts) {  // each bar's new end on its (fixed) axis, or null
  const points = [...gd.querySelectorAll(`.subplot.${t.xaxis}${t.yaxis} .barlayer .point`)];
  if (points.length !== values.length) return null;
  const plan = points.map((g, k) => {
    const path = g.querySelector('path'), m = path && BAR.exec(path.getAttribute('d') || '');
    return m && { g, path, m, end: ya.c2p(values[k], true), color: colors ? colors[k] : null, text: texts ? texts[k] : null };
  });
  return plan.some(p => !p || (p.text !== null && !p.g.querySelector('text'))) ? null : plan;
}
function paintBars(plan) {
  plan.forEach(({ g, path, m, end, color, text }) => {
    const [, x0, y0, y1, x1] = m, zero = +y0, before = +y1;
    path.setAttribute('d', `M${x0},${y0}V${end}H${x1}V${y0}Z`);
    if (color) path.style.fill = color;
    if (text === null) return;
    // a value printed outside its bar (plotly's toMoveOutsideBar): it keeps its offset from the bar's end, and
    // moves to the other side, by twice its half height plus the 3 px pad, when the bar turns round
    const el = g.querySelector('text'), tm = /translate\(([^,]+),([^)]+)\)/.exec(el.getAttribute('transform') || '');
    const dir = Math.sign(before - zero), now = Math.sign(end - zero);
    let offset = tm ? +tm[2] - before : 0;
    if (now !== dir) offset -= dir * 2 * (el.getBBox().height / 2 + (Math.abs(x1 - x0) > 6 ? 3 : 0));
    setText(el, text);
    if (tm) el.setAttribute('transform', `translate(${tm[1]},${end + offset})`);
  });
}
function paintQk(gd, data, layout) {  // true: painted (plotly's redraw is still to come); false: plotly draws now
  const full = gd._fullData || [], fl = gd._fullLayout || {}, title = gd.querySelector('.gtitle');
  const notes = (layout.annotations || []).map((a, i) => gd.querySelector(`.annotation[data-index="${i}"] .annotation-text`));
  if (full.length !== 4 || data.length !== 4 || !title || title.querySelector('tspan') || !layout.title ||
      full[0].zmin !== data[0].zmin || full[0].zmax !== data[0].zmax || !layout.yaxis2 || !layout.yaxis3 ||
      !sameRange(fl.yaxis2 && fl.yaxis2.range, layout.yaxis2.range) ||
      !sameRange(fl.yaxis3 && fl.yaxis3.range, layout.yaxis3.range) || notes.some(n => !n || n.querySelector('tspan')) ||
      ![layout.title.text, ...data[0].y, ...(layout.annotations || []).map(a => a.text), ...data[2].text].every(plain) ||
      data[2].y.some(v => v === 0) || (gd.data[2].y || []).some(v => v === 0)) return false;
  const image = heatmapImage(gd, full[0]), axis = (t) => fl[t.yaxis.replace('y', 'yaxis')];
  const labels = [...gd.querySelectorAll(`.subplot.${full[0].xaxis}${full[0].yaxis} .yaxislayer-above text`)];
  const ticks = (gd.data[0].y || []).map(n => labels.find(el => el.getAttribute('data-unformatted') === String(n)));
  const bars = [1, 2, 3].map(i => barPlan(gd, full[i], axis(full[i]), data[i].y, data[i].marker && data[i].marker.color,
                                         i === 2 ? data[i].text : null));
  if (!image || ticks.length !== 2 || ticks.some(el => !el) || bars.some(b => !b)) return false;
  image.setAttribute('href', pixels(data[0].z, colorOf(full[0].colorscale, data[0].zmin, data[0].zmax)));
  ticks.forEach((el, n) => setText(el, data[0].y[n]));
  bars.forEach(paintBars);
  notes.forEach((el, i) => setText(el, layout.annotations[i].text));
  setText(title, layout.title.text);
  return true;
}
"""
