"""Run folders: checked before any work, owned by one run at a time, never silently replaced.

``vbench profile`` calls :func:`claim` before it counts anything: the folder
must be creatable and writable; a folder that already holds a run is refused
unless the user asked to finish it (``--only-missing``) or to replace it
(``--overwrite``); and an exclusive lock (:func:`bench.results.io.claim_dir`,
held until the process ends) keeps a second run from writing into it at the
same time. Default folders are created with an exclusive ``mkdir``, so two runs
started in the same second get two folders.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from bench.errors import UsageError
from bench.results.evaluation import EVAL_MARKS
from bench.results.io import check_writable_dir, claim_dir, lock_dir, probe_writable

__all__ = ["RUN_FILES", "check_out", "claim", "holds_run", "new_run_dir"]

RUN_FILES = ("results.json", "results.jsonl", "results.csv", "results.md")


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


def holds_run(path: Path) -> list[str]:
    """The run files ``path`` holds (empty when it holds no run)."""
    return [name for name in RUN_FILES if (path / name).exists()]


def _refuse_evaluation(path: Path) -> None:
    """Before anything is written there (the lock file too)."""
    evaluation = [name for name in EVAL_MARKS if (path / name).exists()]
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
        lock_dir(path)
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
    claim_dir(path, "--out")
    if _refuse_run(path, resume, overwrite) and overwrite and not resume:
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
        for log in (path / "logs").glob("*.log"):  # the logs a run writes; nothing else in there
            log.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (path / "logs").rmdir()
    return path
