"""``vbench inspect``: per-module counts on the meta device; with ``--time``, where the time goes."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.commands.common import ArchKwargs, Plugins, choices, device_option, one_line
from bench.commands.console import make_console as _console
from bench.commands.console import say as _say
from bench.errors import ExitCode, UsageError, first_line
from bench.results.records import DTYPES


def inspect_cmd(
    name: Annotated[str, typer.Argument(help="Architecture name or pattern (every match is shown).")],
    frames: Annotated[int | None, typer.Option(help="Frames (default: paper input).")] = None,
    size: Annotated[int | None, typer.Option(help="Height = width (default: paper input).")] = None,
    depth: Annotated[
        int | None, typer.Option(help="Deepest module level shown (root = 0; default 2, or the model's depth).")
    ] = None,
    arch_kwargs: ArchKwargs = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
    plugin: Plugins = None,
    tokens: Annotated[
        bool, typer.Option("--tokens", help="Tokens per stage: each module's output grid, tokens and width.")
    ] = False,
    time_: Annotated[
        bool,
        typer.Option("--time", help="Measure where the time goes: per-module latency, by kind, against the roofline."),
    ] = False,
    device: Annotated[str, device_option("With --time: ")] = "cpu",
    mode: Annotated[str, typer.Option(help="With --time: 'infer' or 'train' (forward + backward + step).")] = "infer",
    dtype: Annotated[str, typer.Option(help=f"With --time: {choices(DTYPES)}.")] = "fp32",
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

    With --tokens, each module's output as tokens: the T x H x W grid of a feature
    map or the length of a sequence, and its width (default depth 1: the stages).

    With a pattern, every matching architecture is shown (with --json: an object
    mapping each name to its rows).
    """
    from bench.run.plan import Request, make_plan
    from bench.run.plugins import load_plugins

    if depth is not None and depth < 0:
        raise UsageError("--depth must be >= 0")
    if time_ and tokens:
        raise UsageError("--tokens and --time are separate views: give one")
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
    elif tokens:
        single = len(plan.jobs) == 1 and not any(ch in name for ch in "*?[")
        _print_tokens(list(_inspectable(plan)), depth, as_json, single, _console())
    else:
        _print_counts(plan, depth, as_json, name)


def _print_counts(plan: Any, depth: int | None, as_json: bool, name: str) -> None:
    """``inspect``: each planned architecture's modules with their parameters, MACs and activations, as a table
    or JSON (a list of rows for one architecture named exactly, else an object mapping each name to its rows)."""
    from dataclasses import asdict

    from bench.measure.counting import module_breakdown
    from bench.report.tables import inspect_table

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


def _check_time_options(mode: str, dtype: str, batch: int, iterations: int, trace: Path | None) -> None:
    from bench.results.io import probe_writable

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


def _batch_hint(e: BaseException, mode: str, batch: int) -> str:
    """What to change when batch norm refused to train on one value per channel (a batch of one clip whose
    feature map has shrunk to 1x1x1): torch's own message names neither the batch nor the option."""
    if mode == "train" and batch == 1 and "more than 1 value per channel" in str(e):
        return " (batch norm in training needs more than one value per channel: try --batch 2)"
    return ""


def _inspectable(plan: Any) -> Iterator[tuple[Any, Any]]:
    """Each planned architecture with its one configuration; one that cannot be built at the input is the
    error (for a single name) or a warning (for a pattern, whose other matches go on)."""
    for job in plan.jobs:
        config = job.configs[0]
        if job.error_for(config):
            if len(plan.jobs) == 1:
                raise UsageError(f"{job.arch}: {job.error_for(config)}")
            typer.echo(f"vbench: warning: {job.arch}: {one_line(job.error_for(config))}", err=True)
            continue
        yield job, config


def _inspect_time(plan: Any, name: str, depth: int | None, as_json: bool, iterations: int, trace: Path | None) -> None:
    """``inspect --time``: measure each planned architecture's breakdown, print tables or JSON."""
    from bench.measure.breakdown import time_breakdown
    from bench.measure.roofline import roofline_for
    from bench.report.tables import breakdown_checks, fmt_input, kind_table, time_table
    from bench.results.breakdowns import breakdowns_json

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
            typer.echo(f"vbench: warning: {one_line(str(e))}; no roofline class", err=True)
            roofline = None
        expected = (config.batch, *job.counts_for(config).output_shape[1:])
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what a model prints never mixes with the output
                found[job.arch] = time_breakdown(
                    config, iterations=iterations, trace=trace, roofline=roofline, expected_shape=expected
                )
        except (Exception, SystemExit) as e:  # the model's failure, not vbench's: one line, exit 1
            hint = _batch_hint(e, config.mode, config.batch)
            typer.echo(f"vbench: error: {job.arch}: the model failed: {first_line(e)}{hint}", err=True)
            raise typer.Exit(code=ExitCode.FAILED) from None
    if as_json:
        single = len(found) == 1 and not any(ch in name for ch in "*?[")
        typer.echo(breakdowns_json(found, depths, single))
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


def _print_tokens(todo: list[tuple[Any, Any]], depth: int | None, as_json: bool, single: bool, console: Any) -> None:
    """``inspect --tokens``: each planned (job, config)'s stages as a table, or JSON (a list of rows for one
    architecture named exactly, else an object mapping each name to its rows)."""
    from dataclasses import asdict

    from bench.measure.counting import build_meta
    from bench.measure.tokens import stage_tokens
    from bench.report.tables import tokens_table

    found = {
        job.arch: (
            config,
            stage_tokens(
                build_meta(job.arch, **dict(config.arch_kwargs)),
                config.input_shape,
                max_depth=1 if depth is None else max(depth, 1),
            ),
        )
        for job, config in todo
    }
    if as_json:
        docs = {arch: [asdict(r) for r in rows] for arch, (_, rows) in found.items()}
        typer.echo(json.dumps(next(iter(docs.values())) if single and len(docs) == 1 else docs, indent=1))
        return
    for arch, (config, rows) in found.items():
        console.print(tokens_table(rows, title=f"{arch} at 3x{config.frames}x{config.height}x{config.width}: tokens"))
