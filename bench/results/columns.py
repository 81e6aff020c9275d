"""The column registry: every results column declared once.

Each :class:`Column` says what a column is called in tables (with its unit)
and how it is formatted there, whether it identifies a configuration (the row
key), how ``vbench compare`` gates it, whether every results file must hold it,
what type its values have, and what it means. Everything else is derived from
here: :data:`COLUMNS` (the CSV's columns, in order), :data:`REQUIRED_COLUMNS`,
:data:`KEY_COLUMNS`, :data:`EXACT_METRICS`, the run summary table
(:data:`SUMMARY_COLUMNS`), the metric names of the compare verdict
(:data:`LABELS`), the type checks of :mod:`bench.results.validate` and the table of
``docs/columns.md`` (:func:`readme_section`).

Counting columns are **per clip** (batch 1), as published tables give them;
latency is per iteration of the whole batch. Plain data: no torch.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Literal

from bench.results.records import DEVICE_KINDS, DTYPES, ROW_MODES, STATUSES

__all__ = [
    "COLUMNS",
    "EXACT_METRICS",
    "EXTRA_COLUMNS",
    "KEY_COLUMNS",
    "LABELS",
    "REGISTRY",
    "REQUIRED_COLUMNS",
    "SUMMARY_COLUMNS",
    "Column",
    "Gate",
    "Kind",
    "column",
    "readme_section",
]

Gate = Literal["exact", "ratio", "status", "none"]
"""How ``vbench compare`` judges a column: ``exact`` (any change fails), ``ratio`` (fails beyond a tolerance;
with ``significance``, only when the raw samples say so too), ``status`` (ok to not ok fails), ``none``."""

Kind = Literal["name", "name?", "text?", "positive", "count?", "amount?", "flag", "flag?", "status", "json"]
"""The type of a column's values (``?``: or null), as :mod:`bench.results.validate` checks it in a file:
a string on one line, any string, a positive integer, a non-negative integer, a finite non-negative number,
a boolean, a status, a JSON object as a string."""

_NUMERIC: tuple[Kind, ...] = ("positive", "count?", "amount?")


@dataclass(frozen=True)
class Column:
    """One results column."""

    name: str
    header: str
    """How tables show it, with its unit (``"latency (ms)"``); values are divided by ``divisor`` first."""
    kind: Kind
    meaning: str
    """One line for the columns table of ``docs/columns.md`` (Markdown)."""
    fmt: str = "{}"
    divisor: float | None = None
    label: str | None = None
    """Its name in the compare verdict, where that shows the value undivided (default: ``header``)."""
    key: bool = False
    """Part of the row key: rows of two runs are matched on the key columns."""
    required: bool = False
    """Every results file holds it (``docs/columns.md``)."""
    gate: Gate = "none"
    significance: bool = False
    """With ``gate="ratio"``: fail only when a test on the raw samples finds the change significant."""
    summary_rank: int | None = None
    """Shown in the run summary; the larger, the sooner it is left out on a narrow terminal (0: never)."""
    stored: bool = True
    """False for a column that tables derive from others (it is in no file)."""

    @property
    def numeric(self) -> bool:
        """Numbers: right-aligned in tables."""
        return self.kind in _NUMERIC

    @property
    def shown_as(self) -> str:
        """The name the compare verdict gives it."""
        return self.label if self.label is not None else self.header


def _codes(values: tuple[str, ...], last: str = "or") -> str:
    quoted = [f"`{v}`" for v in values]
    return f"{', '.join(quoted[:-1])} {last} {quoted[-1]}" if len(quoted) > 1 else quoted[0]


REGISTRY: tuple[Column, ...] = (
    # What was measured: the configuration (the key) and the model.
    Column("arch", "arch", "name", "registry name of the architecture", key=True, required=True, summary_rank=0),
    Column("arch_kwargs", "arch kwargs", "json", "builder keyword overrides (`--arch-kwargs`) as a JSON object",
           key=True),
    Column("family", "family", "name", "the architecture's family in the registry", required=True),
    Column("mode", "mode", "name", f"{_codes(ROW_MODES)} (forward + backward + optimizer step)", key=True,
           required=True, summary_rank=7),
    Column("batch", "batch", "positive", "clips per iteration", key=True, required=True, summary_rank=5),
    Column("frames", "frames", "positive", "frames per clip (T)", key=True, required=True),
    Column("height", "height", "positive", "clip height in pixels (H)", key=True, required=True),
    Column("width", "width", "positive", "clip width in pixels (W)", key=True, required=True),
    Column("input", "input (TxHxW)", "name", "the clip, spelt as published inputs are", summary_rank=4,
           stored=False),
    Column("device", "device", "name", f"where it ran: {_codes(DEVICE_KINDS)}", key=True, required=True),
    Column("device_name", "device name", "name?", "the GPU's name; on a CPU, the CPU's", required=True),
    Column("dtype", "dtype", "name", f"{_codes(DTYPES)} (the half types through autocast)", key=True,
           required=True, summary_rank=8),
    Column("channels_last", "channels last", "flag", "`--channels-last`: the channels_last_3d memory format",
           key=True, required=True),
    Column("compiled", "compiled", "flag", "`--compile`: the model went through `torch.compile`", key=True,
           required=True),
    Column("cuda_graphs", "CUDA graphs", "flag", "`--cuda-graphs`: inference replayed as a CUDA graph", key=True),
    # Counts: exact, per clip.
    Column("params", "params (M)", "count?", "exact parameter count", fmt="{:.2f}", divisor=1e6, label="params",
           required=True, gate="exact", summary_rank=6),
    Column("trainable_params", "trainable params (M)", "count?", "exact count of the trainable parameters",
           fmt="{:.2f}", divisor=1e6, label="trainable params", gate="exact"),
    Column("gmacs", "GMACs/clip", "amount?", "forward MACs per clip / 1e9 (conv, linear and matmul layers)",
           fmt="{:.2f}", required=True, gate="exact", summary_rank=3),
    Column("gflops", "GFLOPs/clip", "amount?", "2 x `gmacs`", fmt="{:.2f}", required=True, gate="exact"),
    Column("train_gmacs", "train GMACs/clip", "amount?", "forward + backward MACs per clip / 1e9", fmt="{:.2f}",
           gate="exact"),
    Column("activations_m", "activations (M)/clip", "amount?",
           "millions of elements written by the leaf modules in one forward, per clip", fmt="{:.2f}"),
    Column("output_shape", "output shape", "name?", "logits of the batch, e.g. `8x400`", gate="exact"),
    # Timing: per iteration of the whole batch; the raw samples are in results.json.
    Column("latency_ms", "latency (ms)", "amount?", "median time per iteration of the whole batch", fmt="{:.2f}",
           required=True, gate="ratio", significance=True, summary_rank=2),
    Column("latency_iqr_ms", "IQR (ms)", "amount?", "interquartile range of the samples", fmt="{:.2f}",
           required=True, summary_rank=11),
    Column("latency_min_ms", "min latency (ms)", "amount?", "the fastest sample", fmt="{:.2f}", required=True),
    Column("latency_ci_low_ms", "median CI low (ms)", "amount?",
           "low end of the 95 % confidence interval of the median (order statistics)", fmt="{:.2f}"),
    Column("latency_ci_high_ms", "median CI high (ms)", "amount?",
           "high end of the 95 % confidence interval of the median", fmt="{:.2f}"),
    Column("n_samples", "samples", "count?", "timed samples taken (0 for a row that was not timed)",
           required=True),
    Column("noisy", "noisy", "flag?", "IQR / median > 0.1"),
    Column("clips_per_s", "clips/s", "amount?", "batch / median latency", fmt="{:.1f}", required=True,
           summary_rank=10),
    Column("peak_mem_mib", "peak mem (MiB)", "amount?",
           "CUDA: `max_memory_allocated` after a reset (model, input, activations); CPU: the worker's peak RSS "
           "during sampling (Linux resets it through `/proc/self/clear_refs`)", fmt="{:.0f}", required=True,
           gate="ratio", summary_rank=9),
    Column("peak_mem_reserved_mib", "reserved mem (MiB)", "amount?", "CUDA: `max_memory_reserved` after a reset",
           fmt="{:.0f}"),
    # What became of it, and where and with what it was measured.
    Column("status", "status", "status",
           f"{_codes(STATUSES)}; `skipped`: estimated not to fit, `unsupported`: cannot be measured as asked",
           required=True, gate="status", summary_rank=1),
    Column("error", "error", "text?", "why a row is not ok, in one line", required=True),
    Column("torch_version", "torch", "name?", "torch's version", required=True),
    Column("vbench_version", "vbench", "name?", "vbench's version", required=True),
    Column("git_sha", "git SHA", "name?", "the commit of vbench's checkout", required=True),
    Column("threads", "threads", "count?", "torch's intra-op threads"),
    Column("cudnn_benchmark", "cudnn.benchmark", "flag?", "`torch.backends.cudnn.benchmark` during the run"),
    Column("timestamp", "timestamp (UTC)", "name?", "when the row was made (ISO 8601)", required=True),
    Column("warmup", "warm-up", "count?", "untimed iterations before sampling"),
    Column("job_id", "job", "name?", "the job of the sweep that made the row (architecture and a hash)"),
    # Against the device's measured roofline (`vbench roofline`).
    Column("achieved_tflops", "TFLOP/s", "amount?",
           "FLOPs of one iteration (forward; train: forward + backward) / median latency, in TFLOP/s",
           fmt="{:.3f}"),
    Column("mfu", "MFU", "amount?",
           "`achieved_tflops` / the device's measured peak for the dtype (`vbench roofline`)", fmt="{:.1%}"),
    Column("intensity", "FLOP/byte", "amount?",
           "arithmetic intensity of one iteration: forward FLOPs / bytes the leaf modules read and write "
           "(activations at the dtype's width, fp32 weights)", fmt="{:.1f}"),
    Column("bound", "bound", "name?",
           "`compute` or `memory`: `intensity` against the measured roofline's ridge point"),
    # Was the machine shared while the row was timed (`bench.measure.contention`)?
    Column("contended", "contended", "flag?",
           "another workload took a material part of the machine while the row was timed (CPU: `cpu_share` "
           "below 0.8; where no share is measured, the load beyond the run's threads at least one per core "
           "before and after; CUDA: "
           "another process on the GPU, or clocks throttled by heat or the board); `compare` calls such a row "
           "inconclusive and `report` leaves it out of fits and Pareto fronts"),
    Column("cpu_share", "CPU share", "amount?",
           "CPU rows: the worker's CPU time / (wall time x `threads`, or the cores it may use when fewer) over "
           "the timed samples (0-1; about 1 on a "
           "quiet machine, 0.5 with its cores shared by as many busy threads)", fmt="{:.2f}"),
    Column("load_before", "load before", "amount?", "1-minute load average before the row was measured",
           fmt="{:.2f}"),
    Column("load_after", "load after", "amount?", "1-minute load average after its timed samples", fmt="{:.2f}"),
    Column("gpu_other_processes", "other GPU processes", "count?",
           "CUDA rows, through NVML (`nvidia-ml-py`; empty without it): most other processes seen on the GPU "
           "during the timed samples"),
    Column("sm_clock_mhz", "SM clock (MHz)", "amount?", "CUDA rows: the lowest SM clock NVML sampled while timed",
           fmt="{:.0f}"),
    Column("throttle_reasons", "throttle reasons", "name?",
           "CUDA rows: the clock event reasons NVML saw while timed, comma-separated (`sw_power_cap` is recorded; "
           "`hw_slowdown`, `sw_thermal_slowdown`, `hw_thermal_slowdown`, `hw_power_brake_slowdown` make the row "
           "contended)"),
    # Rounds (`--rounds`, `--settle`; `bench.run.rounds`).
    Column("rounds", "rounds", "count?",
           "`--rounds`: times the plan was measured, architectures interleaved; `latency_ms` is then the median "
           "of the medians of the rounds that were not contended (results.json keeps `round_latency_ms`, "
           "`round_contended` and the contended rounds' samples in `contended_samples_ms`)"),
    Column("settle_s", "settle (s)", "amount?", "`--settle`: seconds spent waiting for a quiet machine before "
           "the rounds, all rounds together", fmt="{:.1f}"),
    Column("settled", "settled", "flag?", "`--settle`: the machine got quiet before every round (false: a wait "
           "ran out)"),
)  # fmt: skip

_BY_NAME = {c.name: c for c in REGISTRY}
if len(_BY_NAME) != len(REGISTRY):  # pragma: no cover - a mistake in the table above
    raise AssertionError("a column is declared twice")


def column(name: str) -> Column:
    """The registry's entry for ``name`` (KeyError for an unknown column)."""
    return _BY_NAME[name]


