"""What the bad-input tables call: checkpoints and files on disk, models, the running app.

The tables live in ``tests/test_bad_inputs*.py``; each row is (surface, case id, call,
expected fragment). ``Surfaces`` makes every damaged input once per module.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from gpt import GPT, GPTConfig, TokenData, Trainer, TrainConfig, save_checkpoint
from gpt.generate import generate_text

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "ROMEO:"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
BIG = 50 * 2**20  # a 50 MB file
# a relative path from the repository that climbs to /etc/passwd wherever the clone lives
TRAVERSAL = "../" * len(ROOT.parts) + "etc/passwd"
# /train arguments after (corpus, upload, tokenizer, preset)
TINY = dict(iters=10, lr=1e-3, batch_size=8, block_size=8, n_layer=1, n_head=1, n_embd=16, dropout=0.0, seed=0,
            sample_every=0)


class Payload:
    """Unpickling this writes ``marker``: proof that a pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class Surfaces:
    """What the table's calls use: checkpoints and files on disk, models, and the running app."""

    def __init__(self, root: Path, url: str, char_tok, gpt2_tok):
        self.root, self.url = root, url
        self.char_tok, self.gpt2_tok = char_tok, gpt2_tok
        torch.manual_seed(0)
        self.char = GPT(GPTConfig(vocab_size=char_tok.vocab_size, block_size=16, n_layer=1, n_head=2,
                                  n_embd=16)).eval()
        self.gpt2 = GPT(GPTConfig(vocab_size=gpt2_tok.vocab_size, block_size=16, n_layer=1, n_head=1,
                                  n_embd=16)).eval()
        self.char_ck = save_checkpoint(self.char, char_tok, root / "char")
        self.gpt2_ck = save_checkpoint(self.gpt2, gpt2_tok, root / "gpt2")
        self.marker = root / "PWNED"
        self.damaged = {name: self._damage(name) for name in
                        ("truncated", "wrong-config", "wrong-vocab", "pickle-weights")}
        self.pickle_file = root / "model.pt"
        self.pickle_file.write_bytes(pickle.dumps(Payload(self.marker)))
        self.no_meta = root / "empty-folder"
        self.no_meta.mkdir()
        files = {"empty": b"", "one-byte": b"a", "png": PNG, "latin1": "café au lait\n".encode("latin-1"),
                 "short": b"To be or not to be.\n" * 5}
        for name, data in files.items():
            (root / f"{name}.txt").write_bytes(data)
        with open(root / "big.txt", "wb") as f:
            f.truncate(BIG)
        self.client = Client(url, verbose=False)

    def _damage(self, name: str) -> Path:
        ck = self.root / f"ck-{name}"
        shutil.copytree(self.char_ck, ck)
        meta = json.loads((ck / "meta.json").read_text())
        weights = ck / meta["weights"]
        if name == "truncated":
            weights.write_bytes(weights.read_bytes()[:500])
        elif name == "wrong-config":
            meta["config"]["n_embd"] = 32
        elif name == "wrong-vocab":
            meta["tokenizer"]["chars"] = "abc"
        else:
            blob = pickle.dumps(Payload(self.marker))
            weights.write_bytes(blob)
            meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
        (ck / "meta.json").write_text(json.dumps(meta))
        return ck

    def file(self, name: str) -> str:
        return str(self.root / f"{name}.txt")

    def many_chars(self) -> Path:
        """A text of 200,001 distinct characters: a char vocabulary whose checkpoint would not load again."""
        path = self.root / "many.txt"
        if not path.exists():
            points = (c for c in range(0x100, 0x110000) if not 0xD800 <= c <= 0xDFFF and (c & 0xFFFF) < 0xFFFE
                      and not 0xFDD0 <= c <= 0xFDEF)
            path.write_text("".join(chr(next(points)) for _ in range(200_000)) + "\n", encoding="utf-8")
        return path

    # --- the command line ---
    def cli(self, module: str, *args, ok: bool = False) -> str:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = importlib.import_module(module).main([str(a) for a in args])
            except SystemExit as e:  # argparse refuses a malformed option with exit code 2
                code = e.code
        assert code == (0 if ok else 2), err.getvalue()
        return err.getvalue() + out.getvalue()

    def cli_ok(self, module: str, *args) -> str:
        return self.cli(module, *args, ok=True)

    def sample(self, *args, ok: bool = False) -> str:
        return self.cli("gpt.sample", "--checkpoint", self.char_ck, "--max-new-tokens", 5, *args, ok=ok)

    def train(self, *args) -> str:
        return self.cli("gpt.train", "--preset", "bigram", "--max-iters", 10, "--out", self.root / "out", *args)

    # --- the Python API ---
    def generation(self, prompt: str = PROMPT, model: str = "char", **kw):
        m, tok = (self.char, self.char_tok) if model == "char" else (self.gpt2, self.gpt2_tok)
        return generate_text(m, tok, prompt, **{"max_new_tokens": 5, **kw})

    def generate(self, prompt: str = PROMPT, model: str = "char", **kw) -> str:
        """What came back, in one line."""
        gen = self.generation(prompt, model, **kw)
        return (f"{len(gen.new_ids)} new tokens; start token used: {gen.used_start_token}; "
                f"cropped: {gen.cropped}; {len(gen.prompt_ids)} prompt tokens")

    def greedy(self) -> str:
        same = self.generation(temperature=0, seed=1).text == self.generation(temperature=0, seed=2).text
        return f"temperature 0, seeds 1 and 2 give the same text: {same}"

    def train_api(self, text: str, **config) -> None:
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=self.char_tok.vocab_size, **config))
        Trainer(model, TokenData.from_text(text, self.char_tok), TrainConfig(max_iters=1))

    # --- the app ---
    def app_error(self, api_name: str, *args, **kwargs) -> str:
        with pytest.raises(AppError) as info:
            self.client.predict(*args, api_name=api_name, **kwargs)
        return str(info.value)

    def app_ok(self, api_name: str, *args, **kwargs) -> str:
        """The first output plus every message shown (gr.Info, gr.Warning) while it ran."""
        job = self.client.submit(*args, api_name=api_name, **kwargs)
        out = job.result(timeout=120)
        shown = [str(out[0] if isinstance(out, tuple) else out)]
        while not job.communicator.updates.empty():
            update = job.communicator.updates.get_nowait()
            if getattr(update, "log", None):
                shown.append(update.log[0])
        return " | ".join(shown)

    def inspect(self, prompt: str = PROMPT, model: str = "untrained-char", layer=0, head=0, scale="×1") -> tuple:
        return (prompt, model, layer, head, True, scale, 0, 0, 1.0, 0, 1.0)

    def gen_args(self, prompt: str = PROMPT, model: str = "untrained-char", n=5, temperature=1.0, top_k=0,
                 top_p=1.0, seed=0) -> tuple:
        return (prompt, model, n, temperature, top_k, top_p, seed)

    def train_app(self, corpus="Tiny Shakespeare", upload=None, tokenizer="char", preset="single-head",
                  **overrides) -> dict:
        return dict(corpus=corpus, upload=upload, tokenizer=tokenizer, preset=preset, **{**TINY, **overrides})

    def upload(self, name: str, **overrides) -> str:
        return self.app_error("/train", **self.train_app("My uploaded .txt", handle_file(self.file(name)),
                                                         **overrides))

    def raw_call(self, api_name: str, data: list) -> str:
        """POST /gradio_api/call/<api_name> with a JSON body as written (NaN allowed); the error shown."""
        body = json.dumps({"data": data})
        r = httpx.post(f"{self.url}gradio_api/call/{api_name}", content=body,
                       headers={"content-type": "application/json"}, timeout=60)
        r.raise_for_status()
        stream = httpx.get(f"{self.url}gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=120).text
        assert stream.startswith("event: error"), stream[:300]
        return json.loads(stream.split("data:", 1)[1])["error"]

    def raw_upload(self, path: str) -> str:
        with open(path, "rb") as f:
            r = httpx.post(f"{self.url}gradio_api/upload", files={"files": ("big.txt", f, "text/plain")},
                           timeout=120)
        return f"{r.status_code} {r.text}"


def raises(exc: type[Exception], fn) -> str:
    """The message of the exception ``fn`` raises, which must be exactly of type ``exc``."""
    with pytest.raises(exc) as info:
        fn()
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}"
    return str(info.value)


