"""fvcore's ``FlopCountAnalysis`` as a second, independent MAC counter (``--counter fvcore``).

fvcore counts one fused multiply-add as one "flop", i.e. it counts MACs, the
same convention as ours. It traces the model with TorchScript, so unlike the
meta-device counter it needs a real forward on the CPU. Its default handles also
count batch norm and a few element-wise ops; here those are switched off so
that both counters count exactly conv, linear and matmul MACs, and the ops that
video networks use without MACs (3D pools, the means, sigmoids and products of
S3D-G's gating) are declared as such instead of being reported unsupported.

fvcore is imported only when this counter is asked for, so that a machine
without it (a GPU box, say) runs everything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

import archs
from bench.errors import UsageError

if TYPE_CHECKING:
    from fvcore.nn import FlopCountAnalysis

__all__ = ["NO_MAC_OPS", "fvcore_analysis"]

NO_MAC_OPS = (
    "aten::batch_norm",
    "aten::max_pool3d",
    "aten::max_pool2d",
    "aten::avg_pool3d",
    "aten::avg_pool2d",
    "aten::adaptive_avg_pool3d",
    "aten::adaptive_avg_pool2d",
    "aten::mean",
    "aten::sigmoid",
    "aten::silu",
    "aten::silu_",
    "aten::mul",
    "aten::mul_",
    "aten::add",
    "aten::add_",
    "aten::relu",
    "aten::relu_",
    "aten::dropout",
    "aten::cat",
    "aten::index_select",  # SlowFast's Slow clip: a gather of frames
    "aten::linspace",  # ... at these frame indices
    "aten::flatten",
    "aten::rsub",  # SAME padding's arithmetic on traced sizes (kernel - size % stride)
    "aten::sub",  # token counts from traced sizes (the video ViTs)
    "aten::layer_norm",  # norms are excluded, as batch norm is
    "aten::gelu",
    "aten::upsample_nearest1d",  # position tables resized to another token grid
    "aten::upsample_nearest2d",
    "aten::upsample_linear1d",
    "aten::upsample_bicubic2d",
    # MViT and Swin3D: relative distances, Swin's shift mask, bilinear resampling of a position table
    "aten::div",
    "aten::neg",
    "aten::ne",
    "aten::upsample_bilinear2d",
)
"""Operators with no multiply-accumulates under the convention (counted as 0, not unsupported)."""


def _zero(inputs: Any, outputs: Any) -> int:
    return 0


def _attention(inputs: Any, outputs: Any) -> int:
    """``aten::scaled_dot_product_attention``, which fvcore does not count: Q K^T, then the weights times V.

    For query (..., L, E), key (..., S, E) and value (..., S, Ev): L*S*E + L*S*Ev
    multiply-adds per leading index (batch and heads), as fvcore counts a matmul.
    """
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    lead = math.prod(q[:-2])
    return int(lead * q[-2] * k[-2] * (q[-1] + v[-1]))


def fvcore_analysis(arch: str, shape: Sequence[int], **arch_kwargs: Any) -> FlopCountAnalysis:
    """fvcore's analysis of ``arch`` at ``shape``, already run: ``.total()`` is MACs.

    The model is built on the CPU with seeded random weights and traced once, under
    ``torch.no_grad()``; every view of the returned analysis (``.total()``,
    ``.by_module()``, ``.by_operator()``, ``.unsupported_ops()``) reads that trace.
    This is the ``fvcore`` entry of :data:`bench.measure.counting.COUNTERS`.

    Raises:
        UsageError: if fvcore is not installed.
    """
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        raise UsageError("--counter fvcore needs fvcore: pip install fvcore") from None
    torch.manual_seed(0)
    model = archs.create_model(arch, **arch_kwargs).eval()
    x = torch.randn(tuple(shape))
    analysis = FlopCountAnalysis(model, x)
    # A handle of None would only silence ops that have no default handle (batch norm has
    # one), so every op without MACs gets a handle that counts zero.
    analysis.set_op_handle(**dict.fromkeys(NO_MAC_OPS, _zero), **{"aten::scaled_dot_product_attention": _attention})
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with torch.no_grad():
        analysis.total()  # the one trace; fvcore keeps its results
    return analysis
