"""The ``vbench`` command line: parse, call the library, report, exit code.

Known user mistakes raise :class:`bench.errors.UsageError` (or the registry's
``UnknownArchError``) and become one line on stderr with exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import archs
from bench.errors import UsageError

app = typer.Typer(
    name="vbench",
    help="Benchmark and profile video action-recognition backbones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"vbench: error: {message}", err=True)
    return typer.Exit(code=code)


def _user_errors(fn: F) -> F:
    """Turn known user mistakes into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageError, archs.UnknownArchError) as e:
            raise _fail(str(e)) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        from bench import __version__

        typer.echo(f"vbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Benchmark and profile video action-recognition backbones."""


@app.command("list")
@_user_errors
def list_cmd(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'r*_18'.")] = "*",
    family: Annotated[str | None, typer.Option(help="Only this family (pattern).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per architecture.")] = False,
) -> None:
    """List registered architectures with their inputs, parameters and paper."""
    from bench.counting import build_meta, param_count
    from bench.report import arch_table

    names = archs.list_archs(pattern, family=family)
    if not names:
        raise UsageError(f"no architecture matches '{pattern}'" + (f" in family '{family}'" if family else ""))
    rows = []
    for name in names:
        data = archs.get_arch(name).to_dict()
        data["params"] = param_count(build_meta(name))[0]
        rows.append(data)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        _console().print(arch_table(rows))


@app.command("profile")
@_user_errors
def profile_cmd(
    arch: Annotated[
        list[str], typer.Option("--arch", "-a", help="'all', a name or a pattern such as 'r*_18'; repeatable.")
    ],
    device: Annotated[str, typer.Option(help="cpu, cuda, mps or auto.")] = "auto",
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    frames: Annotated[str | None, typer.Option(help="Frames, comma-separated (default: each paper input).")] = None,
    size: Annotated[str | None, typer.Option(help="Height = width, comma-separated (default: paper input).")] = None,
    input_: Annotated[
        str,
        typer.Option(
            "--input", help="Without --frames/--size: paper (default input), min (smallest valid), or 'paper,min'."
        ),
    ] = "paper",
    dtype: Annotated[str, typer.Option(help="fp32, bf16 or fp16 (autocast), comma-separated.")] = "fp32",
    mode: Annotated[str, typer.Option(help="infer, train (forward+backward+step) or both.")] = "infer",
    channels_last: Annotated[bool, typer.Option("--channels-last", help="channels_last_3d memory format.")] = False,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="Replay inference as a CUDA graph.")] = False,
    static: Annotated[bool, typer.Option("--static", help="Count only (params, MACs); no timing.")] = False,
    arch_kwargs: Annotated[
        list[str] | None, typer.Option("--arch-kwargs", help="key=value passed to the builders; repeatable.")
    ] = None,
    warmup: Annotated[int, typer.Option(help="Untimed iterations first.")] = 3,
    repeats: Annotated[int, typer.Option(help="Timed samples to take (at least).")] = 10,
    min_time: Annotated[float, typer.Option(help="Keep sampling at least this many seconds.")] = 0.0,
    max_time: Annotated[float, typer.Option(help="Stop sampling after this many seconds.")] = 60.0,
    timeout: Annotated[float, typer.Option(help="Kill a worker that produces no row for this many seconds.")] = 900.0,
    out: Annotated[Path | None, typer.Option(help="Output folder (default reports/runs/<timestamp>).")] = None,
    plugin: Annotated[
        list[str] | None, typer.Option("--plugin", help="Module to import first (registers more archs).")
    ] = None,
    counter: Annotated[str, typer.Option(help="MAC counter: torch (meta device) or fvcore (traces on CPU).")] = "torch",
    fail_on_error: Annotated[bool, typer.Option("--fail-on-error", help="Exit 1 if any row is not ok.")] = False,
    shard: Annotated[
        str | None, typer.Option(help="Run shard I of N of the sweep, e.g. 2/4 (balanced by MACs).")
    ] = None,
    only_missing: Annotated[
        bool, typer.Option("--only-missing", help="Keep the finished rows in --out; measure only what is missing.")
    ] = False,
    gpus: Annotated[str | None, typer.Option(help="GPUs to use, e.g. 0,1: one worker per GPU at a time.")] = None,
    count_workers: Annotated[
        int | None, typer.Option(help="CPU processes that count in parallel (default 1; with --gpus, up to 4).")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="Submit the shards as a job array: slurm, or local (same path, this machine).")
    ] = None,
    shards: Annotated[int | None, typer.Option(help="Array tasks for --executor (default 2, or the config).")] = None,
    partition: Annotated[str | None, typer.Option(help="SLURM partition for --executor slurm.")] = None,
    time_min: Annotated[int | None, typer.Option(help="Time limit of each array task, minutes (default 60).")] = None,
    gpus_per_task: Annotated[int | None, typer.Option(help="GPUs per array task (default 0).")] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="CPUs per array task.")] = None,
) -> None:
    """Measure FLOPs, parameters, latency and memory; write results.csv, .md and .json."""
    import os

    from bench.plan import Request
    from bench.plugins import load_plugins
    from bench.report import summary_markdown
    from bench.runner import run_plan
    from bench.shard import prepare_sweep
    from bench.timing import SamplePolicy

    plugins = load_plugins(plugin or [])
    try:
        policy = SamplePolicy(warmup=warmup, repeats=repeats, min_time=min_time, max_time=max_time)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    if count_workers is not None and count_workers < 1:
        raise UsageError("--count-workers must be at least 1")
    if executor is not None and (shard is not None or only_missing or gpus is not None):
        raise UsageError("--executor runs every shard itself; it takes neither --shard, --only-missing nor --gpus")
    if only_missing and out is None:
        raise UsageError("--only-missing needs --out, the run folder to complete")
    workers = count_workers or (min(4, os.cpu_count() or 1) if gpus else 1)
    request = Request(
        archs=arch,
        device=device,
        batches=batch,  # type: ignore[arg-type]
        frames=frames,  # type: ignore[arg-type]
        sizes=size,  # type: ignore[arg-type]
        inputs=input_,
        dtype=dtype,
        mode=mode,
        channels_last=channels_last,
        compiled=compile_,
        cuda_graphs=cuda_graphs,
        arch_kwargs=arch_kwargs or [],
        static=static,
        counter=counter,
        policy=policy,
        count_workers=workers,
        plugins=plugins,
    )
    out_dir = out or Path("reports/runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    console = _console()
    if executor is not None:
        cluster = {"executor": executor, "shards": shards, "partition": partition, "time_min": time_min,
                   "gpus_per_task": gpus_per_task, "cpus_per_task": cpus_per_task}  # fmt: skip
        rows, paths = _profile_on_cluster(request, cluster, out_dir, timeout, plugins, console)
    else:
        sweep = prepare_sweep(request, shard=shard, only_missing_in=out_dir if only_missing else None, gpus=gpus)
        with _progress(console, sweep.plan.n_rows) as on_row:
            result = run_plan(
                sweep.plan,
                out_dir,
                timeout=timeout,
                plugins=plugins,
                on_row=on_row,
                markdown=summary_markdown,
                command=_command_line(),
                slots=sweep.slots,
                previous=sweep.previous,
                extra_env=sweep.environment,
            )
        rows, paths = result.rows, result.paths
        if only_missing:
            console.print(f"kept {len(sweep.previous)} rows of the folder; measured {sweep.plan.n_rows}")
    _print_results(console, rows, paths)
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        console.print(f"{len(failed)} of {len(rows)} rows did not finish ok")
        if fail_on_error:
            raise typer.Exit(code=1)


def _profile_on_cluster(
    request: Any, cluster: dict[str, Any], out_dir: Path, timeout: float, plugins: list[str], console: Any
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """``--executor``: submit one array task per shard with a progress bar, then report and write the merge."""
    from bench.cluster import load_cluster_options, profile_on_cluster
    from bench.config import default_config
    from bench.merge import write_merged
    from bench.report import summary_markdown

    options = load_cluster_options(default_config(None), **cluster)
    with _bar(console, disable=not console.is_terminal) as bar:
        task = bar.add_task(f"{options.shards} {options.executor} tasks", total=options.shards)
        merged, failures, added = profile_on_cluster(
            request, options, out_dir, timeout=timeout, plugins=plugins,
            on_progress=lambda done, _: bar.update(task, completed=done),
        )  # fmt: skip
    for index, why in failures.items():
        console.print(f"shard {index}/{options.shards} failed: {why}")
    if failures:
        console.print(f"{added} unfinished configurations of failed tasks recorded as error/timeout rows")
    _print_merge_notes(console, merged)
    return merged.rows, write_merged(merged, out_dir, summary_markdown)


def _print_results(console: Any, rows: list[dict[str, Any]], paths: dict[str, Path]) -> None:
    from bench.report import summary_table

    console.print(summary_table(rows))
    for path in paths.values():
        console.print(f"wrote {path}")


def _print_merge_notes(console: Any, merged: Any) -> None:
    for what, items in (("missing jobs (no rows; re-run with --only-missing)", merged.missing),
                        ("configurations held twice (the first kept)", merged.duplicated),
                        ("jobs with error or timeout rows (re-run with --only-missing)", merged.failed)):  # fmt: skip
        if items:
            console.print(f"{len(items)} {what}: {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}")


@app.command("merge")
@_user_errors
def merge_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, e.g. the outputs of --shard 1/2 and 2/2.")],
    out: Annotated[Path, typer.Option(help="Folder for the merged results.")],
    allow_mixed: Annotated[
        bool, typer.Option("--allow-mixed", help="Merge runs measured on different devices or versions.")
    ] = False,
) -> None:
    """Combine shard outputs into one results set; exit 1 if jobs are missing or held twice."""
    from bench.merge import merge_runs, write_merged
    from bench.report import summary_markdown

    merged = merge_runs(runs, allow_mixed=allow_mixed)
    console = _console()
    _print_results(console, merged.rows, write_merged(merged, out, summary_markdown))
    _print_merge_notes(console, merged)
    if merged.missing or merged.duplicated:
        raise typer.Exit(code=1)


def _bar(console: Any, **kwargs: Any) -> Any:
    """The rich progress bar every command uses: description, bar, done/total, elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
        **kwargs,
    )  # fmt: skip


@contextlib.contextmanager
def _progress(console: Any, total: int) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A rich progress bar on a terminal; one plain line per row otherwise."""
    from bench.report import row_line

    if not console.is_terminal:
        yield lambda row: typer.echo(row_line(row))
        return
    with _bar(console) as bar:
        task = bar.add_task("profiling", total=total)

        def on_row(row: dict[str, Any]) -> None:
            bar.update(task, advance=1, description=f"{row['arch']} {row['mode']} b{row['batch']}")

        yield on_row


@app.command("inspect")
@_user_errors
def inspect_cmd(
    name: Annotated[str, typer.Argument(help="Architecture name.")],
    frames: Annotated[int | None, typer.Option(help="Frames (default: paper input).")] = None,
    size: Annotated[int | None, typer.Option(help="Height = width (default: paper input).")] = None,
    depth: Annotated[int, typer.Option(help="Deepest module level shown (root = 0).")] = 2,
    arch_kwargs: Annotated[
        list[str] | None, typer.Option("--arch-kwargs", help="key=value passed to the builder; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Per-module parameters, MACs and activations of one architecture (counted on the meta device)."""
    from dataclasses import asdict

    from bench.counting import module_breakdown
    from bench.plan import Request, make_plan
    from bench.report import inspect_table

    plan = make_plan(
        Request(
            archs=[name],
            device="cpu",
            frames=None if frames is None else [frames],
            sizes=None if size is None else [size],
            arch_kwargs=arch_kwargs or [],
            static=True,
        )
    )
    config = plan.jobs[0].configs[0]
    if depth < 0:
        raise UsageError("--depth must be >= 0")
    rows = module_breakdown(config.arch, config.input_shape, max_depth=depth, **dict(config.arch_kwargs))
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        _console().print(
            inspect_table(rows, title=f"{config.arch} at 3x{config.frames}x{config.height}x{config.width}")
        )


@app.command("compare")
@_user_errors
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="Baseline run: a results.json or its folder.")],
    head: Annotated[Path, typer.Argument(help="Run to judge: a results.json or its folder.")],
    latency_tol: Annotated[str | None, typer.Option(help="Accepted latency increase, e.g. 10% (default 10%).")] = None,
    memory_tol: Annotated[str | None, typer.Option(help="Accepted peak-memory increase (default 5%).")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level of the latency test (default 0.05).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file with [tool.vbench.compare] (default: ./pyproject.toml if present).")
    ] = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the verdict to this Markdown file.")] = None,
) -> None:
    """Regression verdicts of HEAD against BASE; exit 1 on a regression, 2 on bad input."""
    import os

    from bench.compare import compare_rows, load_compare_config, refresh_command
    from bench.config import default_config
    from bench.report import compare_markdown
    from bench.results import atomic_write_text, load_results

    tolerances = load_compare_config(default_config(config), latency_tol, memory_tol, alpha)
    base_rows, base_env = load_results(base)
    head_rows, head_env = load_results(head)
    comparison = compare_rows(base_rows, head_rows, tolerances, base_env, head_env)
    text = compare_markdown(comparison, str(base), str(head), refresh_command(base_env, base))
    typer.echo(text, nl=False)
    if markdown is not None:
        atomic_write_text(markdown, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as f:
            f.write(text + "\n")
    if comparison.regressions:
        raise typer.Exit(code=1)


@app.command("report")
@_user_errors
def report_cmd(
    results: Annotated[list[Path], typer.Argument(help="Saved runs: folders or their results.json.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md, the CSV tables and the figures.")] = Path(
        "reports/report"
    ),
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
) -> None:
    """Trade-off (cost beside published accuracy, Pareto), ours vs the papers, and scaling, from saved runs."""
    from bench.tradeoff import write_report

    text, paths, notes = write_report(
        results, out, accuracy_file=accuracy, published=published, plots=plots, variants=variants
    )
    typer.echo(text, nl=False)
    for note in notes:
        typer.echo(note, err=True)
    for path in paths:
        typer.echo(f"wrote {path}")


def _command_line() -> list[str]:
    """The command as the user typed it, when this process is the ``vbench`` command (not a test runner)."""
    if Path(sys.argv[0]).name in ("vbench", "cli.py", "__main__.py"):
        return ["vbench", *sys.argv[1:]]
    return []


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
