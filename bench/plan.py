"""From what the user asked to a checked list of jobs, before any long work starts.

A :class:`Request` is the command line's options; :func:`make_plan` resolves
architecture patterns, expands the grid (batch x frames x size x mode), parses
``--arch-kwargs``, checks every input against the architecture's ``min_input``
and counts every (architecture, input) on the meta device. Anything wrong is a
:class:`~bench.errors.UsageError` (exit code 2) raised here, so that no timing
has started when the user learns of a mistake. The counts are kept in the plan
and reused for every row, so counting also happens only once.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import archs
from bench.counting import Counts, count
from bench.errors import UsageError
from bench.timing import SamplePolicy

__all__ = [
    "COUNTERS",
    "DEVICES",
    "DTYPES",
    "INPUTS",
    "MODES",
    "Config",
    "Job",
    "Plan",
    "Request",
    "job_id",
    "make_plan",
    "parse_arch_kwargs",
    "parse_int_list",
    "resolve_archs",
    "resolve_device",
    "resolve_gpus",
]

DEVICES = ("cpu", "cuda", "mps", "auto")
DTYPES = ("fp32", "bf16", "fp16")
MODES = ("infer", "train", "both")
COUNTERS = ("torch", "fvcore")
INPUTS = ("paper", "min")


@dataclass(frozen=True)
class Config:
    """One row's configuration: what is measured, on what, how."""

    arch: str
    batch: int
    frames: int
    height: int
    width: int
    device: str
    dtype: str = "fp32"
    mode: str = "infer"
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
    def from_dict(cls, d: dict[str, Any]) -> Config:
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
    """What the user asked for; None for frames/sizes means each architecture's paper input."""

    archs: Sequence[str] = ("all",)
    device: str = "auto"
    batches: Sequence[int] = (1,)
    frames: Sequence[int] | None = None
    sizes: Sequence[int] | None = None
    inputs: str = "paper"
    """Without frames/sizes: ``paper`` (each architecture's default input), ``min`` (its min_input) or both."""
    dtype: str = "fp32"
    """One dtype or a comma list (``"fp32,bf16"``)."""
    mode: str = "infer"
    channels_last: bool = False
    compiled: bool = False
    cuda_graphs: bool = False
    arch_kwargs: Sequence[str] = ()
    static: bool = False
    counter: str = "torch"
    policy: SamplePolicy = field(default_factory=SamplePolicy)
    count_workers: int = 1
    """CPU processes that count (params, MACs) in parallel while planning."""
    plugins: Sequence[dict[str, Any]] = ()
    """Plugins the counting processes load (records of :func:`bench.plugins.load_plugins`)."""


@dataclass(frozen=True)
class Plan:
    request: Request
    device: str
    jobs: tuple[Job, ...]

    @property
    def n_rows(self) -> int:
        return sum(len(j.configs) for j in self.jobs)


def parse_int_list(text: str | Sequence[int] | None, what: str) -> list[int] | None:
    """``"1,8"`` -> ``[1, 8]``; every value must be a positive integer; repeats are folded (``"1,1"`` -> ``[1]``)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    values = []
    for item in items:
        try:
            v = int(str(item).strip())
        except ValueError:
            raise UsageError(f"--{what} takes positive integers separated by commas; got '{text}'") from None
        if v <= 0:
            raise UsageError(f"--{what} must be positive; got {v}")
        values.append(v)
    if not values:
        raise UsageError(f"--{what} is empty")
    return list(dict.fromkeys(values))


def parse_arch_kwargs(items: Iterable[str]) -> dict[str, Any]:
    """``["split=Mixed_3c", "num_classes=10"]`` -> ``{"split": "Mixed_3c", "num_classes": 10}``.

    Values are Python literals where they parse as one (ints, floats, booleans,
    None, tuples) and strings otherwise.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--arch-kwargs takes key=value with a Python identifier as key; got '{item}'")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw.strip()
        if key in _POSITIVE_KWARGS and (type(value) is not int or value < 1):
            raise UsageError(f"--arch-kwargs {key} must be a positive integer; got {raw.strip()[:40]!r}")
        out[key] = value
    return out


