"""The Markdown of ``vbench report``: each table of :mod:`bench.report.tradeoff` as text, and the document around them.

Numbers are computed in :mod:`bench.report.tradeoff` (DataFrames); this module only
formats them. Each ``*_lines`` function renders one table's section body (its
title is added by :func:`report_markdown`); an empty list leaves the section out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.escape import markdown_table, md_code, md_escape, md_image
from bench.results.records import KINDS
from bench.results.schema import is_missing

__all__ = [
    "failures_lines",
    "figures_markdown",
    "growth_lines",
    "growth_summary",
    "growth_table",
    "paper_lines",
    "report_markdown",
    "scaling_lines",
    "throughput_lines",
    "tradeoff_lines",
]


def _fmt(v: Any, spec: str = "{}") -> str:
    if is_missing(v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else ""
    return spec.format(v)


def report_markdown(sections: Sequence[tuple[str, Sequence[str]]], sources: Sequence[str]) -> str:
    """The whole report: a header naming the runs, then each ``(title, body lines)`` that has a body."""
    lines = [
        "# vbench report",
        "",
        f"From {', '.join(md_code(s) for s in sources)}. MACs are multiply-accumulates of conv, linear and matmul "
        "layers (what the papers call FLOPs; FLOPs = 2 x MACs), per clip. Latency: median per iteration of the "
        "row named under *timing*. Top-1 is at the same input, *measured* by `vbench evaluate` (one protocol, "
        "your videos), *yours* (an accuracy file) or *published* (dataset, views and pretraining as listed; they "
        "differ between papers, so compare within a family first). Pareto: no other architecture is at most "
        "as costly and at least as accurate.",
    ]
    for title, body in sections:
        if body:
            lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def _marks(r: Any) -> str:
    """`` (noisy)``, `` (contended)``, both or nothing, after a latency."""
    marks = [m for m in ("noisy", "contended") if bool(getattr(r, m, False))]
    return f" ({', '.join(marks)})" if marks else ""


@dataclass(frozen=True)
class TableText:
    """One table's cells as text (formatted, not escaped): what the Markdown and the HTML renderers both show."""

    header: list[str]
    body: list[list[str]]
    left: tuple[str, ...] = ()
    """The headers of the columns aligned left (text); the others are numbers, aligned right."""

    def markdown(self) -> list[str]:
        return markdown_table(self.header, self.body, left=self.left)


def tradeoff_table(trade: pd.DataFrame) -> TableText:
    """The trade-off table's cells, by GMACs."""
    header = ["arch", "input", "params (M)", "GMACs/clip", "latency (ms)", "peak mem (MiB)", "top-1 (%)", "top-5 (%)",
              "accuracy", "top-1 / GMAC", "Pareto (GMACs)", "Pareto (latency)", "dataset, views, pretrain",
              "status"]  # fmt: skip
    order = trade.sort_values(["gmacs", "arch"], na_position="last")
    body = [
        [r.arch, r.input, _fmt(r.params_m, "{:.2f}"), _fmt(r.gmacs, "{:.2f}"),
         _fmt(r.latency_ms, "{:.2f}") + _marks(r),
         _fmt(r.peak_mem_mib, "{:.0f}"), _fmt(r.top1, "{:.1f}"), _fmt(r.top5, "{:.1f}"),
         _fmt(r.accuracy_kind) if not is_missing(r.top1) else "-", _fmt(r.top1_per_gmac, "{:.2f}"),
         _fmt(r.pareto_gmacs), _fmt(r.pareto_latency),
         ", ".join(str(x) for x in (r.dataset, r.views, r.pretrain) if not is_missing(x)) or "-", r.status]
        for r in order.itertuples()
    ]  # fmt: skip
    return TableText(header, body, ("arch", "input", "accuracy", "dataset, views, pretrain", "status"))


