"""Page-level script and styles for the Inspect tab's plotly figures (``launch(head=..., css=...)``).

* The all-heads grid is one heatmap; a click at row r, column c is head (r // T, c // T)
  (``layout.meta.pa_grid``), forwarded to the hidden ``#head-pick`` box whose change event
  selects that head (plotly figures inside gr.Plot have no click event in Gradio).
* Every plotly figure gets PNG and SVG download buttons (``Plotly.downloadImage``).
* Below 700 px the five stages are stacked one under another (same figure, relaid out).
* A new five-stage figure gets the selected query's row outlined again (``paHeadView.outline``).
"""
from __future__ import annotations

NARROW_PX = 700

HEAD_JS = """
<script>
(() => {
  const NARROW = %(narrow)d;
  const gridClick = (gd) => {
    if (gd.dataset.paHooked === '1' || !gd.on) return;
    gd.dataset.paHooked = '1';
    gd.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0], meta = gd.layout.meta && gd.layout.meta.pa_grid;
      if (!p || !meta || !Array.isArray(p.pointNumber)) return;
      const [row, col] = p.pointNumber, layer = Math.floor(row / meta.tokens), head = Math.floor(col / meta.tokens);
      const box = document.querySelector('#head-pick textarea, #head-pick input');
      if (!box) return;
      const drawn = window.paInspect && window.paInspect.pickHead(layer, head);  // drawn in the browser: ',c'
      box.value = `${layer},${head},${Date.now()}${drawn ? ',c' : ''}`;
      box.dispatchEvent(new Event('input', { bubbles: true }));
    });
  };
  const downloads = (gd) => {
    const host = gd.closest('.block') || gd.parentElement;
    if (!host || host.querySelector(':scope > .pa-dl')) return;
    const bar = document.createElement('div');
    bar.className = 'pa-dl';
    for (const format of ['png', 'svg']) {
      const b = document.createElement('button');
      b.type = 'button'; b.textContent = format.toUpperCase(); b.title = `Download this figure as ${format.toUpperCase()}`;
      b.dataset.format = format;
      b.addEventListener('click', () => {
        const plot = host.querySelector('.js-plotly-plot');
        const name = (host.id || (gd.closest('[id]') || {}).id || 'figure').replace(/[^a-z0-9-]/gi, '');
        if (plot && window.Plotly) window.Plotly.downloadImage(plot, { format, filename: name, scale: format === 'png' ? 2 : 1 });
      });
      bar.appendChild(b);
    }
    host.appendChild(bar);
  };
  const lines = (text, n) => {  // words into lines of at most n characters
    const out = [''];
    for (const word of text.split(' ')) {
      if ((out[out.length - 1] + ' ' + word).length > n) out.push(word);
      else out[out.length - 1] = (out[out.length - 1] + ' ' + word).trim();
    }
    return out;
  };
  const stack = (gd) => {  // five panels in a row do not fit a phone: one under another
    const meta = gd.layout && gd.layout.meta;
    if (window.innerWidth >= NARROW || !meta || !meta.pa_axes || gd.__paStacked === gd.data) return;
    gd.__paStacked = gd.data;
    const y = gd.layout.yaxis, every = Math.ceil((y.tickvals || []).length / 8);
    const vals = (y.tickvals || []).filter((_, i) => i %% every === 0);
    const text = (y.ticktext || []).filter((_, i) => i %% every === 0);
    const n = 5, per = 1 / n, layout = { height: 300 * n, 'margin.l': 56, 'margin.r': 30, 'margin.t': 70 };
    for (let i = 0; i < n; i++) {
      const s = i ? String(i + 1) : '', top = 1 - i * per;
      layout[`xaxis${s}.domain`] = [0, 0.82];
      layout[`yaxis${s}.domain`] = [top - per + 0.07, top - 0.035];
      layout[`yaxis${s}.showticklabels`] = true;
      layout[`yaxis${s}.tickvals`] = vals; layout[`yaxis${s}.ticktext`] = text;
    }
    (gd.layout.annotations || []).forEach((a, j) => {
      const m = /^(\\d) ·/.exec(a.text || '');
      layout[`annotations[${j}].x`] = m ? 0.41 : 0;
      layout[`annotations[${j}].y`] = m ? 1 - (+m[1] - 1) * per - 0.035 : -0.035;
      if (!m) layout[`annotations[${j}].text`] = (a.text || '').split('<br>').map(t => lines(t, 38).join('<br>')).join('<br>');
    });
    const idx = [0, 1, 2, 3, 4].filter(i => i < gd.data.length);
    const style = { 'colorbar.x': 0.84, 'colorbar.len': per * 0.75,
                    'colorbar.y': idx.map(i => 1 - i * per - per / 2 + 0.0175) };
    window.Plotly.update(gd, style, layout, idx);
  };
  // the q·k view's four panels do not fit a phone side by side either: one under another, titles wrapped (again
  // after each new pair, whose titles come unwrapped)
  const QK_HEIGHT = 1180, QK_BANDS = [[0.85, 0.93], [0.5, 0.75], [0.26, 0.4], [0, 0.15]];  // y domains, top down
  const stackQk = (gd) => {
    const meta = gd.layout && gd.layout.meta, notes = (gd.layout && gd.layout.annotations) || [];
    if (window.innerWidth >= NARROW || !meta || meta.pa_query === undefined || notes.length !== 4 ||
        (gd.layout.height === QK_HEIGHT && !notes.some(a => (a.text || '').length > 40 && !a.text.includes('<br>')))) return;
    const layout = { height: QK_HEIGHT, 'margin.l': 84, 'margin.r': 16, 'xaxis4.ticklabelstandoff': 6 };  // clear of '0'
    QK_BANDS.forEach(([y0, y1], i) => {
      const s = i ? String(i + 1) : '';
      layout[`xaxis${s}.domain`] = i ? [0, 1] : [0, 0.84];
      layout[`yaxis${s}.domain`] = [y0, y1];
      layout[`annotations[${i}].x`] = i ? 0.5 : 0.42;
      layout[`annotations[${i}].y`] = y1;
      layout[`annotations[${i}].text`] = lines((notes[i].text || '').split('<br>').join(' '), 40).join('<br>');
    });
    const [y0, y1] = QK_BANDS[0];
    window.Plotly.update(gd, { 'colorbar.x': 0.87, 'colorbar.y': (y0 + y1) / 2, 'colorbar.len': y1 - y0 }, layout, [0]);
  };
  const outline = (gd) => {  // a new five-stage figure: outline the selected query's row again
    if (!gd.data || gd.__paOutlined === gd.data || !window.paHeadView) return;
    gd.__paOutlined = gd.data;
    window.paHeadView.outline(window.paLockedQuery ?? null);
  };
  const wrap = (gd) => {  // a phone: long titles break into lines instead of running off the screen
    const t = gd.layout && gd.layout.title, text = t && (t.text || (typeof t === 'string' ? t : ''));
    if (window.innerWidth >= NARROW || !text || text.includes('<br>') || text.length < 40 || !window.Plotly) return;
    const parts = lines(text, 40);
    const x = gd.layout.xaxis || {}, text2 = parts.join('<br>');
    if (x.side === 'top') {  // labels above the plot (the all-heads grid): the title goes above them, from the top
      const block = gd.closest('.block'), label = block && block.querySelector('[data-testid="block-label"]');
      const top = 18 + (label ? Math.max(0, label.getBoundingClientRect().bottom - gd.getBoundingClientRect().top)
                             : 40);  // below the component's label
      window.Plotly.relayout(gd, { 'title.text': text2, 'title.font.size': 12, 'title.yref': 'container',
                                   'title.y': 1, 'title.yanchor': 'top', 'title.pad.t': top,
                                   'margin.t': top + 16 * parts.length + 56 });
      return;
    }
    window.Plotly.relayout(gd, { 'title.text': text2, 'title.font.size': 12, 'title.yref': 'paper',
                                 'title.y': 1, 'title.yanchor': 'bottom', 'title.pad.b': 24,
                                 'margin.t': 70 + 16 * parts.length });  // clear of the component's label
  };
  const hook = () => {
    document.querySelectorAll('.js-plotly-plot').forEach(gd => {
      downloads(gd);
      wrap(gd);
      if (gd.closest('#heads-grid')) gridClick(gd);
      if (gd.closest('#pa-five-stages') && window.Plotly) { stack(gd); outline(gd); }
      if (gd.closest('#qk-products') && window.Plotly) stackQk(gd);
    });
  };
  new MutationObserver(hook).observe(document.documentElement, { childList: true, subtree: true });
})();
</script>
""" % {"narrow": NARROW_PX}

CSS = """
.pa-dl { position: absolute; left: 8px; bottom: 4px; display: flex; gap: 4px; z-index: 5; }
.pa-dl button { font-size: 11px; padding: 1px 6px; border: 1px solid var(--border-color-primary);
  border-radius: 4px; background: var(--background-fill-primary); cursor: pointer; }
#pa-five-stages, #heads-grid, #qk-products, #next-token { position: relative; }
#pa-five-stages .html-container, #heads-grid .html-container, #qk-products .html-container,
#next-token .html-container { padding: 0; }  /* plot_html: the figure as wide as gr.Plot drew it */
.pa-busy .pa-plot-label::after { content: " · updating…"; color: var(--color-accent); }  /* plot_html.BUSY_JS */
@media (max-width: %(narrow)dpx) {
  .pa-wrap { flex-wrap: wrap; }
  .pa-wrap > * { min-width: 100%% !important; }
  #pa-five-stages .js-plotly-plot, #heads-grid .js-plotly-plot { max-width: 100%%; }
}
""" % {"narrow": NARROW_PX}
