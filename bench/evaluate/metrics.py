"""Accuracy of prediction lines (numbers only: formatting is the command's) and where an evaluation's time went."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.evaluate.video import SKIP_REASONS

__all__ = ["TOP_K", "Metrics", "Timing", "compute_metrics"]

TOP_K = 5
"""The k of top-k accuracy (or the class count, if smaller)."""


@dataclass(frozen=True)
class Metrics:
    """Accuracy over the ``ok`` prediction lines; percentages, ``None`` where there is nothing to count.

    ``confusion[t][p]`` counts videos of true class ``t`` predicted as ``p``; ``per_class`` has one entry per
    class (``videos``, ``top1``, ``top5``); ``k`` is the top-k of ``top5`` (5, or the class count if smaller).
    """

    videos: int
    skipped: int
    skipped_by_reason: dict[str, int]
    top1: float | None
    top5: float | None
    mean_class_top1: float | None
    k: int
    per_class: list[dict[str, Any]]
    confusion: list[list[int]]


def _pct(hits: int, n: int) -> float | None:
    return 100.0 * hits / n if n else None


def compute_metrics(records: Sequence[Mapping[str, Any]], num_classes: int) -> Metrics:
    """Top-1, top-5, per-class accuracy and the confusion matrix of prediction lines."""
    k = min(TOP_K, num_classes)
    confusion = [[0] * num_classes for _ in range(num_classes)]
    n = [0] * num_classes
    hit1 = [0] * num_classes
    hit5 = [0] * num_classes
    reasons: Counter[str] = Counter()
    for r in records:
        if r["status"] != "ok":
            reasons[r["reason"]] += 1
            continue
        t, p = r["target"], r["pred"]
        confusion[t][p] += 1
        n[t] += 1
        hit1[t] += p == t
        hit5[t] += t in r["top5"][:k]
    videos = sum(n)
    per_class = [
        {"index": c, "videos": n[c], "top1": _pct(hit1[c], n[c]), "top5": _pct(hit5[c], n[c])}
        for c in range(num_classes)
    ]
    seen = [100.0 * hit1[c] / n[c] for c in range(num_classes) if n[c]]
    return Metrics(
        videos=videos,
        skipped=sum(reasons.values()),
        skipped_by_reason={reason: reasons[reason] for reason in SKIP_REASONS if reasons[reason]},
        top1=_pct(sum(hit1), videos),
        top5=_pct(sum(hit5), videos),
        mean_class_top1=sum(seen) / len(seen) if seen else None,
        k=k,
        per_class=per_class,
        confusion=confusion,
    )


@dataclass
class Timing:
    """Where this run's time went, seconds. Decoding and resizing happen in the workers (in parallel when
    ``workers`` > 0); cutting views, normalising and the model happen here; ``wait_s`` is how long this
    process waited for the loader: the loader is the bottleneck when it exceeds ``model_s``."""

    workers: int = 0
    videos: int = 0
    clips: int = 0
    decode_s: float = 0.0
    resize_s: float = 0.0
    views_s: float = 0.0
    model_s: float = 0.0
    wait_s: float = 0.0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        def rate(seconds: float) -> float | None:
            return self.clips / seconds if seconds > 0 and self.clips else None

        preprocess_s = self.resize_s + self.views_s
        return {
            "videos": self.videos,
            "clips": self.clips,
            "workers": self.workers,
            "decode_s": self.decode_s,
            "preprocess_s": preprocess_s,
            "model_s": self.model_s,
            "loader_wait_s": self.wait_s,
            "wall_s": self.wall_s,
            "decode_clips_per_s": rate(self.decode_s),
            "preprocess_clips_per_s": rate(preprocess_s),
            "model_clips_per_s": rate(self.model_s),
            "clips_per_s": rate(self.wall_s),
            "bottleneck": None if not self.clips else "loader" if self.wait_s > self.model_s else "model",
            "note": "decode and resize run in the loader workers (their seconds add up over workers); a clip is "
            "one view the model sees; this run's work only",
        }
