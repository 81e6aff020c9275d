"""Run a plan: one worker process per architecture, rows on disk as they finish.

The parent never initialises CUDA: it counts on the meta device (in
:func:`bench.plan.make_plan`) and leaves every real forward to workers. A
worker runs all configurations of one architecture, so a GPU sweep pays for
process start and CUDA initialisation once per architecture. If a worker
crashes, its unfinished rows become ``error`` rows; if it produces no row for
``timeout`` seconds it is killed and its unfinished rows become ``timeout``
rows. Either way the run goes on with the next architecture.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import archs
from bench.env import environment
from bench.plan import Config, Job, Plan
from bench.results import ResultsWriter
from bench.schema import config_key, make_row, row_key
from bench.worker import PREFIX, encode_job

__all__ = ["STARTUP_S", "RunOutput", "job_row", "run_plan", "status_rows"]

RowCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunOutput:
    rows: list[dict[str, Any]]
    environment: dict[str, Any]
    paths: dict[str, Path]


def job_row(job: Job, config: Config, env: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A row of one of ``job``'s configurations made in this process (counted only, or failed)."""
    family = archs.get_arch(job.arch).family
    return make_row(config, family=family, env=env, counts=job.counts_for(config), job_id=job.id, **fields)


def status_rows(
    job: Job, configs: Sequence[Config], env: dict[str, Any], status: str, error: str
) -> list[dict[str, Any]]:
    """Rows that record why these configurations have no measurement (``error``, ``timeout``)."""
    return [job_row(job, c, env, status=status, error=error) for c in configs]


STARTUP_S = 60.0
"""Seconds a worker gets, beyond ``timeout``, to start: import torch and the plugins, initialise CUDA."""


def _worker_env() -> dict[str, str]:
    """The worker imports bench (and plugins) from where this process does."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    paths = [os.getcwd(), root, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
    proc.wait()


def _run_worker(
    job: Job,
    plan: Plan,
    timeout: float,
    plugins: Sequence[str],
    parent_env: dict[str, Any],
    env_out: dict[str, Any],
    slot: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the rows of one job from a worker process, or failure rows for what it did not finish.

    ``slot``, when given, becomes the worker's ``CUDA_VISIBLE_DEVICES`` (its GPU is then ``cuda:0``).
    """
    payload = encode_job(job, plan.request.policy, list(plugins))
    worker_env = _worker_env()
    if slot is not None:
        worker_env["CUDA_VISIBLE_DEVICES"] = slot
    with tempfile.NamedTemporaryFile("w+", prefix="vbench-worker-", suffix=".log", delete=False) as errf:
        err_path = Path(errf.name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errf,
            text=True,
            env=worker_env,
            start_new_session=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    remaining = list(job.configs)
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
        started = False  # until the worker reports its environment, it also has STARTUP_S to import and initialise
        while remaining:
            wait = timeout if started else timeout + STARTUP_S
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                _kill(proc)
                yield from status_rows(
                    job, remaining, parent_env, "timeout", f"worker produced no row for {wait:g} s and was killed"
                )
                return
            if line is None:
                code = proc.wait()
                why = _tail(err_path) or "no message"
                yield from status_rows(job, remaining, parent_env, "error", f"worker exited with code {code}: {why}")
                return
            if not line.startswith(PREFIX):
                continue  # whatever the model printed
            msg = json.loads(line[len(PREFIX) :])
            if msg["type"] == "env":
                started = True
                env_out.update(msg["env"])
            elif msg["type"] == "row":
                remaining.pop(0)
                yield msg["row"]
    except BrokenPipeError:
        code = proc.wait()
        yield from status_rows(
            job, remaining, parent_env, "error", f"worker exited with code {code}: {_tail(err_path)}"
        )
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(proc)
        err_path.unlink(missing_ok=True)


def _job_rows(
    job: Job,
    plan: Plan,
    timeout: float,
    plugins: Sequence[str],
    env: dict[str, Any],
    worker_env: dict[str, Any],
    slot: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Error rows for the inputs the model failed to build or count at; then what the static count or the worker gives."""
    for config in job.configs:
        if job.error_for(config):
            yield job_row(job, config, env, status="error", error=job.error_for(config))
    job = dataclasses.replace(job, configs=tuple(c for c in job.configs if not job.error_for(c)))
    if not job.configs:
        return
    if plan.request.static:
        yield from (job_row(job, config, env) for config in job.configs)
    else:
        yield from _run_worker(job, plan, timeout, plugins, env, worker_env, slot)


def run_plan(
    plan: Plan,
    out_dir: Path,
    *,
    timeout: float = 600.0,
    plugins: Sequence[str] = (),
    on_row: RowCallback | None = None,
    markdown: Callable[[list[dict[str, Any]]], str] | None = None,
    command: Sequence[str] = (),
    slots: Sequence[str | None] = (None,),
    previous: Sequence[dict[str, Any]] = (),
    extra_env: Mapping[str, Any] | None = None,
) -> RunOutput:
    """Measure every job of ``plan``; rows go to ``out_dir`` as they finish.

    Args:
        timeout: Seconds a worker may go without producing a row before it is killed (plus
            :data:`STARTUP_S` before its first message, for imports and CUDA initialisation).
        plugins: Modules the workers import first (to register more architectures).
        on_row: Called with each row as it arrives (progress display).
        markdown: Renders the final Markdown table (from :mod:`bench.report`).
        command: The command line that asked for the run, kept in the environment (so that
            ``vbench compare`` can print the command that refreshes a baseline).
        slots: Where workers run at the same time: one ``CUDA_VISIBLE_DEVICES`` value per GPU
            (``("0", "1")``), or ``(None,)`` for one worker at a time on what the process sees.
            A slot runs one worker at a time, so two timing jobs never share a GPU.
        previous: Rows of an earlier run to keep (``--only-missing``); they are written first.
        extra_env: More facts for the environment (the sweep and shard this run is).
    """
    env = environment(None)
    env["device"] = plan.device
    env["command"] = list(command)
    env.update(extra_env or {})
    writer = ResultsWriter(out_dir, env)
    for row in previous:
        writer.append(row)
    lock = threading.Lock()

    def run_job(job: Job, slot: str | None) -> None:
        worker_env: dict[str, Any] = {}
        for row in _job_rows(job, plan, timeout, plugins, env, worker_env, slot):
            with lock:
                writer.append(row)
                if on_row is not None:
                    on_row(row)
        with lock:
            writer.checkpoint()
            writer.environment.update(worker_env)

    if len(slots) <= 1 or len(plan.jobs) <= 1:
        for job in plan.jobs:
            run_job(job, slots[0] if slots else None)
    else:
        todo: queue.Queue[Job] = queue.Queue()
        for job in plan.jobs:
            todo.put(job)

        def drain(slot: str | None) -> None:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                run_job(job, slot)

        threads = [threading.Thread(target=drain, args=(slot,), name=f"vbench-slot-{slot}") for slot in slots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    writer.rows[len(previous) :] = sorted(writer.rows[len(previous) :], key=_plan_order(plan))
    paths = writer.finish(markdown(writer.rows) if markdown else "")
    return RunOutput(rows=writer.rows, environment=writer.environment, paths=paths)


def _plan_order(plan: Plan) -> Callable[[dict[str, Any]], tuple[int, int]]:
    """Sort key that puts rows in the plan's order (rows of parallel workers arrive interleaved)."""
    order = {config_key(c): (j, i) for j, job in enumerate(plan.jobs) for i, c in enumerate(job.configs)}
    return lambda row: order.get(row_key(row), (len(order), 0))
