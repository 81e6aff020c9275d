"""The ``vbench`` command line: parse, call the library, report, exit code.

Known user mistakes raise :class:`bench.errors.UsageError` (or the registry's
``UnknownArchError``) and become one line on stderr with exit code 2. Any
other exception is a bug of vbench's: one line, the traceback saved to a file
it names, and exit code 3 (never 1, which means a regression). A closed
standard output (``vbench ... | head``) stops the printing, never the work.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
import tempfile
import traceback
import typing
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from bench.console import arch_kwargs_option, plugin_option
from bench.console import make_console as _console
from bench.console import progress_bar as _bar
from bench.console import recorded_options as _recorded_options
from bench.console import say as _say
from bench.console import stdout_closed as _stdout_closed
from bench.errors import ExitCode, UsageError, first_line
from bench.results.records import (
    COUNTERS,
    DEVICES,
    DTYPES,
    EXECUTORS,
    INPUTS,
    MODES,
    Request,
    Row,
    check_run_options,
    finite_seconds,
)
from bench.run.lifetime import Interrupted

try:
    from typer._click import ClickException  # typer vendors click
except ImportError:  # pragma: no cover - a typer that uses click itself
    from click import ClickException  # type: ignore[no-redef,assignment,unused-ignore]


class _OneLineErrors(TyperGroup):
    """The parser's own mistakes (a missing or unknown option, a value of the wrong type) on one line too,
    naming the help to read, with exit code 2: no usage block, no box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = functools.partial(
            super().main, args, prog_name, complete_var, False, windows_expand_args=windows_expand_args, **extra
        )
        if not standalone_mode:
            return run()
        try:
            code = run()
        except ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `vbench` alone: the help is printed already
                sys.exit(e.exit_code)
            ctx = getattr(e, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"vbench: error: {_one_line(e.format_message())}{where}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("vbench: aborted", err=True)
            sys.exit(ExitCode.FAILED)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


app = typer.Typer(
    name="vbench",
    cls=_OneLineErrors,
    help="Benchmark and profile video action-recognition backbones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    typer.echo(f"vbench: error: {message}", err=True)
    return typer.Exit(code=code)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _crash_report(e: BaseException) -> typer.Exit:
    """An unexpected error: one line, the traceback in a file, exit code 3."""
    fd, path = tempfile.mkstemp(prefix="vbench-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"vbench {' '.join(sys.argv[1:])}\n\n")
        traceback.print_exception(e, file=f)
    return _fail(
        f"internal error: {type(e).__name__}: {_one_line(str(e))[:200]} (traceback in {path})", code=ExitCode.INTERNAL
    )


PATH_METAVARS = ("DIR", "FILE", "PATH", "MODULE|FILE")
"""What the help calls a parameter that takes a path though its type is ``str`` (``--out`` refuses ``""``,
``--weights`` also takes ``torchvision``). A parameter of type ``Path`` is a path too."""


def path_parameters(fn: Callable[..., Any]) -> dict[str, str]:
    """A command's parameters that take paths (by their type, or the metavar they declare), each with the
    name the user knows it by (``--out``, ``RESULTS``)."""
    found = {}
    for name, hint in typing.get_type_hints(fn, include_extras=True).items():
        if typing.get_origin(hint) is not Annotated:
            continue
        base, *meta = typing.get_args(hint)
        info = next((m for m in meta if isinstance(m, typer.models.ParameterInfo)), None)
        if info is None:
            continue
        if Path in _types(base) or info.metavar in PATH_METAVARS:
            if isinstance(info, typer.models.ArgumentInfo):
                found[name] = name.upper()
            else:
                decls = [d for d in info.param_decls or () if d.startswith("--")]
                found[name] = decls[0] if decls else "--" + name.replace("_", "-")
    return found


def _types(hint: Any) -> set[Any]:
    """``list[Path] | None`` -> ``{list, Path, NoneType}``: the types a hint is made of."""
    args = typing.get_args(hint)
    return {hint}.union(*(_types(a) for a in args)) if args else {hint}


def _check_paths(paths: dict[str, str], kwargs: dict[str, Any]) -> None:
    """Every path the user gave, checked in one place (:func:`bench.results.validate.check_path`) before any work."""
    from bench.results.validate import check_path

    for name, what in paths.items():
        value = kwargs.get(name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                check_path(v, what)


def _user_errors(fn: F) -> F:
    """Known user mistakes: one line and exit 2; an interruption: its exit code; a bug: exit 3.

    Every path parameter (:func:`path_parameters`) is checked before the command runs.
    """
    paths = path_parameters(fn)

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _check_paths(paths, kwargs)
            return fn(*args, **kwargs)
        except UsageError as e:
            raise _fail(_one_line(str(e))) from None
        except typer.Exit:
            raise
        except BrokenPipeError:
            _stdout_closed()
            return None
        except Interrupted as e:
            raise typer.Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(code=ExitCode.INTERRUPTED) from None
        except Exception as e:
            if _unknown_arch(e):
                raise _fail(_one_line(str(e))) from None
            raise _crash_report(e) from None

    return wrapper  # type: ignore[return-value]


def _unknown_arch(e: Exception) -> bool:
    """The registry's error for an unknown name; the registry (and torch) is not imported to ask."""
    registry = sys.modules.get("archs")
    return registry is not None and isinstance(e, registry.UnknownArchError)


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
    _std_streams()


@app.command("list")
@_user_errors
def list_cmd(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'r*_18'.")] = "*",
    family: Annotated[str | None, typer.Option(help="Only this family (pattern).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per architecture.")] = False,
    plugin: Annotated[list[str] | None, plugin_option()] = None,
) -> None:
    """List registered architectures with their inputs, parameters and paper."""
    import archs
    from bench.measure.counting import build_meta, param_count
    from bench.report.tables import arch_table
    from bench.run.plugins import load_plugins

    load_plugins(plugin or [])
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
        console = _console()
        console.print(arch_table(rows, width=console.width))


_CLUSTER_OPTIONS = ("--executor", "--shards", "--partition", "--time-min", "--gpus-per-task", "--cpus-per-task")

NOT_RESUMED: dict[str, str] = {
    "--out": "the command names the run's folder itself",
    "--only-missing": "the command adds it: it finishes the run",
    "--overwrite": "it would replace the run being finished",
}
"""The options of ``vbench profile`` that the command finishing a run does not repeat, each with why; with
``local``, the cluster options too (the rest is finished in this process). Every other recorded option is."""


def profile_options() -> dict[str, bool]:
    """Every option ``vbench profile`` declares (its longest name) and whether it is a flag, read from the
    command itself, so that the commands rebuilt from a run's options cannot miss one added later."""
    command = typer.main.get_command(app).commands["profile"]  # type: ignore[attr-defined]
    return {
        max(p.opts, key=len): bool(getattr(p, "is_flag", False))
        for p in command.params
        if getattr(p, "param_type_name", "") == "option"
    }


def profile_command(options: dict[str, Any], out_dir: Path, *extra: str, local: bool = False) -> str:
    """``vbench profile`` with the recorded options, ``extra`` flags and ``--out``, shell-quoted.

    Every recorded option is repeated but those in :data:`NOT_RESUMED` (and, with ``local``, the cluster options:
    ``--only-missing`` finishes a run in this process).
    """
    argv = ["vbench", "profile"]
    for name, value in options.items():
        if name in NOT_RESUMED or (local and name in _CLUSTER_OPTIONS):
            continue
        argv += [name] if value is True else [x for v in value for x in (name, v)]
    return shlex.join([*argv, *extra, "--out", str(out_dir)])


def _choices(values: tuple[str, ...]) -> str:
    """``"cpu, cuda, mps or auto"``: the choices of an option, for its help."""
    return f"{', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else values[0]


_GRID, _TIMING, _OUTPUT, _SWEEPS, _CLUSTER, _MODELS = "Grid", "Timing", "Output", "Sweeps", "Cluster", "Models"
"""The help panels of ``vbench profile``."""


@app.command("profile")
@_user_errors
def profile_cmd(
    ctx: typer.Context,
    arch: Annotated[
        list[str],
        typer.Option(
            "--arch", "-a", help="'all', a name or a pattern such as 'r*_18'; repeatable.", rich_help_panel=_GRID
        ),
    ],
    device: Annotated[str, typer.Option(help=f"{_choices(DEVICES)}.", rich_help_panel=_GRID)] = "auto",
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.", rich_help_panel=_GRID)] = "1",
    frames: Annotated[
        str | None,
        typer.Option(help="Frames, comma-separated (default: each paper input).", rich_help_panel=_GRID),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="Height = width, comma-separated (default: paper input).", rich_help_panel=_GRID),
    ] = None,
    input_: Annotated[
        str,
        typer.Option(
            "--input",
            help=f"Without --frames/--size: {_choices(INPUTS)} (paper: the default input; min: the smallest valid), "
            "or both, comma-separated.",
            rich_help_panel=_GRID,
        ),
    ] = "paper",
    dtype: Annotated[
        str,
        typer.Option(
            help=f"{_choices(DTYPES)} (the half types through autocast), comma-separated.", rich_help_panel=_GRID
        ),
    ] = "fp32",
    mode: Annotated[
        str,
        typer.Option(help=f"{_choices(MODES)} (train: forward+backward+step).", rich_help_panel=_GRID),
    ] = "infer",
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="channels_last_3d memory format.", rich_help_panel=_GRID)
    ] = False,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model.", rich_help_panel=_GRID)
    ] = False,
    cuda_graphs: Annotated[
        bool, typer.Option("--cuda-graphs", help="Replay inference as a CUDA graph.", rich_help_panel=_GRID)
    ] = False,
    static: Annotated[
        bool, typer.Option("--static", help="Count only (params, MACs); no timing.", rich_help_panel=_GRID)
    ] = False,
    arch_kwargs: Annotated[list[str] | None, arch_kwargs_option(rich_help_panel=_GRID)] = None,
    warmup: Annotated[int, typer.Option(help="Untimed iterations first.", rich_help_panel=_TIMING)] = 3,
    repeats: Annotated[int, typer.Option(help="Timed samples to take (at least).", rich_help_panel=_TIMING)] = 10,
    min_time: Annotated[
        float, typer.Option(help="Keep sampling at least this many seconds.", rich_help_panel=_TIMING)
    ] = 0.0,
    max_time: Annotated[
        float, typer.Option(help="Stop sampling after this many seconds.", rich_help_panel=_TIMING)
    ] = 60.0,
    timeout: Annotated[
        float,
        typer.Option(help="Kill a worker that produces no row for this many seconds.", rich_help_panel=_TIMING),
    ] = 900.0,
    rounds: Annotated[
        int,
        typer.Option(
            help="Measure the plan N times, architectures interleaved; latency: median of the quiet rounds' medians.",
            rich_help_panel=_TIMING,
        ),
    ] = 1,
    settle: Annotated[
        float,
        typer.Option(
            help="Wait at most this many seconds for a quiet machine before each round.", rich_help_panel=_TIMING
        ),
    ] = 0.0,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Skip configurations estimated to need more, e.g. 8GiB (default: what the device has free).",
            rich_help_panel=_TIMING,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(help="Output folder (default reports/runs/<timestamp>).", metavar="DIR", rich_help_panel=_OUTPUT),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace the run that --out holds (default: refuse).", rich_help_panel=_OUTPUT
        ),
    ] = False,
    plugin: Annotated[list[str] | None, plugin_option(rich_help_panel=_MODELS)] = None,
    counter: Annotated[
        str,
        typer.Option(
            help=f"MAC counter: {_choices(COUNTERS)} (torch: on the meta device; fvcore: traces on CPU).",
            rich_help_panel=_MODELS,
        ),
    ] = "torch",
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Write a Chrome/Perfetto trace of each timed configuration to DIR/traces/.",
            rich_help_panel=_OUTPUT,
        ),
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint the timed model loads (one architecture; any layout vbench evaluate reads).",
            metavar="FILE",
            rich_help_panel=_MODELS,
        ),
    ] = None,
    fail_on_error: Annotated[
        bool, typer.Option("--fail-on-error", help="Exit 1 if any row is not ok.", rich_help_panel=_OUTPUT)
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="Run shard I of N of the sweep, e.g. 2/4 (balanced by MACs).", rich_help_panel=_SWEEPS),
    ] = None,
    only_missing: Annotated[
        bool,
        typer.Option(
            "--only-missing",
            help="Keep the finished rows in --out; measure only what is missing.",
            rich_help_panel=_SWEEPS,
        ),
    ] = False,
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed",
            help="With --only-missing: keep rows measured in another environment.",
            rich_help_panel=_SWEEPS,
        ),
    ] = False,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPUs to use, e.g. 0,1: one worker per GPU at a time.", rich_help_panel=_SWEEPS),
    ] = None,
    count_workers: Annotated[
        int | None,
        typer.Option(
            help="CPU processes that count in parallel (default 1; with --gpus, up to 4).", rich_help_panel=_SWEEPS
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help=f"Submit the shards as a job array: {_choices(EXECUTORS)} (local: the same path, on this machine).",
            rich_help_panel=_CLUSTER,
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(help="Array tasks for --executor (default 2, or the config).", rich_help_panel=_CLUSTER),
    ] = None,
    partition: Annotated[
        str | None, typer.Option(help="SLURM partition for --executor slurm.", rich_help_panel=_CLUSTER)
    ] = None,
    time_min: Annotated[
        int | None,
        typer.Option(help="Time limit of each array task, minutes (default 60).", rich_help_panel=_CLUSTER),
    ] = None,
    gpus_per_task: Annotated[
        int | None, typer.Option(help="GPUs per array task (default 0).", rich_help_panel=_CLUSTER)
    ] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="CPUs per array task.", rich_help_panel=_CLUSTER)] = None,
) -> None:
    """Measure FLOPs, parameters, latency and memory; write results.csv, .md and .json."""
    from bench.report.tables import summary_markdown
    from bench.run.lifetime import signals_interrupt
    from bench.run.plugins import load_plugins
    from bench.run.rundir import check_out
    from bench.run.runner import run_plan
    from bench.run.shard import prepare_sweep

    cluster = {"shards": shards, "partition": partition, "time_min": time_min, "gpus_per_task": gpus_per_task,
               "cpus_per_task": cpus_per_task}  # fmt: skip
    run = check_run_options(
        warmup=warmup, repeats=repeats, min_time=min_time, max_time=max_time, timeout=timeout, max_memory=max_memory,
        count_workers=count_workers, executor=executor, cluster=cluster, shard=shard, gpus=gpus,
        out_given=out is not None, only_missing=only_missing, overwrite=overwrite, allow_mixed=allow_mixed,
    )  # fmt: skip
    if rounds < 1:
        raise UsageError(f"--rounds must be 1 or more; got {rounds}")
    finite_seconds(settle, "--settle")
    if executor is not None and (rounds > 1 or settle > 0):
        raise UsageError("--rounds and --settle run on this machine; they do not go with --executor")
    with signals_interrupt():  # from here, Ctrl-C is Interrupted: never taken for a plugin's or a model's
        plugins = load_plugins(plugin or [])
        workers = count_workers or (min(4, os.cpu_count() or 1) if gpus else 1)
        request = Request(
            archs=arch,
            device=device,
            batches=batch,
            frames=frames,
            sizes=size,
            inputs=input_,
            dtype=dtype,
            mode=mode,
            channels_last=channels_last,
            compiled=compile_,
            cuda_graphs=cuda_graphs,
            arch_kwargs=arch_kwargs or [],
            static=static,
            counter=counter,
            trace=trace,
            weights=weights,
            policy=run.policy,
            count_workers=workers,
            plugins=plugins,
        )
        options = _recorded_options(ctx)
        if weights is not None and "--weights" in options:  # a command rebuilt from it may run elsewhere
            options["--weights"] = [str(Path(weights).resolve())]
        out_dir = check_out(_folder(out), resume=only_missing, overwrite=overwrite) if out is not None else None
        console = _console()
        try:
            if executor is not None:
                out_dir = _claim(out_dir, only_missing, overwrite)
                rows, paths = _profile_on_cluster(
                    request, {"executor": executor, **cluster}, out_dir, run.timeout, plugins, console
                )
            else:
                sweep = prepare_sweep(
                    request,
                    shard=shard,
                    only_missing_in=out_dir if only_missing else None,
                    gpus=gpus,
                    allow_mixed=allow_mixed,
                )
                out_dir = _claim(out_dir, only_missing, overwrite)  # the plan is checked: now the folder
                with _progress(console, sweep.plan.n_rows) as on_row:
                    result = run_plan(
                        sweep.plan,
                        out_dir,
                        timeout=run.timeout,
                        plugins=plugins,
                        on_row=on_row,
                        markdown=summary_markdown,
                        command=_command_line(),
                        slots=sweep.slots,
                        previous=sweep.previous,
                        extra_env={**sweep.environment, "options": options},
                        max_memory=run.max_memory,
                        rounds=rounds,
                        settle_s=settle,
                    )
                rows, paths = result.rows, result.paths
                if only_missing:
                    _say(console, f"kept {len(sweep.previous)} rows of the folder; measured {sweep.plan.n_rows}")
        except (Interrupted, KeyboardInterrupt) as e:
            kept = getattr(e, "kept", None)
            if kept is not None and out_dir is not None:
                finish = profile_command(options, out_dir, "--only-missing", local=True)
                if not finish.isprintable():  # a value with a line break: no command to paste on one line
                    finish = "the same command with --only-missing"
                typer.echo(f"vbench: interrupted; kept {kept} rows in {_one_line(str(out_dir))}; finish with: {finish}",
                           err=True)  # fmt: skip
            raise
    _print_results(console, rows, paths)
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        _say(console, f"{len(failed)} of {len(rows)} rows did not finish ok")
        if fail_on_error:
            raise typer.Exit(code=ExitCode.FAILED)


