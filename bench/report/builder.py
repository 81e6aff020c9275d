"""The report builder: ``vbench report`` and ``vbench history`` write their folders from saved runs.

Numbers come from :mod:`bench.report.tradeoff` and :mod:`bench.report.history`; the Markdown from
:mod:`bench.report.markdown`, the figures from :mod:`bench.report.plots`, the pages from
:mod:`bench.report.html_report` and :mod:`bench.report.html_history`. This module reads the runs, checks the
folder (never writing over files it did not write), and writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import archs
from bench.errors import OutputError, UsageError
from bench.report import markdown as report_md
from bench.report.history import History, history_frame
from bench.report.tradeoff import SECTIONS, accuracy_records, overridden, report_frames, report_text, unjoined
from bench.results.accuracy import load_accuracy
from bench.results.breakdowns import load_breakdowns
from bench.results.evaluation import is_evaluation, load_evaluation
from bench.results.io import read_text, show_path
from bench.results.schema import is_contended
from bench.results.validate import parse_json

__all__ = ["MANIFEST", "REPORT_FILES", "check_report_folder", "write_history", "write_report"]


def _rooflines(envs: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(device, dtype) -> the measured roofline the runs recorded (the last run's, where several did)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for env in envs:
        for dtype, r in (env.get("rooflines") or {}).items():
            if isinstance(r, dict) and all(_finite(r.get(k)) for k in ("peak_tflops", "bandwidth_gbs",
                                                                       "ridge_flop_per_byte")):  # fmt: skip
                out[(str(r.get("device", env.get("device", ""))), str(dtype))] = r
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and 0 < v < float("inf")


# ---------------------------------------------------------------- the whole report

MANIFEST = ".vbench-report.json"
"""Written into the report folder: the names of the files ``vbench report`` wrote there."""

_TABLES = tuple(s.name for s in SECTIONS)
_FIGURES = ("tradeoff_gmacs", "tradeoff_latency", "scaling", "growth", "mixed_variants", "roofline", "time_by_kind")
_COUNTED_AFRESH = ("mixed_variants",)
"""Figures whose numbers ``vbench report`` counts with this checkout's models instead of reading them from the runs."""
REPORT_FILES = frozenset(
    {"report.md", "report.html", *(f"{t}.csv" for t in _TABLES),
     *(f"{f}.{ext}" for f in _FIGURES for ext in ("png", "svg"))}
)  # fmt: skip
"""Every name a report may write. A folder without a manifest that holds only these is taken for a report."""

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.\w+\.tmp$")
"""What an interrupted atomic write leaves behind: ``.report.md.k3j2x9ab.tmp``."""


def _read_manifest(folder: Path) -> set[str] | None:
    """The names a manifest lists; None where there is none or it is not one (then the names are the known ones)."""
    path = folder / MANIFEST
    if path.is_symlink():
        return None
    try:
        doc = parse_json(read_text(path, "report manifest", 1_000_000), "report manifest")
    except UsageError:  # missing, not a regular file, too large, not JSON: not a manifest of ours
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
    from bench.results.io import atomic_write_text

    path = out_dir / MANIFEST
    atomic_write_text(path, json.dumps({"written_by": "vbench report", "files": sorted(names)}, indent=1) + "\n")
    return path


