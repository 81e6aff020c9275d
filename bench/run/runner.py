"""Run a plan: one worker process per architecture, rows on disk as they finish.

The parent never initialises CUDA: it counts on the meta device (in
:func:`bench.run.plan.make_plan`) and leaves every real forward to workers. A
worker runs all configurations of one architecture, so a GPU sweep pays for
process start and CUDA initialisation once per architecture.

What a run guarantees (``docs/guarantees.md``):

- Results come back on a private pipe (:mod:`bench.run.worker`); the model's stdout
  and stderr go to ``logs/<arch>.log`` in the run folder (capped at
  :data:`~bench.run.launch.LOG_CAP_BYTES`) and are never parsed, so nothing a model prints can
  change, add or remove a row. An error row quotes the log's last lines.
- A worker that crashes turns its unfinished rows into ``error`` rows (``oom``
  when the kernel's OOM killer ended it); one that produces no row for
  ``timeout`` seconds is killed and its rows become ``timeout`` rows. Either way
  the run goes on with the next architecture.
- Each worker is the leader of its own process group; when its job ends, the
  group is killed, so nothing the model forked outlives it. An interruption
  ends every live group, writes what finished and re-raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import archs
from bench.errors import OutputError
from bench.measure.environment import environment
from bench.measure.rows import make_row
from bench.results.records import Config, Job, Plan, Row
from bench.results.schema import config_key, row_key
from bench.results.store import ResultsWriter
from bench.run.launch import POLL_S, Worker, reported_env
from bench.run.lifetime import LIVE, become_subreaper, keeping_what_finished
from bench.run.rounds import combine_rounds, round_robin, settle

__all__ = ["RunOutput", "job_row", "run_plan", "status_rows"]

RowCallback = Callable[[Row], None]


@dataclass(frozen=True)
class RunOutput:
    rows: list[Row]
    environment: dict[str, Any]
    paths: dict[str, Path]


def job_row(job: Job, config: Config, env: dict[str, Any], **fields: Any) -> Row:
    """A row of one of ``job``'s configurations made in this process (counted only, or failed)."""
    family = archs.get_arch(job.arch).family
    return make_row(config, family=family, env=env, counts=job.counts_for(config), job_id=job.id, **fields)


def status_rows(job: Job, configs: Sequence[Config], env: dict[str, Any], status: str, error: str) -> list[Row]:
    """Rows that record why these configurations have no measurement (``error``, ``timeout``)."""
    return [job_row(job, c, env, status=status, error=error) for c in configs]


def _run_worker(
    job: Job,
    plan: Plan,
    timeout: float,
    plugins: Sequence[dict[str, Any]],
    parent_env: dict[str, Any],
    env_out: dict[str, Any],
    log_dir: Path,
    slot: str | None = None,
    max_memory: int | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Row]:
    """Yield the rows of one job from a worker process, or failure rows for what it did not finish.

    Results come on a private pipe; the model's output goes to ``log_dir``.
    ``slot``, when given, becomes the worker's ``CUDA_VISIBLE_DEVICES`` (its GPU is then ``cuda:0``).
    The worker's environment (the GPU's name, its torch) goes into ``env_out`` and stamps the failure rows too.
    """
    worker = Worker.launch(job, plan, plugins, log_dir, slot, max_memory)
    remaining = list(job.configs)
    try:
        worker.send()
        for msg in worker.messages(timeout, stop):
            if isinstance(msg, tuple):
                status, why = msg
                # Once the worker has reported its environment (the GPU's name, its torch), its rows say so too.
                yield from status_rows(job, remaining, {**parent_env, **env_out}, status, worker.error(why))
                return
            reported = reported_env(msg)
            if reported is not None:
                env_out.update(reported)
            elif msg.get("type") == "row" and isinstance(msg.get("row"), dict):
                row = msg["row"]
                row.pop("token", None)
                match = [i for i, c in enumerate(remaining) if config_key(c) == row_key(row)]
                if not match:
                    continue  # a row of no configuration this worker still owes: never kept
                remaining.pop(match[0])
                yield row
            worker.heard()
            if not remaining:
                return
    finally:
        worker.close(done=not remaining)


def _job_rows(
    job: Job,
    plan: Plan,
    env: dict[str, Any],
    measure: Callable[[Job], Iterator[Row]],
    reported: Mapping[str, Any] | None = None,
) -> Iterator[Row]:
    """What the static count or the worker gives; then error rows for the inputs the model failed to build or
    count at, stamped with the environment the job's worker ``reported`` (when it did), as its other rows are."""
    todo = dataclasses.replace(job, configs=tuple(c for c in job.configs if not job.error_for(c)))
    if todo.configs:
        if plan.request.static:
            yield from (job_row(todo, config, env) for config in todo.configs)
        else:
            yield from measure(todo)
    stamp = {**env, **(reported or {})}
    for config in job.configs:
        if job.error_for(config):
            yield job_row(job, config, stamp, status="error", error=job.error_for(config))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _run_environment(
    plan: Plan, command: Sequence[str], plugins: Sequence[dict[str, Any]], max_memory: int | None,
    extra_env: Mapping[str, Any] | None, rounds: int, settle_s: float,
) -> dict[str, Any]:  # fmt: skip
    """What ``results.json`` records of the run: the machine, the command, the weights' hash, the options."""
    env = environment(None)
    env.update(device=plan.device, command=list(command), plugins=list(plugins), host=platform.node())
    env.update(started_at=_now(), max_memory=max_memory, counter=plan.request.counter)
    if plan.request.weights is not None:
        from bench.results.store import file_sha256  # the hash ``vbench evaluate`` records, so the two can be matched

        weights = Path(plan.request.weights)
        env["weights"] = {"path": str(weights.resolve()), "sha256": file_sha256(weights)}
    env.update(extra_env or {})
    if _in_rounds(plan, rounds, settle_s):
        env.update(rounds=rounds, settle_s=settle_s)
    return env


