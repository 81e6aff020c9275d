"""Regression verdicts between two saved runs (``vbench compare BASE HEAD``).

The policy (DESIGN.md, "Regression checks"):

- Rows are matched on :data:`bench.schema.KEY_COLUMNS`.
- Parameters, MACs, FLOPs and the output shape must be equal: any change
  fails, improvements included (a baseline is refreshed on purpose, never
  drifts).
- Latency fails when the ratio of medians exceeds the tolerance **and** a
  one-sided Mann-Whitney U test on the raw samples says, at level ``alpha``,
  that the head is slower than the base *by more than the tolerance* (the head's
  samples are divided by 1 + tolerance before the test). Testing against the
  tolerance, not against zero, means a change the size of the tolerance fails
  at most an ``alpha`` share of the time, so noisy machines do not fail pull
  requests at random. Over the tolerance but not significant is shown, not
  failed. "Better" is the mirror image.
- Peak memory is one number per row (CUDA's allocator peak is deterministic),
  so it gates on the ratio alone.
- A status that gets worse (ok -> anything else) fails. New and removed rows
  are listed, not failed.

Everything here returns records; :func:`bench.report.compare_markdown` formats them.
"""

from __future__ import annotations

import fnmatch
import math
import shlex
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.config import tool_table
from bench.errors import UsageError
from bench.schema import clip_of, is_missing, row_key
from bench.stats import mann_whitney_u

__all__ = [
    "EXACT_METRICS",
    "Change",
    "CompareConfig",
    "Comparison",
    "Tolerances",
    "compare_rows",
    "load_compare_config",
    "parse_fraction",
    "refresh_command",
    "row_label",
]

EXACT_METRICS = ("params", "trainable_params", "gmacs", "gflops", "train_gmacs", "output_shape")
"""Columns that must not change at all."""


@dataclass(frozen=True)
class Tolerances:
    latency: float = 0.10
    """Largest accepted relative increase of the median latency."""
    memory: float = 0.05
    """Largest accepted relative increase of the peak memory."""
    alpha: float = 0.05
    """Significance level of the latency test."""


@dataclass(frozen=True)
class CompareConfig:
    default: Tolerances = field(default_factory=Tolerances)
    per_arch: tuple[tuple[str, Tolerances], ...] = ()
    """(shell pattern, tolerances); the last pattern that matches an architecture wins."""

    def for_arch(self, arch: str) -> Tolerances:
        found = self.default
        for pattern, tol in self.per_arch:
            if fnmatch.fnmatchcase(arch, pattern):
                found = tol
        return found


@dataclass(frozen=True)
class Change:
    """One metric of one matched row that differs between base and head."""

    arch: str
    config: str
    metric: str
    base: Any
    head: Any
    mark: str
    verdict: str
    ratio: float | None = None
    p: float | None = None
    note: str = ""

    @property
    def fails(self) -> bool:
        return self.mark in ("x", "!", "+")


@dataclass
class Comparison:
    changes: list[Change]
    matched: int
    unchanged: int
    new: list[str]
    removed: list[str]
    warnings: list[str]
    tolerances: CompareConfig

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.fails]

    @property
    def counts_changed(self) -> bool:
        return any(c.mark == "x" for c in self.changes)


def parse_fraction(value: str | float, what: str) -> float:
    """``"10%"`` or ``0.1`` -> 0.1. A bare number of 1 or more is refused as ambiguous."""
    text = str(value).strip()
    try:
        frac = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{what} takes a percentage such as 10% or a fraction such as 0.1; got '{value}'") from None
    if not text.endswith("%") and frac >= 1:
        raise UsageError(f"{what} {text} is ambiguous; write {text}% or {frac / 100:g}")
    if not 0 <= frac < 10 or math.isnan(frac):
        raise UsageError(f"{what} must be between 0% and 1000%; got '{value}'")
    return frac


def _alpha(value: str | float) -> float:
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"alpha must be a number in (0, 1); got '{value}'") from None
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1); got {alpha}")
    return alpha


