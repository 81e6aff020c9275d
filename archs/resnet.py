"""Video ResNets: R3D, MCx, rMCx, R2D, f-R2D and R(2+1)D.

Reference:
    Tran, Wang, Torresani, Ray, LeCun & Paluri, "A Closer Look at
    Spatiotemporal Convolutions for Action Recognition", CVPR 2018. Where the
    paper is silent the authors' code is followed (facebookresearch/VMZ,
    ``c2/lib/models/r3d_model.py`` and ``builder/video_model.py``).

Every variant is one network, :class:`VideoResNet`, built from one
:class:`ResNetConfig`: the :class:`~archs._blocks.ConvKind` of the stem and of
each residual stage (3D: 3x3x3, 2D: 1x3x3, (2+1)D: 1x3x3 then 3x1x1; R2D's stem
folds the clip). The skeleton is VMZ's and torchvision's: no max-pool after
conv1; stages of 64, 128, 256, 512 channels; the first block of stages 3 to 5
strides by 2 in space and, for kinds with a temporal extent, in time (2D blocks
stride only in space: the kind's own rule); projection shortcuts are 1x1x1
convs with the block's stride; global average pool; a linear classifier.

Difference from torchvision: torchvision's ``r2plus1d_18`` computes the
intermediate width M_i once per block, from the block's (in, out), and uses it
for both convs (31,505,325 parameters). The paper and VMZ compute it for each
conv from that conv's own (in, out) (33.37 M parameters). ``r2plus1d_18``
follows the paper, ``r2plus1d_18_tv`` torchvision. (The IG-65M port of
R(2+1)D-34 builds torchvision's blocks and then replaces the second conv of the
first block of conv3_x to conv5_x to get VMZ's per-conv widths back: per conv.)

BatchNorm epsilon: torchvision's three models (``r3d_18``, ``mc3_18``,
``r2plus1d_18_tv``) use PyTorch's default 1e-5, as their weights were trained
with. Every other variant is defined by VMZ, whose Caffe2 code (``SpatialBN``,
``epsilon=1e-3``) and PyTorch port (``pt/vmz/models``, and moabitcoin's IG-65M
port) use 1e-3; eval-mode outputs depend on it, so those use 1e-3. Momentum stays
PyTorch's default 0.1 everywhere: Caffe2's ``momentum=0.9`` is the weight of the
running average, i.e. PyTorch's 0.1 (the PyTorch ports copy 0.9 literally, which
in PyTorch's convention weights the new batch by 0.9; it only affects training).

Basic block::

    x -+-> conv(stride) -> BN -> ReLU -> conv -> BN -+-> ReLU
       +-> [1x1x1 conv(stride) -> BN] ---------------+
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from torch import Tensor, nn

from archs._blocks import ConvKind, PooledResNet, Triple, init_resnet_weights
from archs._registry import ClassesOption, Family, Shape, Stages, Variant, register_arch
from archs._weights import (
    KINETICS_MEAN,
    KINETICS_STD,
    Layout,
    Preprocess,
    Pretrained,
    Protocol,
    identity,
    register_protocol,
)

__all__ = ["BasicBlock", "Bottleneck", "ResNetConfig", "VideoResNet", "midplanes"]

K3D, K2D, R2P1D, FOLDED = ConvKind.THREE_D, ConvKind.TWO_D, ConvKind.R2PLUS1D, ConvKind.FOLDED

_WIDTHS = (64, 128, 256, 512)
_STAGE_NAMES = ("conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x")
_PAPER = "Tran et al., A Closer Look at Spatiotemporal Convolutions, CVPR 2018"

TORCHVISION_BN_EPS = 1e-5
"""BatchNorm epsilon of torchvision's video ResNets (PyTorch's default)."""
VMZ_BN_EPS = 1e-3
"""BatchNorm epsilon of the authors' code (VMZ, Caffe2 and PyTorch) and of the IG-65M port."""

Norm = Callable[[int], nn.Module]


def midplanes(in_ch: int, out_ch: int, t: int = 3, d: int = 3) -> int:
    """Intermediate width of a (2+1)D conv matching the t x d x d conv's parameters.

    ``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))`` (Tran et al., sec. 3.5).
    """
    return (t * d * d * in_ch * out_ch) // (d * d * in_ch + t * out_ch)


