"""Figures of ``vbench report`` (matplotlib, PNG and SVG).

matplotlib is imported here only, with the Agg backend, so that a report can
be drawn on a machine without a display. Every function takes plain records or
a DataFrame from :mod:`bench.report.tradeoff` / :mod:`bench.report.variants` and returns the
paths it wrote. How an architecture is drawn (its family's colour, its place
in a comparison of variants, its legend) is the registry's metadata
(:class:`archs.Family`, :class:`archs.Variant`), so a new family is drawn
without a change here; a family the registry does not describe is grey.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

import archs
from bench.results.records import KIND_COLOURS

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

__all__ = ["plot_growth", "plot_roofline", "plot_scaling", "plot_time_by_kind", "plot_tradeoff", "plot_variants"]

_END_STYLES = ("-", ":", "--", "-.")
"""Line styles of the unswept members of a split sweep (I3D, I2D), in their order."""


def _colour(family: object) -> str:
    return archs.get_family(str(family)).color


def _variant(arch: str) -> archs.Variant | None:
    """The registry's :class:`archs.Variant` of a name from a record; None for a name it does not know."""
    try:
        return archs.get_arch(arch).variant
    except archs.UnknownArchError:
        return None


def _own_line(arch: str) -> tuple[str, str]:
    """Label and colour of an architecture drawn as a line of its own: its variant's, else its name and family's."""
    try:
        spec = archs.get_arch(arch)
    except archs.UnknownArchError:
        return arch, _colour("")
    v = spec.variant
    return (v and v.label) or arch, (v and v.color) or _colour(spec.family)


def _literal(text: object) -> str:
    """Text from a run or a plugin (an architecture name, a device name) as matplotlib shows it literally.

    matplotlib reads text between two ``$`` as mathtext: a name such as
    ``a$\\frac$b`` would stop the report with a parse error, after some files
    were written. An escaped ``\\$`` is a plain dollar sign.
    """
    return str(text).replace("$", r"\$")


def _legend_label(text: object) -> str:
    """:func:`_literal`, and not hidden: matplotlib leaves out legend labels that start with ``_``."""
    label = _literal(text)
    return " " + label if label.startswith("_") else label


def _save(fig: Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


# Places a label may take around its point, in points: right, left, above, below, the diagonals, then further out.
_NEAR = [(6, 0), (-6, 0), (0, 8), (0, -8), (6, 8), (6, -8), (-6, 8), (-6, -8)]
_CANDIDATES = _NEAR + [(3 * dx, 2.5 * dy if dy else 0) for dx, dy in _NEAR] + [(6, 22), (6, -22), (-6, 22), (-6, -22)]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _inside(box: tuple[float, ...], pts: np.ndarray, pad: float) -> int:
    if len(pts) == 0:
        return 0
    x, y = pts[:, 0], pts[:, 1]
    return int(((x > box[0] - pad) & (x < box[2] + pad) & (y > box[1] - pad) & (y < box[3] + pad)).sum())


def _closer_to_another(box: tuple[float, ...], own: np.ndarray, others: np.ndarray) -> bool:
    """Whether the box's nearest edge is closer to some other point than to its own (a misleading label)."""

    def gap(q: np.ndarray) -> float:
        dx = max(box[0] - q[0], 0.0, q[0] - box[2])
        dy = max(box[1] - q[1], 0.0, q[1] - box[3])
        return float(np.hypot(dx, dy))

    return len(others) > 0 and min(gap(q) for q in others) < gap(own)


def _densify(ax: Axes, line: tuple[Sequence[float], Sequence[float]], step: float = 3.0) -> np.ndarray:
    """Display-space points every ``step`` pixels along a polyline given in data coordinates."""
    xy = ax.transData.transform(np.column_stack(line))
    out = [xy[:1]]
    for a, b in itertools.pairwise(xy):
        n = max(1, int(np.hypot(*(b - a)) / step))
        out.append(a + np.outer(np.arange(1, n + 1) / n, b - a))
    return np.concatenate(out)


def _place_labels(
    ax: Axes, items: Sequence[tuple[float, float, str]], lines: Sequence[tuple[Sequence[float], Sequence[float]]] = ()
) -> None:
    """Label each point where its text overlaps no other label and covers as few points and lines as possible.

    Greedy: for each label, in turn, the first of the candidate places with the
    least cost (overlap with placed labels, then markers, then line pixels,
    then leaving the axes) wins.
    """
    if not items:
        return
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    scale = fig.dpi / 72
    points = ax.transData.transform(np.array([(x, y) for x, y, _ in items], dtype=float))
    line_pts = np.concatenate([_densify(ax, ln) for ln in lines]) if lines else np.zeros((0, 2))
    frame = ax.get_window_extent(renderer)
    placed: list[tuple[float, ...]] = []
    for i, ((x, y, text), p) in enumerate(zip(items, points)):
        others = np.delete(points, i, axis=0)
        label = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=8, zorder=4)
        box = Text.get_window_extent(label, renderer)
        w, h = box.width, box.height
        best: tuple[float, int, tuple[float, ...]] | None = None
        for rank, (dx, dy) in enumerate(_CANDIDATES):
            x0 = p[0] + dx * scale - (w if dx < 0 else w / 2 if dx == 0 else 0)
            y0 = p[1] + dy * scale - (h / 2 if dy == 0 else h if dy < 0 else 0)
            cand = (x0, y0, x0 + w, y0 + h)
            outside = cand[0] < frame.x0 or cand[2] > frame.x1 or cand[1] < frame.y0 or cand[3] > frame.y1
            cost = (
                1000 * sum(_overlap(cand, b) for b in placed) / (w * h)
                + 100 * _inside(cand, points, 3)
                + 2 * _inside(cand, line_pts, 1)
                + 300 * outside
                + 40 * _closer_to_another(cand, p, others)
                + rank
            )
            if best is None or cost < best[0]:
                best = (cost, rank, cand)
        assert best is not None
        dx, dy = _CANDIDATES[best[1]]
        label.set_position((dx, dy))
        label.set_horizontalalignment("right" if dx < 0 else "center" if dx == 0 else "left")
        label.set_verticalalignment("center" if dy == 0 else "top" if dy < 0 else "bottom")
        if best[1] >= len(_NEAR) or _closer_to_another(best[2], p, others):
            # placed further out, or nearer another point: a thin leader line shows whose label it is
            ax.annotate("", (x, y), xytext=(dx, dy), textcoords="offset points", zorder=2,
                        arrowprops={"arrowstyle": "-", "color": "0.25", "lw": 0.8, "shrinkA": 0, "shrinkB": 3})  # fmt: skip
        placed.append(best[2])


