"""Video ResNets: R3D, MCx, rMCx, R2D, f-R2D and R(2+1)D.

Reference:
    Tran, Wang, Torresani, Ray, LeCun & Paluri, "A Closer Look at
    Spatiotemporal Convolutions for Action Recognition", CVPR 2018. Where the
    paper is silent the authors' code is followed (facebookresearch/VMZ,
    ``c2/lib/models/r3d_model.py`` and ``builder/video_model.py``).

Every variant is one network, :class:`VideoResNet`, built from data: the kind of
the stem and of each residual stage (``"3d"``: 3x3x3, ``"2d"``: 1x3x3,
``"(2+1)d"``: 1x3x3 then 3x1x1). The skeleton is VMZ's and torchvision's: no
max-pool after conv1; stages of 64, 128, 256, 512 channels; the first block
of stages 3 to 5 strides by 2 in space and, for 3D and (2+1)D blocks, in time
(2D blocks stride only in space); projection shortcuts are 1x1x1 convs with the
block's stride; global average pool; a linear classifier.

Difference from torchvision: torchvision's ``r2plus1d_18`` computes the
intermediate width M_i once per block, from the block's (in, out), and uses it
for both convs (31,505,325 parameters). The paper and VMZ compute it for each
conv from that conv's own (in, out) (33.37 M parameters). ``r2plus1d_18``
follows the paper, ``r2plus1d_18_tv`` torchvision.

Basic block::

    x -+-> conv(stride) -> BN -> ReLU -> conv -> BN -+-> ReLU
       +-> [1x1x1 conv(stride) -> BN] ---------------+
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from archs._registry import register_arch

__all__ = ["VideoResNet", "midplanes"]

_WIDTHS = (64, 128, 256, 512)
_PAPER = "Tran et al., A Closer Look at Spatiotemporal Convolutions, CVPR 2018"


def midplanes(in_ch: int, out_ch: int, t: int = 3, d: int = 3) -> int:
    """Intermediate width of a (2+1)D conv matching the t x d x d conv's parameters.

    ``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))`` (Tran et al., sec. 3.5).
    """
    return (t * d * d * in_ch * out_ch) // (d * d * in_ch + t * out_ch)


def _conv(kind: str, in_ch: int, out_ch: int, stride: int, mid: int) -> nn.Module:
    """A 3x3(x3) conv of the given kind; a 2D conv strides only in space."""
    if kind == "3d":
        return nn.Conv3d(in_ch, out_ch, 3, stride, 1, bias=False)
    if kind == "2d":
        return nn.Conv3d(in_ch, out_ch, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
    if kind == "(2+1)d":
        return nn.Sequential(
            nn.Conv3d(in_ch, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_ch, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )
    raise ValueError(f"unknown conv kind {kind!r}")


class BasicBlock(nn.Module):
    """Two convs of one kind with a residual connection (see the module docstring).

    Args:
        mid_per_block: torchvision's rule, one M_i from (in_ch, out_ch) for both
            convs; otherwise each conv gets its own (the paper's rule).
    """

    def __init__(self, in_ch: int, out_ch: int, kind: str, stride: int, mid_per_block: bool) -> None:
        super().__init__()
        mid1 = midplanes(in_ch, out_ch)
        mid2 = mid1 if mid_per_block else midplanes(out_ch, out_ch)
        self.conv1 = nn.Sequential(
            _conv(kind, in_ch, out_ch, stride, mid1), nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(_conv(kind, out_ch, out_ch, 1, mid2), nn.BatchNorm3d(out_ch))
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            t_stride = 1 if kind == "2d" else stride
            self.downsample = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, (t_stride, stride, stride), bias=False), nn.BatchNorm3d(out_ch)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


def _stem(kind: str, frames: int) -> nn.Sequential:
    """conv1, 64 channels, stride (1, 2, 2), followed by BN and ReLU.

    ``"3d"``: 3x7x7. ``"2d"``: 1x7x7. ``"(2+1)d"``: 1x7x7 to 45 channels, BN,
    ReLU, 3x1x1 to 64 (45 is hard-coded in VMZ and torchvision). ``"r2d"``:
    ``frames``x7x7 with no temporal padding, which folds time into channels (R2D).
    """
    if kind == "(2+1)d":
        return nn.Sequential(
            nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
    kt, pt = {"3d": (3, 1), "2d": (1, 0), "r2d": (frames, 0)}[kind]
    return nn.Sequential(
        nn.Conv3d(3, 64, (kt, 7, 7), (1, 2, 2), (pt, 3, 3), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """A ResNet of basic blocks on clips, with per-stage conv kinds.

    Args:
        stem: Kind of conv1 (``"3d"``, ``"2d"``, ``"(2+1)d"`` or ``"r2d"``).
        kinds: Kind of each of the four residual stages conv2_x..conv5_x.
        layers: Blocks per stage ([2, 2, 2, 2] for 18 layers, [3, 4, 6, 3] for 34).
        num_classes: Logits.
        mid_per_block: torchvision's M_i rule for (2+1)D blocks (see module docstring).
        frames: Temporal kernel of the R2D stem (the clip length it folds).
    """

    def __init__(
        self,
        stem: str,
        kinds: Sequence[str],
        layers: Sequence[int],
        num_classes: int = 400,
        mid_per_block: bool = False,
        frames: int = 16,
    ) -> None:
        super().__init__()
        if len(kinds) != 4 or len(layers) != 4:
            raise ValueError("kinds and layers need one entry per stage (4)")
        self.stem = _stem(stem, frames)
        self.layer1: nn.Sequential
        self.layer2: nn.Sequential
        self.layer3: nn.Sequential
        self.layer4: nn.Sequential
        in_ch = 64
        for i, (kind, n, width) in enumerate(zip(kinds, layers, _WIDTHS, strict=True)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_ch, width, kind, stride, mid_per_block))
                in_ch = width
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))


def _mc(x: int) -> tuple[str, ...]:
    """MCx: 3D up to conv(x-1)_x, 2D from conv x_x on (conv1 is 3D)."""
    return tuple("3d" if stage < x else "2d" for stage in (2, 3, 4, 5))


def _rmc(x: int) -> tuple[str, ...]:
    """rMCx: 2D up to conv(x-1)_x (conv1 is 2D), 3D from conv x_x on."""
    return tuple("3d" if stage >= x else "2d" for stage in (2, 3, 4, 5))


def _stages(stem: str, kinds: Sequence[str]) -> tuple[tuple[str, str], ...]:
    names = ("conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x")
    return tuple(zip(names, (stem, *kinds), strict=True))


def _temporal_stride(kinds: Sequence[str]) -> int:
    """Total temporal downsampling: stages 3 to 5 halve time unless they are 2D."""
    return 2 ** sum(k != "2d" for k in kinds[1:])


def _spec(
    family: str, stem: str, kinds: Sequence[str], frames: int = 16, min_frames: int | None = None
) -> dict[str, Any]:
    """register_arch arguments for a ResNet variant.

    ``min_input`` is the total stride: the smallest clip whose final feature map
    is 1x1x1, so that no strided conv acts on padding alone.
    """
    t_min = min_frames if min_frames is not None else _temporal_stride(kinds)
    return {
        "family": family,
        "default_input": (3, frames, 112, 112),
        "min_input": (3, t_min, 16, 16),
        "paper": _PAPER,
        "stages": _stages(stem, kinds),
    }


_18 = (2, 2, 2, 2)
_34 = (3, 4, 6, 3)
_3D = ("3d",) * 4
_2D = ("2d",) * 4
_2P1 = ("(2+1)d",) * 4


@register_arch(**_spec("r3d", "3d", _3D), description="3D ResNet-18, 3x3x3 basic blocks")
def r3d_18(**kwargs: Any) -> VideoResNet:
    """R3D-18 (torchvision ``r3d_18``: 33,371,472 parameters)."""
    return VideoResNet("3d", _3D, _18, **kwargs)


@register_arch(**_spec("r3d", "3d", _3D), description="3D ResNet-34, 3x3x3 basic blocks")
def r3d_34(**kwargs: Any) -> VideoResNet:
    """R3D-34: blocks [3, 4, 6, 3] (VMZ ``r3d_model.py``)."""
    return VideoResNet("3d", _3D, _34, **kwargs)


@register_arch(**_spec("mc", "3d", _mc(2)), description="3D conv1, 2D from conv2_x")
def mc2_18(**kwargs: Any) -> VideoResNet:
    """MC2-18: only conv1 is 3D."""
    return VideoResNet("3d", _mc(2), _18, **kwargs)


@register_arch(**_spec("mc", "3d", _mc(3)), description="3D up to conv2_x, 2D from conv3_x")
def mc3_18(**kwargs: Any) -> VideoResNet:
    """MC3-18 (torchvision ``mc3_18``: 11,695,440 parameters)."""
    return VideoResNet("3d", _mc(3), _18, **kwargs)


@register_arch(**_spec("mc", "3d", _mc(4)), description="3D up to conv3_x, 2D from conv4_x")
def mc4_18(**kwargs: Any) -> VideoResNet:
    """MC4-18."""
    return VideoResNet("3d", _mc(4), _18, **kwargs)


@register_arch(**_spec("mc", "3d", _mc(5)), description="3D up to conv4_x, 2D conv5_x")
def mc5_18(**kwargs: Any) -> VideoResNet:
    """MC5-18."""
    return VideoResNet("3d", _mc(5), _18, **kwargs)


@register_arch(**_spec("rmc", "2d", _rmc(2)), description="2D conv1, 3D from conv2_x")
def rmc2_18(**kwargs: Any) -> VideoResNet:
    """rMC2-18: every residual stage is 3D."""
    return VideoResNet("2d", _rmc(2), _18, **kwargs)


@register_arch(**_spec("rmc", "2d", _rmc(3)), description="2D up to conv2_x, 3D from conv3_x")
def rmc3_18(**kwargs: Any) -> VideoResNet:
    """rMC3-18."""
    return VideoResNet("2d", _rmc(3), _18, **kwargs)


@register_arch(**_spec("rmc", "2d", _rmc(4)), description="2D up to conv3_x, 3D from conv4_x")
def rmc4_18(**kwargs: Any) -> VideoResNet:
    """rMC4-18."""
    return VideoResNet("2d", _rmc(4), _18, **kwargs)


@register_arch(**_spec("rmc", "2d", _rmc(5)), description="2D up to conv4_x, 3D conv5_x")
def rmc5_18(**kwargs: Any) -> VideoResNet:
    """rMC5-18: only conv5_x is 3D."""
    return VideoResNet("2d", _rmc(5), _18, **kwargs)


@register_arch(
    **_spec("r2d", "r2d", _2D, min_frames=16), description="time folded into channels by a 16x7x7 conv1, then 2D"
)
def r2d_18(frames: int = 16, **kwargs: Any) -> VideoResNet:
    """R2D-18: conv1 spans the whole clip (VMZ ``create_r2d``).

    Args:
        frames: Clip length folded by conv1 (the paper's L). Longer clips slide it
            over time and average; shorter ones are rejected by min_input.
    """
    return VideoResNet("r2d", _2D, _18, frames=frames, **kwargs)


@register_arch(**_spec("r2d", "2d", _2D), description="2D ResNet-18 on every frame, time pooled at the end")
def fr2d_18(**kwargs: Any) -> VideoResNet:
    """f-R2D-18: frame-wise 2D convs with shared weights; late temporal pooling."""
    return VideoResNet("2d", _2D, _18, **kwargs)


@register_arch(**_spec("r2plus1d", "(2+1)d", _2P1), description="(2+1)D blocks, M_i per conv (paper, VMZ)")
def r2plus1d_18(**kwargs: Any) -> VideoResNet:
    """R(2+1)D-18 as in the paper: the intermediate width M_i computed for each conv."""
    return VideoResNet("(2+1)d", _2P1, _18, **kwargs)


@register_arch(
    **_spec("r2plus1d", "(2+1)d", _2P1, frames=32), description="(2+1)D ResNet-34, M_i per conv (paper, VMZ)"
)
def r2plus1d_34(**kwargs: Any) -> VideoResNet:
    """R(2+1)D-34: blocks [3, 4, 6, 3]; the paper's 32-frame Kinetics model."""
    return VideoResNet("(2+1)d", _2P1, _34, **kwargs)


@register_arch(**_spec("r2plus1d", "(2+1)d", _2P1), description="torchvision's R(2+1)D-18: one M_i per block")
def r2plus1d_18_tv(**kwargs: Any) -> VideoResNet:
    """R(2+1)D-18 as torchvision defines it (31,505,325 parameters).

    torchvision's ``BasicBlock`` computes ``midplanes`` from the block's (in, out)
    and uses it for both convs; the paper computes it per conv (see :func:`r2plus1d_18`).
    """
    return VideoResNet("(2+1)d", _2P1, _18, mid_per_block=True, **kwargs)
