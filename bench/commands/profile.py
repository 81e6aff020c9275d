"""``vbench profile``: measure a sweep (here, in shards or on a cluster) into a run folder; the commands that
finish or refresh a run are rebuilt from its recorded options (:func:`profile_command`)."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.commands.common import (
    arch_kwargs_option,
    choices,
    device_option,
    folder,
    one_line,
    overwrite_option,
    plugin_option,
    print_merge_notes,
    print_results,
)
from bench.commands.console import make_console as _console
from bench.commands.console import progress_bar as _bar
from bench.commands.console import recorded_options as _recorded_options
from bench.commands.console import say as _say
from bench.commands.console import stdout_closed as _stdout_closed
from bench.errors import ExitCode
from bench.results.records import (
    COUNTERS,
    DTYPES,
    EXECUTORS,
    INPUTS,
    MODES,
    Request,
    Row,
    RunOptions,
    check_run_options,
)
from bench.run.lifetime import RunInterrupted

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
    alone = typer.Typer(add_completion=False)  # the command by itself: a one-command app is that command
    alone.command()(profile_cmd)
    command = typer.main.get_command(alone)
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


_GRID, _TIMING, _OUTPUT, _SWEEPS, _CLUSTER, _MODELS = "Grid", "Timing", "Output", "Sweeps", "Cluster", "Models"
"""The help panels of ``vbench profile``."""


def profile_cmd(
    ctx: typer.Context,
    arch: Annotated[
        list[str],
        typer.Option(
            "--arch", "-a", help="'all', a name or a pattern such as 'r*_18'; repeatable.", rich_help_panel=_GRID
        ),
    ],
    device: Annotated[str, device_option(rich_help_panel=_GRID)] = "auto",
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
            help=f"Without --frames/--size: {choices(INPUTS)} (paper: the default input; min: the smallest valid), "
            "or both, comma-separated.",
            rich_help_panel=_GRID,
        ),
    ] = "paper",
    dtype: Annotated[
        str,
        typer.Option(
            help=f"{choices(DTYPES)} (the half types through autocast), comma-separated.", rich_help_panel=_GRID
        ),
    ] = "fp32",
    mode: Annotated[
        str,
        typer.Option(help=f"{choices(MODES)} (train: forward+backward+step).", rich_help_panel=_GRID),
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
    overwrite: Annotated[bool, overwrite_option(rich_help_panel=_OUTPUT)] = False,
    plugin: Annotated[list[str] | None, plugin_option(rich_help_panel=_MODELS)] = None,
    counter: Annotated[
        str,
        typer.Option(
            help=f"MAC counter: {choices(COUNTERS)} (torch: on the meta device; fvcore: traces on CPU).",
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
            help=f"Submit the shards as a job array: {choices(EXECUTORS)} (local: the same path, on this machine).",
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
    from bench.run.lifetime import signals_interrupt
    from bench.run.plugins import load_plugins

    cluster = {"shards": shards, "partition": partition, "time_min": time_min, "gpus_per_task": gpus_per_task,
               "cpus_per_task": cpus_per_task}  # fmt: skip
    run = check_run_options(
        warmup=warmup, repeats=repeats, min_time=min_time, max_time=max_time, timeout=timeout, max_memory=max_memory,
        count_workers=count_workers, executor=executor, cluster=cluster, shard=shard, gpus=gpus,
        out_given=out is not None, only_missing=only_missing, overwrite=overwrite, allow_mixed=allow_mixed,
        rounds=rounds, settle=settle,
    )  # fmt: skip
    with signals_interrupt():  # from here, Ctrl-C is Interrupted: never taken for a plugin's or a model's
        plugins = load_plugins(plugin or [])
        request = Request(
            archs=arch, device=device, batches=batch, frames=frames, sizes=size, inputs=input_, dtype=dtype,
            mode=mode, channels_last=channels_last, compiled=compile_, cuda_graphs=cuda_graphs,
            arch_kwargs=arch_kwargs or [], static=static, counter=counter, trace=trace, weights=weights,
            policy=run.policy, count_workers=count_workers or (min(4, os.cpu_count() or 1) if gpus else 1),
            plugins=plugins,
        )  # fmt: skip
        job = _Profiling(request, run, _options(ctx, weights), out, resume=only_missing, overwrite=overwrite)
        try:
            if executor is not None:
                rows, paths = job.on_cluster({"executor": executor, **cluster})
            else:
                rows, paths = job.here(shard=shard, gpus=gpus, allow_mixed=allow_mixed, rounds=rounds, settle=settle)
        except RunInterrupted as e:
            job.how_to_finish(e)
            raise
    print_results(job.console, rows, paths)
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        _say(job.console, f"{len(failed)} of {len(rows)} rows did not finish ok")
        if fail_on_error:
            raise typer.Exit(code=ExitCode.FAILED)


def _options(ctx: typer.Context, weights: str | None) -> dict[str, Any]:
    """The options given, as the run records them; ``--weights`` as an absolute path (a command rebuilt from
    them may run elsewhere)."""
    options = _recorded_options(ctx)
    if weights is not None and "--weights" in options:
        options["--weights"] = [str(Path(weights).resolve())]
    return options


class _Profiling:
    """One ``vbench profile`` once its options are checked: where it writes (``--out``, checked here; claimed
    once the plan is), how it measures (here or on a cluster), and how to finish it when it is interrupted."""

    def __init__(
        self,
        request: Request,
        run: RunOptions,
        options: dict[str, Any],
        out: str | None,
        *,
        resume: bool,
        overwrite: bool,
    ) -> None:
        from bench.run.rundir import check_out

        self.request, self.run, self.options = request, run, options
        self.resume, self.overwrite = resume, overwrite
        self.out_dir = check_out(folder(out), resume=resume, overwrite=overwrite) if out is not None else None
        self.console = _console()

    def _claim(self) -> Path:
        """Create and lock the run folder (a new one under reports/runs/ without --out)."""
        from bench.run.rundir import claim, new_run_dir

        if self.out_dir is None:
            self.out_dir = claim(new_run_dir(), resume=True)  # a new folder: this only takes its lock
        else:
            self.out_dir = claim(self.out_dir, resume=self.resume, overwrite=self.overwrite)
        return self.out_dir

    def here(
        self, *, shard: str | None, gpus: str | None, allow_mixed: bool, rounds: int, settle: float
    ) -> tuple[list[Row], dict[str, Path]]:
        """The sweep (or one shard of it) on this machine, with a progress bar."""
        from bench.report.tables import summary_markdown
        from bench.run.runner import run_plan
        from bench.run.shard import prepare_sweep

        sweep = prepare_sweep(
            self.request,
            shard=shard,
            only_missing_in=self.out_dir if self.resume else None,
            gpus=gpus,
            allow_mixed=allow_mixed,
            rounds=rounds,
        )
        out_dir = self._claim()  # the plan is checked: now the folder
        with _progress(self.console, sweep.plan.n_rows) as on_row:
            result = run_plan(
                sweep.plan,
                out_dir,
                timeout=self.run.timeout,
                plugins=self.request.plugins,
                on_row=on_row,
                markdown=summary_markdown,
                command=_command_line(),
                slots=sweep.slots,
                previous=sweep.previous,
                extra_env={**sweep.environment, "options": self.options},
                max_memory=self.run.max_memory,
                rounds=rounds,
                settle_s=settle,
            )
        if self.resume:
            _say(self.console, f"kept {len(sweep.previous)} rows of the folder; measured {sweep.plan.n_rows}")
        return result.rows, result.paths

    def on_cluster(self, cluster: dict[str, Any]) -> tuple[list[Row], dict[str, Path]]:
        """``--executor``: submit one array task per shard with a progress bar, then report and write the merge."""
        from bench.report.tables import summary_markdown
        from bench.results.config import default_config
        from bench.results.merge import write_merged
        from bench.run.cluster import load_cluster_options, profile_on_cluster

        out_dir, console = self._claim(), self.console
        options = load_cluster_options(default_config(None), **cluster)
        with _bar(console, disable=not console.is_terminal) as bar:
            task = bar.add_task(f"{options.shards} {options.executor} tasks", total=options.shards)
            merged, failures, added = profile_on_cluster(
                self.request, options, out_dir, timeout=self.run.timeout, plugins=self.request.plugins,
                on_progress=lambda done, n: bar.update(task, completed=done, total=n), markdown=summary_markdown,
            )  # fmt: skip
        for index, why in failures.items():
            _say(console, f"shard {index} failed: {why}")
        if failures:
            _say(console, f"{added} unfinished configurations of failed tasks recorded as error/timeout rows")
        print_merge_notes(console, merged)
        return merged.rows, write_merged(merged, out_dir, summary_markdown)

    def how_to_finish(self, e: RunInterrupted) -> None:
        """An interrupted run: the rows it kept in its folder and the command that finishes it."""
        if self.out_dir is None:
            return
        finish = profile_command(self.options, self.out_dir, "--only-missing", local=True)
        if not finish.isprintable():  # a value with a line break: no command to paste on one line
            finish = "the same command with --only-missing"
        short = e.short_rounds
        note = f" ({short} from fewer rounds than asked: measured again)" if short else ""
        typer.echo(f"vbench: interrupted; kept {e.kept} rows{note} in {one_line(str(self.out_dir))}; finish with: "
                   f"{finish}", err=True)  # fmt: skip


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


def _command_line() -> list[str]:
    """The command as the user typed it, when this process is the ``vbench`` command (not a test runner)."""
    if Path(sys.argv[0]).name in ("vbench", "cli.py", "__main__.py"):
        return ["vbench", *sys.argv[1:]]
    return []
