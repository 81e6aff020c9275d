"""Waiting on a condition, never on a fixed sleep: what tests of processes and signals share."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(what: str, cond: Callable[[], object], deadline_s: float = 90) -> None:
    """Poll ``cond`` until it is true; fail naming ``what`` after a generous deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for: {what}")
