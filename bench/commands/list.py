"""``vbench list``: the registered architectures with their inputs, parameters and paper."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bench.commands.common import Plugins
from bench.commands.console import make_console as _console
from bench.errors import UsageError


def list_cmd(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'r*_18'.")] = "*",
    family: Annotated[str | None, typer.Option(help="Only this family (pattern).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per architecture.")] = False,
    plugin: Plugins = None,
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
