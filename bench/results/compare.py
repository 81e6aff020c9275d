"""Regression verdicts between two saved runs (``vbench compare BASE HEAD``).

The policy (``docs/compare.md``):

- Rows are matched on :data:`bench.results.columns.KEY_COLUMNS`; the column registry
  (:mod:`bench.results.columns`) says how each column is gated.
- Parameters, MACs, FLOPs and the output shape must be equal: any change
  fails, improvements included (a baseline is refreshed on purpose, never
  drifts).
- Latency fails when the ratio of medians exceeds the tolerance **and** a
  one-sided Mann-Whitney U test says, at level ``alpha``, that the head is
  slower than the base *by more than the tolerance* (the head's values are
  divided by 1 + tolerance before the test). Testing against the tolerance, not
  against zero, means a change the size of the tolerance fails at most an
  ``alpha`` share of the time, so noisy machines do not fail pull requests at
  random. Over the tolerance but not significant is shown, not failed. "Better"
  is the mirror image.
- The test's unit is the worker process where it can be: when both rows were
  timed in rounds (``--rounds``, or ``merge --rounds``; each round a worker of
  its own) with enough quiet rounds for a rank test to reach ``alpha``
  (:func:`rounds_needed`), the values tested are the quiet rounds' medians.
  Samples of one process are not independent of each other: a process keeps
  its memory layout and its place on the machine for all its samples, and two
  processes of the same code differ by more than their samples' spread
  (``reports/benchmarks/gate_power.md``), so a test on pooled samples calls
  that difference significant. Where both had enough rounds but contended ones
  left too few quiet, the latency is inconclusive, as for a contended row.
  Otherwise the raw samples are tested, and the verdict's note says so.
- Peak memory is one number per row (CUDA's allocator peak is deterministic),
  so it gates on the ratio alone. On the CPU the number is the worker's peak
  resident set, which separate processes of the same code do not reproduce
  within the tolerance: a change within :data:`RSS_NOISE`, either way, is shown (``~``), neither failed nor
  called better.
- A status that gets worse (ok -> anything else) fails. New and removed rows
  are listed, not failed.
- A row timed while the machine was shared (``contended`` in the base or the
  head, :mod:`bench.measure.contention`) has no latency verdict: it is *inconclusive*
  (``?``), never a pass and never a regression, whatever its ratio. With no
  regression, any inconclusive row makes the command exit
  :data:`EXIT_INCONCLUSIVE` instead of 0.

Everything here returns records; :func:`bench.report.verdict.compare_markdown` formats them.
"""

from __future__ import annotations

import fnmatch
import json
import math
import shlex
import statistics
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.errors import ExitCode, UsageError
from bench.results import columns
from bench.results.config import tool_table
from bench.results.io import show_path
from bench.results.schema import clip_of, is_contended, is_missing, row_key
from bench.results.stats import mann_whitney_u
from bench.results.validate import show

__all__ = [
    "EXACT_METRICS",
    "EXIT_INCONCLUSIVE",
    "NOT_REFRESHED",
    "RSS_NOISE",
    "RSS_NOTE",
    "Change",
    "CompareConfig",
    "Comparison",
    "Tolerances",
    "compare_rows",
    "load_compare_config",
    "parse_fraction",
    "refresh_command",
    "rounds_needed",
    "row_label",
]

EXACT_METRICS = columns.EXACT_METRICS
"""Columns that must not change at all (those the column registry gates ``exact``)."""

EXIT_INCONCLUSIVE = ExitCode.INCONCLUSIVE
"""``vbench compare``'s exit code when nothing regressed but some row's latency could not be judged because
it was timed on a shared machine (``contended``): not a pass (0), not a regression (1)."""


