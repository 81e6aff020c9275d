"""The ``vbench`` command line: parse, call the library, report, exit code.

Known user mistakes raise :class:`bench.errors.UsageError` (or the registry's
``UnknownArchError``) and become one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
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


def _console() -> Any:
    from rich.console import Console

    return Console()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
