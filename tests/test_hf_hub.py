"""gpt.load_pretrained with a Hub repo id, against a small stand-in Hub on 127.0.0.1 (HF_ENDPOINT):
the real huggingface_hub client fetches only config.json and model.safetensors, checks the config
before the weights, and a missing repo or a pickle-only repo gets its own message."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from hf_helpers import save_random_gpt2  # noqa: E402
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each case starts a Python process
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Hub(http.server.BaseHTTPRequestHandler):
    """/<owner>/<name>/resolve/<revision>/<file> from ``repos`` (a folder per repo), as the Hub answers."""

    repos: Path
    log: list

    def log_message(self, *args):
        pass

    def _answer(self, body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        self.log.append(f"{self.command} {'/'.join(parts)}")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._missing("")
        folder = self.repos / parts[1] if parts[0] == "someone" else None
        if folder is None or not folder.is_dir():
            return self._missing("RepoNotFound")
        path = folder / "/".join(parts[4:])
        if not path.is_file():
            return self._missing("EntryNotFound")
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _missing(self, code: str) -> None:
        self.send_response(404)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    repos = tmp_path_factory.mktemp("hub")
    save_random_gpt2(repos / "tiny-gpt2")
    (repos / "tiny-gpt2" / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # there, but never fetched
    (repos / "pickled").mkdir()
    (repos / "pickled" / "config.json").write_bytes((repos / "tiny-gpt2" / "config.json").read_bytes())
    (repos / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    (repos / "llama").mkdir()
    (repos / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (repos / "llama" / "model.safetensors").write_bytes((repos / "tiny-gpt2" / "model.safetensors").read_bytes())
    handler = type("Hub", (_Hub,), {"repos": repos, "log": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.log, repos
    server.shutdown()


def _load(hub_url: str, home: Path, repo: str, offline: bool = False) -> subprocess.CompletedProcess:
    """A fresh process (huggingface_hub reads HF_ENDPOINT when imported) that loads ``repo``."""
    code = ("import sys, torch, gpt\n"
            "try:\n"
            f"    m, tok = gpt.load_pretrained({repo!r})\n"
            "    idx = torch.tensor([tok.encode('Hello there')])\n"
            "    print('LOGITS', float(m(idx)[0].abs().sum()))\n"
            "except gpt.CheckpointError as e:\n"
            "    print('ERROR', e)\n")
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return r


def test_a_repo_id_downloads_only_config_and_safetensors(hub, tmp_path):
    url, log, repos = hub
    log.clear()
    r = _load(url, tmp_path / "home", "someone/tiny-gpt2")
    from gpt import load_pretrained

    model, tok = load_pretrained(repos / "tiny-gpt2")
    with torch.no_grad():
        local = float(model(torch.tensor([tok.encode("Hello there")]))[0].abs().sum())
    assert r.stdout.split()[0] == "LOGITS" and float(r.stdout.split()[1]) == pytest.approx(local, rel=1e-6)
    fetched = sorted({line.split()[1] for line in log if line.startswith("GET ") and "/resolve/" in line})
    assert fetched == ["someone/tiny-gpt2/resolve/main/config.json", "someone/tiny-gpt2/resolve/main/model.safetensors"]
    # now in the cache: offline, the same id loads without the Hub
    log.clear()
    r = _load(url, tmp_path / "home", "someone/tiny-gpt2", offline=True)
    assert r.stdout.startswith("LOGITS") and not [line for line in log if "/resolve/" in line]


@pytest.mark.parametrize("repo, message", [
    ("someone/missing", "there is no model 'someone/missing' on the Hugging Face Hub"),
    ("someone/pickled", "has no model.safetensors (only pickled weights?); playAttention never loads pickle"),
    ("someone/llama", "model_type 'llama'"),
])
def test_hub_errors_have_their_own_message(hub, tmp_path, repo, message):
    url, log, _ = hub
    log.clear()
    r = _load(url, tmp_path / "home", repo)
    assert r.stdout.startswith("ERROR") and message in r.stdout, r.stdout
    assert not any(line.endswith((".bin", "model.safetensors")) and line.startswith("GET") for line in log), log
