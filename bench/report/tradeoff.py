"""Trade-off, paper and scaling tables from saved runs (``vbench report``), with pandas.

- The trade-off table: one row per measured (architecture, arch_kwargs, input),
  its counts, latency and memory where measured, beside the published accuracy
  at that same input (with its source), accuracy per GMAC, and whether it is
  Pareto-optimal for accuracy vs GMACs and vs latency.
- The paper table: our parameter and MAC counts beside every published count
  at the same input, with the difference in percent.
- The scaling table: growth exponents of MACs, latency and memory along the
  frames, size and batch axes that a run varies.
- The growth table (:mod:`bench.report.growth`): the same fits along clip length and
  frame size, every architecture side by side, with the exponent in the clip's
  voxels that tells growth faster than the clip (global attention) from growth
  in proportion to it (convolution).

Numbers come from :mod:`bench.report.analysis`; this module joins and selects (pandas
frames). Their Markdown is :mod:`bench.report.markdown`'s. :data:`SECTIONS` lists the
report's tables, one entry each (CSV name, title, how it is computed, how it is
rendered); :func:`write_report` writes them all, the figures and the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

import archs
from bench.errors import UsageError
from bench.report import markdown as report_md
from bench.report.analysis import fit_growth, pareto_front
from bench.report.growth import growth_frame
from bench.results.io import show_path
from bench.results.schema import clip_of, is_contended, is_missing

__all__ = [
    "SECTIONS",
    "Section",
    "accuracy_records",
    "config_label",
    "failures_frame",
    "paper_frame",
    "report_frames",
    "report_text",
    "scaling_frame",
    "throughput_frame",
    "timing_row",
    "tradeoff_frame",
]

# ---------------------------------------------------------------- accuracy


def accuracy_records(
    user: Sequence[dict[str, Any]] = (), published: bool = True, measured: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Accuracy records, the first for a configuration winning: accuracies measured by ``vbench evaluate``,
    then the user's file, then the published ones; each tagged with where it came from (``kind``: measured,
    yours, published) and with its configuration (``config``: :func:`config_key` of its ``arch_kwargs``).

    A published accuracy is of the published configuration: the builder's defaults (400 classes).

    Raises:
        UsageError: two evaluations, or two records of the user's file, of one configuration (a report joins one
            accuracy per configuration; which one to keep is the user's choice, never made silently).
    """
    records = [dict(r, kind="measured") for r in measured]
    records += [dict(r, tag="user", kind="yours") for r in user]
    for r in records:
        r["config"] = config_key(r["arch"], r.get("arch_kwargs") or {})
    _refuse_twice([r for r in records if r["kind"] == "measured"])
    _refuse_twice([r for r in records if r["kind"] == "yours"])
    if published:
        for arch, results in archs.published_table().items():
            records += [
                {"arch": arch, **r.to_dict(), "kind": "published", "config": config_key(arch, {})}
                for r in results
                if r.top1 is not None and r.input not in ("", "-")
            ]
    return records


def _where(record: Mapping[str, Any]) -> str:
    """Where an accuracy record was read: ``evaluation 'runs/eval-a'`` or ``accuracy file 'a.csv', record 3``."""
    if record["kind"] == "measured":
        return f"evaluation {show_path(record['folder'])}"
    return str(record.get("where") or "your accuracy file")


def _refuse_twice(records: Sequence[dict[str, Any]]) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["config"], r["input"])
        if key in seen:
            raise UsageError(
                f"{_where(seen[key])} and {_where(r)} both give the accuracy of {describe_config(r)} at "
                f"{r['input']}; a report joins one accuracy per configuration: leave one of them out"
            )
        seen[key] = r


DEFAULT_NUM_CLASSES = 400
"""Every builder's class count unless told otherwise (``docs/design.md``, "The model contract"): the published configuration's."""


