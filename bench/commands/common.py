"""Helpers shared by the commands and the app: the options more than one command declares, one-line text,
``--out`` values, choices in help, run summaries, the path parameters checked before a command runs, the
standard streams."""

from __future__ import annotations

import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.commands.console import say as _say
from bench.commands.console import stdout_closed as _stdout_closed
from bench.errors import UsageError
from bench.results.records import DEVICES, Row


def one_line(text: str) -> str:
    return " ".join(str(text).split())


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


def check_paths(paths: dict[str, str], kwargs: dict[str, Any]) -> None:
    """Every path the user gave, checked in one place (:func:`bench.results.validate.check_path`) before any work."""
    from bench.results.validate import check_path

    for name, what in paths.items():
        value = kwargs.get(name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                check_path(v, what)


def choices(values: tuple[str, ...]) -> str:
    """``"cpu, cuda, mps or auto"``: the choices of an option, for its help."""
    return f"{', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else values[0]


def folder(text: str) -> Path:
    """An ``--out`` value as a path; ``""`` is refused (``Path("")`` would be the working directory)."""
    if not text.strip():
        raise UsageError("--out is empty; name a folder")
    return Path(text)


# The options more than one command declares, each declared here once (as asv's ``commands/common_args.py``):
# an ``Annotated`` alias where the commands declare it alike, a function where a command files it in a help
# panel of its own (``rich_help_panel``) or words it for its context.

PLUGIN_HELP = "Module or .py file to load first (registers more archs; runs as code); repeatable."
ARCH_KWARGS_HELP = "key=value passed to the builders; repeatable."


def plugin_option(**kwargs: Any) -> Any:
    """``--plugin``, as every command that builds models declares it (``bench.run.plugins.load_plugins`` reads it,
    with ``VBENCH_PLUGINS``)."""
    return typer.Option("--plugin", help=PLUGIN_HELP, metavar="MODULE|FILE", **kwargs)


def arch_kwargs_option(**kwargs: Any) -> Any:
    """``--arch-kwargs key=value``, as every command that builds models declares it (``bench.run.plan.parse_arch_kwargs``
    reads it)."""
    return typer.Option("--arch-kwargs", help=ARCH_KWARGS_HELP, metavar="KEY=VALUE", **kwargs)


def device_option(when: str = "", **kwargs: Any) -> Any:
    """``--device``, its choices from :data:`bench.results.records.DEVICES`; ``when`` says when it applies."""
    return typer.Option(help=f"{when}{choices(DEVICES)}.", **kwargs)


def overwrite_option(**kwargs: Any) -> Any:
    """``--overwrite`` of the commands that write a run folder (``profile``, ``merge``)."""
    return typer.Option("--overwrite", help="Replace the run that --out holds (default: refuse).", **kwargs)


Plugins = Annotated[list[str] | None, plugin_option()]
ArchKwargs = Annotated[list[str] | None, arch_kwargs_option()]
Device = Annotated[str, device_option()]
Overwrite = Annotated[bool, overwrite_option()]
CompareConfig = Annotated[
    Path | None, typer.Option(help="TOML file with [tool.vbench.compare] (default: ./pyproject.toml if present).")
]
"""``--config`` of ``compare`` and ``history``: the thresholds of the regression verdicts."""


def print_results(console: Any, rows: list[Row], paths: dict[str, Path]) -> None:
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


def print_merge_notes(console: Any, merged: Any) -> None:
    for what, items in (("missing jobs (no rows; re-run with --only-missing)", merged.missing),
                        ("configurations held twice (the first kept)", merged.duplicated),
                        ("jobs with error or timeout rows (re-run with --only-missing)", merged.failed),
                        ("configurations some rounds lack (combined from the others)", merged.short)):  # fmt: skip
        if items:
            _say(console, f"{len(items)} {what}: {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}")
    for warning in merged.warnings:
        _say(console, f"warning: {warning}")


def std_streams() -> None:
    """Open /dev/null on any of fds 0-2 that is closed, so that no pipe or file of ours lands there; guard
    standard output, so that a closed pipe or a full disk behind it stops the printing, never the work."""
    from bench.commands.console import guard_stdout

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    guard_stdout()
