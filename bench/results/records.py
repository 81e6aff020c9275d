"""The domain records: what a run measures, the shape of its rows, and the checks on how it runs.

A :class:`Config` is one row's configuration, a :class:`Job` all configurations
of one architecture (what one worker runs), a :class:`Plan` the checked jobs
of a :class:`Request` (the command line's options); :class:`Row` is the typed
shape of a results row. The string enums (device, dtype, mode, status, ...) are
``Literal`` types, and the tuples of choices that the command line lists and
checks (:data:`DEVICES`, :data:`DTYPES`, ...) are derived from them.

Plain data only: this module imports no torch (nor :mod:`archs`), so that the
commands that only read saved runs (``compare``, ``merge``, ``report``) start
fast. Making a plan (resolving names, counting) is :mod:`bench.run.plan`'s work;
counts are typed here only for the type checker.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, get_args

from bench.errors import UsageError

if TYPE_CHECKING:
    from bench.measure.counting import Counts

__all__ = [
    "CLUSTER_ONLY",
    "COUNTERS",
    "DEVICES",
    "DEVICE_KINDS",
    "DTYPES",
    "EXECUTORS",
    "INPUTS",
    "KINDS",
    "KIND_COLOURS",
    "MODES",
    "ROW_MODES",
    "STATUSES",
    "Config",
    "Counter",
    "Device",
    "DeviceChoice",
    "Dtype",
    "Executor",
    "InputKind",
    "Job",
    "Memory",
    "Mode",
    "ModeChoice",
    "Plan",
    "Request",
    "Row",
    "RunOptions",
    "SamplePolicy",
    "Status",
    "check_run_options",
    "choice",
    "finite_seconds",
    "job_id",
    "memory_bytes",
]

# ---------------------------------------------------------------- the string enums

Device = Literal["cpu", "cuda", "mps"]
"""Where a row was measured (the device kind; ``auto`` is resolved before any row is made)."""
DeviceChoice = Literal[Device, "auto"]
"""What ``--device`` takes."""
Dtype = Literal["fp32", "bf16", "fp16"]
"""The compute dtype: fp32, or bf16/fp16 through autocast."""
Mode = Literal["infer", "train"]
"""A row's mode: inference, or forward + backward + optimizer step."""
ModeChoice = Literal[Mode, "both"]
"""What ``--mode`` takes."""
Status = Literal["ok", "oom", "timeout", "error", "skipped", "unsupported"]
"""What became of a row's configuration."""
Counter = Literal["torch", "fvcore"]
"""The MAC counter: torch's on the meta device, or fvcore's (traces on the CPU)."""
InputKind = Literal["paper", "min"]
"""Without ``--frames``/``--size``: each architecture's paper input, or its smallest valid one."""
Executor = Literal["slurm", "local"]
"""How ``--executor`` runs the shards of a sweep."""

DEVICES: tuple[DeviceChoice, ...] = get_args(DeviceChoice)
DEVICE_KINDS: tuple[Device, ...] = get_args(Device)
DTYPES: tuple[Dtype, ...] = get_args(Dtype)
MODES: tuple[ModeChoice, ...] = get_args(ModeChoice)
ROW_MODES: tuple[Mode, ...] = get_args(Mode)
STATUSES: tuple[Status, ...] = get_args(Status)
COUNTERS: tuple[Counter, ...] = get_args(Counter)
INPUTS: tuple[InputKind, ...] = get_args(InputKind)
EXECUTORS: tuple[Executor, ...] = get_args(Executor)

_T = TypeVar("_T", bound=str)


def choice(value: str, allowed: tuple[_T, ...], what: str) -> _T:
    """``value`` as one of ``allowed`` (typed as the Literal they are), or a usage error naming the choices."""
    for option in allowed:
        if option == value:
            return option
    raise UsageError(f"unknown {what} '{value}'; choose from {', '.join(allowed)}")


# ---------------------------------------------------------------- what a run measures


