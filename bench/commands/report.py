"""``vbench report``: trade-off, paper and scaling tables and figures from saved runs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from bench.commands.common import folder
from bench.commands.console import stdout_closed as _stdout_closed
from bench.errors import UsageError


def report_cmd(
    results: Annotated[list[Path], typer.Argument(help="Saved runs: folders or their results.json.")],
    out: Annotated[
        str | None,
        typer.Option(
            help="Folder for report.md, the CSV tables and the figures (default reports/runs/report-<time>).",
            metavar="DIR",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a folder that holds files vbench report did not write.")
    ] = False,
    accuracy: Annotated[
        Path | None, typer.Option(help="CSV/JSON of your own accuracies (arch, input, top1, source, ...).")
    ] = None,
    published: Annotated[
        bool, typer.Option("--published/--no-published", help="Use the published accuracies (archs/published.json).")
    ] = True,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG and SVG figures (matplotlib).")] = True,
    variants: Annotated[
        bool | None,
        typer.Option(
            "--variants/--no-variants", help="Mixed 2D/3D figure (default: when a run holds MCx, rMCx or heavy I3D)."
        ),
    ] = None,
    breakdown: Annotated[
        list[Path] | None,
        typer.Option("--breakdown", help="`vbench inspect --time --json` output: time by kind of work; repeatable."),
    ] = None,
    include_contended: Annotated[
        bool,
        typer.Option(
            "--include-contended",
            help="Put rows timed on a shared machine (contended) into the scaling fits and the latency Pareto front.",
        ),
    ] = False,
    html: Annotated[
        bool, typer.Option("--html", help="Also write report.html, an interactive page that works offline (plotly).")
    ] = False,
) -> None:
    """Trade-off (cost beside published accuracy, Pareto), ours vs the papers, scaling, and why latency does
    not follow MACs (achieved GMAC/s, the roofline), from saved runs."""
    from bench.report.builder import write_report
    from bench.results.io import probe_writable
    from bench.run.rundir import new_run_dir

    made = out is None
    out_dir = probe_writable(folder(out), "--out") if out is not None else new_run_dir(Path("reports/runs"), "report-")
    try:
        text, paths, notes = write_report(
            results, out_dir, accuracy_file=accuracy, published=published, plots=plots, variants=variants,
            overwrite=overwrite, breakdowns=breakdown or [], html=html, include_contended=include_contended,
        )  # fmt: skip
    except UsageError:
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # the default folder made for this report, still empty
        raise
    try:
        typer.echo(text, nl=False)
        for path in paths:
            typer.echo(f"wrote {path}")
    except BrokenPipeError:
        _stdout_closed()
    for note in notes:
        typer.echo(note, err=True)
