"""Trade-off, paper and scaling tables from saved runs (``vbench report``), with pandas.

- The trade-off table: one row per measured (architecture, arch_kwargs, input),
  its counts, latency and memory where measured, beside the published accuracy
  at that same input (with its source), accuracy per GMAC, and whether it is
  Pareto-optimal for accuracy vs GMACs and vs latency.
- The paper table: our parameter and MAC counts beside every published count
  at the same input, with the difference in percent.
- The scaling table: growth exponents of MACs, latency and memory along the
  frames, size and batch axes that a run varies.

Numbers come from :mod:`bench.analysis`; this module joins, selects and formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import archs
from bench.analysis import fit_growth, pareto_front
from bench.errors import OutputError, UsageError
from bench.report import markdown_table, md_code, md_escape, md_image
from bench.schema import clip_of, is_missing
from bench.validate import ACCURACY_COLUMNS, load_accuracy, show_path

__all__ = [
    "ACCURACY_COLUMNS",
    "MANIFEST",
    "REPORT_FILES",
    "accuracy_records",
    "check_report_folder",
    "failures_frame",
    "load_accuracy",
    "paper_frame",
    "scaling_frame",
    "tradeoff_frame",
    "tradeoff_markdown",
    "write_report",
]

# ---------------------------------------------------------------- accuracy


def accuracy_records(user: Sequence[dict[str, Any]] = (), published: bool = True) -> list[dict[str, Any]]:
    """The user's records first (they win for the same architecture and input), then the published ones."""
    records = [dict(r, tag="user") for r in user]
    if published:
        for arch, results in archs.published_table().items():
            records += [
                {"arch": arch, **r.to_dict()} for r in results if r.top1 is not None and r.input not in ("", "-")
            ]
    return records


def _accuracy_for(records: Sequence[dict[str, Any]], arch: str, clip: str) -> dict[str, Any] | None:
    for r in records:
        if r["arch"] == arch and r["input"] == clip:
            return r
    return None


# ---------------------------------------------------------------- the trade-off table