def _conv(kind: ConvKind, in_ch: int, out_ch: int, stride: int, mid: int, norm: Norm) -> nn.Module:
    """A 3x3(x3) conv of the given kind, downsampling by ``stride`` as the kind strides.

    A factorised kind is 1x3x3 to ``mid`` channels, BN, ReLU, then 3x1x1.
    """
    parts = kind.parts(3, kind.stride(stride))
    if len(parts) == 1:
        return nn.Conv3d(in_ch, out_ch, *parts[0], bias=False)
    spatial, temporal = parts
    return nn.Sequential(
        nn.Conv3d(in_ch, mid, *spatial, bias=False),
        norm(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, out_ch, *temporal, bias=False),
    )


class BasicBlock(nn.Module):
    """Two convs of one kind with a residual connection (see the module docstring).

    Args:
        mid_per_block: torchvision's rule, one M_i from (in_ch, out_ch) for both
            convs; otherwise each conv gets its own (the paper's rule).
        norm: The BatchNorm of a given width.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kind: ConvKind, stride: int, mid_per_block: bool, norm: Norm = nn.BatchNorm3d
    ) -> None:
        super().__init__()
        mid1 = midplanes(in_ch, out_ch)
        mid2 = mid1 if mid_per_block else midplanes(out_ch, out_ch)
        self.conv1 = nn.Sequential(_conv(kind, in_ch, out_ch, stride, mid1, norm), norm(out_ch), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(_conv(kind, out_ch, out_ch, 1, mid2, norm), norm(out_ch))
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, kind.stride(stride), bias=False), norm(out_ch))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class Bottleneck(nn.Module):
    """A bottleneck residual block whose middle convolution comes from a conv maker.

    ::

        x -+-> conv1 1x1x1 -> bn1 -> ReLU -> conv2 (stride) -> bn2 [-> se] -> act2 -> conv3 1x1x1 -> bn3 -+-> ReLU
           +-> [1x1x1 conv (stride) [-> BN]] --------------------------------------------------------------+

    The families that use it differ only in what this signature takes: the
    middle convolution (X3D's and ir-CSN's channel-wise t x 3 x 3; ip-CSN's
    1x1x1 + BN + channel-wise 3x3x3), a squeeze-excitation after ``bn2`` and the
    activation after it (X3D: swish), and whether a projection shortcut that
    only strides (the width unchanged) has a BatchNorm.

    Args:
        in_ch: Input width.
        mid_ch: Inner width (of conv1's output and the middle conv).
        out_ch: Output width.
        stride: (t, h, w) stride of the middle conv and of the shortcut.
        middle: ``middle(mid_ch, stride)`` builds the middle convolution.
        norm: The BatchNorm of a given width.
        se: A module applied after ``bn2``, or None.
        act2: The activation after ``bn2`` (and ``se``); ReLU by default.
        shortcut_norm: Whether a projection shortcut whose width does not change
            has a BatchNorm (one that changes the width always has).
    """

    def __init__(
        self,
        in_ch: int,
        mid_ch: int,
        out_ch: int,
        stride: Triple,
        middle: Callable[[int, Triple], nn.Module],
        norm: Norm = nn.BatchNorm3d,
        *,
        se: nn.Module | None = None,
        act2: nn.Module | None = None,
        shortcut_norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = norm(mid_ch)
        self.conv2 = middle(mid_ch, stride)
        self.bn2 = norm(mid_ch)
        self.se = se
        self.act2 = nn.ReLU(inplace=True) if act2 is None else act2
        self.conv3 = nn.Conv3d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = norm(out_ch)
        self.downsample: nn.Module | None = None
        if in_ch != out_ch or stride != (1, 1, 1):
            conv = nn.Conv3d(in_ch, out_ch, 1, stride, bias=False)
            with_norm = shortcut_norm or in_ch != out_ch
            self.downsample = nn.Sequential(conv, norm(out_ch)) if with_norm else nn.Sequential(conv)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        out = self.bn3(self.conv3(self.act2(out)))
        return self.relu(out + identity)


def _stem(kind: ConvKind, frames: int, norm: Norm) -> nn.Sequential:
    """conv1, 64 channels, stride (1, 2, 2), each conv followed by BN and ReLU.

    3D: 3x7x7. 2D: 1x7x7. (2+1)D: 1x7x7 to 45 channels, then 3x1x1 to 64 (45 is
    hard-coded in VMZ and torchvision). Folded (R2D): ``frames``x7x7 with no
    temporal padding, which folds time into channels.
    """
    parts = kind.parts(7, (1, 2, 2), t=frames if kind.folds_time else 3)
    widths = (3, 45, 64) if kind.factorised else (3, 64)
    layers: list[nn.Module] = []
    for part, (c_in, c_out) in zip(parts, itertools.pairwise(widths), strict=True):
        layers += [nn.Conv3d(c_in, c_out, *part, bias=False), norm(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class VideoResNet(PooledResNet):
    """A ResNet of basic blocks on clips, with per-stage conv kinds.

    Args:
        stem: Kind of conv1.
        kinds: Kind of each of the four residual stages conv2_x..conv5_x.
        layers: Blocks per stage ([2, 2, 2, 2] for 18 layers, [3, 4, 6, 3] for 34).
        num_classes: Logits.
        mid_per_block: torchvision's M_i rule for (2+1)D blocks (see module docstring).
        frames: Temporal kernel of a folded (R2D) stem: the clip length it folds.
        bn_eps: BatchNorm epsilon of every BatchNorm (see module docstring).
    """

    def __init__(
        self,
        stem: ConvKind,
        kinds: Sequence[ConvKind],
        layers: Sequence[int],
        num_classes: int = 400,
        mid_per_block: bool = False,
        frames: int = 16,
        bn_eps: float = TORCHVISION_BN_EPS,
    ) -> None:
        super().__init__()
        if len(kinds) != 4 or len(layers) != 4:
            raise ValueError("kinds and layers need one entry per stage (4)")
        norm: Norm = partial(nn.BatchNorm3d, eps=bn_eps)
        self.stem = _stem(stem, frames, norm)

        def block(i: int, j: int, in_ch: int, width: int) -> BasicBlock:
            stride = 2 if (i > 0 and j == 0) else 1
            return BasicBlock(in_ch, width, kinds[i], stride, mid_per_block, norm)

        self.add_head(self.add_stages(64, _WIDTHS, layers, block), num_classes)
        init_resnet_weights(self)


@dataclass(frozen=True)
class ResNetConfig(ClassesOption):
    """One video ResNet: what :class:`VideoResNet` is built from and what its spec says.

    Attributes:
        stem: Kind of conv1.
        kinds: Kind of each residual stage, conv2_x..conv5_x.
        layers: Blocks per stage.
        frames: Frames of the paper's clip; a folded (R2D) stem spans exactly this many.
        mid_per_block: torchvision's M_i rule for (2+1)D blocks.
        bn_eps: BatchNorm epsilon: VMZ's 1e-3, or torchvision's 1e-5 for its models.
        num_classes: Logits (an option).
    """

    stem: ConvKind
    kinds: tuple[ConvKind, ...]
    layers: tuple[int, ...]
    frames: int = 16
    mid_per_block: bool = False
    bn_eps: float = VMZ_BN_EPS
    num_classes: int = 400

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be a positive number of frames, got {self.frames}")

    @property
    def default_input(self) -> Shape:
        """The paper's clip: ``frames`` frames of 112x112."""
        return (3, self.frames, 112, 112)

    @property
    def min_input(self) -> Shape:
        """The total stride, so that no strided conv acts on padding alone; a folded stem needs its whole clip.

        Space: conv1 and stages 3 to 5 halve it (16). Time: stages 3 to 5 halve
        it where their kind strides in time.
        """
        t_min = math.prod(kind.stride(2)[0] for kind in self.kinds[1:])
        return (3, self.frames if self.stem.folds_time else t_min, 16, 16)

    @property
    def stages(self) -> Stages:
        return tuple(zip(_STAGE_NAMES, (self.stem, *self.kinds), strict=True))

    def build(self) -> VideoResNet:
        return VideoResNet(
            self.stem, self.kinds, self.layers, self.num_classes, self.mid_per_block, self.frames, self.bn_eps
        )


def _mc(x: int) -> tuple[ConvKind, ...]:
    """MCx: 3D up to conv(x-1)_x, 2D from conv x_x on (conv1 is 3D)."""
    return tuple(K3D if stage < x else K2D for stage in (2, 3, 4, 5))


def _rmc(x: int) -> tuple[ConvKind, ...]:
    """rMCx: 2D up to conv(x-1)_x (conv1 is 2D), 3D from conv x_x on."""
    return tuple(K3D if stage >= x else K2D for stage in (2, 3, 4, 5))


_18 = (2, 2, 2, 2)
_34 = (3, 4, 6, 3)
_3D = (K3D,) * 4
_2D = (K2D,) * 4
_2P1 = (R2P1D,) * 4

_TRAN = "Mixed convolutions (Tran et al., CVPR 2018)"
"""The comparison of the paper's Table 2: the 18-layer variants at 16x112x112, in this order."""

_R2D = Family("r2d", color="#8c564b")
_MC = Family("mc", color="#d62728", mixed=True, series="MCx, x = 2..5 in order", marker="o")
_RMC = Family("rmc", color="#9467bd", mixed=True, series="rMCx, x = 2..5 in order", marker="s")
_R3D = Family("r3d", color="#2ca02c")
_R2PLUS1D = Family("r2plus1d", color="#e377c2")


# ------------------------------------------------------------------------------- weights and protocols
#
# The ResNets' keys are torchvision's, so a bare state dict's layout is named by the architecture:
# ``torchvision`` for torchvision's three models, ``vmz`` for the others (VMZ's PyTorch models and
# moabitcoin's IG-65M port of R(2+1)D-34 use torchvision's video ResNet keys).

# torchvision's video classification reference, references/video_classification/train.py: the test sampler is
# UniformClipSampler(video_clips, --clips-per-video=5), clips of --clip-len=16 frames at --frame-rate=15, one
# centre crop (VideoClassification: resize 128x171, CenterCrop 112), and evaluate() sums the clips' softmax per
# video ("Video Acc@1"). The weights' _docs say the same: "video-level with parameters frame_rate=15,
# clips_per_video=5, and clip_len=16". vbench approximates the 15 fps resampling with the weights' frame_stride.
TORCHVISION = register_protocol(
    Protocol(
        "torchvision",
        5,
        1,
        source="pytorch/vision references/video_classification/train.py (--clips-per-video 5, "
        "UniformClipSampler, softmax averaged per video); torchvision video ResNet weights docs",
    )
)
# Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018, and its model zoo
# (facebookresearch/VMZ c2/tutorials/models.md): video top-1/top-5 "computed by averaging the predictions from
# 10 clips per video", clips uniformly spaced, 112x112 centre crops.
TRAN = register_protocol(
    Protocol(
        "r2plus1d",
        10,
        1,
        source="Tran et al. CVPR 2018 (video accuracy over 10 clips); facebookresearch/VMZ c2/tutorials/models.md",
    )
)

TV_RESNET = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=(128, 171), crop=112, frames=16, frame_stride=1)
"""torchvision's video ResNets: ``VideoClassification(crop_size=(112, 112), resize_size=(128, 171))`` with its
Kinetics mean and std; 16-frame clips at 15 fps (``_docs``: ``frame_rate=15``, ``clip_len=16``). The paper's
other ResNets (Tran et al.: frames resized to 128x171, 112 crops) take it too, with their own clip length."""
IG65M = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=128, crop=112, frames=32, frame_stride=1)
"""IG-65M R(2+1)D-34 (moabitcoin/ig65m-pytorch ``ig65m/cli/extract.py``): short side resized to 128, a 112
centre crop, torchvision's Kinetics mean and std, 32-frame clips."""