def _frontier(ax: Axes, points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]] | None:
    """Draw the Pareto staircase; returns its vertices (for the labeller)."""
    pts = sorted(points)
    if not pts:
        return None
    xs, ys = [pts[0][0]], [pts[0][1]]
    for x, y in pts[1:]:
        xs += [x, x]
        ys += [ys[-1], y]
    ax.plot(xs, ys, color="0.45", lw=1.0, ls="--", label="Pareto frontier", zorder=1)
    return xs, ys


def plot_tradeoff(frame: Any, cost: str, stem: Path) -> list[Path]:
    """Top-1 against GMACs (or latency), one point per architecture, the Pareto frontier drawn."""
    flag = "pareto_gmacs" if cost == "gmacs" else "pareto_latency"
    data = frame[frame[cost].notna() & frame["top1"].notna()]
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(11, 8))
    items = []
    # One marker per input clip; more clips than markers reuse them in turn (the post-2018 families bring many).
    markers = dict(zip(sorted(set(data["input"])), itertools.cycle("os^DvP*X<>hp")))
    for family, group in data.groupby("family", sort=True):
        colour = _colour(family)
        ax.scatter([], [], color=colour, marker="o", label=_legend_label(family))
        for r in group.itertuples():
            measured = getattr(r, "accuracy_kind", None) == "measured"
            ax.scatter(
                getattr(r, cost), r.top1, s=60 if measured else 42, color="white" if measured else colour,
                marker=markers[r.input], zorder=3, edgecolor=colour if measured else "white",
                linewidth=1.8 if measured else 0.8,
            )  # fmt: skip
            items.append((getattr(r, cost), r.top1, _literal(r.arch)))
    for clip, marker in markers.items():
        ax.scatter([], [], color="0.3", marker=marker, label=_legend_label(f"input {clip}"))
    kinds = {str(k) for k in data["accuracy_kind"]} if "accuracy_kind" in data else {"published"}
    if "measured" in kinds:
        ax.scatter([], [], color="white", edgecolor="0.3", linewidth=1.8, marker="o", label="measured (hollow)")
    frontier = _frontier(ax, [(getattr(r, cost), r.top1) for r in data.itertuples() if getattr(r, flag) is True])
    ax.set_xscale("log")
    named = [k for k in ("measured", "yours", "published") if k in kinds]
    which = (" and ".join(named) if len(named) <= 2 else "measured, yours and published").capitalize()
    if cost == "gmacs":
        ax.set_xlabel("GMACs per clip (log scale; multiply-accumulates, FLOPs = 2 x MACs)")
        ax.set_title(f"{which} top-1 vs MACs")
    else:
        timing = sorted({t for t in data["timing"] if t})
        ax.set_xlabel(_literal("latency (ms, log scale): " + "; ".join(timing)[:90]))
        ax.set_title(f"{which} top-1 vs measured latency")
    ax.set_ylabel(f"top-1 (%), {which.lower()}, at the same input")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="family / input", title_fontsize=8)
    x0, x1 = ax.get_xlim()
    ax.set_xlim(x0, x1 * 1.6)  # room for the labels of the right-most points
    y0, y1 = ax.get_ylim()
    ax.set_ylim(y0 - 0.5, y1 + 0.5)
    _place_labels(ax, items, [frontier] if frontier else [])
    fig.text(0.01, 0.005, "Accuracies differ in dataset split, views and pretraining: see the report's table.",
             fontsize=7, color="0.4")  # fmt: skip
    return _save(fig, stem)


