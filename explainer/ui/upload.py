"""Upload a checkpoint zip (what the Train tab downloads) to make it this session's model.

The zip is read member by member, never extracted as a whole: only ``meta.json``, the
weights and training state it names and ``loss.csv`` are written, under fixed names, into a fresh folder that the caller
gives (the session's own), and only after every member name and size was checked. The
report files the Train tab adds (``report.md``, ``loss.html``) are skipped; its training state
(``train-state-<sha12>.safetensors``, named in meta.json; ``continue_run``) and ``loss.csv`` are
kept, so the upload can be trained on exactly; anything else is refused. The checkpoint is then
loaded like every other one (``gpt.load_checkpoint``: SHA-256, config, vocabulary; safetensors, never pickle).
"""
from __future__ import annotations

import json
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from . import limits

META = "meta.json"
SKIPPED = ("report.md", "loss.html")  # what the Train tab's zip holds besides the checkpoint
LOSS_CSV = "loss.csv"  # kept: a continued run's loss curve goes on from it
WEIGHTS_RE = re.compile(r"^model-[0-9a-f]{12}\.safetensors$")
STATE_RE = re.compile(r"^train-state-[0-9a-f]{12}\.safetensors$")  # gpt.resume's training state
MAX_MEMBERS = 16
MAX_META_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = limits.MAX_PARAMS * 4 + 1_000_000  # float32 weights of the largest model allowed + header
MAX_STATE_BYTES = 2 * limits.MAX_PARAMS * 4 + 1_000_000  # two float32 moments per weight (AdamW) + header
MAX_LOSS_CSV_BYTES = 2_000_000  # one row per step: 5,000 steps are ~300 KB


class UploadError(ValueError):
    """The uploaded zip is not a checkpoint this app accepts; the message says why."""


def _check_name(name: str) -> list[str]:
    """The member's path parts; any absolute, parent-directory, drive or backslash name is refused."""
    if (not name or name.startswith("/") or "\\" in name or ":" in name or "\x00" in name
            or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))):
        raise UploadError(f"the zip holds a member named {name!r}, a path outside its folder: refused.")
    return name.rstrip("/").split("/")


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """basename -> member of a checkpoint zip (flat, or inside one top folder), names and kinds checked."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UploadError(f"the zip holds {len(infos)} entries; a checkpoint zip holds meta.json, its weights "
                          "and the report files.")
    files: dict[str, zipfile.ZipInfo] = {}
    tops = set()
    for info in infos:
        parts = _check_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadError(f"the zip member {info.filename!r} is a symbolic link: refused.")
        if info.flag_bits & 0x1:
            raise UploadError("the zip is encrypted; upload the checkpoint zip as the Train tab downloads it.")
        if len(parts) > 2 or (info.is_dir() and len(parts) > 1):
            raise UploadError(f"the zip member {info.filename!r} is in a subfolder; a checkpoint zip holds its "
                              "files in one folder.")
        if len(parts) == 2:
            tops.add(parts[0])
        if info.is_dir():
            tops.add(parts[0])
            continue
        if parts[-1] in files:
            raise UploadError(f"the zip holds {parts[-1]!r} twice.")
        files[parts[-1]] = info
    if len(tops) > 1 or (tops and any(len(_check_name(i.filename)) == 1 and not i.is_dir() for i in infos)):
        raise UploadError("the zip mixes folders; a checkpoint zip holds meta.json and its weights in one folder.")
    return files


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """The member's bytes, refused if its declared or its actual size exceeds ``cap``."""
    if info.file_size > cap:
        raise UploadError(f"the zip member {info.filename!r} unpacks to {info.file_size:,} bytes; the limit is "
                          f"{cap:,} bytes.")
    try:
        with zf.open(info) as f:
            data = f.read(cap + 1)  # a header that lies about the size is caught here
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError):
        raise UploadError(f"the zip member {info.filename!r} is damaged (its data does not match its header); "
                          "download the checkpoint again.") from None
    if len(data) > cap:
        raise UploadError(f"the zip member {info.filename!r} unpacks to more than {cap:,} bytes: refused.")
    return data


