"""Where the time goes: per-module latency, forward and backward, from the operators' own times.

Timing around every module (a synchronisation before and after each) changes
what it measures: it serialises a GPU and adds the clock's cost to every small
layer. vbench instead runs the model under ``torch.profiler`` with one
``record_function`` range per module (opened and closed by forward hooks), and
gives every operator's *self* time (device time on a GPU) to the innermost
module range it ran in. Backward operators run after the ranges have closed;
autograd links each of them to the forward operator that made its node (the
sequence number), so the backward time of a module is that of the nodes its
forward created. What runs outside the model (the loss, gradient accumulation,
the optimiser step) is its own line, so nothing measured is dropped.

Two checks travel with every breakdown: the depth-1 lines add up to the
latency measured *without* instrumentation (within 10 %, ``docs/design.md``), and the
attributed total equals the total of ``torch.profiler``'s own
``key_averages()`` for the same run (nothing dropped, nothing counted twice).
The instrumentation's cost is reported as the instrumented iteration's excess
over the uninstrumented latency.

:func:`attribute` is a pure function of a list of :class:`Op` records, so the
bookkeeping is tested on hand-made event lists; :func:`time_breakdown` runs a
model and reads the profiler into those records. Numbers only: the records and
their file are :mod:`bench.results.breakdowns`, formatting is in :mod:`bench.report.tables`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.measure.roofline import intensity
from bench.results.breakdowns import Breakdown, KindTime, ModuleTime
from bench.results.records import KINDS

__all__ = [
    "KINDS",
    "OUTSIDE",
    "ROOT_OPS",
    "SCOPE",
    "Attribution",
    "Op",
    "ProfiledRun",
    "attribute",
    "module_kind",
    "module_scopes",
    "profile_model",
    "time_breakdown",
    "write_trace",
]

SCOPE = "vbench.module:"
"""Prefix of the profiler ranges that mark a module's forward (``vbench.module:layer1.0.conv1``)."""
_BACKWARD = "autograd::engine::evaluate_function: "
ROOT_OPS = "(root ops)"
"""The line for operators the root module runs itself (outside every child)."""
OUTSIDE = "(outside the model)"
"""The line for what a training step runs outside the model: loss, gradient accumulation, optimiser."""

# -- what kind of work a module is ----------------------------------------------------------


def _conv_kind(kernel: Sequence[int]) -> str:
    *t, h, w = (int(k) for k in kernel)
    temporal = bool(t) and t[0] > 1
    spatial = h > 1 or w > 1
    if temporal and spatial:
        return "3d"
    if spatial:
        return "spatial"
    return "temporal" if temporal else "pointwise"


def module_kind(module: nn.Module, gated: bool = False) -> str:
    """The :data:`KINDS` entry of a module's own operators (``gated``: it sits inside a gating module).

    A module that declares its kind (a class attribute ``work_kind``, one of
    :data:`KINDS`: a family's attention, MLP, squeeze-excitation or temporal
    shift) has that kind, and so has everything inside it that declares none.
    S3D-G's self-gating (a class name containing ``Gating``) is ``gating`` the same
    way. A convolution is classed by its kernel (Conv2d: spatial; Conv1d:
    temporal when its kernel is longer than 1), or ``channelwise`` when it has one
    filter per input channel.
    """
    declared = getattr(type(module), "work_kind", None)
    if isinstance(declared, str) and declared in KINDS:
        return declared
    if gated or "Gating" in type(module).__name__:
        return "gating"
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 and module.groups == module.in_channels:
        return "channelwise"
    if isinstance(module, nn.Conv3d):
        return _conv_kind(module.kernel_size)
    if isinstance(module, nn.Conv2d):
        return "spatial" if max(module.kernel_size) > 1 else "pointwise"
    if isinstance(module, nn.Conv1d):
        return "temporal" if module.kernel_size[0] > 1 else "pointwise"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    defined_in = {cls.__module__ for cls in type(module).__mro__}  # a subclass (a SAME-padding pool) keeps its kind
    if "torch.nn.modules.activation" in defined_in:
        return "activation"
    if "torch.nn.modules.pooling" in defined_in:
        return "pooling"
    if isinstance(module, nn.Linear):
        return "linear"
    return "other"


