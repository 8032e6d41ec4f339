"""Bad input sent as raw HTTP (what a script sends): a specific message, no traceback, no repr, no path.

Same form as ``tests/test_bad_inputs.py``: each row is (surface, case id, call, expected fragment),
and ``call(t)`` returns the text the visitor gets back. On top of the fragment, every case checks
the server's side: nothing it logged or printed while the case ran holds a traceback, an object
repr (``object at 0x``) or the server's working directory, and the answer holds none of them either.
"""
from __future__ import annotations

import json
import logging
import os

import httpx
import pytest

from bad_input_surfaces import PROMPT, ROOT, TINY, Surfaces, case
from gpt import load_text
from hardening_helpers import join, messages, new_hash, raw_call

REDRAW_VIEW = ["ROMEO:", "untrained-char", 0, 0, True, "×1", 0, 0, 1.0, 0, 1.0]  # the view inputs after #pa-redraw
INSPECT = '"ROMEO:", "untrained-char", {layer}, {head}, true, "\\u00d71", {query}, {key}, 1.0, 0, 1.0'
TRAIN = ["Tiny Shakespeare", None, "char", "bigram", *TINY.values()]


def train(**kw) -> list:
    names = ["corpus", "upload", "tokenizer", "preset", *TINY]
    return [kw.get(n, v) for n, v in zip(names, TRAIN)]


class Raw(Surfaces):
    """The bad-input surfaces plus raw HTTP: bodies as written, queue joins by fn_index, bare routes."""

    def __init__(self, root, url, demo, char_tok, gpt2_tok):
        super().__init__(root, url, char_tok, gpt2_tok)
        self.demo = demo

    def body(self, api: str, body: str) -> str:
        kind, data = raw_call(self.url, api, [], body=body)
        assert kind == "error", (kind, data[:300])
        return json.loads(data)["error"]

    def call(self, api: str, data: list) -> str:
        return self.body(api, json.dumps({"data": data}))

    def inspect_body(self, layer="0", head="0", query="0", key="0") -> str:
        return self.body("inspect", '{"data": [' + INSPECT.format(layer=layer, head=head, query=query, key=key)
                         + "]}")

    def fn(self, name: str) -> int:
        return next(i for i, f in self.demo.fns.items() if getattr(f.fn, "__name__", "") == name)

    def joined(self, name: str, data: list) -> str:
        """Join the queue for a private event by fn_index; its completion message (error or output)."""
        h = new_hash()
        assert join(self.url, self.fn(name), data, h).status_code == 200
        done = messages(self.url, h)[-1]
        out = done.get("output") or {}
        return str(out.get("error") or out.get("data"))

    def same_session(self, api: str, bad: list, good: list) -> str:
        """A bad request, then a good one, in one session: both answers (the stream must survive)."""
        h, index = new_hash(), next(i for i, f in self.demo.fns.items() if f.api_name == api)
        texts = []
        for data in (bad, good):
            assert join(self.url, index, [None, *data], h).status_code == 200
            done = messages(self.url, h)[-1]
            out = done.get("output") or {}
            texts.append(str(out.get("error") or out.get("data")))
        return " | ".join(texts)

    def http(self, method: str, path: str, **kw) -> str:
        r = httpx.request(method, f"{self.url}{path}", timeout=30, **kw)
        return f"{r.status_code} {r.text[:2000]}"

    def train_many_chars(self) -> str:
        """/train on an upload with 200,001 distinct characters (its char vocabulary would not load)."""
        from gradio_client import handle_file

        return self.app_error("/train", **self.train_app("My uploaded .txt", handle_file(str(self.many_chars()))))

    def bom_text(self) -> str:
        path = self.root / "bom.txt"
        path.write_bytes("\ufeffTo be or not to be.\n".encode("utf-8"))
        text = load_text(path)
        return f"first character {text[0]!r}, {len(set(text))} distinct"


