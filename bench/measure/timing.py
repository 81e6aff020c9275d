"""Timing: warm-up, then samples until a count or a time budget; every raw sample kept.

Like ``torch.utils.benchmark``'s ``Measurement``, a :class:`Measurement` keeps
the raw per-iteration times in seconds and derives its statistics from them;
nothing is rounded before it is stored.

The clock is injectable so that the statistics and the stopping rule can be
checked against a fake clock, and so that a GPU run can time each iteration
with CUDA events while a CPU run uses the host clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.results.records import SamplePolicy

__all__ = [
    "CONTENDED_SHARE",
    "Clock",
    "CudaEventClock",
    "HostClock",
    "Measurement",
    "cpu_share",
    "median_ci",
    "quantile",
    "sample",
]

NOISY_IQR_RATIO = 0.1
"""A measurement whose IQR / median exceeds this is flagged noisy (torch.utils.benchmark's rule)."""

CONTENDED_SHARE = 0.80
"""A CPU row whose :func:`cpu_share` is below this is ``contended``: another workload took a material part
of the cores its threads asked for. Chosen from a measurement on a 2-core machine, quiet against two busy
processes side by side (``reports/benchmarks/contention_threshold.md``)."""


class Clock(Protocol):
    """Times one call of a function; returns seconds."""

    def time(self, fn: Callable[[], object]) -> float: ...


class HostClock:
    """Wall clock around each call, with an optional synchronisation before and after.

    Args:
        sync: Called before starting and before stopping the clock (for an
            accelerator whose work is asynchronous); None on a CPU.
        now: The clock itself (``time.perf_counter`` unless a test fakes it).
    """

    def __init__(self, sync: Callable[[], None] | None = None, now: Callable[[], float] = time.perf_counter) -> None:
        self._sync = sync
        self._now = now

    def time(self, fn: Callable[[], object]) -> float:
        if self._sync is not None:
            self._sync()
        start = self._now()
        fn()
        if self._sync is not None:
            self._sync()
        return self._now() - start


class CudaEventClock:
    """CUDA events recorded around each call on the current stream; waits for the end event."""

    def __init__(self) -> None:
        import torch

        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], object]) -> float:
        self._start.record()
        fn()
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


@dataclass(frozen=True)
class Measurement:
    """Raw per-iteration times (seconds) and the statistics derived from them."""

    times_s: tuple[float, ...]
    warmup: int = 0
    cpu_s: float | None = None
    """Process CPU time (all threads) spent over the timed samples; None when not measured."""
    wall_s: float | None = None
    """Wall time of the timed samples, by the budget clock (the span :attr:`cpu_s` was taken over)."""
    metadata: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.times_s:
            raise ValueError("a measurement needs at least one sample")

    @property
    def n(self) -> int:
        return len(self.times_s)

    @property
    def median(self) -> float:
        return quantile(self.times_s, 0.5)

    @property
    def iqr(self) -> float:
        return quantile(self.times_s, 0.75) - quantile(self.times_s, 0.25)

    @property
    def min(self) -> float:
        return min(self.times_s)

    @property
    def mean(self) -> float:
        return sum(self.times_s) / self.n

    @property
    def median_ci(self) -> tuple[float, float]:
        """Distribution-free 95 % confidence interval of the median."""
        return median_ci(self.times_s)

    @property
    def noisy(self) -> bool:
        return self.iqr / self.median > NOISY_IQR_RATIO if self.median > 0 else False

    def cpu_share(self, threads: int) -> float | None:
        """:func:`cpu_share` of the timed samples with ``threads`` threads; None when not measured."""
        if self.cpu_s is None or self.wall_s is None:
            return None
        return cpu_share(self.cpu_s, self.wall_s, threads)


def cpu_share(cpu_s: float, wall_s: float, threads: int) -> float | None:
    """The share of its threads' cores the process got: CPU time / (wall time x threads), clipped to [0, 1].

    A process whose ``threads`` threads computed all along gets 1; one that had to share
    its cores with another workload gets less (two busy processes on two cores: about a
    half). None when the span is empty or the thread count unknown.
    """
    if wall_s <= 0 or threads < 1 or not math.isfinite(cpu_s) or not math.isfinite(wall_s):
        return None
    return min(1.0, max(0.0, cpu_s / (wall_s * threads)))


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), without numpy."""
    xs = sorted(values)
    if not xs:
        raise ValueError("quantile of no values")
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic confidence interval of the median (no distribution assumed).

    With n samples, the number below the true median is Binomial(n, 1/2); the
    interval [x_(k), x_(n-k+1)] covers the median with probability
    1 - 2 P(B < k). ``k`` is the largest rank that keeps that probability at
    least ``confidence``; with too few samples the interval is [min, max].
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("median_ci of no values")
    alpha = 1 - confidence
    cdf, k = 0.0, 0
    for i in range(n // 2 + 1):
        cdf += math.comb(n, i) / 2**n  # P(B <= i)
        if 2 * cdf > alpha:
            break
        k = i + 1  # P(B < k) = P(B <= i) keeps the coverage
    k = max(k, 1)
    return xs[k - 1], xs[n - k]


def sample(
    fn: Callable[[], object],
    policy: SamplePolicy,
    clock: Clock,
    now: Callable[[], float] | None = None,
    cpu_clock: Callable[[], float] | None = None,
) -> Measurement:
    """Run ``fn`` ``policy.warmup`` times untimed, then time it until the policy says stop.

    Args:
        now: Clock for the time budget (defaults to ``time.perf_counter``); the
            budget counts the time spent in timed calls plus the loop's own.
        cpu_clock: The process's CPU time, all threads (``time.process_time``
            unless a test fakes it), read at the start and end of the timed
            samples: with the wall span of ``now`` it gives the row's CPU share.
    """
    now = now or time.perf_counter
    cpu_clock = cpu_clock or time.process_time
    for _ in range(policy.warmup):
        fn()
    times: list[float] = []
    cpu_start = cpu_clock()
    start = now()
    while True:
        times.append(clock.time(fn))
        spent = now() - start
        n = len(times)
        if n >= policy.max_samples or spent >= policy.max_time:
            break
        if n >= policy.repeats and spent >= policy.min_time:
            break
    return Measurement(tuple(times), warmup=policy.warmup, cpu_s=cpu_clock() - cpu_start, wall_s=spent)
