"""Rounds: the plan measured N times, architectures interleaved, and one row per configuration from all of them.

``vbench profile --rounds N`` runs every job N times, round-robin (round 1: A, B, C; round 2: A, B, C; ...),
each time in a fresh worker process, as asv and pyperf do: a slow drift of the machine (another job
starting, a thermal state, a noisy neighbour) then falls on every architecture alike instead of on
whichever happened to run during it. ``--settle SECONDS`` waits, before each round, at most that long
for the machine to be quiet (:func:`settle`).

The row of a configuration (:func:`combine_rounds`):

- ``latency_ms`` is the **median of the round medians** of the rounds that were not ``contended``. The
  median of a few round medians keeps one disturbed round from moving the number at all (the minimum
  would chase one lucky round, and drift makes "lucky" a property of the clock, not of the model; the
  mean follows every outlier), and it is the same statistic a one-round row reports, so rows of one
  and of several rounds compare.
- Contended rounds are left out of the statistic and of ``samples_ms`` (which ``compare`` tests); their
  raw samples are kept in ``contended_samples_ms``, and every round's median and flag in
  ``round_latency_ms`` and ``round_contended``. The row is ``contended`` only when every round was; then
  all rounds make the statistic.
- A configuration that failed in any round takes that round's row (its status and error).

Plain Python: no torch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench.errors import UsageError
from bench.measure.timing import CONTENDED_SHARE, Measurement
from bench.results.compare import row_label
from bench.results.io import show_path
from bench.results.merge import MergeResult, check_compatible, load_runs, timed_concurrently
from bench.results.records import Row
from bench.results.schema import is_contended, row_key

__all__ = ["busy_fraction", "combine_rounds", "merge_rounds", "round_robin", "settle"]

_J = TypeVar("_J")


def round_robin(jobs: Sequence[_J], rounds: int) -> list[tuple[int, _J]]:
    """(round, job) in the order they run: every job once per round, rounds one after the other."""
    return [(r, job) for r in range(1, rounds + 1) for job in jobs]


def _cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot (Linux); None elsewhere."""
    try:
        fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def busy_fraction(window_s: float = 0.5, read: Callable[[], tuple[int, int] | None] = _cpu_times) -> float | None:
    """The share of all CPUs busy over ``window_s`` (None where it cannot be read)."""
    a = read()
    time.sleep(window_s)
    b = read()
    if a is None or b is None or b[1] <= a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1])


def settle(
    limit_s: float,
    busy: Callable[[], float | None] = busy_fraction,
    now: Callable[[], float] = time.monotonic,
    quiet: float = 1 - CONTENDED_SHARE,
) -> tuple[float, bool]:
    """Wait until the machine is quiet (``busy()`` at most ``quiet``), at most ``limit_s`` seconds.

    Quiet means the other work on the machine would take no more of a worker's cores than the
    ``contended`` threshold allows. Returns (seconds waited, whether it got quiet); ``busy()`` returning
    None (no ``/proc/stat``) ends the wait at once, unsettled.
    """
    start = now()
    while True:
        share = busy()
        if share is None:
            return now() - start, False
        if share <= quiet:
            return now() - start, True
        if now() - start >= limit_s:
            return now() - start, False


def combine_rounds(rows: Sequence[dict[str, Any]], settle_s: float | None = None, settled: bool | None = None) -> Any:
    """One row from the rows of one configuration in each round (in round order); see the module's docstring."""
    if not rows:
        raise ValueError("no rounds to combine")
    extra = {"rounds": len(rows), "settle_s": settle_s, "settled": settled}
    for row in rows:
        if row.get("status") != "ok" or not row.get("samples_ms"):
            return {**row, **extra}
    flags = [is_contended(r) for r in rows]
    chosen = [i for i, bad in enumerate(flags) if not bad] or list(range(len(rows)))
    clean = [rows[i] for i in chosen]
    medians = [float(r["latency_ms"]) for r in rows]
    latency = statistics.median(float(r["latency_ms"]) for r in clean)
    kept = [t for r in clean for t in r["samples_ms"]]
    left = [t for i, r in enumerate(rows) if i not in chosen for t in r["samples_ms"]]
    m = Measurement(tuple(t / 1e3 for t in kept))
    low, high = m.median_ci
    last = rows[-1]
    scale = float(last["latency_ms"]) / latency if latency > 0 else None
    shares = [r["cpu_share"] for r in clean if r.get("cpu_share") is not None]
    out = {
        **last,
        "latency_ms": latency,
        "latency_iqr_ms": m.iqr * 1e3,
        "latency_min_ms": m.min * 1e3,
        "latency_ci_low_ms": low * 1e3,
        "latency_ci_high_ms": high * 1e3,
        "n_samples": m.n,
        "noisy": m.noisy,
        "clips_per_s": last["batch"] / (latency / 1e3) if latency > 0 else None,
        "contended": all(flags),
        "cpu_share": min(shares) if shares else None,
        "load_before": rows[0].get("load_before"),
        "load_after": last.get("load_after"),
        "samples_ms": kept,
        "contended_samples_ms": left,
        "round_latency_ms": medians,
        "round_contended": flags,
        **extra,
    }
    for name in ("achieved_tflops", "mfu"):  # both are FLOPs over the latency: they follow it
        if out.get(name) is not None and scale is not None:
            out[name] = out[name] * scale
    return out


