"""Process lifetime: a run owns its process tree.

The parent turns SIGINT, SIGTERM and SIGHUP into :class:`Interrupted` (raised in
the main thread), so that the runner can end every worker, write what finished
and exit with 128 + the signal's number. Workers run in their own process
group (their own session), so a worker and anything it forked are ended with
one ``killpg``; a worker watches its parent and ends its own group when the
parent is gone (SIGKILL leaves the parent no chance to clean up).

A model can also leave its group (``setsid``, a double fork, a daemon). On
Linux the running process is made a *child subreaper*
(``PR_SET_CHILD_SUBREAPER``): such an orphan is re-parented to it instead of to
init, so :func:`end_orphans` can find every child that is not a live worker and
end it, with its own group, when a job ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.errors import signal_exit_code

__all__ = [
    "LIVE",
    "STOP_SIGNALS",
    "Interrupted",
    "RunInterrupted",
    "become_subreaper",
    "end_group",
    "end_orphans",
    "keeping_what_finished",
    "signals_interrupt",
    "watch_parent",
]

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
"""The signals that ask vbench to stop (:func:`signals_interrupt`), rather than report a crash."""


class Interrupted(BaseException):
    """A signal asked this process to stop (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)


class RunInterrupted(Interrupted):
    """A run was interrupted (a signal, or Ctrl-C) and wrote what had finished before it ended.

    Attributes:
        kept: Rows on disk, in the run folder's ``results.json`` (``"state": "interrupted"``).
        short_rounds: How many of them were combined from fewer rounds than asked.
    """

    def __init__(self, signum: int, kept: int, short_rounds: int = 0) -> None:
        super().__init__(signum)
        self.kept = kept
        self.short_rounds = short_rounds

    @classmethod
    def after(cls, e: Interrupted | KeyboardInterrupt, kept: int, short_rounds: int = 0) -> RunInterrupted:
        """The run's interruption by ``e``; Ctrl-C (``KeyboardInterrupt``) is SIGINT, with its exit code."""
        return cls(e.signum if isinstance(e, Interrupted) else signal.SIGINT, kept, short_rounds)


@contextlib.contextmanager
def keeping_what_finished(keep: Callable[[], tuple[int, int]]) -> Iterator[None]:
    """Whatever ends the block early, ``keep()`` first: it writes what finished and returns how many rows are on
    disk and how many of them have fewer rounds than asked. Then an interruption (:class:`Interrupted`, Ctrl-C)
    is raised as the :class:`RunInterrupted` that says so, and any other failure as it is."""
    try:
        yield
    except BaseException as e:
        kept, short = keep()
        if isinstance(e, (Interrupted, KeyboardInterrupt)):
            raise RunInterrupted.after(e, kept=kept, short_rounds=short) from e
        raise


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` once; later ones are ignored.

    Only the main thread can install handlers; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if fired.is_set():
            return  # a second Ctrl-C while the run cleans up: cleaning up is already under way
        fired.set()
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def end_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s process group (the worker and whatever it forked), then reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    except AttributeError:  # pragma: no cover - no process groups (Windows)
        proc.kill()
    with contextlib.suppress(ChildProcessError):
        proc.wait()


class _Live:
    """The worker processes running now, so that an interruption can end them all."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[Any]] = set()
        self._lock = threading.RLock()  # re-entered: add() runs inside starting()

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Hold while starting a worker and adding it, so :func:`end_orphans` never takes it for an orphan."""
        with self._lock:
            yield

    def add(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.add(proc)

    def pids(self) -> set[int]:
        with self._lock:
            return {p.pid for p in self._procs}

    def discard(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def end_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            end_group(proc)


LIVE = _Live()


def become_subreaper() -> bool:
    """Linux: orphaned descendants are re-parented to this process, not to init. False elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    """This process's children, from /proc (empty where there is no /proc)."""
    me, out = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(me):
            out.append(int(entry))
    return out


def end_orphans(keep: set[int] | None = None) -> int:
    """SIGKILL every child of this process (and its group) that is not a live worker or in ``keep``; reap them.

    With :func:`become_subreaper`, what a model left behind (a daemon, a double
    fork) is our child by now. Returns how many were ended.
    """
    with LIVE.starting():
        spare = LIVE.pids() | (keep or set())
        orphans = [pid for pid in _children() if pid not in spare]
        for pid in orphans:
            with contextlib.suppress(OSError):
                pgid = os.getpgid(pid)
                if pgid not in (os.getpgid(0),):
                    os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid in orphans:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    return len(orphans)


def watch_parent(parent_pid: int, poll_s: float = 0.2) -> None:
    """In a worker: when ``parent_pid`` is no longer our parent, SIGKILL our own process group.

    Polls from a daemon thread (PyTorch's kernels release the GIL, so the thread
    runs while the model computes). Killing the group, not only this process,
    also ends any child the model forked.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                try:
                    os.killpg(os.getpgid(0), signal.SIGKILL)
                finally:
                    os._exit(signal_exit_code(signal.SIGKILL))
            time.sleep(poll_s)

    threading.Thread(target=watch, name="vbench-parent-watch", daemon=True).start()
