"""The pieces of the app's error boundary (``bench.cli``): the parser's own mistakes on one line, the line that
ends a command, the crash report with its traceback in a file, and the registry's unknown-name error told apart
without importing the registry (or torch)."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from bench.commands.common import one_line
from bench.errors import ExitCode

try:
    from typer._click import ClickException  # typer vendors click
except ImportError:  # pragma: no cover - a typer that uses click itself
    from click import ClickException  # type: ignore[no-redef,assignment,unused-ignore]


class OneLineErrors(TyperGroup):
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
            typer.echo(f"vbench: error: {one_line(e.format_message())}{where}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("vbench: aborted", err=True)
            sys.exit(ExitCode.FAILED)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


def fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    """``vbench: error: MESSAGE`` on stderr; the exit (code 2 unless told) for the caller to raise."""
    typer.echo(f"vbench: error: {message}", err=True)
    return typer.Exit(code=code)


def crash_report(e: BaseException) -> typer.Exit:
    """An unexpected error: one line, the traceback in a file, exit code 3."""
    fd, path = tempfile.mkstemp(prefix="vbench-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"vbench {' '.join(sys.argv[1:])}\n\n")
        traceback.print_exception(e, file=f)
    return fail(
        f"internal error: {type(e).__name__}: {one_line(str(e))[:200]} (traceback in {path})", code=ExitCode.INTERNAL
    )


def unknown_arch(e: Exception) -> bool:
    """The registry's error for an unknown name; the registry (and torch) is not imported to ask."""
    registry = sys.modules.get("archs")
    return registry is not None and isinstance(e, registry.UnknownArchError)