def _claim(out_dir: Path | None, resume: bool, overwrite: bool) -> Path:
    """Create and lock the run folder (a new one under reports/runs/ without --out)."""
    from bench.run.rundir import claim, new_run_dir

    if out_dir is None:
        return claim(new_run_dir(), resume=True)  # a new folder: this only takes its lock
    return claim(out_dir, resume=resume, overwrite=overwrite)


def _folder(text: str) -> Path:
    """An ``--out`` value as a path; ``""`` is refused (``Path("")`` would be the working directory)."""
    if not text.strip():
        raise UsageError("--out is empty; name a folder")
    return Path(text)


def _profile_on_cluster(
    request: Any, cluster: dict[str, Any], out_dir: Path, timeout: float, plugins: list[Any], console: Any
) -> tuple[list[Row], dict[str, Path]]:
    """``--executor``: submit one array task per shard with a progress bar, then report and write the merge."""
    from bench.report.tables import summary_markdown
    from bench.results.config import default_config
    from bench.results.merge import write_merged
    from bench.run.cluster import load_cluster_options, profile_on_cluster

    options = load_cluster_options(default_config(None), **cluster)
    with _bar(console, disable=not console.is_terminal) as bar:
        task = bar.add_task(f"{options.shards} {options.executor} tasks", total=options.shards)
        merged, failures, added = profile_on_cluster(
            request, options, out_dir, timeout=timeout, plugins=plugins,
            on_progress=lambda done, n: bar.update(task, completed=done, total=n),
        )  # fmt: skip
    for index, why in failures.items():
        _say(console, f"shard {index} failed: {why}")
    if failures:
        _say(console, f"{added} unfinished configurations of failed tasks recorded as error/timeout rows")
    _print_merge_notes(console, merged)
    return merged.rows, write_merged(merged, out_dir, summary_markdown)