@dataclass(frozen=True)
class SamplePolicy:
    """When to stop sampling.

    Sampling stops once ``repeats`` samples are taken and at least ``min_time``
    seconds have been spent sampling, or as soon as ``max_time`` seconds have been
    spent (with at least one sample). Warm-up iterations are not timed.
    """

    warmup: int = 3
    repeats: int = 10
    min_time: float = 0.0
    max_time: float = 60.0
    max_samples: int = 100_000

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.min_time, self.max_time)):
            raise ValueError("min_time and max_time must be finite numbers of seconds")
        if self.warmup < 0 or self.repeats < 1 or self.min_time < 0 or self.max_time <= 0:
            raise ValueError("warmup >= 0, repeats >= 1, min_time >= 0 and max_time > 0 are required")
        if self.min_time > self.max_time:
            raise ValueError(f"min_time ({self.min_time:g} s) cannot exceed max_time ({self.max_time:g} s)")


@dataclass(frozen=True)
class Config:
    """One row's configuration: what is measured, on what, how."""

    arch: str
    batch: int
    frames: int
    height: int
    width: int
    device: Device
    dtype: Dtype = "fp32"
    mode: Mode = "infer"
    channels_last: bool = False
    compiled: bool = False
    cuda_graphs: bool = False
    arch_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int, int, int]:
        return (self.batch, 3, self.frames, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arch_kwargs"] = dict(self.arch_kwargs)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        d = dict(d)
        d["arch_kwargs"] = tuple(sorted(d.get("arch_kwargs", {}).items()))
        return cls(**d)


@dataclass(frozen=True)
class Job:
    """All configurations of one architecture: what one worker process runs."""

    arch: str
    configs: tuple[Config, ...]
    counts: dict[tuple[int, int, int], Counts] = field(compare=False)
    """Per-clip counts (batch 1) for each (frames, height, width) of the job."""
    errors: dict[tuple[int, int, int], str] = field(default_factory=dict, compare=False)
    """Inputs at which the model could not be built or counted: the architecture's fault, not the user's."""
    id: str = ""
    """Stable id of the job as the full sweep planned it (``"r3d_18-1a2b3c4d5e"``); kept when configs are dropped."""

    def counts_for(self, config: Config) -> Counts | None:
        return self.counts.get((config.frames, config.height, config.width))

    def error_for(self, config: Config) -> str:
        return self.errors.get((config.frames, config.height, config.width), "")


def job_id(arch: str, configs: Sequence[Config]) -> str:
    """The architecture and a hash of its configurations: the same in every process that plans the same sweep."""
    text = json.dumps([c.to_dict() for c in configs], sort_keys=True, default=str)
    return f"{arch}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Request:
    """What the user asked for; None for frames/sizes means each architecture's paper input.

    The strings are the user's text (a comma list where several values are
    allowed), checked by :func:`bench.run.plan.make_plan`.
    """

    archs: Sequence[str] = ("all",)
    device: str = "auto"
    """One of :data:`DEVICES`."""
    batches: Sequence[int] | str = (1,)
    """Batch sizes, or their comma list (``"1,8"``)."""
    frames: Sequence[int] | str | None = None
    sizes: Sequence[int] | str | None = None
    inputs: str = "paper"
    """Without frames/sizes: ``paper`` (each architecture's default input), ``min`` (its min_input) or both."""
    dtype: str = "fp32"
    """One dtype or a comma list (``"fp32,bf16"``)."""
    mode: str = "infer"
    """One of :data:`MODES`."""
    channels_last: bool = False
    compiled: bool = False
    cuda_graphs: bool = False
    arch_kwargs: Sequence[str] = ()
    static: bool = False
    counter: str = "torch"
    """One of :data:`COUNTERS`."""
    trace: bool = False
    """Write a Chrome/Perfetto trace of each timed configuration into the run folder's ``traces/``."""
    weights: str | None = None
    """A checkpoint the timed models load (``--weights``): one architecture only; checked before any work."""
    policy: SamplePolicy = field(default_factory=SamplePolicy)
    count_workers: int = 1
    """CPU processes that count (params, MACs) in parallel while planning."""
    plugins: Sequence[dict[str, Any]] = ()
    """Plugins the counting processes load (records of :func:`bench.run.plugins.load_plugins`)."""


@dataclass(frozen=True)
class Plan:
    request: Request
    device: Device
    jobs: tuple[Job, ...]

    @property
    def n_rows(self) -> int:
        return sum(len(j.configs) for j in self.jobs)


# ---------------------------------------------------------------- the shape of a row


class Memory(TypedDict, total=False):
    """Peak memory of one measurement (MiB): CUDA's allocator peaks, or the worker's peak RSS on a CPU."""

    peak_mem_mib: float | None
    peak_mem_reserved_mib: float | None


class _RequiredRow(TypedDict):
    arch: str
    family: str
    mode: Mode
    batch: int
    frames: int
    height: int
    width: int
    device: Device
    device_name: str | None
    dtype: Dtype
    channels_last: bool
    compiled: bool
    params: int | None
    gmacs: float | None
    gflops: float | None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_min_ms: float | None
    n_samples: int | None
    clips_per_s: float | None
    peak_mem_mib: float | None
    status: Status
    error: str | None
    torch_version: str | None
    vbench_version: str | None
    git_sha: str | None
    timestamp: str | None


class Row(_RequiredRow, total=False):
    """One results row: every column of :data:`bench.results.columns.COLUMNS`, plus the raw samples.

    The required columns (:data:`bench.results.columns.REQUIRED_COLUMNS`) are in every
    row read back from a file; :func:`bench.measure.rows.make_row` fills every column
    (None where unknown). ``samples_ms`` goes to ``results.json``, not to the CSV.
    What each column means is in the column registry, :mod:`bench.results.columns`.
    """

    arch_kwargs: str | None
    cuda_graphs: bool
    trainable_params: int | None
    train_gmacs: float | None
    activations_m: float | None
    output_shape: str | None
    latency_ci_low_ms: float | None
    latency_ci_high_ms: float | None
    noisy: bool | None
    peak_mem_reserved_mib: float | None
    threads: int | None
    cudnn_benchmark: bool | None
    warmup: int | None
    job_id: str | None
    achieved_tflops: float | None
    mfu: float | None
    intensity: float | None
    bound: str | None
    cpu_share: float | None
    contended: bool | None
    load_before: float | None
    load_after: float | None
    gpu_other_processes: int | None
    sm_clock_mhz: float | None
    throttle_reasons: str | None
    rounds: int | None
    settle_s: float | None
    settled: bool | None
    samples_ms: list[float]


KINDS = (
    "3d",
    "spatial",
    "temporal",
    "pointwise",
    "channelwise",
    "shift",
    "patch_embedding",
    "attention",
    "mlp",
    "norm",
    "activation",
    "swish",
    "se",
    "pooling",
    "gating",
    "linear",
    "other",
)
"""Convolution kinds by kernel (t x k x k full 3D, 1 x k x k spatial, k x 1 x 1 temporal, 1 x 1 x 1
pointwise; ``channelwise``: one filter per channel, groups = channels), then the rest by what the
module is or declares (a module's ``work_kind``: ``shift`` for TSM's temporal shift, the
transformers' ``patch_embedding``, ``attention`` and ``mlp``, ``swish``, ``se`` for
squeeze-excitation, ``gating`` for S3D-G's); ``other`` is elementwise work of composite modules
(residual additions, concatenations), dropout and flattening."""

KIND_COLOURS: dict[str, str] = {
    "3d": "#1f77b4", "spatial": "#2ca02c", "temporal": "#d62728", "pointwise": "#9467bd", "norm": "#8c564b",
    "activation": "#e377c2", "pooling": "#7f7f7f", "gating": "#ff7f0e", "linear": "#bcbd22", "other": "#17becf",
    "channelwise": "#aec7e8", "shift": "#ffbb78", "patch_embedding": "#98df8a", "attention": "#ff9896",
    "mlp": "#c5b0d5", "swish": "#f7b6d2", "se": "#dbdb8d",
}  # fmt: skip
"""Each kind's colour in the figures (matplotlib's and the HTML page's)."""


# ---------------------------------------------------------------- how a run runs

CLUSTER_ONLY = ("shards", "partition", "time_min", "gpus_per_task", "cpus_per_task")
"""Options of :func:`check_run_options`'s ``cluster`` that only apply with an executor."""


@dataclass(frozen=True)
class RunOptions:
    """How one ``vbench profile`` runs its request (not what it measures), checked by :func:`check_run_options`."""

    policy: SamplePolicy
    timeout: float
    """Seconds a worker may go without producing a row."""
    max_memory: int | None
    """Bytes a configuration may be estimated to need (None: what the device has free)."""


def finite_seconds(value: float, what: str, *, positive: bool = False) -> float:
    """``value`` when it is a finite, non-negative (``positive``: above 0) number of seconds."""
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise UsageError(f"{what} must be a finite number of seconds{' above 0' if positive else ''}; got {value}")
    return value


def memory_bytes(text: str | None) -> int | None:
    """``"8GiB"``, ``"500MiB"``, ``"2G"`` or a number of MiB -> bytes."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise UsageError(f"--max-memory takes a size such as 8GiB or 500MiB; got '{text}'")
    unit = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2).upper()]
    value = int(float(m.group(1)) * unit)
    if value <= 0:
        raise UsageError("--max-memory must be above 0")
    return value


def check_run_options(
    *,
    warmup: int = 3,
    repeats: int = 10,
    min_time: float = 0.0,
    max_time: float = 60.0,
    timeout: float = 900.0,
    max_memory: str | None = None,
    count_workers: int | None = None,
    executor: str | None = None,
    cluster: Mapping[str, Any] | None = None,
    shard: str | None = None,
    gpus: str | None = None,
    out_given: bool = False,
    only_missing: bool = False,
    overwrite: bool = False,
    allow_mixed: bool = False,
    rounds: int = 1,
    settle: float = 0.0,
) -> RunOptions:
    """Check the options of a profile run that are not part of its :class:`Request`, before any work starts.

    The command line calls this, so a library caller checks exactly what the
    command line checks, with the same messages (named by their ``--option``).

    Args:
        cluster: The executor's options by name (:data:`CLUSTER_ONLY`; None where not given).
        out_given: Whether ``--out`` names the run folder (``--only-missing`` completes it).
        rounds, settle: ``--rounds`` and ``--settle`` (:func:`bench.run.runner.run_plan`'s ``rounds`` and
            ``settle_s``): this machine's, never an executor's.

    Raises:
        UsageError: the first problem found.
    """
    given = [f"--{k.replace('_', '-')}" for k in CLUSTER_ONLY if (cluster or {}).get(k) is not None]
    if executor is None and given:
        raise UsageError(f"{', '.join(given)} only apply with --executor slurm|local")
    finite_seconds(min_time, "--min-time")
    finite_seconds(max_time, "--max-time", positive=True)
    finite_seconds(timeout, "--timeout", positive=True)
    try:
        policy = SamplePolicy(warmup=warmup, repeats=repeats, min_time=min_time, max_time=max_time)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if count_workers is not None and count_workers < 1:
        raise UsageError("--count-workers must be at least 1")
    if executor is not None and (shard is not None or only_missing or gpus is not None):
        raise UsageError("--executor runs every shard itself; it takes neither --shard, --only-missing nor --gpus")
    if only_missing and not out_given:
        raise UsageError("--only-missing needs --out, the run folder to complete")
    if only_missing and overwrite:
        raise UsageError("--only-missing keeps the rows of --out and --overwrite replaces them: choose one")
    if allow_mixed and not only_missing:
        raise UsageError("--allow-mixed only applies with --only-missing")
    run = RunOptions(policy=policy, timeout=timeout, max_memory=memory_bytes(max_memory))
    if rounds < 1:
        raise UsageError(f"--rounds must be 1 or more; got {rounds}")
    finite_seconds(settle, "--settle")
    if executor is not None and (rounds > 1 or settle > 0):
        raise UsageError("--rounds and --settle run on this machine; they do not go with --executor")
    return run