_KEYS = r"^(stem\.\d+|layer[1-4]\.\d+|fc)\."


def _vmz(config: ResNetConfig) -> Pretrained:
    """The paper's ResNets: VMZ's checkpoints (torchvision's keys), at the paper's preprocessing and protocol."""
    preprocess = replace(TV_RESNET, frames=config.default_input[1])
    return Pretrained(preprocess, TRAN.name, (Layout("vmz", identity, preprocess, TRAN.name, pattern=_KEYS),))


def _ig65m(config: ResNetConfig) -> Pretrained:
    """R(2+1)D-34: the IG-65M port's preprocessing."""
    return Pretrained(IG65M, TRAN.name, (Layout("vmz", identity, IG65M, TRAN.name, pattern=_KEYS),))


def _torchvision(url: str) -> Callable[[ResNetConfig], Pretrained]:
    """torchvision's models: its published Kinetics-400 weights (``*_Weights.KINETICS400_V1``) and their metadata."""
    layout = Layout("torchvision", identity, TV_RESNET, TORCHVISION.name, pattern=_KEYS, url=url)
    # vbench's own checkpoints of these evaluate as the paper's ResNets do; torchvision's as torchvision does.
    return lambda config: Pretrained(TV_RESNET, TRAN.name, (layout,))


@register_arch(
    family=_R2D,
    paper=_PAPER,
    description="time folded into channels by a 16x7x7 conv1, then 2D",
    variant=Variant(_TRAN, order=0),
    pretrained=_vmz,
)
def r2d_18(frames: int = 16, **options: Any) -> ResNetConfig:
    """R2D-18: conv1 spans the whole clip (VMZ ``create_r2d``).

    Args:
        frames: Clip length folded by conv1 (the paper's L), and so the clip of
            its default and smallest input. Longer clips slide it over time and
            average.
    """
    return ResNetConfig(FOLDED, _2D, _18, frames=frames).with_options(**options)


