"""Counting without running: parameters, MACs, training MACs, activations.

Convention (the README's and every table's): **MACs** are the multiply-
accumulates of convolutions, linear layers and matmuls, what published tables
call "GFLOPs"; **FLOPs = 2 x MACs**. Normalisation, activations and pooling are
not counted.

Models are built and run on the ``meta`` device, where tensors have shapes but
no data: ``torch.utils.flop_counter.FlopCounterMode`` sees every operator and
nothing is computed, so counting every architecture at its paper input takes
seconds on a laptop CPU.

One analysis, many views (fvcore's ``FlopCountAnalysis`` shape):
:class:`MacAnalysis` runs one forward of one model at one input shape and
answers every question about it (total, by module, by operator, activations,
parameters, operators it could not count). :func:`count` and
:func:`module_breakdown` are thin wrappers that build a registered architecture
and read the analysis. The MAC counters themselves are a table,
:data:`COUNTERS`, read by :func:`count_with`; the counting rules (which operators are free,
the formulas FlopCounterMode lacks) are :mod:`bench.measure.mac_rules`'s. The functions here return
numbers; formatting lives in :mod:`bench.report.tables`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

import archs
from bench.measure.mac_rules import MAC_FREE_OPS, RecordingCounter, counter_mode, macs_of, total_macs

__all__ = [
    "COUNTERS",
    "Counts",
    "MacAnalysis",
    "MacCount",
    "ModuleStats",
    "build_meta",
    "count",
    "count_macs",
    "count_with",
    "module_breakdown",
    "param_count",
]

InputShape = tuple[int, int, int, int, int]
"""A batch of clips: (B, C, T, H, W)."""


@dataclass(frozen=True)
class Counts:
    """Exact counts for one model at one input (raw integers; ``gmacs`` etc. live in reports).

    Attributes:
        params: All parameters.
        trainable_params: Parameters with ``requires_grad``.
        macs: Forward multiply-accumulates for the whole batch.
        train_macs: Forward + backward multiply-accumulates for the whole batch, or
            None when not counted.
        activations: Elements written by the leaf modules in one forward.
        output_shape: Shape of the logits.
        peak_activation: Elements of the largest output one leaf module writes (what an
            inference must hold at once, beside its input: the basis of the memory estimate).
    """

    params: int
    trainable_params: int
    macs: int
    train_macs: int | None
    activations: int
    output_shape: tuple[int, ...]
    peak_activation: int = 0
    traffic: int = 0
    """Activation elements the leaf modules read and write in one forward (arithmetic intensity's bytes)."""
    saved_activations: int = 0
    """Elements a training forward keeps for the backward (autograd's saved tensors, attention's scores included
    where the CPU's kernel keeps them; :func:`bench.measure.held.saved_for_backward`); 0 when not counted."""
    largest_output: int = 0
    """Elements of the largest tensor any operator writes in an inference forward, attention's own operators
    included (:func:`bench.measure.held.largest_output`); 0 when not counted."""

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class ModuleStats:
    """One module's share of a forward (``macs`` and ``activations`` include its children)."""

    name: str
    type: str
    depth: int
    params: int
    macs: int
    activations: int
    traffic: int = 0
    """Activation elements its leaf modules read and write."""


def param_count(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters; shared tensors are counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


def build_meta(arch: str, **arch_kwargs: Any) -> nn.Module:
    """Build a registered architecture on the meta device, in eval mode."""
    with torch.device("meta"):
        model = archs.create_model(arch, **arch_kwargs)
    return model.eval()


@contextmanager
def _activation_hooks(model: nn.Module) -> Iterator[tuple[dict[str, int], dict[str, int]]]:
    """Record the output (written) and tensor-input (read) elements of every leaf module while open."""
    written: dict[str, int] = {}
    read: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def hook(_m: nn.Module, inputs: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                written[name] = written.get(name, 0) + out.numel()
                read[name] = read.get(name, 0) + sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))

        handles.append(module.register_forward_hook(hook))
    try:
        yield written, read
    finally:
        for h in handles:
            h.remove()


def _model_device(model: nn.Module) -> torch.device:
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("meta") if first is None else first.device


class MacAnalysis:
    """Everything countable about one model at one input shape, from one forward pass.

    Like fvcore's ``FlopCountAnalysis``: built cheaply, it runs the model once, on
    first use, under ``FlopCounterMode`` with forward hooks on the leaf modules,
    and every view (``total``, ``by_module``, ``by_operator``, activations,
    ``unsupported_ops`` ...) reads that one record. The model runs on its own
    device (``meta`` for :func:`build_meta`'s models: nothing is computed) under
    ``torch.no_grad()``, in whatever mode the caller left it (``build_meta``: eval).

    Module names are ``named_modules()``'s, the root being ``""``. MACs of a module
    include its children's; activations are the elements written by the leaf
    modules under it. Operator names are ATen's (``aten.convolution``).

    Training MACs (:meth:`train_total`) need a backward, so they take a second
    pass, run only when asked for and kept.
    """

    def __init__(self, model: nn.Module, shape: Sequence[int]) -> None:
        self.model = model
        self.shape = tuple(shape)
        self._counter: RecordingCounter | None = None
        self._written: dict[str, int] = {}
        self._read: dict[str, int] = {}
        self._output: torch.Size | str = ""
        self._by_module: dict[str, dict[str, int]] | None = None
        self._train_macs: int | None = None

    # -- the passes -----------------------------------------------------------------------

    def _input(self) -> torch.Tensor:
        return torch.empty(self.shape, device=_model_device(self.model))

    def _forward(self) -> RecordingCounter:
        if self._counter is None:
            x = self._input()
            with _activation_hooks(self.model) as (written, read), torch.no_grad(), RecordingCounter() as counter:
                out = self.model(x)
            self._written, self._read = written, read
            self._output = out.shape if isinstance(out, torch.Tensor) else type(out).__name__
            self._counter = counter
        return self._counter

    def train_total(self) -> int:
        """Forward + backward MACs of the whole batch (a second pass, with autograd, on first call).

        The model stays in its mode: in eval mode the MACs are those of training
        (normalisation is not counted), and BatchNorm does not refuse a batch of one
        clip whose last feature map is 1x1x1.
        """
        if self._train_macs is None:
            x = self._input()
            with counter_mode() as both:
                self.model(x).sum().backward()
            self._train_macs = total_macs(both)
        return self._train_macs

    # -- MACs ---------------------------------------------------------------------------

    def total(self, module: str = "") -> int:
        """Forward MACs of the whole batch, of the model or of one module (with its children)."""
        if module == "":
            return total_macs(self._forward())
        return self.by_module().get(module, 0)

    def _tracked(self) -> dict[str, dict[str, int]]:
        """FLOPs by module (relative names) and operator, as FlopCounterMode recorded them.

        A container the model never calls itself (a pathway whose stem and stages the
        parent calls one by one, a ``ModuleList`` of blocks) is recorded by no one;
        it gets the sum of its children's, so that every module holds the work done
        inside it.
        """
        if self._by_module is None:
            root = type(self.model).__name__
            tracked = {
                _relative(key, root): {str(op): int(f) for op, f in per_op.items()}
                for key, per_op in self._forward().get_flop_counts().items()
                if key != "Global"
            }
            for name, module in reversed(list(self.model.named_modules())):  # children before their parents
                if name in tracked:
                    continue
                summed: Counter[str] = Counter()
                for child, _ in module.named_children():
                    summed.update(tracked.get(f"{name}.{child}" if name else child, {}))
                if summed:
                    tracked[name] = dict(summed)
            self._by_module = tracked
        return self._by_module

    def by_module(self) -> dict[str, int]:
        """MACs of every module (every depth, in module order; 0 for a module without any)."""
        tracked = self._tracked()
        return {name: macs_of(sum(tracked.get(name, {}).values())) for name, _ in self.model.named_modules()}

    def by_operator(self, module: str = "") -> dict[str, int]:
        """MACs by operator, of the model or of one module."""
        if module == "":
            per_op = {str(op): int(f) for op, f in self._forward().get_flop_counts().get("Global", {}).items()}
        else:
            per_op = self._tracked().get(module, {})
        return {op: macs_of(f) for op, f in per_op.items()}

    def by_module_and_operator(self) -> dict[str, dict[str, int]]:
        """MACs by operator for every module that has any."""
        return {name: {op: macs_of(f) for op, f in per_op.items()} for name, per_op in self._tracked().items()}

    def uncounted_ops(self, module: str = "") -> dict[str, int]:
        """Every operator seen and not counted, with how often it ran (MAC-free ones included)."""
        uncounted = self._forward().uncounted
        if module == "":
            return dict(uncounted.get("Global", {}))
        root = type(self.model).__name__
        by_name = {_relative(key, root): ops for key, ops in uncounted.items() if key != "Global"}
        return dict(by_name.get(module, {}))

    def unsupported_ops(self, module: str = "") -> dict[str, int]:
        """Operators seen, not counted, and not declared free in :data:`MAC_FREE_OPS`.

        Empty when the total is complete; otherwise each name is work the total
        misses (a matrix-vector product, a distance matrix ...), with its count.
        """
        return {op: n for op, n in self.uncounted_ops(module).items() if op not in MAC_FREE_OPS}

    # -- activations, output, parameters ------------------------------------------------

    def activations_by_leaf(self) -> dict[str, int]:
        """Elements written by each leaf module that returned a tensor."""
        self._forward()
        return dict(self._written)

    def activations_by_module(self) -> dict[str, int]:
        """Elements written by the leaf modules under each module (the root: all of them)."""
        return _sum_up(self.model, self.activations_by_leaf())

    def traffic_by_leaf(self) -> dict[str, int]:
        """Elements each leaf module that returned a tensor moves: tensor inputs read + output written."""
        self._forward()
        return {name: n + self._read.get(name, 0) for name, n in self._written.items()}

    def traffic_by_module(self) -> dict[str, int]:
        """:meth:`traffic_by_leaf` summed under each module (the root: all of them)."""
        return _sum_up(self.model, self.traffic_by_leaf())

    def traffic(self) -> int:
        """Activation elements the leaf modules read and write in one forward (weights not included)."""
        return sum(self.traffic_by_leaf().values())

    def activations(self) -> int:
        """Elements written by all the leaf modules in one forward."""
        return sum(self.activations_by_leaf().values())

    def peak_activation(self) -> int:
        """Elements of the largest output that one leaf module writes."""
        return max(self.activations_by_leaf().values(), default=0)

    def output_shape(self) -> tuple[int, ...]:
        """The logits' shape; a model that returns anything but one tensor is broken.

        Raises:
            TypeError: if the model did not return one tensor.
        """
        self._forward()
        if isinstance(self._output, str):
            raise TypeError(f"the model returned {self._output}, not a tensor of logits")
        return tuple(self._output)

    def params(self) -> int:
        return param_count(self.model)[0]

    def trainable_params(self) -> int:
        return param_count(self.model)[1]

    def params_by_module(self, *, trainable: bool = False) -> dict[str, int]:
        """Parameters of every module with its children's (shared tensors counted once)."""
        return {name: param_count(m)[1 if trainable else 0] for name, m in self.model.named_modules()}

    # -- records ------------------------------------------------------------------------

    def counts(self, *, train: bool = False) -> Counts:
        """The record for results rows; ``train`` adds the training MACs (a second pass).

        What the memory estimate needs beyond it (``saved_activations``,
        ``largest_output``) takes passes of its own: :func:`count` adds them when asked.
        """
        total, trainable = param_count(self.model)
        macs = self.total()
        return Counts(
            params=total,
            trainable_params=trainable,
            macs=macs,
            train_macs=self.train_total() if train else None,
            activations=self.activations(),
            output_shape=self.output_shape(),
            peak_activation=self.peak_activation(),
            traffic=self.traffic(),
        )

    def module_stats(self, *, max_depth: int | None = None) -> list[ModuleStats]:
        """One row per module, in module order (root first, named after its class).

        Args:
            max_depth: Keep modules at most this deep (the root is depth 0).
        """
        macs, acts, moved = self.by_module(), self.activations_by_module(), self.traffic_by_module()
        root = type(self.model).__name__
        rows = []
        for name, module in self.model.named_modules():
            depth = 0 if name == "" else name.count(".") + 1
            if max_depth is not None and depth > max_depth:
                continue
            rows.append(
                ModuleStats(
                    name=name or root,
                    type=type(module).__name__,
                    depth=depth,
                    params=param_count(module)[0],
                    macs=macs[name],
                    activations=acts[name],
                    traffic=moved[name],
                )
            )
        return rows


def _sum_up(model: nn.Module, by_leaf: Mapping[str, int]) -> dict[str, int]:
    """Per-leaf numbers summed under every module of ``model`` (the root, ``""``: all of them)."""
    per_module = dict.fromkeys((name for name, _ in model.named_modules()), 0)
    for leaf, n in by_leaf.items():
        parts = leaf.split(".") if leaf else []
        for ancestor in {"", *(".".join(parts[: i + 1]) for i in range(len(parts)))}:
            per_module[ancestor] = per_module.get(ancestor, 0) + n
    return per_module


def _relative(key: str, root: str) -> str:
    """FlopCounterMode's module key (``ResNet3d.layer1.0``) as a ``named_modules()`` name."""
    return key[len(root) + 1 :] if key.startswith(root + ".") else ("" if key == root else key)


def count_macs(model: nn.Module, shape: Sequence[int]) -> int:
    """Forward MACs of ``model`` on a batch of the given shape, on the model's device."""
    return MacAnalysis(model, shape).total()


def count(arch: str, shape: InputShape, *, train: bool = False, memory: bool = False, **arch_kwargs: Any) -> Counts:
    """Parameters, MACs (and, with ``train``, forward + backward MACs) of ``arch`` at ``shape``.

    Nothing is computed: the model lives on the meta device. With ``memory``, the memory estimate's figures
    come with it (what a measured run needs): the largest tensor of an inference, and, with ``train``, what a
    training forward keeps for the backward (:mod:`bench.measure.held`, one more pass each).
    """
    analysis = MacAnalysis(build_meta(arch, **arch_kwargs), shape)
    return _with_memory(analysis, train, saved=train) if memory else analysis.counts(train=train)


def _with_memory(analysis: MacAnalysis, train: bool, *, saved: bool) -> Counts:
    """``analysis.counts(train=train)`` with the figures of the memory estimate (:func:`count`); ``saved``: with
    what a training forward keeps."""
    from bench.measure.held import largest_output, saved_for_backward

    counts = analysis.counts(train=train)
    return dataclasses.replace(
        counts,
        saved_activations=saved_for_backward(analysis.model, analysis.shape) if saved else 0,
        largest_output=largest_output(analysis.model, analysis.shape),
    )


def module_breakdown(
    arch: str, shape: InputShape, *, max_depth: int | None = None, **arch_kwargs: Any
) -> list[ModuleStats]:
    """Per-module parameters, MACs and activations, in module order (root first).

    Args:
        max_depth: Keep modules at most this deep (the root is depth 0).
    """
    return MacAnalysis(build_meta(arch, **arch_kwargs), shape).module_stats(max_depth=max_depth)


# -- the MAC counters, a table ----------------------------------------------------------


class MacCount(Protocol):
    """What a counter returns: forward MACs and the operators it could not count."""

    def total(self) -> int: ...

    def unsupported_ops(self) -> Mapping[str, int]: ...


def _torch_counter(arch: str, shape: Sequence[int], **arch_kwargs: Any) -> MacCount:
    return MacAnalysis(build_meta(arch, **arch_kwargs), shape)


def _fvcore_counter(arch: str, shape: Sequence[int], **arch_kwargs: Any) -> MacCount:
    # bench.measure.fvcore_counter imports fvcore only inside its functions: importing this
    # module never needs fvcore.
    from bench.measure.fvcore_counter import fvcore_analysis

    return fvcore_analysis(arch, shape, **arch_kwargs)


COUNTERS: dict[str, Callable[..., MacCount]] = {"torch": _torch_counter, "fvcore": _fvcore_counter}
"""MAC counter name (``--counter``) -> ``(arch, shape, **arch_kwargs) -> MacCount``.

``torch``: :class:`MacAnalysis` on the meta device. ``fvcore``: fvcore's
``FlopCountAnalysis``, an independent check that traces a real forward on the
CPU (raises ``UsageError`` where fvcore is not installed).
"""


def count_with(
    counter: str, arch: str, shape: InputShape, train: bool = False, memory: bool = False, **arch_kwargs: Any
) -> Counts:
    """:func:`count`, with the forward MACs from the counter named ``counter``.

    Parameters, activations, output shape and, with ``memory``, the memory
    estimate's figures (:func:`count`) always come from the meta-device
    analysis. A counter whose result is that analysis (``torch``) gives every
    field, training MACs included when ``train``; any other counter (``fvcore``)
    gives the forward MACs only, so ``train_macs`` is None.

    Raises:
        ValueError: if ``counter`` is not a key of :data:`COUNTERS`.
    """
    if counter not in COUNTERS:
        raise ValueError(f"unknown MAC counter {counter!r}; known: {', '.join(COUNTERS)}")
    result = COUNTERS[counter](arch, shape, **arch_kwargs)
    if isinstance(result, MacAnalysis):
        return _with_memory(result, train, saved=train) if memory else result.counts(train=train)
    analysis = MacAnalysis(build_meta(arch, **arch_kwargs), shape)
    counts = _with_memory(analysis, False, saved=train) if memory else analysis.counts()
    return dataclasses.replace(counts, macs=int(result.total()), train_macs=None)