def _tolerances(table: Mapping[str, Any], base: Tolerances, where: str) -> Tolerances:
    known = {"latency-tol", "memory-tol", "alpha"}
    unknown = sorted(set(table) - known - {"arch"})
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(known))}")
    tol = base
    if "latency-tol" in table:
        tol = replace(tol, latency=parse_fraction(table["latency-tol"], f"{where} latency-tol"))
    if "memory-tol" in table:
        tol = replace(tol, memory=parse_fraction(table["memory-tol"], f"{where} memory-tol"))
    if "alpha" in table:
        tol = replace(tol, alpha=_alpha(table["alpha"]))
    return tol


def load_compare_config(
    path: Path | None,
    latency_tol: str | None = None,
    memory_tol: str | None = None,
    alpha: str | float | None = None,
) -> CompareConfig:
    """Tolerances from ``[tool.vbench.compare]`` of a TOML file, then the command line's.

    The file may hold per-architecture tolerances under
    ``[tool.vbench.compare.arch."PATTERN"]``; they override the defaults for the
    keys they name. Command-line values replace the file's defaults (not its
    per-architecture entries, which are more specific).
    """
    table = tool_table(path, "compare")
    where = f"{path} [tool.vbench.compare]"
    default = _tolerances(table, Tolerances(), where)
    cli = {
        k: v for k, v in (("latency-tol", latency_tol), ("memory-tol", memory_tol), ("alpha", alpha)) if v is not None
    }
    default = _tolerances(cli, default, "command line")
    per_arch = tuple(
        (pattern, _tolerances(sub, default, f'{where} arch."{pattern}"'))
        for pattern, sub in table.get("arch", {}).items()
    )
    return CompareConfig(default=default, per_arch=per_arch)


def row_label(row: Mapping[str, Any]) -> str:
    """``"infer b8 16x112x112 fp32 cpu"`` plus the options that are set."""
    parts = [
        str(row.get("mode")),
        f"b{row.get('batch')}",
        clip_of(row),
        str(row.get("dtype")),
        str(row.get("device")),
    ]
    parts += [flag for flag in ("channels_last", "compiled", "cuda_graphs") if row.get(flag) in (True, "True")]
    kwargs = row.get("arch_kwargs")
    if kwargs and kwargs != "{}":
        parts.append(str(kwargs))
    return " ".join(parts)


