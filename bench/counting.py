"""Counting without running: parameters, MACs, training MACs, activations.

Convention (the README's and every table's): **MACs** are the multiply-
accumulates of convolutions, linear layers and matmuls, what published tables
call "GFLOPs"; **FLOPs = 2 x MACs**. Normalisation, activations and pooling are
not counted.

Models are built and run on the ``meta`` device, where tensors have shapes but
no data: ``torch.utils.flop_counter.FlopCounterMode`` sees every operator and
nothing is computed, so counting every architecture at its paper input takes
seconds on a laptop CPU. The functions here return numbers; formatting lives in
:mod:`bench.report`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archs

__all__ = [
    "Counts",
    "ModuleStats",
    "build_meta",
    "count",
    "count_macs",
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


def _macs(counter: FlopCounterMode) -> int:
    # FlopCounterMode counts a multiply-add as 2 FLOPs for every operator it knows.
    flops = counter.get_total_flops()
    return int(flops) // 2


def count_macs(model: nn.Module, shape: InputShape) -> int:
    """Forward MACs of ``model`` on a batch of the given shape, on the model's device."""
    device = next(iter(model.parameters())).device
    x = torch.empty(shape, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return _macs(counter)


@contextmanager
def _activation_hooks(model: nn.Module) -> Iterator[dict[str, int]]:
    """Record the output elements of every leaf module while the context is open."""
    written: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                written[name] = written.get(name, 0) + out.numel()

        handles.append(module.register_forward_hook(hook))
    try:
        yield written
    finally:
        for h in handles:
            h.remove()


def count(arch: str, shape: InputShape, *, train: bool = False, **arch_kwargs: Any) -> Counts:
    """Parameters, MACs (and, with ``train``, forward + backward MACs) of ``arch`` at ``shape``.

    Nothing is computed: the model lives on the meta device.
    """
    model = build_meta(arch, **arch_kwargs)
    total, trainable = param_count(model)
    x = torch.empty(shape, device="meta")
    with _activation_hooks(model) as written, torch.no_grad(), FlopCounterMode(display=False) as fwd:
        out = model(x)
    train_macs = None
    if train:
        # Eval mode: the same MACs as training (normalisation is not counted), and BatchNorm
        # does not refuse a batch of one clip whose last feature map is 1x1x1.
        with FlopCounterMode(display=False) as both:
            model(x).sum().backward()
        train_macs = _macs(both)
    return Counts(
        params=total,
        trainable_params=trainable,
        macs=_macs(fwd),
        train_macs=train_macs,
        activations=sum(written.values()),
        output_shape=_output_shape(out),
        peak_activation=max(written.values(), default=0),
    )


def _output_shape(out: Any) -> tuple[int, ...]:
    """The logits' shape; a model that returns anything but one tensor is broken."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned {type(out).__name__}, not a tensor of logits")
    return tuple(out.shape)


def module_breakdown(
    arch: str, shape: InputShape, *, max_depth: int | None = None, **arch_kwargs: Any
) -> list[ModuleStats]:
    """Per-module parameters, MACs and activations, in module order (root first).

    Args:
        max_depth: Keep modules at most this deep (the root is depth 0).
    """
    model = build_meta(arch, **arch_kwargs)
    x = torch.empty(shape, device="meta")
    with _activation_hooks(model) as written, torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    root = type(model).__name__
    macs: dict[str, int] = {}
    for key, per_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        name = key[len(root) + 1 :] if key.startswith(root + ".") else ("" if key == root else key)
        macs[name] = int(sum(per_op.values())) // 2
    rows = []
    for name, module in model.named_modules():
        depth = 0 if name == "" else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        prefix = name + "."
        acts = sum(v for k, v in written.items() if k == name or k.startswith(prefix) or name == "")
        rows.append(
            ModuleStats(
                name=name or root,
                type=type(module).__name__,
                depth=depth,
                params=param_count(module)[0],
                macs=macs.get(name, 0),
                activations=acts,
            )
        )
    return rows
