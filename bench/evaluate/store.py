"""The evaluation folder, written and read here: checked and claimed before any work, its prediction lines
written as they come (:class:`EvalWriter`) and read back for ``--only-missing``, its summary and CSV files, and
the fingerprint that an earlier evaluation must match to be finished.

The folder's files are listed in :data:`bench.results.evaluation.EVAL_FILES`, which also reads them back;
:mod:`bench.evaluate.loop` calls the writer as it goes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import OutputError, UsageError
from bench.evaluate.datasets import Dataset
from bench.evaluate.metrics import Metrics, Timing
from bench.evaluate.video import SKIP_REASONS, ViewSpec
from bench.results.evaluation import CONFUSION, EVAL_FILES, PER_CLASS, PREDICTIONS, SUMMARY, read_summary
from bench.results.io import (
    LOCK,
    atomic_write_text,
    claim_dir,
    is_temp_name,
    probe_writable,
    read_text,
    release_dir,
)

__all__ = [
    "RETRIED_REASONS",
    "EvalWriter",
    "check_eval_out",
    "claim_eval_out",
    "confusion_csv",
    "fingerprint",
    "keep_previous",
    "per_class_csv",
    "remove_if_empty",
    "sha256_text",
]


RETRIED_REASONS = ("missing", "unreadable", "corrupt")
"""Skips whose cause can change (the file is copied in, finishes downloading, is replaced): ``--only-missing``
tries those videos again. A video too short, without a video stream or that made the model output NaN is not."""


def rewrite_predictions(out: Path, records: Sequence[dict[str, Any]]) -> None:
    """Replace the folder's ``predictions.jsonl`` with ``records``, one line each (atomically)."""
    atomic_write_text(out / PREDICTIONS, "".join(json.dumps(r) + "\n" for r in records))


