"""The counting rules, as data and small handles around ``torch.utils.flop_counter.FlopCounterMode``.

Under the convention (``docs/design.md``, "The FLOP convention") an operator is counted (FlopCounterMode's
formulas, and :func:`_attention_formulas` for the CPU's fused attention kernels, which it does not know),
declared free (:data:`MAC_FREE_OPS`, by why), or reported as unsupported: :class:`RecordingCounter` keeps, per
module, every operator it saw and did not count. :class:`bench.measure.counting.MacAnalysis` reads them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MAC_FREE_OPS", "RecordingCounter", "counter_mode", "macs_of", "total_macs"]

# Operators seen in a forward that have no multiply-accumulates under the convention, by
# why. Every other operator that FlopCounterMode does not count is reported by
# ``MacAnalysis.unsupported_ops()`` (fvcore's rule: an operator is counted, declared free,
# or reported); a test holds that list empty for every registered architecture, so an
# architecture that brings a new operator either gets its rule here or shows its hole.
_FREE_BY_KIND: dict[str, tuple[str, ...]] = {
    "normalisation": (
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_functional",
        "native_batch_norm",
        "cudnn_batch_norm",
        "native_layer_norm",
        "native_group_norm",
    ),
    "activation": (
        "relu",
        "relu_",
        "sigmoid",
        "sigmoid_",
        "tanh",
        "tanh_",
        "gelu",
        "silu",
        "silu_",
        "hardtanh",
        "hardtanh_",
        "hardswish",
        "hardswish_",
        "hardsigmoid",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "threshold",
        "clamp",
        "clamp_min",
        "_softmax",
        "_safe_softmax",
        "_log_softmax",
    ),
    "pooling": (
        "max_pool2d_with_indices",
        "max_pool3d_with_indices",
        "avg_pool2d",
        "avg_pool3d",
        "_adaptive_avg_pool2d",
        "_adaptive_avg_pool3d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
    ),
    "elementwise": (
        "add",
        "add_",
        "sub",
        "sub_",
        "mul",
        "mul_",
        "div",
        "div_",
        "neg",
        "sqrt",
        "rsqrt",
        "pow",
        "eq",
        "ne",
    ),
    "reduction": ("mean", "sum", "amax", "max", "min"),
    "memory": (
        "empty",
        "empty_like",
        "zeros",
        "ones",
        "full",
        "fill_",
        "zero_",
        "clone",
        "copy_",
        "_to_copy",
        "detach",
        "alias",
        "lift_fresh",
        "view",
        "_unsafe_view",
        "t",
        "transpose",
        "permute",
        "unsqueeze",
        "squeeze",
        "expand",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "index_select",
        "linspace",
        "index",
        "roll",
        "cat",
        "stack",
        "constant_pad_nd",
        "native_dropout",
        "bernoulli_",
        "unbind",
        "zeros_like",
        "arange",
    ),
    # Position tables resized to another token grid (the video ViTs, MViT); nearest-neighbour is an index.
    "resampling": (
        "upsample_nearest1d",
        "upsample_nearest2d",
        "upsample_linear1d",
        "upsample_bilinear2d",
        "upsample_bicubic2d",
        "_unsafe_index",
    ),
}
MAC_FREE_OPS: dict[str, str] = {f"aten.{op}": kind for kind, ops in _FREE_BY_KIND.items() for op in ops}
"""Operator name (``aten.relu_``) -> why it has no MACs; extend it for an operator of your own."""


def macs_of(flops: int) -> int:
    """MACs from FlopCounterMode's FLOPs: it counts a multiply-add as 2 FLOPs for every operator it knows."""
    return int(flops) // 2


def total_macs(counter: FlopCounterMode) -> int:
    """The MACs a counter saw: half its FLOPs."""
    return macs_of(counter.get_total_flops())


def _cpu_attention_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    return int(flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape))


def _cpu_attention_backward_flops(
    grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any
) -> int:
    # Each of the two matmuls has two gradients of its own size: twice the forward, as the math path
    # (on the meta device) counts. torch's own backward formula also counts the fused kernel's
    # recomputation of Q K^T (2.5x), which is not work of the model.
    return 2 * _cpu_attention_flops(query_shape, key_shape, value_shape)


def _attention_formulas() -> dict[Any, Any]:
    """``scaled_dot_product_attention``'s CPU kernels, which FlopCounterMode does not know (pytorch#195460).

    On the meta device SDPA falls back to its math path (two ``bmm``), which
    FlopCounterMode counts; on the CPU it runs a fused kernel that it counts as
    zero, so a model counted on the CPU (``--counter`` runs, ``inspect --time``)
    would lose its attention matmuls. The formula is torch's own for the GPU
    kernels: the two matmuls, Q K^T and the weights times V.
    """
    formulas: dict[Any, Any] = {}
    aten = torch.ops.aten
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_attention_flops
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_attention_backward_flops
    return formulas


def counter_mode() -> FlopCounterMode:
    """A ``FlopCounterMode`` that also counts the CPU's fused attention kernels (see :func:`_attention_formulas`)."""
    return FlopCounterMode(display=False, custom_mapping=_attention_formulas())


class _FreeOpsWhole(flop_counter._FlopCounterMode):
    """FlopCounterMode's dispatch mode, except that an operator in :data:`MAC_FREE_OPS` runs undecomposed."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if str(func.overloadpacket) in MAC_FREE_OPS:
            kwargs = kwargs or {}
            return self.counter._count_flops(func.overloadpacket, func(*args, **kwargs), args, kwargs)
        return super().__torch_dispatch__(func, types, args, kwargs)


class RecordingCounter(FlopCounterMode):
    """FlopCounterMode that also keeps, per module, the operators it saw and did not count.

    It overrides FlopCounterMode's private ``_count_flops`` (torch 2.x), the one call
    every undecomposed operator reaches; ``tests/test_design_counting.py`` notices if a
    torch release stops calling it.
    """

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_attention_formulas())
        self.uncounted: dict[str, Counter[str]] = {}

    def __enter__(self) -> RecordingCounter:
        super().__enter__()
        # FlopCounterMode dispatches through a mode of its own (torch 2.x's private _FlopCounterMode), which
        # decomposes every operator it has no formula for, in case a counted one hides inside. An operator
        # declared free has none by the convention, and its decomposition is Python: batch norm's, on the meta
        # device, was most of a static run's count. Swap in a mode that runs those whole.
        # tests/test_design_counting.py notices if a torch release renames the mode or stops using it.
        if isinstance(self.mode, flop_counter._FlopCounterMode):
            self.mode.__exit__(None, None, None)
            self.mode = _FreeOpsWhole(self)
            self.mode.__enter__()
        return self

    def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
        # Called once for every operator that reaches the counter undecomposed, counted or not.
        if func_packet not in self.flop_registry:
            op = str(func_packet)
            for parent in self.mod_tracker.parents:
                self.uncounted.setdefault(parent, Counter())[op] += 1
        return super()._count_flops(func_packet, out, args, kwargs)
