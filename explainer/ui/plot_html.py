"""Inspect's plotly figures in a ``gr.HTML`` that draws each new figure with one ``Plotly.react``.

gr.Plot (Gradio 6.31) calls ``Plotly.react`` twice for each new value, and each call is a full
redraw: ~170 ms for the five stages on a 2-core machine, 70-150 ms for the all-heads grid, the
q·k products and the next-token chart, so a press drew every figure twice. This component
holds the same figure (``fig.to_json()``, the plotly JSON gr.Plot would send) and draws it
once, into a div that is a normal plotly graph (``#<elem_id> .js-plotly-plot``), so the page's
hooks (downloads, grid clicks, phone layout) and the browser's in-place switches
(``inspect_store``) treat it like any other figure. New five stages are first painted into the
last drawing (``paint_js``) and drawn by plotly a frame later. Its label carries Gradio's
``data-testid="block-label"``, like gr.Plot's. The plotly bundle is the one Gradio ships; a
hidden gr.Plot (``preload``) makes Gradio load it with the tab, and the script waits for
``window.Plotly`` if it is not there yet. The API's figures stay gr.Plot outputs.
"""
from __future__ import annotations

import html

import gradio as gr
import plotly.graph_objects as go

from explainer.figures.common import message_figure

STAGES_ID = "pa-five-stages"

TEMPLATE = '<div class="pa-plot-label" data-testid="block-label">${label}</div><div class="pa-plot"></div>'
CSS = """
.pa-plot-label { font-size: var(--block-label-text-size); color: var(--block-label-text-color);
  margin: 0 0 4px 2px; }
.pa-plot { width: 100%; }
"""

JS = r"""
const div = element.querySelector('.pa-plot');
let shown = null;
function draw() {
  if (!props.value || props.value === shown) return;
  if (!window.Plotly) { setTimeout(draw, 20); return; }  // Gradio's plotly bundle is still loading
  const value = shown = props.value, fig = JSON.parse(value), layout = fig.layout || {};
  layout.autosize = true;
  const react = () => { if (shown === value) window.Plotly.react(div, fig.data || [], layout, { responsive: true, displaylogo: false }); };
  // new five stages are painted into the last drawing at once (paint_js), and drawn by plotly after the frame
  // that shows them, and after the step that frame lets start (PAINTED_JS): its request goes out first
  const paint = window.paInspect && window.paInspect.paintFigure;
  if (paint && paint(div, { data: fig.data || [], layout })) requestAnimationFrame(() => setTimeout(() => setTimeout(react, 0), 0));
  else react();
}
draw();
watch('value', draw);
"""


# a press marks the five stages as updating until its first step has ended (its figure is then drawn)
BUSY_JS = f"() => {{ const e = document.getElementById('{STAGES_ID}'); if (e) e.classList.add('pa-busy'); }}"
_UNMARK = f"const e = document.getElementById('{STAGES_ID}'); if (e) e.classList.remove('pa-busy');"
IDLE_JS = f"() => {{ {_UNMARK} }}"
# ... and lets the browser paint them before the rest of the press starts. Gradio starts a step's successors
# in the task that applied its outputs, so the next request's preparation (cloning its eleven inputs' props)
# held back the frame showing the figure just drawn by 25-35 ms. The promise resolves after that frame (or
# after 200 ms in a background tab, where frames do not come)
PAINTED_JS = (f"() => {{ {_UNMARK} "
              "return new Promise((done) => { requestAnimationFrame(() => setTimeout(done, 0)); "
              "setTimeout(done, 200); }); }")


def plot_html(elem_id: str, label: str, min_height: int = 300) -> gr.HTML:
    """The component (its value: ``to_value(figure)``)."""
    template = TEMPLATE.replace("${label}", html.escape(label)).replace(
        'class="pa-plot"', f'class="pa-plot" style="min-height: {int(min_height)}px"')
    return gr.HTML("", html_template=template, css_template=CSS, js_on_load=JS, elem_id=elem_id, padding=False)


def stages_html() -> gr.HTML:
    return plot_html(STAGES_ID, "Five stages of the selected head", 500)


def to_value(fig):
    """A figure as the component's value; anything else (``gr.skip()``, an update) as it is."""
    return fig.to_json() if isinstance(fig, go.Figure) else fig


def preload() -> gr.Plot:
    """A hidden gr.Plot holding an empty plotly figure: Gradio loads its plotly bundle with the tab."""
    return gr.Plot(message_figure("", ""), visible="hidden", show_label=False)