def _index(rows: Sequence[dict[str, Any]], which: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = row_key(row)
        if key in out:
            raise UsageError(f"{which} holds two rows for {row.get('arch')} {row_label(row)}")
        out[key] = row
    return out


def _number(v: Any) -> float | None:
    return float(v) if not is_missing(v) and isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _exact_changes(base: dict[str, Any], head: dict[str, Any], label: str) -> list[Change]:
    changes = []
    for metric in EXACT_METRICS:
        b, h = base.get(metric), head.get(metric)
        if metric == "trainable_params" and b == base.get("params") and h == head.get("params"):
            continue  # every parameter trainable on both sides: the params line says it all
        if not is_missing(b) and not is_missing(h) and b != h:
            ratio = h / b if isinstance(b, (int, float)) and isinstance(h, (int, float)) and b else None
            changes.append(Change(base["arch"], label, metric, b, h, "x", "changed", ratio=ratio))
    return changes


def _status_change(base: dict[str, Any], head: dict[str, Any], label: str) -> Change | None:
    b, h = base.get("status"), head.get("status")
    if b == h:
        return None
    note = str(head.get("error") or "")[:120]
    if b == "ok":
        return Change(base["arch"], label, "status", b, h, "!", "new failure", note=note)
    if h == "ok":
        return Change(base["arch"], label, "status", b, h, "-", "fixed")
    return Change(base["arch"], label, "status", b, h, "~", "failure changed", note=note)


def _latency_change(base: dict[str, Any], head: dict[str, Any], label: str, tol: Tolerances) -> Change | None:
    b_samples, h_samples = base.get("samples_ms") or [], head.get("samples_ms") or []
    b_med = statistics.median(b_samples) if b_samples else _number(base.get("latency_ms"))
    h_med = statistics.median(h_samples) if h_samples else _number(head.get("latency_ms"))
    if b_med is None or h_med is None or b_med <= 0:
        return None
    ratio = h_med / b_med
    if 1 - tol.latency <= ratio <= 1 + tol.latency:
        return None
    slower = ratio > 1
    note = "noisy" if base.get("noisy") or head.get("noisy") else ""
    if not (b_samples and h_samples):
        return Change(base["arch"], label, "latency_ms", b_med, h_med, "~", "no raw samples", ratio, None, note)
    # Is the head slower (faster) than the base by more than the tolerance?
    factor = 1 + tol.latency if slower else 1 - tol.latency
    test = mann_whitney_u([t / factor for t in h_samples], b_samples, "greater" if slower else "less")
    if test.p >= tol.alpha:
        return Change(base["arch"], label, "latency_ms", b_med, h_med, "~", "not significant", ratio, test.p, note)
    mark, verdict = ("+", "slower") if slower else ("-", "faster")
    return Change(base["arch"], label, "latency_ms", b_med, h_med, mark, verdict, ratio, test.p, note)


def _memory_change(base: dict[str, Any], head: dict[str, Any], label: str, tol: Tolerances) -> Change | None:
    b, h = _number(base.get("peak_mem_mib")), _number(head.get("peak_mem_mib"))
    if b is None or h is None or b <= 0:
        return None
    ratio = h / b
    if ratio > 1 + tol.memory:
        return Change(base["arch"], label, "peak_mem_mib", b, h, "+", "more memory", ratio)
    if ratio < 1 - tol.memory:
        return Change(base["arch"], label, "peak_mem_mib", b, h, "-", "less memory", ratio)
    return None


def _environment_warnings(base_env: Mapping[str, Any], head_env: Mapping[str, Any], timed: bool) -> list[str]:
    warnings = []
    keys = (
        ("device_name", "devices"),
        ("cpu_name", "CPUs"),
        ("torch_threads", "thread counts"),
        ("torch_version", "torch versions"),
    )
    for key, what in keys:
        b, h = base_env.get(key), head_env.get(key)
        if b and h and b != h and (timed or key == "torch_version"):
            warnings.append(f"different {what}: base {b}, head {h}")
    return warnings


def compare_rows(
    base_rows: Sequence[dict[str, Any]],
    head_rows: Sequence[dict[str, Any]],
    config: CompareConfig | None = None,
    base_env: Mapping[str, Any] | None = None,
    head_env: Mapping[str, Any] | None = None,
) -> Comparison:
    """Match rows on their configuration and judge every metric.

    Raises:
        UsageError: duplicate rows in one run, or no configuration in common.
    """
    config = config or CompareConfig()
    base, head = _index(base_rows, "base"), _index(head_rows, "head")
    common = [k for k in base if k in head]
    if not common:
        raise UsageError("nothing to compare: base and head share no configuration (arch, input, device, dtype, mode)")
    changes: list[Change] = []
    unchanged = 0
    timed = False
    for key in common:
        b, h = base[key], head[key]
        label = row_label(b)
        tol = config.for_arch(str(b["arch"]))
        found = _exact_changes(b, h, label)
        status = _status_change(b, h, label)
        if status is not None:
            found.append(status)
        if b.get("status") == "ok" and h.get("status") == "ok":
            timed = timed or not is_missing(b.get("latency_ms"))
            found += [c for c in (_latency_change(b, h, label, tol), _memory_change(b, h, label, tol)) if c]
        changes += found
        unchanged += not found
    return Comparison(
        changes=changes,
        matched=len(common),
        unchanged=unchanged,
        new=[f"{head[k]['arch']} {row_label(head[k])}" for k in head if k not in base],
        removed=[f"{base[k]['arch']} {row_label(base[k])}" for k in base if k not in head],
        warnings=_environment_warnings(base_env or {}, head_env or {}, timed),
        tolerances=config,
    )


def refresh_command(base_env: Mapping[str, Any], base_path: str | Path) -> str:
    """The command that re-creates the base where it lies (from the command line it recorded)."""
    out_dir = Path(base_path)
    if out_dir.is_file():  # results.json inside the run folder
        out_dir = out_dir.parent
    argv = list(base_env.get("command") or [])
    if not argv:
        return f"vbench profile <the options of the baseline run> --out {shlex.quote(str(out_dir))}"
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        if arg.startswith("--out="):
            continue
        cleaned.append(arg)
    return shlex.join([*cleaned, "--out", str(out_dir)])