RSS_NOISE = 0.25
"""How far a CPU row's peak memory may move (up or down) before it is a change, whatever the memory tolerance
(any device but CUDA: its figure is the peak RSS). A CPU worker's peak
memory is its resident set, which separate processes of the same code do not reproduce: mc3_18 at 8x32x32 read
301.5, 301.6, 301.6 and 327.1 MiB in four runs (8.5 %, beyond the 5 % tolerance), and the committed CPU runs
differ by 9 and 17 % at 16x112x112 (``docs/compare.md``). CUDA's allocator peak is deterministic: it gates on
the tolerance alone."""
RSS_NOTE = "peak RSS: within its noise between processes"


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

    @property
    def inconclusive(self) -> bool:
        return self.mark == "?"


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
    def inconclusive(self) -> list[Change]:
        """Rows whose latency has no verdict: timed while the machine was shared."""
        return [c for c in self.changes if c.inconclusive]

    @property
    def exit_code(self) -> int:
        """0: no regression and every row judged; 1: a regression; :data:`EXIT_INCONCLUSIVE`: no regression,
        but some row was contended."""
        if self.regressions:
            return ExitCode.FAILED
        return ExitCode.INCONCLUSIVE if self.inconclusive else ExitCode.OK

    @property
    def counts_changed(self) -> bool:
        return any(c.mark == "x" for c in self.changes)


def parse_fraction(value: Any, what: str) -> float:
    """``"10%"`` or ``0.1`` -> 0.1. A bare number of 1 or more is refused as ambiguous."""
    hint = f"{what} takes a percentage such as 10% or a fraction such as 0.1; got {show(value)}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(hint)
    percent = isinstance(value, str) and value.strip().endswith("%")
    try:
        if isinstance(value, str):
            text = value.strip()
            frac = float(text[:-1]) / 100 if percent else float(text)
        else:
            frac = float(value)
            text = show(value)
    except (ValueError, OverflowError):
        raise UsageError(hint) from None
    if not math.isfinite(frac):
        raise UsageError(f"{what} must be between 0% and 1000%; got {show(value)}")
    if not percent and frac >= 1:
        raise UsageError(f"{what} {text} is ambiguous; write {text}% or {frac / 100:g}")
    if not 0 <= frac < 10:
        raise UsageError(f"{what} must be between 0% and 1000%; got {show(value)}")
    return frac


def _alpha(value: Any, what: str = "alpha") -> float:
    hint = f"{what} must be a number in (0, 1); got {show(value)}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(hint)
    try:
        alpha = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        raise UsageError(hint) from None
    if not 0 < alpha < 1:  # NaN fails too
        raise UsageError(hint)
    return alpha


_TOLERANCE_KEYS = ("latency-tol", "memory-tol", "alpha")


