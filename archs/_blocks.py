"""Small building blocks shared by the families."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["BN_EPS", "ConvUnit", "triple"]

BN_EPS = 1e-3
"""BatchNorm epsilon of the reference implementations (Sonnet, TF-slim, torchvision S3D)."""

Triple = tuple[int, int, int]


def triple(v: int | Triple) -> Triple:
    """``3 -> (3, 3, 3)``; a tuple is returned as it is."""
    return (v, v, v) if isinstance(v, int) else v


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