@register_arch(
    family=_R2D,
    paper=_PAPER,
    description="2D ResNet-18 on every frame, time pooled at the end",
    variant=Variant(_TRAN, order=1),
    pretrained=_vmz,
)
def fr2d_18(**options: Any) -> ResNetConfig:
    """f-R2D-18: frame-wise 2D convs with shared weights; late temporal pooling."""
    return ResNetConfig(K2D, _2D, _18).with_options(**options)


@register_arch(
    family=_MC, paper=_PAPER, description="3D conv1, 2D from conv2_x", variant=Variant(_TRAN, order=2), pretrained=_vmz
)
def mc2_18(**options: Any) -> ResNetConfig:
    """MC2-18: only conv1 is 3D."""
    return ResNetConfig(K3D, _mc(2), _18).with_options(**options)


@register_arch(
    family=_MC,
    paper=_PAPER,
    description="3D up to conv2_x, 2D from conv3_x",
    variant=Variant(_TRAN, order=3),
    pretrained=_torchvision("https://download.pytorch.org/models/mc3_18-a90a0ba3.pth"),
)
def mc3_18(**options: Any) -> ResNetConfig:
    """MC3-18 as torchvision defines it (``mc3_18``: 11,695,440 parameters; BatchNorm eps 1e-5)."""
    return ResNetConfig(K3D, _mc(3), _18, bn_eps=TORCHVISION_BN_EPS).with_options(**options)