def _tolerances(table: Mapping[str, Any], base: Tolerances, where: str, nested: bool = False) -> Tolerances:
    """``base`` with the keys of ``table`` (``nested``: the table may hold ``arch``, checked by the caller)."""
    unknown = sorted(str(k) for k in table if k not in _TOLERANCE_KEYS and not (nested and k == "arch"))
    if unknown:
        raise UsageError(f"{where}: unknown key {show(unknown[0])}; known keys: {', '.join(_TOLERANCE_KEYS)}")
    tol = base
    if "latency-tol" in table:
        tol = replace(tol, latency=parse_fraction(table["latency-tol"], f"{where} latency-tol"))
    if "memory-tol" in table:
        tol = replace(tol, memory=parse_fraction(table["memory-tol"], f"{where} memory-tol"))
    if "alpha" in table:
        tol = replace(tol, alpha=_alpha(table["alpha"], f"{where} alpha"))
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

    Raises:
        UsageError: an unreadable file, a table of the wrong shape, an unknown
            key or a value of the wrong type (naming the file, table and key).
    """
    table = tool_table(path, "compare")
    where = f"{show_path(path or '')} [tool.vbench.compare]"
    default = _tolerances(table, Tolerances(), where, nested=True)
    cli = {
        k: v for k, v in (("latency-tol", latency_tol), ("memory-tol", memory_tol), ("alpha", alpha)) if v is not None
    }
    default = _tolerances(cli, default, "command line")
    patterns = table.get("arch", {})
    if not isinstance(patterns, dict):
        raise UsageError(
            f"{where}: 'arch' must be a table of patterns such as [tool.vbench.compare.arch.\"r3d*\"]; "
            f"got {show(patterns)}"
        )
    per_arch = []
    for pattern, sub in patterns.items():
        at = f"{show_path(path or '')} [tool.vbench.compare.arch.{_toml_key(pattern)}]"
        if not isinstance(sub, dict):
            raise UsageError(f"{at} must be a table of tolerances; got {show(sub)}")
        per_arch.append((pattern, _tolerances(sub, default, at)))
    return CompareConfig(default=default, per_arch=tuple(per_arch))


def _toml_key(key: str) -> str:
    """A key as TOML quotes it (escaped, one line)."""
    return json.dumps(key)


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


def _index(rows: Sequence[Mapping[str, Any]], which: str) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    out: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        key = row_key(row)
        if key in out:
            raise UsageError(f"{which} holds two rows for {row.get('arch')} {row_label(row)}")
        out[key] = row
    return out


def _number(v: Any) -> float | None:
    """A finite number, else None: NaN, inf and non-numbers never decide a verdict."""
    if is_missing(v) or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        x = float(v)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _samples(row: Mapping[str, Any]) -> list[float]:
    """The raw samples of a row; none at all when any is not a finite non-negative number."""
    raw = row.get("samples_ms")
    if not isinstance(raw, list):
        return []
    values = [_number(t) for t in raw]
    return [v for v in values if v is not None] if all(v is not None and v >= 0 for v in values) else []


def _rounds(row: Mapping[str, Any]) -> tuple[list[float], int]:
    """The medians of a row's rounds that were not ``contended`` (``round_latency_ms``, ``round_contended``), and
    how many rounds it had; ``([], 0)`` for a row without them, or with lists that do not pair a positive finite
    median with a bool flag."""
    medians, flags = row.get("round_latency_ms"), row.get("round_contended")
    if not isinstance(medians, list) or not isinstance(flags, list) or len(medians) != len(flags):
        return [], 0
    if not all(isinstance(f, bool) for f in flags):
        return [], 0
    values = [_number(m) for m in medians]
    if any(v is None or v <= 0 for v in values):
        return [], 0
    return [v for v, bad in zip(values, flags) if v is not None and not bad], len(values)


def _reaches(m: int, n: int, alpha: float) -> bool:
    """Whether a one-sided rank test of ``m`` against ``n`` values can reach ``alpha`` (at best ``1 / C(m + n, m)``)."""
    return m >= 2 and n >= 2 and 1 / math.comb(m + n, m) < alpha


def rounds_needed(alpha: float) -> int:
    """The fewest rounds a side (equal on both sides) whose medians a one-sided rank test can call different at
    ``alpha``: with ``m`` and ``n`` values and no ties, the smallest p-value is ``1 / C(m + n, m)``."""
    n = 2
    while not _reaches(n, n, alpha):
        n += 1
    return n


def _tested(
    base: Mapping[str, Any], head: Mapping[str, Any], alpha: float, samples: tuple[list[float], list[float]]
) -> tuple[list[float], list[float], str, bool]:
    """The base's and the head's values for the latency test, the note that names their unit, and whether the
    rows cannot be judged.

    Quiet round medians where both sides have enough of them to reach ``alpha``. Where both had enough rounds but
    contended ones left too few quiet: no values, and the rows cannot be judged (testing the pooled samples of
    the few quiet workers is what rounds are for avoiding). Else the raw samples, with a note when rounds were
    there but too few (``samples``: the rows' raw samples, which the caller has read already).
    """
    (b, nb), (h, nh) = _rounds(base), _rounds(head)
    if _reaches(len(b), len(h), alpha):
        return b, h, f"{len(b)} and {len(h)} rounds", False
    if _reaches(nb, nh, alpha):
        return [], [], f"too few quiet rounds: {len(b)} of {nb} and {len(h)} of {nh}", True
    note = ""
    if nb > 1 and nh > 1:
        note = f"samples: {len(b)} and {len(h)} quiet rounds are too few at alpha {alpha:g}"
    elif nb > 1 or nh > 1:
        note = f"samples: only the {'base' if nb > 1 else 'head'} has rounds"
    return *samples, note, False


def _exact_changes(base: Mapping[str, Any], head: Mapping[str, Any], label: str) -> list[Change]:
    changes = []
    for metric in EXACT_METRICS:
        b, h = base.get(metric), head.get(metric)
        if metric == "trainable_params" and b == base.get("params") and h == head.get("params"):
            continue  # every parameter trainable on both sides: the params line says it all
        if not is_missing(b) and not is_missing(h) and b != h:
            ratio = h / b if isinstance(b, (int, float)) and isinstance(h, (int, float)) and b else None
            changes.append(Change(base["arch"], label, metric, b, h, "x", "changed", ratio=ratio))
    return changes


def _status_change(base: Mapping[str, Any], head: Mapping[str, Any], label: str) -> Change | None:
    b, h = base.get("status"), head.get("status")
    if b == h:
        return None
    note = str(head.get("error") or "")[:120]
    if b == "ok":
        return Change(base["arch"], label, "status", b, h, "!", "new failure", note=note)
    if h == "ok":
        return Change(base["arch"], label, "status", b, h, "-", "fixed")
    return Change(base["arch"], label, "status", b, h, "~", "failure changed", note=note)


def _latency_change(base: Mapping[str, Any], head: Mapping[str, Any], label: str, tol: Tolerances) -> Change | None:
    b_samples, h_samples = _samples(base), _samples(head)
    # The row's own latency, as its table shows it (with --rounds, the median of the quiet rounds' medians, which
    # is not the median of the pooled samples); the samples' median only where a row has none.
    b_med = _number(base.get("latency_ms")) or (statistics.median(b_samples) if b_samples else None)
    h_med = _number(head.get("latency_ms")) or (statistics.median(h_samples) if h_samples else None)
    if b_med is None or h_med is None or b_med <= 0:
        return None
    ratio = h_med / b_med
    sides = [side for side, row in (("base", base), ("head", head)) if is_contended(row)]
    b_values, h_values, unit, short = _tested(base, head, tol.alpha, (b_samples, h_samples))
    if sides or short:  # whatever the ratio: a shared machine can hide a regression as well as fake one
        note = f"{' and '.join(sides)} contended" if sides else unit
        return Change(base["arch"], label, "latency_ms", b_med, h_med, "?", "inconclusive", ratio, None, note)
    if 1 - tol.latency <= ratio <= 1 + tol.latency:
        return None
    slower = ratio > 1
    note = "; ".join(n for n in ("noisy" if base.get("noisy") or head.get("noisy") else "", unit) if n)
    if not (b_values and h_values):
        return Change(base["arch"], label, "latency_ms", b_med, h_med, "~", "no raw samples", ratio, None, note)
    # Is the head slower (faster) than the base by more than the tolerance?
    factor = 1 + tol.latency if slower else 1 - tol.latency
    test = mann_whitney_u([t / factor for t in h_values], b_values, "greater" if slower else "less")
    if test.p >= tol.alpha:
        return Change(base["arch"], label, "latency_ms", b_med, h_med, "~", "not significant", ratio, test.p, note)
    mark, verdict = ("+", "slower") if slower else ("-", "faster")
    return Change(base["arch"], label, "latency_ms", b_med, h_med, mark, verdict, ratio, test.p, note)


def _memory_change(base: Mapping[str, Any], head: Mapping[str, Any], label: str, tol: Tolerances) -> Change | None:
    b, h = _number(base.get("peak_mem_mib")), _number(head.get("peak_mem_mib"))
    if b is None or h is None or b <= 0:
        return None
    ratio = h / b
    rss = not str(base.get("device", "")).startswith("cuda")  # off CUDA, the figure is the worker's peak RSS
    if rss and 1 - tol.memory > ratio >= 1 - RSS_NOISE:
        return Change(base["arch"], label, "peak_mem_mib", b, h, "~", "less memory", ratio, None, RSS_NOTE)
    if ratio > 1 + tol.memory:
        if rss and ratio <= 1 + RSS_NOISE:
            return Change(base["arch"], label, "peak_mem_mib", b, h, "~", "more memory", ratio, None, RSS_NOTE)
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
    for side, env in (("base", base_env), ("head", head_env)):
        if timed and env.get("timed_concurrently"):
            warnings.append(f"the {side} was timed while other timed work ran on the same machine (see its merge)")
    return warnings


def compare_rows(
    base_rows: Sequence[Mapping[str, Any]],
    head_rows: Sequence[Mapping[str, Any]],
    config: CompareConfig | None = None,
    base_env: Mapping[str, Any] | None = None,
    head_env: Mapping[str, Any] | None = None,
) -> Comparison:
    """Match rows on their configuration and judge every metric.

    The rows are results rows (:class:`~bench.results.records.Row`), of a run or read
    back from a file (:func:`bench.results.store.load_results`); only the columns
    that match and are judged are read.

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


NOT_REFRESHED: dict[str, str] = {
    "--out": "the refresh names the baseline's own folder",
    "--overwrite": "the refresh adds it: it replaces the baseline where it lies",
    "--only-missing": "a refresh measures every configuration again",
    "--allow-mixed": "it only applies with --only-missing",
    "--shard": "a baseline is refreshed whole, not one shard of it",
    "--executor": "where the baseline ran, not what it measured",
    "--shards": "where the baseline ran, not what it measured",
    "--partition": "where the baseline ran, not what it measured",
    "--time-min": "where the baseline ran, not what it measured",
    "--gpus-per-task": "where the baseline ran, not what it measured",
    "--cpus-per-task": "where the baseline ran, not what it measured",
}
"""The options of ``vbench profile`` that a refreshed baseline does not repeat, each with why. Every other
option the command declares is repeated (``bench.commands.profile.profile_options`` reads them from the command itself)."""
_PLACEHOLDER = "<the options of the baseline run>"


def _printable(text: Any) -> bool:
    """A string that can be shown inside a Markdown code block and pasted into a shell as one argument."""
    return (
        isinstance(text, str)
        and "`" not in text
        and not any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in text)
    )


