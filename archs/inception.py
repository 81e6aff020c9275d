"""Inception-v1 video networks: I3D, I2D, S3D, S3D-G and the mixed 2D/3D I3Ds.

References:
    Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
    Kinetics Dataset", CVPR 2017 (I3D; layer list from deepmind/kinetics-i3d).
    Xie, Sun, Huang, Tu & Murphy, "Rethinking Spatiotemporal Feature Learning:
    Speed-Accuracy Trade-offs in Video Classification", ECCV 2018 (S3D, S3D-G,
    I2D, Bottom-Heavy and Top-Heavy I3D).

The family is one file of about 600 lines, as timm's and torchvision's model files are: its
configuration, blocks, weights layout and builders are read together.

All of them are one network, :class:`InceptionNet`, built from one
:class:`InceptionConfig`: the :class:`~archs._blocks.ConvKind` of each of the
eleven conv blocks (3D, 2D or separable), a gating flag and a padding rule. A 2D
block keeps the 3D layout but has temporal kernel 1; pools are those of I3D in
every variant (the branch-3 max-pool stays 3x3x3 and MaxPool_4a / MaxPool_5a
still stride in time), as in the TF-slim reference, and the stem strides by 2 in
time whatever its kind, so that every variant keeps I3D's temporal resolution.

Padding follows each network's reference implementation, so that its weights
compute the function they were trained as, at every input size:

- ``"same"``: TensorFlow's SAME for every conv and max-pool
  (:func:`archs._blocks.same_padding`): asymmetric and input-dependent (the
  7x7x7 stride-2 stem pads 2 before and 3 after at 224, 3 and 3 at 225). DeepMind's
  I3D (Sonnet), its PyTorch port piergiaj/pytorch-i3d (``pytorch_i3d.py``, which
  pads dynamically in ``Unit3D`` and ``MaxPool3dSamePadding``) and TF-slim's
  ``s3dg.py`` / ``i3d.py`` (every ``conv3d`` and ``max_pool3d`` under
  ``padding='SAME'``) use it: ``i3d``, ``i2d``, ``s3d_g`` and the heavy I3Ds.
  Output shapes are ``ceil(size / stride)`` for every op.
- ``"symmetric"``: torchvision's ``s3d`` (``torchvision/models/video/s3d.py``):
  ``k // 2`` on both sides of each conv, pools padded (0, 1, 1) / 1 / 0 in floor
  mode. Shapes equal SAME's except at MaxPool_5a (2x2x2, stride 2, no padding),
  which rounds down on odd sizes where SAME rounds up: at 27x231x231 torchvision
  counts 33.90 GMACs where SAME would give 34.25, and the smallest clip grows to
  13x209x209. ``s3d`` uses it.

Inception block (``Mixed_*``), branches concatenated on channels::

    x -+-> 1x1x1 ------------------------> [gate] -+
       +-> 1x1x1 -> 3x3x3 (or 1x3x3+3x1x1) -> [gate] -+-> concat
       +-> 1x1x1 -> 3x3x3 (or 1x3x3+3x1x1) -> [gate] -+
       +-> maxpool 3x3x3 -> 1x1x1 ---------> [gate] -+
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from archs._blocks import ConvKind, ConvUnit, SameMaxPool2d, SameMaxPool3d, Triple, VideoClassifier
from archs._registry import Family, Shape, Stages, Variant, register_arch
from archs._weights import (
    KINETICS_MEAN,
    KINETICS_STD,
    KeyMap,
    Layout,
    Preprocess,
    Pretrained,
    Protocol,
    register_protocol,
)

__all__ = [
    "BLOCKS",
    "PADDINGS",
    "SPLIT_POINTS",
    "InceptionBlock",
    "InceptionConfig",
    "InceptionNet",
    "SelfGating",
    "inception_kinds",
    "inception_v1_2d",
]

K3D, K2D, SEP = ConvKind.THREE_D, ConvKind.TWO_D, ConvKind.SEPARABLE

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
# The max-pools that stride in time, by the block they precede: name, kernel, stride.
_POOL_BEFORE: Mapping[str, tuple[str, Triple, Triple]] = {
    "Mixed_4b": ("MaxPool_4a", (3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ("MaxPool_5a", (2, 2, 2), (2, 2, 2)),
}

PADDINGS: tuple[str, ...] = ("same", "symmetric")
"""Padding rules (see the module docstring): TensorFlow's SAME, or torchvision's symmetric padding."""


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


@dataclass(frozen=True)
class _Unit:
    """How every conv unit and pool of one network is built: dimension, padding rule, BatchNorm momentum."""

    dim: int = 3
    same: bool = True
    momentum: float = 0.001

    def conv(
        self, in_ch: int, out_ch: int, kernel: int | Triple, stride: int | Triple = 1, padding: int | Triple = 0
    ) -> ConvUnit:
        return ConvUnit(in_ch, out_ch, kernel, stride, padding, dim=self.dim, same=self.same, momentum=self.momentum)

    def max_pool(self, kernel: Triple, stride: Triple) -> nn.Module:
        """SAME, or torchvision's: (k - 1) // 2 on both sides (0 for 1 and 2, 1 for 3), floor mode."""
        k, s = (kernel, stride) if self.dim == 3 else (kernel[1:], stride[1:])
        if self.same:
            return SameMaxPool3d(k, s) if self.dim == 3 else SameMaxPool2d(k, s)
        pad = tuple((ki - 1) // 2 for ki in k)
        return nn.MaxPool3d(k, s, pad) if self.dim == 3 else nn.MaxPool2d(k, s, pad)


def _st_conv(unit: _Unit, kind: ConvKind, in_ch: int, out_ch: int, k: int, stride: int) -> nn.Module:
    """A k x k spatial conv of the given kind, each part followed by BN and ReLU; ``stride`` applies to time and space.

    A factorised (separable) kind is 1 x k x k then k x 1 x 1, both of full output
    width (S3D; unlike R(2+1)D the middle width is not parameter-matched). In 2D
    (``dim=2``) every conv is 2D.
    """
    parts = (K2D if unit.dim == 2 else kind).parts(k, (stride, stride, stride))
    if len(parts) == 1:
        return unit.conv(in_ch, out_ch, *parts[0])
    spatial, temporal = parts
    return nn.Sequential(
        OrderedDict(spatial=unit.conv(in_ch, out_ch, *spatial), temporal=unit.conv(out_ch, out_ch, *temporal))
    )


def _maybe_gate(module: nn.Module, channels: int, gating: bool) -> nn.Module:
    return nn.Sequential(module, SelfGating(channels)) if gating else module


class InceptionBlock(nn.Module):
    """One ``Mixed_*`` block; see the module docstring for its branches."""

    def __init__(
        self,
        in_ch: int,
        widths: tuple[int, int, int, int, int, int],
        kind: ConvKind,
        gating: bool = False,
        unit: _Unit = _Unit(),
    ) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branch0 = _maybe_gate(unit.conv(in_ch, b0, 1), b0, gating)
        self.branch1 = nn.Sequential(
            unit.conv(in_ch, b1a, 1), _maybe_gate(_st_conv(unit, kind, b1a, b1b, 3, 1), b1b, gating)
        )
        self.branch2 = nn.Sequential(
            unit.conv(in_ch, b2a, 1), _maybe_gate(_st_conv(unit, kind, b2a, b2b, 3, 1), b2b, gating)
        )
        self.branch3 = nn.Sequential(
            unit.max_pool((3, 3, 3), (1, 1, 1)), _maybe_gate(unit.conv(in_ch, b3, 1), b3, gating)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class InceptionNet(VideoClassifier):
    """Inception-v1 (BN) as a video network (``dim=3``) or as an image network (``dim=2``).

    Args:
        kinds: Kind of each of :data:`BLOCKS` (ignored for ``dim=2``).
        gating: S3D-G feature gating on Conv_2c and on every branch output.
        num_classes: Logits.
        dropout: Dropout before the logits conv.
        dim: 3 for clips (B, C, T, H, W), 2 for images (B, C, H, W).
        padding: One of :data:`PADDINGS` (see the module docstring).
        bn_momentum: BatchNorm momentum (PyTorch's convention), which only
            matters in training: 0.001 for TF's decay 0.999 (Sonnet, TF-slim,
            torchvision's S3D), 0.01 in piergiaj's I3D.

    The head follows DeepMind's I3D: average pool 2x7x7 (7x7 in 2D), stride 1,
    no padding; dropout; a 1x1x1 conv with bias (the classifier, ``logits``);
    the mean over the remaining positions (DeepMind averages the logits over
    time; where Mixed_5c is wider than 7x7, over space too). Hence the smallest
    clip is 9x193x193 with SAME padding (Mixed_5c must be at least 2x7x7), and
    13x209x209 with torchvision's.
    """

    def __init__(
        self,
        kinds: Sequence[ConvKind],
        gating: bool = False,
        num_classes: int = 400,
        dropout: float = 0.5,
        dim: int = 3,
        padding: str = "same",
        bn_momentum: float = 0.001,
    ) -> None:
        super().__init__()
        if len(kinds) != len(BLOCKS):
            raise ValueError(f"expected {len(BLOCKS)} block kinds, got {len(kinds)}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}; got {padding!r}")
        kind = dict(zip(BLOCKS, kinds, strict=True))
        gating = gating and dim == 3
        unit = _Unit(dim=dim, same=padding == "same", momentum=bn_momentum)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["Conv_1a"] = _st_conv(unit, kind["Conv_1a"], 3, 64, 7, 2)
        layers["MaxPool_2a"] = unit.max_pool((1, 3, 3), (1, 2, 2))
        layers["Conv_2b"] = unit.conv(64, 64, 1)
        layers["Conv_2c"] = _maybe_gate(_st_conv(unit, kind["Conv_2c"], 64, 192, 3, 1), 192, gating)
        layers["MaxPool_3a"] = unit.max_pool((1, 3, 3), (1, 2, 2))
        in_ch = 192
        for name, widths in _MIXED.items():
            if name in _POOL_BEFORE:
                pool, kernel, stride = _POOL_BEFORE[name]
                layers[pool] = unit.max_pool(kernel, stride)
            layers[name] = InceptionBlock(in_ch, widths, kind[name], gating, unit)
            in_ch = _out_width(widths)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AvgPool3d((2, 7, 7), stride=1) if dim == 3 else nn.AvgPool2d(7, stride=1)
        self.dropout = nn.Dropout(dropout)
        conv = nn.Conv3d if dim == 3 else nn.Conv2d
        self.logits = conv(in_ch, num_classes, kernel_size=1, bias=True)
        self.num_classes = num_classes
        self.num_features = in_ch

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.logits(self.dropout(self.avgpool(x)))
        return x.mean(dim=tuple(range(2, x.ndim)))

    @property
    def classifier(self) -> nn.Module:
        return self.logits


def inception_kinds(low: ConvKind, high: ConvKind | None = None, split: str | None = None) -> tuple[ConvKind, ...]:
    """Per-block kinds: ``low`` for the blocks below ``split``, ``high`` from it on (``low`` everywhere without a split).

    Raises:
        ValueError: if ``split`` is not one of :data:`SPLIT_POINTS`.
    """
    if split is None or high is None:
        return (low,) * len(BLOCKS)
    if split not in SPLIT_POINTS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_POINTS)}; got {split!r}")
    i = BLOCKS.index(split)
    return (low,) * i + (high,) * (len(BLOCKS) - i)