def tradeoff_lines(trade: pd.DataFrame) -> list[str]:
    """The trade-off table, by GMACs, with the timing rows named and every accuracy's source."""
    lines = tradeoff_table(trade).markdown()
    timings = sorted({t for t in trade["timing"] if t})
    if timings:
        lines += ["", "Timing rows: " + "; ".join(md_escape(t) for t in timings) + "."]
    sourced = trade[trade["accuracy_source"].notna()]
    if len(sourced):
        lines += ["", "Accuracy sources:", ""]
        lines += [
            f"- {md_escape(r.arch)} at {md_escape(r.input)}: {md_escape(r.accuracy_source)}"
            for r in sourced.itertuples()
        ]
    return lines


FAILURES_NONE = "None: every row finished ok."


def failures_table(failures: pd.DataFrame) -> TableText:
    """Every row that did not finish ok."""
    body = [[str(v) for v in row] for row in failures.astype(object).where(failures.notna(), "-").values.tolist()]
    return TableText(list(failures.columns), body, ("arch", "mode", "input", "dtype", "device", "status", "error"))


def failures_lines(failures: pd.DataFrame) -> list[str]:
    """Every row that did not finish ok, or a line saying there is none."""
    if not len(failures):
        return [FAILURES_NONE]
    return failures_table(failures).markdown()


def paper_lines(paper: pd.DataFrame) -> list[str]:
    """Our counts beside the published ones (nothing when no count was published at a measured input)."""
    if not len(paper):
        return []
    return [PAPER_NOTE, "", *paper_table(paper).markdown()]


PAPER_NOTE = ("Published counts at the same input. *exact*: equal to every decimal given (3 or more); *rounds to it*: "
              "ours, rounded to the published decimals, is the published figure; *differs*: it is not (the last "
              "column says why where it is known).")  # fmt: skip


def paper_table(paper: pd.DataFrame) -> TableText:
    """Our counts beside the published ones."""
    body = [
        [r.arch, r.input, r.count, f"{r.ours:,.4f}".rstrip("0").rstrip("."), f"{r.published:g}",
         f"{r.diff_pct:+.2f} %", r.verdict, r.source + (f". {r.note}" if r.note else "")]
        for r in paper.itertuples()
    ]  # fmt: skip
    return TableText(
        ["arch", "input", "count", "ours", "published", "difference", "verdict", "source and why"], body,
        ("arch", "input", "count", "verdict", "source and why"),
    )  # fmt: skip


def scaling_lines(scaling: pd.DataFrame) -> list[str]:
    """The growth exponents (nothing when no run varies an axis)."""
    if not len(scaling):
        return []
    return [SCALING_NOTE, "", *scaling_table(scaling).markdown()]


SCALING_NOTE = ("Growth exponents of a log-log least-squares fit, y ~ T^a (H=W)^b batch^c, one fit per "
                "architecture and setting; MACs per iteration should grow as T^1 (H=W)^2 batch^1.")  # fmt: skip


def scaling_table(scaling: pd.DataFrame) -> TableText:
    """The growth exponents."""
    body = [
        [r.arch, f"{r.mode} {r.dtype} {r.device}", r.axis, r.values, r.metric, f"{r.exponent:.2f}", f"{r.r2:.3f}",
         r.note or ""]
        for r in scaling.itertuples()
    ]  # fmt: skip
    return TableText(
        ["arch", "setting", "axis", "values", "metric", "exponent", "R²", "note"], body,
        ("arch", "setting", "axis", "values", "metric", "note"),
    )  # fmt: skip


GROWTH_NOTE = ("Exponents of log-log least-squares fits, one per architecture and setting: cost ~ T^a along the "
               "frames, ~ (H=W)^b along the frame's side (pixels per frame grow as its square, so b = 2 is cost in "
               "proportion to the pixels) and ~ (T·H·W)^g along the clip's voxels, to which every patch-based token "
               "count is proportional. A convolution's MACs grow as T^1 (H=W)^2 (T·H·W)^1. Self-attention over N "
               "tokens adds N² terms to the linear layers' N, so global attention shows as g above 1, rising with "
               "the clip; attention within windows or over pooled keys stays nearer 1. *T at largest size*: the "
               "MACs exponent of T between the fewest and the most frames at the largest size, the slope where the "
               "quadratic part weighs most. MACs are counted (exact); latency is measured, from ok rows not timed "
               "on a shared machine (`--include-contended` puts those in): *points* is how many the latency fit "
               "used of the timed rows. *Grows*: the MACs against the clip's voxels (g more than 0.05 from 1 is "
               "faster or slower).")  # fmt: skip


