"""Errors that mean "the user asked for something impossible" (exit code 2, one line)."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad input: the CLI prints the message on one line and exits with code 2."""