def inception_v1_2d(num_classes: int = 1000, dropout: float = 0.5) -> InceptionNet:
    """The 2D Inception-v1 (BN) image network that I3D is inflated from.

    Same layer list, parameter names and (SAME) padding as I3D, so that
    :func:`archs.inflate.inflate_from_2d` maps one onto the other by name and the
    inflated network samples the same spatial grid.
    """
    return InceptionNet((K2D,) * len(BLOCKS), num_classes=num_classes, dropout=dropout, dim=2)


@dataclass(frozen=True)
class InceptionConfig:
    """One Inception video network: what :class:`InceptionNet` is built from and what its spec says.

    Attributes:
        kinds: Kind of each of :data:`BLOCKS`.
        gating: S3D-G feature gating.
        padding: One of :data:`PADDINGS`: the reference implementation's.
        bn_momentum: BatchNorm momentum of the reference implementation.
        num_classes: Logits (an option).
        dropout: Dropout before the logits (an option).
    """

    kinds: tuple[ConvKind, ...]
    gating: bool = False
    padding: str = "same"
    bn_momentum: float = 0.001
    num_classes: int = 400
    dropout: float = 0.5

    def with_options(self, *, num_classes: int | None = None, dropout: float | None = None) -> InceptionConfig:
        """The options every Inception network takes; any other keyword is a TypeError."""
        return replace(
            self,
            num_classes=self.num_classes if num_classes is None else num_classes,
            dropout=self.dropout if dropout is None else dropout,
        )

    @property
    def default_input(self) -> Shape:
        """The papers' clip: 64 frames of 224x224."""
        return (3, 64, 224, 224)

    @property
    def min_input(self) -> Shape:
        """What the fixed 2x7x7 head needs (see :class:`InceptionNet`).

        SAME: every op gives ``ceil(n / stride)``; time is halved twice before
        MaxPool_5a and space four times, so 2 frames need 9 and 7 pixels 193.
        torchvision's MaxPool_5a rounds down: ``floor(ceil(ceil(n / 2) / 2) / 2) >= 2``
        needs 13 frames, ``>= 7`` needs 209 pixels.
        """
        return (3, 9, 193, 193) if self.padding == "same" else (3, 13, 209, 209)

    @property
    def stages(self) -> Stages:
        return tuple(zip(BLOCKS, self.kinds, strict=True))

    def build(self) -> InceptionNet:
        return InceptionNet(
            self.kinds,
            self.gating,
            num_classes=self.num_classes,
            dropout=self.dropout,
            padding=self.padding,
            bn_momentum=self.bn_momentum,
        )


