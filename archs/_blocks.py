"""Small building blocks shared by the families: the convolution kinds, Conv-BN-ReLU, the model base class."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from torch import Tensor, nn

__all__ = ["BN_EPS", "ConvKind", "ConvPart", "ConvUnit", "VideoClassifier", "triple"]

BN_EPS = 1e-3
"""BatchNorm epsilon of the reference implementations (Sonnet, TF-slim, torchvision S3D)."""

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
    """

    THREE_D = "3d"
    TWO_D = "2d"
    R2PLUS1D = "(2+1)d"
    SEPARABLE = "sep"
    FOLDED = "r2d"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def temporal(self) -> bool:
        """Whether the kind has a temporal extent (and so may stride in time)."""
        return self is not ConvKind.TWO_D

    @property
    def factorised(self) -> bool:
        """Whether the kind is a spatial convolution followed by a temporal one."""
        return self in (ConvKind.R2PLUS1D, ConvKind.SEPARABLE)

    @property
    def folds_time(self) -> bool:
        """Whether the temporal kernel spans the whole clip (no temporal padding)."""
        return self is ConvKind.FOLDED

    def stride(self, s: int) -> Triple:
        """The (t, h, w) stride of a block that downsamples by ``s``: a kind without temporal extent keeps time."""
        return (s if self.temporal else 1, s, s)

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
        kt = t if self.temporal else 1
        pt = 0 if self.folds_time else kt // 2
        return (ConvPart((kt, k, k), stride, (pt, p, p)),)


class ConvUnit(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, in 3D or, with ``dim=2``, in 2D.

    Kernel, stride and padding are always given as (t, h, w); a 2D unit drops the
    temporal entry. Both variants name their children ``conv``, ``bn`` and ``act``,
    so that a 2D network and its 3D counterpart share parameter names and weights
    can be inflated from one to the other by name.
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
    ) -> None:
        super().__init__()
        k, s, p = triple(kernel), triple(stride), triple(padding)
        if dim == 3:
            self.conv: nn.Module = nn.Conv3d(in_ch, out_ch, k, s, p, bias=False)
            self.bn: nn.Module = nn.BatchNorm3d(out_ch, eps=BN_EPS)
        elif dim == 2:
            self.conv = nn.Conv2d(in_ch, out_ch, k[1:], s[1:], p[1:], bias=False)
            self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        else:
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.act: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


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