_STORED = tuple(c for c in REGISTRY if c.stored)

REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in _STORED if c.required)
"""The columns every results file holds (``docs/columns.md``)."""
EXTRA_COLUMNS: tuple[str, ...] = tuple(c.name for c in _STORED if not c.required)
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + EXTRA_COLUMNS
"""Every column vbench writes, in the CSV's order (required first)."""
KEY_COLUMNS: tuple[str, ...] = tuple(c.name for c in _STORED if c.key)
"""The columns that identify a configuration (``vbench compare`` matches rows on them)."""
EXACT_METRICS: tuple[str, ...] = tuple(c.name for c in _STORED if c.gate == "exact")
"""Columns that must not change at all between a baseline and a head."""
SUMMARY_COLUMNS: tuple[Column, ...] = tuple(c for c in REGISTRY if c.summary_rank is not None)
"""The run summary table's columns (``results.md``, the terminal), in order."""
LABELS: dict[str, str] = {c.name: c.shown_as for c in REGISTRY}
"""Each column's name in the compare verdict."""

_GATES = {"exact": "exact", "ratio": "ratio", "status": "status", "none": ""}


def _gate(c: Column) -> str:
    if c.key:
        return "key"
    return "ratio, significance" if c.significance else _GATES[c.gate]


def _wrap(text: str, width: int = 79) -> str:
    """``text`` wrapped at 79 columns, never inside a code span."""
    spans = text.split("`")
    kept = "`".join(part.replace(" ", "\0") if i % 2 else part for i, part in enumerate(spans))
    wrapped = textwrap.fill(kept, width=width, break_long_words=False, break_on_hyphens=False)
    return wrapped.replace("\0", " ")


def readme_section() -> str:
    """The generated part of ``docs/columns.md`` (the "Results columns" page), rendered from the registry."""
    intro = (
        f"One row per ({', '.join(KEY_COLUMNS)}): the row key, on which `vbench compare` matches the rows of two "
        "runs. Counts are per clip (batch 1), as published tables give them; latency is per iteration of the "
        "whole batch. Every results file holds the required columns; `vbench compare` judges a column by its "
        "gate: `exact` (any change fails), `ratio` (fails beyond the tolerance; latency only when the raw "
        "samples say the change is significant) or `status` (ok to not ok fails)."
    )
    lines = [
        _wrap(intro),
        "",
        "| column | in tables | required | compare | meaning |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{c.name}` | {c.header} | {'yes' if c.required else ''} | {_gate(c)} | {c.meaning} |" for c in _STORED
    ]
    return "\n".join(lines) + "\n"