_I3D_PAPER = "Carreira & Zisserman, Quo Vadis, Action Recognition? CVPR 2017"
_XIE_PAPER = "Xie et al., Rethinking Spatiotemporal Feature Learning, ECCV 2018"
_XIE = "Mixed 2D/3D Inception (Xie et al., ECCV 2018)"
_HEAVY_SPLIT = "Mixed_4b"

_I3D = Family("i3d", color="#1f77b4")
_S3D = Family("s3d", color="#ff7f0e")
_MIXED_I3D = Family("i3d_mixed", color="#17becf", mixed=True)


# ------------------------------------------------------------------------------- weights and protocols

# Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017, sec. 2.4: "test using the whole videos,
# averaging predictions temporally", one 224x224 centre crop (deepmind/kinetics-i3d). vbench runs the model once on
# every frame of the video (at the weights' frame stride, at most bench.evaluate.video.WHOLE_MAX_FRAMES), convolutionally in
# time as the paper did; the model averages over time itself.
WHOLE_VIDEO_I3D = register_protocol(
    Protocol(
        "i3d",
        None,
        1,
        source="Carreira & Zisserman CVPR 2017 sec. 2.4 (whole video, 224 centre crop, predictions averaged in time)",
    )
)
# Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018: trained on 64-frame clips and tested as I3D
# is (docs/evaluate.md, "Protocols": trained on 64x224x224 clips, tested as I3D): the whole video, one centre crop.
WHOLE_VIDEO_S3D = register_protocol(
    Protocol("s3d", None, 1, source="Xie et al. ECCV 2018 (tested as I3D: whole video, one 224 centre crop)")
)
# torchvision's S3D weights (S3D_Weights.KINETICS400_V1, torchvision/models/video/s3d.py _docs): "clip-level with
# parameters frame_rate=15, clips_per_video=1, and clip_len=128", resize 256x256, centre crop 224. torchvision's
# sampler takes the first clip of a video when asked for one; vbench takes the centre one.
TORCHVISION_S3D = register_protocol(
    Protocol(
        "torchvision_s3d",
        1,
        1,
        frames=128,
        source="torchvision S3D_Weights.KINETICS400_V1 docs (1 clip of 128 frames, centre crop)",
    )
)

