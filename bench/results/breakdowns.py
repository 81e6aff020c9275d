"""The breakdown file, ``vbench inspect --time --json``: where one iteration's time goes, written and read here.

:func:`bench.measure.breakdown.time_breakdown` measures a :class:`Breakdown`; :func:`breakdowns_json` writes one
(or several, by name) as the file's JSON and :func:`load_breakdowns` reads such a file back, every field the report
uses checked (``vbench report --breakdown``). Plain values only: no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.io import RESULTS_CAP, read_text, show_path
from bench.results.records import KINDS
from bench.results.validate import is_name, is_number, is_positive_int, parse_json, show

__all__ = [
    "PROFILER_TOLERANCE",
    "SUM_TOLERANCE",
    "Breakdown",
    "KindTime",
    "ModuleTime",
    "breakdowns_json",
    "load_breakdowns",
]

SUM_TOLERANCE = 0.10
"""How far from 1 the sum check's ratio may be (``docs/design.md``: the depth-1 lines within 10 % of the
uninstrumented latency)."""
PROFILER_TOLERANCE = 0.05
"""How far from 1 the profiler check's ratio may be (the attributed total within 5 % of ``key_averages()``'s)."""

# ---------------------------------------------------------------- the records


@dataclass(frozen=True)
class ModuleTime:
    """One module's share of an iteration (its children's included), per iteration of the batch."""

    module: str
    depth: int
    type: str
    kind: str
    """The kind of its own operators (:data:`KINDS`); a composite module's children have their own."""
    params: int
    gmacs: float
    """Forward MACs per clip / 1e9 (train: forward + backward), as every ``gmacs`` column is; ``gmacs_per_s``
    is of the whole batch."""
    forward_ms: float
    backward_ms: float | None
    latency_ms: float
    """``forward_ms`` + ``backward_ms``."""
    pct_time: float
    pct_macs: float
    gmacs_per_s: float | None
    intensity: float | None
    """Forward FLOPs per byte its leaf modules read and write."""
    bound: str | None


@dataclass(frozen=True)
class KindTime:
    """Time and MACs of one kind of work, summed over the model."""

    kind: str
    latency_ms: float
    pct_time: float
    gmacs: float
    pct_macs: float
    gmacs_per_s: float | None


@dataclass(frozen=True)
class Breakdown:
    """Where one iteration's time goes, with its checks."""

    arch: str
    input_shape: tuple[int, ...]
    device: str
    dtype: str
    mode: str
    latency_ms: float
    """Median of the uninstrumented iterations: the whole the lines add up to."""
    latency_iqr_ms: float
    profiled_ms: float
    """Wall time of an instrumented iteration (median over the profiled ones)."""
    iterations: int
    attributed_ms: float
    """Every operator's self time, per iteration: the sum of the depth-1 lines."""
    profiler_ms: float
    """The same total as ``torch.profiler``'s ``key_averages()`` gives it."""
    annotation_ms: float
    """Self time of the module ranges: Python between operators and the hooks' cost."""
    modules: list[ModuleTime]
    kinds: list[KindTime]
    stages: list[ModuleTime]
    roofline: dict[str, Any] | None = None

    @property
    def overhead(self) -> float:
        """How much the instrumentation slows an iteration (profiled / uninstrumented - 1)."""
        return self.profiled_ms / self.latency_ms - 1 if self.latency_ms else 0.0

    @property
    def sum_ratio(self) -> float:
        """Sum of the depth-1 lines / uninstrumented latency (within :data:`SUM_TOLERANCE` of 1)."""
        return self.attributed_ms / self.latency_ms if self.latency_ms else 0.0

    @property
    def sum_ok(self) -> bool:
        return abs(self.sum_ratio - 1) <= SUM_TOLERANCE

    @property
    def profiler_ratio(self) -> float:
        """Attributed total / ``key_averages()`` total (within :data:`PROFILER_TOLERANCE` of 1)."""
        return self.attributed_ms / self.profiler_ms if self.profiler_ms else 0.0

    @property
    def profiler_ok(self) -> bool:
        return abs(self.profiler_ratio - 1) <= PROFILER_TOLERANCE

    def to_dict(self, max_depth: int | None = None) -> dict[str, Any]:
        """Plain data, with the module lines at most ``max_depth`` deep (all of them by default)."""
        d = asdict(self)
        if max_depth is not None:
            d["modules"] = [m for m in d["modules"] if m["depth"] <= max_depth]
        d.update(
            overhead=self.overhead,
            sum_ratio=self.sum_ratio,
            sum_ok=self.sum_ok,
            profiler_ratio=self.profiler_ratio,
            profiler_ok=self.profiler_ok,
        )
        return d