def import_checkpoint_zip(zip_path: str | Path, dest: str | Path):
    """``(model, tokenizer, meta)`` from an uploaded checkpoint zip, written into the new folder ``dest``.

    Raises UploadError (or gpt.CheckpointError, both ValueErrors) with a message; ``dest`` is removed
    again on any failure, and nothing is ever written outside it.
    """
    from gpt.checkpoint import CheckpointError, load_checkpoint
    from gpt.data import atomic_write_bytes

    dest = Path(dest)
    if dest.exists():
        raise UploadError("the upload folder exists already; upload again.")
    try:
        size = Path(zip_path).stat().st_size
    except OSError:
        raise UploadError("the upload is no longer on the server: upload it again.") from None
    if size > limits.MAX_CHECKPOINT_ZIP_BYTES:  # Gradio's cap is the same; this covers any other path in
        raise UploadError(f"the zip is {size / 2**20:.1f} MB; a checkpoint zip is at most "
                          f"{limits.MAX_CHECKPOINT_ZIP_MB} MB.")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadError("the upload is not a zip file; upload the checkpoint zip the Train tab downloads.") from None
    with zf:
        files = _members(zf)
        extra = sorted(n for n in files if n not in (META, LOSS_CSV) and n not in SKIPPED
                       and not WEIGHTS_RE.match(n) and not STATE_RE.match(n))
        if extra:
            raise UploadError(f"the zip holds {extra[0]!r}, which is not part of a checkpoint (meta.json, "
                              "model-<hash>.safetensors and the report files): refused.")
        if META not in files:
            raise UploadError("the zip holds no meta.json: it is not a playAttention checkpoint.")
        try:
            meta = json.loads(_read(zf, files[META], MAX_META_BYTES).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UploadError("the zip's meta.json is not valid JSON; the checkpoint is damaged.") from None
        weights = meta.get("weights") if isinstance(meta, dict) else None
        if not isinstance(weights, str) or not WEIGHTS_RE.match(weights) or weights not in files:
            raise UploadError("meta.json names weights the zip does not hold; the checkpoint is incomplete.")
        unused = sorted(n for n in files if WEIGHTS_RE.match(n) and n != weights)
        if unused:
            raise UploadError(f"the zip holds {unused[0]!r}, weights its meta.json does not name: refused.")
        blobs = {META: _read(zf, files[META], MAX_META_BYTES), weights: _read(zf, files[weights], MAX_WEIGHTS_BYTES)}
        state = meta.get("train_state")
        stray = sorted(n for n in files if STATE_RE.match(n) and n != state)
        if stray:
            raise UploadError(f"the zip holds {stray[0]!r}, a training state its meta.json does not name: refused.")
        if isinstance(state, str) and STATE_RE.match(state) and state in files:  # checked by hash when used
            blobs[state] = _read(zf, files[state], MAX_STATE_BYTES)
        if LOSS_CSV in files and state in blobs:
            blobs[LOSS_CSV] = _read(zf, files[LOSS_CSV], MAX_LOSS_CSV_BYTES)
    try:
        for name, blob in blobs.items():  # fixed, checked names inside dest only
            atomic_write_bytes(dest / name, blob)
        model, tok, meta = load_checkpoint(dest, with_meta=True)
        if model.num_params() > limits.MAX_PARAMS:
            raise UploadError(f"the uploaded model has {model.num_params():,} parameters; the limit here is "
                              f"{limits.MAX_PARAMS:,}.")
    except (CheckpointError, UploadError, OSError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(e, OSError):
            raise UploadError("the checkpoint could not be stored on the server; try again.") from None
        # the messages name the folder they read: say "the uploaded checkpoint", never a server path
        text = str(e).replace(f"checkpoint {dest}", "the uploaded checkpoint").replace(str(dest), "the upload")
        raise UploadError(text) from None
    return model, tok, meta


UPLOADED = "uploaded"  # the model key of a session's uploaded checkpoint


def _uploads_dir() -> Path:
    """This process's run folders (``run_files.RUNS_DIR``): swept at start-up when the process is gone."""
    from . import run_files

    return run_files.RUNS_DIR


def _retire(folder: Path) -> None:
    """Delete an upload's folder once an answer that may still read it is delivered (``run_files.retire``)."""
    from . import run_files

    run_files.retire(folder)


def adopt(session, zip_path: str | Path):
    """Make an uploaded checkpoint zip ``session``'s model (key ``uploaded``), replacing an earlier
    upload. Its files live in a new folder of this process's run folders, removed with the session."""
    import uuid

    from .registry import Loaded

    if not zip_path:
        raise UploadError("choose a checkpoint zip to upload (the file the Train tab downloads).")
    folder = _uploads_dir() / f"upload-{uuid.uuid4().hex[:12]}"
    model, tok, meta = import_checkpoint_zip(zip_path, folder / "checkpoint")
    model.requires_grad_(False)
    label = f"your uploaded checkpoint ({tok.name}, step {meta.get('step', '?')})"
    loaded = Loaded(UPLOADED, model, tok, label, meta, version=str(meta.get("weights_sha256", ""))[:12])
    old = getattr(session, "upload_folder", None)
    session.uploaded, session.upload_folder = loaded, folder
    session.traces.clear()
    if old is not None:
        _retire(old)
    return loaded


def release(session) -> None:
    """Forget the session's upload and retire its folder (the session ended)."""
    folder = getattr(session, "upload_folder", None)
    session.uploaded, session.upload_folder = None, None
    if folder is not None:
        _retire(folder)


__all__ = ["import_checkpoint_zip", "adopt", "release", "UploadError", "UPLOADED", "MAX_WEIGHTS_BYTES", "SKIPPED"]
