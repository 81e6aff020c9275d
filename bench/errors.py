"""Errors that mean "the user asked for something impossible" (exit code 2, one line)."""

from __future__ import annotations

__all__ = ["OutputError", "UsageError"]


class UsageError(ValueError):
    """Bad input: the CLI prints the message on one line and exits with code 2."""


class OutputError(UsageError):
    """A run folder that cannot be written (full disk, removed, read-only): one line, exit code 2."""
