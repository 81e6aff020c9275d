"""Costs of the mixed 2D/3D variants, the comparisons the S3D and R(2+1)D papers argue from.

Which architectures take part, in what order and how each is swept is the
registry's metadata (:class:`archs.Variant` on each spec), not a list here:

- a comparison with a swept member is a split sweep: Bottom-Heavy vs Top-Heavy
  I3D as the 2D/3D split point moves through the network (Xie et al., ECCV
  2018), with I3D (all 3D) and I2D (all 2D) as ends;
- any other comparison is a set of points: MCx vs rMCx (Tran et al., CVPR
  2018), beside R2D, f-R2D, R3D and R(2+1)D, with their published top-1 at the
  same input.

Counted on the meta device (a few seconds) with this checkout's models; plain
records, drawn by :mod:`bench.report.plots`.
"""

from __future__ import annotations

from typing import Any

import archs
from bench.measure.counting import count

__all__ = ["comparisons", "resnet_variants", "split_sweep"]


def comparisons() -> dict[str, list[archs.ArchSpec]]:
    """Every comparison of variants in the registry, its members in their order."""
    groups: dict[str, list[archs.ArchSpec]] = {}
    for name in archs.list_archs():
        spec = archs.get_arch(name)
        if spec.variant is not None:
            groups.setdefault(spec.variant.comparison, []).append(spec)
    return {c: sorted(members, key=lambda s: s.variant.order if s.variant else 0) for c, members in groups.items()}


def _swept(members: list[archs.ArchSpec]) -> bool:
    return any(s.variant is not None and s.variant.splits for s in members)


def split_sweep(frames: int = 64, size: int = 224) -> list[dict[str, Any]]:
    """GMACs and params of each swept variant at every split point, then of the comparison's other members."""
    shape = (1, 3, frames, size, size)
    swept: list[dict[str, Any]] = []
    ends: list[dict[str, Any]] = []
    for members in comparisons().values():
        if not _swept(members):
            continue
        for spec in members:
            splits = spec.variant.splits if spec.variant else ()
            for split in splits:
                c = count(spec.name, shape, split=split)
                swept.append({"arch": spec.name, "split": split, "gmacs": c.macs / 1e9, "params": c.params})
            if not splits:
                c = count(spec.name, shape)
                ends.append({"arch": spec.name, "split": None, "gmacs": c.macs / 1e9, "params": c.params})
    return swept + ends


def resnet_variants(frames: int = 16, size: int = 112) -> list[dict[str, Any]]:
    """GMACs, params and the published top-1 at this input of the members of the unswept comparisons.

    These are the 18-layer variants of Tran et al.
    """
    clip = f"{frames}x{size}x{size}"
    out = []
    for members in comparisons().values():
        if _swept(members):
            continue
        for spec in members:
            c = count(spec.name, (1, 3, frames, size, size))
            pub = next((p for p in spec.published if p.input == clip and p.top1 is not None), None)
            out.append(
                {
                    "arch": spec.name,
                    "family": spec.family,
                    "gmacs": c.macs / 1e9,
                    "params": c.params,
                    "top1": pub.top1 if pub else None,
                    "source": pub.source if pub else None,
                }
            )
    return out
