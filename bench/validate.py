"""Reading files that vbench did not necessarily write: results, accuracy records.

Everything read from disk is checked here before any other module sees it, so
that a malformed, wrongly typed or hostile file is one line and exit code 2
(:class:`~bench.errors.UsageError`), never a traceback or a wrong number.
Plain values only: this module imports no torch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.schema import REQUIRED_COLUMNS, SCHEMA_VERSION

__all__ = ["ACCURACY_COLUMNS", "load_accuracy", "load_results_doc"]

ACCURACY_COLUMNS = ("arch", "input", "top1", "source")
"""Required columns of a user's accuracy file; ``dataset``, ``top5``, ``views``, ``pretrain`` are optional."""

_OPTIONAL = ("dataset", "top5", "views", "pretrain", "model")


def load_results_doc(p: Path, shown: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Rows, environment and the whole document of a ``results.json``, checked (it may hold no rows)."""
    if not p.exists():
        raise UsageError(f"no results at '{shown}'")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"'{p}' is not a vbench results file: {e}") from None
    if not isinstance(doc, dict) or "rows" not in doc:
        raise UsageError(f"'{p}' is not a vbench results file (no 'rows')")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UsageError(f"'{p}' has results schema version {version}; this vbench reads version {SCHEMA_VERSION}")
    rows = doc["rows"]
    if not isinstance(rows, list):
        raise UsageError(f"'{p}' holds no rows")
    missing: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            raise UsageError(f"'{p}' lacks required columns: (rows are not objects)")
        missing.update(c for c in REQUIRED_COLUMNS if c not in row)
    if missing:
        raise UsageError(f"'{p}' lacks required columns: {', '.join(sorted(missing))}")
    return rows, doc.get("environment", {}), doc


def load_accuracy(path: str | Path) -> list[dict[str, Any]]:
    """A user's accuracy records from a CSV or JSON (a list of objects) file.

    Raises:
        UsageError: missing or unreadable file, missing columns, a top-1 that is not a number.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise UsageError(f"cannot read accuracy file '{path}': {e.strerror}") from None
    try:
        if p.suffix == ".json":
            records = json.loads(text)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise UsageError(f"'{path}' must hold a JSON list of objects")
        else:
            records = list(csv.DictReader(io.StringIO(text)))
    except json.JSONDecodeError as e:
        raise UsageError(f"'{path}' is not valid JSON: {e}") from None
    if not records:
        raise UsageError(f"accuracy file '{path}' holds no records")
    missing = [c for c in ACCURACY_COLUMNS if c not in records[0]]
    if missing:
        raise UsageError(
            f"accuracy file '{path}' lacks columns: {', '.join(missing)} (needs {', '.join(ACCURACY_COLUMNS)})"
        )
    out = []
    for i, r in enumerate(records, start=1):
        try:
            top1 = float(r["top1"])
            top5 = float(r["top5"]) if r.get("top5") not in (None, "") else None
        except (TypeError, ValueError):
            raise UsageError(f"accuracy file '{path}', record {i}: top1/top5 must be numbers") from None
        out.append(
            {"arch": str(r["arch"]), "input": str(r["input"]), "top1": top1, "top5": top5,
             "source": str(r["source"]), **{k: r.get(k) or "" for k in _OPTIONAL if k != "top5"}}
        )  # fmt: skip
    return out