def merge_rounds(paths: Sequence[str | Path], allow_mixed: bool = False) -> MergeResult:
    """Each run one round of the same plan, in the order given: one row per configuration from all of them.

    A configuration's row is :func:`combine_rounds` of its rows in the runs that hold it (the
    median of the quiet rounds' medians; every sample and each round's median kept); a run that was itself
    timed in several rounds counts as one. Configurations that some runs lack are combined from the others
    and listed in ``short``.

    Raises:
        UsageError: as :func:`merge_runs`; also fewer than two runs, the same run twice, or runs with no
            timed row (counts need no rounds: merge them without ``--rounds``).
    """
    if len(paths) < 2:
        raise UsageError(f"--rounds combines two or more runs, each one round; got {len(paths)}")
    resolved = [Path(p).resolve() for p in paths]
    for k, p in enumerate(paths):
        if resolved[k] in resolved[:k]:
            raise UsageError(f"{show_path(p)} is given twice; each run is one round")
    loaded = load_runs(paths)
    if not any(r.get("n_samples") for _, rows, _ in loaded for r in rows):
        raise UsageError("--rounds combines timed runs; these hold no timed row (merge counts without --rounds)")
    if not allow_mixed:
        check_compatible([(src, env) for src, _, env in loaded], timed=True)
    concurrent = timed_concurrently([(src, env) for src, _, env in loaded])
    concurrent += [f"{src}: {w}" for src, _, env in loaded for w in env.get("timed_concurrently") or []]
    held: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for _, rows, _ in loaded:
        for row in rows:
            held.setdefault(row_key(row), []).append(dict(row))
    merged: list[Row] = []
    short: list[str] = []
    for same in held.values():
        waits = [float(r["settle_s"]) for r in same if isinstance(r.get("settle_s"), (int, float))]
        settled = [bool(r["settled"]) for r in same if r.get("settled") is not None]
        merged.append(combine_rounds(same, sum(waits) if waits else None, all(settled) if settled else None))
        if len(same) < len(loaded):
            short.append(f"{same[0].get('arch')} {row_label(same[0])} ({len(same)} of {len(loaded)})")
    all_jobs: dict[str, None] = {}
    for _, _, env in loaded:
        all_jobs.update(dict.fromkeys(env.get("sweep", {}).get("all_jobs", [])))
    environment = dict(next((env for _, _, env in loaded if env), {}))
    environment.pop("command", None)
    environment.update(merged_from=[src for src, _, _ in loaded], rounds=len(loaded))
    environment.pop("started_at", None)  # the rounds' spans interleave with other runs' (the head's rounds)
    environment.pop("finished_at", None)
    if concurrent:
        environment["timed_concurrently"] = concurrent
    position = {j: i for i, j in enumerate(all_jobs)}
    merged.sort(key=lambda r: position.get(str(r.get("job_id")), len(position)))  # stable: else the first run's order
    present = {r.get("job_id") for r in merged}
    return MergeResult(
        rows=merged,
        environment=environment,
        missing=[j for j in all_jobs if j not in present],
        failed=sorted(
            {str(r.get("job_id") or r.get("arch")) for r in merged if r.get("status") in ("error", "timeout")}
        ),
        warnings=concurrent,
        short=short,
    )
