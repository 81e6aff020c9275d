"""The Mann-Whitney U test, written out so that vbench needs no SciPy.

``vbench compare`` asks of two sets of latency samples whether one is
stochastically larger than the other. The samples are few (tens), skewed and
have outliers, so a rank test fits better than a t-test: it assumes nothing of
the distribution's shape.

Without ties and with at most :data:`EXACT_MAX` samples in all, the p-value is
exact: the null distribution of U is the coefficient list of the Gaussian
binomial ``[m+n choose m]_q``, counted with Python integers. Otherwise it is the
normal approximation with the tie correction of the variance and a continuity
correction (what SciPy's ``mannwhitneyu(method="asymptotic")`` computes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["EXACT_MAX", "MannWhitney", "mann_whitney_u"]

EXACT_MAX = 100
"""Largest m + n with an exact p-value (the distribution has m*n + 1 terms)."""

ALTERNATIVES = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class MannWhitney:
    u: float
    """U of the first sample: pairs (x_i, y_j) with x_i > y_j, ties counting one half."""
    p: float
    exact: bool


@lru_cache(maxsize=64)
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings give U = 0, 1, ..., m*n (no ties).

    The generating function is prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i).
    """
    size = m * n + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, m + 1):
        k = n + i
        for u in range(size - 1, k - 1, -1):  # multiply by (1 - q^k)
            c[u] -= c[u - k]
        for u in range(i, size):  # divide by (1 - q^i)
            c[u] += c[u - i]
    return tuple(c)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) and the size of each group of ties."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney_u(x: Sequence[float], y: Sequence[float], alternative: str = "greater") -> MannWhitney:
    """Test whether ``x`` tends to be larger than ``y`` (``greater``), smaller (``less``) or either.

    Raises:
        ValueError: an empty sample, a value that is not a finite number (NaN
            has no rank: it would decide the verdict by where the sort puts it),
            or an unknown alternative.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("both samples need at least one value")
    for v in (*x, *y):
        try:
            finite = not isinstance(v, bool) and math.isfinite(v)
        except (TypeError, OverflowError):  # not a number; an integer beyond float range
            finite = False
        if not finite:
            got = repr(v) if isinstance(v, float) else f"a value of type {type(v).__name__}"
            raise ValueError(f"samples must be finite numbers; got {got}")
    ranks, ties = _ranks([*x, *y])
    u = sum(ranks[:m]) - m * (m + 1) / 2
    mean = m * n / 2
    if max(ties) == 1 and m + n <= EXACT_MAX:
        counts = _u_counts(m, n)
        total = math.comb(m + n, m)
        k = round(u)
        upper = sum(counts[k:]) / total  # P(U >= u)
        lower = sum(counts[: k + 1]) / total  # P(U <= u)
        p = {"greater": upper, "less": lower, "two-sided": min(1.0, 2 * min(upper, lower))}[alternative]
        return MannWhitney(u=u, p=p, exact=True)
    var = m * n / 12 * ((m + n + 1) - sum(t**3 - t for t in ties) / ((m + n) * (m + n - 1)))
    if var <= 0:  # every value equal: no evidence either way
        return MannWhitney(u=u, p=1.0, exact=False)
    sd = math.sqrt(var)
    if alternative == "greater":
        p = _normal_sf((u - mean - 0.5) / sd)
    elif alternative == "less":
        p = _normal_sf((mean - u - 0.5) / sd)
    else:
        p = min(1.0, 2 * _normal_sf((abs(u - mean) - 0.5) / sd))
    return MannWhitney(u=u, p=p, exact=False)
