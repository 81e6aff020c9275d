"""``vbench merge``: combine the folders of shards into one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.commands.common import Overwrite, folder, print_merge_notes, print_results
from bench.commands.console import make_console as _console
from bench.errors import ExitCode, UsageError


def merge_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, e.g. the outputs of --shard 1/2 and 2/2.")],
    out: Annotated[str, typer.Option(help="Folder for the merged results.", metavar="DIR")],
    allow_mixed: Annotated[
        bool, typer.Option("--allow-mixed", help="Merge runs measured on different devices or versions.")
    ] = False,
    overwrite: Overwrite = False,
    rounds: Annotated[
        bool,
        typer.Option(
            "--rounds",
            help="Each run is one round of the same plan, in order: one row per configuration, combined as "
            "profile --rounds combines its rounds.",
        ),
    ] = False,
) -> None:
    """Combine shard outputs (with --rounds: rounds) into one results set; exit 1 if jobs are missing or held
    twice, or with --rounds, if a configuration is missing from a round."""
    from bench.report.tables import summary_markdown
    from bench.results.merge import merge_runs, write_merged
    from bench.run.rounds import merge_rounds
    from bench.run.rundir import check_out, claim

    out_dir = check_out(folder(out), overwrite=overwrite)
    if any(Path(r).resolve() == out_dir.resolve() for r in runs):
        raise UsageError(f"--out '{out}' is one of the runs being merged; choose another folder")
    merged = (merge_rounds if rounds else merge_runs)(runs, allow_mixed=allow_mixed)
    claim(out_dir, overwrite=overwrite)
    console = _console()
    print_results(console, merged.rows, write_merged(merged, out_dir, summary_markdown))
    print_merge_notes(console, merged)
    if merged.missing or merged.duplicated or merged.short:
        raise typer.Exit(code=ExitCode.FAILED)
