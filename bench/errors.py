"""Errors that mean "the user asked for something impossible" (exit code 2, one line)."""

from __future__ import annotations

__all__ = ["OutputError", "UsageError", "first_line"]


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
