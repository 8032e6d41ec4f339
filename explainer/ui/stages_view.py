"""The five-stage figure in a ``gr.HTML`` that draws it with one ``Plotly.react``.

gr.Plot (Gradio 6.31) calls ``Plotly.react`` twice for each new value, and for five heatmaps
with their colour bars each call is a full redraw (~170 ms on a 2-core machine): the press
waited for both. This component holds the same figure (``fig.to_json()``, the plotly JSON
gr.Plot would send) and draws it once, into a div that is a normal plotly graph
(``#pa-five-stages .js-plotly-plot``), so the page's hooks, the download buttons and the
browser's in-place head switch (``inspect_store``) treat it like any other figure. The
plotly bundle is the one Gradio ships; a hidden gr.Plot (``preload``) makes Gradio load it
with the tab, and the script waits for ``window.Plotly`` if it is not there yet.
"""
from __future__ import annotations

import gradio as gr
import plotly.graph_objects as go

from explainer.figures.common import message_figure

ELEM_ID = "pa-five-stages"

TEMPLATE = '<div class="pa-stages-label">${label}</div><div class="pa-stages"></div>'
CSS = """
.pa-stages-label { font-size: var(--block-label-text-size); color: var(--block-label-text-color);
  margin: 0 0 4px 2px; }
.pa-stages { width: 100%; min-height: 500px; }
"""

JS = r"""
const div = element.querySelector('.pa-stages');
let shown = null;
function draw() {
  if (!props.value || props.value === shown) return;
  if (!window.Plotly) { setTimeout(draw, 20); return; }  // Gradio's plotly bundle is still loading
  shown = props.value;
  const fig = JSON.parse(props.value), layout = fig.layout || {};
  layout.autosize = true;
  window.Plotly.react(div, fig.data || [], layout, { responsive: true, displaylogo: false });
}
draw();
watch('value', draw);
"""


def stages_html() -> gr.HTML:
    """The component (its value: ``to_value(figure)``)."""
    return gr.HTML("", html_template=TEMPLATE.replace("${label}", "Five stages of the selected head"),
                   css_template=CSS, js_on_load=JS, elem_id=ELEM_ID, padding=False)


def to_value(fig: go.Figure) -> str:
    return fig.to_json()


def preload() -> gr.Plot:
    """A hidden gr.Plot holding an empty plotly figure: Gradio loads its plotly bundle with the tab."""
    return gr.Plot(message_figure("", ""), visible="hidden", show_label=False)
