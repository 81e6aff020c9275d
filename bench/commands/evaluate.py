"""``vbench evaluate``: measured top-1/top-5 of an architecture with its weights on the user's videos.

The command is thin: check every option and file (one line and exit code 2
on a mistake, before the model is built or a video decoded), build the model
through the registry (``archs.create_model(name, weights=PATH)``), hand it to
:func:`bench.evaluate.loop.evaluate`, print the summary. Importing this module
imports neither torch nor PyAV, so ``vbench --help`` stays fast.
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.commands.common import arch_kwargs_option, choices, device_option, folder, plugin_option
from bench.errors import UsageError, signal_exit_code
from bench.results.records import DTYPES

if TYPE_CHECKING:
    from archs import Protocol
    from bench.evaluate.loop import EvalOptions, EvalResult
    from bench.evaluate.video import ViewSpec

__all__ = ["evaluate_cmd", "evaluate_command"]

_WHAT, _VIEWS, _RUN, _OUTPUT = "What", "Views", "Running", "Output"
"""The help panels."""


def evaluate_command(options: dict[str, Any], out_dir: Path) -> str:
    """``vbench evaluate`` with the recorded options, ``--only-missing`` and ``--out``, shell-quoted."""
    argv = ["vbench", "evaluate"]
    for name, value in options.items():
        if name in ("--out", "--only-missing", "--overwrite"):
            continue
        argv += [name] if value is True else [x for v in value for x in (name, v)]
    return shlex.join([*argv, "--only-missing", "--out", str(out_dir)])


def _positive(value: int | None, what: str) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{what} must be >= 1; got {value}")


def _file(path: Path, what: str) -> Path:
    if str(path) == "":
        raise UsageError(f"{what} is empty; name a file")
    if not path.exists():
        raise UsageError(f"{what} '{path}' does not exist")
    if not path.is_file():
        raise UsageError(f"{what} '{path}' is not a file")
    return path


def _view_spec(pre: Any, protocol: Protocol, frames: int | None, size: int | None) -> ViewSpec:
    """The weights' preprocessing with the protocol's views; ``--frames``/``--size`` override clip length and crop.

    With ``--size`` the resize scales with the crop, so the crop keeps its share of the frame.
    """
    from bench.evaluate.video import ViewSpec

    crop = size or pre.crop
    resize = pre.resize
    if size is not None and size != pre.crop:
        scale = size / pre.crop
        resize = (
            (round(resize[0] * scale), round(resize[1] * scale)) if isinstance(resize, tuple) else round(resize * scale)
        )
    small = min(resize) if isinstance(resize, tuple) else resize
    if small < crop:
        raise UsageError(f"the frames are resized to {resize}, smaller than the {crop}-pixel crop")
    return ViewSpec(
        frames=frames or protocol.frames or pre.frames,
        frame_stride=pre.frame_stride,
        clips=protocol.clips,
        crops=protocol.crops,
        crop=crop,
        resize=tuple(resize) if isinstance(resize, (tuple, list)) else int(resize),
        mean=tuple(pre.mean),
        std=tuple(pre.std),
    )


def _build_model(arch: str, weights: str, arch_kwargs: dict[str, Any] | None = None) -> Any:
    """``archs.create_model(arch, weights=..., **arch_kwargs)`` (a vbench checkpoint adds the builder options it
    records; ``arch_kwargs`` override them); a checkpoint or an option it refuses is one line, exit 2."""
    import archs

    try:
        model = archs.create_model(arch, weights=weights, **(arch_kwargs or {}))
    except archs.WeightsError as e:
        raise UsageError(f"--weights: {' '.join(str(e).split())}") from None
    except (TypeError, ValueError) as e:  # an option the builder does not take, or a value it refuses
        raise UsageError(
            f"--arch-kwargs: {arch} cannot be built with {arch_kwargs}: {' '.join(str(e).split())}"
        ) from None
    if getattr(model, "pretrained_cfg", None) is None:
        raise UsageError(f"--weights '{weights}': the model of '{arch}' records no preprocessing")
    return model


def evaluate_cmd(
    ctx: typer.Context,
    arch: Annotated[str, typer.Option("--arch", "-a", help="Registered architecture name.", rich_help_panel=_WHAT)],
    weights: Annotated[
        str,
        typer.Option(
            help="Checkpoint (torchvision, DeepMind I3D as piergiaj's port, VMZ or vbench layout), or 'torchvision' "
            "for torchvision's published weights.",
            metavar="FILE",
            rich_help_panel=_WHAT,
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            help="DIR/<class>/<video>, a Kinetics CSV (label,youtube_id,time_start,time_end,split) or a path,label CSV.",
            rich_help_panel=_WHAT,
        ),
    ],
    out: Annotated[str, typer.Option(help="Folder for the evaluation.", metavar="DIR", rich_help_panel=_OUTPUT)],
    classes: Annotated[
        Path | None,
        typer.Option(
            help="The model's class names, one a line, in index order (default: Kinetics-400 for a 400-class "
            "model, else the sorted class folders).",
            rich_help_panel=_WHAT,
        ),
    ] = None,
    video_root: Annotated[
        Path | None,
        typer.Option(
            help="Where a CSV's videos are (default: the folder named like the CSV beside it, else the CSV's folder).",
            rich_help_panel=_WHAT,
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Views per video: a preset that a family declares, such as torchvision, r2plus1d, i3d, slowfast "
            "or single (a wrong name lists them all; default: the weights' reference protocol).",
            rich_help_panel=_VIEWS,
        ),
    ] = None,
    clips: Annotated[
        int | None,
        typer.Option(help="Clips per video, spread evenly in time (overrides the protocol).", rich_help_panel=_VIEWS),
    ] = None,
    crops: Annotated[
        int | None,
        typer.Option(help="Crops per clip along the long side: 1 centre, 3 left/centre/right.", rich_help_panel=_VIEWS),
    ] = None,
    frames: Annotated[
        int | None, typer.Option(help="Frames per clip (default: the weights' / protocol's).", rich_help_panel=_VIEWS)
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            help="Crop size in pixels (default: the weights'); the resize scales with it.", rich_help_panel=_VIEWS
        ),
    ] = None,
    arch_kwargs: Annotated[list[str] | None, arch_kwargs_option(rich_help_panel=_WHAT)] = None,
    plugin: Annotated[list[str] | None, plugin_option(rich_help_panel=_WHAT)] = None,
    batch: Annotated[int, typer.Option(help="Clips per model call.", rich_help_panel=_RUN)] = 8,
    device: Annotated[str, device_option(rich_help_panel=_RUN)] = "auto",
    dtype: Annotated[
        str, typer.Option(help=f"{choices(DTYPES)} (the half types through autocast).", rich_help_panel=_RUN)
    ] = "fp32",
    workers: Annotated[
        int | None,
        typer.Option(help="Decoding processes (0: decode in this process; default: up to 4).", rich_help_panel=_RUN),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N videos of the dataset.", rich_help_panel=_RUN)
    ] = None,
    only_missing: Annotated[
        bool,
        typer.Option(
            "--only-missing",
            help="Keep the predictions in --out; evaluate only the videos without one.",
            rich_help_panel=_OUTPUT,
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace the evaluation --out holds (default: refuse).", rich_help_panel=_OUTPUT
        ),
    ] = False,
) -> None:
    """Measure top-1/top-5 on your videos: decode with PyAV, N clips x M crops per video, softmax averaged.

    Writes predictions.jsonl (one line per video, as each finishes), evaluation.json (accuracy, skipped
    videos with reasons, decode/preprocess/model time, environment), per_class.csv and confusion.csv.
    Ctrl-C keeps every finished prediction and prints the command that finishes the evaluation.
    """
    from bench.commands.console import recorded_options
    from bench.evaluate.datasets import load_class_file, load_dataset, resolve_classes
    from bench.evaluate.store import check_eval_out
    from bench.run.plan import parse_arch_kwargs, resolve_device
    from bench.run.plugins import load_plugins

    _check_options(clips=clips, crops=crops, frames=frames, size=size, batch=batch, limit=limit, workers=workers,
                   only_missing=only_missing, overwrite=overwrite, dtype=dtype, protocol=protocol)  # fmt: skip
    out_dir = folder(out)
    kwargs = parse_arch_kwargs(arch_kwargs or [])
    import archs

    load_plugins(plugin or [])  # and VBENCH_PLUGINS: a plugin's architectures evaluate as the built-in ones
    if weights not in archs.publishers():
        _file(Path(weights), "--weights")
    spec = archs.get_arch(arch)  # an unknown name is one line with suggestions
    if classes is not None:
        load_class_file(classes)
    dataset = load_dataset(data, video_root).limit(limit)
    check_eval_out(out_dir, resume=only_missing, overwrite=overwrite)
    chosen_device = resolve_device(device)
    model = _build_model(spec.name, weights, kwargs)
    info = model.pretrained_cfg
    built_with = {**dict(getattr(info, "arch_kwargs", None) or {}), **kwargs}
    built_with.pop("num_classes", None)
    chosen, view = _views(spec, info, built_with, protocol, clips=clips, crops=crops, frames=frames, size=size)
    names, classes_source = resolve_classes(classes, dataset, info.num_classes)
    options = recorded_options(ctx)
    meta = {**_meta(spec.name, weights, info, chosen, classes_source, options), "arch_kwargs": built_with}
    from bench.evaluate.loop import EvalOptions  # torch is imported by now (archs)

    n_workers = min(4, os.cpu_count() or 1) if workers is None else workers
    how = EvalOptions(batch=batch, device=chosen_device, dtype=dtype, workers=n_workers)
    result = _run(model.to(chosen_device), view, dataset, names, out_dir, meta, options, how,
                  resume=only_missing, overwrite=overwrite)  # fmt: skip
    _report(result, names)


def _check_options(
    *,
    clips: int | None,
    crops: int | None,
    frames: int | None,
    size: int | None,
    batch: int,
    limit: int | None,
    workers: int | None,
    only_missing: bool,
    overwrite: bool,
    dtype: str,
    protocol: str | None,
) -> None:
    """The options that need no file and no model, checked first."""
    from bench.evaluate.loop import check_eval_options
    from bench.evaluate.protocols import resolve_protocol
    from bench.results.records import choice

    for value, what in ((clips, "--clips"), (crops, "--crops"), (frames, "--frames"), (size, "--size"),
                        (limit, "--limit")):  # fmt: skip
        _positive(value, what)
    check_eval_options(batch=batch, workers=workers, resume=only_missing, overwrite=overwrite)
    choice(dtype, DTYPES, "dtype")
    resolve_protocol(protocol or "single", clips, crops)  # the counts' bounds, before any work


def _views(
    spec: Any,
    info: Any,
    built_with: dict[str, Any],
    protocol: str | None,
    *,
    clips: int | None,
    crops: int | None,
    frames: int | None,
    size: int | None,
) -> tuple[Protocol, ViewSpec]:
    """The protocol (``--protocol``, else the weights' reference protocol, else the architecture's) and the views
    it cuts, which the architecture must be able to take."""
    from bench.evaluate.protocols import resolve_protocol

    chosen = resolve_protocol(
        protocol or getattr(info, "protocol", None) or spec.pretrained(**built_with).protocol, clips, crops
    )
    view = _view_spec(info.preprocess, chosen, frames, size)
    _, min_t, min_h, _ = spec.min_input_for(**built_with)
    if view.frames < min_t or view.crop < min_h:
        raise UsageError(
            f"{spec.name} needs at least {min_t} frames of {min_h}x{min_h}; the views are {view.frames}x{view.crop}"
        )
    return chosen, view


def _meta(
    arch: str, weights: str, info: Any, protocol: Protocol, classes_source: str, options: dict[str, Any]
) -> dict[str, Any]:
    import archs
    from bench.results.store import file_sha256

    downloaded = weights in archs.publishers()  # a publisher's name, not a file
    return {
        "arch": arch,
        "weights": {
            "path": weights if downloaded else str(Path(weights).resolve()),
            "sha256": None if downloaded else file_sha256(weights),
            "source": getattr(info, "source", ""),
            "layout": getattr(info, "layout", ""),
            "num_classes": info.num_classes,
        },
        "protocol": {"name": protocol.name, "source": protocol.source},
        "classes_source": classes_source,
        "options": options,
    }


def _run(
    model: Any,
    view: ViewSpec,
    dataset: Any,
    names: list[str],
    out_dir: Path,
    meta: dict[str, Any],
    options: dict[str, Any],
    how: EvalOptions,
    *,
    resume: bool,
    overwrite: bool,
) -> EvalResult:
    """The evaluation with a progress bar (a plain line per video off a terminal); an interruption prints the
    command that finishes it; a folder made for it that it failed to write anything in is removed."""
    from bench.commands.console import make_console, progress_bar
    from bench.evaluate.loop import decoder_died, evaluate
    from bench.evaluate.store import remove_if_empty
    from bench.run.lifetime import Interrupted, signals_interrupt

    made = not out_dir.exists()
    try:
        console = make_console()
        with signals_interrupt(), progress_bar(console, disable=not console.is_terminal) as bar:
            shown = _Progress(console, bar, names, out_dir)
            try:
                try:
                    return evaluate(model, view, dataset, names, out_dir, options=how, meta=meta, resume=resume,
                                    overwrite=overwrite, on_start=shown.on_start, on_video=shown.on_video)  # fmt: skip
                except RuntimeError as e:  # a decoding worker's death, in the loop or reported outside it
                    died = decoder_died(e)
                    if died is None:
                        raise
                    if died.stop_signal is not None:  # the group's signal reached a decoding worker first
                        raise Interrupted(died.stop_signal) from None
                    typer.echo(f"vbench: error: {_died(died)}; {_finish(options, out_dir)}", err=True)
                    raise typer.Exit(code=signal_exit_code(died.signum)) from None
            except (Interrupted, KeyboardInterrupt):
                typer.echo(f"vbench: interrupted; {_finish(options, out_dir)}", err=True)
                raise
    except BaseException:
        if made:
            remove_if_empty(out_dir)  # made for this run, which failed before writing anything
        raise


def _finish(options: dict[str, Any], out_dir: Path) -> str:
    """What an evaluation cut short kept, and the command that finishes it."""
    return f"kept {_kept(_written(out_dir))} in {out_dir}; finish with: " + evaluate_command(options, out_dir)


class _Progress:
    """What the evaluation shows as it runs: a progress bar on a terminal, one plain line per video off one."""

    def __init__(self, console: Any, bar: Any, names: list[str], out_dir: Path) -> None:
        self.console, self.bar, self.names, self.out_dir = console, bar, names, out_dir
        self.task = bar.add_task("evaluating", total=None)

    def on_start(self, todo: int, previous: list[dict[str, Any]], retried: int, dropped: int) -> None:
        from bench.commands.console import say

        kept = {"ok": 0, "skipped": 0}
        for record in previous:
            kept["ok" if record["status"] == "ok" else "skipped"] += 1
        self.bar.update(self.task, total=todo)
        if previous or retried or dropped:
            again = f"retrying {retried} skipped videos (missing, unreadable or corrupt before); " if retried else ""
            gone = f"removed {dropped} lines of videos the dataset no longer lists; " if dropped else ""
            say(self.console, f"kept {_kept(kept)} of {self.out_dir}; {gone}{again}evaluating {todo} videos")

    def on_video(self, record: dict[str, Any]) -> None:
        from rich.markup import escape

        from bench.commands.console import say, stdout_closed

        if self.console.is_terminal:
            self.bar.update(self.task, advance=1, description=escape(f"evaluating {record['video']}"[:60]))
            return
        what = (f"pred={self.names[record['pred']]} label={record['label']} views={record['views']}"
                if record["status"] == "ok" else f"skipped ({record['reason']}: {record['detail']})")  # fmt: skip
        try:
            say(self.console, f"{record['video']} {what}")
        except BrokenPipeError:
            stdout_closed()


def _kept(counts: dict[str, int]) -> str:
    """``"5 predictions"``, or ``"5 predictions and 2 skipped videos"``: prediction lines and skip lines apart."""
    skipped = f" and {counts['skipped']} skipped videos" if counts["skipped"] else ""
    return f"{counts['ok']} predictions{skipped}"


def _written(out_dir: Path) -> dict[str, int]:
    """Prediction and skip lines in the folder's predictions.jsonl, the record of truth: a signal can land
    between a line written and the callback that counts it."""
    import json

    from bench.results.evaluation import PREDICTIONS
    from bench.results.io import RESULTS_CAP, read_text

    counts = {"ok": 0, "skipped": 0}
    try:
        text = read_text(out_dir / PREDICTIONS, "predictions file", RESULTS_CAP, errors="replace")
    except UsageError:  # none, or not one to read: nothing kept to count
        return counts
    for line in text.splitlines():
        try:
            status = json.loads(line).get("status")
        except (ValueError, AttributeError):
            continue
        if status in counts:
            counts[status] += 1
    return counts


def _died(e: Any) -> str:
    """A dead decoding worker, in words: which signal, the likely cause, the video where known."""
    name = signal.Signals(e.signum).name if e.signum in signal.Signals._value2member_map_ else f"signal {e.signum}"
    why = " (likely out of memory: fewer --workers, or shorter or smaller videos, need less)"
    where = f" while decoding {e.video}" if e.video else ""
    if e.signum == signal.SIGKILL:
        return f"a decoding worker was killed by SIGKILL{why}{where}"
    return f"a decoding worker died of {name}{where}"


def _report(result: EvalResult, names: list[str]) -> None:
    from bench.commands.console import make_console, say, stdout_closed

    console = make_console()
    try:
        console.print(summary_table(result))
        for path in result.paths.values():
            say(console, f"wrote {path}")
    except BrokenPipeError:
        stdout_closed()


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def summary_table(result: EvalResult) -> Any:
    """The evaluation's numbers as a rich table (every cell literal text)."""
    from rich.table import Table
    from rich.text import Text

    doc, m, t = result.doc, result.metrics, result.timing.summary()
    table = Table(title="vbench evaluation", show_header=True)
    table.add_column("")
    table.add_column("value", overflow="fold")
    protocol = doc.get("protocol", {})
    spec = doc.get("input", {})
    rows = [
        ("arch", str(doc.get("arch", ""))),
        ("input (TxHxW)", f"{spec.get('frames')}x{spec.get('size')}x{spec.get('size')}, stride {spec.get('frame_stride')}"),
        ("protocol", f"{protocol.get('name')}: {protocol.get('describe')}"),
        ("videos evaluated", str(m.videos)),
        ("top-1 (%)", _fmt(m.top1)),
        (f"top-{m.k} (%)", _fmt(m.top5)),
        ("mean class top-1 (%)", _fmt(m.mean_class_top1)),
        ("skipped", ", ".join(f"{n} {reason}" for reason, n in m.skipped_by_reason.items()) or "0"),
        *([("retried (skipped before)", str(result.retried))] if result.retried else []),
        *([("removed (no longer listed)", str(result.dropped))] if result.dropped else []),
        ("decode", f"{_fmt(t['decode_s'], ' s')} ({_fmt(t['decode_clips_per_s'], ' clips/s', 1)})"),
        ("preprocess", f"{_fmt(t['preprocess_s'], ' s')} ({_fmt(t['preprocess_clips_per_s'], ' clips/s', 1)})"),
        ("model", f"{_fmt(t['model_s'], ' s')} ({_fmt(t['model_clips_per_s'], ' clips/s', 1)})"),
        ("waited for the loader", f"{_fmt(t['loader_wait_s'], ' s')} of {_fmt(t['wall_s'], ' s')}"
         + (f"; bottleneck: {t['bottleneck']}" if t["bottleneck"] else "")),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(Text(name), Text(" ".join(value.split())))
    return table