def _print_results(console: Any, rows: list[Row], paths: dict[str, Path]) -> None:
    from bench.report.tables import contended_footnote, summary_table

    try:
        console.print(summary_table(rows, width=console.width))
        note = contended_footnote(rows)
        if note:
            _say(console, note)
        for path in paths.values():
            _say(console, f"wrote {path}")
    except BrokenPipeError:
        _stdout_closed()


def _print_merge_notes(console: Any, merged: Any) -> None:
    for what, items in (("missing jobs (no rows; re-run with --only-missing)", merged.missing),
                        ("configurations held twice (the first kept)", merged.duplicated),
                        ("jobs with error or timeout rows (re-run with --only-missing)", merged.failed)):  # fmt: skip
        if items:
            _say(console, f"{len(items)} {what}: {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}")
    for warning in merged.warnings:
        _say(console, f"warning: {warning}")


@app.command("merge")
@_user_errors
def merge_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, e.g. the outputs of --shard 1/2 and 2/2.")],
    out: Annotated[str, typer.Option(help="Folder for the merged results.", metavar="DIR")],
    allow_mixed: Annotated[
        bool, typer.Option("--allow-mixed", help="Merge runs measured on different devices or versions.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the run that --out holds (default: refuse).")
    ] = False,
) -> None:
    """Combine shard outputs into one results set; exit 1 if jobs are missing or held twice."""
    from bench.report.tables import summary_markdown
    from bench.results.merge import merge_runs, write_merged
    from bench.run.rundir import check_out, claim

    out_dir = check_out(_folder(out), overwrite=overwrite)
    if any(Path(r).resolve() == out_dir.resolve() for r in runs):
        raise UsageError(f"--out '{out}' is one of the runs being merged; choose another folder")
    merged = merge_runs(runs, allow_mixed=allow_mixed)
    claim(out_dir, overwrite=overwrite)
    console = _console()
    _print_results(console, merged.rows, write_merged(merged, out_dir, summary_markdown))
    _print_merge_notes(console, merged)
    if merged.missing or merged.duplicated:
        raise typer.Exit(code=ExitCode.FAILED)