@register_arch(
    family=_MC,
    paper=_PAPER,
    description="3D up to conv3_x, 2D from conv4_x",
    variant=Variant(_TRAN, order=4),
    pretrained=_vmz,
)
def mc4_18(**options: Any) -> ResNetConfig:
    """MC4-18."""
    return ResNetConfig(K3D, _mc(4), _18).with_options(**options)


@register_arch(
    family=_MC,
    paper=_PAPER,
    description="3D up to conv4_x, 2D conv5_x",
    variant=Variant(_TRAN, order=5),
    pretrained=_vmz,
)
def mc5_18(**options: Any) -> ResNetConfig:
    """MC5-18."""
    return ResNetConfig(K3D, _mc(5), _18).with_options(**options)


@register_arch(
    family=_RMC, paper=_PAPER, description="2D conv1, 3D from conv2_x", variant=Variant(_TRAN, order=6), pretrained=_vmz
)
def rmc2_18(**options: Any) -> ResNetConfig:
    """rMC2-18: every residual stage is 3D."""
    return ResNetConfig(K2D, _rmc(2), _18).with_options(**options)


@register_arch(
    family=_RMC,
    paper=_PAPER,
    description="2D up to conv2_x, 3D from conv3_x",
    variant=Variant(_TRAN, order=7),
    pretrained=_vmz,
)
def rmc3_18(**options: Any) -> ResNetConfig:
    """rMC3-18."""
    return ResNetConfig(K2D, _rmc(3), _18).with_options(**options)