def check_eval_out(path: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Before any work: could ``path`` take this evaluation? Creates nothing.

    A new or empty folder is fine; one holding an evaluation needs ``--only-missing`` (finish it) or
    ``--overwrite`` (replace it); one holding anything else (a profile run, your files) is refused.

    Raises:
        UsageError: an unwritable path, a foreign folder, an evaluation without either flag.
    """
    probe_writable(path, "--out")
    if not path.is_dir():
        return path
    names = {n for n in os.listdir(path) if n != LOCK and not is_temp_name(n)}
    foreign = sorted(names - set(EVAL_FILES))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UsageError(
            f"--out '{path}' holds files vbench evaluate did not write ({shown}); choose a new or empty folder"
        )
    if names and not (resume or overwrite):
        raise UsageError(
            f"--out '{path}' already holds an evaluation; pass --only-missing to finish it, --overwrite to "
            "replace it, or choose another folder"
        )
    return path


def claim_eval_out(path: Path, resume: bool, overwrite: bool) -> Path:
    """Create and lock ``path`` (the lock keeps a second run out), then check it again under the lock."""
    claim_dir(path, "--out")  # not bench.run.rundir.claim, which refuses an evaluation folder
    check_eval_out(path, resume=resume, overwrite=overwrite)
    if overwrite and not resume:
        for name in EVAL_FILES:
            (path / name).unlink(missing_ok=True)
    return path


def remove_if_empty(path: Path) -> bool:
    """Remove ``path`` if it holds nothing but this process's lock (a run that failed before writing anything):
    no empty run folder is left behind. Returns whether it was removed."""
    try:
        if {n for n in os.listdir(path) if not is_temp_name(n)} - {LOCK}:
            return False
        release_dir(path)
        for name in os.listdir(path):
            (path / name).unlink()
        path.rmdir()
    except OSError:
        return False
    return True


def _check_record(r: Any, num_classes: int) -> bool:
    if not isinstance(r, dict) or not isinstance(r.get("video"), str):
        return False
    if r.get("status") == "skipped":
        return r.get("reason") in SKIP_REASONS
    if r.get("status") != "ok":
        return False
    target, pred, top5 = r.get("target"), r.get("pred"), r.get("top5")

    def index(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < num_classes

    return index(target) and index(pred) and isinstance(top5, list) and all(index(v) for v in top5)


def _read_predictions(path: Path, num_classes: int) -> tuple[list[dict[str, Any]], bool]:
    """The valid lines of a ``predictions.jsonl`` (a line cut short by a kill, or not ours, is dropped), and
    whether the file needs rewriting (it held such a line)."""
    from bench.results.io import RESULTS_CAP
    from bench.results.validate import parse_json

    if not path.is_file():
        return [], False
    records: dict[str, dict[str, Any]] = {}
    dropped = False
    text = read_text(path, "predictions file", RESULTS_CAP, errors="replace")
    for line in text.splitlines():
        try:
            r = parse_json(line, f"'{path}'")
        except UsageError:
            dropped = True
            continue
        if _check_record(r, num_classes):
            records.setdefault(r["video"], r)
        else:
            dropped = True
    return list(records.values()), dropped or (bool(text) and not text.endswith("\n"))


def _load_previous(out: Path, fingerprint: dict[str, Any], num_classes: int) -> tuple[list[dict[str, Any]], bool]:
    """The prediction lines an earlier run of the same evaluation left in ``out`` (for ``--only-missing``), and
    whether the file must be rewritten (it held lines cut off or repeated).

    Raises:
        UsageError: the folder's evaluation was made with another arch, weights, protocol, input, dataset or
            class list.
    """
    summary = out / SUMMARY
    if summary.is_file():
        doc = read_summary(summary, f"'{summary}' is not valid JSON")
        before = doc.get("fingerprint") if isinstance(doc, dict) else None
        if not isinstance(before, dict):
            raise UsageError(f"'{summary}' is not a vbench evaluation; choose another --out")
        changed = sorted(k for k in fingerprint.keys() | before.keys() if fingerprint.get(k) != before.get(k))
        if changed:
            raise UsageError(
                f"--only-missing: '{out}' holds an evaluation with other settings ({', '.join(changed)}); "
                "use the same options, --overwrite, or another --out"
            )
    return _read_predictions(out / PREDICTIONS, num_classes)


def keep_previous(
    out: Path, fingerprint: dict[str, Any], dataset: Dataset, num_classes: int
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """``--only-missing``: the folder's lines that stay, the skipped videos tried again and the videos the
    dataset no longer lists (the lines of both are removed from ``predictions.jsonl``)."""
    records, rewrite = _load_previous(out, fingerprint, num_classes)
    retried = [r["video"] for r in records if r["status"] == "skipped" and r["reason"] in RETRIED_REASONS]
    # A video the dataset no longer lists (its file and its line were removed) leaves the evaluation: its
    # prediction would count in top-1 over videos that are not there.
    gone = [r["video"] for r in records if r["video"] not in dataset.order]
    if retried or gone:  # their lines go: retried videos are tried again, and a new line is written for each
        again = set(retried) | set(gone)
        records = [r for r in records if r["video"] not in again]
    if rewrite or retried or gone:  # one rewrite, whatever made it needed
        try:
            rewrite_predictions(out, records)
        except OSError as e:
            raise OutputError(f"cannot write '{out / PREDICTIONS}': {e.strerror or e}") from None
    return records, retried, gone


class EvalWriter:
    """``predictions.jsonl`` appended line by line (flushed and synced), ``evaluation.json`` atomically."""

    def __init__(self, out: Path, base: dict[str, Any]) -> None:
        self.out = out
        self.base = base
        self.predictions = (out / PREDICTIONS).open("a")

    def line(self, record: dict[str, Any]) -> None:
        try:
            self.predictions.write(json.dumps(record) + "\n")
            self.predictions.flush()
            os.fsync(self.predictions.fileno())
        except OSError as e:  # a full disk: one line; the lines written before stay
            raise OutputError(f"cannot write '{self.out / PREDICTIONS}': {e.strerror or e}") from None

    def summary(self, state: str, metrics: Metrics, timing: Timing, classes: Sequence[str]) -> dict[str, Any]:
        doc = {**self.base, "state": state, **_summary_fields(metrics, timing, self.base)}
        try:
            atomic_write_text(self.out / SUMMARY, json.dumps(doc, indent=1, default=str) + "\n")
            if state != "running":
                atomic_write_text(self.out / PER_CLASS, per_class_csv(metrics, classes))
                atomic_write_text(self.out / CONFUSION, confusion_csv(metrics, classes))
        except OSError as e:  # a full disk: one line; predictions.jsonl keeps what finished
            raise OutputError(f"cannot write the summary in '{self.out}': {e.strerror or e}") from None
        return doc

    def close(self) -> None:
        self.predictions.close()


def _summary_fields(metrics: Metrics, timing: Timing, base: Mapping[str, Any]) -> dict[str, Any]:
    listed = base["dataset"]["videos"]
    done = metrics.videos + metrics.skipped
    accuracy = {
        "top1": metrics.top1,
        "top5": metrics.top5,
        "top5_k": metrics.k,
        "mean_class_top1": metrics.mean_class_top1,
    }
    record = None
    if metrics.top1 is not None:
        spec = base["input"]
        record = {
            "arch": base["arch"],
            "input": f"{spec['frames']}x{spec['size']}x{spec['size']}",
            "top1": metrics.top1,
            "top5": metrics.top5,
            "views": base["protocol"]["describe"],
            "dataset": base["dataset"]["name"],
            "source": f"measured: vbench evaluate, protocol {base['protocol']['name']}, {metrics.videos} videos",
        }
    return {
        "counts": {
            "listed": listed,
            "done": done,
            "evaluated": metrics.videos,
            "skipped": metrics.skipped,
            "skipped_by_reason": metrics.skipped_by_reason,
            "remaining": max(listed - done, 0),
        },
        "accuracy": accuracy,
        "accuracy_record": record,
        "timing": timing.summary(),
    }


def sha256_text(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def per_class_csv(metrics: Metrics, classes: Sequence[str]) -> str:
    """``index,class,videos,top1,top5`` (percent; empty for a class without videos)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "class", "videos", "top1", f"top{metrics.k}"])
    for pc in metrics.per_class:
        w.writerow([pc["index"], classes[pc["index"]], pc["videos"], _cell(pc["top1"]), _cell(pc["top5"])])
    return buf.getvalue()


def confusion_csv(metrics: Metrics, classes: Sequence[str]) -> str:
    """Counts: one row per true class, one column per predicted class, both in class-index order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, metrics.confusion):
        w.writerow([name, *row])
    return buf.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def fingerprint(meta: Mapping[str, Any], spec: ViewSpec, classes: Sequence[str], dtype: str) -> dict[str, Any]:
    """What must match for ``--only-missing`` to add to an earlier evaluation's predictions."""
    kwargs = {"arch_kwargs": dict(meta["arch_kwargs"])} if meta.get("arch_kwargs") else {}
    return {
        **kwargs,
        "arch": meta.get("arch"),
        "weights": (meta.get("weights") or {}).get("sha256") or (meta.get("weights") or {}).get("path"),
        "views": [spec.clips, spec.crops],
        "input": [spec.frames, spec.frame_stride, spec.crop, list(spec.resize) if isinstance(spec.resize, tuple)
                  else spec.resize, list(spec.mean), list(spec.std)],
        "dataset": (meta.get("dataset") or {}).get("path"),
        "classes": sha256_text(classes),
        "dtype": dtype,
    }  # fmt: skip
