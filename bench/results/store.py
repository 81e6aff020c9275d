"""Results on disk: appended as rows finish, written atomically, read back with checks.

A run directory holds:

- ``results.jsonl``: one row per line, appended (and flushed to disk) as each
  row finishes, so an interrupted run keeps every finished row;
- ``results.csv``: the rows, rewritten atomically after each architecture;
- ``results.json``: schema version, environment, ``state`` and rows with their
  raw samples; written with ``"state": "running"`` and no rows when the run
  starts, and with every row when it ends (``complete``, or ``interrupted``);
- ``results.md``: the Markdown table (written by :mod:`bench.report.tables`);
- ``logs/``: what each architecture's model printed (capped).

While a run is open, or after it was killed, ``results.jsonl`` is the record of
truth: readers take the rows from it whenever ``results.json`` is not
``complete``, so an older ``results.json`` can never win.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from bench.errors import UsageError
from bench.results.columns import COLUMNS
from bench.results.io import RESULTS_CAP, atomic_write_text, read_text
from bench.results.records import Row
from bench.results.schema import SCHEMA_VERSION, is_missing
from bench.results.validate import check_results_doc, load_results_doc, parse_json

__all__ = [
    "STATES",
    "ResultsWriter",
    "file_sha256",
    "load_partial",
    "load_results",
    "read_run",
    "rows_to_csv",
    "write_rows",
]


STATES = ("running", "interrupted", "complete")


def _cell(value: Any) -> Any:
    return "" if is_missing(value) else value


def rows_to_csv(rows: Iterable[Row]) -> str:
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
        self.rows: list[Row] = []
        self._jsonl = self.out_dir / "results.jsonl"
        for stale in ("csv", "md"):
            self.paths[stale].unlink(missing_ok=True)
        self._write_json("running")
        self._jsonl.write_text("")

    @property
    def paths(self) -> dict[str, Path]:
        return {ext: self.out_dir / f"results.{ext}" for ext in ("csv", "md", "json")}

    def append(self, row: Row) -> None:
        """Keep ``row`` and put it on disk at once."""
        self.rows.append(row)
        with self._jsonl.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def checkpoint(self) -> None:
        """Rewrite results.csv with every row so far."""
        atomic_write_text(self.paths["csv"], rows_to_csv(self.rows))

    def _write_json(self, state: str) -> None:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "state": state,
            "environment": self.environment,
            "rows": self.rows if state != "running" else [],
        }
        atomic_write_text(self.paths["json"], json.dumps(doc, indent=1, default=str) + "\n")

    def finish(self, markdown: str, state: str = "complete") -> dict[str, Path]:
        """Write the CSV, the JSON (with raw samples and the environment) and the Markdown table."""
        self.checkpoint()
        self._write_json(state)
        atomic_write_text(self.paths["md"], markdown)
        return self.paths


def write_rows(out_dir: Path, environment: dict[str, Any], rows: Iterable[Row], markdown: str = "") -> dict[str, Path]:
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


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl``; a last line cut short by a kill is skipped."""
    rows = []
    if path.is_file():
        for line in read_text(path, "results file", RESULTS_CAP, errors="replace").splitlines():
            try:
                row = parse_json(line, f"'{path}'")
            except UsageError:
                continue  # a line cut short by a kill, or not a row at all
            if isinstance(row, dict):
                rows.append(row)
    return rows


def read_run(path: str | Path) -> tuple[list[Row], dict[str, Any], str]:
    """Rows, environment and state (``complete``, ``interrupted``, ``running``) of a run.

    ``path`` is a run folder, its ``results.json`` or a file beside it. When
    ``results.json`` is not ``complete``, the rows come from ``results.jsonl``
    (the record of truth while a run is open), checked like the JSON's.

    Raises:
        UsageError: missing, unreadable, corrupt or schema-mismatched files.
    """
    p = _resolve(path)
    folder = p.parent
    state = "running"
    if not p.exists() and (folder / "results.jsonl").is_file():
        env: dict[str, Any] = {}
    else:
        rows, env, doc = load_results_doc(p, path)
        state = doc.get("state", "complete")
        if state not in STATES:
            raise UsageError(f"'{p}': unknown state {str(state)[:40]!r}")
        if state == "complete":
            return rows, env, state
    raw = _jsonl_rows(folder / "results.jsonl")
    checked, env, _ = check_results_doc({"schema_version": SCHEMA_VERSION, "environment": env, "rows": raw}, p)
    return checked, env, state


def load_results(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and environment of a saved run: its folder, its ``results.json`` or a file beside that.

    The rows are checked results rows (:class:`~bench.results.records.Row`), typed here
    as plain dicts because :mod:`bench.report.tradeoff` hands them on to functions that
    take dicts; :func:`read_run` gives them typed.

    Raises:
        UsageError: missing, unreadable, corrupt, schema-mismatched or empty files.
    """
    rows, env, _ = read_run(path)
    if not rows:
        raise UsageError(f"'{_resolve(path)}' holds no rows")
    return cast("list[dict[str, Any]]", rows), env


def load_partial(path: str | Path) -> tuple[list[Row], dict[str, Any]]:
    """Rows and environment of a run folder that may have been interrupted (or may hold nothing).

    Raises:
        UsageError: a ``results.json`` that is corrupt or of another schema version.
    """
    p = Path(path)
    if not (p / "results.json").exists() and not (p / "results.jsonl").exists():
        return [], {}
    rows, env, _ = read_run(p)
    return rows, env


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (the weights), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