# ---------------------------------------------------------------- the file


def breakdowns_json(found: Mapping[str, Breakdown], depths: Mapping[str, int | None], single: bool) -> str:
    """The file's text: one breakdown's object when ``single`` (one architecture was asked for by name), else an
    object of them by architecture; each with its module lines at most ``depths[arch]`` deep."""
    out = {arch: b.to_dict(max_depth=depths[arch]) for arch, b in found.items()}
    return json.dumps(next(iter(out.values())) if single else out, indent=1)


_KIND_FIELDS = ("latency_ms", "pct_time", "gmacs", "pct_macs")
_MAX_SIDE = 1 << 20


def _breakdown(where: str, b: Any) -> dict[str, Any]:
    """One ``inspect --time --json`` breakdown, its fields checked as the report reads them."""
    if not isinstance(b, dict):
        raise UsageError(f"{where}: a breakdown must be a JSON object")
    for key in ("arch", "mode", "device", "dtype"):
        if not is_name(b.get(key)):
            raise UsageError(f"{where}: {key!r} must be a name on one line, not {show(b.get(key))}")
    shape = b.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 5 and all(is_positive_int(v) for v in shape)):
        raise UsageError(f"{where}: 'input_shape' must be 5 positive integers (B, C, T, H, W)")
    if any(v > _MAX_SIDE for v in shape):
        raise UsageError(f"{where}: 'input_shape' {show(shape)} is not a clip anyone measured")
    kinds = b.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise UsageError(f"{where}: 'kinds' must be a non-empty list")
    seen: set[str] = set()
    for i, k in enumerate(kinds, 1):
        if not isinstance(k, dict) or k.get("kind") not in KINDS:
            raise UsageError(f"{where}, kind {i}: 'kind' must be one of {', '.join(KINDS)}")
        if k["kind"] in seen:
            raise UsageError(f"{where}, kind {i}: {k['kind']!r} is listed twice")
        seen.add(k["kind"])
        bad = [f for f in _KIND_FIELDS if not (is_number(k.get(f)) and math.isfinite(k[f]) and k[f] >= 0)]
        if bad:
            raise UsageError(f"{where}, kind {i}: {bad[0]!r} must be a finite number >= 0, not {show(k.get(bad[0]))}")
        over = [f for f in ("pct_time", "pct_macs") if k[f] > 1 + 1e-9]
        if over:
            raise UsageError(f"{where}, kind {i}: {over[0]!r} is a share from 0 to 1, not {show(k[over[0]])}")
    for f in ("pct_time", "pct_macs"):
        total = sum(k[f] for k in kinds)
        if total > 1 + 1e-6:
            raise UsageError(f"{where}: the kinds' {f!r} add up to {total:.4g}, more than the whole")
    return b


def load_breakdowns(path: str | Path) -> list[dict[str, Any]]:
    """The breakdowns in an ``inspect --time --json`` file: one object, or an object of them by name.

    Raises:
        UsageError: a missing, unreadable or malformed file (its first problem, in one line).
    """
    name = show_path(path)
    doc = parse_json(read_text(Path(path), "breakdown file", RESULTS_CAP), f"breakdown file {name} is not valid JSON")
    if isinstance(doc, dict) and "kinds" not in doc and doc and all(isinstance(v, dict) for v in doc.values()):
        return [_breakdown(f"breakdown file {name}, {show(k)}", v) for k, v in doc.items()]
    return [_breakdown(f"breakdown file {name}", doc)]
