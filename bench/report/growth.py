"""How cost grows with clip length and frame size, every architecture of a run side by side (``vbench report``).

A convolution does a fixed amount of work per output voxel, so its MACs grow in
proportion to the clip: as T^1 along time, (H=W)^2 along the frame's side, and
(T x H x W)^1 along the clip's voxels. Self-attention over N tokens adds the
N^2 terms of its two matmuls (scores and the weighted sum) to the linear
layers' N terms; every patch-based token count is proportional to T x H x W, so
global attention shows as an exponent above 1 in the voxels, one that rises
with the clip (the quadratic part's share grows with N). Attention within
windows or over pooled keys stays nearer 1.

The fits are :func:`bench.report.analysis.fit_growth`'s (log-log least squares), one
per configuration and setting (mode, dtype, device, batch), over the rows whose
frames or size vary (H = W). What separates the architectures comes from the
rows' own numbers, never from their names or families: the family column only
labels them. MACs are exact (counted, so every row whose model was built has
them); latencies are measured, and a latency timed while another workload shared
the machine (``contended``) is left out unless ``include_contended``, so each
fit says how many points it used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.report.analysis import fit_growth
from bench.results.schema import is_contended

__all__ = ["GROWTH_COLUMNS", "PROPORTIONAL_TOLERANCE", "end_to_end_exponent", "growth_frame", "growth_verdict"]

PROPORTIONAL_TOLERANCE = 0.05
"""A MACs exponent in the clip's voxels within this of 1 is growth in proportion to the clip.

