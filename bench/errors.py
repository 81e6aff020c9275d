"""Exit codes, and the errors that mean "the user asked for something impossible" (exit code 2, one line)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "OutputError", "UsageError", "first_line", "signal_exit_code"]


class ExitCode(enum.IntEnum):
    """Every exit code a vbench command gives (``docs/guarantees.md``, "Exit codes")."""

    OK = 0
    FAILED = 1
    """A regression (``compare``), missing or doubled jobs (``merge``; with ``--rounds``, a configuration some
    rounds lack), a failed row with ``--fail-on-error``, a model that failed under ``inspect --time``."""
    USAGE = 2
    """Bad usage or bad input: one line on stderr, before any work (also: standard output on a full disk)."""
    INTERNAL = 3
    """A bug of vbench's: one line naming the file that holds the traceback."""
    INCONCLUSIVE = 4
    """``compare``: no regression, but some row was timed on a shared machine (``contended``)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT); any other signal gives :func:`signal_exit_code`."""


def signal_exit_code(signum: int) -> int:
    """The shell's convention for a process ended by signal ``signum``: 128 + its number (137 for SIGKILL)."""
    return 128 + signum


def first_line(e: BaseException, typed: bool = True) -> str:
    """An exception as one line: ``"TypeName: first line of its message"`` (or the message's first line alone).

    Messages from models, plugins and files end up in rows and on the terminal, where a
    second line would break a table or a log line.
    """
    text = str(e).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {line}".rstrip(": ") if typed else line


class UsageError(ValueError):
    """Bad input: the CLI prints the message on one line and exits with code 2."""


class OutputError(UsageError):
    """A run folder that cannot be written (full disk, removed, read-only): one line, exit code 2."""
