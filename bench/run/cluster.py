"""Running the shards of a sweep as a job array through submitit (``--executor slurm|local``).

Each array task plans the same sweep, keeps its shard (:mod:`bench.run.shard`) and
measures it into its own folder; the parent waits, then merges the folders
(:mod:`bench.results.merge`). submitit's local executor runs the same code path as
subprocesses of this machine, so the path is tested without SLURM. submitit is
an optional extra: ``pip install 'vbench[cluster]'``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import UsageError
from bench.results.config import tool_table
from bench.results.records import EXECUTORS, Row
from bench.results.schema import row_key
from bench.run.lifetime import keeping_what_finished
from bench.run.plan import Plan, Request

if TYPE_CHECKING:
    from bench.results.merge import MergeResult

__all__ = [
    "EXECUTORS",
    "ClusterOptions",
    "fill_failed_shards",
    "load_cluster_options",
    "profile_on_cluster",
    "run_shard",
]


@dataclass(frozen=True)
class ClusterOptions:
    executor: str = "slurm"
    shards: int = 2
    partition: str | None = None
    time_min: int = 60
    gpus_per_task: int = 0
    cpus_per_task: int | None = None
    array_parallelism: int | None = None


_FILE_KEYS = {
    "shards": int, "partition": str, "time-min": int, "gpus-per-task": int, "cpus-per-task": int,
    "array-parallelism": int,
}  # fmt: skip


_POLL_S = 1.0
"""How often (s) the executor's tasks are asked whether they finished."""


def load_cluster_options(path: Path | None, **cli: Any) -> ClusterOptions:
    """Options from ``[tool.vbench.cluster]`` of a TOML file, then the command line's (None = not given)."""
    options = ClusterOptions()
    for key, value in tool_table(path, "cluster").items():
        if key not in _FILE_KEYS:
            raise UsageError(f"{path} [tool.vbench.cluster]: unknown key '{key}'; known: {', '.join(_FILE_KEYS)}")
        kind = _FILE_KEYS[key]
        if type(value) is not kind:
            what = "a whole number" if kind is int else "a string"
            raise UsageError(f"{path} [tool.vbench.cluster]: {key} must be {what}; got {str(value)[:40]!r}")
        options = replace(options, **{key.replace("-", "_"): value})  # type: ignore[arg-type]
    options = replace(options, **{k: v for k, v in cli.items() if v is not None})
    if options.executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{options.executor}'; choose from {', '.join(EXECUTORS)}")
    if options.shards < 1:
        raise UsageError("--shards must be at least 1")
    if options.time_min < 1:
        raise UsageError("--time-min must be at least 1")
    return options


def run_shard(
    request: Request,
    index: int,
    count: int,
    out_dir: str,
    timeout: float,
    plugins: Sequence[dict[str, Any]],
    markdown: Callable[[list[Row]], str] | None = None,
) -> str:
    """One array task: plan the sweep, keep shard ``index`` of ``count``, measure it into ``out_dir`` (with its
    ``results.md`` rendered by ``markdown``, which the task receives pickled by reference)."""
    from bench.run.lifetime import signals_interrupt
    from bench.run.plugins import import_plugins
    from bench.run.runner import run_plan
    from bench.run.shard import prepare_sweep

    import_plugins(list(plugins))
    sweep = prepare_sweep(request, shard=f"{index}/{count}")
    with signals_interrupt():  # a cancelled task ends its worker too, and keeps its finished rows
        run_plan(sweep.plan, Path(out_dir), timeout=timeout, plugins=plugins, markdown=markdown,
                 extra_env=sweep.environment)  # fmt: skip
    return out_dir


def _executor(options: ClusterOptions, folder: Path) -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("--executor needs submitit: pip install 'vbench[cluster]'") from None
    if options.executor == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--executor slurm: no SLURM here (sbatch not found); --executor local runs the same path")
    os.environ.setdefault("PYTHONSAFEPATH", "1")  # its tasks' Python: no working directory on sys.path
    executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    params: dict[str, Any] = {"timeout_min": options.time_min, "name": "vbench"}
    if options.gpus_per_task:
        params["gpus_per_node"] = options.gpus_per_task
    if options.cpus_per_task:
        params["cpus_per_task"] = options.cpus_per_task
    if options.executor == "slurm":
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.array_parallelism:
            params["slurm_array_parallelism"] = options.array_parallelism
    executor.update_parameters(**params)
    return executor