CASES = [
    # --- model keys of the wrong type, length or kind ---
    case("app", "raw-inspect-model-null", lambda t: t.call("inspect", ["ROMEO:", None, 0, 0, True, "×1", 0, 0, 1.0,
                                                                       0, 1.0]), "Model must be a model name (text)"),
    case("app", "raw-inspect-model-number", lambda t: t.call("inspect", ["ROMEO:", 5, 0, 0, True, "×1", 0, 0, 1.0,
                                                                         0, 1.0]), "got 5"),
    case("app", "raw-inspect-model-list", lambda t: t.call("inspect", ["ROMEO:", ["x"], 0, 0, True, "×1", 0, 0, 1.0,
                                                                       0, 1.0]), "got ['x']"),
    case("app", "raw-inspect-model-1MB", lambda t: t.call("inspect", ["ROMEO:", "untrained-" + "ab" * 500_000, 0, 0,
                                                                      True, "×1", 0, 0, 1.0, 0, 1.0]),
         "is 1,000,010 characters long; a model name has at most 100"),
    case("app", "raw-inspect-model-unknown-untrained", lambda t: t.call("inspect", [
        "ROMEO:", "untrained-xyz", 0, 0, True, "×1", 0, 0, 1.0, 0, 1.0]), "unknown model 'untrained-xyz'"),
    case("app", "client-generate-model-null", lambda t: t.app_error("/generate", *t.gen_args(model=None)),
         "Model must be a model name (text)"),
    # --- numbers JSON allows and Python cannot use ---
    case("app", "raw-train-lr-10e400", lambda t: t.body("train", json.dumps({"data": train()}).replace(
        "0.001", "1" + "0" * 400)), "Learning rate must be a finite number"),
    case("app", "raw-train-iters-10e400", lambda t: t.body("train", json.dumps({"data": train()}).replace(
        '"bigram", 10,', '"bigram", 1' + "0" * 400 + ",")), "Iterations must be a number between 10 and 5000"),
    case("app", "raw-inspect-layer-infinity", lambda t: t.inspect_body(layer="Infinity"),
         "layer must be a whole number >= 0, got inf"),
    case("app", "raw-inspect-layer-minus-infinity", lambda t: t.inspect_body(layer="-Infinity"),
         "layer must be a whole number >= 0, got -inf"),
    case("app", "raw-inspect-head-nan", lambda t: t.inspect_body(head="NaN"), "head must be a whole number >= 0"),
    case("app", "raw-inspect-query-infinity", lambda t: t.inspect_body(query="Infinity"),
         "query token must be a whole number >= 0"),
    case("app", "raw-inspect-key-nan", lambda t: t.inspect_body(key="NaN"), "key token must be a whole number >= 0"),
    case("app", "raw-inspect-layer-huge", lambda t: t.inspect_body(layer="1" + "0" * 400),
         "layer must be a whole number >= 0"),
    case("app", "raw-inspect-layer-text-minus-1", lambda t: t.inspect_body(layer='"-1"'),
         "layer must be a whole number >= 0, got '-1'"),
    # --- private events, by fn_index ---
    case("app", "raw-preset-null", lambda t: t.joined("on_preset", [None]), "Preset (model ladder) must be one of"),
    case("app", "raw-check-upload-null", lambda t: t.joined("check_upload", [None]), "No file yet"),
    case("app", "raw-redraw-garbage", lambda t: t.joined("redraw", [None, "layer two,x", *REDRAW_VIEW]),
         "could not read a selection from 'layer two,x'"),
    case("app", "raw-redraw-head-out-of-range", lambda t: t.joined("redraw", [None, "0,99,0,0,1", *REDRAW_VIEW]),
         "head must be in 0.."),
    # --- values outside a Radio's or Dropdown's choices ---
    case("app", "raw-train-tokenizer", lambda t: t.call("train", train(tokenizer="bpe")),
         "Tokenizer must be one of: char, gpt2; got 'bpe'"),
    case("app", "raw-train-corpus", lambda t: t.call("train", train(corpus="Hamlet")),
         "Corpus must be one of: Tiny Shakespeare, My uploaded .txt, Repeated passages + random chunks "
         "(induction); got 'Hamlet'"),
    case("app", "raw-train-preset", lambda t: t.call("train", train(preset="gpt-4")),
         "Preset (model ladder) must be one of: bigram"),
    case("app", "raw-inspect-scale-number", lambda t: t.call("inspect", ["ROMEO:", "untrained-char", 0, 0, True, 2,
                                                                         0, 0, 1.0, 0, 1.0]),
         "Attention scale (relative to 1/√d_k) must be one of"),
    case("app", "raw-learn-step", lambda t: t.joined("show", [None, "no such step", PROMPT]), "must be one of"),
    # --- strings and huge ints into sliders, one rule for whole numbers ---
    case("app", "raw-train-batch-text", lambda t: t.call("train", train(batch_size="many")),
         "Batch size must be a number between 1 and 64, got 'many'"),
    case("app", "raw-generate-tokens-huge", lambda t: t.body("generate", json.dumps(
        {"data": ["ROMEO:", "untrained-char", 5, 1.0, 0, 1.0, 0]}).replace('"untrained-char", 5,',
                                                                           '"untrained-char", 9' + "9" * 30 + ",")),
         "New tokens must be a number between 1 and 400"),
    case("app", "raw-generate-seed-1.5", lambda t: t.call("generate", ["ROMEO:", "untrained-char", 5, 1.0, 0, 1.0,
                                                                       1.5]),
         "Seed must be a whole number between 0 and 2147483647, got 1.5"),
    case("app", "raw-train-seed-1.5", lambda t: t.call("train", train(seed=1.5)), "Seed must be a whole number"),
    case("app", "raw-train-iters-10.5", lambda t: t.call("train", train(iters=10.5)),
         "Iterations must be a whole number between 10 and 5000, got 10.5"),
    case("app", "raw-generate-top-k-0.5", lambda t: t.call("generate", ["ROMEO:", "untrained-char", 5, 1.0, 0.5,
                                                                        1.0, 0]),
         "Top-k (0 = off) must be a whole number between 0 and 100, got 0.5"),
    case("app", "raw-inspect-top-k-0.5", lambda t: t.call("inspect", ["ROMEO:", "untrained-char", 0, 0, True, "×1",
                                                                      0, 0, 1.0, 0.5, 1.0]),
         "Top-k (0 = off) must be a whole number between 0 and 100, got 0.5"),
    case("app", "raw-inspect-causal-null", lambda t: t.call("inspect", ["ROMEO:", "untrained-char", 0, 0, None, "×1",
                                                                        0, 0, 1.0, 0, 1.0]),
         "Causal mask (decoder) must be true or false, got None"),
    case("app", "raw-inspect-causal-text", lambda t: t.call("inspect", ["ROMEO:", "untrained-char", 0, 0, "false",
                                                                        "×1", 0, 0, 1.0, 0, 1.0]),
         "Causal mask (decoder) must be true or false, got 'false'"),
    # --- files ---
    case("app", "raw-train-file-without-meta", lambda t: t.call("train", train(
        corpus="My uploaded .txt", upload={"path": "requirements.txt"})), "has no meta"),
    case("app", "raw-train-file-relative-path", lambda t: t.call("train", train(
        corpus="My uploaded .txt", upload={"path": "requirements.txt", "meta": {"_type": "gradio.FileData"}})),
         "it was not uploaded by a user"),
    case("app", "raw-train-file-not-a-dict", lambda t: t.call("train", train(corpus="My uploaded .txt",
                                                                             upload="/etc/passwd")),
         "must be an uploaded file"),
    case("app", "raw-upload-empty-filename", lambda t: t.http("POST", "gradio_api/upload", files={
        "files": ("", b"to be", "text/plain")}), "400 {\"detail\": \"the upload must be a multipart form"),
    # --- the request's shape ---
    case("app", "raw-inspect-one-value", lambda t: t.call("inspect", ["ROMEO:"]), "/inspect takes 11 values (Prompt"),
    case("app", "raw-generate-nine-values", lambda t: t.call("generate", ["ROMEO:", "untrained-char", 5, 1.0, 0, 1.0,
                                                                          0, 5, 6]), "/generate takes 7 values"),
    case("app", "raw-join-unknown-fn-index", lambda t: t.http("POST", "gradio_api/queue/join", json={
        "data": [], "fn_index": 9999, "session_hash": new_hash()}), "404 {\"detail\": \"unknown fn_index"),
    case("app", "raw-queue-data-unknown-session", lambda t: t.http("GET", "gradio_api/queue/data", params={
        "session_hash": "no-such-session"}), "session_not_found"),
    # --- lone surrogates and non-characters: refused, and the session's stream goes on ---
    case("app", "raw-generate-surrogate", lambda t: t.body("generate", '{"data": ["ROMEO\\udcff", "untrained-char", '
                                                                       '5, 1.0, 0, 1.0, 0]}'),
         "holds '\\udcff' at position 5, which is not a character"),
    case("app", "raw-compare-surrogate", lambda t: t.body("compare", '{"data": ["\\ud800ROMEO", 0, 0.8, 5]}'),
         "which is not a character"),
    case("app", "raw-inspect-surrogate", lambda t: t.body("inspect", '{"data": ["ROMEO\\udcff", "untrained-char", 0, '
                                                                     '0, true, "x", 0, 0, 1.0, 0, 1.0]}'),
         "which is not a character"),
    case("app", "raw-generate-noncharacter", lambda t: t.call("generate", ["ROMEO\ufffe", "untrained-char", 5, 1.0,
                                                                           0, 1.0, 0]), "which is not a character"),
    case("app", "raw-compare-surrogate-then-ok", lambda t: t.same_session("compare", ["\udcff", 0, 0.8, 5],
                                                                          [PROMPT, 0, 0.8, 5]),
         "send valid UTF-8 text. | [{'label': 'char tokenizer: 6 tokens'"),
    case("app", "raw-generate-surrogate-then-ok", lambda t: t.same_session(
        "generate", ["\udcff", "untrained-char", 5, 1.0, 0, 1.0, 0], [PROMPT, "untrained-char", 5, 1.0, 0, 1.0, 0]),
         "send valid UTF-8 text. | ['ROMEO:"),  # the same session answers the next request
    # --- one rule each ---
    case("app", "upload-200k-distinct-characters", lambda t: t.train_many_chars(),
         "has 200,001 distinct characters; the char tokenizer takes at most 50,000"),
    case("api", "bom-is-not-text", lambda t: t.bom_text(), "first character 'T'"),
]


