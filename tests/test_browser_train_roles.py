"""The Train tab's head-roles chart in a real browser (Debian's chromium via Playwright): picking the
induction preset sets its recipe and corpus, and a run draws every head's role scores next to the loss."""
from __future__ import annotations


import pytest

from browser_helpers import browser, require_chromium, train_page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
require_chromium()

ROLES_PLOT = "document.querySelector('#roles-history-plot .js-plotly-plot')"


@pytest.fixture(scope="module")
def page(train_page):
    return train_page


def test_induction_preset_then_the_roles_chart_draws_every_head(page):
    from explainer.ui.train_roles import INDUCTION

    page.get_by_label("Preset (model ladder)").click()
    page.get_by_role("option", name="induction", exact=True).click()
    page.wait_for_function("document.querySelector('input[type=radio][value=\"%s\"]').checked" % INDUCTION)
    assert page.get_by_label("Learning rate").input_value() == "0.003"
    page.click("#train-start")
    page.wait_for_function(f"{ROLES_PLOT} && {ROLES_PLOT}.data && {ROLES_PLOT}.data.length == 16")
    traces = page.evaluate(f"{ROLES_PLOT}.data.map(t => [t.name, t.hovertemplate.split('<br>')[0], t.y.length])")
    assert {name for name, _, _ in traces} == {"previous-token", "first-token", "duplicate-token", "induction"}
    assert {where for _, where, _ in traces} == {f"layer {i}, head {j}" for i in range(2) for j in range(2)}
    assert all(n >= 1 for _, _, n in traces)
    assert "in-context-learning score" in page.evaluate(f"{ROLES_PLOT}.layout.title.text")
    page.click("#train-stop")
    page.wait_for_function("document.querySelector('#train-progress').innerText.includes('stopped')")