def plot_variants(sweep: Sequence[dict[str, Any]], resnets: Sequence[dict[str, Any]], stem: Path) -> list[Path]:
    """Left: GMACs of the swept variants (Bottom-/Top-Heavy I3D) as the split moves. Right: top-1 vs GMACs (MCx, rMCx...).

    Labels, colours, series and order come from each architecture's
    :class:`archs.Variant` and :class:`archs.Family`; the records from
    :mod:`bench.report.variants` give the numbers.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    variants = {r["arch"]: _variant(r["arch"]) for r in [*sweep, *resnets]}
    swept = list(dict.fromkeys(r["arch"] for r in sweep if r["split"] is not None))
    splits = [r["split"] for r in sweep if swept and r["arch"] == swept[0]]
    for name in swept:
        label, colour = _own_line(name)
        ys = [r["gmacs"] for r in sweep if r["arch"] == name]
        left.plot(range(len(ys)), ys, marker="o", color=colour, label=_legend_label(label))
    for i, r in enumerate(r for r in sweep if r["split"] is None):
        label = _literal(_own_line(r["arch"])[0])
        style = _END_STYLES[i % len(_END_STYLES)]
        left.axhline(r["gmacs"], color="0.4", ls=style, lw=1, label=f"{label} ({r['gmacs']:.1f})")
    left.set_xticks(range(len(splits)), [_literal(s) for s in splits], rotation=45, ha="right", fontsize=8)
    left.set_xlabel("split point: first block of the upper part")
    left.set_ylabel("GMACs per clip (3x64x224x224)")
    left.set_title(_literal(_comparison(variants, swept)))
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)

    items: list[tuple[float, float, str]] = []
    lines = []
    ranked = [r for r in resnets if r["top1"] is not None]
    series = [f for f in dict.fromkeys(r["family"] for r in ranked) if archs.get_family(str(f)).series]
    for family in sorted(series, key=lambda f: _first(ranked, variants, f)):
        info = archs.get_family(str(family))
        pts = sorted(
            (_order(variants, r["arch"]), r["gmacs"], r["top1"], r["arch"]) for r in ranked if r["family"] == family
        )
        right.plot([p[1] for p in pts], [p[2] for p in pts], marker=info.marker, color=info.color,
                   label=_legend_label(info.series), zorder=3)  # fmt: skip
        items += [(p[1], p[2], _literal(p[3])) for p in pts]
        lines.append(([p[1] for p in pts], [p[2] for p in pts]))
    for r in ranked:
        if r["family"] not in series:
            right.scatter(r["gmacs"], r["top1"], marker="D", color=_colour(r["family"]), zorder=3)
            items.append((r["gmacs"], r["top1"], _literal(r["arch"])))
    right.set_xlabel("GMACs per clip (3x16x112x112)")
    right.set_ylabel("top-1 (%), Kinetics-400, 10 clips, from scratch (VMZ)")
    right.set_title(_literal(_comparison(variants, [r["arch"] for r in resnets])))
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    right.set_xlim(0, max(r["gmacs"] for r in resnets) * 1.25)
    fig.tight_layout()
    _place_labels(right, items, lines)
    return _save(fig, stem)


def _order(variants: dict[str, archs.Variant | None], arch: str) -> float:
    v = variants.get(arch)
    return v.order if v is not None else math.inf


def _first(rows: Sequence[dict[str, Any]], variants: dict[str, archs.Variant | None], family: object) -> float:
    """Where a family's first member stands in its comparison: families are drawn in that order."""
    return min(_order(variants, r["arch"]) for r in rows if r["family"] == family)