DEEPMIND = Preprocess((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize=256, crop=224, frames=64, frame_stride=1)
"""DeepMind's I3D (and Xie et al.): RGB scaled to [-1, 1], the short side resized to 256, a 224 centre crop, 64
frames at 25 fps (kinetics-i3d README, Quo Vadis sec. 3)."""
TV_S3D = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=(256, 256), crop=224, frames=128, frame_stride=1)
"""torchvision's S3D: ``resize_size=(256, 256)``, ``crop_size=(224, 224)``, torchvision's Kinetics mean and std;
its accuracy is estimated on 128-frame clips at 15 fps."""

_PIERGIAJ_UNITS = {"Conv_1a": "Conv3d_1a_7x7", "Conv_2b": "Conv3d_2b_1x1", "Conv_2c": "Conv3d_2c_3x3"}
_PIERGIAJ_BRANCHES = {
    ("branch0",): "b0",
    ("branch1", "0"): "b1a",
    ("branch1", "1"): "b1b",
    ("branch2", "0"): "b2a",
    ("branch2", "1"): "b2b",
    ("branch3", "1"): "b3b",
}


def _to_piergiaj(key: str) -> str | None:
    """``features.Mixed_3b.branch1.1.conv.weight`` -> ``Mixed_3b.b1b.conv3d.weight`` (``pytorch_i3d.py``'s names).

    piergiaj's ``Unit3D`` holds ``conv3d`` and ``bn``; ``InceptionModule`` holds
    ``b0``, ``b1a``/``b1b``, ``b2a``/``b2b`` and ``b3b`` (after the pool ``b3a``);
    the logits are a ``Unit3D`` without BatchNorm, with bias.
    """
    parts = key.split(".")
    if parts[0] == "logits":
        return ".".join(["logits", "conv3d", *parts[1:]])
    if parts[0] != "features" or len(parts) < 4:
        return None
    block, rest = parts[1], parts[2:]
    if block in _PIERGIAJ_UNITS:
        head = [_PIERGIAJ_UNITS[block]]
    else:
        width = 1 if rest[0] == "branch0" else 2
        branch = _PIERGIAJ_BRANCHES.get(tuple(rest[:width]))
        if branch is None:
            return None
        head, rest = [block, branch], rest[width:]
    unit = {"conv": "conv3d", "bn": "bn"}.get(rest[0])
    return None if unit is None else ".".join([*head, unit, *rest[1:]])