def _in_rounds(plan: Plan, rounds: int, settle_s: float) -> bool:
    return not plan.request.static and (rounds > 1 or settle_s > 0)


@dataclass
class _Run:
    """The parent's side of one run: jobs handed to workers (one at a time, one per slot, or round-robin), their
    rows kept as they come, and, when it is cut short, what finished written as ``interrupted``."""

    plan: Plan
    env: dict[str, Any]
    """The run's environment as it started: the rows made in this process are stamped with it."""
    writer: ResultsWriter
    measure: Callable[[Job, str | None, dict[str, Any]], Iterator[Row]]
    """A job's rows from a worker on a slot; the worker's environment goes into the dict."""
    stop: threading.Event
    """Set when the run is cut short: the workers' message loops and the slots' threads end."""
    on_row: RowCallback | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    held: dict[tuple[str, ...], list[dict[str, Any]]] = field(default_factory=dict)
    """Every round's row of each configuration, in order."""
    written: set[tuple[str, ...]] = field(default_factory=set)
    waited: list[float] = field(default_factory=list)
    quiet: list[bool] = field(default_factory=list)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise OutputError(
                f"cannot write to '{self.writer.out_dir}': {e.strerror or e}; the {len(self.writer.rows)} rows "
                "finished before are in results.jsonl"
            ) from None

    def keep(self, row: Row) -> None:
        with self.writing():
            self.writer.append(row)

    def show(self, row: Row) -> None:
        if self.on_row is not None:
            self.on_row(row)

    def _on(self, slot: str | None, worker_env: dict[str, Any]) -> Callable[[Job], Iterator[Row]]:
        return lambda job: self.measure(job, slot, worker_env)

    def _job_done(self, worker_env: dict[str, Any]) -> None:
        with self.lock, self.writing():
            self.writer.checkpoint()
            self.writer.environment.update(worker_env)

    def run_job(self, job: Job, slot: str | None) -> None:
        worker_env: dict[str, Any] = {}
        for row in _job_rows(job, self.plan, self.env, self._on(slot, worker_env), worker_env):
            with self.lock:
                self.keep(row)
                self.show(row)
        self._job_done(worker_env)

    def run_parallel(self, slots: Sequence[str | None]) -> None:
        """One thread per slot, each taking the next job until none is left; a failure in one ends them all."""
        todo: queue.Queue[Job] = queue.Queue()
        for job in self.plan.jobs:
            todo.put(job)
        failures: list[BaseException] = []

        def drain(slot: str | None) -> None:
            try:
                while not self.stop.is_set():
                    try:
                        job = todo.get_nowait()
                    except queue.Empty:
                        return
                    self.run_job(job, slot)
            except BaseException as e:  # handed to the main thread, which ends the run
                failures.append(e)
                self.stop.set()

        self.threads = [
            threading.Thread(target=drain, args=(slot,), name=f"vbench-slot-{slot}", daemon=True) for slot in slots
        ]
        for t in self.threads:
            t.start()
        while any(t.is_alive() for t in self.threads):
            for t in self.threads:
                t.join(timeout=POLL_S)  # short waits: a signal reaches this thread at once
        if failures:
            raise failures[0]

    def combined(self, same: list[dict[str, Any]]) -> Row:
        return combine_rounds(same, sum(self.waited) if self.waited else None, all(self.quiet) if self.quiet else None)

    def run_rounds(self, slot: str | None, rounds: int, settle_s: float) -> None:
        """The jobs round-robin, ``rounds`` times; the last round's rows are combined with the held ones and kept."""
        for n, job in round_robin(self.plan.jobs, rounds):
            if job is self.plan.jobs[0] and settle_s > 0:
                w, ok = settle(settle_s)
                self.waited.append(w)
                self.quiet.append(ok)
            worker_env: dict[str, Any] = {}
            for row in _job_rows(job, self.plan, self.env, self._on(slot, worker_env), worker_env):
                same = self.held.setdefault(row_key(row), [])
                same.append(dict(row))
                if n < rounds:
                    continue
                row = self.combined(same)
                with self.lock:
                    self.keep(row)
                    self.written.add(row_key(row))
                    self.show(row)
            if n == rounds:
                self._job_done(worker_env)

    def cut_short(self, markdown: Callable[[list[Row]], str] | None) -> tuple[int, int]:
        """End every worker and write what finished as ``interrupted``; returns how many rows that is, and how
        many of them were combined from fewer rounds than asked (each configuration from the rounds it finished)."""
        self.stop.set()
        LIVE.end_all()
        for t in self.threads:
            t.join(timeout=2)
        short = 0
        with contextlib.suppress(OSError):
            for key, same in self.held.items():
                if key not in self.written:
                    self.writer.append(self.combined(same))
                    short += 1
        self.writer.environment["finished_at"] = _now()
        with contextlib.suppress(OSError):
            self.writer.finish(markdown(self.writer.rows) if markdown else "", state="interrupted")
        return len(self.writer.rows), short