DEFAULT_CLASSES = 400
"""Every model returns (batch, num_classes) logits, 400 classes unless ``num_classes`` says otherwise."""

_POSITIVE_KWARGS = ("num_classes", "frames")
"""Builder keywords that are counts: 0 classes or 0 frames build a model that measures nothing."""


def resolve_archs(patterns: Sequence[str]) -> list[str]:
    """Names for ``all``, exact names and shell-style patterns, in natural order, without repeats."""
    names: list[str] = []
    for pattern in patterns:
        if pattern == "all":
            found = archs.list_archs()
        elif any(ch in pattern for ch in "*?["):
            found = archs.list_archs(pattern)
            if not found:
                raise UsageError(f"no architecture matches '{pattern}'")
        else:
            found = [archs.get_arch(pattern).name]  # UnknownArchError names close matches
        names.extend(n for n in found if n not in names)
    return names


def resolve_device(device: str) -> str:
    """``auto`` -> cuda, mps or cpu; an unavailable device is a usage error.

    Asks only whether CUDA exists, which does not create a CUDA context in this
    process (the workers do that).
    """
    import torch

    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    if device not in DEVICES:
        raise UsageError(f"unknown device '{device}'; choose from {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    has_mps = torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if device == "cuda" and not has_cuda:
        raise UsageError("--device cuda: no CUDA device is available (torch sees none)")
    if device == "mps" and not has_mps:
        raise UsageError("--device mps: no MPS device is available")
    return device


def resolve_gpus(text: str | None, device: str) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]`` after checking that each GPU exists (without initialising CUDA here)."""
    if text is None:
        return []
    try:
        ids = [int(item) for item in text.split(",")]
    except ValueError:
        ids = []
    if not ids or any(i < 0 for i in ids):
        raise UsageError(f"--gpus takes GPU indices separated by commas, such as 0,1; got '{text}'")
    if len(set(ids)) != len(ids):
        raise UsageError(f"--gpus names a GPU twice: '{text}'")
    if device != "cuda":
        raise UsageError(f"--gpus needs --device cuda (or auto on a machine with CUDA); the device is {device}")
    import torch

    count = torch.cuda.device_count()
    missing = [i for i in ids if i >= count]
    if missing:
        raise UsageError(f"--gpus {text}: no GPU {missing[0]} here; torch sees {count} (0..{count - 1})")
    return [str(i) for i in ids]


def _check_input(arch: str, frames: int, height: int, width: int) -> None:
    _, t_min, h_min, w_min = archs.get_arch(arch).min_input
    if frames < t_min or height < h_min or width < w_min:
        raise UsageError(
            f"{arch} needs at least {t_min} frames and {h_min}x{w_min} pixels "
            f"(min input 3x{t_min}x{h_min}x{w_min}); got {frames}x{height}x{width}"
        )


def _count(arch: str, thw: tuple[int, int, int], train: bool, kwargs: dict[str, Any], counter: str) -> Counts | str:
    """The counts, or the error (one line) when a valid input fails: a broken model is not a usage error.

    Raises:
        UsageError: when ``--arch-kwargs`` are given and the builder refuses them.
    """
    try:
        counts = count(arch, (1, 3, *thw), train=train, **kwargs)
        expected = (1, kwargs.get("num_classes", DEFAULT_CLASSES))
        if len(counts.output_shape) != 2 or counts.output_shape != expected:
            shown = "x".join(map(str, counts.output_shape))
            return f"the model returned logits of shape {shown}; expected {expected[0]}x{expected[1]} (batch x classes)"
        if counter == "fvcore":
            from bench.fvcore_counter import fvcore_macs

            macs, _ = fvcore_macs(arch, (1, 3, *thw), **kwargs)
            counts = dataclasses.replace(counts, macs=macs, train_macs=None)
        return counts
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if kwargs and isinstance(e, (TypeError, ValueError)):
            raise UsageError(f"{arch}: bad --arch-kwargs {kwargs}: {first}") from None
        return f"{type(e).__name__} while building or counting: {first}"[:500]


def _count_task(task: tuple[Any, ...]) -> Counts | str:
    return _count(*task)


def _count_all(tasks: Sequence[tuple[Any, ...]], workers: int, plugins: Sequence[dict[str, Any]]) -> list[Counts | str]:
    """Count every (architecture, input), in ``workers`` CPU processes when that is more than one.

    The processes are spawned (a fresh interpreter imports torch; no state is
    forked from a parent that may hold threads) and import the plugins first.
    """
    workers = min(workers, len(tasks))
    if workers <= 1:
        return [_count_task(t) for t in tasks]
    from bench.plugins import import_plugins

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=import_plugins, initargs=(list(plugins),)
    ) as pool:
        return list(pool.map(_count_task, tasks))


def _choose(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """The values, stripped, each checked against ``allowed``."""
    out = [v.strip() for v in values]
    for v in out:
        if v not in allowed:
            raise UsageError(f"unknown {what} '{v}'; choose from {', '.join(allowed)}")
    return out


def make_plan(request: Request) -> Plan:
    """Check the request and count every (architecture, input); raises UsageError on a mistake."""
    dtypes = list(dict.fromkeys(_choose(request.dtype.split(","), DTYPES, "dtype")))
    _choose([request.counter], COUNTERS, "counter")
    _choose([request.mode], MODES, "mode")
    batches = parse_int_list(request.batches, "batch") or [1]
    frames = parse_int_list(request.frames, "frames")
    sizes = parse_int_list(request.sizes, "size")
    kinds = list(dict.fromkeys(_choose(request.inputs.split(","), INPUTS, "--input")))
    if (frames or sizes) and kinds != ["paper"]:
        raise UsageError("--input min cannot be combined with --frames or --size")
    kwargs = parse_arch_kwargs(request.arch_kwargs)
    names = resolve_archs(request.archs)
    device = resolve_device(request.device)
    if request.cuda_graphs and device != "cuda":
        raise UsageError("--cuda-graphs needs --device cuda")
    modes = ["infer", "train"] if request.mode == "both" else [request.mode]
    kw = tuple(sorted(kwargs.items()))

    inputs: dict[str, list[tuple[int, int, int]]] = {}
    for name in names:
        spec = archs.get_arch(name)
        if frames or sizes:
            _, t0, h0, w0 = spec.default_input
            inputs[name] = [
                (t, s, s) if s is not None else (t, h0, w0)
                for t, s in itertools.product(frames or [t0], sizes or [None])  # type: ignore[list-item]
            ]
        else:
            shapes = [spec.default_input if kind == "paper" else spec.min_input for kind in kinds]
            inputs[name] = list(dict.fromkeys((t, h, w) for _, t, h, w in shapes))
        for t, h, w in inputs[name]:
            _check_input(name, t, h, w)  # every input of every architecture, before any counting

    tasks = [(name, thw, "train" in modes, kwargs, request.counter) for name in names for thw in inputs[name]]
    counted = dict(zip([(t[0], t[1]) for t in tasks], _count_all(tasks, request.count_workers, request.plugins)))
    jobs = []
    for name in names:
        configs = tuple(
            Config(
                arch=name,
                batch=b,
                frames=t,
                height=h,
                width=w,
                device=device,
                dtype=dtype,
                mode=m,
                channels_last=request.channels_last,
                compiled=request.compiled,
                cuda_graphs=request.cuda_graphs,
                arch_kwargs=kw,
            )
            for (t, h, w), dtype, b, m in itertools.product(inputs[name], dtypes, batches, modes)
        )
        results = {thw: counted[(name, thw)] for thw in inputs[name]}
        jobs.append(
            Job(
                arch=name,
                configs=configs,
                counts={thw: c for thw, c in results.items() if isinstance(c, Counts)},
                errors={thw: c for thw, c in results.items() if isinstance(c, str)},
                id=job_id(name, configs),
            )
        )
    return Plan(request=request, device=device, jobs=tuple(jobs))
