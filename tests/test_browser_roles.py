"""The Head roles panel in a real browser (Debian's chromium via Playwright): the grids draw the model's
own scores, and a click on a cell selects that head in the five stages."""
from __future__ import annotations

import re

import numpy as np
import pytest

from browser_helpers import browser, open_page, require_chromium  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser
require_chromium()

GRID = "#head-roles .js-plotly-plot"


@pytest.fixture(scope="module")
def page(browser, app_url):
    pg = open_page(browser, app_url, 1440)
    pg.get_by_role("tab", name="Inspect").click()
    pg.wait_for_selector("#inspect-layer input")
    pg.get_by_text("Head roles: what each head does").click()  # open the accordion
    pg.click("#roles-btn")
    pg.wait_for_function(f"(() => {{ const gd = document.querySelector('{GRID}'); "
                         "return gd && gd.data && gd.data.length === 4; })()")
    pg.wait_for_function("(() => { const gd = document.querySelector('#logit-lens .js-plotly-plot'); "
                         "return gd && gd.data && gd.data.length === 1; })()")
    yield pg
    pg.close()


def test_the_grids_show_the_models_scores_and_the_best_heads_in_words(page):
    from explainer import head_roles
    from explainer.ui import registry

    roles = head_roles(registry.stock(registry.default_model_key()).model)
    # plotly.js keeps a typed array's spec (dtype, bdata, shape) and its decoded rows in _inputArray
    shown = page.evaluate(f"(() => {{ const z = document.querySelector('{GRID}').data[0].z; "
                          "return z._inputArray || z; })()")
    np.testing.assert_allclose(np.array(shown, dtype=float), roles.scores["previous-token"], atol=1e-6)
    assert roles.describe("previous-token") in page.inner_text("#roles-words")


def test_clicking_a_cell_selects_that_head(page):
    layer, head = 3, 2
    box = page.evaluate(f"""(() => {{
      const gd = document.querySelector('{GRID}'); gd.scrollIntoView({{block: 'center'}});
      const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      return {{x: r.left + fl.xaxis._offset + fl.xaxis.l2p({head}), y: r.top + fl.yaxis._offset + fl.yaxis.l2p({layer})}};
    }})()""")
    page.mouse.click(box["x"], box["y"])
    page.wait_for_function(f"document.querySelector('#inspect-layer input').value.includes('{layer}') && "
                           f"document.querySelector('#inspect-head input').value.includes('{head}')")
    assert re.search(r"\d+", page.input_value("#inspect-layer input")).group() == str(layer)
    assert re.search(r"\d+", page.input_value("#inspect-head input")).group() == str(head)
