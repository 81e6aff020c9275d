"""The terminal side shared by the commands: the console, plain lines, the progress bar, a closed stdout,
and the options a command line gave (recorded so that a run's resume command is rebuilt, never pasted).

Plain helpers with no torch: ``bench.cli`` and ``bench.evaluate_cmd`` both use them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

__all__ = ["make_console", "progress_bar", "recorded_options", "say", "stdout_closed"]


def stdout_closed() -> None:
    """Standard output is gone (``| head``): send the rest of it nowhere and carry on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def recorded_options(ctx: Any) -> dict[str, Any]:
    """The options given on the command line, by name: a flag is True, a value a list of strings.

    Kept in the run's environment, so that the commands that finish or refresh
    the run are rebuilt from these (and quoted), never pasted from a file.
    """
    out: dict[str, Any] = {}
    for param in ctx.command.params:
        if getattr(param, "param_type_name", "") != "option" or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if getattr(source, "name", "") not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        name = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            if value:
                out[name] = True
            elif param.secondary_opts:
                out[max(param.secondary_opts, key=len)] = True
        elif value is not None:
            out[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return out


def say(console: Any, text: str) -> None:
    """Print one line literally (no rich markup), whatever it holds."""
    from bench.report import plain

    console.print(plain(text), soft_wrap=True)


def progress_bar(console: Any, **kwargs: Any) -> Any:
    """The rich progress bar every command uses: description, bar, done/total, elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
        **kwargs,
    )  # fmt: skip


def make_console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)
