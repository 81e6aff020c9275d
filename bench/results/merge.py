"""Merging the outputs of shards (``vbench merge DIR... --out DIR``).

Shards of one sweep each record, in their environment, the ids of every job
of the sweep and of their own. Merging checks that the runs were measured
alike (device, CPU for CPU timing, torch and vbench versions), keeps the first
row of every configuration, and reports the jobs that no shard ran and the
rows that two shards both hold.

``vbench merge --rounds RUN...`` takes each run as one round of the same plan
(:func:`bench.run.rounds.merge_rounds`), for runs timed in turns by separate commands, such as a
CI job that times the base and the head of a pull request alternately: one row
per configuration, combined as ``vbench profile --rounds`` combines its rounds
(:func:`bench.run.rounds.combine_rounds`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.compare import row_label
from bench.results.evaluation import is_evaluation
from bench.results.io import show_path
from bench.results.records import Row
from bench.results.schema import row_key
from bench.results.store import load_partial, write_rows

__all__ = ["MergeResult", "check_compatible", "load_runs", "merge_runs", "timed_concurrently", "write_merged"]

_ALWAYS = ("torch_version", "vbench_version")
"""Environment facts every merged run must share (counts depend on them)."""
_TIMED = ("device_name", "cpu_name", "torch_threads")
"""Facts that must also agree when the runs were timed."""


@dataclass
class MergeResult:
    rows: list[Row]
    environment: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    """Jobs of the sweep that no run holds (re-run them with ``--only-missing``)."""
    duplicated: list[str] = field(default_factory=list)
    """Configurations that more than one run holds (the first run's row is kept)."""
    failed: list[str] = field(default_factory=list)
    """Jobs with rows that are ``error`` or ``timeout``."""
    warnings: list[str] = field(default_factory=list)
    """Runs that were timed at the same time on one machine (their latencies may be too high)."""
    short: list[str] = field(default_factory=list)
    """With ``--rounds``: configurations that some of the rounds lack (combined from the rounds that hold them)."""


def timed_concurrently(runs: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Pairs of timed runs whose [started_at, finished_at] overlap on the same host, as warnings."""
    spans = []
    for source, env in runs:
        start, end, host = env.get("started_at"), env.get("finished_at"), env.get("host")
        if isinstance(start, str) and isinstance(end, str) and host:
            spans.append((source, str(host), start, end))
    out = []
    for i, (a, host_a, start_a, end_a) in enumerate(spans):
        for b, host_b, start_b, end_b in spans[i + 1 :]:
            if host_a == host_b and start_a < end_b and start_b < end_a:
                out.append(f"{a} and {b} were timed at the same time on {host_a}; their latencies may be too high")
    return out


def check_compatible(envs: Sequence[tuple[str, dict[str, Any]]], timed: bool) -> None:
    """Refuse runs measured differently: torch and vbench versions, and for timed runs device, CPU, threads.

    Raises:
        UsageError: naming the first fact that differs and where (``--allow-mixed`` skips this check).
    """
    keys = _ALWAYS + (_TIMED if timed else ())
    for key in keys:
        seen: dict[Any, str] = {}
        for source, env in envs:
            value = env.get(key)
            if value not in (None, ""):
                seen.setdefault(value, source)
        if len(seen) > 1:
            (a, sa), (b, sb) = list(seen.items())[:2]
            raise UsageError(
                f"cannot mix runs with different {key}: {str(a)[:60]!r} ({sa}) and {str(b)[:60]!r} ({sb}); "
                "pass --allow-mixed to mix them anyway"
            )


def load_runs(paths: Sequence[str | Path]) -> list[tuple[str, list[Row], dict[str, Any]]]:
    loaded = []
    for p in paths:
        if not Path(p).is_dir():
            raise UsageError(f"no run folder at {show_path(p)}")
        if not any((Path(p) / name).is_file() for name in ("results.json", "results.jsonl")):
            what = "a vbench evaluation, not a profile run" if is_evaluation(p) else "no vbench run"
            raise UsageError(f"{show_path(p)} holds {what} (no results.json or results.jsonl); merge takes run folders")
        rows, env = load_partial(p)
        loaded.append((str(p), rows, env))
    return loaded


def merge_runs(paths: Sequence[str | Path], allow_mixed: bool = False) -> MergeResult:
    """Rows of every run, checked and de-duplicated; see the module docstring.

    Raises:
        UsageError: a run folder that does not exist, corrupt files, runs measured
            differently (unless ``allow_mixed``), or no rows at all.
    """
    loaded = load_runs(paths)
    if not any(rows for _, rows, _ in loaded):
        raise UsageError("nothing to merge: the runs hold no rows")
    timed = any(r.get("n_samples") for _, rows, _ in loaded for r in rows)
    if not allow_mixed:
        check_compatible([(src, env) for src, _, env in loaded], timed)
    concurrent = timed_concurrently([(src, env) for src, _, env in loaded]) if timed else []
    concurrent += [f"{src}: {w}" for src, _, env in loaded for w in env.get("timed_concurrently") or []]

    merged: dict[tuple[str, ...], Row] = {}
    duplicated = []
    for _, rows, _ in loaded:
        for row in rows:
            key = row_key(row)
            if key in merged:
                duplicated.append(f"{row.get('arch')} {row_label(row)}")
                continue
            merged[key] = row
    all_jobs: dict[str, None] = {}
    for _, _, env in loaded:
        all_jobs.update(dict.fromkeys(env.get("sweep", {}).get("all_jobs", [])))
    present = {r.get("job_id") for r in merged.values()}
    failed = sorted(
        {str(r.get("job_id") or r.get("arch")) for r in merged.values() if r.get("status") in ("error", "timeout")}
    )
    environment = dict(next((env for _, _, env in loaded if env), {}))
    environment.pop("command", None)
    environment["merged_from"] = [src for src, _, _ in loaded]
    environment.pop("started_at", None)
    environment.pop("finished_at", None)
    if concurrent:
        environment["timed_concurrently"] = concurrent
    if "sweep" in environment:
        environment["sweep"] = {"all_jobs": list(all_jobs), "shard": None}
    position = {j: i for i, j in enumerate(all_jobs)}
    rows = sorted(merged.values(), key=lambda r: position.get(str(r.get("job_id")), len(position)))  # sweep order
    return MergeResult(
        rows=rows,
        environment=environment,
        missing=[j for j in all_jobs if j not in present],
        duplicated=duplicated,
        failed=failed,
        warnings=concurrent,
    )


def write_merged(
    result: MergeResult, out_dir: Path, markdown: Callable[[list[Row]], str] | None = None
) -> dict[str, Path]:
    """Write the merged rows as a run folder (results.jsonl, .csv, .json, .md)."""
    return write_rows(out_dir, result.environment, result.rows, markdown(result.rows) if markdown else "")