@register_arch(
    family=_RMC,
    paper=_PAPER,
    description="2D up to conv3_x, 3D from conv4_x",
    variant=Variant(_TRAN, order=8),
    pretrained=_vmz,
)
def rmc4_18(**options: Any) -> ResNetConfig:
    """rMC4-18."""
    return ResNetConfig(K2D, _rmc(4), _18).with_options(**options)


@register_arch(
    family=_RMC,
    paper=_PAPER,
    description="2D up to conv4_x, 3D conv5_x",
    variant=Variant(_TRAN, order=9),
    pretrained=_vmz,
)
def rmc5_18(**options: Any) -> ResNetConfig:
    """rMC5-18: only conv5_x is 3D."""
    return ResNetConfig(K2D, _rmc(5), _18).with_options(**options)


@register_arch(
    family=_R3D,
    paper=_PAPER,
    description="3D ResNet-18, 3x3x3 basic blocks",
    variant=Variant(_TRAN, order=10),
    pretrained=_torchvision("https://download.pytorch.org/models/r3d_18-b3b3357e.pth"),
)
def r3d_18(**options: Any) -> ResNetConfig:
    """R3D-18 as torchvision defines it (``r3d_18``: 33,371,472 parameters; BatchNorm eps 1e-5)."""
    return ResNetConfig(K3D, _3D, _18, bn_eps=TORCHVISION_BN_EPS).with_options(**options)


@register_arch(family=_R3D, paper=_PAPER, description="3D ResNet-34, 3x3x3 basic blocks", pretrained=_vmz)
def r3d_34(**options: Any) -> ResNetConfig:
    """R3D-34: blocks [3, 4, 6, 3] (VMZ ``r3d_model.py``)."""
    return ResNetConfig(K3D, _3D, _34).with_options(**options)


@register_arch(
    family=_R2PLUS1D,
    paper=_PAPER,
    description="(2+1)D blocks, M_i per conv (paper, VMZ)",
    variant=Variant(_TRAN, order=11),
    pretrained=_vmz,
)
def r2plus1d_18(**options: Any) -> ResNetConfig:
    """R(2+1)D-18 as in the paper: the intermediate width M_i computed for each conv."""
    return ResNetConfig(R2P1D, _2P1, _18).with_options(**options)


@register_arch(
    family=_R2PLUS1D, paper=_PAPER, description="(2+1)D ResNet-34, M_i per conv (paper, VMZ)", pretrained=_ig65m
)
def r2plus1d_34(**options: Any) -> ResNetConfig:
    """R(2+1)D-34: blocks [3, 4, 6, 3]; the paper's 32-frame Kinetics model.

    Computes what VMZ's ``pt/vmz/models/r2plus1d.py`` and moabitcoin's IG-65M port
    compute given the same weights: torchvision's module layout, per-conv M_i,
    BatchNorm eps 1e-3.
    """
    return ResNetConfig(R2P1D, _2P1, _34, frames=32).with_options(**options)


@register_arch(
    family=_R2PLUS1D,
    paper=_PAPER,
    description="torchvision's R(2+1)D-18: one M_i per block",
    pretrained=_torchvision("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"),
)
def r2plus1d_18_tv(**options: Any) -> ResNetConfig:
    """R(2+1)D-18 as torchvision defines it (31,505,325 parameters).

    torchvision's ``BasicBlock`` computes ``midplanes`` from the block's (in, out)
    and uses it for both convs; the paper computes it per conv (see :func:`r2plus1d_18`).
    BatchNorm eps 1e-5, as torchvision's.
    """
    return ResNetConfig(R2P1D, _2P1, _18, mid_per_block=True, bn_eps=TORCHVISION_BN_EPS).with_options(**options)