def _kinds(model: nn.Module) -> dict[str, str]:
    """Module name -> the kind of its own operators; a declared kind covers the modules inside it."""
    out: dict[str, str] = {}
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0] if "." in name else ("" if name else None)
        inherited = out.get(parent) if parent is not None else None
        own = module_kind(module)
        if inherited in _COVERING and not _declares(module):
            own = inherited
        out[name] = own
    return out


_COVERING = frozenset({"shift", "patch_embedding", "attention", "mlp", "swish", "se", "gating"})
"""Kinds that a module declares for everything inside it (its attention's projections are attention)."""


def _declares(module: nn.Module) -> bool:
    return isinstance(getattr(type(module), "work_kind", None), str) or "Gating" in type(module).__name__


# -- the profiler's events, and who they belong to -----------------------------------------


@dataclass(frozen=True)
class Op:
    """One profiler event, reduced to what attribution needs."""

    name: str
    self_us: float
    """Its own time: host time on a CPU, device time on a GPU (microseconds, all iterations)."""
    parent: int | None = None
    """Index of the enclosing event in the same list."""
    seq: int = -1
    """Autograd sequence number (forward ops that create a node; their backward carries the same)."""
    thread: int = 0
    fwd_thread: int = 0
    """For a backward event: the thread of the forward op that made its node."""
    annotation: bool = False
    """A ``record_function`` range (vbench's module scopes, torch's ``Optimizer.step``): not an operator."""


@dataclass
class Attribution:
    """Operator self time by module (the innermost one), forward and backward, in microseconds."""

    forward_us: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    backward_us: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    outside_us: float = 0.0
    """Operators outside every module's forward and its backward nodes."""
    annotation_us: float = 0.0
    """Self time of the ranges themselves: Python between operators, and the hooks' own cost."""

    @property
    def total_us(self) -> float:
        """Every operator's self time, wherever it went."""
        return sum(self.forward_us.values()) + sum(self.backward_us.values()) + self.outside_us


def attribute(ops: Sequence[Op]) -> Attribution:
    """Give every operator's self time to the innermost module range it ran in, or, for a backward
    operator, to the module whose forward made its autograd node; the rest is ``outside_us``."""

    def home(i: int) -> tuple[str, str | tuple[int, int]] | None:
        j: int | None = i
        while j is not None:
            op = ops[j]
            if op.name.startswith(SCOPE):
                return "forward", op.name[len(SCOPE) :]
            if op.name.startswith(_BACKWARD):
                return "backward", (op.fwd_thread, op.seq)
            j = op.parent
        return None

    homes = [None if op.annotation else home(i) for i, op in enumerate(ops)]
    made_by: dict[tuple[int, int], str] = {}
    for op, where in zip(ops, homes):
        if where is not None and where[0] == "forward" and op.seq >= 0:
            made_by.setdefault((op.thread, op.seq), str(where[1]))

    out = Attribution()
    for op, where in zip(ops, homes):
        if op.annotation:
            out.annotation_us += op.self_us
        elif where is None:
            out.outside_us += op.self_us
        elif where[0] == "forward":
            out.forward_us[str(where[1])] += op.self_us
        else:
            module = made_by.get(where[1])  # type: ignore[arg-type]
            if module is None:
                out.outside_us += op.self_us  # AccumulateGrad, the loss's backward
            else:
                out.backward_us[module] += op.self_us
    return out


@contextlib.contextmanager
def module_scopes(model: nn.Module) -> Iterator[None]:
    """A profiler range named ``SCOPE + module name`` around every module's forward (root: ``""``)."""
    from torch.autograd.profiler import record_function

    open_ranges: list[Any] = []
    handles = []
    for name, module in model.named_modules():

        def pre(_m: nn.Module, _i: Any, name: str = name) -> None:
            scope = record_function(SCOPE + name)
            scope.__enter__()
            open_ranges.append(scope)

        def post(_m: nn.Module, _i: Any, _o: Any) -> None:
            if open_ranges:
                open_ranges.pop().__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        while open_ranges:
            open_ranges.pop().__exit__(None, None, None)


def _ops(events: Sequence[Any], device: bool) -> list[Op]:
    """``torch.profiler`` FunctionEvents as :class:`Op` records (device self time when ``device``)."""
    index = {id(e): i for i, e in enumerate(events)}
    out = []
    for e in events:
        parent = e.cpu_parent
        self_us = e.self_device_time_total if device else e.self_cpu_time_total
        out.append(
            Op(
                name=e.name,
                self_us=float(self_us),
                parent=None if parent is None else index.get(id(parent)),
                seq=int(e.sequence_nr),
                thread=int(e.thread),
                fwd_thread=int(getattr(e, "fwd_thread", 0) or 0),
                annotation=bool(getattr(e, "is_user_annotation", False)) or e.name.startswith(SCOPE),
            )
        )
    return out