def growth_table(growth: pd.DataFrame) -> TableText:
    """The growth exponents of MACs and latency along T, H = W and T x H x W, one row per architecture and setting."""
    body = [
        [r.arch, _fmt(r.family), f"{r.mode} {r.dtype} {r.device} b{r.batch}", f"{r.frames} x {r.sizes}",
         _fmt(r.macs_frames, "{:.2f}"), _fmt(r.macs_size, "{:.2f}"), _fmt(r.macs_voxels, "{:.2f}"),
         _fmt(r.macs_frames_at_largest, "{:.2f}"), _fmt(r.latency_frames, "{:.2f}"), _fmt(r.latency_size, "{:.2f}"),
         _fmt(r.latency_voxels, "{:.2f}"), f"{r.latency_n} of {r.latency_timed}" if r.latency_timed else "-",
         r.growth or "-"]
        for r in growth.itertuples()
    ]  # fmt: skip
    return TableText(
        ["arch", "family", "setting", "T x H=W", "MACs: T^a", "MACs: (H=W)^b", "MACs: (T·H·W)^g",
         "MACs: T at largest size", "latency: T^a", "latency: (H=W)^b", "latency: (T·H·W)^g", "points",
         "grows"], body, ("arch", "family", "setting", "T x H=W", "points", "grows"),
    )  # fmt: skip


def growth_summary(growth: pd.DataFrame) -> list[str]:
    """One line per kind of growth: which architectures' MACs grow faster than the clip, in proportion or slower,
    with their family and exponent in T x H x W (the largest where a configuration has several settings)."""
    lines = []
    for verdict in ("faster than the clip", "in proportion", "slower than the clip"):
        rows = growth[growth["growth"] == verdict]
        if not len(rows):
            continue
        best = rows.sort_values("macs_voxels", ascending=False).drop_duplicates("arch")
        names = ", ".join(
            f"{md_code(r.arch)} ({md_escape(r.family)}, {r.macs_voxels:.2f})" if r.family
            else f"{md_code(r.arch)} ({r.macs_voxels:.2f})"
            for r in best.sort_values(["macs_voxels", "arch"], ascending=[False, True]).itertuples()
        )  # fmt: skip
        lines.append(f"- MACs grow {verdict}: {names}.")
    return lines


def growth_lines(growth: pd.DataFrame) -> list[str]:
    """How cost grows with clip length and frame size (nothing when no run varies the frames or the size)."""
    if not len(growth):
        return []
    return [GROWTH_NOTE, "", *growth_summary(growth), "", *growth_table(growth).markdown()]


THROUGHPUT_NOTE = ("MACs predict latency only where every architecture runs its MACs equally fast. They do not: "
                   "achieved GMAC/s (MACs per iteration / median latency) differ by setting, ranked fastest first; "
                   "*x slowest* is each one's GMAC/s over the slowest of its setting. FLOP/byte is the forward's "
                   "arithmetic intensity (bytes the layers read and write); *memory* marks those below the measured "
                   "roofline's ridge point, whose speed the memory bandwidth bounds, not the arithmetic units.")  # fmt: skip


@dataclass(frozen=True)
class ThroughputGroup:
    """One setting's ranking in the throughput section."""

    device: str
    dtype: str
    mode: str
    batch: int
    below_ridge: list[str]
    """The architectures below the ridge point (bound by memory bandwidth), in rank order."""
    table: TableText


