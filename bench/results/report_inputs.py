"""The files a report joins to the runs, checked as :mod:`bench.results.validate` checks a results file.

- :func:`load_accuracy`: a user's accuracy file (CSV or JSON), every record checked;
- :func:`load_evaluation` (and :func:`is_evaluation`): the measured accuracy of a ``vbench evaluate`` output;
- :func:`load_breakdowns`: the time by kind of work of ``vbench inspect --time --json`` files.

A malformed, wrongly typed or hostile file is one line and exit code 2 (:class:`~bench.errors.UsageError`).
Plain values only: this module imports no torch.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.records import KINDS
from bench.results.validate import (
    RESULTS_CAP,
    SMALL_CAP,
    is_count_or_none,
    is_kwargs_text,
    is_name,
    is_number,
    is_positive_int,
    is_utf8,
    parse_json,
    plain_error,
    read_text,
    show,
    show_path,
)

__all__ = ["ACCURACY_COLUMNS", "is_evaluation", "load_accuracy", "load_breakdowns", "load_evaluation"]

ACCURACY_COLUMNS = ("arch", "input", "top1", "source")
"""Required columns of a user's accuracy file; ``dataset``, ``top5``, ``views``, ``pretrain`` are optional."""

_OPTIONAL = ("dataset", "top5", "views", "pretrain", "model")
"""Optional columns of an accuracy file besides ``arch_kwargs`` (the builder options, a JSON object; none: the
defaults, as the published accuracies are)."""


# ---------------------------------------------------------------- accuracy files