def _run_tasks(
    executor: Any, tasks: list[tuple[Any, ...]], one_at_a_time: bool, on_progress: Callable[[int, int], None] | None,
    poll_s: float,
) -> dict[int, str]:  # fmt: skip
    """Submit one array task per shard (:func:`run_shard`'s arguments), wait for all, and return the failures
    (shard index -> message); an interruption (Ctrl-C) cancels every submitted task before it is re-raised."""
    n = len(tasks)
    jobs: list[Any] = []
    try:
        if one_at_a_time:
            for a in tasks:
                jobs.append(executor.submit(run_shard, *a))
                _wait(jobs, n, on_progress, poll_s, len(jobs))
        else:
            jobs = executor.map_array(run_shard, *[list(col) for col in zip(*tasks)])
            _wait(jobs, n, on_progress, poll_s, n)
    except BaseException:
        for job in jobs:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise
    failures: dict[int, str] = {}
    for i, job in enumerate(jobs, start=1):
        try:
            job.result()
        except Exception as e:  # a failed or pre-empted task: keep going, report it
            lines = str(e).strip().splitlines()
            failures[i] = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return failures


def _wait(
    jobs: Sequence[Any], n: int, on_progress: Callable[[int, int], None] | None, poll_s: float, upto: int
) -> None:
    """Wait until the first ``upto`` of ``jobs`` are done, reporting progress out of ``n``."""
    while True:
        done = sum(j.done() for j in jobs)
        if on_progress is not None:
            on_progress(done, n)
        if done >= upto:
            return
        time.sleep(poll_s)


def fill_failed_shards(plan: Plan, dirs: Sequence[Path], failures: Mapping[int, str]) -> int:
    """Give every configuration that a failed task did not finish an ``error`` (or ``timeout``) row.

    A task that crashed or was pre-empted leaves the rows it finished in its
    folder; the rest of its shard would be silently missing. Written into the
    task's folder (the task is over), so that the merge holds one row per
    configuration and ``--only-missing`` can re-run exactly those. Returns the
    number of rows added.
    """
    from bench.results.store import load_partial, write_rows
    from bench.run.runner import status_rows
    from bench.run.shard import prepare_sweep, remaining_plan

    added = 0
    n = len(dirs)
    for index, why in failures.items():
        folder = dirs[index - 1]
        rows, env = load_partial(folder)
        sweep = prepare_sweep(plan, shard=f"{index}/{n}")
        todo, _ = remaining_plan(sweep.plan, rows)
        status = "timeout" if "timed out" in why.lower() or "timeout" in why.lower() else "error"
        env = env or sweep.environment
        have = {row_key(r) for r in rows}  # the task's own error or timeout rows stay as they are
        new = [
            row
            for job in todo.jobs
            for row in status_rows(job, job.configs, env, status, f"array task {index}/{n} did not finish: {why}"[:500])
            if row_key(row) not in have
        ]
        write_rows(folder, env, [*rows, *new])
        added += len(new)
    return added


def profile_on_cluster(
    request: Request,
    options: ClusterOptions,
    out_dir: Path,
    *,
    timeout: float,
    plugins: Sequence[dict[str, Any]] = (),
    on_progress: Callable[[int, int], None] | None = None,
    markdown: Callable[[list[Row]], str] | None = None,
) -> tuple[MergeResult, Mapping[int, str], int]:
    """The whole ``--executor`` path: check the sweep here, run the shards, record failed tasks, merge.

    Each shard is an array task measuring into ``out_dir/shards/I-of-N``; a failed task leaves what it
    measured there (rows are written as they finish). Timed sweeps on the local executor run one task at a
    time: tasks that time models side by side on one machine would slow each other down.

    Returns the merged results (written to ``out_dir`` by the caller), the
    failed tasks (shard index -> message) and the rows added for them.
    """
    from bench.results.merge import merge_runs
    from bench.run.plan import make_plan

    plan = make_plan(request)  # every usage error before anything is submitted
    options = replace(options, shards=min(options.shards, max(1, len(plan.jobs))))  # no empty array tasks
    n = options.shards
    dirs = [out_dir / "shards" / f"{i}-of-{n}" for i in range(1, n + 1)]
    tasks = [(request, i, n, str(dirs[i - 1]), timeout, list(plugins), markdown) for i in range(1, n + 1)]
    # Cut short (interrupted, or failed): the tasks are cancelled; what they finished is kept.
    with keeping_what_finished(lambda: (_keep_interrupted(out_dir, dirs), 0)):
        executor = _executor(options, out_dir / "submitit")
        one_at_a_time = options.executor == "local" and not request.static
        failures = _run_tasks(executor, tasks, one_at_a_time, on_progress, _POLL_S)
    added = fill_failed_shards(plan, dirs, failures) if failures else 0
    return merge_runs(dirs), failures, added


def _keep_interrupted(out_dir: Path, shard_dirs: Sequence[Path]) -> int:
    """Write the rows the shard folders hold as ``out_dir``'s run, ``interrupted``; return how many."""
    from bench.results.merge import merge_runs
    from bench.results.store import ResultsWriter

    dirs = [d for d in shard_dirs if d.is_dir()]
    try:
        merged = merge_runs(dirs, allow_mixed=True) if dirs else None
    except UsageError:  # no rows yet
        merged = None
    writer = ResultsWriter(out_dir, merged.environment if merged else {})
    for row in merged.rows if merged else []:
        writer.append(row)
    writer.finish("", state="interrupted")
    return len(writer.rows)
