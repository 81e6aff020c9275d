"""A user's accuracy file (``vbench report --accuracy``, CSV or JSON), every record checked as
:mod:`bench.results.validate` checks a results file; :func:`accuracy_record` also checks the record that
an evaluation folder holds (:mod:`bench.results.evaluation`).

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
from bench.results.io import SMALL_CAP, is_utf8, read_text, show_path
from bench.results.validate import (
    is_kwargs_text,
    is_name,
    is_number,
    parse_json,
    plain_error,
    show,
)

__all__ = ["ACCURACY_COLUMNS", "accuracy_record", "load_accuracy"]

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


def accuracy_record(where: str, r: dict[Any, Any]) -> dict[str, Any]:
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
    return [accuracy_record(where, r) for where, r in zip(wheres, records)]