def config_key(arch: str, kwargs: Mapping[str, Any]) -> str:
    """The configuration an accuracy or a row is of: the architecture and its builder options, as canonical
    text; ``num_classes=400`` is every builder's default and counts as not given (``num_classes=2`` does count).

    Read without the registry (which would import torch): other options count as given, so an option spelled
    out at its default value is a configuration of its own, with no published accuracy.
    """
    kept = {k: v for k, v in kwargs.items() if not (k == "num_classes" and v == DEFAULT_NUM_CLASSES)}
    return json.dumps({"arch": arch, "kwargs": kept}, sort_keys=True, default=str)


def describe_config(record: Mapping[str, Any]) -> str:
    """``r3d_18`` or ``r3d_18(num_classes=2)``: the configuration of a record, for messages."""
    kwargs = json.loads(record["config"])["kwargs"]
    return record["arch"] + ("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else "")


def _accuracy_for(records: Sequence[dict[str, Any]], config: str, clip: str) -> dict[str, Any] | None:
    for r in records:
        if r["input"] == clip and (r.get("config") or config_key(r["arch"], r.get("arch_kwargs") or {})) == config:
            return r
    return None


def unjoined(records: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Notes for the evaluations that no row of the runs is of (their accuracy is not in the report)."""
    have = {(_row_config(row), clip_of(row)) for row in rows}
    return [
        f"note: {_where(r)} measured {describe_config(r)} at {r['input']}, which no run holds; "
        "its accuracy is not in the report"
        for r in records
        if r["kind"] == "measured" and (r["config"], r["input"]) not in have
    ]


def overridden(records: Sequence[dict[str, Any]]) -> list[str]:
    """Notes for the records of the user's file that an evaluation of the same configuration replaces."""
    measured = {(r["config"], r["input"]): r for r in records if r["kind"] == "measured"}
    return [
        f"note: {_where(r)} gives {describe_config(r)} at {r['input']} top-1 {r.get('top1')}; "
        f"{_where(measured[key])} measured it, and the measured accuracy is the one reported"
        for r in records
        if r["kind"] == "yours" and (key := (r["config"], r["input"])) in measured
    ]


def _row_config(row: Mapping[str, Any]) -> str:
    return config_key(row["arch"], json.loads(row.get("arch_kwargs") or "{}"))


# ---------------------------------------------------------------- the trade-off table


def config_label(row: dict[str, Any]) -> str:
    """``r3d_18`` or ``r3d_18(num_classes=2)``: a row's architecture with its builder options (a table's label)."""
    kwargs = json.loads(row.get("arch_kwargs") or "{}")
    return row["arch"] + ("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else "")


def timing_row(group: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The row whose latency stands for the configuration: inference at the smallest batch, first dtype."""
    infer = [r for r in group if r.get("mode") == "infer" and r.get("n_samples")] or [
        r for r in group if r.get("mode") == "infer" and r.get("status") != "ok"
    ]
    return min(infer, key=lambda r: r["batch"]) if infer else None


def tradeoff_frame(
    rows: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]], include_contended: bool = False
) -> pd.DataFrame:
    """One row per (architecture, arch_kwargs, input): costs, accuracy, Pareto flags.

    A latency timed on a shared machine (``contended``) is shown, marked, but has no place on the latency
    Pareto front (its flag is empty) unless ``include_contended``.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((config_label(row), clip_of(row)), []).append(row)
    records = []
    for (label, clip), group in groups.items():
        counted = next((r for r in group if r.get("gmacs") is not None), group[0])
        timed = timing_row(group)
        acc = _accuracy_for(accuracy, _row_config(counted), clip) or {}
        gmacs = counted.get("gmacs")
        top1 = acc.get("top1")
        records.append(
            {
                "arch": label,
                "family": counted.get("family"),
                "input": clip,
                "params_m": counted["params"] / 1e6 if counted.get("params") is not None else None,
                "gmacs": gmacs,
                "latency_ms": timed.get("latency_ms") if timed and timed.get("status") == "ok" else None,
                "noisy": bool(timed and timed.get("noisy")),
                "contended": bool(timed and is_contended(timed)),
                "peak_mem_mib": timed.get("peak_mem_mib") if timed and timed.get("status") == "ok" else None,
                "timing": _timing_label(timed),
                "status": _status(group),
                "dataset": acc.get("dataset"),
                "top1": top1,
                "top5": acc.get("top5"),
                "views": acc.get("views"),
                "pretrain": acc.get("pretrain"),
                "accuracy_source": acc.get("source"),
                "accuracy_kind": acc.get("kind"),
                "top1_per_gmac": top1 / gmacs if top1 is not None and gmacs else None,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=_TRADEOFF_COLUMNS)
    frame["pareto_gmacs"] = _pareto(frame, "gmacs")
    frame["pareto_latency"] = _pareto(frame, "latency_ms", skip=None if include_contended else frame["contended"])
    return frame


_TRADEOFF_COLUMNS = [
    "arch", "family", "input", "params_m", "gmacs", "latency_ms", "noisy", "contended", "peak_mem_mib", "timing", "status", "dataset",
    "top1", "top5", "views", "pretrain", "accuracy_source", "accuracy_kind", "top1_per_gmac",
]  # fmt: skip


def _timing_label(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    return f"{row['mode']} b{row['batch']} {row['dtype']} {row.get('device_name') or row['device']}"


def _status(group: Sequence[dict[str, Any]]) -> str:
    bad = sorted({f"{r['status']}" for r in group if r.get("status") != "ok"})
    return "ok" if not bad else ", ".join(bad)


def _pareto(frame: pd.DataFrame, cost: str, skip: pd.Series | None = None) -> list[bool | None]:
    """Pareto flags among the rows that have both the cost and a top-1, less those ``skip`` marks (None for the
    others)."""
    have = [
        i
        for i in range(len(frame))
        if not is_missing(frame[cost].iloc[i])
        and not is_missing(frame["top1"].iloc[i])
        and not (skip is not None and bool(skip.iloc[i]))
    ]
    flags = pareto_front([(float(frame[cost].iloc[i]), float(frame["top1"].iloc[i])) for i in have])
    out: list[bool | None] = [None] * len(frame)
    for i, flag in zip(have, flags):
        out[i] = flag
    return out


def failures_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Every row that did not finish ok, with its configuration and reason."""
    records = [
        {"arch": config_label(r), "mode": r.get("mode"), "batch": r.get("batch"), "input": clip_of(r), "dtype": r.get("dtype"),
         "device": r.get("device"), "status": r.get("status"), "error": r.get("error") or ""}
        for r in rows
        if r.get("status") != "ok"
    ]  # fmt: skip
    return pd.DataFrame.from_records(
        records, columns=["arch", "mode", "batch", "input", "dtype", "device", "status", "error"]
    )


# ---------------------------------------------------------------- ours beside the papers


def paper_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """For every counted (architecture, input) with a published count at that input: ours, theirs, difference.

    A published count is given to some decimals (33.3 M); it "matches" when ours
    rounds to it, else the difference is in percent.
    """
    seen: set[tuple[str, str]] = set()
    records = []
    for row in rows:
        key = (row["arch"], clip_of(row))
        if key in seen or row.get("gmacs") is None or json.loads(row.get("arch_kwargs") or "{}"):
            continue
        seen.add(key)
        for pub in archs.published_for(row["arch"]):
            if pub.input != key[1]:
                continue
            for what, ours, theirs in (
                ("params (M)", row["params"] / 1e6, pub.params_m),
                ("GMACs", row["gmacs"], pub.gmacs),
            ):
                if theirs is None:
                    continue
                records.append(
                    {"arch": row["arch"], "input": key[1], "count": what, "ours": ours, "published": theirs,
                     "diff_pct": 100 * (ours - theirs) / theirs, "verdict": _agreement(ours, theirs),
                     "source": f"{pub.model}; {pub.source} [{pub.tag}]", "note": pub.note}
                )  # fmt: skip
    return pd.DataFrame.from_records(
        records, columns=["arch", "input", "count", "ours", "published", "diff_pct", "verdict", "source", "note"]
    )


def _agreement(ours: float, theirs: float) -> str:
    """``exact`` (to the 3 or more decimals given), ``rounds to it`` (fewer decimals) or ``differs``.

    The decimals are those of the published figure as stored (152.0 counts one).
    """
    text = repr(float(theirs))
    decimals = len(text.split(".")[1]) if "e" not in text else 0
    if round(ours, decimals) != round(theirs, decimals):
        return "differs"
    return "exact" if decimals >= 3 else "rounds to it"


# ---------------------------------------------------------------- scaling

AXES = ("frames", "height", "batch")
_AXIS_NAMES = {"frames": "T (frames)", "height": "H=W (size)", "batch": "batch"}
_SCALING_METRICS = (("gmacs_per_iter", "MACs"), ("latency_ms", "latency"), ("peak_mem_mib", "peak memory"))


def scaling_frame(rows: Sequence[dict[str, Any]], include_contended: bool = False) -> pd.DataFrame:
    """Growth exponents of MACs (per iteration), latency and memory along each axis that varies.

    One fit per (architecture, arch_kwargs, mode, dtype, device) over all its
    rows, ``y ~ T^a H^b B^c`` (H = W). Expect MACs ~ T^1 H^2 B^1, with small
    departures from padding and fixed-size heads; where latency departs from
    the MACs exponent by more than 0.2 the note says so. Latencies timed on a shared machine
    (``contended``) are left out of the fits unless ``include_contended``.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("width") != row.get("height"):
            continue
        key = (config_label(row), row.get("mode"), row.get("dtype"), row.get("device"))
        item = dict(row)
        item["gmacs_per_iter"] = (row.get("gmacs") or 0) * (row.get("batch") or 0) or None
        if row.get("status") != "ok":
            item["latency_ms"] = item["peak_mem_mib"] = None
        elif is_contended(row) and not include_contended:
            item["latency_ms"] = None
        groups.setdefault(key, []).append(item)
    records = []
    for (label, mode, dtype, device), group in groups.items():
        fits = {metric: fit_growth(group, AXES, metric) for metric, _ in _SCALING_METRICS}
        macs = fits["gmacs_per_iter"]
        for metric, name in _SCALING_METRICS:
            fit = fits[metric]
            if fit is None:
                continue
            for axis, exponent in fit.exponents.items():
                values = sorted({int(r[axis]) for r in group})
                note = ""
                if metric == "latency_ms" and macs is not None and axis in macs.exponents:
                    gap = exponent - macs.exponents[axis]
                    if abs(gap) > 0.2:
                        note = "grows " + ("slower" if gap < 0 else "faster") + f" than MACs ({gap:+.2f})"
                records.append(
                    {"arch": label, "mode": mode, "dtype": dtype, "device": device, "axis": _AXIS_NAMES[axis],
                     "values": ",".join(map(str, values)), "metric": name, "exponent": exponent, "r2": fit.r2,
                     "n": fit.n, "note": note}
                )  # fmt: skip
    return pd.DataFrame.from_records(
        records, columns=["arch", "mode", "dtype", "device", "axis", "values", "metric", "exponent", "r2", "n", "note"]
    )


# ---------------------------------------------------------------- the report's tables


def throughput_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Why latency does not follow MACs: achieved GMAC/s of every timed ok row, ranked within its setting.

    One row per timed configuration (device, dtype, mode, batch, input), with
    its MACs per iteration, latency, GMAC/s, TFLOP/s, MFU, arithmetic intensity
    and roofline class, ranked fastest-per-MAC first within each (device, dtype,
    mode, batch); ``x_slowest``: its GMAC/s over the setting's slowest.
    """
    columns = ["device", "dtype", "mode", "batch", "rank", "arch", "input", "gmacs", "latency_ms", "gmacs_per_s",
               "x_slowest", "achieved_tflops", "mfu", "intensity", "bound"]  # fmt: skip
    out = []
    for r in rows:
        macs = r.get("gmacs") if r.get("mode") == "infer" else r.get("train_gmacs")
        lat = r.get("latency_ms")
        if r.get("status") != "ok" or is_missing(macs) or is_missing(lat) or not lat:
            continue
        per_iter = float(macs) * int(r["batch"])  # type: ignore[arg-type]
        out.append({
            "device": r["device"], "dtype": r["dtype"], "mode": r["mode"], "batch": r["batch"], "arch": r["arch"],
            "input": clip_of(r), "gmacs": per_iter, "latency_ms": lat, "gmacs_per_s": per_iter / (lat / 1e3),
            "achieved_tflops": r.get("achieved_tflops"), "mfu": r.get("mfu"), "intensity": r.get("intensity"),
            "bound": r.get("bound"),
        })  # fmt: skip
    frame = pd.DataFrame(out, columns=[c for c in columns if c not in ("rank", "x_slowest")])
    if not len(frame):
        return pd.DataFrame(columns=columns)
    setting = ["device", "dtype", "mode", "batch"]
    frame = frame.sort_values([*setting, "gmacs_per_s"], ascending=[True] * 4 + [False]).reset_index(drop=True)
    frame["rank"] = frame.groupby(setting).cumcount() + 1
    frame["x_slowest"] = frame["gmacs_per_s"] / frame.groupby(setting)["gmacs_per_s"].transform("min")
    return frame[columns]


@dataclass(frozen=True)
class Section:
    """One table of the report: its CSV, its Markdown section, how it is computed and how it is rendered.

    Attributes:
        name: The CSV's stem (``tradeoff`` -> ``tradeoff.csv``).
        title: The Markdown section's title.
        compute: ``(rows, accuracy records, include contended rows in fits and fronts) -> frame``.
        render: ``frame -> Markdown lines`` of the section's body; none leaves the section out.
    """

    name: str
    title: str
    compute: Callable[[Sequence[dict[str, Any]], Sequence[dict[str, Any]], bool], pd.DataFrame]
    render: Callable[[pd.DataFrame], list[str]]


SECTIONS: tuple[Section, ...] = (
    Section("tradeoff", "Trade-off", tradeoff_frame, report_md.tradeoff_lines),
    Section("failures", "Failures", lambda rows, _, __: failures_frame(rows), report_md.failures_lines),
    Section("paper", "Ours beside the papers", lambda rows, _, __: paper_frame(rows), report_md.paper_lines),
    Section("scaling", "Scaling", lambda rows, _, include: scaling_frame(rows, include), report_md.scaling_lines),
    Section(
        "growth",
        "How cost grows with clip length and frame size",
        lambda rows, _, include: growth_frame(rows, include),
        report_md.growth_lines,
    ),
    Section(
        "throughput",
        "Why latency does not follow MACs",
        lambda rows, _, __: throughput_frame(rows),
        report_md.throughput_lines,
    ),
)
"""The report's tables, in the order of the Markdown; a new table is one more entry."""


def report_frames(
    rows: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]], include_contended: bool = False
) -> dict[str, pd.DataFrame]:
    """Every table of the report (:data:`SECTIONS`), by its CSV name, in the Markdown's order."""
    return {s.name: s.compute(rows, accuracy, include_contended) for s in SECTIONS}


def report_text(
    frames: Mapping[str, pd.DataFrame], sources: Sequence[str], extra: Mapping[str, list[str]] | None = None
) -> str:
    """The report's Markdown from its frames (:func:`report_frames`); ``extra`` appends lines to a section's body
    (by the section's CSV name)."""
    extra = extra or {}
    return report_md.report_markdown(
        [(s.title, s.render(frames[s.name]) + extra.get(s.name, [])) for s in SECTIONS], sources
    )
