"""Slow-only and SlowFast networks: ResNet bottlenecks on one or two pathways of different frame rates.

Reference:
    Feichtenhofer, Fan, Malik & He, "SlowFast Networks for Video Recognition",
    ICCV 2019. Where the paper is silent the authors' code is followed:
    facebookresearch/SlowFast (PySlowFast, ``slowfast/models/video_model_builder.py``,
    ``resnet_helper.py``, ``stem_helper.py``, ``head_helper.py``) and its
    PyTorchVideo port (pytorchvideo 0.1.5, ``models/slowfast.py``, ``models/resnet.py``,
    ``models/hub/``), which give the same network under other module names.

One network, :class:`SlowFastNet`, built from one :class:`SlowFastConfig`:

- Each pathway is a ResNet of bottleneck blocks: a stem (t x 7 x 7 conv, stride
  (1, 2, 2), BN, ReLU, 1 x 3 x 3 max-pool of stride (1, 2, 2)) and four stages
  res2..res5 of 3/4/6/3 (R50) or 3/4/23/3 (R101) blocks. A block is t x 1 x 1,
  then 1 x 3 x 3 (which carries the spatial stride), then 1 x 1 x 1; its
  shortcut projects with a strided 1 x 1 x 1 conv where the shape changes. No
  stage strides in time.
- The Slow pathway's first conv of each block is 1 x 1 x 1 in res2 and res3 and
  3 x 1 x 1 in res4 and res5 ("slow" temporal kernels); its stem is 1 x 7 x 7.
  The Fast pathway (beta = 1/8 of the channels) has a 5 x 7 x 7 stem and
  3 x 1 x 1 in every stage.
- After the stem and after res2..res4, a lateral connection fuses Fast into
  Slow: a (fusion kernel) x 1 x 1 conv of stride alpha, doubling the Fast
  channels, BN, ReLU, concatenated to the Slow features.
- Head: each pathway averaged over space and time, concatenated, dropout 0.5,
  a linear classifier. The references pool with a fixed kernel set by the
  training clip (PyTorchVideo: ``AvgPool3d((8, 7, 7))`` and ``(32, 7, 7)``);
  here the pool is adaptive, so any valid clip gives logits, and at the training
  crop (224) the two are the same function.

One clip in: the model takes the Fast pathway's clip (B, C, T, H, W) and derives
the Slow pathway's inside, exactly as PySlowFast's data loader does
(``slowfast/datasets/utils.py``, ``pack_pathway_output``): ``T // alpha`` frames
at ``torch.linspace(0, T - 1, T // alpha).long()``. For 32 frames and alpha 4
these are frames 0, 4, 8, 13, 17, 22, 26, 31; for alpha 8, frames 0, 10, 20,
31. ``T`` must be a multiple of alpha, for the lateral convs (stride alpha) to
give the Slow pathway's frame count. Slow-only takes its clip as it is.

BatchNorm epsilon 1e-5 and momentum 0.1, as both references.

Bottleneck block::

    x -+-> t x 1 x 1 -> BN -> ReLU -> 1 x 3 x 3 (stride) -> BN -> ReLU -> 1 x 1 x 1 -> BN -+-> ReLU
       +-> [1 x 1 x 1 (stride) -> BN] -----------------------------------------------------+
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from archs._blocks import ConvKind, ResidualStages, VideoClassifier, init_resnet_weights
from archs._registry import ClassesOption, CroppedClip, Family, Shape, Stages, register_arch
from archs._weights import PYTORCHVIDEO_BOTTLENECK, Layout, Preprocess, Pretrained

__all__ = [
    "Bottleneck",
    "FastToSlow",
    "Pathway",
    "SlowFastConfig",
    "SlowFastNet",
    "pyslowfast_key",
    "pytorchvideo_key",
    "slow_frame_indices",
]

K3D, K2D = ConvKind.THREE_D, ConvKind.TWO_D

BN_EPS = 1e-5
"""BatchNorm epsilon of PySlowFast (``BN.EPS``) and PyTorchVideo (``norm_eps``)."""

_PAPER = "Feichtenhofer et al., SlowFast Networks for Video Recognition, ICCV 2019"
_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
_SLOW_KERNELS = (1, 1, 3, 3)
"""Temporal kernel of each Slow stage's first conv (res2..res5): PySlowFast's ``_TEMPORAL_KERNEL_BASIS``."""
_FAST_KERNELS = (3, 3, 3, 3)
_STAGE_NAMES = ("conv1", "res2", "res3", "res4", "res5")


def slow_frame_indices(frames: int, alpha: int) -> Tensor:
    """The Fast clip's frames that form the Slow pathway's clip (PySlowFast's ``pack_pathway_output``).

    ``torch.linspace(0, frames - 1, frames // alpha).long()``, computed on the CPU
    in float32 as the data loader does, so that the indices are the reference's
    whatever device the model runs on.
    """
    return torch.linspace(0, frames - 1, frames // alpha, dtype=torch.float32, device="cpu").long()


def _norm(width: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(width, eps=BN_EPS)


class Bottleneck(nn.Module):
    """t x 1 x 1 -> 1 x 3 x 3 (spatial stride) -> 1 x 1 x 1, with a residual connection (see the module docstring).

    Args:
        in_ch: Input channels.
        inner: Width of the first two convs.
        out_ch: Output channels.
        stride: Spatial stride (of the 3 x 3 conv and the shortcut).
        t: Temporal kernel of the first conv.
    """

    def __init__(self, in_ch: int, inner: int, out_ch: int, stride: int, t: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, inner, (t, 1, 1), padding=(t // 2, 0, 0), bias=False)
        self.bn1 = _norm(inner)
        self.conv2 = nn.Conv3d(inner, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = _norm(inner)
        self.conv3 = nn.Conv3d(inner, out_ch, 1, bias=False)
        self.bn3 = _norm(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, (1, stride, stride), bias=False), _norm(out_ch))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class Stem(nn.Module):
    """t x 7 x 7 conv of stride (1, 2, 2), BN, ReLU, 1 x 3 x 3 max-pool of stride (1, 2, 2)."""

    def __init__(self, out_ch: int, t: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, out_ch, (t, 7, 7), (1, 2, 2), (t // 2, 3, 3), bias=False)
        self.bn = _norm(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class Pathway(ResidualStages):
    """One pathway: a stem and four stages of bottlenecks (``layer1``..``layer4`` = res2..res5).

    Args:
        width: Stem width (64 for Slow, 8 for Fast); stage outputs are 4, 8, 16
            and 32 times it, their inner widths a quarter of that.
        stem_t: Temporal kernel of the stem.
        kernels: Temporal kernel of each stage's first convs.
        depths: Blocks per stage.
        extra: Channels the lateral connections add to each stage's input (none for Fast).
    """

    def __init__(
        self, width: int, stem_t: int, kernels: Sequence[int], depths: Sequence[int], extra: Sequence[int] = (0,) * 4
    ) -> None:
        super().__init__()
        self.stem = Stem(width, stem_t)

        def block(i: int, j: int, in_ch: int, out_ch: int) -> Bottleneck:
            stride = 2 if (i > 0 and j == 0) else 1
            return Bottleneck(in_ch + (extra[i] if j == 0 else 0), out_ch // 4, out_ch, stride, kernels[i])

        widths = [width * 4 * 2**i for i in range(len(depths))]
        self.num_features = self.add_stages(width, widths, depths, block)


class FastToSlow(nn.Module):
    """The lateral connection: Fast features -> (kernel x 1 x 1 conv, stride alpha) -> BN -> ReLU, joined to Slow's.

    Args:
        fast_ch: Channels of the Fast features.
        kernel: Temporal kernel of the conv (7 for SlowFast R50 8x8, 5 for 4x16 and R101).
        alpha: Frame-rate ratio, the conv's temporal stride.
        ratio: Output channels per Fast channel (2).
    """

    def __init__(self, fast_ch: int, kernel: int, alpha: int, ratio: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv3d(fast_ch, fast_ch * ratio, (kernel, 1, 1), (alpha, 1, 1), (kernel // 2, 0, 0), bias=False)
        self.bn = _norm(fast_ch * ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, slow: Tensor, fast: Tensor) -> Tensor:
        return torch.cat((slow, self.relu(self.bn(self.conv(fast)))), dim=1)


class SlowFastNet(VideoClassifier):
    """A Slow pathway, optionally a Fast one with lateral connections, and a linear head (see the module docstring).

    Args:
        depth: 50 or 101.
        alpha: Frame-rate ratio of Fast to Slow; None builds the Slow pathway alone (Slow-only).
        fusion_kernel: Temporal kernel of the lateral convs.
        beta_inv: Slow channels per Fast channel (8).
        stem_t: Temporal kernel of the Slow stem (1).
        num_classes: Logits.
        dropout: Dropout before the classifier.
    """

    def __init__(
        self,
        depth: int = 50,
        alpha: int | None = 4,
        fusion_kernel: int = 7,
        beta_inv: int = 8,
        stem_t: int = 1,
        num_classes: int = 400,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        depths = _DEPTHS[depth]
        self.alpha = alpha
        self._indices: dict[tuple[int, str], Tensor] = {}
        fast_width = 64 // beta_inv
        # Fast channels at each lateral connection: after the stem, res2, res3, res4.
        lateral = [fast_width, *(fast_width * 4 * 2**i for i in range(3))]
        extra = (0,) * 4 if alpha is None else tuple(2 * c for c in lateral)
        self.slow = Pathway(64, stem_t, _SLOW_KERNELS, depths, extra)
        self.fast: Pathway | None = None
        self.fuse: nn.ModuleList | None = None
        features = self.slow.num_features
        if alpha is not None:
            self.fast = Pathway(fast_width, 5, _FAST_KERNELS, depths)
            self.fuse = nn.ModuleList(FastToSlow(c, fusion_kernel, alpha) for c in lateral)
            features += self.fast.num_features
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(features, num_classes)
        self.num_classes = num_classes
        self.num_features = features
        init_resnet_weights(self)

    def _slow_index(self, frames: int, device: torch.device) -> Tensor:
        """:func:`slow_frame_indices` on ``device``, computed once per clip length and device.

        Kept, so that a forward copies nothing from the host (which a CUDA graph could not capture).
        """
        key = (frames, str(device))
        if key not in self._indices:
            assert self.alpha is not None
            self._indices[key] = slow_frame_indices(frames, self.alpha).to(device)
        return self._indices[key]

    def forward_features(self, x: Tensor) -> Tensor:
        """Clip -> features (B, num_features, 1, h, w): each pathway averaged over its own frames, then joined.

        The two pathways see different frame counts, so their maps are averaged
        over time before they are concatenated; the head's average over the rest
        is then the references' average of each pathway over space and time.
        """
        if self.fast is None or self.fuse is None or self.alpha is None:
            return self.slow.forward_stages(x)
        frames = int(x.shape[2])
        if frames % self.alpha:
            raise ValueError(
                f"SlowFast with alpha {self.alpha} needs a clip whose frames are a multiple of {self.alpha}, "
                f"got {frames}"
            )
        slow = self.slow.stem(x.index_select(2, self._slow_index(frames, x.device)))
        fast = self.fast.stem(x)
        slow = self.fuse[0](slow, fast)
        for i, (slow_stage, fast_stage) in enumerate(zip(self.slow.stages, self.fast.stages, strict=True)):
            slow, fast = slow_stage(slow), fast_stage(fast)
            if i < 3:
                slow = self.fuse[i + 1](slow, fast)
        return torch.cat((slow.mean(2, keepdim=True), fast.mean(2, keepdim=True)), dim=1)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    @property
    def classifier(self) -> nn.Module:
        return self.fc


@dataclass(frozen=True)
class SlowFastConfig(ClassesOption, CroppedClip):
    """One Slow-only or SlowFast network: what :class:`SlowFastNet` is built from and what its spec says.

    Attributes:
        depth: 50 or 101.
        alpha: Fast frames per Slow frame; None for Slow-only.
        fusion_kernel: Temporal kernel of the lateral convs.
        frames: Frames of the paper's clip (the Fast clip for SlowFast).
        crop: Side of the paper's crop: 256, the test crop the zoos' GFLOPs are counted at.
        num_classes: Logits (an option).
    """

    depth: int
    alpha: int | None
    fusion_kernel: int = 7
    frames: int = 32
    crop: int = 256
    num_classes: int = 400

    @property
    def min_input(self) -> Shape:
        """Space: the total stride, 32. Time: one Slow frame (alpha Fast frames); nothing strides in time."""
        return (3, self.alpha or 1, 32, 32)

    @property
    def stages(self) -> Stages:
        """Slow-only: 2D up to res3, then 3D (its t x 1 x 1 convs); SlowFast: 3D throughout (the Fast pathway's)."""
        if self.alpha is not None:
            return tuple((name, K3D) for name in _STAGE_NAMES)
        kinds = (K2D, *(K3D if t > 1 else K2D for t in _SLOW_KERNELS))
        return tuple(zip(_STAGE_NAMES, kinds, strict=True))

    def build(self) -> SlowFastNet:
        return SlowFastNet(self.depth, self.alpha, self.fusion_kernel, num_classes=self.num_classes)

    def __post_init__(self) -> None:
        if self.depth not in _DEPTHS:
            raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {self.depth}")
        if self.alpha is not None and (self.alpha < 1 or self.frames % self.alpha):
            raise ValueError(f"frames ({self.frames}) must be a multiple of alpha ({self.alpha})")


# ---------------------------------------------------------------------------------------- checkpoint layouts
#
# Our keys: ``{slow,fast}.stem.{conv,bn}``, ``{slow,fast}.layer{1-4}.{j}.{conv1,bn1,conv2,bn2,conv3,bn3,
# downsample.0,downsample.1}``, ``fuse.{0-3}.{conv,bn}``, ``fc``.

_OURS = re.compile(
    r"^(?:(?P<path>slow|fast)\.(?:stem\.(?P<stem>conv|bn)|layer(?P<stage>[1-4])\.(?P<block>\d+)\.(?P<part>conv[123]|bn[123]|downsample\.[01]))"
    r"|fuse\.(?P<fuse>[0-3])\.(?P<fpart>conv|bn)|(?P<fc>fc))\.(?P<leaf>\w+)$"
)
_PYSF_BLOCK = {
    "conv1": "branch2.a",
    "bn1": "branch2.a_bn",
    "conv2": "branch2.b",
    "bn2": "branch2.b_bn",
    "conv3": "branch2.c",
    "bn3": "branch2.c_bn",
    "downsample.0": "branch1",
    "downsample.1": "branch1_bn",
}


def pytorchvideo_key(key: str, two_pathways: bool = True) -> str | None:
    """Our key -> PyTorchVideo's (``create_slowfast``, or ``create_resnet`` for Slow-only).

    SlowFast: ``blocks.0`` holds both stems (``multipathway_blocks.{0,1}``, slow
    then fast) and the first lateral (``multipathway_fusion``), ``blocks.1-4`` the
    stages (``res_blocks.j.branch2.conv_a`` ...) and the next laterals,
    ``blocks.6.proj`` the classifier. Slow-only: ``blocks.0`` the stem,
    ``blocks.1-4.res_blocks``, ``blocks.5.proj``. Stems are ``conv``/``norm``,
    laterals ``conv_fast_to_slow``/``norm``.
    """
    m = _OURS.match(key)
    if m is None:
        return None
    leaf = m["leaf"]
    if m["fc"]:
        return f"blocks.{6 if two_pathways else 5}.proj.{leaf}"
    if m["fuse"] is not None:
        return (
            f"blocks.{m['fuse']}.multipathway_fusion.{'conv_fast_to_slow' if m['fpart'] == 'conv' else 'norm'}.{leaf}"
        )
    if not two_pathways and m["path"] != "slow":
        return None
    where = f"multipathway_blocks.{0 if m['path'] == 'slow' else 1}." if two_pathways else ""
    if m["stem"]:
        return f"blocks.0.{where}{'conv' if m['stem'] == 'conv' else 'norm'}.{leaf}"
    return f"blocks.{m['stage']}.{where}res_blocks.{m['block']}.{PYTORCHVIDEO_BOTTLENECK[m['part']]}.{leaf}"


def pyslowfast_key(key: str) -> str | None:
    """Our key -> PySlowFast's own (``video_model_builder.py``'s ``SlowFast`` and ``ResNet``).

    ``s1.pathway{0,1}_stem.{conv,bn}``, ``s{2-5}.pathway{p}_res{j}.branch2.{a,a_bn,b,
    b_bn,c,c_bn}`` and ``.branch1``/``.branch1_bn``, ``s{1-4}_fuse.{conv_f2s,bn}``,
    ``head.projection``; Slow-only has pathway 0 alone and no ``_fuse``.
    """
    m = _OURS.match(key)
    if m is None:
        return None
    leaf = m["leaf"]
    if m["fc"]:
        return f"head.projection.{leaf}"
    if m["fuse"] is not None:
        return f"s{int(m['fuse']) + 1}_fuse.{'conv_f2s' if m['fpart'] == 'conv' else 'bn'}.{leaf}"
    p = 0 if m["path"] == "slow" else 1
    if m["stem"]:
        return f"s1.pathway{p}_stem.{m['stem']}.{leaf}"
    return f"s{int(m['stage']) + 1}.pathway{p}_res{m['block']}.{_PYSF_BLOCK[m['part']]}.{leaf}"


# ---------------------------------------------------------------------------------------- weights

SLOWFAST_MEAN = (0.45, 0.45, 0.45)
"""PySlowFast's ``DATA.MEAN`` (``slowfast/config/defaults.py``), which PyTorchVideo's models were trained with."""
SLOWFAST_STD = (0.225, 0.225, 0.225)
"""PySlowFast's ``DATA.STD``."""
PROTOCOL = "slowfast"
"""10 clips x 3 crops (``TEST.NUM_ENSEMBLE_VIEWS: 10``, ``TEST.NUM_SPATIAL_CROPS: 3``), at the 256 test crop."""


def _preprocess(config: SlowFastConfig) -> Preprocess:
    """PySlowFast's test input (``configs/Kinetics/{c2,pytorchvideo}/{SLOW_8x8_R50,SLOWFAST_8x8_R50,
    SLOWFAST_4x16_R50,SLOWFAST_8x8_R101}.yaml``): the short side resized to ``TEST_CROP_SIZE`` 256 and
    crops of 256 (``kinetics.py``: ``min_scale = max_scale = crop_size = TEST_CROP_SIZE``); Slow-only
    8 frames at ``SAMPLING_RATE`` 8, SlowFast 32 (the Fast clip) at 2."""
    stride = 8 if config.alpha is None else 2
    return Preprocess(SLOWFAST_MEAN, SLOWFAST_STD, resize=256, crop=256, frames=config.frames, frame_stride=stride)


def _pretrained(config: SlowFastConfig) -> Pretrained:
    """PyTorchVideo's checkpoints (its hub, and PySlowFast's ``.pyth`` of them, ``model.``-prefixed in
    ``model_state``) and PySlowFast's own module names (a ``.pyth`` it trained), both evaluated 10 x 3 at 256.

    PySlowFast's Caffe2 ``.pkl`` files (its MODEL_ZOO.md links) are another format, not read here.
    """
    preprocess = _preprocess(config)
    two_pathways = config.alpha is not None

    def ptv(key: str) -> str | None:
        return pytorchvideo_key(key, two_pathways)

    layouts = (
        Layout(
            "pytorchvideo",
            ptv,
            preprocess,
            PROTOCOL,
            pattern=r"^blocks\.\d+\.(multipathway_|res_blocks|proj|conv|norm)",
        ),
        Layout(
            "pyslowfast",
            pyslowfast_key,
            preprocess,
            PROTOCOL,
            pattern=r"^(s[1-5]\.pathway|s[1-4]_fuse\.|head\.projection\.)",
        ),
    )
    return Pretrained(preprocess, PROTOCOL, layouts)


_SLOW = Family("slow", color="#637939")
_SLOWFAST = Family("slowfast", color="#393b79")


@register_arch(
    family=_SLOW, paper=_PAPER, description="the Slow pathway alone: 8 frames, 2D up to res3", pretrained=_pretrained
)
def slow_r50(**options: Any) -> SlowFastConfig:
    """Slow-only R50 8x8: 8 frames at stride 8 (pytorchvideo ``hub.slow_r50``; PySlowFast ``SLOW_8x8_R50``)."""
    return SlowFastConfig(50, None, frames=8).with_options(**options)


@register_arch(
    family=_SLOWFAST,
    paper=_PAPER,
    description="Slow 8 + Fast 32 frames, alpha 4, fusion kernel 7",
    pretrained=_pretrained,
)
def slowfast_r50(**options: Any) -> SlowFastConfig:
    """SlowFast R50 8x8: alpha 4, beta 1/8, fusion kernel 7 (pytorchvideo ``hub.slowfast_r50``; PySlowFast ``SLOWFAST_8x8_R50``)."""
    return SlowFastConfig(50, 4, fusion_kernel=7).with_options(**options)


@register_arch(
    family=_SLOWFAST,
    paper=_PAPER,
    description="Slow 4 + Fast 32 frames, alpha 8, fusion kernel 5",
    pretrained=_pretrained,
)
def slowfast_r50_4x16(**options: Any) -> SlowFastConfig:
    """SlowFast R50 4x16: alpha 8, beta 1/8, fusion kernel 5 (PySlowFast ``configs/Kinetics/SLOWFAST_4x16_R50.yaml``)."""
    return SlowFastConfig(50, 8, fusion_kernel=5).with_options(**options)


@register_arch(
    family=_SLOWFAST,
    paper=_PAPER,
    description="SlowFast with ResNet-101 pathways, fusion kernel 5",
    pretrained=_pretrained,
)
def slowfast_r101(**options: Any) -> SlowFastConfig:
    """SlowFast R101 8x8: alpha 4, fusion kernel 5 (pytorchvideo ``hub.slowfast_r101``).

    Every res4 block has a 3 x 1 x 1 first conv: ``NUM_BLOCK_TEMP_KERNEL: [[3, 3], [4, 4],
    [23, 23], [3, 3]]`` in PySlowFast's ``configs/Kinetics/c2/SLOWFAST_8x8_R101_101_101.yaml`` and
    ``configs/Kinetics/pytorchvideo/SLOWFAST_8x8_R101.yaml`` alike (PySlowFast's default is 6).
    """
    return SlowFastConfig(101, 4, fusion_kernel=5).with_options(**options)
