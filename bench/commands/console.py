"""The terminal side shared by the commands: the console, plain lines, the progress bar, a closed stdout,
and the options a command line gave (recorded so that a run's resume command is rebuilt, never pasted).

Plain helpers with no torch: ``bench.cli`` and ``bench.commands.evaluate`` both use them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import Any

__all__ = [
    "guard_stdout",
    "make_console",
    "progress_bar",
    "recorded_options",
    "say",
    "stdout_closed",
    "stdout_failure",
]


def stdout_closed() -> None:
    """Standard output is gone (``| head``): send the rest of it nowhere and carry on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


_FAILURE: list[str] = []
"""Why standard output could not be written (a full disk behind ``> FILE``), once it could not."""


def stdout_failure() -> str | None:
    """The reason standard output stopped taking what was printed (not a closed pipe), or None."""
    return _FAILURE[0] if _FAILURE else None


class _GuardedStdout(io.FileIO):
    """File descriptor 1, never raising: a closed pipe (``| head``) or a full disk (``> /dev/full``) sends the
    rest of the output to /dev/null and the command goes on; the full disk is said once, on stderr."""

    def write(self, b: Any) -> int:
        try:
            return super().write(b)
        except BrokenPipeError:
            pass
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                raise
            if not _FAILURE:
                _FAILURE.append(e.strerror or str(e))
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write(
                        f"vbench: error: cannot write standard output ({_FAILURE[0]}); the rest of it is dropped, "
                        "the command goes on\n"
                    )
                    sys.stderr.flush()
        stdout_closed()
        return memoryview(b).nbytes


def _reopen_closed_descriptors() -> None:
    """Descriptors 0-2 that the caller closed (``2>&-``) are opened on /dev/null, as a daemon does.

    Otherwise the next file vbench opens (a results file) would take descriptor 2, and whatever writes to
    standard error (torch's warnings, from C) would write into it; and ``sys.stderr`` would be None.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                opened = os.open(os.devnull, os.O_RDWR)
                if opened != fd:  # a lower descriptor was free too: it is being handled in this loop
                    os.dup2(opened, fd)
                    os.close(opened)
    if sys.stderr is None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the process's standard error, never closed


def guard_stdout() -> None:
    """Replace ``sys.stdout`` (file descriptor 1) by one that a closed pipe or a full disk cannot stop.

    Every command prints through ``sys.stdout`` (typer's echo and rich's console alike), so this is the one
    place where a closed standard output stops the printing and never the work. A ``sys.stdout`` that is not
    descriptor 1 (a test runner's capture) is left alone.
    """
    _reopen_closed_descriptors()
    current = sys.stdout
    if current is None or (
        isinstance(getattr(current, "buffer", None), io.BufferedWriter)
        and isinstance(getattr(current.buffer, "raw", None), _GuardedStdout)
    ):
        return
    try:
        if current.fileno() != 1:
            return
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return
    with contextlib.suppress(OSError, ValueError):
        current.flush()
    raw = _GuardedStdout(1, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=current.encoding,
        errors="backslashreplace",  # a file name that is not UTF-8 prints escaped, never ends the command
        line_buffering=bool(current.line_buffering),
        write_through=getattr(current, "write_through", False),
    )


def recorded_options(ctx: Any) -> dict[str, Any]:
    """The options given on the command line, by name: a flag is True, a value a list of strings.

    Kept in the run's environment, so that the commands that finish or refresh
    the run are rebuilt from these (and quoted), never pasted from a file.
    """
    out: dict[str, Any] = {}
    for param in ctx.command.params:
        if getattr(param, "param_type_name", "") != "option" or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if getattr(source, "name", "") not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        name = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            if value:
                out[name] = True
            elif param.secondary_opts:
                out[max(param.secondary_opts, key=len)] = True
        elif value is not None:
            out[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return out


def say(console: Any, text: str) -> None:
    """Print one line literally (no rich markup), whatever it holds."""
    from bench.report.tables import plain

    console.print(plain(text), soft_wrap=True)


def progress_bar(console: Any, **kwargs: Any) -> Any:
    """The rich progress bar every command uses: description, bar, done/total, elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
        **kwargs,
    )  # fmt: skip


def make_console() -> Any:
    """A rich console on ``sys.stdout``; a closed pipe stops its printing, never the command (rich's own
    ``on_broken_pipe`` raises ``SystemExit(1)``)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            stdout_closed()

    console = _Console()
    return console if console.is_terminal else _Console(width=200)
