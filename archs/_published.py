"""Published results, read from the data file ``published.json`` beside this module.

Only numbers that a paper or the authors' own model zoo states (tagged [P]), or
that a document quoting the paper states (tagged [S]), go in. Each record keeps
its source so that any report can cite it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["PublishedResult", "published_for", "published_table"]

_DATA = Path(__file__).with_name("published.json")


@dataclass(frozen=True)
class PublishedResult:
    """One published result of one architecture.

    Attributes:
        model: The name the source uses for it.
        dataset: ``"K400-val"``, ``"K400-test"``, ``"K400"`` (split not stated)...
        input: Clip as ``"TxHxW"`` the numbers refer to.
        views: Test views (``"10 clips"``, ``"1 clip"``, ...).
        pretrain: Pre-training (``"none"``, ``"ImageNet"``, ``"Sports-1M"``...).
        top1: Top-1 accuracy in percent, or None.
        top5: Top-5 accuracy in percent, or None.
        metric: What top-1 measures (``"video"``, ``"clip"``).
        params_m: Parameters in millions as published, or None.
        gmacs: Multiply-accumulates per view in billions (the source's "GFLOPs"), or None.
        tag: ``"P"`` (primary: paper or authors' zoo) or ``"S"`` (secondary quote).
        source: Paper and table, or repository and file.
        note: Why this implementation's count differs from the published one, where it does.
    """

    model: str
    dataset: str
    input: str
    views: str
    pretrain: str
    top1: float | None
    top5: float | None
    metric: str
    params_m: float | None
    gmacs: float | None
    tag: str
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def _load() -> dict[str, tuple[PublishedResult, ...]]:
    raw = json.loads(_DATA.read_text())
    out: dict[str, tuple[PublishedResult, ...]] = {}
    for arch, records in raw["results"].items():
        for r in records:
            if r["tag"] not in ("P", "S"):
                raise ValueError(f"{_DATA.name}: {arch}: tag {r['tag']!r} is not P or S")
        out[arch] = tuple(PublishedResult(**r) for r in records)
    return out


def published_for(arch: str) -> tuple[PublishedResult, ...]:
    """Published results of one registry key (empty when none exist)."""
    return _load().get(arch, ())


def published_table() -> dict[str, tuple[PublishedResult, ...]]:
    """Every registry key with published results."""
    return dict(_load())