def throughput_tables(frame: pd.DataFrame) -> list[ThroughputGroup]:
    """GMAC/s per architecture, ranked, one table per (device, dtype, mode, batch)."""
    out = []
    for (device, dtype, mode, batch), group in frame.groupby(["device", "dtype", "mode", "batch"], sort=False):
        below = list(dict.fromkeys(r.arch for r in group.itertuples() if r.bound == "memory"))
        body = [
            [str(r.rank), r.arch, r.input, _fmt(r.gmacs, "{:.2f}"), _fmt(r.latency_ms, "{:.2f}"),
             _fmt(r.gmacs_per_s, "{:.1f}"), _fmt(r.x_slowest, "{:.2f}"), _fmt(r.mfu, "{:.1%}"),
             _fmt(r.intensity, "{:.1f}"), _fmt(r.bound)]
            for r in group.itertuples()
        ]  # fmt: skip
        table = TableText(
            ["rank", "arch", "input", "GMACs/iter", "latency (ms)", "GMAC/s", "x slowest", "MFU", "FLOP/byte",
             "bound"], body, ("arch", "input", "bound"),
        )  # fmt: skip
        out.append(ThroughputGroup(str(device), str(dtype), str(mode), int(batch), below, table))
    return out


def throughput_lines(frame: pd.DataFrame) -> list[str]:
    """GMAC/s per architecture, ranked, with which fall below the ridge point (nothing without timed rows)."""
    if not len(frame):
        return []
    lines = [THROUGHPUT_NOTE, ""]
    for g in throughput_tables(frame):
        lines += [f"**{md_escape(g.device)} {md_escape(g.dtype)}, {md_escape(g.mode)}, batch {g.batch}**: "
                  + (f"below the ridge: {', '.join(md_code(a) for a in g.below_ridge)}." if g.below_ridge
                     else "every architecture is at or right of the ridge point."), ""]  # fmt: skip
        lines += [*g.table.markdown(), ""]
    return lines[:-1]


KINDS_NOTE = "Share of time (and of MACs) by kind of work, from `vbench inspect --time` breakdowns:"


def kinds_table(breakdowns: Sequence[dict[str, Any]]) -> TableText:
    """Share of time (and, in brackets, of MACs) by kind of work, one row per breakdown."""
    kinds = [k for k in KINDS if any(any(x["kind"] == k for x in b["kinds"]) for b in breakdowns)]
    body = []
    for b in breakdowns:
        by = {x["kind"]: x for x in b["kinds"]}
        body.append(
            [b["arch"], breakdown_setting(b)]
            + [f"{100 * by[k]['pct_time']:.1f} ({100 * by[k]['pct_macs']:.0f})" if k in by else "-" for k in kinds]
        )
    return TableText(["arch", "setting", *(f"% {k}" for k in kinds)], body, ("arch", "setting"))


def breakdown_setting(b: dict[str, Any]) -> str:
    """``infer cpu fp32 b1 8x112x112``: what a breakdown measured."""
    clip = "x".join(str(v) for v in b["input_shape"][2:])
    return f"{b['mode']} {b['device']} {b['dtype']} b{b['input_shape'][0]} {clip}"


def kinds_lines(breakdowns: Sequence[dict[str, Any]]) -> list[str]:
    """Share of time by kind of work per architecture, from ``inspect --time --json`` breakdowns."""
    if not breakdowns:
        return []
    return ["", KINDS_NOTE, "", *kinds_table(breakdowns).markdown()]


def figures_markdown(images: Sequence[Path], counted_afresh: Sequence[str] = ()) -> str:
    """The Figures section appended to the report ("" without figures).

    Args:
        images: The PNG files, linked by name (they sit beside ``report.md``).
        counted_afresh: Stems of the figures whose numbers were counted with this
            checkout's models rather than read from the runs; the section says so.
    """
    if not images:
        return ""
    lines = ["", "## Figures", "", *(md_image(p.stem, p.name) for p in images)]
    fresh = [stem for stem in counted_afresh if any(p.stem == stem for p in images)]
    if fresh:
        names = ", ".join(md_code(stem) for stem in fresh)
        lines += ["", f"{names}: counted with this checkout's models, not read from the runs."]
    return "\n".join(lines) + "\n"
