"""The evaluation folder, ``vbench evaluate --out``: its files, and their reading (torch-free, for every layer).

- ``evaluation.json`` (:data:`SUMMARY`): the summary: schema version, state (``running``, ``interrupted``,
  ``complete``), counts, accuracy and its record, and the fingerprint ``--only-missing`` compares; rewritten
  atomically as the evaluation goes (written by :mod:`bench.evaluate.store`, as :mod:`bench.evaluate.loop` drives it);
- ``predictions.jsonl`` (:data:`PREDICTIONS`): one line per video, appended as each finishes, the record of
  truth (its lines are checked by :mod:`bench.evaluate.store`, which knows the skip reasons);
- ``per_class.csv`` (:data:`PER_CLASS`) and ``confusion.csv`` (:data:`CONFUSION`): when it ends (formatted by :mod:`bench.evaluate.store`).

:func:`load_evaluation` gives the measured accuracy to ``vbench report``; :func:`read_summary` serves
``--only-missing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.accuracy import accuracy_record
from bench.results.io import SMALL_CAP, read_text, show_path
from bench.results.validate import is_count_or_none, is_positive_int, parse_json, plain_error, show

__all__ = [
    "CONFUSION",
    "EVAL_FILES",
    "EVAL_MARKS",
    "PER_CLASS",
    "PREDICTIONS",
    "SCHEMA_VERSION",
    "SUMMARY",
    "is_evaluation",
    "load_evaluation",
    "read_summary",
]

SCHEMA_VERSION = 1
"""Of ``evaluation.json``."""
SUMMARY = "evaluation.json"
PREDICTIONS = "predictions.jsonl"
PER_CLASS = "per_class.csv"
CONFUSION = "confusion.csv"
EVAL_MARKS = (SUMMARY, PREDICTIONS)
"""The files that make a folder an evaluation (written first; the CSVs only after them): a profile run never
writes into a folder holding one (a report would see only the evaluation), not even with ``--overwrite``."""
EVAL_FILES = (*EVAL_MARKS, PER_CLASS, CONFUSION)
"""What an evaluation folder holds; a folder with anything else in it is not written into."""


def read_summary(path: Path, fail: str) -> Any:
    """The parsed ``evaluation.json`` at ``path`` (checked by the caller); ``fail`` is the message for bad JSON.

    Raises:
        UsageError: a missing, unreadable, oversized or malformed file.
    """
    return parse_json(read_text(path, "evaluation file", SMALL_CAP), fail)


def is_evaluation(path: str | Path) -> bool:
    """Whether ``path`` is a ``vbench evaluate`` output: its folder or its ``evaluation.json``."""
    p = Path(path)
    return p.name == SUMMARY or (p.is_dir() and (p / SUMMARY).is_file())


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """The measured accuracy of a ``vbench evaluate`` output, as an accuracy record tagged ``measured``.

    The record carries the evaluation's state and how many videos it counted; an
    interrupted evaluation's accuracy is over the videos it finished, and says so.

    Raises:
        UsageError: a missing or malformed file, or one without any evaluated video.
    """
    p = Path(path)
    f = p if p.name == SUMMARY else p / SUMMARY
    name = show_path(f)
    doc = read_summary(f, f"evaluation file {name} is not valid JSON")
    if not isinstance(doc, dict):
        raise UsageError(f"evaluation file {name} must hold a JSON object")
    record = doc.get("accuracy_record")
    if record is None:
        raise UsageError(f"evaluation file {name} holds no accuracy: no video was evaluated")
    if not isinstance(record, dict):
        raise UsageError(f"evaluation file {name}: 'accuracy_record' must be an object")
    checked = accuracy_record(f"evaluation file {name}", record)
    state = doc.get("state")
    counts: dict[str, Any] = doc["counts"] if isinstance(doc.get("counts"), dict) else {}
    videos = counts.get("evaluated")
    if state not in ("complete", "interrupted", "running") or not is_count_or_none(videos):
        raise UsageError(f"evaluation file {name}: 'state' or 'counts' is malformed")
    if state != "complete":
        checked["source"] = f"{checked['source']} ({state}: {videos} of {counts.get('listed')} videos)"
    return {**checked, "arch_kwargs": _evaluated_config(doc, name), "tag": "measured", "state": state,
            "videos": videos, "path": str(f), "folder": str(f.parent)}  # fmt: skip


def _evaluated_config(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The builder options of the evaluated model: its ``arch_kwargs`` and the class count of its weights."""
    kwargs = doc.get("arch_kwargs") or {}
    if not (isinstance(kwargs, dict) and plain_error(kwargs, "") is None):
        raise UsageError(f"evaluation file {name}: 'arch_kwargs' must be an object of plain values")
    weights: dict[str, Any] = doc["weights"] if isinstance(doc.get("weights"), dict) else {}
    classes: dict[str, Any] = doc["classes"] if isinstance(doc.get("classes"), dict) else {}
    count = weights.get("num_classes", classes.get("count"))
    if count is not None and not is_positive_int(count):
        raise UsageError(f"evaluation file {name}: the class count must be a positive integer; got {show(count)}")
    return {**kwargs, "num_classes": count} if count is not None and "num_classes" not in kwargs else dict(kwargs)