The convolutional networks of ``reports/scaling-modern/`` land within it (0.98 to 1.00 over 8-32 frames and
112-224 pixels, padding and the fixed-size head keeping it just under 1), windowed attention too (1.03); global
attention lands well above (1.27 for a ViT-S over 2x16x16 tubelets)."""

GROWTH_COLUMNS = [
    "arch", "family", "mode", "dtype", "device", "batch", "frames", "sizes",
    "macs_frames", "macs_size", "macs_voxels", "macs_frames_at_largest", "macs_n",
    "latency_frames", "latency_size", "latency_voxels", "latency_n", "latency_timed", "growth",
]  # fmt: skip
"""The columns of ``growth.csv``: ``*_frames`` is the exponent of T, ``*_size`` of the side H = W,
``*_voxels`` of T x H x W; ``macs_frames_at_largest`` the two-point exponent of T at the largest size;
``latency_n`` the points the latency fit used out of ``latency_timed`` timed ok rows."""


def growth_verdict(voxels_exponent: float | None) -> str:
    """``faster than the clip``, ``in proportion`` or ``slower than the clip``, from the MACs exponent in
    T x H x W (within :data:`PROPORTIONAL_TOLERANCE` of 1 is in proportion)."""
    if voxels_exponent is None or not math.isfinite(voxels_exponent):
        return ""
    if voxels_exponent > 1 + PROPORTIONAL_TOLERANCE:
        return "faster than the clip"
    if voxels_exponent < 1 - PROPORTIONAL_TOLERANCE:
        return "slower than the clip"
    return "in proportion"


def end_to_end_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """The exponent between the first and last of ``(x, y)`` points sorted by x: log(y1/y0) / log(x1/x0).

    Where a least-squares fit averages a curving log-log line, this reads its slope over the whole range at
    one end of the other axis (the issue's "VideoMAE at 32x224 vs 8x224"). None with fewer than two x values
    or a non-positive value.
    """
    usable = sorted((x, y) for x, y in points if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y))
    if len(usable) < 2 or usable[0][0] == usable[-1][0]:
        return None
    (x0, y0), (x1, y1) = usable[0], usable[-1]
    return math.log(y1 / y0) / math.log(x1 / x0)


def _label(row: dict[str, Any]) -> str:
    kwargs = json.loads(row.get("arch_kwargs") or "{}")
    return str(row["arch"]) + ("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else "")


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def growth_frame(rows: Sequence[dict[str, Any]], include_contended: bool = False) -> pd.DataFrame:
    """One row per configuration and setting whose runs vary the frames or the size: the growth exponents of
    its MACs per clip (exact) and its latency (measured), along T, H = W and T x H x W.

    MACs are the forward's for inference rows and forward + backward for training rows (``train_gmacs``).
    Latency enters only from ``ok`` rows, and not from ``contended`` ones unless ``include_contended``.
    A clip whose MACs several rows hold (a static run given beside a timed one) is one point of the MACs fits.
    Rows of non-square frames are left out (H = W is one axis). Sorted by setting, then by the MACs
    exponent in the voxels, so architectures that grow alike stand together.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("width") != row.get("height"):
            continue
        frames, height = _number(row.get("frames")), _number(row.get("height"))
        if frames is None or height is None:
            continue
        macs = _number(row.get("gmacs") if row.get("mode") != "train" else row.get("train_gmacs"))
        timed = row.get("status") == "ok" and _number(row.get("latency_ms")) is not None
        latency = _number(row.get("latency_ms")) if timed and (include_contended or not is_contended(row)) else None
        key = (_label(row), str(row.get("family") or ""), row.get("mode"), row.get("dtype"), row.get("device"),
               row.get("batch"))  # fmt: skip
        groups.setdefault(key, []).append(
            {"frames": frames, "height": height, "voxels": frames * height * height, "macs": macs,
             "latency": latency, "timed": timed}
        )  # fmt: skip
    records = []
    for (label, family, mode, dtype, device, batch), group in groups.items():
        # MACs are exact: a clip counted twice (a static run beside a timed one) is one point of the fit.
        counted: dict[tuple[float, float], dict[str, Any]] = {}
        for r in group:
            if r["macs"] is not None:
                counted.setdefault((r["frames"], r["height"]), r)
        macs_fit = fit_growth(list(counted.values()), ("frames", "height"), "macs")
        if macs_fit is None:
            continue
        macs_voxels = fit_growth(list(counted.values()), ("voxels",), "macs")
        latency_fit = fit_growth(group, ("frames", "height"), "latency")
        latency_voxels = fit_growth(group, ("voxels",), "latency")
        largest = max(height for _, height in counted)
        at_largest = end_to_end_exponent([(r["frames"], r["macs"]) for r in counted.values() if r["height"] == largest])
        g_voxels = macs_voxels.exponents.get("voxels") if macs_voxels else None
        records.append({
            "arch": label, "family": family, "mode": mode, "dtype": dtype, "device": device, "batch": batch,
            "frames": ",".join(str(int(v)) for v in sorted({r["frames"] for r in group})),
            "sizes": ",".join(str(int(v)) for v in sorted({r["height"] for r in group})),
            "macs_frames": macs_fit.exponents.get("frames"), "macs_size": macs_fit.exponents.get("height"),
            "macs_voxels": g_voxels, "macs_frames_at_largest": at_largest, "macs_n": macs_fit.n,
            "latency_frames": latency_fit.exponents.get("frames") if latency_fit else None,
            "latency_size": latency_fit.exponents.get("height") if latency_fit else None,
            "latency_voxels": latency_voxels.exponents.get("voxels") if latency_voxels else None,
            "latency_n": latency_fit.n if latency_fit else sum(r["latency"] is not None for r in group),
            "latency_timed": sum(bool(r["timed"]) for r in group), "growth": growth_verdict(g_voxels),
        })  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=GROWTH_COLUMNS)
    if not len(frame):
        return frame
    order = frame.assign(_setting=frame[["mode", "dtype", "device"]].astype(str).agg(" ".join, axis=1))
    order = order.sort_values(["_setting", "batch", "macs_voxels", "arch"], na_position="last", kind="stable")
    return order.drop(columns="_setting").reset_index(drop=True)
