"""Run a plan: one worker process per architecture, rows on disk as they finish.

The parent never initialises CUDA: it counts on the meta device (in
:func:`bench.run.plan.make_plan`) and leaves every real forward to workers. A
worker runs all configurations of one architecture, so a GPU sweep pays for
process start and CUDA initialisation once per architecture.

What a run guarantees (``docs/guarantees.md``):

- Results come back on a private pipe (:mod:`bench.run.worker`); the model's stdout
  and stderr go to ``logs/<arch>.log`` in the run folder (capped at
  :data:`LOG_CAP_BYTES`) and are never parsed, so nothing a model prints can
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
import functools
import json
import os
import platform
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import archs
from bench.errors import OutputError
from bench.measure.environment import environment
from bench.measure.rows import make_row
from bench.results.records import Config, Job, Plan, Row
from bench.results.schema import config_key, row_key
from bench.results.store import ResultsWriter
from bench.run.lifetime import LIVE, Interrupted, RunInterrupted, become_subreaper, end_group, end_orphans
from bench.run.rounds import combine_rounds, round_robin, settle
from bench.run.worker import BOOTSTRAP, encode_job

__all__ = ["STARTUP_S", "RunOutput", "job_row", "run_plan", "status_rows"]

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


STARTUP_S = 60.0
"""Seconds a worker gets, beyond ``timeout``, to start: import torch and the plugins, initialise CUDA."""

LOG_CAP_BYTES = 1 << 20
"""What one architecture's log keeps of its model's output (the rest is counted, not kept)."""

_POLL_S = 0.25


def _worker_env(slot: str | None) -> dict[str, str]:
    """The worker's environment: where vbench lives, the private channel, its GPU (no working directory)."""
    env = dict(os.environ)
    env["VBENCH_ROOT"] = str(Path(__file__).resolve().parent.parent)
    env["VBENCH_PARENT_PID"] = str(os.getpid())
    env["VBENCH_WORKER"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
    return env


def log_name(arch: str) -> str:
    """The log file of an architecture (plugin names may hold any character)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", arch)[:100] + ".log"


def _pump_log(stream: IO[bytes], path: Path, cap: int) -> None:
    """Copy the model's stdout and stderr into ``path``, keeping at most ``cap`` bytes.

    The pipe is always drained to its end (a worker blocked on a full pipe would
    look like a hang), also when the log cannot be written (a full disk).
    """
    kept = dropped = 0
    log: IO[bytes] | None = None
    with contextlib.suppress(OSError):
        log = path.open("ab")
    with stream:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            room = max(cap - kept, 0) if log is not None else 0
            if room:
                try:
                    log.write(chunk[:room])  # type: ignore[union-attr]
                    log.flush()  # type: ignore[union-attr]
                except OSError:
                    room = 0
            kept += min(room, len(chunk))
            dropped += len(chunk) - min(room, len(chunk))
    if log is not None:
        with contextlib.suppress(OSError), log:
            if dropped:
                log.write(f"\n[vbench: {dropped} more bytes of output not kept]\n".encode())


def _read_channel(fd: int, messages: queue.Queue[Any]) -> None:
    """Parse the worker's private channel: one JSON object a line; ``None`` at its end.

    Lines that are not JSON objects (or longer than :data:`_LINE_CAP`) are dropped
    here: only vbench's worker code writes to the channel on purpose, and its
    messages carry the job's token (checked by the reader of the queue).
    """
    with os.fdopen(fd, "rb") as f:
        while line := f.readline(_LINE_CAP):
            try:
                msg = json.loads(line.decode())
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(msg, dict):
                messages.put(msg)
    messages.put(None)


_LINE_CAP = 64 << 20
"""The longest message a worker sends (a row with its raw samples) is far below this."""


def _log_tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log, printable and on one line."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("[vbench:")]
    tail = " | ".join(kept[-lines:])
    return "".join(ch if ch.isprintable() else "?" for ch in tail)[:300]


def _oom_kills() -> int | None:
    """The kernel's count of OOM kills in this cgroup (cgroup v2), or None where it is not readable."""
    try:
        for line in Path("/sys/fs/cgroup/memory.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _exit_status(code: int, oom_before: int | None) -> tuple[str, str]:
    """The status and reason for a worker that ended on its own before finishing its job."""
    if code == -signal.SIGKILL:
        after = _oom_kills()
        if oom_before is not None and after is not None and after > oom_before:
            return "oom", "worker killed by the kernel's out-of-memory killer (SIGKILL)"
        return "error", "worker killed by SIGKILL (not by vbench)"
    if code < 0:
        return "error", f"worker killed by {signal.Signals(-code).name}"
    return "error", f"worker exited with code {code}"


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
    """
    log_path = log_dir / log_name(job.arch)
    with contextlib.suppress(OSError):  # no log folder (a full disk): the log pump copes
        log_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    token = secrets.token_hex(16)
    trace_dir = str(log_dir.parent / "traces") if plan.request.trace else None
    payload = encode_job(
        job, plan.request.policy, list(plugins), max_memory, (write_fd, token), trace_dir, plan.request.weights
    ).encode()
    oom_before = _oom_kills()
    try:
        with LIVE.starting():  # an orphan sweep never takes a starting worker for an orphan
            proc = subprocess.Popen(
                [sys.executable, "-c", BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_worker_env(slot),
                pass_fds=(write_fd,),
                start_new_session=True,  # its own process group: one killpg ends it and what it forks
            )
            LIVE.add(proc)
    finally:
        os.close(write_fd)
    messages: queue.Queue[Any] = queue.Queue()
    assert proc.stdout is not None and proc.stdin is not None
    threads = [
        threading.Thread(target=_read_channel, args=(read_fd, messages), daemon=True),
        threading.Thread(target=_pump_log, args=(proc.stdout, log_path, LOG_CAP_BYTES), daemon=True),
    ]
    for t in threads:
        t.start()
    remaining = list(job.configs)

    def failed(status: str, why: str) -> list[Row]:
        tail = _log_tail(log_path)
        where = f"log: {log_path.parent.name}/{log_path.name}"
        error = f"{why}; last output: {tail} ({where})" if tail else f"{why} ({where})"
        # Once the worker has reported its environment (the GPU's name, its torch), its rows say so, ok or not.
        return status_rows(job, remaining, {**parent_env, **env_out}, status, error[:500])

    try:
        try:
            proc.stdin.write(payload)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the worker died at once; its exit code tells why
        started = False  # until the worker reports its environment, it also has STARTUP_S to start
        deadline = time.monotonic() + timeout + STARTUP_S
        exited_at: float | None = None
        while remaining:
            if stop is not None and stop.is_set():
                return
            try:
                msg = messages.get(timeout=_POLL_S)
            except queue.Empty:
                now = time.monotonic()
                if proc.poll() is not None:
                    # The worker is gone; its channel ends at once unless a descendant kept it open.
                    exited_at = exited_at or now
                    if now - exited_at > 2.0:
                        msg = None
                    else:
                        continue
                elif now > deadline:
                    end_group(proc)
                    wait = timeout if started else timeout + STARTUP_S
                    yield from failed("timeout", f"worker produced no row for {wait:g} s and was killed")
                    return
                else:
                    continue
            if msg is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)  # its channel closed: let it finish exiting, so its own exit code tells why
                end_group(proc)  # reap it, and anything it forked
                status, why = _exit_status(proc.returncode, oom_before)
                yield from failed(status, why)
                return
            if msg.get("token") != token:
                continue  # not from vbench's worker code: a model writing to file descriptors forges nothing
            if msg.get("type") == "env" and isinstance(msg.get("env"), dict):
                started = True
                env_out.update(msg["env"])
            elif msg.get("type") == "row" and isinstance(msg.get("row"), dict):
                row = msg["row"]
                row.pop("token", None)
                match = [i for i, c in enumerate(remaining) if config_key(c) == row_key(row)]
                if not match:
                    continue  # a row of no configuration this worker still owes: never kept
                remaining.pop(match[0])
                yield row
            deadline = time.monotonic() + timeout
    finally:
        if not remaining and proc.poll() is None:  # done: give it a moment to exit by itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        end_group(proc)  # whatever the model forked dies with the job
        LIVE.discard(proc)
        end_orphans()  # and what it detached (setsid, double forks): re-parented to us, the subreaper
        for t in threads:
            t.join(timeout=2)


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
            :data:`STARTUP_S` before its first message, for imports and CUDA initialisation).
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
    env = environment(None)
    env.update(device=plan.device, command=list(command), plugins=list(plugins), host=platform.node())
    env.update(started_at=_now(), max_memory=max_memory, counter=plan.request.counter)
    if plan.request.weights is not None:
        from bench.results.store import file_sha256  # the hash ``vbench evaluate`` records, so the two can be matched

        weights = Path(plan.request.weights)
        env["weights"] = {"path": str(weights.resolve()), "sha256": file_sha256(weights)}
    env.update(extra_env or {})
    if not plan.request.static and (rounds > 1 or settle_s > 0):
        env.update(rounds=rounds, settle_s=settle_s)
    writer = ResultsWriter(out_dir, env)
    if not plan.request.static:
        become_subreaper()  # what a model detaches is re-parented to this process, and ended with its job
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    @contextlib.contextmanager
    def writing() -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise OutputError(
                f"cannot write to '{out_dir}': {e.strerror or e}; the {len(writer.rows)} rows finished "
                "before are in results.jsonl"
            ) from None

    def keep(row: Row) -> None:
        with writing():
            writer.append(row)

    def measure(job: Job, slot: str | None, worker_env: dict[str, Any]) -> Iterator[Row]:
        return _run_worker(job, plan, timeout, plugins, env, worker_env, out_dir / "logs", slot, max_memory, stop)

    def run_job(job: Job, slot: str | None) -> None:
        worker_env: dict[str, Any] = {}
        for row in _job_rows(job, plan, env, lambda j: measure(j, slot, worker_env), worker_env):
            with lock:
                keep(row)
                if on_row is not None:
                    on_row(row)
        with lock, writing():
            writer.checkpoint()
            writer.environment.update(worker_env)

    def drain(todo: queue.Queue[Job], slot: str | None) -> None:
        try:
            while not stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                run_job(job, slot)
        except BaseException as e:  # handed to the main thread, which ends the run
            failures.append(e)
            stop.set()

    held: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # every round's row of each configuration, in order
    written: set[tuple[str, ...]] = set()
    waited: list[float] = []
    quiet: list[bool] = []

    def combined(same: list[dict[str, Any]]) -> Any:
        return combine_rounds(same, sum(waited) if waited else None, all(quiet) if quiet else None)

    def run_rounds(slot: str | None) -> None:
        """The jobs round-robin, ``rounds`` times; the last round's rows are combined with the held ones and kept."""
        for n, job in round_robin(plan.jobs, rounds):
            if job is plan.jobs[0] and settle_s > 0:
                w, ok = settle(settle_s)
                waited.append(w)
                quiet.append(ok)
            worker_env: dict[str, Any] = {}
            for row in _job_rows(
                job, plan, env, functools.partial(measure, slot=slot, worker_env=worker_env), worker_env
            ):
                same = held.setdefault(row_key(row), [])
                same.append(dict(row))
                if n < rounds:
                    continue
                row = combined(same)
                with lock:
                    keep(row)
                    written.add(row_key(row))
                    if on_row is not None:
                        on_row(row)
            if n == rounds:
                with lock, writing():
                    writer.checkpoint()
                    writer.environment.update(worker_env)

    threads: list[threading.Thread] = []
    try:
        for row in previous:
            keep(row)
        if not plan.request.static and (rounds > 1 or settle_s > 0):
            run_rounds(slots[0] if slots else None)
        elif len(slots) <= 1 or len(plan.jobs) <= 1:
            for job in plan.jobs:
                run_job(job, slots[0] if slots else None)
        else:
            todo: queue.Queue[Job] = queue.Queue()
            for job in plan.jobs:
                todo.put(job)
            threads = [
                threading.Thread(target=drain, args=(todo, slot), name=f"vbench-slot-{slot}", daemon=True)
                for slot in slots
            ]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=_POLL_S)  # short waits: a signal reaches this thread at once
            if failures:
                raise failures[0]
    except BaseException as e:
        stop.set()
        LIVE.end_all()
        for t in threads:
            t.join(timeout=2)
        short = 0
        with contextlib.suppress(OSError):  # rounds cut short: each configuration from the rounds it finished
            for key, same in held.items():
                if key not in written:
                    writer.append(combined(same))
                    short += 1
        writer.environment["finished_at"] = _now()
        with contextlib.suppress(OSError):
            writer.finish(markdown(writer.rows) if markdown else "", state="interrupted")
        if isinstance(e, (Interrupted, KeyboardInterrupt)):
            raise RunInterrupted.after(e, kept=len(writer.rows), short_rounds=short) from e
        raise
    writer.rows[len(previous) :] = sorted(writer.rows[len(previous) :], key=_plan_order(plan))
    writer.environment["finished_at"] = _now()
    paths = writer.finish(markdown(writer.rows) if markdown else "")
    return RunOutput(rows=writer.rows, environment=writer.environment, paths=paths)


def _plan_order(plan: Plan) -> Callable[[Row], tuple[int, int]]:
    """Sort key that puts rows in the plan's order (rows of parallel workers arrive interleaved)."""
    order = {config_key(c): (j, i) for j, job in enumerate(plan.jobs) for i, c in enumerate(job.configs)}
    return lambda row: order.get(row_key(row), (len(order), 0))
