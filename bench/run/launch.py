"""The parent's side of one worker process: launched in a session of its own with its job on stdin, its
private channel and its log read by threads, its deadline kept, and why it ended told from its exit status.

:func:`bench.run.runner.run_plan` turns what a :class:`Worker` sends into rows; :mod:`bench.run.worker` is
the other end.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from bench.results.records import Job, Plan
from bench.run.lifetime import LIVE, end_group, end_orphans
from bench.run.worker import BOOTSTRAP, encode_job

__all__ = ["LOG_CAP_BYTES", "POLL_S", "STARTUP_S", "Worker", "log_name", "reported_env"]

STARTUP_S = 60.0
"""Seconds a worker gets, beyond ``timeout``, to start: import torch and the plugins, initialise CUDA."""

LOG_CAP_BYTES = 1 << 20
"""What one architecture's log keeps of its model's output (the rest is counted, not kept)."""

POLL_S = 0.25


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


def reported_env(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The environment a worker reports once it has started (its GPU's name, its torch); None for any other
    message."""
    env = msg.get("env") if msg.get("type") == "env" else None
    return env if isinstance(env, dict) else None


class Worker:
    """One worker process measuring one job: started in its own session, its channel and its log read by threads.

    :meth:`send` hands it its job; :meth:`messages` gives what it sends, until it ends or misses its deadline
    (:meth:`heard` moves that on); :meth:`close` ends it and all it forked.
    """

    def __init__(
        self,
        job: Job,
        proc: subprocess.Popen[bytes],
        channel: tuple[int, str],
        log_path: Path,
        oom_before: int | None,
        payload: bytes,
    ) -> None:
        self.job, self.proc, self.token, self.log_path, self.oom_before = job, proc, channel[1], log_path, oom_before
        self.payload = payload
        """The job as the worker reads it on its stdin."""
        self.deadline = 0.0
        self.timeout = 0.0
        """Seconds it may go without a message that counts (:meth:`messages` sets it)."""
        read_fd = channel[0]
        self._queue: queue.Queue[Any] = queue.Queue()
        assert proc.stdout is not None
        self._threads = [
            threading.Thread(target=_read_channel, args=(read_fd, self._queue), daemon=True),
            threading.Thread(target=_pump_log, args=(proc.stdout, log_path, LOG_CAP_BYTES), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @classmethod
    def launch(cls, job: Job, plan: Plan, plugins: Sequence[dict[str, Any]], log_dir: Path, slot: str | None,
               max_memory: int | None) -> Worker:  # fmt: skip
        """Start the worker of ``job``; it waits for its job on its stdin (:meth:`send`)."""
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
        return cls(job, proc, (read_fd, token), log_path, oom_before, payload)

    def send(self) -> None:
        """Hand the worker its job."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(self.payload)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # the worker died at once; its exit code tells why

    def messages(self, timeout: float, stop: threading.Event | None) -> Iterator[dict[str, Any] | tuple[str, str]]:
        """The worker's own messages (a model writing to file descriptors forges nothing), until ``stop``; at the
        end, why it ended as ``(status, why)``: it exited, or was not :meth:`heard` from for ``timeout`` s (and
        was killed)."""
        started = False  # until the worker reports its environment, it also has STARTUP_S to start
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout + STARTUP_S
        exited_at: float | None = None
        while stop is None or not stop.is_set():
            try:
                msg = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                now = time.monotonic()
                if self.proc.poll() is None:
                    if now > self.deadline:
                        end_group(self.proc)
                        wait = timeout if started else timeout + STARTUP_S
                        yield "timeout", f"worker produced no row for {wait:g} s and was killed"
                        return
                    continue
                # The worker is gone; its channel ends at once unless a descendant kept it open.
                exited_at = exited_at or now
                if now - exited_at <= 2.0:
                    continue
                msg = None
            if msg is None:
                yield self._ended()
                return
            if msg.get("token") != self.token:
                continue
            started = started or reported_env(msg) is not None
            yield msg

    def heard(self) -> None:
        """The worker moved on (a message that counts): it has its ``timeout`` again for the next."""
        self.deadline = time.monotonic() + self.timeout

    def _ended(self) -> tuple[str, str]:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)  # its channel closed: let it finish exiting, so its own exit code tells why
        end_group(self.proc)  # reap it, and anything it forked
        return _exit_status(self.proc.returncode, self.oom_before)

    def error(self, why: str) -> str:
        """The error of the rows it did not finish: ``why``, with the last lines of its log."""
        tail = _log_tail(self.log_path)
        where = f"log: {self.log_path.parent.name}/{self.log_path.name}"
        return (f"{why}; last output: {tail} ({where})" if tail else f"{why} ({where})")[:500]

    def close(self, done: bool) -> None:
        """End it (after a moment to exit by itself when it is ``done``), what it forked and what it detached."""
        if done and self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        end_group(self.proc)  # whatever the model forked dies with the job
        LIVE.discard(self.proc)
        end_orphans()  # and what it detached (setsid, double forks): re-parented to us, the subreaper
        for t in self._threads:
            t.join(timeout=2)
