"""From what the user asked to a checked list of jobs, before any long work starts.

A :class:`Request` is the command line's options; :func:`make_plan` resolves
architecture patterns, expands the grid (batch x frames x size x mode), parses
``--arch-kwargs``, checks every input against the architecture's ``min_input``
and counts every (architecture, input) on the meta device. Anything wrong is a
:class:`~bench.errors.UsageError` (exit code 2) raised here, so that no timing
has started when the user learns of a mistake. The counts are kept in the plan
and reused for every row, so counting also happens only once.

The records themselves (:class:`Request`, :class:`Config`, :class:`Job`,
:class:`Plan`) and the choices (:data:`DEVICES`, ...) live in the torch-free
:mod:`bench.results.records` and are re-exported here; planning imports the registry
and the counter (torch).
"""

from __future__ import annotations

import ast
import itertools
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import archs
from bench.errors import UsageError, first_line
from bench.measure.counting import Counts, count_with
from bench.results.records import (
    COUNTERS,
    DEVICES,
    DTYPES,
    INPUTS,
    MODES,
    ROW_MODES,
    Config,
    Device,
    Job,
    Plan,
    Request,
    choice,
    job_id,
)

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
        if key in out:
            raise UsageError(f"--arch-kwargs names {key} twice")
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


def _check_weights(weights: str, names: list[str], kwargs: dict[str, Any], static: bool) -> dict[str, Any]:
    """``--weights``: one architecture, a checkpoint that fits it (read now, one line if not); its class
    count joins the builder options, so that the rows say which head was measured."""
    from archs import WeightsError, read_weights

    if static:
        raise UsageError("--weights loads a checkpoint into timed models; --static times nothing")
    if len(names) != 1:
        raise UsageError(f"--weights fits one architecture; the request names {len(names)}")
    try:
        info, _ = read_weights(names[0], weights, **kwargs)
    except WeightsError as e:
        raise UsageError(f"--weights: {e}") from None
    return {**kwargs, "num_classes": info.num_classes} if "num_classes" not in kwargs else kwargs


def resolve_device(device: str) -> Device:
    """``auto`` -> cuda, mps or cpu; an unavailable device is a usage error.

    Asks only whether CUDA exists, which does not create a CUDA context in this
    process (the workers do that).
    """
    import torch

    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    chosen = choice(device, DEVICES, "device")
    has_cuda = torch.cuda.is_available()
    has_mps = torch.backends.mps.is_available()
    if chosen == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if chosen == "cuda" and not has_cuda:
        raise UsageError("--device cuda: no CUDA device is available (torch sees none)")
    if chosen == "mps" and not has_mps:
        raise UsageError("--device mps: no MPS device is available")
    return chosen


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


def _spec_input(arch: str, which: str, kwargs: dict[str, Any]) -> tuple[int, int, int, int]:
    """The paper (``default``) or smallest (``min``) input of ``arch`` built with ``kwargs`` (R2D's follow ``frames``)."""
    spec = archs.get_arch(arch)
    try:
        return tuple(spec.default_input_for(**kwargs) if which == "default" else spec.min_input_for(**kwargs))  # type: ignore[return-value]
    except (TypeError, ValueError) as e:
        first = first_line(e, typed=False) or type(e).__name__
        raise UsageError(f"{arch}: bad --arch-kwargs {kwargs}: {first}") from None


def _check_input(arch: str, frames: int, height: int, width: int, kwargs: dict[str, Any]) -> None:
    _, t_min, h_min, w_min = _spec_input(arch, "min", kwargs)
    if frames < t_min or height < h_min or width < w_min:
        raise UsageError(
            f"{arch} needs at least {t_min} frames and {h_min}x{w_min} pixels "
            f"(min input 3x{t_min}x{h_min}x{w_min}); got {frames}x{height}x{width}"
        )


def _count(
    arch: str, thw: tuple[int, int, int], train: bool, kwargs: dict[str, Any], counter: str, memory: bool = False
) -> Counts | str:
    """The counts, or the error (one line) when a valid input fails: a broken model is not a usage error.

    ``memory``: with the memory estimate's figures (a measured run needs them; a static one does not).

    Raises:
        UsageError: when ``--arch-kwargs`` are given and the builder refuses them.
    """
    try:
        counts = count_with(counter, arch, (1, 3, *thw), train=train, memory=memory, **kwargs)
        expected = (1, kwargs.get("num_classes", DEFAULT_CLASSES))
        if len(counts.output_shape) != 2 or counts.output_shape != expected:
            shown = "x".join(map(str, counts.output_shape))
            return f"the model returned logits of shape {shown}; expected {expected[0]}x{expected[1]} (batch x classes)"
        return counts
    except UsageError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # the model's; a user's Ctrl-C is Interrupted
        first = first_line(e, typed=False)
        if kwargs and isinstance(e, (TypeError, ValueError)):
            raise UsageError(f"{arch}: bad --arch-kwargs {kwargs}: {first}") from None
        return f"{type(e).__name__} while building or counting: {first}"[:500]


