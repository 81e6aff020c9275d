"""What a forward holds in memory, counted on the meta device: the basis of the memory estimate.

Two numbers, each from one forward with nothing computed:

- :func:`saved_for_backward`: the elements autograd keeps from a training forward
  until the backward reads them (``torch.autograd.graph.saved_tensors_hooks``),
  each storage once, the model's own parameters and buffers left out. This is
  what a training step holds beyond its weights: it sees the tensors an
  attention module computes in its own forward (its scores, its softmax, the
  relative-position bias), which forward hooks on the leaf modules never see.
- :func:`largest_output`: the elements of the largest tensor any operator writes
  in an inference forward, attention's own operators included.

Why saved tensors rather than every operator's output: what a training step
holds is decided by the backward formulas, not by what the forward writes. A
fused attention kernel writes its N x N scores tile by tile and keeps none of
them; ReLU in place writes a tensor that is already held; and the saved set is
exactly what autograd keeps, with no rule of ours to maintain per operator.

Attention is counted as the CPU runs it. On the meta device
``scaled_dot_product_attention`` always takes its math path (two ``bmm`` and a
softmax, the N x N probabilities saved), while the CPU picks a fused kernel
(flash attention for the CPU) when it can, which keeps only O(N): the query,
key, value, output and one log-sum-exp per query row. :func:`cpu_attention`
asks torch which kernel the CPU would choose for tensors like these
(``torch._fused_sdp_choice``: the kernel depends on dtypes, dropout, the mask
and whether the mask needs a gradient, not on the sizes) and runs that kernel's
meta version, so the saved tensors are the CPU's. A mask that needs a gradient
(a learned relative-position bias) sends the CPU to the math path, and the
N x N probabilities count. CUDA's fused kernels (flash, memory-efficient) keep
the same O(N) set, so the count is an upper bound there too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["cpu_attention", "largest_output", "saved_for_backward"]

_FLASH = torch.nn.attention.SDPBackend.FLASH_ATTENTION.value  # what torch._fused_sdp_choice returns for it


def _stand_in(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor of ``t``'s shape, dtype, ``requires_grad`` and unit last stride (or not) that allocates
    one row: the fused kernels ask for a last dimension of stride 1, and nothing about the other strides."""
    row = (t.shape[-1],) if t.dim() and t.stride(-1) == 1 else ()
    grad = t.requires_grad and t.dtype.is_floating_point
    return torch.zeros(row, dtype=t.dtype, requires_grad=grad).expand(t.shape)


def _cpu_kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, **kw: Any) -> int:
    """The SDPA kernel the CPU chooses for tensors like these (``SDPBackend``'s number)."""
    try:
        stand_ins = (_stand_in(q), _stand_in(k), _stand_in(v))
        return int(torch._fused_sdp_choice(*stand_ins, None if mask is None else _stand_in(mask), **kw))
    except (RuntimeError, TypeError):
        return -1  # no choice: the math path


class _CpuAttention(TorchFunctionMode):
    """``scaled_dot_product_attention`` on meta tensors runs the kernel the CPU would run."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and len(args) >= 3:  # q, k, v given by keyword: the math path
            q, k, v, *rest = args
            names = ("attn_mask", "dropout_p", "is_causal")
            given = dict(zip(names, rest, strict=False)) | kwargs
            mask, dropout, causal = given.get("attn_mask"), given.get("dropout_p", 0.0), given.get("is_causal", False)
            extra = {n: given[n] for n in ("scale", "enable_gqa") if given.get(n) is not None}
            if q.device.type == "meta" and not extra.get("enable_gqa"):
                choice = _cpu_kernel(q, k, v, mask, dropout_p=dropout, is_causal=causal, **extra)
                if choice == _FLASH:
                    scale = {"scale": extra["scale"]} if "scale" in extra else {}
                    kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
                    return kernel(q, k, v, dropout, causal, attn_mask=mask, **scale)[0]
        return func(*args, **kwargs)


@contextmanager
def cpu_attention() -> Iterator[None]:
    """While open, attention on the meta device takes the kernel the CPU would take (see the module's docstring)."""
    with _CpuAttention():
        yield


def _storage_key(t: torch.Tensor) -> int:
    return int(t.untyped_storage()._cdata)


def _model_tensors(model: nn.Module) -> set[int]:
    return {_storage_key(t) for t in itertools.chain(model.parameters(), model.buffers())}


def _device(model: nn.Module) -> torch.device:
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("meta") if first is None else first.device


def saved_for_backward(model: nn.Module, shape: Sequence[int]) -> int:
    """Elements autograd holds from one forward of ``model`` on a batch of ``shape`` until the backward.

    Every storage a backward formula saves counts once (its whole storage: a view
    keeps its base alive), in units of its own dtype's elements; the model's
    parameters and buffers are not activations and are left out. The input clip
    counts when the first layer saves it (a training step holds it). The model
    runs in whatever mode it is in (``build_meta``: eval; dropout saves no mask).
    """
    own = _model_tensors(model)
    held: dict[int, int] = {}
    keep: list[torch.Tensor] = []  # storages stay alive, so their keys are not reused during the pass

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in own and key not in held:
            held[key] = t.untyped_storage().nbytes() // max(t.element_size(), 1)
            keep.append(t)
        return t

    x = torch.empty(tuple(shape), device=_device(model))
    with torch.enable_grad(), cpu_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    keep.clear()
    return sum(held.values())


class _Largest(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.untyped_storage().nbytes() // max(t.element_size(), 1))
        return out


def largest_output(model: nn.Module, shape: Sequence[int]) -> int:
    """Elements of the largest storage any operator writes in one inference forward (attention as on the CPU)."""
    x = torch.empty(tuple(shape), device=_device(model))
    with torch.no_grad(), cpu_attention(), _Largest() as mode:
        model(x)
    return mode.largest