@pytest.fixture(scope="module")
def t(tmp_path_factory, app_url, char_tok, gpt2_tok):
    surfaces = Raw(tmp_path_factory.mktemp("bad-inputs-raw"), app_url, _demo_of(app_url), char_tok, gpt2_tok)
    yield surfaces
    surfaces.client.close()


def _demo_of(url: str):
    """The in-process Blocks serving ``url`` (the conftest's app)."""
    import gc

    import gradio as gr

    return next(b for b in gc.get_objects() if isinstance(b, gr.Blocks) and getattr(b, "local_url", None) == url)


def test_the_raw_table_has_unique_ids():
    assert len({p.id for p in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("surface, call, expected", CASES)
def test_raw_bad_input_gets_a_specific_message(t, surface, call, expected, capfd, caplog):
    caplog.set_level(logging.INFO)
    text = call(t)
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert expected in text, text[:1000]
    for where in (text, logged):
        assert "Traceback" not in where and "object at 0x" not in where and os.getcwd() not in where, where[:2000]
        assert str(ROOT) not in where
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert all(len(r.getMessage()) < 1000 for r in caplog.records)


def test_huge_keys_keep_nothing_and_log_one_short_line_each(t, capfd, caplog):
    """20 requests with 100 kB model keys: the log grows by < 100 kB, no lock or cache entry is kept."""
    from explainer.ui import registry

    caplog.set_level(logging.INFO)
    capfd.readouterr()
    before = registry.stock.pending()
    for i in range(20):
        key = f"untrained-{i:02d}" + "f" * 100_000
        assert "a model name has at most 100" in t.call("inspect", ["ROMEO:", key, 0, 0, True, "×1", 0, 0, 1.0, 0,
                                                                    1.0])
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() for r in caplog.records)
    print(f"20 requests with 100 kB keys logged {len(logged):,} characters")
    assert len(logged) < 100_000 and "Traceback" not in logged
    assert registry.stock.pending() == before  # no lock per rejected key


def test_once_keeps_no_lock_for_a_failed_key():
    from explainer.ui import registry

    @registry.once
    def load(key):
        raise ValueError(f"no model {key}")

    for i in range(50):
        with pytest.raises(ValueError):
            load(f"k{i}")
    assert load.pending() == 0
