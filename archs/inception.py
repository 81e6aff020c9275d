"""Inception-v1 video networks: I3D, I2D, S3D, S3D-G and the mixed 2D/3D I3Ds.

References:
    Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
    Kinetics Dataset", CVPR 2017 (I3D; layer list from deepmind/kinetics-i3d).
    Xie, Sun, Huang, Tu & Murphy, "Rethinking Spatiotemporal Feature Learning:
    Speed-Accuracy Trade-offs in Video Classification", ECCV 2018 (S3D, S3D-G,
    I2D, Bottom-Heavy and Top-Heavy I3D).

All of them are one network, :class:`InceptionNet`, built from data: the kind of
each of the eleven conv blocks (``"3d"``, ``"2d"`` or ``"sep"``) and a gating
flag. A ``"2d"`` block keeps the 3D layout but has temporal kernel 1; pools are
those of I3D in every variant (the branch-3 max-pool stays 3x3x3 and
MaxPool_4a / MaxPool_5a still stride in time), as in the TF-slim reference.

Padding: the references use TensorFlow's SAME padding. Here every conv and pool
is padded symmetrically (and MaxPool_5a uses ``ceil_mode``), which gives the
SAME output shape for every input size, hence the same MACs; the values differ
only at borders where SAME pads asymmetrically.

Inception block (``Mixed_*``), branches concatenated on channels::

    x -+-> 1x1x1 ------------------------> [gate] -+
       +-> 1x1x1 -> 3x3x3 (or 1x3x3+3x1x1) -> [gate] -+-> concat
       +-> 1x1x1 -> 3x3x3 (or 1x3x3+3x1x1) -> [gate] -+
       +-> maxpool 3x3x3 -> 1x1x1 ---------> [gate] -+
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from archs._blocks import ConvUnit
from archs._registry import register_arch

__all__ = [
    "BLOCKS",
    "SPLIT_POINTS",
    "InceptionNet",
    "SelfGating",
    "inception_kinds",
    "inception_v1_2d",
]

BLOCKS: tuple[str, ...] = (
    "Conv_1a",
    "Conv_2c",
    "Mixed_3b",
    "Mixed_3c",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "Mixed_5b",
    "Mixed_5c",
)
"""Blocks whose temporal kind varies between variants (Conv_2b is 1x1x1 in all)."""

SPLIT_POINTS: tuple[str, ...] = BLOCKS[1:]
"""Where Bottom-/Top-Heavy I3D may switch between 3D and 2D (Xie et al. sec. 4)."""

# Output widths of each Mixed block: (b0, b1a, b1b, b2a, b2b, b3), DeepMind i3d.py.
_MIXED: Mapping[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
_POOL_BEFORE = {"Mixed_4b": "MaxPool_4a", "Mixed_5b": "MaxPool_5a"}


def _out_width(widths: tuple[int, int, int, int, int, int]) -> int:
    b0, _, b1, _, b2, b3 = widths
    return b0 + b1 + b2 + b3


class SelfGating(nn.Module):
    """S3D-G feature gating: ``y = sigmoid(W pool(x) + b) * x``, one gate per channel.

    ``pool`` averages over (t, h, w). The paper's formula has the bias ``b``; the
    TF-slim release omits it. The paper is followed here.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * gate[:, :, None, None, None]


def _st_conv(kind: str, in_ch: int, out_ch: int, k: int, stride: int, pad: int, dim: int) -> nn.Module:
    """A k x k spatial conv of the given kind; ``stride`` applies to time and space.

    ``"3d"``: k x k x k. ``"2d"``: 1 x k x k (time still strided). ``"sep"``:
    1 x k x k then k x 1 x 1, each followed by BN and ReLU, both of full output
    width (S3D; unlike R(2+1)D the middle width is not parameter-matched).
    """
    if dim == 2 or kind == "2d":
        return ConvUnit(in_ch, out_ch, (1, k, k), (stride, stride, stride), (0, pad, pad), dim=dim)
    if kind == "3d":
        return ConvUnit(in_ch, out_ch, k, stride, pad)
    if kind == "sep":
        return nn.Sequential(
            OrderedDict(
                spatial=ConvUnit(in_ch, out_ch, (1, k, k), (1, stride, stride), (0, pad, pad)),
                temporal=ConvUnit(out_ch, out_ch, (k, 1, 1), (stride, 1, 1), (pad, 0, 0)),
            )
        )
    raise ValueError(f"unknown conv kind {kind!r}")


def _maybe_gate(module: nn.Module, channels: int, gating: bool) -> nn.Module:
    return nn.Sequential(module, SelfGating(channels)) if gating else module