def _comparison(variants: dict[str, archs.Variant | None], names: Sequence[str]) -> str:
    """The title of the comparison the first of these architectures belongs to (empty when none)."""
    return next((v.comparison for n in names if (v := variants.get(n)) is not None), "")


_AXIS_LABELS = {"frames": "frames T", "height": "size H = W (pixels)", "batch": "batch"}


def plot_scaling(rows: Sequence[dict[str, Any]], stem: Path) -> list[Path]:
    """Relative growth of MACs (solid) and latency (dashed) along each axis that a run varies.

    Along one axis the other axes are held at their largest values (the most
    compute-bound corner); each line is divided by its first point, so a slope
    of 1 on the log-log axes means linear growth.
    """
    groups = _groups(rows)
    axes = [a for a in ("frames", "height", "batch") if any(len({r[a] for r in g}) >= 2 for g in groups.values())]
    if not axes:
        return []
    fig, panels = plt.subplots(1, len(axes), figsize=(5.5 * len(axes), 4.8), squeeze=False)
    for axis, ax in zip(axes, panels[0]):
        others = [a for a in ("frames", "height", "batch") if a != axis]
        ticks: set[float] = set()
        for i, (label, group) in enumerate(groups.items()):
            high = {a: max(r[a] for r in group) for a in others}
            line = sorted((r for r in group if all(r[a] == high[a] for a in others)), key=lambda r: r[axis])
            colour = plt.get_cmap("tab10")(i % 10)
            for metric, style in (("gmacs", "-"), ("latency_ms", "--")):
                per_iter = metric == "gmacs"
                pts = [(r[axis], r[metric] * (r["batch"] if per_iter else 1)) for r in line if _ok(r, metric)]
                if len(pts) >= 2:
                    xs, ys = zip(*pts)
                    ticks.update(xs)
                    ax.plot(xs, [y / ys[0] for y in ys], style, marker="o", ms=3, color=colour,
                            label=None if per_iter else _legend_label(label))  # fmt: skip
        ax.plot([], [], "-", color="0.3", label="MACs per iteration")
        ax.plot([], [], "--", color="0.3", label="latency")
        _growth_axes(ax, _AXIS_LABELS[axis] + " (log scale)", "growth from the smallest value (log scale)")
        ax.set_xticks(sorted(ticks), [f"{t:g}" for t in sorted(ticks)])
        ax.xaxis.set_minor_locator(NullLocator())
    fig.suptitle("Scaling along each axis (the other axes at their largest values)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_growth(rows: Sequence[dict[str, Any]], stem: Path) -> list[Path]:
    """MACs per clip voxel against the clip's voxels (T x H x W), one colour and marker per architecture
    (inference rows), a line joining the sizes of each clip length.

    A convolution does fixed work per voxel, so its points lie flat (up to padding and a fixed-size head);
    global attention's N^2 work over N tokens makes them rise. Each architecture is divided by its smallest
    clip (log-log axes: a slope of 0 is cost in proportion to the clip, a slope of g - 1 cost ~ voxels^g).
    Nothing where no architecture has two clip sizes.
    """
    series = {}
    for label, group in _groups(rows).items():
        pts = sorted({(r["frames"], r["height"], r["width"], r["gmacs"]) for r in group
                      if isinstance(r.get("gmacs"), (int, float)) and r["gmacs"] > 0})  # fmt: skip
        if len({t * h * w for t, h, w, _ in pts}) >= 2:
            series[label] = (pts, group[0].get("family"))
    if not series:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = itertools.cycle("osD^v<>ph*")
    for label, (pts, family) in series.items():
        marker = next(markers)
        smallest = min(pts, key=lambda p: p[0] * p[1] * p[2])
        first = smallest[3] / (smallest[0] * smallest[1] * smallest[2])
        for i, t in enumerate(sorted({p[0] for p in pts})):
            line = [p for p in pts if p[0] == t]
            voxels = [p[0] * p[1] * p[2] for p in line]
            ax.plot([v / 1e6 for v in voxels], [p[3] / v / first for p, v in zip(line, voxels)], "-",
                    marker=marker, ms=4, lw=1, color=_colour(family),
                    label=_legend_label(label) if i == 0 else None)  # fmt: skip
    _growth_axes(
        ax,
        "clip voxels T x H x W (millions, log scale); a line joins the sizes of one clip length",
        "MACs per voxel, from the smallest clip (log scale)",
    )
    ax.set_title("Cost per voxel as the clip grows: flat is in proportion to the clip")
    fig.tight_layout()
    return _save(fig, stem)


def _growth_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Log-2 axes for growth from a smallest value (y ticks ``x2``, ``x4``), labelled, with a grid and a legend."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"x{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _groups(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("mode", "infer") == "infer" and r.get("height") == r.get("width"):
            out.setdefault(f"{r['arch']} {r.get('dtype', '')}".strip(), []).append(r)
    return out


def _ok(row: dict[str, Any], metric: str) -> bool:
    v = row.get(metric)
    return row.get("status") == "ok" and isinstance(v, (int, float)) and v > 0 and math.isfinite(v)


def _family(arch: object) -> str:
    try:
        return archs.get_arch(str(arch)).family
    except archs.UnknownArchError:
        return ""


def plot_roofline(frame: Any, rooflines: dict[tuple[str, str], dict[str, Any]], stem: Path) -> list[Path]:
    """One panel per (device, dtype): each timed architecture at (arithmetic intensity, achieved TFLOP/s)
    under the measured roofs (the compute roof and the bandwidth slope meet at the ridge point).

    ``frame`` is :func:`bench.report.tradeoff.throughput_frame`'s (inference rows are drawn; the largest batch of
    each architecture); ``rooflines`` maps (device, dtype) to :meth:`bench.measure.roofline.Roofline.to_dict`.
    """
    if not len(frame):
        return []
    rows = frame[(frame["mode"] == "infer") & frame["intensity"].notna() & frame["achieved_tflops"].notna()]
    panels = [k for k in rooflines if len(rows[(rows["device"] == k[0]) & (rows["dtype"] == k[1])])]
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    for (device, dtype), ax in zip(panels, axes[0]):
        roof = rooflines[(device, dtype)]
        sub = rows[(rows["device"] == device) & (rows["dtype"] == dtype)]
        sub = sub[sub["batch"] == sub.groupby("arch")["batch"].transform("max")]
        lo = min(float(sub["intensity"].min()), roof["ridge_flop_per_byte"]) / 4
        hi = max(float(sub["intensity"].max()), roof["ridge_flop_per_byte"]) * 4
        xs = np.geomspace(lo, hi, 200)
        ax.plot(
            xs,
            np.minimum(roof["peak_tflops"], roof["bandwidth_gbs"] * 1e9 * xs / 1e12),
            "k-",
            lw=1.5,
            label=f"measured roof: {roof['peak_tflops']:.3g} TFLOP/s, {roof['bandwidth_gbs']:.3g} GB/s",
        )
        ax.axvline(roof["ridge_flop_per_byte"], color="0.6", ls=":", lw=1,
                   label=f"ridge {roof['ridge_flop_per_byte']:.1f} FLOP/byte")  # fmt: skip
        for r in sub.itertuples():
            ax.scatter(r.intensity, r.achieved_tflops, color=_colour(_family(r.arch)), s=28, zorder=3)
            ax.annotate(_literal(r.arch), (r.intensity, r.achieved_tflops), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte read and written, log)")
        ax.set_ylabel("achieved TFLOP/s (log)")
        ax.set_title(_literal(f"{roof.get('device_name', device)}: {device} {dtype}, inference"), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Roofline: each architecture under the device's measured roofs")
    fig.tight_layout()
    return _save(fig, stem)


_KIND_COLOURS = KIND_COLOURS


def plot_time_by_kind(breakdowns: Sequence[dict[str, Any]], stem: Path) -> list[Path]:
    """A stacked bar per breakdown (``inspect --time --json``): the share of time of each kind of work,
    with the share of MACs as a thin bar beside it."""
    if not breakdowns:
        return []
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(breakdowns) + 2), 5))
    labels = []
    seen: set[str] = set()
    for i, b in enumerate(breakdowns):
        by = {k["kind"]: k for k in b["kinds"]}
        for offset, field, width in ((-0.12, "pct_time", 0.5), (0.3, "pct_macs", 0.14)):
            bottom = 0.0
            for kind, colour in _KIND_COLOURS.items():
                share = 100 * float(by.get(kind, {}).get(field, 0.0))
                if share <= 0:
                    continue
                label = kind if field == "pct_time" and kind not in seen else None
                seen.add(kind)
                ax.bar(i + offset, share, width, bottom=bottom, color=colour, label=label,
                       alpha=1.0 if field == "pct_time" else 0.55)  # fmt: skip
                bottom += share
        labels.append(_literal(f"{b['arch']}\n{b['mode']}"))
    ax.set_xticks(range(len(breakdowns)), labels, fontsize=8)
    ax.set_ylabel("% of time (wide bar) and of MACs (thin bar)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("Where the time goes, by kind of work (vbench inspect --time)", fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)
