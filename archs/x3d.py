"""X3D: XS, S, M and L.

Reference:
    Feichtenhofer, "X3D: Expanding Architectures for Efficient Video
    Recognition", CVPR 2020. The definition is the authors' code:
    pytorchvideo's ``create_x3d`` and its hub builders ``x3d_xs/s/m/l``
    (``pytorchvideo/models/x3d.py``, ``models/hub/x3d.py``, 0.1.5), which equal
    PySlowFast's ``X3D`` (``slowfast/models/video_model_builder.py``,
    ``resnet_helper.X3DTransform``, ``head_helper.X3DHead``) but for one
    BatchNorm (below).

The network, from the paper's expansion of a tiny base (width factor 2.0,
bottleneck factor 2.25, depth factor 2.2; 5.0 for L)::

    stem     1x3x3 conv, stride (1, 2, 2), 3 -> 24; then a channel-wise 5x1x1 conv; BN, ReLU
    res2..5  bottlenecks of widths 24, 48, 96, 192 (inner 54, 108, 216, 432), 3/5/11/7 blocks
             (L: 5/10/25/15); each: 1x1x1, BN, ReLU -> channel-wise 3x3x3 (stride (1, 2, 2) in
             a stage's first block), BN, [SE] -> swish -> 1x1x1, BN; + shortcut; ReLU
    head     conv5 1x1x1 192 -> 432, BN, ReLU -> global average pool -> lin5 1x1x1 432 -> 2048
             (no BN), ReLU -> dropout 0.5 -> fc 2048 -> classes

What a re-implementation gets wrong (``reference/modern_families.md``):

- SE (reduction 1/16 of the inner width, rounded to a multiple of 8) sits only
  in every other block of a stage: blocks 0, 2, 4...
- Swish is only after the channel-wise conv (and its SE); every other
  activation is a ReLU.
- Nothing strides in time: a clip of T frames stays T frames to the head.
- pytorchvideo's stem names its spatial conv ``conv_t`` and its temporal conv
  ``conv_xy`` (swapped); the checkpoint layouts here map them by role.
- pytorchvideo's X3D head ends in a softmax and pools with a kernel fixed at
  build time (the training crop's map). These models return logits and pool
  adaptively, so other inputs work; at the training crop both pool the same.
- PySlowFast's res2 first block has a BatchNorm on its shortcut (the shortcut
  strides but keeps 24 channels); pytorchvideo's has none (its shortcut norm
  exists only where the width changes). The models follow pytorchvideo (their
  parameters equal its); a PySlowFast checkpoint's extra BatchNorm is folded
  into the shortcut conv and the block's last BatchNorm, which computes the same
  function in evaluation.

Checkpoints: pytorchvideo's hub files (bare, or ``{"model_state": ...}`` as
PySlowFast saves them, with or without a ``model.`` prefix) and PySlowFast's own
(``s1``..``s5``, ``head``); their preprocessing is PySlowFast's (mean 0.45, std
0.225; the training clip's frames and sampling rate; the short side resized to
the test crop), evaluated in 10 clips x 3 crops at the test crop (``x3d``).

XS, S and M share one network (3,794,274 parameters; L 6,153,384) and differ only in their
input: the training clip and crop below, for which PySlowFast's model zoo gives
0.60 / 1.96 / 4.73 / 18.37 GMACs (norms not counted).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from torch import Tensor, nn

from archs._blocks import (
    ConvKind,
    ResidualStages,
    SqueezeExcitation,
    Swish,
    VideoClassifier,
    channelwise_conv,
    init_resnet_weights,
)
from archs._registry import CroppedClip, Family, Shape, Stages, register_arch
from archs._weights import Layout, Preprocess, Pretrained, Protocol, pytorchvideo_net_key, register_protocol
from archs.resnet import Bottleneck

__all__ = [
    "PROTOCOL",
    "X3D",
    "X3DConfig",
    "fold_pyslowfast_shortcut_norm",
    "pyslowfast_key",
    "pytorchvideo_key",
    "round_width",
]

_PAPER = "Feichtenhofer, X3D: Expanding Architectures for Efficient Video Recognition, CVPR 2020"
_STAGE_NAMES = ("conv1", "res2", "res3", "res4", "res5")
_BASE_DEPTHS = (1, 2, 5, 3)
_BASE_WIDTH = 12  # X3D.DIM_C1: the stem's width before the width factor
BN_EPS = 1e-5
"""BatchNorm epsilon of pytorchvideo and PySlowFast (``norm_eps``, ``BN.EPS``); momentum is PyTorch's 0.1."""


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """``width * multiplier`` rounded to the nearest multiple of ``divisor``, at least ``min_width``,
    and bumped by one ``divisor`` if rounding lost more than 10 % (PySlowFast and pytorchvideo's rule)."""
    scaled = width * multiplier
    out = max(min_width, int(scaled + divisor / 2) // divisor * divisor)
    return int(out + divisor if out < 0.9 * scaled else out)


@dataclass(frozen=True)
class X3DConfig(CroppedClip):
    """One X3D: its expansion factors and the training input that its published cost refers to.

    Attributes:
        frames: Frames of the training clip (with ``crop``, the default input: the clip whose MACs the
            PySlowFast model zoo reports).
        crop: Side of the training crop.
        frame_stride: Sampling rate of the clips (every k-th decoded frame).
        test_crop: Side of the three crops of the 30-view test (the short side is resized to it).
        variant: ``"xs"``, ``"s"``, ``"m"`` or ``"l"``: the name of its published checkpoints.
        depth_factor: Blocks per stage are ``ceil(depth_factor * (1, 2, 5, 3))``.
        width_factor: Widths are ``round_width(base, width_factor)``.
        bottleneck_factor: Inner width of a block per output width.
        head_width: Width of lin5 (X3D.DIM_C5).
        dropout: Dropout before the classifier (an option).
        num_classes: Logits (an option).
    """

    frames: int
    crop: int
    frame_stride: int
    test_crop: int
    variant: str
    depth_factor: float = 2.2
    width_factor: float = 2.0
    bottleneck_factor: float = 2.25
    head_width: int = 2048
    dropout: float = 0.5
    num_classes: int = 400

    def with_options(self, *, num_classes: int | None = None, dropout: float | None = None) -> X3DConfig:
        """The options every X3D takes; any other keyword is a TypeError."""
        return replace(
            self,
            num_classes=self.num_classes if num_classes is None else num_classes,
            dropout=self.dropout if dropout is None else dropout,
        )

    @property
    def stem_width(self) -> int:
        return round_width(_BASE_WIDTH, self.width_factor)

    @property
    def widths(self) -> tuple[int, ...]:
        """Output width of res2..res5: the base 12, 24, 48, 96 (each 2x, rounded) times the width factor."""
        base = [_BASE_WIDTH]
        for _ in range(3):
            base.append(round_width(base[-1], 2.0))
        return tuple(round_width(b, self.width_factor) for b in base)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(math.ceil(self.depth_factor * d) for d in _BASE_DEPTHS)

    @property
    def min_input(self) -> Shape:
        """One frame (nothing strides in time) of 32x32 (the stem and four stages halve space)."""
        return (3, 1, 32, 32)

    @property
    def stages(self) -> Stages:
        """The stem is (2+1)D, its temporal part channel-wise; every stage is channel-wise."""
        return tuple(zip(_STAGE_NAMES, (ConvKind.R2PLUS1D, *(ConvKind.CHANNELWISE,) * 4), strict=True))

    def build(self) -> X3D:
        return X3D(self)


def _stem(width: int, norm: partial[nn.BatchNorm3d]) -> nn.Sequential:
    """1x3x3 conv (stride 2 in space), then a channel-wise 5x1x1 conv, BN, ReLU."""
    kind = ConvKind.R2PLUS1D
    spatial, temporal = kind.parts(3, (1, 2, 2), t=5)
    return nn.Sequential(
        OrderedDict(
            spatial=nn.Conv3d(3, width, *spatial, bias=False),
            temporal=nn.Conv3d(width, width, *temporal, groups=ConvKind.CHANNELWISE.groups(width), bias=False),
            bn=norm(width),
            act=nn.ReLU(inplace=True),
        )
    )


class X3D(ResidualStages, VideoClassifier):
    """X3D as pytorchvideo builds it, returning logits and pooling adaptively (see the module docstring).

    ``forward_features`` ends after conv5 (its BN and ReLU): the last map,
    ``num_features`` = 432 channels; ``forward_head`` pools it, then lin5, ReLU,
    dropout and ``fc``.
    """

    def __init__(self, config: X3DConfig) -> None:
        super().__init__()
        norm = partial(nn.BatchNorm3d, eps=BN_EPS)
        self.stem = _stem(config.stem_width, norm)

        def block(i: int, j: int, in_ch: int, width: int) -> Bottleneck:
            inner = int(config.bottleneck_factor * width)
            return Bottleneck(
                in_ch,
                inner,
                width,
                (1, 2, 2) if j == 0 else (1, 1, 1),
                channelwise_conv,
                norm,
                se=SqueezeExcitation(inner, round_width(inner, 1 / 16)) if j % 2 == 0 else None,
                act2=Swish(),
                shortcut_norm=False,
            )

        in_ch = self.add_stages(config.stem_width, config.widths, config.depths, block)
        inner = int(config.bottleneck_factor * in_ch)  # conv5 widens to res5's inner width (X3DHead dim_inner)
        self.conv5 = nn.Conv3d(in_ch, inner, 1, bias=False)
        self.bn5 = norm(inner)
        self.relu5 = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.lin5 = nn.Conv3d(inner, config.head_width, 1, bias=False)
        self.relu_lin5 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(config.head_width, config.num_classes)
        self.num_classes = config.num_classes
        self.num_features = inner
        init_resnet_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.relu5(self.bn5(self.conv5(self.forward_stages(x))))

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.relu_lin5(self.lin5(self.avgpool(x)))
        return self.fc(self.dropout(x.flatten(1)))

    @property
    def classifier(self) -> nn.Module:
        return self.fc


# ------------------------------------------------------------------------------- weights: layouts and preprocessing
#
# Our keys: stem.{spatial,temporal,bn}, layer<s>.<b>.{conv1,bn1,conv2,bn2,se.fc1,se.fc2,conv3,bn3,downsample.<0|1>},
# conv5, bn5, lin5, fc.

_PTV_BLOCK = {  # where pytorchvideo's X3D block differs from PYTORCHVIDEO_BOTTLENECK, and its SE
    "bn2": "branch2.norm_b.0",  # norm_b is Sequential(BatchNorm3d, SqueezeExcitation or Identity)
    "se.fc1": "branch2.norm_b.1.block.0",  # fvcore SE: (conv, ReLU, conv, sigmoid)
    "se.fc2": "branch2.norm_b.1.block.2",
}
_PTV_STEM = {"spatial": "conv.conv_t", "temporal": "conv.conv_xy", "bn": "norm"}  # names swapped in create_x3d_stem
_PTV_HEAD = {
    "conv5": "blocks.5.pool.pre_conv",
    "bn5": "blocks.5.pool.pre_norm",
    "lin5": "blocks.5.pool.post_conv",
    "fc": "blocks.5.proj",
}


def pytorchvideo_key(key: str) -> str | None:
    """Our key -> pytorchvideo's ``create_x3d`` key: ``Net.blocks`` = [stem, 4 ``ResStage``s, ``ResNetBasicHead``].

    ``layer1.0.se.fc1.weight`` -> ``blocks.1.res_blocks.0.branch2.norm_b.1.block.0.weight``;
    ``stem.spatial.weight`` -> ``blocks.0.conv.conv_t.weight`` (pytorchvideo's swapped names);
    ``conv5`` / ``bn5`` / ``lin5`` -> ``blocks.5.pool.{pre_conv,pre_norm,post_conv}`` (its ``ProjectedPool``);
    ``fc`` -> ``blocks.5.proj``.
    """
    return pytorchvideo_net_key(key, _PTV_STEM, _PTV_HEAD, _PTV_BLOCK)


_PYSF_BLOCK = {"conv1": "a", "bn1": "a_bn", "conv2": "b", "bn2": "b_bn", "conv3": "c", "bn3": "c_bn"}
_PYSF_STEM = {"spatial": "conv_xy", "temporal": "conv", "bn": "bn"}  # stem_helper.X3DStem
_PYSF_HEAD = {"conv5": "conv_5", "bn5": "conv_5_bn", "lin5": "lin_5", "fc": "projection"}  # head_helper.X3DHead


def pyslowfast_key(key: str) -> str | None:
    """Our key -> PySlowFast's ``X3D`` key (``slowfast/models/video_model_builder.py``).

    ``s1.pathway0_stem.{conv_xy,conv,bn}`` (``stem_helper.X3DStem``: the spatial
    conv, the channel-wise temporal conv, BN); ``s<2..5>.pathway0_res<b>`` are
    ``resnet_helper.ResBlock``s: ``branch1``/``branch1_bn`` the shortcut,
    ``branch2`` an ``X3DTransform`` of ``a``, ``a_bn``, ``b``, ``b_bn``, ``se.fc1``,
    ``se.fc2``, ``c``, ``c_bn``; ``head`` an ``X3DHead`` of ``conv_5``,
    ``conv_5_bn``, ``lin_5``, ``projection``.
    """
    first, *rest = key.split(".")
    if first == "stem" and len(rest) >= 2 and rest[0] in _PYSF_STEM:
        return ".".join(["s1.pathway0_stem", _PYSF_STEM[rest[0]], *rest[1:]])
    if first in _PYSF_HEAD:
        return ".".join(["head", _PYSF_HEAD[first], *rest])
    if not first.startswith("layer") or len(rest) < 3:
        return None
    block = f"s{int(first[len('layer') :]) + 1}.pathway0_res{rest[0]}"
    name, tail = rest[1], rest[2:]
    if name in _PYSF_BLOCK:
        return ".".join([block, "branch2", _PYSF_BLOCK[name], *tail])
    if name == "se" and tail[0] in ("fc1", "fc2"):
        return ".".join([block, "branch2.se", *tail])
    if name == "downsample" and tail[0] in ("0", "1"):
        return ".".join([block, "branch1" if tail[0] == "0" else "branch1_bn", *tail[1:]])
    return None


_PYSF_RES2_SHORTCUT = "s2.pathway0_res0.branch1"
_PYSF_RES2_LAST_BN = "s2.pathway0_res0.branch2.c_bn"


def fold_pyslowfast_shortcut_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A PySlowFast X3D checkpoint with its res2 shortcut BatchNorm folded away (see the module docstring).

    In evaluation that BN is ``a * x + b`` per channel, with
    ``a = weight / sqrt(running_var + eps)`` and ``b = bias - a * running_mean``:
    ``a`` scales the shortcut conv's filters, and ``b``, added to the block's sum,
    joins the bias of the residual branch's last BN (which the sum follows).
    Computed in float64, stored in the checkpoint's dtype.

    Raises:
        KeyError: the checkpoint has no such BatchNorm (it is not PySlowFast's X3D).
    """
    bn = f"{_PYSF_RES2_SHORTCUT}_bn"
    weight, bias = state.pop(f"{bn}.weight"), state.pop(f"{bn}.bias")
    mean, var = state.pop(f"{bn}.running_mean"), state.pop(f"{bn}.running_var")
    state.pop(f"{bn}.num_batches_tracked", None)
    scale = weight.double() / (var.double() + BN_EPS).sqrt()
    conv = state[f"{_PYSF_RES2_SHORTCUT}.weight"]
    state[f"{_PYSF_RES2_SHORTCUT}.weight"] = (conv.double() * scale.view(-1, 1, 1, 1, 1)).to(conv.dtype)
    last = state[f"{_PYSF_RES2_LAST_BN}.bias"]
    state[f"{_PYSF_RES2_LAST_BN}.bias"] = (last.double() + bias.double() - scale * mean.double()).to(last.dtype)
    return state


MEAN = (0.45, 0.45, 0.45)
"""PySlowFast's ``_C.DATA.MEAN`` (``slowfast/config/defaults.py``), which its X3D configs keep and with which
pytorchvideo's hub weights were trained (they were trained in PySlowFast)."""
STD = (0.225, 0.225, 0.225)
"""PySlowFast's ``_C.DATA.STD``."""

# PySlowFast's MODEL_ZOO.md "top1 30-view" for X3D: configs/Kinetics/X3D_*.yaml set TEST.NUM_SPATIAL_CROPS 3 and
# TEST_CROP_SIZE 182/182/256/356 ("use if TEST.NUM_SPATIAL_CROPS: 3"), with NUM_ENSEMBLE_VIEWS 10 (defaults.py);
# slowfast/datasets/kinetics.py tests with the short side resized to TEST_CROP_SIZE and three crops of that size
# along the long side. pytorchvideo's model zoo reports the same 10 x 3 views for its hub weights.
PROTOCOL = register_protocol(
    Protocol(
        "x3d",
        10,
        3,
        source="facebookresearch/SlowFast MODEL_ZOO.md (X3D top1 30-view) and configs/Kinetics/X3D_*.yaml "
        "(10 clips x 3 crops at TEST_CROP_SIZE, the short side resized to it); pytorchvideo model_zoo.md",
    )
)

_PTV_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/{}.pyth"  # pytorchvideo/models/hub/x3d.py
_PYSF_URL = "https://dl.fbaipublicfiles.com/pyslowfast/x3d_models/{}.pyth"  # SlowFast MODEL_ZOO.md
_PTV_KEYS = r"^blocks\.(0\.conv\.conv_(t|xy)|[1-4]\.res_blocks\.\d+\.branch2\.norm_b\.0|5\.pool\.(pre|post)_)"
_PYSF_KEYS = r"^(s[1-5]\.pathway0_(stem|res\d+)\.|head\.(conv_5|lin_5|projection)\.)"


def _pretrained(config: X3DConfig) -> Pretrained:
    """Clips of the training length and sampling rate, tested in 10 x 3 views at the test crop; the checkpoints
    of pytorchvideo's hub and of PySlowFast's zoo."""
    preprocess = Preprocess(MEAN, STD, config.test_crop, config.test_crop, config.frames, config.frame_stride)
    layouts = (
        Layout(
            "pytorchvideo",
            pytorchvideo_key,
            preprocess,
            PROTOCOL.name,
            pattern=_PTV_KEYS,
            url=_PTV_URL.format(f"X3D_{config.variant.upper()}"),
        ),
        Layout(
            "pyslowfast",
            pyslowfast_key,
            preprocess,
            PROTOCOL.name,
            prepare=fold_pyslowfast_shortcut_norm,
            pattern=_PYSF_KEYS,
            url=_PYSF_URL.format(f"x3d_{config.variant}"),
        ),
    )
    return Pretrained(preprocess, PROTOCOL.name, layouts)


_X3D = Family("x3d", color="#b8860b")


@register_arch(
    family=_X3D, paper=_PAPER, pretrained=_pretrained, description="X3D-XS: the M network on 4 frames of 160x160"
)
def x3d_xs(**options: Any) -> X3DConfig:
    """X3D-XS: 3/5/11/7 blocks; 4 frames 12 apart, 160 crops; tested at 182 (PySlowFast ``X3D_XS.yaml``).

    pytorchvideo's ``x3d_xs``.
    """
    return X3DConfig(frames=4, crop=160, frame_stride=12, test_crop=182, variant="xs").with_options(**options)


@register_arch(
    family=_X3D, paper=_PAPER, pretrained=_pretrained, description="X3D-S: the M network on 13 frames of 160x160"
)
def x3d_s(**options: Any) -> X3DConfig:
    """X3D-S: 3/5/11/7 blocks; 13 frames 6 apart, 160 crops; tested at 182 (PySlowFast ``X3D_S.yaml``).

    pytorchvideo's ``x3d_s``.
    """
    return X3DConfig(frames=13, crop=160, frame_stride=6, test_crop=182, variant="s").with_options(**options)


@register_arch(
    family=_X3D, paper=_PAPER, pretrained=_pretrained, description="X3D-M: 3/5/11/7 channel-wise blocks, 16x224x224"
)
def x3d_m(**options: Any) -> X3DConfig:
    """X3D-M: 3/5/11/7 blocks; 16 frames 5 apart, 224 crops; tested at 256 (PySlowFast ``X3D_M.yaml``).

    pytorchvideo's ``x3d_m``.
    """
    return X3DConfig(frames=16, crop=224, frame_stride=5, test_crop=256, variant="m").with_options(**options)


@register_arch(
    family=_X3D,
    paper=_PAPER,
    pretrained=_pretrained,
    description="X3D-L: depth factor 5.0 (5/10/25/15 blocks), 16x312x312",
)
def x3d_l(**options: Any) -> X3DConfig:
    """X3D-L: depth factor 5.0; 16 frames 5 apart, 312 crops; tested at 356 (PySlowFast ``X3D_L.yaml``).

    pytorchvideo's ``x3d_l``.
    """
    return X3DConfig(frames=16, crop=312, frame_stride=5, test_crop=356, variant="l", depth_factor=5.0).with_options(
        **options
    )