def _max_pool(dim: int, kernel: tuple[int, int, int], stride: tuple[int, int, int], ceil: bool = False) -> nn.Module:
    pad = tuple(k // 2 if k == 3 else 0 for k in kernel)
    if dim == 2:
        return nn.MaxPool2d(kernel[1:], stride[1:], pad[1:], ceil_mode=ceil)
    return nn.MaxPool3d(kernel, stride, pad, ceil_mode=ceil)


class InceptionBlock(nn.Module):
    """One ``Mixed_*`` block; see the module docstring for its branches."""

    def __init__(
        self,
        in_ch: int,
        widths: tuple[int, int, int, int, int, int],
        kind: str,
        gating: bool = False,
        dim: int = 3,
    ) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branch0 = _maybe_gate(ConvUnit(in_ch, b0, 1, dim=dim), b0, gating)
        self.branch1 = nn.Sequential(
            ConvUnit(in_ch, b1a, 1, dim=dim), _maybe_gate(_st_conv(kind, b1a, b1b, 3, 1, 1, dim), b1b, gating)
        )
        self.branch2 = nn.Sequential(
            ConvUnit(in_ch, b2a, 1, dim=dim), _maybe_gate(_st_conv(kind, b2a, b2b, 3, 1, 1, dim), b2b, gating)
        )
        self.branch3 = nn.Sequential(
            _max_pool(dim, (3, 3, 3), (1, 1, 1)), _maybe_gate(ConvUnit(in_ch, b3, 1, dim=dim), b3, gating)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class InceptionNet(nn.Module):
    """Inception-v1 (BN) as a video network (``dim=3``) or as an image network (``dim=2``).

    Args:
        kinds: Kind of each of :data:`BLOCKS`, ``"3d"``, ``"2d"`` or ``"sep"``
            (ignored for ``dim=2``).
        gating: S3D-G feature gating on Conv_2c and on every branch output.
        num_classes: Logits.
        dropout: Dropout before the logits conv.
        dim: 3 for clips (B, C, T, H, W), 2 for images (B, C, H, W).

    The head follows DeepMind's I3D: average pool 2x7x7 (7x7 in 2D), stride 1,
    no padding; dropout; a 1x1x1 conv with bias; the mean over the remaining
    positions. Hence the smallest clip is 9x193x193 (Mixed_5c must be at least 2x7x7).
    """

    def __init__(
        self,
        kinds: Sequence[str],
        gating: bool = False,
        num_classes: int = 400,
        dropout: float = 0.5,
        dim: int = 3,
    ) -> None:
        super().__init__()
        if len(kinds) != len(BLOCKS):
            raise ValueError(f"expected {len(BLOCKS)} block kinds, got {len(kinds)}")
        kind = dict(zip(BLOCKS, kinds, strict=True))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["Conv_1a"] = _st_conv(kind["Conv_1a"], 3, 64, 7, 2, 3, dim)
        layers["MaxPool_2a"] = _max_pool(dim, (1, 3, 3), (1, 2, 2))
        layers["Conv_2b"] = ConvUnit(64, 64, 1, dim=dim)
        layers["Conv_2c"] = _maybe_gate(_st_conv(kind["Conv_2c"], 64, 192, 3, 1, 1, dim), 192, gating and dim == 3)
        layers["MaxPool_3a"] = _max_pool(dim, (1, 3, 3), (1, 2, 2))
        in_ch = 192
        for name, widths in _MIXED.items():
            if name == "Mixed_4b":
                layers["MaxPool_4a"] = _max_pool(dim, (3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                layers["MaxPool_5a"] = _max_pool(dim, (2, 2, 2), (2, 2, 2), ceil=True)
            layers[name] = InceptionBlock(in_ch, widths, kind[name], gating and dim == 3, dim)
            in_ch = _out_width(widths)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AvgPool3d((2, 7, 7), stride=1) if dim == 3 else nn.AvgPool2d(7, stride=1)
        self.dropout = nn.Dropout(dropout)
        conv = nn.Conv3d if dim == 3 else nn.Conv2d
        self.logits = conv(in_ch, num_classes, kernel_size=1, bias=True)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        x = self.logits(self.dropout(self.avgpool(self.features(x))))
        return x.mean(dim=tuple(range(2, x.ndim)))


def inception_kinds(low: str, high: str, split: str | None) -> tuple[str, ...]:
    """Per-block kinds: ``low`` for the blocks below ``split``, ``high`` from it on.

    Raises:
        ValueError: if ``split`` is not one of :data:`SPLIT_POINTS`.
    """
    if split is None:
        return (low,) * len(BLOCKS)
    if split not in SPLIT_POINTS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_POINTS)}; got {split!r}")
    i = BLOCKS.index(split)
    return (low,) * i + (high,) * (len(BLOCKS) - i)


def inception_v1_2d(num_classes: int = 1000, dropout: float = 0.5) -> InceptionNet:
    """The 2D Inception-v1 (BN) image network that I3D is inflated from.

    Same layer list and parameter names as :func:`i3d`, so that
    :func:`archs.inflate.inflate_from_2d` maps one onto the other by name.
    """
    return InceptionNet(("2d",) * len(BLOCKS), num_classes=num_classes, dropout=dropout, dim=2)


_I3D_PAPER = "Carreira & Zisserman, Quo Vadis, Action Recognition? CVPR 2017"
_XIE_PAPER = "Xie et al., Rethinking Spatiotemporal Feature Learning, ECCV 2018"
_DEFAULT = (3, 64, 224, 224)
_MIN = (3, 9, 193, 193)


def _stages(kinds: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple(zip(BLOCKS, kinds, strict=True))


def _build(kinds: Sequence[str], gating: bool = False, **kwargs: Any) -> InceptionNet:
    return InceptionNet(kinds, gating=gating, **kwargs)


_HEAVY_SPLIT = "Mixed_4b"


@register_arch(
    family="i3d",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_I3D_PAPER,
    stages=_stages(inception_kinds("3d", "3d", None)),
    description="Inception-v1 (BN) inflated to 3D; DeepMind layer list",
)
def i3d(**kwargs: Any) -> InceptionNet:
    """I3D: every conv k x k becomes k x k x k (the stem 7x7x7, stride 2 in time)."""
    return _build(inception_kinds("3d", "3d", None), **kwargs)


@register_arch(
    family="i3d",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_XIE_PAPER,
    stages=_stages(inception_kinds("2d", "2d", None)),
    description="I3D with temporal kernel 1 in every conv; pools as I3D",
)
def i2d(**kwargs: Any) -> InceptionNet:
    """I2D: a 2D network applied to every frame, with I3D's (temporal) pools."""
    return _build(inception_kinds("2d", "2d", None), **kwargs)


@register_arch(
    family="s3d",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_XIE_PAPER,
    stages=_stages(inception_kinds("sep", "sep", None)),
    description="separable 1xkxk + kx1x1 stem, Conv_2c and Inception branches 1-2",
)
def s3d(**kwargs: Any) -> InceptionNet:
    """S3D as torchvision defines it (8,320,048 parameters, dropout 0.2).

    The stem is separable too (torchvision, kylemin/S3D). TF-slim's S3D-G keeps a
    non-separable 3x7x7 stem instead; that and padding are why this definition
    counts 71.9 GMACs at 64x224x224 where the paper reports 66.4.
    """
    kwargs.setdefault("dropout", 0.2)
    return _build(inception_kinds("sep", "sep", None), **kwargs)


@register_arch(
    family="s3d",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_XIE_PAPER,
    stages=_stages(inception_kinds("sep", "sep", None)),
    description="S3D plus feature gating on Conv_2c and every branch output",
)
def s3d_g(**kwargs: Any) -> InceptionNet:
    """S3D-G: :func:`s3d` with :class:`SelfGating` where TF-slim's ``s3dg.py`` gates."""
    kwargs.setdefault("dropout", 0.2)
    return _build(inception_kinds("sep", "sep", None), gating=True, **kwargs)


@register_arch(
    family="i3d_mixed",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_XIE_PAPER,
    stages=_stages(inception_kinds("3d", "2d", _HEAVY_SPLIT)),
    description="3D blocks below the split (default Mixed_4b), 2D from it on",
)
def i3d_bottom_heavy(split: str = _HEAVY_SPLIT, **kwargs: Any) -> InceptionNet:
    """Bottom-Heavy I3D: "3D in the lower layers, and 2D in the higher layers".

    Args:
        split: First block that is 2D, one of :data:`SPLIT_POINTS`. The default,
            Mixed_4b, switches at MaxPool_4a: 3D through Mixed_3c.
    """
    return _build(inception_kinds("3d", "2d", split), **kwargs)


@register_arch(
    family="i3d_mixed",
    default_input=_DEFAULT,
    min_input=_MIN,
    paper=_XIE_PAPER,
    stages=_stages(inception_kinds("2d", "3d", _HEAVY_SPLIT)),
    description="2D blocks below the split (default Mixed_4b), 3D from it on",
)
def i3d_top_heavy(split: str = _HEAVY_SPLIT, **kwargs: Any) -> InceptionNet:
    """Top-Heavy I3D: "2D in the lower (larger) layers, and 3D in the upper layers".

    Args:
        split: First block that is 3D, one of :data:`SPLIT_POINTS`. The default,
            Mixed_4b, switches at MaxPool_4a: 2D through Mixed_3c (the stem too).
    """
    return _build(inception_kinds("2d", "3d", split), **kwargs)
