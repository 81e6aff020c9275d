"""Run folders: checked before any work, owned by one run at a time, never silently replaced.

``vbench profile`` calls :func:`claim` before it counts anything: the folder
must be creatable and writable; a folder that already holds a run is refused
unless the user asked to finish it (``--only-missing``) or to replace it
(``--overwrite``); and an exclusive lock (``flock`` on ``.vbench.lock``, held
until the process ends) keeps a second run from writing into it at the same
time. Default folders are created with an exclusive ``mkdir``, so two runs
started in the same second get two folders.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO

from bench.errors import UsageError

__all__ = ["RUN_FILES", "check_out", "check_writable_dir", "claim", "holds_run", "new_run_dir", "probe_writable"]

RUN_FILES = ("results.json", "results.jsonl", "results.csv", "results.md")
LOCK = ".vbench.lock"

_held: dict[Path, IO[str]] = {}  # open lock files: the locks last as long as this process


def new_run_dir(root: Path = Path("reports/runs"), prefix: str = "") -> Path:
    """``root/<prefix><YYYYmmdd-HHMMSS>``, or ``...-2``, ``-3`` when that exists: created here, never shared."""
    check_writable_dir(root, "--out")
    stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = root / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UsageError(f"cannot find a free folder name under '{root}'")


def check_writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and prove that a file can be written in it; one-line errors otherwise."""
    if str(path) == "":
        raise UsageError(f"{what} is empty; name a folder")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} '{path}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        why = "a part of the path is a file" if e.errno in (errno.ENOTDIR, errno.EEXIST) else e.strerror
        raise UsageError(f"{what} '{path}' cannot be written: {why}") from None
    return path


def probe_writable(path: Path, what: str) -> Path:
    """Would ``path`` be a writable folder? Checked without creating anything (one-line errors)."""
    if str(path) == "":
        raise UsageError(f"{what} is empty; name a folder")
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} '{path}' is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{what} '{path}' cannot be written: permission denied")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} '{path}' cannot be written: a part of the path is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} '{path}' cannot be written: '{parent}' is not writable")
    return path


def holds_run(path: Path) -> list[str]:
    """The run files ``path`` holds (empty when it holds no run)."""
    return [name for name in RUN_FILES if (path / name).exists()]


def _lock(path: Path) -> None:
    import fcntl

    if path.resolve() in _held:
        return
    f = (path / LOCK).open("a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise UsageError(
            f"another vbench run (pid {pid[:20]}) is writing into '{path}'; wait for it or choose another --out"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _held[path.resolve()] = f


EVALUATION_FILES = ("evaluation.json", "predictions.jsonl")
"""What a ``vbench evaluate`` folder holds: a profile run never writes into one (a report would see only the
evaluation), not even with ``--overwrite``."""


def _refuse_evaluation(path: Path) -> None:
    """Before anything is written there (the lock file too)."""
    evaluation = [name for name in EVALUATION_FILES if (path / name).exists()]
    if evaluation:
        raise UsageError(
            f"--out '{path}' holds a vbench evaluation ({', '.join(evaluation)}), not a run; choose another folder"
        )


def _refuse_run(path: Path, resume: bool, overwrite: bool) -> list[str]:
    found = holds_run(path)
    if found and not (resume or overwrite):
        raise UsageError(
            f"--out '{path}' already holds a run ({', '.join(found)}); pass --only-missing to finish it, "
            "--overwrite to replace it, or choose another folder"
        )
    return found


def check_out(path: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Before any work: could ``path`` be this run's folder? Creates nothing but the lock of an existing folder.

    Raises:
        UsageError: an unwritable path, a folder another run is writing, or a folder holding a run.
    """
    probe_writable(path, "--out")
    if path.is_dir():
        _refuse_evaluation(path)
        with contextlib.suppress(ImportError):
            _lock(path)
        _refuse_run(path, resume, overwrite)
    return path


def claim(path: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Make ``path`` this run's folder: created, locked, and holding no other run unless asked.

    Args:
        resume: ``--only-missing``: the run it holds is to be finished (its rows are kept).
        overwrite: ``--overwrite``: the run it holds is to be replaced (its files are removed).

    Raises:
        UsageError: an unwritable path, a folder another run is writing, or a folder holding a run.
    """
    _refuse_evaluation(path)
    check_writable_dir(path, "--out")
    with contextlib.suppress(ImportError):
        _lock(path)
    if _refuse_run(path, resume, overwrite) and overwrite and not resume:
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
        for log in (path / "logs").glob("*.log"):  # the logs a run writes; nothing else in there
            log.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (path / "logs").rmdir()
    return path
