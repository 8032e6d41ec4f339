"""Bad input for "Continue training" (/continue) and the checkpoint zips it continues. Same form as
``tests/test_bad_inputs.py``: each row is (surface, case id, call, expected fragment); a case passes when
the fragment is in the text the user sees and no traceback is. Each call runs in a fresh session.

An uploaded checkpoint without a training state is refused (it cannot be continued exactly; the message
names ``--init-from``), as is one whose state was not written by the Train tab or does not match."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from bad_input_surfaces import TINY, Surfaces, case, surfaces_fixture, table_test
from explainer.ui import continue_run, train_tab
from explainer.ui.training import TrainingRun

SOURCE = dict(source="my latest run", steps=10, corpus=train_tab.SHAKESPEARE, text_upload=None)


def _app_zip(tokenizer_text: str | None = None) -> Path:
    """The Train tab's zip of a tiny run stopped at step 5 of 10 (on Shakespeare, or on a .txt)."""
    hp = {**TINY, "iters": 10}
    args = [hp[k] for k in ("iters", "lr", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "dropout",
                            "seed", "sample_every")]
    corpus = train_tab.UPLOAD if tokenizer_text else train_tab.SHAKESPEARE
    run = TrainingRun(train_tab.make_spec(corpus, tokenizer_text, "char", "single-head", *args))
    continue_run.plan(run.trainer, 5)
    run.start()
    for _ in run.updates(0.05):
        pass
    return Path(run.export().zip_path)


def _rezip(src: Path, dst: Path, edit=None, extra: dict | None = None) -> Path:
    """A copy of the zip ``src`` with each member passed through ``edit(name, data)`` and ``extra`` added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        top = zin.namelist()[0].split("/")[0]
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, edit(name, data) if edit else data)
        for name, data in (extra or {}).items():
            zout.writestr(f"{top}/{name}", data)
    return dst


def _zip_folder(folder: Path, dst: Path) -> Path:
    return Path(shutil.make_archive(str(dst.with_suffix("")), "zip", root_dir=folder.parent, base_dir=folder.name))


def _flip_state(name: str, data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1]) if "train-state-" in name else data


class Continue(Surfaces):
    """The table's surfaces plus the Train tab's zips: good, damaged, from the CLI, from another corpus."""

    def __init__(self, root, url, char_tok, gpt2_tok):
        super().__init__(root, url, char_tok, gpt2_tok)
        good = _app_zip()
        (root / "abc.txt").write_text("abc cab bac acb " * 200)
        self.zips = {
            "no-state": _zip_folder(self.char_ck, root / "no-state.zip"),
            "corrupt-state": _rezip(good, root / "corrupt-state.zip", _flip_state),
            "stray-state": _rezip(good, root / "stray-state.zip", extra={"train-state-0123456789ab.safetensors": b"x"}),
            "other-corpus": _app_zip(str(root / "abc.txt")),
        }
        stopped = root / "cli-stopped"
        self.cli_ok("gpt.train", "--preset", "bigram", "--max-iters", 10, "--stop-at", 5, "--eval-iters", 1,
                    "--out", stopped)
        self.zips["cli-state"] = _zip_folder(stopped, root / "cli-state.zip")

    def fresh(self) -> Client:
        return Client(self.url, verbose=False)

    def go(self, upload: str | None = None, train: bool = False, **kw) -> str:
        """/continue in a new session, after uploading the zip ``upload`` or training a tiny run."""
        c = self.fresh()
        try:
            if upload:
                c.predict(handle_file(str(self.zips[upload])), api_name="/upload_checkpoint")
            if train:
                c.predict(**self.train_app(), api_name="/train")
            return self._error(c, {**SOURCE, **({"source": "my uploaded checkpoint"} if upload else {}), **kw})
        finally:
            c.close()

    def _error(self, c: Client, args: dict) -> str:
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError) as info:
            c.predict(**args, api_name="/continue")
        return str(info.value)

    def upload_only(self, name: str) -> str:
        c = self.fresh()
        try:
            return self._error_upload(c, name)
        finally:
            c.close()

    def _error_upload(self, c: Client, name: str) -> str:
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError) as info:
            c.predict(handle_file(str(self.zips[name])), api_name="/upload_checkpoint")
        return str(info.value)


CASES = [
    case("app", "continue-without-a-run", lambda t: t.go(), "there is no run to continue yet"),
    case("app", "continue-uploaded-before-upload", lambda t: t.go(source="my uploaded checkpoint"),
         "no checkpoint uploaded yet"),
    case("app", "continue-zero-steps", lambda t: t.go(steps=0), "More steps must be a number between 1 and 5000"),
    case("app", "continue-fractional-steps", lambda t: t.go(steps=1.5),
         "More steps must be a whole number between 1 and 5000"),
    case("app", "continue-unknown-source", lambda t: t.go(source="everything"),
         "Continue must be one of: my latest run, my uploaded checkpoint"),
    case("app", "continue-past-the-step-limit", lambda t: t.go(train=True, steps=4995),
         "would pass the 5,000-step limit: ask for at most 4,990"),
    case("app", "continue-zip-without-training-state", lambda t: t.go(upload="no-state"),
         "carries no training state (optimiser, step, random streams)"),
    case("app", "continue-zip-corrupt-training-state", lambda t: t.go(upload="corrupt-state"),
         "corrupt or truncated (SHA-256 mismatch)"),
    case("app", "continue-zip-from-the-cli", lambda t: t.go(upload="cli-state"),
         "was not written by this app's Train tab"),
    case("app", "continue-zip-on-another-corpus", lambda t: t.go(upload="other-corpus"),
         "was trained on 'abc.txt', not on the corpus chosen here"),
    case("app", "upload-zip-with-a-stray-training-state", lambda t: t.upload_only("stray-state"),
         "a training state its meta.json does not name"),
]


t = surfaces_fixture(Continue, "bad-inputs-continue")


test_bad_input_gets_a_specific_message = table_test(CASES)


def test_the_refused_continuation_leaves_the_run_as_it_was(t):
    """A refused /continue changes nothing: the session's run still continues afterwards."""
    c = t.fresh()
    try:
        c.predict(**t.train_app(iters=20), api_name="/train")
        t._error(c, {**SOURCE, "steps": 4985})
        out = c.predict(**{**SOURCE, "steps": 5}, api_name="/continue")
        assert "step 25 / 25" in out[1]
        with zipfile.ZipFile(out[4]) as z:
            meta = json.loads(z.read(next(n for n in z.namelist() if n.endswith("meta.json"))))
        assert meta["step"] == 25 and meta["train_state_step"] == 25
    finally:
        c.close()