# torchvision's S3D nests Sequentials: Conv3dNormActivation is (conv, bn, relu), and
# TemporalSeparableConv is (spatial, temporal).
_TV_S3D_TOKENS = {"spatial": "0", "temporal": "1", "conv": "0", "bn": "1"}


def _tv_s3d_map(blocks: Sequence[str]) -> KeyMap:
    """Our S3D keys -> torchvision's: ``features.<block>`` by position, our unit names by index, ``classifier.1``."""

    def to_ref(key: str) -> str | None:
        parts = key.split(".")
        if parts[0] == "logits":
            return ".".join(["classifier", "1", *parts[1:]])
        if parts[0] != "features" or len(parts) < 3 or parts[1] not in blocks:
            return None
        tokens = [_TV_S3D_TOKENS.get(p, p) for p in parts[2:]]
        return ".".join(["features", str(blocks.index(parts[1])), *tokens])

    return to_ref


def _deepmind(protocol: str, *layouts: Layout) -> Callable[[InceptionConfig], Pretrained]:
    """The papers' Inception networks: [-1, 1], short side 256, 224 crops, the architecture's clip."""

    def pretrained(config: InceptionConfig) -> Pretrained:
        return Pretrained(replace(DEEPMIND, frames=config.default_input[1]), protocol, layouts)

    return pretrained


def _torchvision_s3d(config: InceptionConfig) -> Pretrained:
    """torchvision's S3D: its published weights and their metadata."""
    with torch.device("meta"):
        blocks = [name for name, _ in config.build().features.named_children()]
    layout = Layout(
        "torchvision",
        _tv_s3d_map(blocks),
        TV_S3D,
        TORCHVISION_S3D.name,
        pattern=r"^(features\.\d+|classifier\.\d+)\.",
        url="https://download.pytorch.org/models/s3d-d76dad2f.pth",
    )
    return Pretrained(TV_S3D, WHOLE_VIDEO_S3D.name, (layout,))


_PIERGIAJ = Layout(
    "piergiaj-i3d",
    _to_piergiaj,
    DEEPMIND,
    WHOLE_VIDEO_I3D.name,
    pattern=r"^(Conv3d_\w+|Mixed_\d\w)\.|^logits\.conv3d\.",
)


@register_arch(
    family=_I3D,
    paper=_I3D_PAPER,
    description="Inception-v1 (BN) inflated to 3D; DeepMind layer list",
    variant=Variant(_XIE, order=2, label="I3D"),
    pretrained=_deepmind(WHOLE_VIDEO_I3D.name, _PIERGIAJ),
)
def i3d(**options: Any) -> InceptionConfig:
    """I3D: every conv k x k becomes k x k x k (the stem 7x7x7, stride 2 in time).

    Computes what DeepMind's ``i3d.py`` and piergiaj's ``InceptionI3d`` compute given
    the same weights: SAME padding, BatchNorm eps 1e-3, the logits a 1x1x1 conv with
    bias after a 2x7x7 average pool, averaged over time. BatchNorm momentum is
    piergiaj's 0.01 (Sonnet's decay 0.999 would be 0.001); it only affects training.
    """
    return InceptionConfig(inception_kinds(K3D), bn_momentum=0.01).with_options(**options)


