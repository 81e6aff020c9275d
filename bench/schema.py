"""The results schema: one tidy row per (arch, batch, frames, height, width, device, dtype, mode, options).

Rows are plain dicts with the columns below, holding raw-enough numbers
(milliseconds and MiB with full precision; nothing rounded). ``gmacs``,
``gflops``, ``train_gmacs`` and ``activations_m`` are **per clip** (batch 1),
as published tables give them; latency is per iteration of the whole batch,
and ``clips_per_s = batch / latency``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from bench.counting import Counts
from bench.plan import Config
from bench.timing import Measurement

__all__ = [
    "COLUMNS",
    "KEY_COLUMNS",
    "REQUIRED_COLUMNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "clip_of",
    "config_key",
    "is_missing",
    "make_row",
    "row_key",
]

SCHEMA_VERSION = 1

STATUSES = ("ok", "oom", "timeout", "error", "skipped", "unsupported")

REQUIRED_COLUMNS = (
    "arch", "family", "mode", "batch", "frames", "height", "width", "device", "device_name", "dtype",
    "channels_last", "compiled", "params", "gmacs", "gflops", "latency_ms", "latency_iqr_ms", "latency_min_ms",
    "n_samples", "clips_per_s", "peak_mem_mib", "status", "error", "torch_version", "vbench_version", "git_sha",
    "timestamp",
)  # fmt: skip

EXTRA_COLUMNS = (
    "arch_kwargs", "cuda_graphs", "trainable_params", "train_gmacs", "activations_m", "output_shape",
    "latency_ci_low_ms", "latency_ci_high_ms", "noisy", "peak_mem_reserved_mib", "threads", "cudnn_benchmark",
    "warmup", "job_id",
)  # fmt: skip

COLUMNS = REQUIRED_COLUMNS + EXTRA_COLUMNS

KEY_COLUMNS = (
    "arch", "arch_kwargs", "mode", "batch", "frames", "height", "width", "device", "dtype", "channels_last",
    "compiled", "cuda_graphs",
)  # fmt: skip
"""The columns that identify a configuration (``vbench compare`` matches rows on them)."""


def row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(row.get(c, "")) for c in KEY_COLUMNS)


def config_key(config: Config) -> tuple[str, ...]:
    """The key :func:`row_key` gives the row of this configuration."""
    fields = {**config.to_dict(), "arch_kwargs": json.dumps(dict(config.arch_kwargs), sort_keys=True)}
    return row_key(fields)


def clip_of(row: Mapping[str, Any]) -> str:
    """``"16x112x112"``: the clip of a row, spelt as published inputs are."""
    return f"{row.get('frames')}x{row.get('height')}x{row.get('width')}"


def is_missing(value: Any) -> bool:
    """None, "" and NaN all mean "not measured" (JSON, CSV cells and pandas spell it differently)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _count_fields(counts: Counts | None) -> dict[str, Any]:
    if counts is None:
        return {}
    return {
        "params": counts.params,
        "trainable_params": counts.trainable_params,
        "gmacs": counts.macs / 1e9,
        "gflops": counts.flops / 1e9,
        "train_gmacs": None if counts.train_macs is None else counts.train_macs / 1e9,
        "activations_m": counts.activations / 1e6,
    }


def _timing_fields(m: Measurement | None, batch: int) -> dict[str, Any]:
    if m is None:
        return {"n_samples": 0}
    low, high = m.median_ci
    return {
        "latency_ms": m.median * 1e3,
        "latency_iqr_ms": m.iqr * 1e3,
        "latency_min_ms": m.min * 1e3,
        "latency_ci_low_ms": low * 1e3,
        "latency_ci_high_ms": high * 1e3,
        "n_samples": m.n,
        "noisy": m.noisy,
        "clips_per_s": batch / m.median if m.median > 0 else None,
        "warmup": m.warmup,
    }


def make_row(
    config: Config,
    *,
    family: str,
    env: dict[str, Any],
    counts: Counts | None,
    measurement: Measurement | None = None,
    memory: dict[str, Any] | None = None,
    status: str = "ok",
    error: str = "",
    job_id: str = "",
) -> dict[str, Any]:
    """One results row; every column of :data:`COLUMNS` is present (None where unknown).

    ``samples_ms`` holds the raw samples; it goes to results.json, not to the CSV.

    Counts fill their columns whenever the model could be built and counted,
    whatever happened to the timing. The output shape is that of the batch.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        arch=config.arch,
        family=family,
        mode=config.mode,
        batch=config.batch,
        frames=config.frames,
        height=config.height,
        width=config.width,
        device=config.device,
        device_name=env.get("device_name") or (env.get("cpu_name") if config.device == "cpu" else config.device),
        dtype=config.dtype,
        channels_last=config.channels_last,
        compiled=config.compiled,
        cuda_graphs=config.cuda_graphs,
        arch_kwargs=json.dumps(dict(config.arch_kwargs), sort_keys=True),
        status=status,
        error=error,
        torch_version=env.get("torch_version"),
        vbench_version=env.get("vbench_version"),
        git_sha=env.get("git_sha"),
        threads=env.get("torch_threads"),
        cudnn_benchmark=env.get("cudnn_benchmark"),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        job_id=job_id or None,
    )
    row.update(_count_fields(counts))
    if counts is not None:
        row["output_shape"] = "x".join(str(v) for v in (config.batch, *counts.output_shape[1:]))
    row.update(_timing_fields(measurement, config.batch))
    row["samples_ms"] = [t * 1e3 for t in measurement.times_s] if measurement is not None else []
    row.update(memory or {})
    return row