def _holds_mixed_family(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether a run holds an architecture of a mixed 2D/3D family (registry metadata: :attr:`archs.Family.mixed`)."""
    return any(archs.get_family(f).mixed for f in {r.get("family") for r in rows} if isinstance(f, str))


def write_report(
    sources: Sequence[str | Path],
    out_dir: Path,
    *,
    accuracy_file: str | Path | None = None,
    published: bool = True,
    plots: bool = True,
    variants: bool | None = None,
    overwrite: bool = False,
    breakdowns: Sequence[str | Path] = (),
    html: bool = False,
    include_contended: bool = False,
) -> tuple[str, list[Path], list[str]]:
    """Read the runs, write ``report.md``, the CSV tables and the figures into ``out_dir``.

    Args:
        variants: Draw the mixed 2D/3D figure (counted afresh with this checkout's models, as the report
            says); None: when a run holds an architecture of a mixed 2D/3D family.
        overwrite: Write into ``out_dir`` even though it holds files vbench report
            did not write (they are left alone). See :func:`check_report_folder`.
        breakdowns: ``vbench inspect --time --json`` files: their time by kind of work joins the
            "Why latency does not follow MACs" section and its figure.
        html: Also write ``report.html``, the interactive page (:mod:`bench.report.html_report`; needs plotly).
        include_contended: Put latencies timed on a shared machine (``contended``) into the scaling fits and
            the latency Pareto front (by default they are shown, marked, and left out of both).

    Returns:
        The Markdown, the paths written (the manifest last), and notes for the user (e.g. plots skipped).

    Raises:
        UsageError: a missing, empty or malformed results or accuracy file, or a
            report folder that is a file or holds other files (all before
            anything is written); OutputError: a folder that cannot be written.
    """
    if html:
        from bench.report.html import require_plotly

        require_plotly()
    own = check_report_folder(out_dir, overwrite)
    inputs = _read_inputs(sources, accuracy_file, published, breakdowns)
    frames = report_frames(inputs.rows, inputs.accuracy, include_contended)
    notes = unjoined(inputs.accuracy, inputs.rows) + overridden(inputs.accuracy)
    text = report_text(frames, inputs.sources, {"throughput": report_md.kinds_lines(inputs.kinds)})
    said = _contended_note(inputs.rows, include_contended)
    if said:
        text += "\n" + said + "\n"
        notes.append(said)
    try:
        choices = _Choices(plots=plots, variants=variants, html=html, include_contended=include_contended)
        text, written = _write_folder(out_dir, own, frames, text, inputs, choices, notes)
    except OSError as e:
        raise OutputError(f"cannot write the report into {show_path(out_dir)}: {e.strerror or e}") from None
    return text, written, notes


@dataclass(frozen=True)
class _Inputs:
    """What a report reads: the runs' rows and the rooflines they recorded, the accuracy records, the breakdowns."""

    sources: list[str]
    rows: list[dict[str, Any]]
    rooflines: dict[tuple[str, str], dict[str, Any]]
    accuracy: list[dict[str, Any]]
    kinds: list[dict[str, Any]]


@dataclass(frozen=True)
class _Choices:
    """What the user chose a report to hold beyond report.md and its tables (:func:`write_report`'s options)."""

    plots: bool
    variants: bool | None
    html: bool
    include_contended: bool


def _read_inputs(
    sources: Sequence[str | Path],
    accuracy_file: str | Path | None,
    published: bool,
    breakdowns: Sequence[str | Path],
) -> _Inputs:
    """Read and check every input, before anything is written (where :func:`write_report` raises ``UsageError``)."""
    from bench.results.store import load_results

    measured = [load_evaluation(source) for source in sources if is_evaluation(source)]
    runs = [load_results(source) for source in sources if not is_evaluation(source)]
    if not runs:
        raise UsageError("no profile run among the inputs: evaluations join the costs of a profile run")
    user = load_accuracy(accuracy_file) if accuracy_file is not None else []
    kinds = [b for path in breakdowns for b in load_breakdowns(path)]
    rows = [row for run_rows, _ in runs for row in run_rows]
    accuracy = accuracy_records(user, published, measured)
    return _Inputs([str(s) for s in sources], rows, _rooflines([env for _, env in runs]), accuracy, kinds)


def _contended_note(rows: Sequence[dict[str, Any]], include_contended: bool) -> str | None:
    """The report's sentence on rows timed on a shared machine, None when there is none."""
    n_contended = sum(is_contended(r) for r in rows)
    if not n_contended:
        return None
    how = (
        "included in the scaling fits and the latency Pareto front (--include-contended)"
        if include_contended
        else "left out of the scaling fits and the latency Pareto front (--include-contended puts them in)"
    )
    return (
        f"(contended): {n_contended} row{'s were' if n_contended != 1 else ' was'} timed while another workload "
        f"took a material part of the machine; their latencies are marked and {how}."
    )


def _write_folder(
    out_dir: Path,
    own: set[str],
    frames: Mapping[str, pd.DataFrame],
    text: str,
    inputs: _Inputs,
    choices: _Choices,
    notes: list[str],
) -> tuple[str, list[Path]]:
    """Write the CSVs, the figures, report.md (``text`` and its figures), report.html and the manifest; return the
    Markdown and the paths written (report.md first, the manifest last). Notes for the user go into ``notes``."""
    from bench.results.io import atomic_write_text

    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    # First claim every name this report may write, so that an interrupted report is still ours.
    planned = {"report.md", *(f"{t}.csv" for t in _TABLES)} | (set(REPORT_FILES) if choices.plots else set())
    planned |= {"report.html"} if choices.html else set()
    _write_manifest(out_dir, own | planned)
    for name, frame in frames.items():
        path = out_dir / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=False))
        written.append(path)
    if choices.plots:
        written += _draw_figures(out_dir, frames, inputs, choices.variants, notes)
    text += report_md.figures_markdown([p for p in written if p.suffix == ".png"], _COUNTED_AFRESH)
    md = out_dir / "report.md"
    atomic_write_text(md, text)
    if choices.html:
        from bench.report.html_report import chart_points, report_html

        page = out_dir / "report.html"
        titles = {s.name: s.title for s in SECTIONS}
        atomic_write_text(page, report_html(frames, chart_points(inputs.rows, inputs.accuracy), inputs.sources,
                                            rooflines=inputs.rooflines, breakdowns=inputs.kinds, titles=titles,
                                            include_contended=choices.include_contended))  # fmt: skip
        written.append(page)
    # Files of an earlier report that this one did not rewrite stay (and stay listed): nothing is deleted.
    still = {name for name in own if (out_dir / name).is_file()}
    manifest = _write_manifest(out_dir, still | {md.name, *(p.name for p in written)})
    return text, [md, *written, manifest]