# -- the breakdown ----------------------------------------------------------------------------


def _stage_names(model: nn.Module, macs: Mapping[str, int]) -> list[str]:
    """The model's stages: its children, with a child that holds most of the MACs opened up
    (Inception nets keep every stage inside one ``features`` module)."""
    total = max(macs.get("", 0), 1)
    names: list[str] = []
    for name, child in model.named_children():
        if macs.get(name, 0) > 0.8 * total and next(child.children(), None) is not None:
            names += [f"{name}.{sub}" for sub, _ in child.named_children()]
        else:
            names.append(name)
    return names


def _with_children(own: Mapping[str, float]) -> dict[str, float]:
    """Each module's time with its children's: every module's own time added to it and to all its ancestors."""
    total: dict[str, float] = defaultdict(float)
    for name, us in own.items():
        parts = name.split(".") if name else []
        for ancestor in {"", *(".".join(parts[: i + 1]) for i in range(len(parts)))}:
            total[ancestor] += us
    return total


def _own_macs(model: nn.Module, macs: Mapping[str, int], kinds: Mapping[str, str]) -> dict[str, int]:
    """MACs by kind, each module's own (its total less its children's): the leaves' layers, and the work a
    composite module does itself (attention's two matmuls in the attention module's forward), each under its kind."""
    kind_macs: dict[str, int] = defaultdict(int)
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        own = macs.get(name, 0) - sum(macs.get(prefix + child, 0) for child, _ in module.named_children())
        kind_macs[kinds[name]] += own
    return kind_macs


@dataclass(frozen=True)
class _Lines:
    """Makes the lines of one breakdown: microseconds over all iterations to milliseconds per iteration, MACs to
    GMACs per clip, and shares of the whole."""

    iterations: int
    whole_us: float
    macs: Mapping[str, int]
    traffic: Mapping[str, int]
    dtype: str
    train: bool
    roofline: Any
    batch: int

    def _ms(self, us: float) -> float:
        return us / (1000.0 * self.iterations)

    def _share(self, ms: float) -> float:
        return ms / self._whole_ms if self._whole_ms else 0.0

    @functools.cached_property
    def _whole_ms(self) -> float:
        return self._ms(self.whole_us)

    @functools.cached_property
    def _whole_macs(self) -> int:
        return max(self.macs.get("", 0), 1)

    @staticmethod
    def _rate(m: int, ms: float) -> float | None:
        return m / 1e9 / (ms / 1e3) if ms > 0 and m else None

    def module(
        self, name: str, shown: str, depth: int, typ: str, kind: str, f_us: float, b_us: float, params: int
    ) -> ModuleTime:
        m = self.macs.get(name, 0)
        ms = self._ms(f_us + b_us)
        traffic = self.traffic.get(name)
        flops_intensity = intensity(m, traffic, params, self.dtype) if traffic else None
        bound = (
            self.roofline.bound(flops_intensity) if self.roofline is not None and flops_intensity is not None else None
        )
        return ModuleTime(
            module=shown, depth=depth, type=typ, kind=kind, params=params, gmacs=m / self.batch / 1e9,
            forward_ms=self._ms(f_us), backward_ms=self._ms(b_us) if self.train else None, latency_ms=ms,
            pct_time=self._share(ms), pct_macs=m / self._whole_macs, gmacs_per_s=self._rate(m, ms),
            intensity=flops_intensity, bound=bound,
        )  # fmt: skip

    def kind(self, kind: str, us: float, m: int, all_macs: int) -> KindTime:
        ms = self._ms(us)
        return KindTime(kind=kind, latency_ms=ms, pct_time=self._share(ms), gmacs=m / self.batch / 1e9,
                        pct_macs=m / all_macs, gmacs_per_s=self._rate(m, ms))  # fmt: skip


