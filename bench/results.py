"""Results on disk: appended as rows finish, written atomically, read back with checks.

A run directory holds:

- ``results.jsonl``: one row per line, appended (and flushed to disk) as each
  row finishes, so an interrupted run keeps every finished row;
- ``results.csv``: the rows, rewritten atomically after each architecture;
- ``results.json``: schema version, environment and rows with their raw samples;
- ``results.md``: the Markdown table (written by :mod:`bench.report`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.schema import COLUMNS, SCHEMA_VERSION, is_missing
from bench.validate import load_results_doc

__all__ = ["ResultsWriter", "atomic_write_text", "load_partial", "load_results", "rows_to_csv", "write_rows"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cell(value: Any) -> Any:
    return "" if is_missing(value) else value


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV text with the schema's columns in order (raw samples left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    return buf.getvalue()


class ResultsWriter:
    """Collects the rows of one run into ``out_dir``."""

    def __init__(self, out_dir: Path, environment: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.environment = dict(environment)
        self.rows: list[dict[str, Any]] = []
        self._jsonl = self.out_dir / "results.jsonl"
        self._jsonl.write_text("")

    @property
    def paths(self) -> dict[str, Path]:
        return {ext: self.out_dir / f"results.{ext}" for ext in ("csv", "md", "json")}

    def append(self, row: dict[str, Any]) -> None:
        """Keep ``row`` and put it on disk at once."""
        self.rows.append(row)
        with self._jsonl.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def checkpoint(self) -> None:
        """Rewrite results.csv with every row so far."""
        atomic_write_text(self.paths["csv"], rows_to_csv(self.rows))

    def finish(self, markdown: str) -> dict[str, Path]:
        """Write the CSV, the JSON (with raw samples and the environment) and the Markdown table."""
        self.checkpoint()
        doc = {
            "schema_version": SCHEMA_VERSION,
            "environment": self.environment,
            "rows": self.rows,
        }
        atomic_write_text(self.paths["json"], json.dumps(doc, indent=1, default=str) + "\n")
        atomic_write_text(self.paths["md"], markdown)
        return self.paths


def write_rows(
    out_dir: Path, environment: dict[str, Any], rows: Iterable[dict[str, Any]], markdown: str = ""
) -> dict[str, Path]:
    """Write finished rows as a run folder in one go (results.jsonl, .csv, .json, .md)."""
    writer = ResultsWriter(out_dir, environment)
    for row in rows:
        writer.append(row)
    return writer.finish(markdown)


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        return p / "results.json"
    if p.name in ("results.csv", "results.md", "results.jsonl"):
        return p.with_name("results.json")  # the JSON beside it has the raw samples and the environment
    return p


def _read(p: Path, shown: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and environment of a ``results.json``, checked (it may hold no rows)."""
    rows, env, _ = load_results_doc(p, shown)
    return rows, env


def load_results(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and environment of a saved run: its folder, its ``results.json`` or a file beside that.

    Raises:
        UsageError: missing, unreadable, corrupt, schema-mismatched or empty files.
    """
    p = _resolve(path)
    rows, env = _read(p, path)
    if not rows:
        raise UsageError(f"'{p}' holds no rows")
    return rows, env


def load_partial(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and environment of a run folder that may have been interrupted.

    A finished run has ``results.json``; an interrupted one only ``results.jsonl``
    (its last line may be cut short and is then skipped; the environment is
    unknown). A folder with neither gives no rows.

    Raises:
        UsageError: a ``results.json`` that is corrupt or of another schema version.
    """
    p = Path(path)
    if (p / "results.json").exists():
        return _read(p / "results.json", path)
    rows = []
    jsonl = p / "results.jsonl"
    if jsonl.exists():
        for line in jsonl.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows, {}
