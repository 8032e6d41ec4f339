"""Where a training run's files live, and when they go (Gradio only names its cache folder).

Two roots, both per process (``<root>/<pid>/...``), so a restarted server can tell its own
folders from a dead process's:

* ``RUNS_DIR`` (``<temp>/playattention-runs/<pid>``): a run's working files (checkpoint folder,
  training state) and upload extractions. Never served.
* ``delivery_dir()`` (``<Gradio's cache>/playattention-exports/<pid>``): the files a visitor
  downloads (checkpoint zip, report), in a folder named ``<run id>-<128 random bits>``. They are
  inside Gradio's cache, so Gradio serves them as they are instead of keeping a copy that no
  one deletes when the session ends; and ``KeepLive`` tells Gradio's ``delete_cache`` schedule
  (which ages files by their ctime) to leave them, so a link stays valid while its session lives.

Both are deleted by the run's own cleanup: ``retire``d, then removed by ``purge`` once
``limits.EXPORT_GRACE_S`` is over (an answer being delivered stays valid).
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from . import limits

EXPORT_ROOT = Path(tempfile.gettempdir()) / "playattention-runs"
RUNS_DIR = EXPORT_ROOT / str(os.getpid())  # this process's run folders: EXPORT_ROOT/<pid>/<run id>
DELIVERY_NAME = "playattention-exports"
_retired: list[tuple[float, Path]] = []  # folders to delete once their grace time is over
_retired_lock = threading.Lock()
_started = False  # remove_stale_runs has run in this process


def gradio_cache() -> Path:
    """Gradio's cache folder (its own ``get_upload_folder``: ``GRADIO_TEMP_DIR`` or ``<temp>/gradio``)."""
    from gradio.utils import get_upload_folder

    return Path(os.path.abspath(get_upload_folder()))


def delivery_dir() -> Path:
    """This process's delivery folders (read when called: the cache folder comes from the environment)."""
    return gradio_cache() / DELIVERY_NAME / str(os.getpid())


def new_delivery(run_id: str) -> Path:
    """A fresh, unguessable folder for one export of run ``run_id``."""
    folder = delivery_dir() / f"{run_id}-{secrets.token_hex(16)}"
    folder.mkdir(parents=True)
    return folder


def retire(folder: Path) -> None:
    with _retired_lock:
        _retired.append((time.monotonic() + limits.EXPORT_GRACE_S, folder))


def retired() -> set[Path]:
    with _retired_lock:
        return {f for _, f in _retired}


def purge(now: float | None = None) -> int:
    """Delete the retired folders whose grace time is over; return how many."""
    now = time.monotonic() if now is None else now
    with _retired_lock:
        due = [f for t, f in _retired if t <= now]
        _retired[:] = [(t, f) for t, f in _retired if t > now]
    for folder in due:
        shutil.rmtree(folder, ignore_errors=True)
    return len(due)


def _folders(exclude: set[str] = frozenset()):
    """This process's live (not retired) run and delivery folders, except those of the runs in ``exclude``."""
    gone = retired()
    for root in (RUNS_DIR, delivery_dir()):
        for folder in root.iterdir() if root.is_dir() else []:
            if folder not in gone and folder.name.split("-", 1)[0] not in exclude:
                yield folder


def disk_used(exclude: set[str] = frozenset()) -> int:
    """Bytes of this process's run and delivery folders, not counting retired ones (deleted within
    EXPORT_GRACE_S) nor the runs named in ``exclude`` (their ids)."""
    return sum(p.stat().st_size for folder in _folders(exclude) for p in folder.rglob("*") if p.is_file())


def deliveries() -> list[str]:
    """Paths (as Gradio records them: ``os.path.abspath``) of every delivered file of this process, retired
    ones included: they stay until ``purge`` (their grace time), not until Gradio's schedule comes by."""
    root = delivery_dir()
    return [os.path.abspath(p) for folder in (root.iterdir() if root.is_dir() else [])
            for p in (folder.iterdir() if folder.is_dir() else []) if p.is_file()]


class KeepLive:
    """A component's ``keep_in_cache`` for Gradio: its own entries plus every delivered file.

    Gradio's ``delete_cache`` schedule skips the files in any component's ``keep_in_cache``;
    it only iterates it, and ``add``s a component's initial value files.
    """

    def __init__(self, kept=()):
        self.kept = set(kept)

    def add(self, path) -> None:
        self.kept.add(path)

    def __iter__(self):
        return iter([*self.kept, *deliveries()])


def remove_stale_runs() -> int:
    """At start-up: delete the run and delivery folders of processes that are gone (a crash or restart
    leaves them), and at the first call any named after this process (a previous one had its number:
    later calls, e.g. a second Blocks in the same process, keep this process's own files). Folders named
    after another live process stay (another server may share the temp folder); anything else older
    than ``limits.session_ttl_s()`` goes."""
    global _started
    removed, first, _started = 0, not _started, True
    for root in (EXPORT_ROOT, delivery_dir().parent):
        for entry in root.glob("*") if root.is_dir() else []:
            if entry.name.isdigit():  # at the first call, this process's own number: a previous one had it
                stale = (first and int(entry.name) == os.getpid()) or not _alive(int(entry.name))
            else:
                try:
                    stale = time.time() - entry.stat().st_mtime > limits.session_ttl_s()
                except OSError:
                    continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
