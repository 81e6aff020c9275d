"""``vbench compare``: regression verdicts of one saved run against another, for CI."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from bench.commands.common import CompareConfig, one_line
from bench.commands.profile import profile_options
from bench.errors import UsageError


def compare_cmd(
    base: Annotated[Path, typer.Argument(help="Baseline run: a results.json or its folder.")],
    head: Annotated[Path, typer.Argument(help="Run to judge: a results.json or its folder.")],
    latency_tol: Annotated[str | None, typer.Option(help="Accepted latency increase, e.g. 10% (default 10%).")] = None,
    memory_tol: Annotated[str | None, typer.Option(help="Accepted peak-memory increase (default 5%).")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level of the latency test (default 0.05).")] = None,
    config: CompareConfig = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the verdict to this Markdown file.")] = None,
) -> None:
    """Regression verdicts of HEAD against BASE; exit 1 on a regression, 2 on bad input, 4 when a row was timed on a
    shared machine (contended) and nothing regressed."""
    from bench.report.verdict import compare_markdown
    from bench.results.compare import compare_rows, load_compare_config, refresh_command
    from bench.results.config import default_config
    from bench.results.io import atomic_write_text
    from bench.results.store import load_results

    if markdown is not None:
        from bench.results.io import probe_writable

        if markdown.is_dir() or str(markdown) == "":
            raise UsageError(f"--markdown '{markdown}' is a folder; name a file")
        probe_writable(markdown.parent, f"--markdown '{markdown}': its folder")  # before the verdict is printed
    tolerances = load_compare_config(default_config(config), latency_tol, memory_tol, alpha)
    base_rows, base_env = load_results(base)
    head_rows, head_env = load_results(head)
    comparison = compare_rows(base_rows, head_rows, tolerances, base_env, head_env)
    text = compare_markdown(comparison, str(base), str(head), refresh_command(base_env, base, profile_options()))
    with contextlib.suppress(BrokenPipeError):
        typer.echo(text, nl=False)
    if markdown is not None:
        try:
            atomic_write_text(markdown, text)
        except OSError as e:
            raise UsageError(f"cannot write --markdown '{markdown}': {e.strerror or e}") from None
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a") as f:
                f.write(text + "\n")
        except OSError as e:  # the verdict stands; only the summary is missing
            typer.echo(one_line(f"vbench: warning: cannot append to GITHUB_STEP_SUMMARY '{summary}': {e.strerror}"),
                       err=True)  # fmt: skip
    if comparison.exit_code:
        raise typer.Exit(code=comparison.exit_code)
