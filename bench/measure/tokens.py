"""Tokens per stage (``vbench inspect NAME --tokens``), read from output shapes on the meta device.

A transformer's cost follows its token count (attention grows with its square),
a CNN's with the positions its feature maps hold; both are read the same way,
from the shape of what each module returns in one forward of a batch of one
clip on the meta device (nothing is computed). Nothing here knows an
architecture: a module's output is read by its rank and its fit in the clip.

- 5-D: ``(B, C, T, H, W)``, or channels last ``(B, T, H, W, C)`` when only that
  reading fits the clip (its T, H, W no larger than the input's): tokens =
  T x H x W, the grid shown, width = C.
- 4-D: frames folded into the batch, ``(B*T, C, H, W)`` (or ``(B*T, H, W, C)``
  by the same rule): tokens = T x H x W.
- 3-D: a sequence ``(B, N, C)`` (``(B*k, N, C)``: k sequences of N per clip):
  tokens = k x N, class tokens included.
- 2-D: ``(B, C)``: one vector per clip (a pooled feature, logits): 1 token
  (``(B*k, C)``: k).

A module that returns a tuple is read by its first tensor. A container the
model never calls as a whole (a ``ModuleList`` of blocks whose parent calls each
block) shows its called descendants instead, so every stage appears.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

__all__ = ["StageTokens", "read_tokens", "stage_tokens"]


@dataclass(frozen=True)
class StageTokens:
    """What one module hands on, per clip."""

    name: str
    type: str
    depth: int
    shape: tuple[int, ...]
    """The output's shape at batch 1 (the first tensor of a tuple)."""
    grid: tuple[int, ...]
    """T, H, W of a feature map (frames, or k sequences, and N for a folded sequence); () for a flat vector."""
    tokens: int
    """Positions per clip: T x H x W, or the sequence's length."""
    width: int
    """Channels (or features) per token."""


def _fits(grid: Sequence[int], clip: Sequence[int]) -> bool:
    return all(g <= c for g, c in zip(grid, clip, strict=True))


def read_tokens(shape: Sequence[int], clip: Sequence[int], batch: int = 1) -> tuple[tuple[int, ...], int, int]:
    """``(grid, tokens, width)`` of one output ``shape``, for an input clip of ``clip`` = (T, H, W) at ``batch``."""
    shape = tuple(shape)
    if not shape:
        return (), 1, 1
    k = max(shape[0] // batch, 1)  # frames or sequences folded into the batch, per clip
    if len(shape) == 5:
        thw, thw_last = shape[2:], shape[1:4]
        if _fits(thw, clip) or not _fits(thw_last, clip):
            return thw, thw[0] * thw[1] * thw[2], shape[1]
        return thw_last, thw_last[0] * thw_last[1] * thw_last[2], shape[4]
    if len(shape) == 4:
        hw, hw_last = shape[2:], shape[1:3]
        if _fits(hw, clip[1:]) or not _fits(hw_last, clip[1:]):
            return (k, *hw), k * hw[0] * hw[1], shape[1]
        return (k, *hw_last), k * hw_last[0] * hw_last[1], shape[3]
    if len(shape) == 3:
        return ((k, shape[1]) if k > 1 else (shape[1],)), k * shape[1], shape[2]
    return ((k,) if k > 1 else ()), k, shape[-1]


@contextmanager
def _output_shapes(model: nn.Module) -> Iterator[dict[str, tuple[int, ...]]]:
    """Every module's output shape (its first tensor) while open; a module called twice keeps its last."""
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(_m: nn.Module, _inputs: Any, out: Any, name: str) -> None:
        first = next((t for t in tree_leaves(out) if isinstance(t, torch.Tensor)), None)
        if first is not None:
            shapes[name] = tuple(first.shape)

    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: hook(mod, i, o, name))
        for name, m in model.named_modules()
        if name
    ]
    try:
        yield shapes
    finally:
        for h in handles:
            h.remove()


def stage_tokens(model: nn.Module, shape: Sequence[int], *, max_depth: int = 1) -> list[StageTokens]:
    """Tokens of every module at most ``max_depth`` deep (1: the model's children), in module order.

    A module at that depth that the forward never called is replaced by its called
    descendants nearest to it. The model runs once, on its own device (``meta`` for
    :func:`bench.measure.counting.build_meta`'s models), under ``no_grad``.
    """
    first = next(iter(model.parameters()), None)
    x = torch.empty(tuple(shape), device=first.device if first is not None else "meta")
    with _output_shapes(model) as shapes, torch.no_grad():
        model(x)
    batch, clip = shape[0], tuple(shape[2:])
    modules = dict(model.named_modules())
    rows = []

    def visit(name: str, depth: int, stand_in: bool) -> None:
        # stand_in: an ancestor within max_depth was never called, so its nearest called descendants show.
        if name in shapes:
            grid, tokens, width = read_tokens(shapes[name], clip, batch)
            out = (1, *shapes[name][1:]) if shapes[name][0] == batch else shapes[name]
            rows.append(StageTokens(name, type(modules[name]).__name__, depth, out, grid, tokens, width))
            if depth >= max_depth or stand_in:
                return
        elif depth >= max_depth:
            stand_in = True
        for child, _ in modules[name].named_children():
            visit(f"{name}.{child}" if name else child, depth + 1, stand_in)

    visit("", 0, False)
    return rows
