"""The Head roles panel and Learn step 9 through the app: /heads and /lens return the model's own
numbers, bad inputs get specific messages, and the Learn walkthrough has its ninth step."""
from __future__ import annotations

import base64

import numpy as np
import plotly.io as pio
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import explainer as fx  # noqa: E402
from explainer.heads import ROLES  # noqa: E402
from explainer.ui import learn_steps, learn_tab, registry  # noqa: E402
from explainer.ui.session import Session  # noqa: E402

MODEL = "shakespeare-char"


@pytest.fixture(scope="module")
def client(app_url):
    c = Client(app_url, verbose=False)
    yield c
    c.close()


def figure(plot: dict):
    return pio.from_json(plot["plot"])


def array(value) -> np.ndarray:
    """A figure's numbers as numpy: plotly sends big arrays as typed arrays (base64 + dtype + shape)."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def test_endpoints_and_their_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/heads"]["parameters"]] == ["model"]
    assert [p["parameter_name"] for p in api["/lens"]["parameters"]] == ["prompt", "model"]


def test_heads_returns_the_models_role_scores_and_names_the_best_heads(client):
    grid, before, words = client.predict(MODEL, api_name="/heads")
    roles = fx.head_roles(registry.stock(MODEL).model)
    fig = figure(grid)
    assert [t.name for t in fig.data] == list(ROLES)
    for t in fig.data:
        np.testing.assert_allclose(array(t.z), roles.scores[t.name], atol=1e-6)
    assert roles.describe("previous-token") in words and "attention sink" in words
    untrained = figure(before)
    assert "Untrained" in untrained.layout.title.text
    assert array(untrained.data[0].z).max() < roles.scores["previous-token"].max() - 0.5


def test_lens_returns_the_logit_lens_of_the_prompt(client):
    plot = client.predict("ROMEO: But soft", MODEL, api_name="/lens")
    loaded = registry.stock(MODEL)
    lens = fx.logit_lens(loaded.model, loaded.tokenizer, "ROMEO: But soft")
    (heat,) = figure(plot).data
    np.testing.assert_allclose(array(heat.z), lens.top_probs[:, :, 0], atol=1e-6)


@pytest.mark.parametrize("args, api, words", [
    (("no-such-model",), "/heads", "unknown model 'no-such-model'"),
    (("", MODEL), "/lens", "the prompt is empty"),
    (("café", MODEL), "/lens", "not in this model's vocabulary: 'é'"),
    (("hello", "no-such-model"), "/lens", "unknown model"),
])
def test_bad_inputs_get_specific_messages(client, args, api, words):
    with pytest.raises(AppError, match=words) as e:
        client.predict(*args, api_name=api)
    assert "Traceback" not in str(e.value)


def test_learn_has_a_ninth_step_on_induction_heads_and_the_ladder_table_stays_on_step_eight():
    assert learn_steps.TITLES[8] == "9 · Induction heads: how a model copies"
    text, first, second, table, _ = learn_tab.show(Session(), learn_steps.TITLES[8], "ROMEO: But soft")
    assert "Induction heads" in text and table["visible"] is False
    assert [t.name for t in first.data] == list(ROLES)
    assert second["visible"] is True and "five stages" in second["value"].layout.title.text
    if learn_steps.INDUCTION_CHECKPOINT in registry.checkpoint_names():  # the shipped induction model is drawn
        assert learn_steps.INDUCTION_CHECKPOINT in first.layout.title.text
        assert max(np.asarray(t.z).max() for t in first.data if t.name == "induction") > 0.4
    *_, ladder_table, _ = learn_tab.show(Session(), learn_steps.TITLES[7], "ROMEO: But soft")
    assert ladder_table["visible"] is True