def _from_options(options: Mapping[str, Any], declared: Mapping[str, bool]) -> list[str] | None:
    """``vbench profile`` arguments from recorded options; None when any value cannot be shown safely."""
    args: list[str] = []
    for name, is_flag in declared.items():
        value = options.get(name)
        if name in NOT_REFRESHED or value is None or value is False:
            continue
        if is_flag:
            if value is not True:
                return None
            args.append(name)
            continue
        if not isinstance(value, list) or not all(_printable(v) for v in value):
            return None
        for v in value:
            args += [f"{name}={v}"] if v.startswith("-") else [name, v]
    return args


def _from_command(command: Any, declared: Mapping[str, bool]) -> list[str] | None:
    """The arguments of a recorded ``vbench profile`` command line, less those in :data:`NOT_REFRESHED`."""
    if not isinstance(command, list) or not all(_printable(a) for a in command):
        return None
    if command[:2] != ["vbench", "profile"]:
        return None
    args: list[str] = []
    skip = False
    for arg in command[2:]:
        if skip:
            skip = False
            continue
        name, given, _ = arg.partition("=")
        if name in NOT_REFRESHED:
            skip = not given and not declared.get(name, False)  # its value is the next argument
            continue
        args.append(arg)
    return args


def refresh_command(base_env: Mapping[str, Any], base_path: str | Path, declared: Mapping[str, bool]) -> str:
    """The command that re-creates the base where it lies, from the options it recorded.

    ``declared``: every option of ``vbench profile`` (its long name) and whether it is a flag, as the command
    declares them (``bench.commands.profile.profile_options()``); all are repeated but those in :data:`NOT_REFRESHED`.

    The base folder holds a run, so the command replaces it (``--overwrite``).
    The options come from a file, and the command is printed for people to
    paste into a shell: only options of ``vbench profile`` are taken, every
    value is shell-quoted, and a value with a control character (a newline) or
    a backtick (it would end the Markdown code block) gives the placeholder
    instead. ``environment["options"]`` (option -> ``true`` or a list of
    values) is preferred; else the recorded ``command`` line.
    """
    out_dir = Path(base_path)
    if out_dir.is_file():  # results.json inside the run folder
        out_dir = out_dir.parent
    folder = shlex.quote(str(out_dir)) if _printable(str(out_dir)) else "<the baseline folder>"
    options = base_env.get("options")
    if isinstance(options, Mapping):
        args = _from_options(options, declared)
    else:
        args = _from_command(base_env.get("command"), declared)
    if not args:
        return f"vbench profile {_PLACEHOLDER} --overwrite --out {folder}"
    return f"{shlex.join(['vbench', 'profile', *args])} --overwrite --out {folder}"