def case(surface: str, case_id: str, call, expected: str):
    return pytest.param(surface, call, expected, id=f"{surface}:{case_id}")




def surfaces_fixture(cls: type, name: str):
    """A table's module-scoped ``t`` fixture: one ``cls`` over the shared app, its client closed afterwards."""

    @pytest.fixture(scope="module")
    def t(tmp_path_factory, app_url, char_tok, gpt2_tok):
        surfaces = cls(tmp_path_factory.mktemp(name), app_url, char_tok, gpt2_tok)
        yield surfaces
        surfaces.client.close()

    return t


def check_message(t: Surfaces, surface: str, call, expected: str) -> None:
    """Run one row: the answer names the problem, with no traceback and no object repr; the app's answers
    never show a server path (the CLI and the Python API may name the path their caller gave them)."""
    text = call(t)
    assert expected in text, text[:1000]
    assert "Traceback" not in text and "object at 0x" not in text
    assert str(t.root) not in text or surface != "app"


def table_test(cases: list):
    """The table's one test: every row through ``check_message``, run from the repository root (relative
    paths such as TRAVERSAL resolve from there)."""

    @pytest.mark.parametrize("surface, call, expected", cases)
    def test_bad_input_gets_a_specific_message(t, surface, call, expected, monkeypatch):
        monkeypatch.chdir(ROOT)
        check_message(t, surface, call, expected)

    return test_bad_input_gets_a_specific_message