def _count_task(task: tuple[Any, ...]) -> Counts | str:
    return _count(*task)


def _count_init(plugins: Sequence[dict[str, Any]]) -> None:
    """A counting process: what the models print goes nowhere; the plugins are loaded from their files."""
    from bench.run.plugins import import_plugins

    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    import_plugins(plugins)


def _in_processes(
    tasks: Sequence[tuple[Any, ...]], workers: int, plugins: Sequence[dict[str, Any]]
) -> list[Counts | str]:
    """Count in spawned processes; a process that dies (a model calling ``os._exit``) costs only its own task.

    Spawned (a fresh interpreter imports torch; nothing is forked from a parent
    that may hold threads), with ``PYTHONSAFEPATH`` so that the working
    directory is not on their path.
    """
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    context = multiprocessing.get_context("spawn")

    def pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=context, initializer=_count_init, initargs=(list(plugins),))

    try:
        with pool(workers) as p:
            return list(p.map(_count_task, tasks))
    except BrokenProcessPool:
        pass
    out: list[Counts | str] = []
    for task in tasks:  # find the one that breaks its process: each alone
        try:
            with pool(1) as p:
                out.append(p.submit(_count_task, task).result())
        except BrokenProcessPool:
            out.append("the process that built or counted the model died (the model ended it, or crashed)")
    return out


def _count_all(tasks: Sequence[tuple[Any, ...]], workers: int, plugins: Sequence[dict[str, Any]]) -> list[Counts | str]:
    """Count every (architecture, input), in ``workers`` CPU processes when that is more than one.

    Architectures that plugins registered are always counted in another
    process: a builder that exits, prints or kills its process must not end or
    spoof vbench itself.
    """
    foreign = {arch for p in plugins for arch in p.get("archs", ())}
    own = [i for i, t in enumerate(tasks) if t[0] not in foreign]
    theirs = [i for i, t in enumerate(tasks) if t[0] in foreign]
    results: dict[int, Counts | str] = {}
    if len(own) > 1 and workers > 1:
        results.update(zip(own, _in_processes([tasks[i] for i in own], min(workers, len(own)), plugins)))
    else:
        results.update((i, _count_task(tasks[i])) for i in own)
    if theirs:
        found = _in_processes([tasks[i] for i in theirs], max(1, min(workers, len(theirs))), plugins)
        results.update(zip(theirs, found))
    return [results[i] for i in range(len(tasks))]


_T = TypeVar("_T", bound=str)


def _choose(values: Sequence[str], allowed: tuple[_T, ...], what: str) -> list[_T]:
    """The values, stripped, each checked against ``allowed``."""
    return [choice(v.strip(), allowed, what) for v in values]


def make_plan(request: Request) -> Plan:
    """Check the request and count every (architecture, input); raises UsageError on a mistake."""
    dtypes = list(dict.fromkeys(_choose(request.dtype.split(","), DTYPES, "dtype")))
    _choose([request.counter], COUNTERS, "counter")
    (mode,) = _choose([request.mode], MODES, "mode")
    batches = parse_int_list(request.batches, "batch") or [1]
    frames = parse_int_list(request.frames, "frames")
    sizes = parse_int_list(request.sizes, "size")
    kinds = list(dict.fromkeys(_choose(request.inputs.split(","), INPUTS, "--input")))
    if (frames or sizes) and kinds != ["paper"]:
        raise UsageError("--input min cannot be combined with --frames or --size")
    kwargs = parse_arch_kwargs(request.arch_kwargs)
    names = resolve_archs(request.archs)
    if request.weights is not None:
        kwargs = _check_weights(request.weights, names, kwargs, request.static)
    device = resolve_device(request.device)
    if request.cuda_graphs and device != "cuda":
        raise UsageError("--cuda-graphs needs --device cuda")
    if request.trace and request.static:
        raise UsageError("--trace records timed iterations; --static times nothing")
    modes = list(ROW_MODES) if mode == "both" else [mode]
    kw = tuple(sorted(kwargs.items()))

    inputs: dict[str, list[tuple[int, int, int]]] = {}
    for name in names:
        if frames or sizes:
            _, t0, h0, w0 = _spec_input(name, "default", kwargs)
            inputs[name] = [
                (t, s, s) if s is not None else (t, h0, w0)
                for t, s in itertools.product(frames or [t0], sizes or [None])  # type: ignore[list-item]
            ]
        else:
            shapes = [_spec_input(name, "default" if kind == "paper" else "min", kwargs) for kind in kinds]
            inputs[name] = list(dict.fromkeys((t, h, w) for _, t, h, w in shapes))
        for t, h, w in inputs[name]:
            _check_input(name, t, h, w, kwargs)  # every input of every architecture, before any counting

    tasks = [
        (name, thw, "train" in modes, kwargs, request.counter, not request.static)
        for name in names
        for thw in inputs[name]
    ]
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
