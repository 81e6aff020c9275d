"""Numbers behind the reports: Pareto frontiers and growth exponents.

Plain functions on plain values, so that they can be checked on tables worked
out by hand; :mod:`bench.report.tradeoff` and :mod:`bench.report.plots` format and draw them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GrowthFit", "fit_growth", "pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which (cost, accuracy) points are Pareto-optimal: no other point is at most as costly
    and at least as accurate, and strictly better in one of the two.

    Equal points are all optimal (neither dominates the other).
    """
    flags = []
    for i, (cost, acc) in enumerate(points):
        dominated = any(c <= cost and a >= acc and (c < cost or a > acc) for j, (c, a) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


@dataclass(frozen=True)
class GrowthFit:
    """``y ~ k * prod(x_axis ** exponent)``, fitted by least squares in log space."""

    exponents: dict[str, float]
    r2: float
    n: int


def fit_growth(rows: Sequence[Mapping[str, float]], axes: Sequence[str], metric: str) -> GrowthFit | None:
    """Fit ``log y = a + sum_i b_i log x_i`` over the rows; the ``b_i`` are the growth exponents.

    Only axes that take at least two values enter the fit (a full grid, or
    one axis varied at a time, both work). Rows with a missing or non-positive
    value are left out. Returns None when nothing varies or there are too few
    rows to fit.
    """
    usable = [r for r in rows if all(_positive(r.get(a)) for a in axes) and _positive(r.get(metric))]
    varying = [a for a in axes if len({float(r[a]) for r in usable}) >= 2]
    if not varying or len(usable) < len(varying) + 1:
        return None
    x = np.array([[1.0, *(math.log(float(r[a])) for a in varying)] for r in usable])
    y = np.array([math.log(float(r[metric])) for r in usable])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return GrowthFit(exponents={a: float(b) for a, b in zip(varying, coef[1:])}, r2=r2, n=len(usable))


def _positive(v: object) -> bool:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return f > 0 and math.isfinite(f)
