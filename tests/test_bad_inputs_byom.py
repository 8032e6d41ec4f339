"""Bad input for "bring your own model": Hugging Face folders and repo ids, resumable training, and
checkpoint zips uploaded to the app. Same form as ``tests/test_bad_inputs.py``: each row is
(surface, case id, call, expected fragment); a case passes when the fragment is in the text the
user sees and no traceback is."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from bad_input_surfaces import Surfaces, case, raises, surfaces_fixture, table_test
from gpt import CheckpointError, load_pretrained
from gradio_client import handle_file

transformers = pytest.importorskip("transformers")
from hf_helpers import save_random_gpt2  # noqa: E402


class Byom(Surfaces):
    """The table's surfaces plus a random GPT-2 folder (and broken copies), a stopped run and zips."""

    def __init__(self, root, url, char_tok, gpt2_tok):
        super().__init__(root, url, char_tok, gpt2_tok)
        self.hf = save_random_gpt2(root / "hf-good")
        self.stopped = root / "stopped"
        self.cli_ok("gpt.train", "--preset", "bigram", "--max-iters", 10, "--stop-at", 5, "--eval-iters", 1,
                    "--out", self.stopped)
        self.corrupt = root / "stopped-corrupt"
        shutil.copytree(self.stopped, self.corrupt)
        state = next(self.corrupt.glob("train-state-*.safetensors"))
        blob = bytearray(state.read_bytes())
        blob[-1] ^= 1
        state.write_bytes(bytes(blob))
        self.zips = {name: self._zip(name) for name in
                     ("extra-file", "traversal", "not-a-zip", "hash", "no-meta", "1gb")}

    def hf_variant(self, name: str, config_edit=None, weights=None) -> Path:
        d = self.root / f"hf-{name}"
        if not d.exists():
            shutil.copytree(self.hf, d)
            if config_edit:
                cfg = json.loads((d / "config.json").read_text())
                config_edit(cfg)
                (d / "config.json").write_text(json.dumps(cfg))
            if weights:
                weights(d)
        return d

    def _zip(self, name: str) -> Path:
        path = self.root / f"upload-{name}.zip"
        if name == "not-a-zip":
            path.write_bytes(b"this is not a zip")
            return path
        meta = json.loads((self.char_ck / "meta.json").read_text())
        members = {"ck/meta.json": (self.char_ck / "meta.json").read_bytes(),
                   f"ck/{meta['weights']}": (self.char_ck / meta["weights"]).read_bytes()}
        if name == "extra-file":
            members["ck/notes.txt"] = b"hello"
        elif name == "traversal":
            members["ck/../../../etc/cron.d/evil"] = b"x"
        elif name == "hash":
            members[f"ck/{meta['weights']}"] = members[f"ck/{meta['weights']}"][:-1] + b"\x01"
        elif name == "no-meta":
            del members["ck/meta.json"]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, data in members.items():
                if name == "1gb" and member.endswith(".safetensors"):
                    info = zipfile.ZipInfo(member)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with zf.open(info, "w", force_zip64=True) as f:
                        block = bytes(1 << 20)
                        for _ in range(1024):
                            f.write(block)
                else:
                    zf.writestr(member, data)
        return path

    def upload_zip(self, name: str) -> str:
        return self.app_error("/upload_checkpoint", handle_file(str(self.zips[name])))

    def resume(self, folder, *args) -> str:
        return self.cli("gpt.train", "--resume", folder, "--out", self.root / "resumed", *args)


def _truncate(d: Path) -> None:
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])


def _pickle_only(d: Path) -> None:
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")


def _hf(t, name, edit=None, weights=None) -> str:
    return raises(CheckpointError, lambda: load_pretrained(t.hf_variant(name, edit, weights)))


CASES = [
    # --- command line: resumable training ---
    case("cli", "resume-without-state", lambda t: t.resume(t.char_ck), "carries no training state"),
    case("cli", "resume-corrupt-state", lambda t: t.resume(t.corrupt), "corrupt or truncated (SHA-256 mismatch)"),
    case("cli", "resume-missing-folder", lambda t: t.resume(t.no_meta), "meta.json is missing"),
    case("cli", "resume-new-settings", lambda t: t.resume(t.stopped, "--lr", "0.01"), "--lr cannot be given with it"),
    case("cli", "stop-at-above-max-iters", lambda t: t.train("--stop-at", 99),
         "stop_at must be a whole number from 1 to max_iters (10)"),
    case("cli", "stop-at-with-half", lambda t: t.train("--stop-at", 5, "--half"), "drop --half or --stop-at"),
    # --- Python API: gpt.load_pretrained ---
    case("api", "hf-no-config", lambda t: _hf(t, "no-config", weights=lambda d: (d / "config.json").unlink()),
         "has no config.json"),
    case("api", "hf-other-architecture", lambda t: _hf(t, "llama", lambda c: c.update(model_type="llama")),
         "model_type 'llama'"),
    case("api", "hf-cross-attention", lambda t: _hf(t, "cross", lambda c: c.update(add_cross_attention=True)),
         "add_cross_attention"),
    case("api", "hf-shape-mismatch", lambda t: _hf(t, "shape", lambda c: c.update(n_positions=64)),
         "tensor wpe.weight has shape (32, 32)"),
    case("api", "hf-truncated", lambda t: _hf(t, "truncated", weights=_truncate), "not a complete safetensors file"),
    case("api", "hf-pickle-only", lambda t: _hf(t, "pickle", weights=_pickle_only),
         "only pickled weights (pytorch_model.bin)"),
    case("api", "hf-other-vocabulary", lambda t: _hf(t, "vocab", lambda c: c.update(vocab_size=50304)),
         "vocab_size 50304"),
    case("api", "hf-repo-offline", lambda t: raises(CheckpointError, lambda: load_pretrained("nobody-xyz/nothing")),
         "the Hugging Face Hub is unreachable"),
    # --- the app: checkpoint zips uploaded in Inspect ---
    case("app", "upload-extra-file", lambda t: t.upload_zip("extra-file"), "'notes.txt', which is not part of"),
    case("app", "upload-path-traversal", lambda t: t.upload_zip("traversal"), "a path outside its folder"),
    case("app", "upload-1gb-member", lambda t: t.upload_zip("1gb"), "unpacks to 1,073,741,824 bytes"),
    case("app", "upload-not-a-zip", lambda t: t.upload_zip("not-a-zip"), "not a zip file"),
    case("app", "upload-corrupt-weights", lambda t: t.upload_zip("hash"), "SHA-256 mismatch"),
    case("app", "upload-no-meta", lambda t: t.upload_zip("no-meta"), "no meta.json"),
    case("app", "inspect-uploaded-before-upload", lambda t: t.app_error("/inspect", *t.inspect(model="uploaded")),
         "has not uploaded a checkpoint yet"),
]


t = surfaces_fixture(Byom, "bad-inputs-byom")


test_bad_input_gets_a_specific_message = table_test(CASES)
