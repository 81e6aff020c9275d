"""``vbench history``: each configuration's costs across runs, judged as ``compare`` judges two."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from bench.commands.common import CompareConfig, folder
from bench.errors import UsageError


def history_cmd(
    results: Annotated[list[Path], typer.Argument(help="Saved runs (folders or their results.json), any order.")],
    html: Annotated[bool, typer.Option("--html", help="Write history.html, an interactive page (plotly).")] = False,
    out: Annotated[
        str | None, typer.Option(help="Folder for history.html (default reports/runs/history-<time>).", metavar="DIR")
    ] = None,
    config: CompareConfig = None,
) -> None:
    """Each configuration's params, GMACs, latency and memory across runs, oldest commit first, with the changes
    `vbench compare` would call regressions."""
    from bench.report.builder import write_history
    from bench.report.history import history_summary

    if html:
        from bench.report.html import require_plotly

        require_plotly()
    elif out is not None:
        raise UsageError("--out names the folder of history.html: add --html")
    history, path = write_history(results, folder(out) if out is not None else None, html, config)
    with contextlib.suppress(BrokenPipeError):
        typer.echo(history_summary(history), nl=False)
        if path is not None:
            typer.echo(f"wrote {path}")
