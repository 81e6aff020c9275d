"""Small building blocks shared by the families: the convolution kinds, Conv-BN-ReLU, TensorFlow's SAME padding,
the transformers' MLP and stochastic depth, the model base class."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import Enum
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BN_EPS",
    "ConvKind",
    "ConvPart",
    "ConvUnit",
    "DropPath",
    "Mlp",
    "PooledResNet",
    "ResidualStages",
    "SameConv2d",
    "SameConv3d",
    "SameMaxPool2d",
    "SameMaxPool3d",
    "SqueezeExcitation",
    "Swish",
    "VideoClassifier",
    "channelwise_conv",
    "same_padding",
    "triple",
]

BN_EPS = 1e-3
"""BatchNorm epsilon of the reference implementations (Sonnet, TF-slim, torchvision S3D, piergiaj's I3D)."""

Triple = tuple[int, int, int]


def triple(v: int | Triple) -> Triple:
    """``3 -> (3, 3, 3)``; a tuple is returned as it is."""
    return (v, v, v) if isinstance(v, int) else v


class ConvPart(NamedTuple):
    """One convolution of a kind: kernel, stride and padding as (t, h, w)."""

    kernel: Triple
    stride: Triple
    padding: Triple


class ConvKind(str, Enum):
    """The temporal/spatial kind of a convolution, with its rules; the value is the label in specs and reports.

    A kind answers for itself what a k x k spatial convolution of that kind is
    (:meth:`parts`) and how it downsamples (:meth:`stride`), as torchvision's
    ``Conv3DNoTemporal.get_downsample_stride`` does, so that no block asks
    "is this 2D?" of a string.

    - ``THREE_D`` (``"3d"``): one t x k x k convolution.
    - ``TWO_D`` (``"2d"``): one 1 x k x k convolution; it has no temporal extent and
      its downsampling stride leaves time alone.
    - ``R2PLUS1D`` (``"(2+1)d"``, Tran et al.) and ``SEPARABLE`` (``"sep"``, Xie et
      al.): a 1 x k x k spatial convolution, then a t x 1 x 1 temporal one. They
      differ in their families' widths and norms (a parameter-matched middle
      width and no norm after the temporal conv in R(2+1)D's blocks; the full
      output width and BN + ReLU after both in S3D), not in their shapes.
    - ``FOLDED`` (``"r2d"``, R2D's conv1): one t x k x k convolution without
      temporal padding whose t is the clip length, which folds time into channels.
    - ``CHANNELWISE`` (``"channelwise"``, X3D and ir-CSN): one t x k x k convolution
      with one group per channel (each output channel sees only its own input
      channel; :meth:`groups`), so its MACs are those of a 3D convolution divided by
      the width. Its shapes are those of ``THREE_D``.
    - ``SHIFT`` (``"shift"``, TSM): 1 x k x k convolutions on frames whose
      channels a temporal shift (zero multiply-accumulates) has moved along time
      first. It models time without convolving over it, so, as a 2D kind, it
      never strides in time and its convolutions have no temporal extent.
    """

    THREE_D = "3d"
    TWO_D = "2d"
    R2PLUS1D = "(2+1)d"
    SEPARABLE = "sep"
    FOLDED = "r2d"
    CHANNELWISE = "channelwise"
    SHIFT = "shift"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def temporal(self) -> bool:
        """Whether the kind mixes information across frames (every kind but 2D)."""
        return self is not ConvKind.TWO_D

    @property
    def convolves_time(self) -> bool:
        """Whether its convolutions have a temporal extent, and so may stride in time (not 2D, not shift)."""
        return self not in (ConvKind.TWO_D, ConvKind.SHIFT)

    @property
    def factorised(self) -> bool:
        """Whether the kind is a spatial convolution followed by a temporal one."""
        return self in (ConvKind.R2PLUS1D, ConvKind.SEPARABLE)

    @property
    def folds_time(self) -> bool:
        """Whether the temporal kernel spans the whole clip (no temporal padding)."""
        return self is ConvKind.FOLDED

    def groups(self, channels: int) -> int:
        """The ``groups`` of a convolution of this kind on ``channels`` channels: all of them when channel-wise."""
        return channels if self is ConvKind.CHANNELWISE else 1

    def stride(self, s: int) -> Triple:
        """The (t, h, w) stride of a block that downsamples by ``s``: a kind without temporal extent keeps time."""
        return (s if self.convolves_time else 1, s, s)

    def parts(self, k: int, stride: Triple, t: int | None = None) -> tuple[ConvPart, ...]:
        """The convolution(s) of this kind for a k x k spatial kernel of temporal extent ``t`` (default ``k``).

        Padding is ``k // 2`` in space and ``t // 2`` in time (none for a folding
        kind). ``stride`` is given in full, (t, h, w); a factorised kind applies
        its spatial part in the spatial convolution and its temporal part in the
        temporal one.
        """
        t = k if t is None else t
        st, sh, sw = stride
        p = k // 2
        if self.factorised:
            return ConvPart((1, k, k), (1, sh, sw), (0, p, p)), ConvPart((t, 1, 1), (st, 1, 1), (t // 2, 0, 0))
        kt = t if self.convolves_time else 1
        pt = 0 if self.folds_time else kt // 2
        return (ConvPart((kt, k, k), stride, (pt, p, p)),)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``padding="SAME"`` for one dimension: (before, after).

    SAME gives ``ceil(size / stride)`` outputs and pads ``max(kernel - (size % stride
    or stride), 0)`` in all, the odd one after. It depends on the input size: the
    7-wide stride-2 stem pads (2, 3) at 224 but (3, 3) at 225. Symmetric padding
    gives the same output shape but samples a grid shifted by one input position
    wherever SAME is asymmetric, so weights trained with SAME (DeepMind's I3D,
    TF-slim's S3D-G) need it to compute the function they were trained as.
    """
    total = max(kernel - (size % stride or stride), 0)
    return total // 2, total - total // 2


def _same_pads(x: Tensor, kernel: Sequence[int], stride: Sequence[int]) -> list[tuple[int, int]]:
    # int(): under torch.jit.trace (fvcore) sizes are traced tensors; the padding is a constant of the trace.
    return [same_padding(int(n), k, s) for n, k, s in zip(x.shape[2:], kernel, stride, strict=True)]


def _pad(x: Tensor, pads: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    """``x`` padded by (before, after) per dimension, first to last (``F.pad`` wants the last first).

    ``torch.constant_pad_nd`` is what ``F.pad`` runs; called directly, it traces as
    the operator that fvcore knows to cost nothing (``aten::pad`` it reports as unsupported).
    """
    return torch.constant_pad_nd(x, [p for before, after in reversed(pads) for p in (before, after)], value)


class SameConv3d(nn.Conv3d):
    """A Conv3d padded as TensorFlow's SAME (see :func:`same_padding`), from the input's size at each call.

    Symmetric cases use the convolution's own padding; only an asymmetric one
    (a strided conv on an even size) pads explicitly first. Construct it with
    ``padding=0``; dilation 1.
    """

    def forward(self, x: Tensor) -> Tensor:
        pads = _same_pads(x, self.kernel_size, self.stride)
        if all(before == after for before, after in pads):
            padding = tuple(before for before, _ in pads)
            return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return F.conv3d(_pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class SameConv2d(nn.Conv2d):
    """:class:`SameConv3d` in 2D."""

    def forward(self, x: Tensor) -> Tensor:
        pads = _same_pads(x, self.kernel_size, self.stride)
        if all(before == after for before, after in pads):
            padding = tuple(before for before, _ in pads)
            return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return F.conv2d(_pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _same_max_pool(x: Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], dim: int) -> Tensor:
    """Max-pool with TensorFlow's SAME padding (padded positions never win).

    With stride 2 or more, padding ``before`` on both sides in ``ceil_mode`` gives
    exactly SAME's windows (SAME's padded length minus one still holds the last
    window's start; ceil mode keeps the window that overhangs), with no copy.
    Where that does not hold (stride 1 with an asymmetric pad, i.e. an even
    kernel; an input shorter than the kernel) it pads explicitly with -inf.
    """
    pool = F.max_pool3d if dim == 3 else F.max_pool2d
    pads = _same_pads(x, kernel, stride)
    sizes = [int(n) for n in x.shape[2:]]
    if any(
        before != after and (s == 1 or n + 2 * before < k)
        for (before, after), n, k, s in zip(pads, sizes, kernel, stride, strict=True)
    ):
        return pool(_pad(x, pads, -math.inf), kernel, stride)
    return pool(x, kernel, stride, tuple(before for before, _ in pads), ceil_mode=True)


def _ntuple(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    return (v,) * n if isinstance(v, int) else tuple(v)


class SameMaxPool3d(nn.MaxPool3d):
    """A MaxPool3d padded as TensorFlow's SAME, from the input's size at each call; construct it with ``padding=0``."""

    def forward(self, x: Tensor) -> Tensor:
        return _same_max_pool(x, _ntuple(self.kernel_size, 3), _ntuple(self.stride, 3), 3)


class SameMaxPool2d(nn.MaxPool2d):
    """:class:`SameMaxPool3d` in 2D."""

    def forward(self, x: Tensor) -> Tensor:
        return _same_max_pool(x, _ntuple(self.kernel_size, 2), _ntuple(self.stride, 2), 2)


class ConvUnit(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, in 3D or, with ``dim=2``, in 2D.

    Kernel, stride and padding are always given as (t, h, w); a 2D unit drops the
    temporal entry. Both variants name their children ``conv``, ``bn`` and ``act``,
    so that a 2D network and its 3D counterpart share parameter names and weights
    can be inflated from one to the other by name.

    With ``same=True`` the conv is padded as TensorFlow's SAME and ``padding`` is
    ignored: a stride-1 conv of odd kernel pads ``k // 2`` on both sides whatever
    the input (a plain conv), any other is a :class:`SameConv3d`. ``momentum`` is
    BatchNorm's (PyTorch's convention: the weight of the new batch statistics).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | Triple,
        stride: int | Triple = 1,
        padding: int | Triple = 0,
        *,
        dim: int = 3,
        relu: bool = True,
        same: bool = False,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        k, s, p = triple(kernel), triple(stride), triple(padding)
        used = 0 if dim == 3 else 1  # a 2D unit has no temporal entry
        dynamic = same and any(si != 1 or ki % 2 == 0 for ki, si in zip(k[used:], s[used:], strict=True))
        if same and not dynamic:
            p = (k[0] // 2, k[1] // 2, k[2] // 2)
        if dim == 3:
            conv3 = SameConv3d if dynamic else nn.Conv3d
            self.conv: nn.Module = conv3(in_ch, out_ch, k, s, 0 if dynamic else p, bias=False)
            self.bn: nn.Module = nn.BatchNorm3d(out_ch, eps=BN_EPS, momentum=momentum)
        elif dim == 2:
            conv2 = SameConv2d if dynamic else nn.Conv2d
            self.conv = conv2(in_ch, out_ch, k[1:], s[1:], 0 if dynamic else p[1:], bias=False)
            self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=momentum)
        else:
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.act: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Swish(nn.SiLU):
    """``x * sigmoid(x)`` (X3D's inner activation; PyTorch's SiLU), its own kind of work in breakdowns."""

    work_kind = "swish"


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018) on a clip: channel weights from the global mean.

    ::

        x -+-> mean over (t, h, w) -> fc1 (1x1x1, bias) -> ReLU -> fc2 (1x1x1, bias) -> sigmoid -+
           +---------------------------------------------------------------------------------- x * -> out

    The two 1x1x1 convolutions on the pooled vector are fvcore's
    ``SqueezeExcitation(is_3d=True)`` (pytorchvideo's X3D) and PySlowFast's ``SE``.
    The module and everything inside it are one kind of work, ``"se"``.
    """

    work_kind = "se"

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        w = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(w))))


class Mlp(nn.Module):
    """A transformer block's MLP: Linear -> GELU -> Linear, with dropout after each Linear (none by default).

    ``fc1`` and ``fc2`` are the names of timm, PySlowFast and Video Swin; the
    breakdown files its work as ``mlp`` (``work_kind``).
    """

    work_kind = "mlp"

    def __init__(self, in_features: int, hidden_features: int, out_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: in training, drops the whole branch of a sample with probability ``p``.

    The kept samples are scaled by ``1 / (1 - p)``, as torchvision's
    ``StochasticDepth(p, "row")`` and timm's ``DropPath`` do; in evaluation it is
    the identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep.div_(1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class VideoClassifier(nn.Module):
    """Base of the families' networks: the interface stated in :mod:`archs._registry` ("The model contract").

    A subclass sets ``num_classes`` and ``num_features`` and defines
    :meth:`forward_features`, :meth:`forward_head` and :attr:`classifier`;
    ``forward`` is the one composition of the two.
    """

    num_classes: int
    num_features: int

    def forward_features(self, x: Tensor) -> Tensor:
        """Clip (B, C, T, H, W) -> feature map (B, num_features, t, h, w)."""
        raise NotImplementedError

    def forward_head(self, x: Tensor) -> Tensor:
        """Feature map -> logits (B, num_classes)."""
        raise NotImplementedError

    @property
    def classifier(self) -> nn.Module:
        """The layer that produces the logits."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def channelwise_conv(width: int, stride: Triple, k: int = 3) -> nn.Conv3d:
    """A k x k x k convolution of the channel-wise kind on ``width`` channels, no bias, striding as given.

    Its shapes and groups are :class:`ConvKind` ``CHANNELWISE``'s (one group per
    channel), so the X3D and CSN blocks that use it ask the kind, not a number.
    """
    kind = ConvKind.CHANNELWISE
    (part,) = kind.parts(k, stride)
    return nn.Conv3d(width, width, *part, groups=kind.groups(width), bias=False)


BlockMaker = Callable[[int, int, int, int], nn.Module]
"""``make(stage, index, in_ch, out_ch)``: block ``index`` of stage ``stage`` (both from 0), reading ``in_ch``."""


class ResidualStages(nn.Module):
    """A stem, then four stages of residual blocks named as torchvision's ResNets name them.

    The children are ``stem`` (set by the subclass) and ``layer1`` to ``layer4``,
    each an ``nn.Sequential`` of blocks, added by :meth:`add_stages` in that order;
    the names are what the checkpoints of these families are keyed by.
    :meth:`forward_stages` runs the stem and the four stages in order. The video
    ResNets, CSN, X3D and each pathway of SlowFast are built on it; they differ
    in their stems, their blocks and what follows the last stage.
    """

    stem: nn.Module
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def add_stages(self, in_ch: int, widths: Sequence[int], depths: Sequence[int], make: BlockMaker) -> int:
        """Adds ``layer1``... as ``depths[i]`` blocks of output width ``widths[i]``; returns the last stage's width.

        Block j of stage i is ``make(i, j, c, widths[i])``, where ``c`` is ``in_ch``
        for the first block of all and the previous block's output width after it.
        """
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(make(i, j, in_ch, width))
                in_ch = width
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        return in_ch

    @property
    def stages(self) -> tuple[nn.Sequential, ...]:
        """The four stages, in order."""
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def forward_stages(self, x: Tensor) -> Tensor:
        """The stem, then every stage."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


class PooledResNet(ResidualStages, VideoClassifier):
    """A :class:`ResidualStages` network whose features are its last stage's map and whose head is a global
    average pool and one linear layer, ``avgpool`` and ``fc`` (torchvision's video ResNets and CSN)."""

    avgpool: nn.AdaptiveAvgPool3d
    fc: nn.Linear

    def add_head(self, in_ch: int, num_classes: int) -> None:
        """Adds ``avgpool`` and ``fc`` after the stages (``in_ch`` features, ``num_classes`` logits)."""
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_classes = num_classes
        self.num_features = in_ch

    def forward_features(self, x: Tensor) -> Tensor:
        return self.forward_stages(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))

    @property
    def classifier(self) -> nn.Module:
        return self.fc


def on_meta(module: nn.Module) -> bool:
    """Is ``module`` built on the meta device? Then an initialisation has nothing to draw, and skips (counting
    builds every model there; drawing nothing still costs ~0.3 s a model in Python)."""
    return any(p.is_meta for p in module.parameters())


def init_resnet_weights(model: nn.Module, linear_std: float = 0.01) -> None:
    """The ResNet families' random initialisation (torchvision's video ResNets, PySlowFast, pytorchvideo).

    Convolutions (2D or 3D): Kaiming normal, fan-out, their bias (if any) zero;
    BatchNorm: weight one, bias zero; linear layers: normal with ``linear_std``
    (TSM's new fc: 0.001), bias zero. Nothing on the meta device (:func:`on_meta`).
    """
    if on_meta(model):
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)
