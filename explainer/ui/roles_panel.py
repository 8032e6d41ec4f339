"""Inspect's "Head roles" panel: what each head does, before and after training, and the logit lens.

``/heads`` (model) returns the role grids of the model, the same grids for its untrained twin
(same config, random weights) and the best head of each role in words; ``/lens`` (prompt, model)
returns the logit-lens figure. Clicking a cell of the role grids selects that head in the five
stages, through the hidden ``#head-pick`` box the Inspect tab listens to.
"""
from __future__ import annotations

import gradio as gr

import explainer as fx
from explainer.figures.common import message_figure
from explainer.heads import ROLES

from . import byom, common, limits
from .errors import friendly
from .registry import UNTRAINED_SEED  # the untrained twin's weights: the same every time
from .session import Session

# the grid's click bridge: a cell's customdata is (layer, head)
HEAD_JS = """
<script>
(() => {
  const hook = () => document.querySelectorAll('#head-roles .js-plotly-plot').forEach(gd => {
    if (gd.dataset.paRoles === '1' || !gd.on) return;
    gd.dataset.paRoles = '1';
    gd.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0], box = document.querySelector('#head-pick textarea, #head-pick input');
      const cd = p && p.customdata;  // (layer, head); a typed array arrives as an indexable object, not an Array
      if (!box || cd == null || cd[0] == null || cd[1] == null) return;
      const drawn = window.paInspect && window.paInspect.pickHead(+cd[0], +cd[1]);  // drawn in the browser: ',c'
      box.value = `${cd[0]},${cd[1]},${Date.now()}${drawn ? ',c' : ''}`;
      box.dispatchEvent(new Event('input', { bubbles: true }));
    });
  });
  new MutationObserver(hook).observe(document.documentElement, { childList: true, subtree: true });
})();
</script>
"""

SINK_WORDS = ("A **first-token** head parks its attention on token 0, whatever it is: an *attention sink* "
              "(StreamingLLM, arXiv 2309.17453). Softmax must give its weight to something, and a head that has "
              "nothing useful to read puts it on the first token.")


def roles_of(session: Session, loaded):
    """The loaded model's HeadRoles, computed once per model version (cached in the session)."""
    def compute():
        with common.using(loaded):
            return fx.head_roles(loaded.model)
    return session.cached(("roles", loaded.key, loaded.version), compute)


def untrained_roles(session: Session, loaded):
    """HeadRoles of a freshly initialised model with the same config (what training starts from)."""
    import torch

    from gpt import GPT

    def compute():
        torch.manual_seed(UNTRAINED_SEED)
        return fx.head_roles(GPT(loaded.model.config).eval())
    return session.cached(("roles-untrained", tuple(sorted(loaded.model.config.to_dict().items()))), compute)


def words(roles) -> str:
    """The best head of each role in a sentence, e.g. "layer 0, head 5 looks at the previous token with 97% ..."."""
    lines = [f"- **{role}**: {roles.describe(role)}." for role in ROLES]
    return "\n".join(["**Best head of each role** (click a cell to select that head above):", *lines, "", SINK_WORDS])


NOT_APPLICABLE = ("{label}<br>was trained elsewhere, not in this app: there is no before and after here.<br>"
                  "The untrained twin is shown for the models trained in this app, whose training starts from it.")


def heads(session: Session, model: str):
    """(role grids of the model, role grids of its untrained twin, the best heads in words).

    A Hugging Face model has no twin here: its before/after is not applicable, and the second figure says so
    (building a random GPT-2 small for it would cost seconds and ~0.5 GB for nothing it could be compared to)."""
    session = session or Session()
    loaded = session.model(model)
    roles = roles_of(session, loaded)
    if byom.is_hf_key(model):
        before = message_figure("Before training: not applicable", NOT_APPLICABLE.format(label=loaded.label))
    else:
        before = fx.head_roles_figure(untrained_roles(session, loaded),
                                      title=f"Untrained, same shape (seed {UNTRAINED_SEED})")
    return fx.head_roles_figure(roles, title=loaded.label), before, words(roles)


def lens(session: Session, prompt: str, model: str):
    """The logit-lens figure of the prompt on the chosen model."""
    session = session or Session()
    prompt = common.check_prompt(prompt, allow_empty=False)
    loaded = session.model(model)

    def compute():
        with common.using(loaded):
            return fx.logit_lens(loaded.model, loaded.tokenizer, prompt)
    return fx.logit_lens_figure(session.cached(("lens", loaded.key, loaded.version, prompt), compute))


def build(session: gr.State, prompt: gr.Textbox, model: gr.Dropdown) -> None:
    """The accordion under the all-heads grid (called inside the Inspect tab's layout)."""
    with gr.Accordion("Head roles: what each head does, and the logit lens", open=False, elem_id="roles-panel"):
        gr.Markdown("Each head is scored on random tokens said twice: how much of its attention goes to the "
                    "previous token, to the first token, to the earlier copy of the current token, and to the token "
                    "after that copy (an **induction head**, the one that copies). Scores are fractions of attention, "
                    "0..1.", elem_classes="pa-note")
        show = gr.Button("Score the heads and read the logit lens", elem_id="roles-btn")
        text = gr.Markdown(elem_id="roles-words")
        grid = gr.Plot(label="Head roles of this model (click a cell to select that head)", elem_id="head-roles")
        before = gr.Plot(label="The same roles before training (random weights)", elem_id="head-roles-before")
        lens_plot = gr.Plot(label="Logit lens of the prompt", elem_id="logit-lens")
    lane = dict(concurrency_id="inspect", concurrency_limit=limits.INSPECT_CONCURRENCY)
    api_heads, api_lens = gr.Button(visible=False), gr.Button(visible=False)  # the endpoints, named first
    api_heads.click(friendly(heads), [session, model], [grid, before, text], api_name="heads", **lane)
    api_lens.click(friendly(lens), [session, prompt, model], lens_plot, api_name="lens", **lane)
    show.click(friendly(heads), [session, model], [grid, before, text], api_visibility="private", **lane).then(
        friendly(lens), [session, prompt, model], lens_plot, api_visibility="private", **lane)