def _label(row: dict[str, Any]) -> str:
    kwargs = json.loads(row.get("arch_kwargs") or "{}")
    return row["arch"] + ("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else "")


def _timing_row(group: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The row whose latency stands for the configuration: inference at the smallest batch, first dtype."""
    infer = [r for r in group if r.get("mode") == "infer" and r.get("n_samples")] or [
        r for r in group if r.get("mode") == "infer" and r.get("status") != "ok"
    ]
    return min(infer, key=lambda r: r["batch"]) if infer else None


def tradeoff_frame(rows: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (architecture, arch_kwargs, input): costs, accuracy, Pareto flags."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((_label(row), clip_of(row)), []).append(row)
    records = []
    for (label, clip), group in groups.items():
        counted = next((r for r in group if r.get("gmacs") is not None), group[0])
        timed = _timing_row(group)
        acc = _accuracy_for(accuracy, counted["arch"], clip) or {}
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
                "peak_mem_mib": timed.get("peak_mem_mib") if timed and timed.get("status") == "ok" else None,
                "timing": _timing_label(timed),
                "status": _status(group),
                "dataset": acc.get("dataset"),
                "top1": top1,
                "top5": acc.get("top5"),
                "views": acc.get("views"),
                "pretrain": acc.get("pretrain"),
                "accuracy_source": acc.get("source"),
                "top1_per_gmac": top1 / gmacs if top1 is not None and gmacs else None,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=_TRADEOFF_COLUMNS)
    frame["pareto_gmacs"] = _pareto(frame, "gmacs")
    frame["pareto_latency"] = _pareto(frame, "latency_ms")
    return frame


_TRADEOFF_COLUMNS = [
    "arch", "family", "input", "params_m", "gmacs", "latency_ms", "noisy", "peak_mem_mib", "timing", "status", "dataset",
    "top1", "top5", "views", "pretrain", "accuracy_source", "top1_per_gmac",
]  # fmt: skip


def _timing_label(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    return f"{row['mode']} b{row['batch']} {row['dtype']} {row.get('device_name') or row['device']}"


def _status(group: Sequence[dict[str, Any]]) -> str:
    bad = sorted({f"{r['status']}" for r in group if r.get("status") != "ok"})
    return "ok" if not bad else ", ".join(bad)


def _pareto(frame: pd.DataFrame, cost: str) -> list[bool | None]:
    """Pareto flags among the rows that have both the cost and a top-1 (None for the others)."""
    have = [
        i for i in range(len(frame)) if not is_missing(frame[cost].iloc[i]) and not is_missing(frame["top1"].iloc[i])
    ]
    flags = pareto_front([(float(frame[cost].iloc[i]), float(frame["top1"].iloc[i])) for i in have])
    out: list[bool | None] = [None] * len(frame)
    for i, flag in zip(have, flags):
        out[i] = flag
    return out


def failures_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Every row that did not finish ok, with its configuration and reason."""
    records = [
        {"arch": _label(r), "mode": r.get("mode"), "batch": r.get("batch"), "input": clip_of(r), "dtype": r.get("dtype"),
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


def scaling_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Growth exponents of MACs (per iteration), latency and memory along each axis that varies.

    One fit per (architecture, arch_kwargs, mode, dtype, device) over all its
    rows, ``y ~ T^a H^b B^c`` (H = W). Expect MACs ~ T^1 H^2 B^1, with small
    departures from padding and fixed-size heads; where latency departs from
    the MACs exponent by more than 0.2 the note says so.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("width") != row.get("height"):
            continue
        key = (_label(row), row.get("mode"), row.get("dtype"), row.get("device"))
        item = dict(row)
        item["gmacs_per_iter"] = (row.get("gmacs") or 0) * (row.get("batch") or 0) or None
        if row.get("status") != "ok":
            item["latency_ms"] = item["peak_mem_mib"] = None
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


# ---------------------------------------------------------------- Markdown


def _fmt(v: Any, spec: str = "{}") -> str:
    if is_missing(v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else ""
    return spec.format(v)


def tradeoff_markdown(
    trade: pd.DataFrame, paper: pd.DataFrame, scaling: pd.DataFrame, failures: pd.DataFrame, sources: Sequence[str]
) -> str:
    """The whole report as Markdown: trade-off, failures, ours vs the papers, scaling."""
    lines = [
        "# vbench report",
        "",
        f"From {', '.join(md_code(s) for s in sources)}. MACs are multiply-accumulates of conv, linear and matmul "
        "layers (what the papers call FLOPs; FLOPs = 2 x MACs), per clip. Latency: median per iteration of the "
        "row named under *timing*. Top-1 is published at the same input (dataset, views and pretraining as listed; "
        "they differ between papers, so compare within a family first). Pareto: no other architecture is at most "
        "as costly and at least as accurate.",
        "",
        "## Trade-off",
        "",
    ]
    header = ["arch", "input", "params (M)", "GMACs/clip", "latency (ms)", "peak mem (MiB)", "top-1 (%)", "top-5 (%)",
              "top-1 / GMAC", "Pareto (GMACs)", "Pareto (latency)", "dataset, views, pretrain", "status"]  # fmt: skip
    order = trade.sort_values(["gmacs", "arch"], na_position="last")
    body = [
        [r.arch, r.input, _fmt(r.params_m, "{:.2f}"), _fmt(r.gmacs, "{:.2f}"),
         _fmt(r.latency_ms, "{:.2f}") + (" (noisy)" if r.noisy else ""),
         _fmt(r.peak_mem_mib, "{:.0f}"), _fmt(r.top1, "{:.1f}"), _fmt(r.top5, "{:.1f}"), _fmt(r.top1_per_gmac, "{:.2f}"),
         _fmt(r.pareto_gmacs), _fmt(r.pareto_latency),
         ", ".join(str(x) for x in (r.dataset, r.views, r.pretrain) if not is_missing(x)) or "-", r.status]
        for r in order.itertuples()
    ]  # fmt: skip
    lines += markdown_table(header, body, left=("arch", "input", "dataset, views, pretrain", "status"))
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
    lines += ["", "## Failures", ""]
    if len(failures):
        lines += markdown_table(
            list(failures.columns), failures.astype(object).where(failures.notna(), "-").values.tolist(),
            left=("arch", "mode", "input", "dtype", "device", "status", "error"),
        )  # fmt: skip
    else:
        lines.append("None: every row finished ok.")
    if len(paper):
        lines += ["", "## Ours beside the papers", "",
                  "Published counts at the same input. *exact*: equal to every decimal given (3 or more); *rounds to it*: "
                  "ours, rounded to the published decimals, is the published figure; *differs*: it is not (the last "
                  "column says why where it is known).", ""]  # fmt: skip
        body = [
            [r.arch, r.input, r.count, f"{r.ours:,.4f}".rstrip("0").rstrip("."), f"{r.published:g}",
             f"{r.diff_pct:+.2f} %", r.verdict, r.source + (f". {r.note}" if r.note else "")]
            for r in paper.itertuples()
        ]  # fmt: skip
        lines += markdown_table(
            ["arch", "input", "count", "ours", "published", "difference", "verdict", "source and why"], body,
            left=("arch", "input", "count", "verdict", "source and why"),
        )  # fmt: skip
    if len(scaling):
        lines += ["", "## Scaling", "",
                  "Growth exponents of a log-log least-squares fit, y ~ T^a (H=W)^b batch^c, one fit per "
                  "architecture and setting; MACs per iteration should grow as T^1 (H=W)^2 batch^1.", ""]  # fmt: skip
        body = [
            [r.arch, f"{r.mode} {r.dtype} {r.device}", r.axis, r.values, r.metric, f"{r.exponent:.2f}", f"{r.r2:.3f}",
             r.note or ""]
            for r in scaling.itertuples()
        ]  # fmt: skip
        lines += markdown_table(
            ["arch", "setting", "axis", "values", "metric", "exponent", "R²", "note"], body,
            left=("arch", "setting", "axis", "values", "metric", "note"),
        )  # fmt: skip
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the whole report

MANIFEST = ".vbench-report.json"
"""Written into the report folder: the names of the files ``vbench report`` wrote there."""

_TABLES = ("tradeoff", "paper", "scaling", "failures")
_FIGURES = ("tradeoff_gmacs", "tradeoff_latency", "scaling", "mixed_variants")
REPORT_FILES = frozenset(
    {"report.md", *(f"{t}.csv" for t in _TABLES), *(f"{f}.{ext}" for f in _FIGURES for ext in ("png", "svg"))}
)
"""Every name a report may write. A folder without a manifest that holds only these is taken for a report."""

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.\w+\.tmp$")
"""What an interrupted atomic write leaves behind: ``.report.md.k3j2x9ab.tmp``."""


def _read_manifest(folder: Path) -> set[str] | None:
    """The names a manifest lists; None where there is none or it is not one (then the names are the known ones)."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    files = doc.get("files") if isinstance(doc, dict) else doc
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def check_report_folder(out_dir: Path, overwrite: bool = False) -> set[str]:
    """Refuse a report folder that would clobber what vbench did not write there; return the names it did write.

    A folder that holds only what an earlier ``vbench report`` wrote (the names
    in its manifest, or, without a manifest, only names a report writes: how the
    committed ``reports/report/`` and ``reports/scaling/`` came to be) may be
    rewritten: regenerating a committed report is the normal use. Anything else
    in it (another file, a folder, a link) is refused unless ``overwrite``, and
    even then it is left where it is and not listed as the report's.

    Raises:
        UsageError: ``out_dir`` is a file (or not a folder), or it holds files
            vbench report did not write and ``overwrite`` is false.
    """
    if not out_dir.exists() and not out_dir.is_symlink():
        return set()
    if not out_dir.is_dir():
        what = "a file" if out_dir.is_file() else "not a folder"
        raise UsageError(f"{show_path(out_dir)} is {what}; choose a folder for the report (--out)")
    try:
        entries = sorted(p.name for p in out_dir.iterdir())
    except OSError as e:
        raise OutputError(f"cannot read the report folder {show_path(out_dir)}: {e.strerror or e}") from None
    listed = _read_manifest(out_dir)
    known = REPORT_FILES if listed is None else listed
    ours: set[str] = set()
    foreign: list[str] = []
    for name in entries:
        if name == MANIFEST:
            continue
        path = out_dir / name
        leftover = _TEMPORARY.match(name)
        regular = path.is_file() and not path.is_symlink()
        if regular and (name in known or (leftover is not None and leftover["name"] in REPORT_FILES | {MANIFEST})):
            ours.add(name)
        else:
            foreign.append(name)
    if foreign and not overwrite:
        raise UsageError(
            f"{show_path(out_dir)} holds files vbench report did not write (e.g. {show_path(foreign[0])}); "
            "choose an empty folder or pass --overwrite"
        )
    return {name for name in ours if not _TEMPORARY.match(name)}


def _write_manifest(out_dir: Path, names: set[str]) -> Path:
    from bench.results import atomic_write_text

    path = out_dir / MANIFEST
    atomic_write_text(path, json.dumps({"written_by": "vbench report", "files": sorted(names)}, indent=1) + "\n")
    return path


def write_report(
    sources: Sequence[str | Path],
    out_dir: Path,
    *,
    accuracy_file: str | Path | None = None,
    published: bool = True,
    plots: bool = True,
    variants: bool | None = None,
    overwrite: bool = False,
) -> tuple[str, list[Path], list[str]]:
    """Read the runs, write ``report.md``, the CSV tables and the figures into ``out_dir``.

    Args:
        variants: Draw the mixed 2D/3D figure (counted afresh); None: when a run holds a mixed family.
        overwrite: Write into ``out_dir`` even though it holds files vbench report
            did not write (they are left alone). See :func:`check_report_folder`.

    Returns:
        The Markdown, the paths written (the manifest last), and notes for the user (e.g. plots skipped).

    Raises:
        UsageError: a missing, empty or malformed results or accuracy file, or a
            report folder that is a file or holds other files (all before
            anything is written); OutputError: a folder that cannot be written.
    """
    from bench.results import atomic_write_text, load_results

    own = check_report_folder(out_dir, overwrite)
    rows = [row for source in sources for row in load_results(source)[0]]
    user = load_accuracy(accuracy_file) if accuracy_file is not None else []
    trade = tradeoff_frame(rows, accuracy_records(user, published))
    paper, scaling, failures = paper_frame(rows), scaling_frame(rows), failures_frame(rows)
    text = tradeoff_markdown(trade, paper, scaling, failures, [str(s) for s in sources])

    written: list[Path] = []
    notes = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # First claim every name this report may write, so that an interrupted report is still ours.
        planned = {"report.md", *(f"{t}.csv" for t in _TABLES)} | (set(REPORT_FILES) if plots else set())
        _write_manifest(out_dir, own | planned)
        for name, frame in (("tradeoff", trade), ("paper", paper), ("scaling", scaling), ("failures", failures)):
            path = out_dir / f"{name}.csv"
            atomic_write_text(path, frame.to_csv(index=False))
            written.append(path)
        if plots:
            try:
                from bench import plots as figures
            except ImportError:
                notes.append("plots skipped: matplotlib is not installed (pip install 'vbench[plot]')")
            else:
                written += figures.plot_tradeoff(trade, "gmacs", out_dir / "tradeoff_gmacs")
                written += figures.plot_tradeoff(trade, "latency_ms", out_dir / "tradeoff_latency")
                written += figures.plot_scaling(rows, out_dir / "scaling")
                families = {r.get("family") for r in rows}
                if variants or (variants is None and families & {"i3d_mixed", "mc", "rmc"}):
                    from bench.variants import resnet_variants, split_sweep

                    written += figures.plot_variants(split_sweep(), resnet_variants(), out_dir / "mixed_variants")
        figures_md = [p for p in written if p.suffix == ".png"]
        if figures_md:
            text += "\n## Figures\n\n" + "\n".join(md_image(p.stem, p.name) for p in figures_md) + "\n"
        md = out_dir / "report.md"
        atomic_write_text(md, text)
        # Files of an earlier report that this one did not rewrite stay (and stay listed): nothing is deleted.
        still = {name for name in own if (out_dir / name).is_file()}
        manifest = _write_manifest(out_dir, still | {md.name, *(p.name for p in written)})
    except OSError as e:
        raise OutputError(f"cannot write the report into {show_path(out_dir)}: {e.strerror or e}") from None
    return text, [md, *written, manifest], notes