def _module_lines(
    model: nn.Module, found: Attribution, kinds: Mapping[str, str], make: _Lines
) -> tuple[list[ModuleTime], dict[str, ModuleTime]]:
    """Every module's line (its children summed in), in the model's order, and the lines by name."""
    from bench.measure.counting import param_count

    fwd, bwd = _with_children(found.forward_us), _with_children(found.backward_us)
    root_type = type(model).__name__
    by_name: dict[str, ModuleTime] = {}
    lines: list[ModuleTime] = []
    for name, module in model.named_modules():
        depth = 0 if name == "" else name.count(".") + 1
        entry = make.module(
            name, name or root_type, depth, type(module).__name__, kinds[name], fwd[name], bwd[name],
            param_count(module)[0],
        )  # fmt: skip
        by_name[name] = entry
        lines.append(entry)
        if name == "":
            # The root's own operators and what runs outside the model are depth-1 lines of their own,
            # so that the depth-1 lines hold every operator's time.
            own_f, own_b = found.forward_us.get("", 0.0), found.backward_us.get("", 0.0)
            lines.append(make.module("\0", ROOT_OPS, 1, root_type, "other", own_f, own_b, 0))
            if make.train or found.outside_us:
                lines.append(make.module("\0", OUTSIDE, 1, "", "other", found.outside_us, 0.0, 0))
    return lines, by_name


def _kind_lines(model: nn.Module, found: Attribution, kinds: Mapping[str, str], make: _Lines) -> list[KindTime]:
    """Time and MACs by kind of work, in :data:`KINDS` order (kinds with neither are left out)."""
    kind_us: dict[str, float] = defaultdict(float)
    for name, us in list(found.forward_us.items()) + list(found.backward_us.items()):
        kind_us[kinds.get(name, "other")] += us
    kind_us["other"] += found.outside_us
    kind_macs = _own_macs(model, make.macs, kinds)
    all_macs = max(sum(kind_macs.values()), 1)  # shares of the model's MACs: they add up to one exactly
    return [
        make.kind(kind, kind_us.get(kind, 0.0), kind_macs.get(kind, 0), all_macs)
        for kind in KINDS
        if kind_us.get(kind, 0.0) or kind_macs.get(kind, 0)
    ]


def _breakdown_rows(
    model: nn.Module, found: Attribution, make: _Lines
) -> tuple[list[ModuleTime], list[KindTime], dict[str, ModuleTime]]:
    """Per-module lines (every module, children summed in), per-kind totals, and lines by name."""
    kinds = _kinds(model)
    lines, by_name = _module_lines(model, found, kinds, make)
    return lines, _kind_lines(model, found, kinds, make), by_name


@dataclass(frozen=True)
class ProfiledRun:
    """What :func:`profile_model` measured: the attribution, each iteration's wall time (s), and
    ``torch.profiler``'s own total of operator self time (us, all iterations)."""

    attribution: Attribution
    walls: list[float]
    profiler_us: float


