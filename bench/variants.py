"""Costs of the mixed 2D/3D variants, the comparison the S3D and R(2+1)D papers argue from.

- Bottom-Heavy vs Top-Heavy I3D as the 2D/3D split point moves through the
  network (Xie et al., ECCV 2018), with I3D (all 3D) and I2D (all 2D) as ends;
- MCx vs rMCx (Tran et al., CVPR 2018), beside R2D, f-R2D, R3D and R(2+1)D,
  with their published top-1 at the same input.

Counted on the meta device (a few seconds); plain records, drawn by :mod:`bench.plots`.
"""

from __future__ import annotations

from typing import Any

import archs
from bench.counting import count

__all__ = ["RESNET_VARIANTS", "resnet_variants", "split_sweep"]

RESNET_VARIANTS = (
    "r2d_18", "fr2d_18", "mc2_18", "mc3_18", "mc4_18", "mc5_18", "rmc2_18", "rmc3_18", "rmc4_18", "rmc5_18",
    "r3d_18", "r2plus1d_18",
)  # fmt: skip


def split_sweep(frames: int = 64, size: int = 224) -> list[dict[str, Any]]:
    """GMACs and params of both heavy variants at every split point, and of I3D and I2D."""
    shape = (1, 3, frames, size, size)
    out: list[dict[str, Any]] = []
    for variant in ("i3d_bottom_heavy", "i3d_top_heavy"):
        for split in archs.SPLIT_POINTS:
            c = count(variant, shape, split=split)
            out.append({"arch": variant, "split": split, "gmacs": c.macs / 1e9, "params": c.params})
    for end in ("i3d", "i2d"):
        c = count(end, shape)
        out.append({"arch": end, "split": None, "gmacs": c.macs / 1e9, "params": c.params})
    return out


def resnet_variants(frames: int = 16, size: int = 112) -> list[dict[str, Any]]:
    """GMACs, params and the published top-1 at this input of the 18-layer variants of Tran et al."""
    clip = f"{frames}x{size}x{size}"
    out = []
    for name in RESNET_VARIANTS:
        c = count(name, (1, 3, frames, size, size))
        pub = next((p for p in archs.published_for(name) if p.input == clip and p.top1 is not None), None)
        out.append(
            {
                "arch": name,
                "family": archs.get_arch(name).family,
                "gmacs": c.macs / 1e9,
                "params": c.params,
                "top1": pub.top1 if pub else None,
                "source": pub.source if pub else None,
            }
        )
    return out
