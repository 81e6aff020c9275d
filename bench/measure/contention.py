"""Was the machine shared while a row was timed? The ``contended`` verdict and what it is made of.

A row is ``contended`` when another workload took a material part of the machine during its timed
samples, so that its latency says more about the neighbours than about the model:

- **CPU** (``device == "cpu"``): the worker's CPU share (:func:`bench.measure.timing.cpu_share`: CPU time over
  wall time x threads) is below :data:`bench.measure.timing.CONTENDED_SHARE`. The 1-minute load average before
  and after is recorded; it decides only where no share was measured (``mps``): then a load beyond the
  worker's own threads of a whole machine's worth of cores (:data:`LOAD_EXCESS_PER_CORE`) at both ends
  flags the row. Measured (``reports/benchmarks/contention.md``): the load average lags by a minute, and
  right after busy processes stopped it still read 4.3 to 4.8 on 2 cores while the worker got 99 % of
  its cores and ran 9 to 16 times faster than beside them; the share is the signal, the load the context.
- **GPU** (``device == "cuda"``): NVML, sampled in a thread during the timed samples
  (:class:`GpuMonitor`), saw another process on the device, or clocks held down by heat or the board
  (:data:`THROTTLING`).

NVML comes from ``nvidia-ml-py`` (module ``pynvml``), imported when there; without it, or without a
driver, the GPU fields stay empty and only what the CPU says is used. Plain Python: no torch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.measure.timing import CONTENDED_SHARE

__all__ = [
    "LOAD_EXCESS_PER_CORE",
    "THROTTLE_REASONS",
    "THROTTLING",
    "GpuMonitor",
    "GpuReport",
    "cpu_contended",
    "gpu_monitor",
    "load_average",
    "reason_names",
    "usable_cores",
]

LOAD_EXCESS_PER_CORE = 1.0
"""Where no CPU share was measured: the load average beyond the worker's own threads that, at both ends
of a row, calls it contended: this many runnable tasks per core (1.0: another machine's worth of work)."""

THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
"""NVML's clock event (throttle) reason bits (``nvmlClocksEventReason*`` in ``nvml.h``) and our names."""

THROTTLING = 0x8 | 0x20 | 0x40 | 0x80
"""The reasons that make a row ``contended``: clocks held down by heat, by the board or by an external
power brake. ``sw_power_cap`` is recorded but does not flag: a GPU at full load runs at its power limit
by design, quiet machine or not; ``gpu_idle`` and the clock settings are not slowdowns."""


def usable_cores() -> int | None:
    """The CPUs this process may run on (its affinity where the platform says, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def cpu_contended(
    share: float | None,
    load_before: float | None,
    load_after: float | None,
    threads: int | None,
    cores: int | None,
    threshold: float = CONTENDED_SHARE,
) -> bool:
    """The CPU verdict: the share below ``threshold``; without a share, the load beyond the run's own threads
    high at both ends."""
    if share is not None:
        return share < threshold
    if None in (load_before, load_after, threads, cores) or not cores:
        return False
    excess = min(load_before, load_after) - threads  # type: ignore[type-var,operator]
    return excess >= LOAD_EXCESS_PER_CORE * cores


def reason_names(mask: int) -> list[str]:
    """The names of the reason bits set in ``mask`` (unknown bits as hex)."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    return names + ([hex(rest)] if rest else [])


@dataclass(frozen=True)
class GpuReport:
    """What NVML saw during a row's timed samples."""

    other_processes: int
    """Most processes other than the worker seen on the device at once."""
    sm_clock_mhz: float | None
    """The lowest SM clock sampled (MHz)."""
    reasons: int
    """The clock event (throttle) reasons seen, or-ed together."""
    samples: int

    @property
    def throttled(self) -> bool:
        return bool(self.reasons & THROTTLING)

    @property
    def contended(self) -> bool:
        return self.other_processes > 0 or self.throttled

    def columns(self) -> dict[str, Any]:
        return {
            "gpu_other_processes": self.other_processes,
            "sm_clock_mhz": self.sm_clock_mhz,
            "throttle_reasons": ",".join(reason_names(self.reasons)),
        }


@dataclass
class GpuMonitor:
    """Samples one device through NVML every ``interval`` seconds while started (a daemon thread).

    ``nvml`` is the ``pynvml`` module (or a fake of it in tests), already initialised; ``handle`` the
    device's. The worker's own process is recognised by its pid; where NVML reports host pids that
    this process cannot see (a container), it is taken to be one of the processes listed.
    """

    nvml: Any
    handle: Any
    interval: float = 0.05
    pid: int = field(default_factory=os.getpid)
    _others: int = 0
    _clock: float | None = None
    _reasons: int = 0
    _n: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        """One reading (the thread calls it; tests call it directly)."""
        nv = self.nvml
        pids: set[int] = set()
        for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(nv, name, None)
            if fn is not None:
                pids |= {int(p.pid) for p in _nvml_call(fn, self.handle) or ()}
        others = len(pids - {self.pid}) if self.pid in pids else max(0, len(pids) - 1)
        clock = _nvml_call(nv.nvmlDeviceGetClockInfo, self.handle, getattr(nv, "NVML_CLOCK_SM", 1))
        reasons_fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        reasons = _nvml_call(reasons_fn, self.handle) if reasons_fn is not None else None
        self._others = max(self._others, others)
        if clock is not None:
            self._clock = float(clock) if self._clock is None else min(self._clock, float(clock))
        self._reasons |= int(reasons or 0)
        self._n += 1

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="vbench-nvml", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> GpuReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # at least the readings at both ends, however short the span
        return GpuReport(self._others, self._clock, self._reasons, self._n)


def _nvml_call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None when NVML says no (a query the device or driver does not support)."""
    try:
        return fn(*args)
    except Exception:  # pynvml.NVMLError and its many subclasses
        return None


def gpu_monitor(uuid: str | None, index: int, import_nvml: Callable[[], Any] | None = None) -> GpuMonitor | None:
    """A monitor of the device with this UUID (or, without one, NVML index ``index``); None without NVML.

    ``import_nvml`` returns the ``pynvml`` module (tests pass a fake); it may raise ImportError.
    """
    try:
        nv = (import_nvml or _import_pynvml)()
        nv.nvmlInit()
        if uuid:
            handle = nv.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
        else:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no module, no driver, no such device: the fields stay empty
        return None
    return GpuMonitor(nv, handle)


def _import_pynvml() -> Any:
    import pynvml

    return pynvml


def contention_columns(
    device: str,
    share: float | None,
    load_before: float | None,
    load_after: float | None,
    threads: int | None,
    gpu: GpuReport | None = None,
    cores: int | None = None,
) -> dict[str, Any]:
    """The contention columns of one timed row (see the module's docstring for the verdict)."""
    cores = cores if cores is not None else usable_cores()
    out: dict[str, Any] = {"cpu_share": share, "load_before": load_before, "load_after": load_after}
    out.update(dict.fromkeys(("gpu_other_processes", "sm_clock_mhz", "throttle_reasons")))
    if gpu is not None:
        out.update(gpu.columns())
    if device == "cuda":
        out["contended"] = bool(gpu is not None and gpu.contended)
    else:
        out["contended"] = cpu_contended(share, load_before, load_after, threads, cores)
    return out