@register_arch(
    family=_I3D,
    paper=_XIE_PAPER,
    description="I3D with temporal kernel 1 in every conv; pools as I3D",
    variant=Variant(_XIE, order=3, label="I2D"),
    pretrained=_deepmind(WHOLE_VIDEO_I3D.name),
)
def i2d(**options: Any) -> InceptionConfig:
    """I2D: a 2D network applied to every frame, with I3D's (temporal) pools."""
    return InceptionConfig(inception_kinds(K2D)).with_options(**options)


@register_arch(
    family=_S3D,
    paper=_XIE_PAPER,
    description="separable 1xkxk + kx1x1 stem, Conv_2c and Inception branches 1-2",
    pretrained=_torchvision_s3d,
)
def s3d(**options: Any) -> InceptionConfig:
    """S3D as torchvision defines it (8,320,048 parameters, dropout 0.2), padding included.

    The stem is separable too (torchvision, kylemin/S3D). TF-slim's S3D-G keeps a
    non-separable 3x7x7 stem instead; that and padding are why this definition
    counts 71.9 GMACs at 64x224x224 where the paper reports 66.4. Padding is
    torchvision's (symmetric, floor-mode pools), so torchvision's weights compute
    here what they compute there at every size; MaxPool_5a rounds down on odd
    sizes, which makes the smallest clip 13x209x209 (torchvision's metadata says
    14 frames, 224 pixels). BatchNorm: eps 1e-3, momentum 0.001, as torchvision's.
    """
    return InceptionConfig(inception_kinds(SEP), padding="symmetric", dropout=0.2).with_options(**options)


@register_arch(
    family=_S3D,
    paper=_XIE_PAPER,
    description="S3D plus feature gating on Conv_2c and every branch output",
    pretrained=_deepmind(WHOLE_VIDEO_S3D.name),
)
def s3d_g(**options: Any) -> InceptionConfig:
    """S3D-G: :func:`s3d` with :class:`SelfGating` where TF-slim's ``s3dg.py`` gates.

    Its reference is TF-slim's, so its padding is TensorFlow's SAME (as in every
    variant of Xie et al.), not torchvision's: its shapes and MACs are ``s3d``'s plus
    the gates' wherever MaxPool_5a's input is even (at 64x224x224, say), but SAME
    samples other positions than ``s3d`` wherever it pads asymmetrically, and keeps
    one more where MaxPool_5a's input is odd.
    """
    return InceptionConfig(inception_kinds(SEP), gating=True, dropout=0.2).with_options(**options)


@register_arch(
    family=_MIXED_I3D,
    paper=_XIE_PAPER,
    description="3D blocks below the split (default Mixed_4b), 2D from it on",
    variant=Variant(_XIE, order=0, label="Bottom-Heavy (3D below the split)", color="#1f77b4", splits=SPLIT_POINTS),
    pretrained=_deepmind(WHOLE_VIDEO_I3D.name),
)
def i3d_bottom_heavy(split: str = _HEAVY_SPLIT, **options: Any) -> InceptionConfig:
    """Bottom-Heavy I3D: "3D in the lower layers, and 2D in the higher layers".

    Args:
        split: First block that is 2D, one of :data:`SPLIT_POINTS`. The default,
            Mixed_4b, switches at MaxPool_4a: 3D through Mixed_3c.
    """
    return InceptionConfig(inception_kinds(K3D, K2D, split)).with_options(**options)


@register_arch(
    family=_MIXED_I3D,
    paper=_XIE_PAPER,
    description="2D blocks below the split (default Mixed_4b), 3D from it on",
    variant=Variant(_XIE, order=1, label="Top-Heavy (2D below the split)", color="#d62728", splits=SPLIT_POINTS),
    pretrained=_deepmind(WHOLE_VIDEO_I3D.name),
)
def i3d_top_heavy(split: str = _HEAVY_SPLIT, **options: Any) -> InceptionConfig:
    """Top-Heavy I3D: "2D in the lower (larger) layers, and 3D in the upper layers".

    Args:
        split: First block that is 3D, one of :data:`SPLIT_POINTS`. The default,
            Mixed_4b, switches at MaxPool_4a: 2D through Mixed_3c (the stem too).
    """
    return InceptionConfig(inception_kinds(K2D, K3D, split)).with_options(**options)