@contextlib.contextmanager
def _progress(console: Any, total: int) -> Iterator[Callable[[Row], None]]:
    """A rich progress bar on a terminal; one plain line per row otherwise."""
    from bench.report.tables import row_line

    if not console.is_terminal:

        def log(row: Row) -> None:
            try:
                typer.echo(row_line(row))
            except BrokenPipeError:
                _stdout_closed()  # `| head` read enough: the run goes on, quietly

        yield log
        return
    with _bar(console) as bar:
        task = bar.add_task("profiling", total=total)

        def on_row(row: Row) -> None:
            from rich.markup import escape

            bar.update(task, advance=1, description=escape(f"{row['arch']} {row['mode']} b{row['batch']}"))

        yield on_row


@app.command("inspect")
@_user_errors
def inspect_cmd(
    name: Annotated[str, typer.Argument(help="Architecture name or pattern (every match is shown).")],
    frames: Annotated[int | None, typer.Option(help="Frames (default: paper input).")] = None,
    size: Annotated[int | None, typer.Option(help="Height = width (default: paper input).")] = None,
    depth: Annotated[
        int | None, typer.Option(help="Deepest module level shown (root = 0; default 2, or the model's depth).")
    ] = None,
    arch_kwargs: Annotated[list[str] | None, arch_kwargs_option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
    plugin: Annotated[list[str] | None, plugin_option()] = None,
    time_: Annotated[
        bool,
        typer.Option("--time", help="Measure where the time goes: per-module latency, by kind, against the roofline."),
    ] = False,
    device: Annotated[str, typer.Option(help=f"With --time: {_choices(DEVICES)}.")] = "cpu",
    mode: Annotated[str, typer.Option(help="With --time: 'infer' or 'train' (forward + backward + step).")] = "infer",
    dtype: Annotated[str, typer.Option(help=f"With --time: {_choices(DTYPES)}.")] = "fp32",
    batch: Annotated[int, typer.Option(help="With --time: clips per iteration.")] = 1,
    iterations: Annotated[int, typer.Option(help="With --time: profiled iterations (averaged).")] = 5,
    trace: Annotated[
        Path | None, typer.Option(help="With --time: write the profiled iterations as a Chrome/Perfetto trace.")
    ] = None,
) -> None:
    """Per-module parameters, MACs and activations (counted on the meta device).

    With --time, each module's measured time (forward and backward in train
    mode), its share, its GMAC/s and its roofline class, time by kind of work
    (3D, spatial, temporal, pointwise convolutions, norm, activation, pooling,
    gating), and the checks: the depth-1 lines against the uninstrumented
    latency, and against torch.profiler's own totals.

    With a pattern, every matching architecture is shown (with --json: an object
    mapping each name to its rows).
    """
    from dataclasses import asdict

    from bench.measure.counting import module_breakdown
    from bench.report.tables import inspect_table
    from bench.run.plan import Request, make_plan
    from bench.run.plugins import load_plugins

    if depth is not None and depth < 0:
        raise UsageError("--depth must be >= 0")
    if time_:
        _check_time_options(mode, dtype, batch, iterations, trace)
    elif (device, mode, dtype, batch, iterations, trace) != ("cpu", "infer", "fp32", 1, 5, None):
        raise UsageError("--device, --mode, --dtype, --batch, --iterations and --trace need --time")
    plugins = load_plugins(plugin or [])
    plan = make_plan(
        Request(
            archs=[name],
            device=device if time_ else "cpu",
            batches=[batch],
            frames=None if frames is None else [frames],
            sizes=None if size is None else [size],
            dtype=dtype,
            mode=mode,
            arch_kwargs=arch_kwargs or [],
            static=not time_,
            plugins=plugins,
        )
    )
    if time_:
        _inspect_time(plan, name, depth, as_json, iterations, trace)
        return
    found = {
        job.arch: (
            config,
            module_breakdown(
                job.arch, config.input_shape, max_depth=2 if depth is None else depth, **dict(config.arch_kwargs)
            ),
        )
        for job, config in _inspectable(plan)
    }
    if as_json:
        if len(found) == 1 and not any(ch in name for ch in "*?["):
            typer.echo(json.dumps([asdict(r) for r in next(iter(found.values()))[1]], indent=1))
        else:
            typer.echo(json.dumps({arch: [asdict(r) for r in rows] for arch, (_, rows) in found.items()}, indent=1))
        return
    console = _console()
    for arch, (config, rows) in found.items():
        console.print(inspect_table(rows, title=f"{arch} at 3x{config.frames}x{config.height}x{config.width}"))


@app.command("roofline")
@_user_errors
def roofline_cmd(
    device: Annotated[str, typer.Option(help=f"{_choices(DEVICES)}.")] = "auto",
    dtype: Annotated[str, typer.Option(help=f"{_choices(DTYPES)}, comma-separated.")] = "fp32",
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again instead of reading the cache.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The device's measured roofline: peak TFLOP/s (matmul, conv3d), copy bandwidth, ridge point (cached)."""
    from bench.measure.roofline import cache_path, is_cached, roofline_for
    from bench.results.records import choice
    from bench.run.plan import resolve_device

    chosen = resolve_device(device)
    dtypes = [choice(d.strip(), DTYPES, "dtype") for d in dtype.split(",")]
    try:
        found = [roofline_for(chosen, d, refresh=refresh).to_dict() for d in dtypes]
    except RuntimeError as e:  # a pair without a roofline (fp16 on a CPU), or a probe that measured nonsense
        raise UsageError(_one_line(str(e))) from None
    if as_json:
        typer.echo(json.dumps(found, indent=1))
        return
    for r in found:
        typer.echo(
            f"{r['device']} {r['dtype']} ({r['device_name']}, torch {r['torch_version']}, {r['threads']} threads): "
            f"peak {r['peak_tflops']:.3f} TFLOP/s (matmul {r['matmul_tflops']:.3f}, conv3d {r['conv3d_tflops']:.3f}), "
            f"bandwidth {r['bandwidth_gbs']:.1f} GB/s, ridge {r['ridge_flop_per_byte']:.1f} FLOP/byte, "
            f"measured {r['measured_at']}"
        )
    if all(is_cached(r) for r in found):
        typer.echo(f"cache: {cache_path()}")
    else:
        typer.echo(f"not cached: {cache_path()} cannot be written (measured again next time)")


def _check_time_options(mode: str, dtype: str, batch: int, iterations: int, trace: Path | None) -> None:
    from bench.run.rundir import probe_writable

    if mode not in ("infer", "train"):
        raise UsageError(f"--mode must be 'infer' or 'train' with --time, not {mode!r}")
    if "," in dtype:
        raise UsageError(f"--dtype takes one dtype with --time, not {dtype!r}")
    if batch < 1 or iterations < 1:
        raise UsageError("--batch and --iterations must be >= 1")
    if trace is not None:
        if trace.is_dir():
            raise UsageError(f"--trace {trace}: is a folder; give a file name such as trace.json")
        if trace.exists() and not trace.is_file():
            raise UsageError(f"--trace {trace}: is not a regular file")
        try:  # torch's profiler takes the name as text: bytes that are not UTF-8 would fail after the timing
            str(trace).encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"--trace {trace!s:.80}: the name is not valid UTF-8; choose another") from None
        probe_writable(trace.parent, "--trace's folder")  # before any measuring: a trace written nowhere is lost work
        existed = trace.exists()
        try:
            trace.parent.mkdir(parents=True, exist_ok=True)
            with trace.open("ab"):
                pass
        except OSError as e:
            raise UsageError(f"--trace {trace}: cannot be written: {e.strerror or e}") from None
        if not existed:
            trace.unlink()


def _inspectable(plan: Any) -> Iterator[tuple[Any, Any]]:
    """Each planned architecture with its one configuration; one that cannot be built at the input is the
    error (for a single name) or a warning (for a pattern, whose other matches go on)."""
    for job in plan.jobs:
        config = job.configs[0]
        if job.error_for(config):
            if len(plan.jobs) == 1:
                raise UsageError(f"{job.arch}: {job.error_for(config)}")
            typer.echo(f"vbench: warning: {job.arch}: {_one_line(job.error_for(config))}", err=True)
            continue
        yield job, config


def _inspect_time(plan: Any, name: str, depth: int | None, as_json: bool, iterations: int, trace: Path | None) -> None:
    """``inspect --time``: measure each planned architecture's breakdown, print tables or JSON."""
    from bench.measure.breakdown import time_breakdown
    from bench.measure.roofline import roofline_for
    from bench.report.tables import breakdown_checks, fmt_input, kind_table, time_table

    todo = list(_inspectable(plan))
    if trace is not None and len(todo) > 1:
        raise UsageError("--trace writes one file: give one architecture, not a pattern")
    depths = {}
    for job, _ in todo:  # every depth is checked before anything is measured
        deepest = max(n.count(".") + 1 for n in _module_names(job))
        if depth is not None and depth > deepest:
            raise UsageError(f"--depth {depth}: {job.arch}'s modules are at most {deepest} deep")
        depths[job.arch] = min(2, deepest) if depth is None else depth
    found = {}
    for job, config in todo:
        try:
            roofline = roofline_for(config.device, config.dtype)
        except RuntimeError as e:
            typer.echo(f"vbench: warning: {_one_line(str(e))}; no roofline class", err=True)
            roofline = None
        expected = (config.batch, *job.counts_for(config).output_shape[1:])
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what a model prints never mixes with the output
                found[job.arch] = time_breakdown(
                    config, iterations=iterations, trace=trace, roofline=roofline, expected_shape=expected
                )
        except (Exception, SystemExit) as e:  # the model's failure, not vbench's: one line, exit 1
            typer.echo(f"vbench: error: {job.arch}: the model failed: {type(e).__name__}: {first_line(e)}", err=True)
            raise typer.Exit(code=ExitCode.FAILED) from None
    if as_json:
        out = {arch: b.to_dict(max_depth=depths[arch]) for arch, b in found.items()}
        single = len(out) == 1 and not any(ch in name for ch in "*?[")
        typer.echo(json.dumps(next(iter(out.values())) if single else out, indent=1))
        return
    console = _console()
    for arch, b in found.items():
        where = f"{arch}, {b.mode}, batch {b.input_shape[0]} x {fmt_input(b.input_shape[1:])}, {b.device} {b.dtype}"
        console.print(time_table(b, f"{where}: time by module", depths[arch]))
        console.print(kind_table(b, f"{arch}: time by kind of work"))
        for line in breakdown_checks(b):
            console.print(line, markup=False, highlight=False)
    if trace is not None:
        _say(console, f"wrote {trace}")


def _module_names(job: Any) -> list[str]:
    from bench.measure.counting import build_meta

    return [n for n, _ in build_meta(job.arch, **dict(job.configs[0].arch_kwargs)).named_modules() if n] or ["x"]


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
    """Regression verdicts of HEAD against BASE; exit 1 on a regression, 2 on bad input, 4 when a row was timed on a
    shared machine (contended) and nothing regressed."""
    from bench.report.tables import compare_markdown
    from bench.results.compare import compare_rows, load_compare_config, refresh_command
    from bench.results.config import default_config
    from bench.results.store import atomic_write_text, load_results

    if markdown is not None:
        from bench.run.rundir import probe_writable

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
            typer.echo(_one_line(f"vbench: warning: cannot append to GITHUB_STEP_SUMMARY '{summary}': {e.strerror}"),
                       err=True)  # fmt: skip
    if comparison.exit_code:
        raise typer.Exit(code=comparison.exit_code)


@app.command("report")
@_user_errors
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
    from bench.report.tradeoff import write_report
    from bench.run.rundir import new_run_dir, probe_writable

    made = out is None
    out_dir = probe_writable(_folder(out), "--out") if out is not None else new_run_dir(Path("reports/runs"), "report-")
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


@app.command("history")
@_user_errors
def history_cmd(
    results: Annotated[list[Path], typer.Argument(help="Saved runs (folders or their results.json), any order.")],
    html: Annotated[bool, typer.Option("--html", help="Write history.html, an interactive page (plotly).")] = False,
    out: Annotated[
        str | None, typer.Option(help="Folder for history.html (default reports/runs/history-<time>).", metavar="DIR")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file with [tool.vbench.compare] (default: ./pyproject.toml if present).")
    ] = None,
) -> None:
    """Each configuration's params, GMACs, latency and memory across runs, oldest commit first, with the changes
    `vbench compare` would call regressions."""
    from bench.report.history import history_summary, write_history

    if html:
        from bench.report.html import require_plotly

        require_plotly()
    elif out is not None:
        raise UsageError("--out names the folder of history.html: add --html")
    history, path = write_history(results, _folder(out) if out is not None else None, html, config)
    with contextlib.suppress(BrokenPipeError):
        typer.echo(history_summary(history), nl=False)
        if path is not None:
            typer.echo(f"wrote {path}")


def _register_evaluate() -> None:
    from bench.evaluate_cmd import evaluate_cmd  # imports neither torch nor av

    app.command("evaluate")(_user_errors(evaluate_cmd))


_register_evaluate()


def _command_line() -> list[str]:
    """The command as the user typed it, when this process is the ``vbench`` command (not a test runner)."""
    if Path(sys.argv[0]).name in ("vbench", "cli.py", "__main__.py"):
        return ["vbench", *sys.argv[1:]]
    return []


def _std_streams() -> None:
    """Open /dev/null on any of fds 0-2 that is closed, so that no pipe or file of ours lands there; guard
    standard output, so that a closed pipe or a full disk behind it stops the printing, never the work."""
    from bench.console import guard_stdout

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    guard_stdout()


def main() -> None:  # pragma: no cover - console entry point
    """The ``vbench`` command: a Ctrl-C before any command runs (while Python starts) is exit 130, quietly.

    A closed standard output (``| head``) changes no exit code; one that could not be written (``> /dev/full``)
    turns a success into exit code 2 (the command's work is done and its files are written; its printed
    output is not): the one line saying so was printed when it happened.
    """
    from bench.console import stdout_failure

    _std_streams()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
    except SystemExit as e:
        if e.code in (0, None) and stdout_failure() is not None:
            sys.exit(ExitCode.USAGE)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
