"""The ``vbench`` command line: parse, call the library, report, exit code.

Known user mistakes raise :class:`bench.errors.UsageError` (or the registry's
``UnknownArchError``) and become one line on stderr with exit code 2. Any
other exception is a bug of vbench's: one line, the traceback saved to a file
it names, and exit code 3 (never 1, which means a regression). A closed
standard output (``vbench ... | head``) stops the printing, never the work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from bench.commands.boundary import OneLineErrors, crash_report, fail, unknown_arch
from bench.commands.common import check_paths, one_line, path_parameters, std_streams
from bench.commands.compare import compare_cmd
from bench.commands.console import stdout_closed as _stdout_closed
from bench.commands.evaluate import evaluate_cmd  # imports neither torch nor av
from bench.commands.history import history_cmd
from bench.commands.inspect import inspect_cmd
from bench.commands.list import list_cmd
from bench.commands.merge import merge_cmd
from bench.commands.profile import profile_cmd
from bench.commands.report import report_cmd
from bench.commands.roofline import roofline_cmd
from bench.errors import ExitCode, UsageError
from bench.run.lifetime import Interrupted

app = typer.Typer(
    name="vbench",
    cls=OneLineErrors,
    help="Benchmark and profile video action-recognition backbones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """Known user mistakes: one line and exit 2; an interruption: its exit code; a bug: exit 3.

    Every path parameter (:func:`path_parameters`) is checked before the command runs.
    """
    paths = path_parameters(fn)

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_paths(paths, kwargs)
            return fn(*args, **kwargs)
        except UsageError as e:
            raise fail(one_line(str(e))) from None
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
            if unknown_arch(e):
                raise fail(one_line(str(e))) from None
            raise crash_report(e) from None

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
    std_streams()


COMMANDS = (
    ("list", list_cmd),
    ("profile", profile_cmd),
    ("merge", merge_cmd),
    ("inspect", inspect_cmd),
    ("roofline", roofline_cmd),
    ("compare", compare_cmd),
    ("report", report_cmd),
    ("history", history_cmd),
    ("evaluate", evaluate_cmd),
)
"""Every command, in the order of the help; each is wrapped in the error boundary (:func:`_user_errors`)."""

for _name, _command in COMMANDS:
    app.command(_name)(_user_errors(_command))


def main() -> None:  # pragma: no cover - console entry point
    """The ``vbench`` command: a Ctrl-C before any command runs (while Python starts) is exit 130, quietly.

    A closed standard output (``| head``) changes no exit code; one that could not be written (``> /dev/full``)
    turns a success into exit code 2 (the command's work is done and its files are written; its printed
    output is not): the one line saying so was printed when it happened.
    """
    from bench.commands.console import stdout_failure

    std_streams()
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
