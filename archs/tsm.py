"""TSM: a 2D ResNet-50 whose residual branches shift part of their channels along time.

Reference:
    Lin, Gan & Han, "TSM: Temporal Shift Module for Efficient Video
    Understanding", ICCV 2019. Where the paper is silent the authors' code is
    followed: mit-han-lab/temporal-shift-module, ``ops/temporal_shift.py``
    (``TemporalShift``, ``make_temporal_shift``) and ``ops/models.py`` (``TSN``).

The network is torchvision's ResNet-50 (the authors' ``base_model``) applied to
every frame: the clip's T frames are T segments, folded into the batch. Before
the first conv of every bottleneck's residual branch (``shift_place="blockres"``;
ResNet-50 shifts in every block), a :class:`TemporalShift` moves channels along
time: with ``fold = C // 8``, the first fold of frame t takes frame t + 1's, the
second fold takes frame t - 1's, the rest stays, and a frame with no neighbour
gets zeros. The shift has no parameters and no multiply-accumulates, so TSM
costs what ResNet-50 costs, T times. The classifier runs on every frame and the
logits are averaged over the segments ("avg" consensus, after the fc).

The shift needs the segment count at build time; a clip of another length would
be shifted across clip boundaries, so the model refuses it (``ValueError``).
``segments=16`` builds a 16-segment model.

BatchNorm epsilon 1e-5 (torchvision's ResNet-50, which the authors build on).

Bottleneck block (torchvision's: the 3 x 3 conv carries the stride)::

    x -+-> shift -> 1x1 -> BN -> ReLU -> 3x3 (stride) -> BN -> ReLU -> 1x1 -> BN -+-> ReLU
       +-> [1x1 (stride) -> BN] ---------------------------------------------------+
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from archs._blocks import ConvKind, VideoClassifier, init_resnet_weights
from archs._registry import Family, Shape, Stages, register_arch
from archs._weights import IMAGENET_MEAN, IMAGENET_STD, Layout, Preprocess, Pretrained, Protocol, register_protocol

__all__ = ["TSMConfig", "TSMResNet", "TemporalShift", "temporal_shift", "tsm_key"]

_PAPER = "Lin et al., TSM: Temporal Shift Module for Efficient Video Understanding, ICCV 2019"
_STAGE_NAMES = ("conv1", "layer1", "layer2", "layer3", "layer4")
_R50 = (3, 4, 6, 3)


def temporal_shift(x: Tensor, segments: int, fold_div: int = 8) -> Tensor:
    """Shift a fold of channels one frame back and another one frame forward, zero-padded.

    Args:
        x: Frames folded into the batch, (N * segments, C, H, W), each clip's
            frames consecutive.
        segments: Frames per clip.
        fold_div: ``fold = C // fold_div`` channels move each way.

    Returns:
        A tensor of ``x``'s shape whose channels ``[0, fold)`` at frame t are
        ``x``'s at frame t + 1, channels ``[fold, 2 fold)`` at frame t are ``x``'s
        at frame t - 1 (zeros where that frame does not exist), and the other
        channels are ``x``'s.
    """
    nt, c, h, w = (int(s) for s in x.shape)
    fold = c // fold_div
    clips = x.view(nt // segments, segments, c, h, w)
    # Pad (before, after) the time axis (dim 1): the pad list runs from the last dimension to the first.
    from_next = torch.constant_pad_nd(clips[:, 1:, :fold], [0, 0, 0, 0, 0, 0, 0, 1])
    from_previous = torch.constant_pad_nd(clips[:, :-1, fold : 2 * fold], [0, 0, 0, 0, 0, 0, 1, 0])
    return torch.cat((from_next, from_previous, clips[:, :, 2 * fold :]), dim=2).reshape(nt, c, h, w)


class TemporalShift(nn.Module):
    """:func:`temporal_shift` as a module: no parameters, no multiply-accumulates."""

    work_kind = "shift"
    """Its operators are data movement of their own kind in breakdowns (``bench/measure/breakdown.py``)."""

    def __init__(self, segments: int, fold_div: int = 8) -> None:
        super().__init__()
        self.segments = segments
        self.fold_div = fold_div

    def forward(self, x: Tensor) -> Tensor:
        return temporal_shift(x, self.segments, self.fold_div)

    def extra_repr(self) -> str:
        return f"segments={self.segments}, fold_div={self.fold_div}"


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck with a temporal shift at the head of its residual branch."""

    def __init__(self, in_ch: int, inner: int, stride: int, segments: int) -> None:
        super().__init__()
        out_ch = inner * 4
        self.shift = TemporalShift(segments)
        self.conv1 = nn.Conv2d(in_ch, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class TSMResNet(VideoClassifier):
    """TSM ResNet-50 (see the module docstring).

    Args:
        segments: Frames per clip, fixed at build time.
        num_classes: Logits.
        dropout: Dropout before the classifier (the authors' Kinetics training: 0.5).
    """

    def __init__(self, segments: int = 8, num_classes: int = 400, dropout: float = 0.5) -> None:
        super().__init__()
        self.segments = segments
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1: nn.Sequential
        self.layer2: nn.Sequential
        self.layer3: nn.Sequential
        self.layer4: nn.Sequential
        in_ch = 64
        for i, n in enumerate(_R50):
            inner = 64 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(in_ch, inner, 2 if (i > 0 and j == 0) else 1, segments))
                in_ch = inner * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_classes = num_classes
        self.num_features = in_ch
        init_resnet_weights(self, linear_std=0.001)  # the authors' new_fc: std 0.001

    def forward_features(self, x: Tensor) -> Tensor:
        """Clip (B, C, T, H, W), T = segments -> per-frame maps (B, 2048, T, h, w).

        Raises:
            ValueError: T is not the segment count the model was built with.
        """
        b, c, t, h, w = (int(s) for s in x.shape)
        if t != self.segments:
            raise ValueError(
                f"TSM was built for {self.segments} segments and got a clip of {t} frames; "
                f"build it with segments={t} to take such clips"
            )
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        out = self.maxpool(self.relu(self.bn1(self.conv1(frames))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            out = stage(out)
        return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)

    def forward_head(self, x: Tensor) -> Tensor:
        """Per-frame maps -> logits: each frame pooled and classified, then the logits averaged over frames."""
        b, c, t, h, w = (int(s) for s in x.shape)
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        logits = self.fc(self.dropout(self.avgpool(frames).flatten(1)))
        return logits.view(b, t, -1).mean(1)

    @property
    def classifier(self) -> nn.Module:
        return self.fc


@dataclass(frozen=True)
class TSMConfig:
    """TSM ResNet-50: what :class:`TSMResNet` is built from and what its spec says.

    Attributes:
        segments: Frames per clip, fixed at build time (an option).
        num_classes: Logits (an option).
    """

    segments: int = 8
    num_classes: int = 400

    def __post_init__(self) -> None:
        if isinstance(self.segments, bool) or not isinstance(self.segments, int) or self.segments < 1:
            raise ValueError(f"segments must be a positive number of frames, got {self.segments!r}")

    def with_options(self, *, segments: int | None = None, num_classes: int | None = None) -> TSMConfig:
        """The options TSM takes; any other keyword is a TypeError."""
        return replace(
            self,
            segments=self.segments if segments is None else segments,
            num_classes=self.num_classes if num_classes is None else num_classes,
        )

    @property
    def default_input(self) -> Shape:
        """The paper's clip: one frame per segment, 224 x 224."""
        return (3, self.segments, 224, 224)

    @property
    def min_input(self) -> Shape:
        """Exactly ``segments`` frames; space: ResNet's total stride, 32."""
        return (3, self.segments, 32, 32)

    @property
    def stages(self) -> Stages:
        return ((_STAGE_NAMES[0], ConvKind.TWO_D), *((name, ConvKind.SHIFT) for name in _STAGE_NAMES[1:]))

    def build(self) -> TSMResNet:
        return TSMResNet(self.segments, self.num_classes)


# ---------------------------------------------------------------------------------------- checkpoint layout

_FIRST_CONV = re.compile(r"^(layer[1-4]\.\d+)\.conv1\.(\w+)$")


def tsm_key(key: str) -> str | None:
    """Our key -> the TSM authors' (``TSN`` of ``ops/models.py``, saved as ``module.``-prefixed ``state_dict``).

    The ResNet-50 is ``base_model`` with torchvision's names, except that each
    block's ``conv1`` is wrapped by ``TemporalShift`` (``conv1.net``); the
    classifier is ``new_fc`` (``base_model.fc`` is a dropout). The shift has no
    tensors.
    """
    if key.startswith("fc."):
        return "new_fc." + key[3:]
    m = _FIRST_CONV.match(key)
    if m is not None:
        return f"base_model.{m[1]}.conv1.net.{m[2]}"
    return "base_model." + key


# ---------------------------------------------------------------------------------------- weights and protocols

# The TSM README ("Dense Sample") reports its Kinetics models as "8 * 10clips", "tested using full resolution
# setting"; its test command is ``test_models.py --dense_sample --full_res --test_crops=3``: 10 clips whose starts
# are spread evenly over the video (ops/dataset.py ``_get_test_indices``: ``np.linspace(0, num_frames - 64, 10)``),
# each 8 frames at stride 64 // 8, and 3 crops of 256 along the long side of frames resized to 256
# (``GroupFullResSample``), the clips' and crops' scores averaged.
DENSE = register_protocol(
    Protocol(
        "tsm_dense",
        10,
        3,
        source="mit-han-lab/temporal-shift-module README (Dense Sample, 8 * 10clips, full resolution) and "
        "test_models.py --dense_sample --full_res --test_crops=3",
    )
)
# Its "Uniform Sampling" models are evaluated as TSN: one frame from the middle of each of 8 equal segments of
# the whole video (ops/dataset.py ``_get_test_indices`` without dense_sample), one centre crop of 224 after the
# short side is resized to 256 ("acc (1-crop)"). vbench's views are clips at a fixed stride: this preset takes
# the centre 8-frame clip at the weights' stride, an approximation of segment sampling.
UNIFORM = register_protocol(
    Protocol(
        "tsm_uniform",
        1,
        1,
        frames=8,
        source="mit-han-lab/temporal-shift-module README (Uniform Sampling, 8 * 1clip, 1-crop) and ops/dataset.py "
        "(TSN segments; approximated by one centre clip)",
    )
)
DENSE_PREPROCESS = Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=256, crop=256, frames=8, frame_stride=8)
"""The dense models' test input: ImageNet's mean and std (``ops/models.py``: ``input_mean``, ``input_std``),
the short side resized to 256 (``scale_size = input_size * 256 // 224``), full-resolution 256 crops, 8 frames
at stride 64 // 8 (``ops/dataset.py``)."""


def _pretrained(config: TSMConfig) -> Pretrained:
    """The TSM authors' checkpoints (``module.base_model...``, ``new_fc``), dense sampling, 10 clips x 3 crops."""
    preprocess = replace(DENSE_PREPROCESS, frames=config.segments, frame_stride=max(64 // config.segments, 1))
    layout = Layout("tsm", tsm_key, preprocess, DENSE.name, pattern=r"^(module\.)?(base_model|new_fc)\.")
    return Pretrained(preprocess, DENSE.name, (layout,))


_TSM = Family("tsm", color="#843c39")


@register_arch(
    family=_TSM,
    paper=_PAPER,
    description="2D ResNet-50 with a zero-MAC temporal shift in every block",
    pretrained=_pretrained,
)
def tsm_r50(**options: Any) -> TSMConfig:
    """TSM ResNet-50, 8 segments, shift in the residual branch, fold C // 8 (mit-han-lab/temporal-shift-module).

    Args:
        segments: Frames per clip (8); the model refuses clips of another length.
    """
    return TSMConfig().with_options(**options)
