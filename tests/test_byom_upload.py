"""Uploading a checkpoint zip (the Train tab's download) as a session's model: validated, never
unpickled, nothing written outside the session's folder."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from explainer.ui.upload import MAX_WEIGHTS_BYTES, UploadError, import_checkpoint_zip
from gpt import GPT, preset_config, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, char_tok):
    """A real checkpoint folder as the Train tab exports it (with its report files), and its model."""
    torch.manual_seed(0)
    model = GPT(preset_config("block", char_tok.vocab_size, n_embd=32, block_size=32)).eval()
    root = tmp_path_factory.mktemp("export")
    folder = root / "playattention-block-char-step7"
    save_checkpoint(model, char_tok, folder, step=7)
    for name in ("report.md", "loss.csv", "loss.html"):
        (folder / name).write_text("report")
    return folder, model


def _zip(path: Path, members: dict[str, bytes], links=()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _members(folder: Path, top: str | None = "ckpt") -> dict[str, bytes]:
    return {(f"{top}/" if top else "") + p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("top", ["playattention-block-char-step7", None], ids=["in-folder", "flat"])
def test_the_train_tabs_zip_loads_as_the_same_model(checkpoint, tmp_path, top):
    folder, model = checkpoint
    z = tmp_path / "up.zip"
    if top:  # exactly how the Train tab builds its download
        z = Path(shutil.make_archive(str(tmp_path / "up"), "zip", root_dir=folder.parent, base_dir=folder.name))
    else:
        _zip(z, _members(folder, None))
    session = tmp_path / "session"
    session.mkdir()
    loaded, tok, meta = import_checkpoint_zip(z, session / "upload")
    assert meta["step"] == 7 and tok.vocab_size == model.config.vocab_size
    idx = torch.tensor([tok.encode("ROMEO:")])
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], model(idx)[0])
    assert sorted(os.listdir(session / "upload")) == ["meta.json", meta["weights"]]  # report files skipped


BAD_NAMES = ["../evil.safetensors", "ckpt/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt", "C:evil.txt",
             "ckpt/./meta.json"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_path_traversal_names_are_refused_and_nothing_is_written(checkpoint, tmp_path, bad):
    members = {**_members(checkpoint[0]), bad: b"x"}
    z = _zip(tmp_path / "up.zip", members)
    before = _listing(tmp_path)
    with pytest.raises(UploadError, match="a path outside its folder"):
        import_checkpoint_zip(z, tmp_path / "session" / "upload")
    assert _listing(tmp_path) == before and not Path("/tmp/evil.txt").exists()


def test_symlink_member_is_refused(checkpoint, tmp_path):
    z = _zip(tmp_path / "up.zip", _members(checkpoint[0]), links=["ckpt/passwd"])
    with pytest.raises(UploadError, match="symbolic link"):
        import_checkpoint_zip(z, tmp_path / "upload")
    assert not (tmp_path / "upload").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("extra", ["notes.txt", "pytorch_model.bin", "train.pkl", "sub/meta.json"])
def test_extra_files_are_refused(checkpoint, tmp_path, extra):
    marker = tmp_path / "pwned"
    members = {**_members(checkpoint[0]), f"ckpt/{extra}": pickle.dumps(_Payload(marker))}
    z = _zip(tmp_path / "up.zip", members)
    with pytest.raises(UploadError, match="not part of a checkpoint|in a subfolder"):
        import_checkpoint_zip(z, tmp_path / "upload")
    assert not marker.exists() and not (tmp_path / "upload").exists()


@pytest.mark.slow
def test_a_1_gb_member_is_refused_unread(checkpoint, tmp_path):
    """A zip bomb: 1 GiB of zeros deflates to a few MB, under the upload cap; its header says 1 GiB."""
    folder = checkpoint[0]
    meta = json.loads((folder / "meta.json").read_text())
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ckpt/meta.json", (folder / "meta.json").read_bytes())
        info = zipfile.ZipInfo(f"ckpt/{meta['weights']}")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(1024):
                f.write(block)
    assert z.stat().st_size < 10 * 2**20
    with pytest.raises(UploadError, match=f"unpacks to 1,073,741,824 bytes; the limit is {MAX_WEIGHTS_BYTES:,}"):
        import_checkpoint_zip(z, tmp_path / "upload")
    assert not (tmp_path / "upload").exists()


def test_a_member_whose_header_lies_about_its_size(checkpoint, tmp_path):
    """The declared size is small but the data is larger: reading stops at the cap (or the CRC check fails)."""
    folder = checkpoint[0]
    z = _zip(tmp_path / "up.zip", _members(folder))
    data = bytearray(z.read_bytes())
    name = json.loads((folder / "meta.json").read_text())["weights"].encode()
    # shrink the declared uncompressed size of the weights in the central directory to 10 bytes
    pos = data.find(name, data.find(b"PK\x01\x02"))  # the weights' entry in the central directory
    header = data.rfind(b"PK\x01\x02", 0, pos)
    assert header >= 0
    data[header + 24:header + 28] = (10).to_bytes(4, "little")
    (tmp_path / "lie.zip").write_bytes(bytes(data))
    with pytest.raises(UploadError, match="is damaged|unpacks to more than"):
        import_checkpoint_zip(tmp_path / "lie.zip", tmp_path / "upload")
    assert not (tmp_path / "upload").exists()


def _tampered(checkpoint, tmp_path, edit_meta=None, edit_weights=None) -> Path:
    members = _members(checkpoint[0])
    meta_name = "ckpt/meta.json"
    meta = json.loads(members[meta_name])
    wname = f"ckpt/{meta['weights']}"
    if edit_weights:
        members[wname] = edit_weights(members[wname])
    if edit_meta:
        edit_meta(meta)
        members[meta_name] = json.dumps(meta).encode()
    return _zip(tmp_path / "up.zip", members)


@pytest.mark.parametrize("case, meta_edit, weights_edit, match", [
    ("hash", None, lambda b: b[:-4] + b"\x00\x00\x00\x01", "corrupt or truncated \\(SHA-256 mismatch\\)"),
    ("truncated", None, lambda b: b[:100], "corrupt or truncated"),
    ("vocabulary", lambda m: m["tokenizer"].update(chars=m["tokenizer"]["chars"][:-1]), None,
     "the tokenizer has 64 tokens but the model expects 65"),
    ("config", lambda m: m["config"].update(n_head=5), None, "invalid config"),
    ("no meta weights", lambda m: m.update(weights="../../etc/passwd"), None, "names weights the zip does not hold"),
    ("not ours", lambda m: m.update(format="something-else"), None, "not a playAttention checkpoint"),
])
def test_invalid_checkpoints_are_refused_with_a_message(checkpoint, tmp_path, case, meta_edit, weights_edit, match):
    z = _tampered(checkpoint, tmp_path, meta_edit, weights_edit)
    with pytest.raises(UploadError, match=match) as e:
        import_checkpoint_zip(z, tmp_path / "upload")
    assert str(tmp_path) not in str(e.value)  # no server paths in the message
    assert not (tmp_path / "upload").exists()


def test_too_many_parameters(tmp_path, char_tok, monkeypatch):
    from explainer.ui import limits

    model = GPT(preset_config("block", char_tok.vocab_size, n_embd=32, block_size=32))
    save_checkpoint(model, char_tok, tmp_path / "ck", step=1)
    z = _zip(tmp_path / "up.zip", _members(tmp_path / "ck"))
    monkeypatch.setattr(limits, "MAX_PARAMS", model.num_params() - 1)
    with pytest.raises(UploadError, match=f"has {model.num_params():,} parameters; the limit here is"):
        import_checkpoint_zip(z, tmp_path / "upload")


def test_not_a_zip_and_no_meta(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK not really")
    with pytest.raises(UploadError, match="not a zip file"):
        import_checkpoint_zip(tmp_path / "x.zip", tmp_path / "upload")
    z = _zip(tmp_path / "y.zip", {"ckpt/model-0123456789ab.safetensors": b"x"})
    with pytest.raises(UploadError, match="no meta.json"):
        import_checkpoint_zip(z, tmp_path / "upload")
    assert hashlib  # (imported for the tamper helpers' readers)


def test_an_upload_becomes_the_sessions_model_until_it_ends(checkpoint, tmp_path, monkeypatch):
    from explainer import trace_prompt
    from explainer.ui import run_files, upload
    from explainer.ui.session import Session

    monkeypatch.setattr(run_files, "RUNS_DIR", tmp_path / "runs")
    folder, model = checkpoint
    z = Path(shutil.make_archive(str(tmp_path / "up"), "zip", root_dir=folder.parent, base_dir=folder.name))
    s, other = Session(), Session()
    loaded = upload.adopt(s, str(z))
    assert ("uploaded" in [k for _, k in s.choices()]) and "uploaded" not in [k for _, k in other.choices()]
    assert s.model("uploaded") is loaded and "step 7" in loaded.label
    tr = trace_prompt(loaded.model, loaded.tokenizer, "ROMEO:")
    assert tr.weights.shape[:2] == (2, 4)
    saved = list((tmp_path / "runs").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("upload-")  # only inside this process's run folders
    with pytest.raises(UploadError, match="choose a checkpoint zip"):
        upload.adopt(s, None)
    s.release()
    with pytest.raises(ValueError, match="has not uploaded a checkpoint yet"):
        s.model("uploaded")
    assert saved[0] in run_files.retired() or not saved[0].exists()  # its folder goes (after the grace time)