def _score(v: Any) -> float | None:
    """A top-1/top-5 in percent from a CSV cell or a JSON value; None when it is not one."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        return None  # true/false, null, a list, an integer too large for a float
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (ValueError, OverflowError):
        return None
    return x if math.isfinite(x) and 0 <= x <= 100 else None


def _accuracy_record(where: str, r: dict[Any, Any]) -> dict[str, Any]:
    if None in r:  # csv.DictReader puts cells beyond the header under None
        raise UsageError(f"{where} has more cells than the header has columns")
    for key in ("arch", "input", "source"):
        if key not in r:
            raise UsageError(f"{where}: {show(key)} is missing")
        if not (is_name(r[key]) and r[key].strip()):
            raise UsageError(f"{where}: {show(key)} must be a non-empty string on one line; got {show(r[key])}")
    if "top1" not in r:
        raise UsageError(f"{where}: 'top1' is missing")
    top1 = _score(r["top1"])
    if top1 is None:
        raise UsageError(f"{where}: top1/top5 must be numbers from 0 to 100; got {show(r['top1'])} for 'top1'")
    top5 = None
    if r.get("top5") not in (None, ""):
        top5 = _score(r["top5"])
        if top5 is None:
            raise UsageError(f"{where}: top1/top5 must be numbers from 0 to 100; got {show(r['top5'])} for 'top5'")
    optional: dict[str, Any] = {}
    for k in _OPTIONAL:
        if k == "top5":
            continue
        v = r.get(k)
        if not (v is None or (isinstance(v, str) and is_utf8(v)) or is_number(v)):
            raise UsageError(f"{where}: {show(k)} must be a string or a number; got {show(v)}")
        optional[k] = v or ""
    kwargs = r.get("arch_kwargs")
    if isinstance(kwargs, str) and is_kwargs_text(kwargs):
        kwargs = parse_json(kwargs, "arch_kwargs") if kwargs.strip() else {}
    if not (kwargs is None or (isinstance(kwargs, dict) and plain_error(kwargs, "") is None)):
        raise UsageError(
            f"{where}: 'arch_kwargs' must be a JSON object such as '{{\"num_classes\": 2}}'; got {show(kwargs)}"
        )
    return {"arch": r["arch"], "input": r["input"], "top1": top1, "top5": top5, "source": r["source"], **optional,
            "arch_kwargs": kwargs or {}, "where": where}  # fmt: skip


def load_accuracy(path: str | Path) -> list[dict[str, Any]]:
    """A user's accuracy records from a CSV or JSON (a list of objects) file, every record checked.

    Raises:
        UsageError: missing or unreadable file, missing columns, a record with a
            missing or empty name, or a top-1/top-5 that is not a finite
            percentage.
    """
    p = Path(path)
    name = show_path(path)
    text = read_text(p, "accuracy file", SMALL_CAP)
    wheres: list[str] = []
    if p.suffix.lower() == ".json":
        records = parse_json(text, f"accuracy file {name} is not valid JSON")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UsageError(f"accuracy file {name} must hold a JSON list of objects")
        wheres = [f"accuracy file {name}, record {i}" for i in range(1, len(records) + 1)]
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records = []
        try:
            for r in reader:
                records.append(r)
                wheres.append(f"accuracy file {name}, record {len(records)} (line {reader.line_num})")
        except csv.Error as e:
            raise UsageError(f"accuracy file {name} is not valid CSV: line {reader.line_num}: {e}") from None
        header = reader.fieldnames or []
        missing = [c for c in ACCURACY_COLUMNS if c not in header]
        if header and missing:
            raise UsageError(
                f"accuracy file {name} lacks columns: {', '.join(missing)} (needs {', '.join(ACCURACY_COLUMNS)})"
            )
    if not records:
        raise UsageError(f"accuracy file {name} holds no records")
    return [_accuracy_record(where, r) for where, r in zip(wheres, records)]


_KIND_FIELDS = ("latency_ms", "pct_time", "gmacs", "pct_macs")
_MAX_SIDE = 1 << 20


def _breakdown(where: str, b: Any) -> dict[str, Any]:
    """One ``inspect --time --json`` breakdown, its fields checked as the report reads them."""
    if not isinstance(b, dict):
        raise UsageError(f"{where}: a breakdown must be a JSON object")
    for key in ("arch", "mode", "device", "dtype"):
        if not is_name(b.get(key)):
            raise UsageError(f"{where}: {key!r} must be a name on one line, not {show(b.get(key))}")
    shape = b.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 5 and all(is_positive_int(v) for v in shape)):
        raise UsageError(f"{where}: 'input_shape' must be 5 positive integers (B, C, T, H, W)")
    if any(v > _MAX_SIDE for v in shape):
        raise UsageError(f"{where}: 'input_shape' {show(shape)} is not a clip anyone measured")
    kinds = b.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise UsageError(f"{where}: 'kinds' must be a non-empty list")
    seen: set[str] = set()
    for i, k in enumerate(kinds, 1):
        if not isinstance(k, dict) or k.get("kind") not in KINDS:
            raise UsageError(f"{where}, kind {i}: 'kind' must be one of {', '.join(KINDS)}")
        if k["kind"] in seen:
            raise UsageError(f"{where}, kind {i}: {k['kind']!r} is listed twice")
        seen.add(k["kind"])
        bad = [f for f in _KIND_FIELDS if not (is_number(k.get(f)) and math.isfinite(k[f]) and k[f] >= 0)]
        if bad:
            raise UsageError(f"{where}, kind {i}: {bad[0]!r} must be a finite number >= 0, not {show(k.get(bad[0]))}")
        over = [f for f in ("pct_time", "pct_macs") if k[f] > 1 + 1e-9]
        if over:
            raise UsageError(f"{where}, kind {i}: {over[0]!r} is a share from 0 to 1, not {show(k[over[0]])}")
    for f in ("pct_time", "pct_macs"):
        total = sum(k[f] for k in kinds)
        if total > 1 + 1e-6:
            raise UsageError(f"{where}: the kinds' {f!r} add up to {total:.4g}, more than the whole")
    return b


def load_breakdowns(path: str | Path) -> list[dict[str, Any]]:
    """The breakdowns in an ``inspect --time --json`` file: one object, or an object of them by name.

    Raises:
        UsageError: a missing, unreadable or malformed file (its first problem, in one line).
    """
    name = show_path(path)
    doc = parse_json(read_text(Path(path), "breakdown file", RESULTS_CAP), f"breakdown file {name} is not valid JSON")
    if isinstance(doc, dict) and "kinds" not in doc and doc and all(isinstance(v, dict) for v in doc.values()):
        return [_breakdown(f"breakdown file {name}, {show(k)}", v) for k, v in doc.items()]
    return [_breakdown(f"breakdown file {name}", doc)]


def is_evaluation(path: str | Path) -> bool:
    """Whether ``path`` is a ``vbench evaluate`` output: its folder or its ``evaluation.json``."""
    p = Path(path)
    return p.name == "evaluation.json" or (p.is_dir() and (p / "evaluation.json").is_file())


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """The measured accuracy of a ``vbench evaluate`` output, as an accuracy record tagged ``measured``.

    The record carries the evaluation's state and how many videos it counted; an
    interrupted evaluation's accuracy is over the videos it finished, and says so.

    Raises:
        UsageError: a missing or malformed file, or one without any evaluated video.
    """
    p = Path(path)
    f = p if p.name == "evaluation.json" else p / "evaluation.json"
    name = show_path(f)
    doc = parse_json(read_text(f, "evaluation file", SMALL_CAP), f"evaluation file {name} is not valid JSON")
    if not isinstance(doc, dict):
        raise UsageError(f"evaluation file {name} must hold a JSON object")
    record = doc.get("accuracy_record")
    if record is None:
        raise UsageError(f"evaluation file {name} holds no accuracy: no video was evaluated")
    if not isinstance(record, dict):
        raise UsageError(f"evaluation file {name}: 'accuracy_record' must be an object")
    checked = _accuracy_record(f"evaluation file {name}", record)
    state = doc.get("state")
    counts: dict[str, Any] = doc["counts"] if isinstance(doc.get("counts"), dict) else {}
    videos = counts.get("evaluated")
    if state not in ("complete", "interrupted", "running") or not (videos is None or is_count_or_none(videos)):
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