def profile_model(
    model: nn.Module,
    fn: Callable[[], object],
    device: str,
    iterations: int,
    *,
    trace: Path | None = None,
    now: Callable[[], float] = time.perf_counter,
    between: Callable[[], None] | None = None,
) -> ProfiledRun:
    """Run ``fn`` (an iteration of ``model``) ``iterations`` times, each under its own ``torch.profiler``
    session with module ranges; attribute the operators' time (device time on CUDA) and total it as
    ``key_averages`` does. ``between`` runs before each profiled iteration, without instrumentation (the
    uninstrumented samples, interleaved so that a drifting machine moves both alike); ``trace`` gets the
    last profiled iteration."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    found = Attribution()
    walls: list[float] = []
    profiler_us = 0.0
    for i in range(iterations):
        if between is not None:
            between()
        with module_scopes(model), profile(activities=activities) as prof:
            sync()
            start = now()
            fn()
            sync()
            walls.append(now() - start)
        part = attribute(_ops(prof.events(), device=cuda))
        for mine, theirs in ((found.forward_us, part.forward_us), (found.backward_us, part.backward_us)):
            for name, us in theirs.items():
                mine[name] += us
        found.outside_us += part.outside_us
        found.annotation_us += part.annotation_us
        profiler_us += sum(
            (a.self_device_time_total if cuda else a.self_cpu_time_total)
            for a in prof.key_averages()
            if not (getattr(a, "is_user_annotation", False) or str(a.key).startswith(SCOPE))
        )
        if trace is not None and i == iterations - 1:
            trace.parent.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(trace))
    return ProfiledRun(found, walls, float(profiler_us))


def write_trace(config: Any, path: Path, iterations: int = 2) -> Path:
    """Run ``config`` for ``iterations`` under ``torch.profiler`` with module ranges; write a Chrome trace."""
    from torch.profiler import ProfilerActivity, profile

    from bench.measure.latency import prepare, step_fn

    model, x = prepare(config)
    fn = step_fn(model, x, config)
    fn()  # warm-up: the trace shows steady iterations
    cuda = config.device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with module_scopes(model), profile(activities=activities) as prof:
        for _ in range(iterations):
            fn()
        if cuda:
            torch.cuda.synchronize()
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    return path


def _train_macs(analysis: Any) -> dict[str, int]:
    """Forward + backward MACs per module: each module's forward MACs scaled by the whole model's exact
    training-to-forward ratio (about 3: the backward computes the gradients of the inputs and of the weights).

    FlopCounterMode's own per-module split of the backward is not used: its module tracker gives backward
    work to whichever module's hook ran last (in I3D, most of it to ``dropout``).
    """
    forward = analysis.by_module()
    ratio = analysis.train_total() / max(forward.get("", 0), 1)
    return {name: round(m * ratio) for name, m in forward.items()}


def time_breakdown(
    config: Any,
    *,
    iterations: int = 5,
    warmup: int = 3,
    repeats: int = 10,
    trace: Path | None = None,
    roofline: Any = None,
    now: Callable[[], float] = time.perf_counter,
    expected_shape: tuple[int, ...] | None = None,
) -> Breakdown:
    """Measure ``config`` (a :class:`bench.results.records.Config`) without, then with, instrumentation.

    The uninstrumented latency is the median of about ``2 x repeats`` iterations, timed
    as ``vbench profile`` times them, in rounds between the ``iterations`` profiled ones, which run under
    ``torch.profiler`` with module ranges, and their operator times are
    attributed (:func:`attribute`) and averaged per iteration. ``trace`` writes
    the profiled iterations as a Chrome/Perfetto trace.
    """
    from bench.measure.counting import MacAnalysis, build_meta
    from bench.measure.latency import clock_for, prepare, step_fn
    from bench.measure.timing import Measurement, sample
    from bench.results.records import SamplePolicy

    train = config.mode == "train"
    analysis = MacAnalysis(build_meta(config.arch, **dict(config.arch_kwargs)), config.input_shape)
    macs = _train_macs(analysis) if train else analysis.by_module()
    traffic = analysis.traffic_by_module()

    model, x = prepare(config)
    if expected_shape is not None:  # a model that returns the wrong thing is an error, not a latency
        step_fn(model, x, dataclasses.replace(config, mode="infer"), expected_shape)()
    fn = step_fn(model, x, config)
    # Uninstrumented samples in rounds between the profiled iterations: a machine that drifts (another job,
    # a clock change) moves the whole and its parts alike.
    clock = clock_for(config.device)
    times: list[float] = []
    per_round = SamplePolicy(warmup=0, repeats=max(1, -(-2 * repeats // (iterations + 1))), max_time=120.0)
    for _ in range(warmup):
        fn()

    def uninstrumented() -> None:
        times.extend(sample(fn, per_round, clock).times_s)

    run = profile_model(model, fn, config.device, iterations, trace=trace, now=now, between=uninstrumented)
    uninstrumented()
    whole = Measurement(tuple(times), warmup=warmup)
    found, walls, profiler_us = run.attribution, run.walls, run.profiler_us
    make = _Lines(iterations, found.total_us, macs, traffic, config.dtype, train, roofline, config.batch)
    lines, kinds, by_name = _breakdown_rows(model, found, make)
    stages = [by_name[n] for n in _stage_names(model, analysis.by_module()) if n in by_name]
    walls.sort()
    return Breakdown(
        arch=config.arch,
        input_shape=tuple(config.input_shape),
        device=config.device,
        dtype=config.dtype,
        mode=config.mode,
        latency_ms=whole.median * 1e3,
        latency_iqr_ms=whole.iqr * 1e3,
        profiled_ms=walls[len(walls) // 2] * 1e3,
        iterations=iterations,
        attributed_ms=found.total_us / 1000 / iterations,
        profiler_ms=profiler_us / 1000 / iterations,
        annotation_ms=found.annotation_us / 1000 / iterations,
        modules=lines,
        kinds=kinds,
        stages=stages,
        roofline=roofline.to_dict() if roofline is not None else None,
    )
