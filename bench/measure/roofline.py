"""The device's measured roofline: peak dense throughput and memory bandwidth.

A roofline (Williams, Waterman & Patterson, 2009) bounds what a kernel of
arithmetic intensity ``I`` (FLOPs per byte moved) can achieve on a device:
``min(peak, bandwidth x I)``. vbench measures both roofs instead of quoting a
datasheet: the peak is the faster of a large matmul and a large 3D
convolution (the work video backbones are made of), the bandwidth is a large
copy (bytes read + bytes written per second). The ridge point
``peak / bandwidth`` separates compute-bound work (to its right) from
memory-bound work.

A probe takes a few seconds, so its result is cached per device, torch version,
dtype and (on a CPU) thread count, in the user's cache folder
(``$VBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/vbench``, else
``~/.cache/vbench``). The clock is injectable, so the arithmetic is tested
against a fake clock.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from bench.errors import UsageError
from bench.results.io import atomic_write_text, read_text

__all__ = [
    "DTYPE_BYTES",
    "LIMITS",
    "PROBE_SIZES",
    "UNPROBED",
    "ProbeSizes",
    "Roofline",
    "cache_path",
    "intensity",
    "is_cached",
    "probe",
    "roofline_for",
]

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
"""Bytes per element of each ``--dtype`` (the width activations have under autocast)."""

Bound = Literal["compute", "memory"]

LIMITS = {"matmul_tflops": (1e-9, 1e5), "conv3d_tflops": (1e-9, 1e5), "bandwidth_gbs": (1e-6, 1e6)}
"""Bounds of a believable device (1 kFLOP/s to 100 PFLOP/s, 1 kB/s to 1 PB/s): a value outside is damage."""

UNPROBED = {("cpu", "fp16"): "fp16 on a CPU runs emulated kernels that a probe would take minutes to time"}
"""(device, dtype) pairs without a roofline, and why: their rows have no ``mfu``."""


def intensity(macs: int, traffic: int, params: int, dtype: str, batch: int = 1) -> float:
    """Arithmetic intensity (FLOP/byte) of a forward of ``batch`` clips.

    ``macs`` and ``traffic`` (activation elements read and written by the leaf
    modules, :attr:`bench.measure.counting.Counts.traffic`) are per clip; activations move
    at the dtype's width, weights (``params``) are read once per batch in fp32, as
    autocast keeps them.
    """
    moved = batch * traffic * DTYPE_BYTES.get(dtype, 4) + 4 * params
    return 2 * macs * batch / moved if moved else 0.0


@dataclass(frozen=True)
class Roofline:
    """One device's measured roofs, for one dtype."""

    device: str
    device_name: str
    dtype: str
    torch_version: str
    threads: int
    matmul_tflops: float
    conv3d_tflops: float
    bandwidth_gbs: float
    measured_at: str = ""

    @property
    def peak_tflops(self) -> float:
        """The measured peak: the faster of the two dense probes."""
        return max(self.matmul_tflops, self.conv3d_tflops)

    @property
    def ridge(self) -> float:
        """FLOPs per byte where the two roofs meet: work below it is memory-bound."""
        return self.peak_tflops * 1e12 / (self.bandwidth_gbs * 1e9)

    def attainable_tflops(self, intensity: float) -> float:
        """The roof over arithmetic intensity ``intensity`` (FLOP/byte)."""
        return min(self.peak_tflops, self.bandwidth_gbs * 1e9 * intensity / 1e12)

    def bound(self, intensity: float) -> Bound:
        """``compute`` at or right of the ridge point, ``memory`` left of it."""
        return "compute" if intensity >= self.ridge else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "peak_tflops": self.peak_tflops, "ridge_flop_per_byte": self.ridge}

    def problem(self) -> str:
        """Why these roofs cannot be true ("" when they can): every throughput a finite positive number
        below :data:`LIMITS`, names on one line, threads a positive integer."""
        for name in ("matmul_tflops", "conv3d_tflops", "bandwidth_gbs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"{name} is {v!r}, not a finite number"
            low, high = LIMITS[name]
            if not low <= v <= high:
                return f"{name} {v!r} is outside [{low:g}, {high:g}]"
        for name in ("device", "device_name", "dtype", "torch_version", "measured_at"):
            v = getattr(self, name)
            if not isinstance(v, str) or "\n" in v or len(v) > 200:
                return f"{name} is not a name on one line"
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            return f"threads is {self.threads!r}, not a positive integer"
        return ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Roofline:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class ProbeSizes:
    """The probes' problem sizes: large enough to reach the device's roofs."""

    matmul: int
    """n of an n x n by n x n matmul (2 n^3 FLOPs)."""
    conv3d: tuple[int, int, int, int]
    """(batch, channels, frames, side) of a 3x3x3 convolution, channels in = out, padding 1."""
    copy_mib: int
    """Size of the tensor copied (bytes moved: twice this)."""
    repeats: int = 5


PROBE_SIZES = {
    "cpu": ProbeSizes(matmul=2048, conv3d=(2, 64, 16, 56), copy_mib=256),
    "cuda": ProbeSizes(matmul=8192, conv3d=(16, 128, 16, 56), copy_mib=2048, repeats=20),
    "mps": ProbeSizes(matmul=4096, conv3d=(4, 64, 16, 56), copy_mib=512),
}


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def probe(
    device: str,
    dtype: str = "fp32",
    *,
    sizes: ProbeSizes | None = None,
    clock: Any = None,
    device_name: str = "",
) -> Roofline:
    """Measure the roofs of ``device`` for ``dtype`` (medians of ``sizes.repeats`` timed runs each).

    Args:
        clock: A :class:`bench.measure.timing.Clock` (default: CUDA events on a GPU, the host
            clock with synchronisation elsewhere); tests pass a fake one.
    """
    import torch
    import torch.nn.functional as F

    from bench.measure.environment import cpu_name
    from bench.measure.latency import clock_for

    sizes = sizes or PROBE_SIZES.get(device, PROBE_SIZES["cpu"])
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    clock = clock or clock_for(device)
    dev = torch.device(device)

    def timed(fn: Callable[[], object]) -> float:
        fn()  # warm-up (allocations, kernel selection)
        return _median([clock.time(fn) for _ in range(sizes.repeats)])

    def matmul() -> float:
        n = sizes.matmul
        a = torch.randn(n, n, device=dev, dtype=dt)
        b = torch.randn(n, n, device=dev, dtype=dt)
        return 2 * n**3 / timed(lambda: a @ b) / 1e12

    def conv3d() -> float:
        batch, ch, frames, side = sizes.conv3d
        x = torch.randn(batch, ch, frames, side, side, device=dev, dtype=dt)
        w = torch.randn(ch, ch, 3, 3, 3, device=dev, dtype=dt)
        flops = 2 * batch * ch * ch * 27 * frames * side * side
        return flops / timed(lambda: F.conv3d(x, w, padding=1)) / 1e12

    def copy() -> float:
        elements = sizes.copy_mib * 2**20 // DTYPE_BYTES[dtype]
        src = torch.ones(elements, device=dev, dtype=dt)
        dst = torch.empty_like(src)
        return 2 * elements * DTYPE_BYTES[dtype] / timed(lambda: dst.copy_(src)) / 1e9

    with torch.inference_mode():  # each probe's tensors are freed before the next one allocates
        matmul_tflops, conv3d_tflops, bandwidth = matmul(), conv3d(), copy()

    if not device_name:
        device_name = torch.cuda.get_device_name() if device == "cuda" else cpu_name()
    measured = Roofline(
        device=device,
        device_name=device_name,
        dtype=dtype,
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        matmul_tflops=matmul_tflops,
        conv3d_tflops=conv3d_tflops,
        bandwidth_gbs=bandwidth,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if measured.problem():
        raise RuntimeError(f"the roofline probe measured nonsense: {measured.problem()}")
    return measured


def cache_path() -> Path:
    """Where measured rooflines are kept: ``$VBENCH_CACHE_DIR``, ``$XDG_CACHE_HOME/vbench`` or ``~/.cache/vbench``."""
    root = os.environ.get("VBENCH_CACHE_DIR")
    if root:
        return Path(root) / "roofline.json"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "vbench" / "roofline.json"


def _key(device: str, device_name: str, torch_version: str, dtype: str, threads: int) -> str:
    # On a CPU the thread count sets the peak; a GPU's does not depend on it.
    return f"{device}|{device_name}|torch {torch_version}|{dtype}" + (f"|{threads} threads" if device == "cpu" else "")


_CACHE_CAP = 1 << 20


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's entries; a missing, damaged, oversized or non-regular file reads as empty (measure again:
    a cache is never a source of truth). Read with :func:`~bench.results.io.read_text`: a FIFO cannot hang the run."""
    try:
        data = json.loads(read_text(path, "roofline cache", _CACHE_CAP))
    except (UsageError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Replace the cache atomically; a cache that cannot be written is not an error."""
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def is_cached(roofline: dict[str, Any], path: Path | None = None) -> bool:
    """Whether the cache holds this measured roofline (``Roofline.to_dict()``): a cache that could not be
    written holds nothing, and the command must not say the numbers are kept."""
    r = roofline
    try:
        key = _key(str(r["device"]), str(r["device_name"]), str(r["torch_version"]), str(r["dtype"]), int(r["threads"]))
    except (KeyError, TypeError, ValueError):
        return False
    return _read_cache(path or cache_path()).get(key) == r


def roofline_for(device: str, dtype: str = "fp32", *, refresh: bool = False, path: Path | None = None) -> Roofline:
    """The cached roofline of this device and dtype, measured (and cached) when there is none.

    Raises:
        RuntimeError: when a probe cannot run (e.g. a dtype the device has no kernels for).
    """
    import torch

    from bench.measure.environment import cpu_name

    path = path or cache_path()
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_name()
    key = _key(device, name, torch.__version__, dtype, torch.get_num_threads())
    cached = _read_cache(path)
    if (device, dtype) in UNPROBED:
        raise RuntimeError(f"no roofline for {dtype} on {device}: {UNPROBED[(device, dtype)]}")
    if not refresh and isinstance(cached.get(key), dict):
        with contextlib.suppress(TypeError, KeyError, ValueError):
            found = Roofline.from_dict(cached[key])
            if not found.problem():
                return found
    measured = probe(device, dtype, device_name=name)
    cached = _read_cache(path)  # another process may have written meanwhile
    cached[key] = measured.to_dict()
    _write_cache(path, cached)
    return measured