def run_plan(
    plan: Plan,
    out_dir: Path,
    *,
    timeout: float = 600.0,
    plugins: Sequence[dict[str, Any]] = (),
    on_row: RowCallback | None = None,
    markdown: Callable[[list[Row]], str] | None = None,
    command: Sequence[str] = (),
    slots: Sequence[str | None] = (None,),
    previous: Sequence[Row] = (),
    extra_env: Mapping[str, Any] | None = None,
    max_memory: int | None = None,
    rounds: int = 1,
    settle_s: float = 0.0,
) -> RunOutput:
    """Measure every job of ``plan``; rows go to ``out_dir`` as they finish.

    An interruption (:class:`~bench.run.lifetime.Interrupted`, ``KeyboardInterrupt``) or
    a failure to write ends every worker and their children, writes what finished
    (``results.json`` with ``"state": "interrupted"``) and raises: a failure as it is, an
    interruption as :class:`~bench.run.lifetime.RunInterrupted`, which carries ``kept``, the
    number of rows on disk, and ``short_rounds``, how many of them have fewer rounds than ``rounds``.

    Args:
        timeout: Seconds a worker may go without producing a row before it is killed (plus
            :data:`~bench.run.launch.STARTUP_S` before its first message, for imports and CUDA initialisation).
        plugins: Plugins the workers load first (:func:`bench.run.plugins.load_plugins`'s records).
        on_row: Called with each row as it arrives (progress display).
        markdown: Renders the final Markdown table (from :mod:`bench.report.tables`).
        command: The command line that asked for the run, kept in the environment.
        slots: Where workers run at the same time: one ``CUDA_VISIBLE_DEVICES`` value per GPU
            (``("0", "1")``), or ``(None,)`` for one worker at a time on what the process sees.
            A slot runs one worker at a time, so two timing jobs never share a GPU.
        previous: Rows of an earlier run to keep (``--only-missing``); they are written first.
        extra_env: More facts for the environment (the sweep and shard this run is, the options).
        max_memory: Bytes a configuration may be estimated to need (default: what the device has free).
        rounds: Measure the plan this many times, the jobs round-robin, each in a fresh worker; one row per
            configuration from all rounds (:mod:`bench.run.rounds`). Rows are written as the last round makes
            them; an interruption writes, for every configuration measured in fewer rounds, a row combined
            from the rounds it finished (its ``rounds`` says how many). Several rounds run one worker at a
            time, on the first slot.
        settle_s: Before each round, wait at most this long for a quiet machine (:func:`bench.run.rounds.settle`).
    """
    env = _run_environment(plan, command, plugins, max_memory, extra_env, rounds, settle_s)
    writer = ResultsWriter(out_dir, env)
    if not plan.request.static:
        become_subreaper()  # what a model detaches is re-parented to this process, and ended with its job

    stop = threading.Event()

    def measure(job: Job, slot: str | None, worker_env: dict[str, Any]) -> Iterator[Row]:
        return _run_worker(job, plan, timeout, plugins, env, worker_env, out_dir / "logs", slot, max_memory, stop)

    run = _Run(plan, env, writer, measure, stop, on_row)
    first = slots[0] if slots else None
    with keeping_what_finished(lambda: run.cut_short(markdown)):
        for row in previous:
            run.keep(row)
        if _in_rounds(plan, rounds, settle_s):
            run.run_rounds(first, rounds, settle_s)
        elif len(slots) <= 1 or len(plan.jobs) <= 1:
            for job in plan.jobs:
                run.run_job(job, first)
        else:
            run.run_parallel(slots)
    writer.rows[len(previous) :] = sorted(writer.rows[len(previous) :], key=_plan_order(plan))
    writer.environment["finished_at"] = _now()
    paths = writer.finish(markdown(writer.rows) if markdown else "")
    return RunOutput(rows=writer.rows, environment=writer.environment, paths=paths)


def _plan_order(plan: Plan) -> Callable[[Row], tuple[int, int]]:
    """Sort key that puts rows in the plan's order (rows of parallel workers arrive interleaved)."""
    order = {config_key(c): (j, i) for j, job in enumerate(plan.jobs) for i, c in enumerate(job.configs)}
    return lambda row: order.get(row_key(row), (len(order), 0))
