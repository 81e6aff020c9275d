"""A configuration's measurements as one results row: counts, timing, memory, roofline and contention.

The row's shape (its columns, in order) is the registry's (:mod:`bench.results.columns`); this module fills it
from what was measured, in a worker, or in the parent for a row that no worker finished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bench.measure.roofline import Roofline, intensity
from bench.results.records import STATUSES, Config, Memory, Row, Status

if TYPE_CHECKING:
    from bench.measure.counting import Counts
    from bench.measure.timing import Measurement

__all__ = ["make_row"]


def make_row(
    config: Config,
    *,
    family: str,
    env: Mapping[str, Any],
    counts: Counts | None,
    measurement: Measurement | None = None,
    memory: Memory | None = None,
    status: Status = "ok",
    error: str = "",
    job_id: str = "",
    roofline: Roofline | None = None,
    contention: Mapping[str, Any] | None = None,
) -> Row:
    """One results row; every column of :data:`COLUMNS` is present, in order (None where unknown).

    ``samples_ms`` holds the raw samples; it goes to results.json, not to the CSV.

    ``contention``: the columns of :func:`bench.measure.contention.contention_columns` for a timed row.

    Counts fill their columns whenever the model could be built and counted,
    whatever happened to the timing. The output shape is that of the batch.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    m, c, mem = measurement, counts, memory or {}
    low, high = m.median_ci if m is not None else (None, None)
    row: Row = {
        "arch": config.arch,
        "family": family,
        "mode": config.mode,
        "batch": config.batch,
        "frames": config.frames,
        "height": config.height,
        "width": config.width,
        "device": config.device,
        "device_name": env.get("device_name") or (env.get("cpu_name") if config.device == "cpu" else config.device),
        "dtype": config.dtype,
        "channels_last": config.channels_last,
        "compiled": config.compiled,
        "params": None if c is None else c.params,
        "gmacs": None if c is None else c.macs / 1e9,
        "gflops": None if c is None else c.flops / 1e9,
        "latency_ms": None if m is None else m.median * 1e3,
        "latency_iqr_ms": None if m is None else m.iqr * 1e3,
        "latency_min_ms": None if m is None else m.min * 1e3,
        "n_samples": 0 if m is None else m.n,
        "clips_per_s": None if m is None or m.median <= 0 else config.batch / m.median,
        "peak_mem_mib": mem.get("peak_mem_mib"),
        "status": status,
        "error": error,
        "torch_version": env.get("torch_version"),
        "vbench_version": env.get("vbench_version"),
        "git_sha": env.get("git_sha"),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "arch_kwargs": json.dumps(dict(config.arch_kwargs), sort_keys=True),
        "cuda_graphs": config.cuda_graphs,
        "trainable_params": None if c is None else c.trainable_params,
        "train_gmacs": None if c is None or c.train_macs is None else c.train_macs / 1e9,
        "activations_m": None if c is None else c.activations / 1e6,
        "output_shape": None if c is None else "x".join(str(v) for v in (config.batch, *c.output_shape[1:])),
        "latency_ci_low_ms": None if low is None else low * 1e3,
        "latency_ci_high_ms": None if high is None else high * 1e3,
        "noisy": None if m is None else m.noisy,
        "peak_mem_reserved_mib": mem.get("peak_mem_reserved_mib"),
        "threads": env.get("torch_threads"),
        "cudnn_benchmark": env.get("cudnn_benchmark"),
        "warmup": None if m is None else m.warmup,
        "job_id": job_id or None,
        **_roofline_columns(config, c, m, roofline),  # type: ignore[typeddict-item]
        **{k: (contention or {}).get(k) for k in _CONTENTION},
        "samples_ms": [t * 1e3 for t in m.times_s] if m is not None else [],
    }
    return row


_CONTENTION = (
    "contended", "cpu_share", "load_before", "load_after", "gpu_other_processes", "sm_clock_mhz", "throttle_reasons",
    "rounds", "settle_s", "settled",
)  # fmt: skip


def _roofline_columns(
    config: Config, c: Counts | None, m: Measurement | None, roofline: Roofline | None
) -> dict[str, Any]:
    """``achieved_tflops``, ``mfu``, ``intensity`` and ``bound`` of a row (None where unknown)."""
    out: dict[str, Any] = dict.fromkeys(("achieved_tflops", "mfu", "intensity", "bound"))
    if c is None:
        return out
    macs = c.macs if config.mode == "infer" else c.train_macs
    if c.traffic:
        out["intensity"] = intensity(c.macs, c.traffic, c.params, config.dtype, config.batch)
    if m is not None and macs is not None and m.median > 0:
        out["achieved_tflops"] = 2 * macs * config.batch / m.median / 1e12
    if roofline is not None:
        if out["achieved_tflops"] is not None:
            out["mfu"] = out["achieved_tflops"] / roofline.peak_tflops
        if out["intensity"] is not None:
            out["bound"] = roofline.bound(out["intensity"])
    return out