def _draw_figures(
    out_dir: Path, frames: Mapping[str, pd.DataFrame], inputs: _Inputs, variants: bool | None, notes: list[str]
) -> list[Path]:
    """The report's figures (none, with a note, where matplotlib is not installed)."""
    try:
        from bench.report import plots as figures
    except ImportError:
        notes.append("plots skipped: matplotlib is not installed (pip install 'vbench[plot]')")
        return []
    rows = inputs.rows
    written = figures.plot_tradeoff(frames["tradeoff"], "gmacs", out_dir / "tradeoff_gmacs")
    written += figures.plot_tradeoff(frames["tradeoff"], "latency_ms", out_dir / "tradeoff_latency")
    written += figures.plot_scaling(rows, out_dir / "scaling")
    written += figures.plot_growth(rows, out_dir / "growth")
    written += figures.plot_roofline(frames["throughput"], inputs.rooflines, out_dir / "roofline")
    written += figures.plot_time_by_kind(inputs.kinds, out_dir / "time_by_kind")
    if variants or (variants is None and _holds_mixed_family(rows)):
        from bench.report.variants import resnet_variants, split_sweep

        written += figures.plot_variants(split_sweep(), resnet_variants(), out_dir / "mixed_variants")
    return written


def write_history(
    sources: Sequence[str | Path], out_dir: Path | None, html: bool, config_path: Path | None = None
) -> tuple[History, Path | None]:
    """Read the runs, judge them, and (``html``) write ``history.html`` into ``out_dir``.

    Raises:
        UsageError: fewer than two runs, a missing or malformed run or config, or an unwritable folder.
    """
    from bench.errors import OutputError, UsageError
    from bench.results.compare import load_compare_config
    from bench.results.config import default_config
    from bench.results.io import atomic_write_text, probe_writable
    from bench.results.store import load_results
    from bench.run.rundir import new_run_dir

    if len(sources) < 2:
        raise UsageError("history needs at least two runs")
    if out_dir is not None and html:
        probe_writable(out_dir, "--out")
    tolerances = load_compare_config(default_config(config_path))
    runs = []
    for source in sources:
        rows, env = load_results(source)
        runs.append((str(source), rows, env))
    history = history_frame(runs, tolerances)
    if not html:
        return history, None
    from bench.report.html_history import history_html

    page = history_html(history)
    folder = out_dir if out_dir is not None else new_run_dir(Path("reports/runs"), "history-")
    path = folder / "history.html"
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise OutputError(f"cannot write {show_path(path)}: {e.strerror or e}") from None
    return history, path
