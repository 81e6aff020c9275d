"""Splitting a sweep into shards, and finding what a partial run still lacks.

A sweep is the list of jobs of a :class:`~bench.run.plan.Plan` (one per
architecture, all its configurations). Each job has a stable id, derived from
what it measures, so that every process that builds the same plan agrees on
it. ``--shard i/N`` keeps the jobs that a deterministic greedy balance (longest
job first onto the lightest shard, by expected cost) puts in shard ``i``:
every job lands in exactly one shard, whatever N.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.records import Job, Plan, Request, Row
from bench.results.schema import config_key, row_key

__all__ = [
    "DONE_STATUSES",
    "Sweep",
    "assign_shards",
    "job_cost",
    "parse_shard",
    "prepare_sweep",
    "remaining_plan",
    "select_shard",
]

DONE_STATUSES = ("ok", "oom", "skipped", "unsupported")
"""Statuses that are a result; ``error`` and ``timeout`` rows are measured again by ``--only-missing``."""


def job_cost(job: Job) -> float:
    """Expected cost: MACs of every configuration times its batch, training counted three times."""
    total = 0.0
    for config in job.configs:
        counts = job.counts_for(config)
        macs = counts.macs if counts is not None else 1.0
        total += macs * config.batch * (3 if config.mode == "train" else 1)
    return total


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: shard 2 of 4, counted from 1."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise UsageError(f"--shard takes I/N with whole numbers, such as 1/4; got '{text}'") from None
    if not sep or n < 1 or not 1 <= i <= n:
        raise UsageError(f"--shard I/N needs 1 <= I <= N; got '{text}'")
    return i, n


def assign_shards(costs: Mapping[str, float], n: int) -> dict[str, int]:
    """Shard (1..n) of every job id: the costliest job first, each onto the least loaded shard.

    Deterministic: ties in cost are broken by id, ties in load by the lower shard.
    """
    load = [0.0] * n
    out: dict[str, int] = {}
    for jid in sorted(costs, key=lambda j: (-costs[j], j)):
        shard = min(range(n), key=lambda s: (load[s], s))
        out[jid] = shard + 1
        load[shard] += costs[jid]
    return out


def select_shard(plan: Plan, index: int, count: int) -> Plan:
    """The plan with only the jobs of shard ``index`` of ``count``."""
    shards = assign_shards({j.id: job_cost(j) for j in plan.jobs}, count)
    return dataclasses.replace(plan, jobs=tuple(j for j in plan.jobs if shards[j.id] == index))


def _rounds_of(row: Row) -> int:
    n = row.get("rounds")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def remaining_plan(plan: Plan, rows: Iterable[Row], rounds: int = 1) -> tuple[Plan, list[Row]]:
    """What is left of ``plan`` after ``rows`` (an earlier, partial run), and the rows to keep.

    A configuration of the plan is done when a row for it has a status of
    :data:`DONE_STATUSES` and was measured in at least ``rounds`` rounds (a
    ``--rounds`` run cut short keeps rows of fewer; they are measured again, every
    round). Every row is kept except those the plan measures again (its
    configurations that are not done), so that rows of other configurations in
    the same folder are never lost.
    """
    keyed = [(row_key(r), r) for r in rows]
    wanted = {config_key(c) for j in plan.jobs for c in j.configs}
    done = {
        key
        for key, r in keyed
        if r.get("status") in DONE_STATUSES and (r.get("status") != "ok" or _rounds_of(r) >= rounds)
    }
    kept: dict[tuple[str, ...], Row] = {}
    for key, row in keyed:
        if key in wanted and key not in done:
            continue  # measured again
        if key in done and row.get("status") not in DONE_STATUSES:
            continue  # a failed attempt superseded by a finished row
        kept.setdefault(key, row.copy())
    jobs = []
    for job in plan.jobs:
        todo = tuple(c for c in job.configs if config_key(c) not in done)
        if todo:
            jobs.append(dataclasses.replace(job, configs=todo))
    return dataclasses.replace(plan, jobs=tuple(jobs)), list(kept.values())


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What one ``vbench profile`` process runs: its part of the plan, rows kept from before, its slots."""

    plan: Plan
    previous: list[Row]
    slots: list[str | None]
    environment: dict[str, Any]


def prepare_sweep(
    source: Plan | Request,
    *,
    shard: str | None = None,
    only_missing_in: Path | None = None,
    gpus: str | None = None,
    allow_mixed: bool = False,
    rounds: int = 1,
) -> Sweep:
    """Narrow a full plan to this process's work; every check happens here, before any timing.

    Given a :class:`~bench.run.plan.Request`, ``shard`` and ``gpus`` are checked
    before the plan is made (counting a big grid takes seconds).

    Args:
        shard: ``"I/N"``: keep shard I of N.
        only_missing_in: A run folder: keep its finished rows and plan only what it lacks.
        gpus: ``"0,1"``: one worker per GPU at a time.
        allow_mixed: With ``only_missing_in``, keep rows measured in another environment
            (other torch, vbench, CPU, GPU or thread count); refused otherwise.
        rounds: With ``only_missing_in``, the rounds a timed row needs to count as done.
    """
    from bench.results.store import load_partial
    from bench.run.plan import make_plan, resolve_device, resolve_gpus

    index, count = parse_shard(shard) if shard is not None else (1, 1)
    device = source.device if isinstance(source, Plan) else resolve_device(source.device)
    slots: list[str | None] = list(resolve_gpus(gpus, device)) or [None]
    full = source if isinstance(source, Plan) else make_plan(source)
    mine = select_shard(full, index, count) if shard is not None else full
    sweep = {"shard": shard, "jobs": [j.id for j in mine.jobs], "all_jobs": [j.id for j in full.jobs]}
    plan: Plan = mine
    previous: list[Row] = []
    if only_missing_in is not None:
        rows, env = load_partial(only_missing_in)
        if rows and not allow_mixed:
            from bench.measure.environment import environment
            from bench.results.merge import check_compatible

            timed = not full.request.static or any(r.get("n_samples") for r in rows)
            check_compatible([(str(only_missing_in), env), ("this run", environment(None))], timed)
        plan, previous = remaining_plan(mine, rows, 1 if full.request.static else rounds)
    return Sweep(plan=plan, previous=previous, slots=slots, environment={"sweep": sweep})
