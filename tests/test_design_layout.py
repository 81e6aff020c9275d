"""The packages of ``bench/`` and the one rule of each (``docs/design.md``, "The layout"), read from the source.

Every import counts, at module level or inside a function (a lazy import runs too, later); only those under
``if TYPE_CHECKING:`` do not (they name types and never run).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
from graphs import first_cycle

ROOT = Path(__file__).resolve().parents[1]

LAYERS = (
    ("bench", "bench.errors"),
    ("bench.results",),
    ("bench.measure",),
    ("bench.run",),
    ("bench.evaluate",),
    ("bench.report",),
    ("bench.commands",),
    ("bench.cli",),
)
"""The packages from the bottom up: a module imports from its own layer and those below, never from above, so
that no two packages import each other (no cycle between packages, whatever the modules do)."""

PRESENTATION = ("rich", "pandas", "matplotlib", "plotly")
"""Libraries that draw or format: only ``bench.report`` and ``bench.commands`` import them."""


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted((ROOT / "bench").rglob("*.py"))}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module ``module`` imports (``from a.b import c``: ``a.b``, and ``a.b.c`` where that is a module of
    bench), at any depth of the file but under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
                found.update(f"{child.module}.{a.name}" for a in child.names if f"{child.module}.{a.name}" in MODULES)
            visit(child)

    visit(ast.parse(MODULES[module].read_text()))
    return frozenset(found)


def _layer(module: str) -> int:
    for i, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages if p != "bench") or module == "bench":
            return i
    raise AssertionError(f"{module} is in no package of LAYERS: put it in one (docs/design.md, 'The layout')")


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_every_module_is_in_a_package():
    """Only the entry point, the errors and the version stay at the top of bench/; the rest lives in a package."""
    top = {p.name for p in (ROOT / "bench").glob("*.py")}
    assert top == {"__init__.py", "cli.py", "errors.py"}
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_package_imports_one_above_it(module):
    above = sorted(m for m in imports(module) if m in MODULES and _layer(m) > _layer(module))
    assert not above, f"{module} imports {above}, which sit above it in LAYERS"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "bench.results", "bench.errors")))
def test_results_import_no_torch(module):
    """The read-only commands (``compare``, ``merge``, ``report``'s tables) and ``--help`` stay fast: nothing in
    ``bench.results`` imports torch, the registry (which does) or PyAV, even lazily; and what it imports of bench
    is in ``bench.results`` too (the layers), so nothing it reaches does either."""
    heavy = sorted(m for m in imports(module) if m.split(".")[0] in ("torch", "archs", "av", "fvcore"))
    assert not heavy, f"{module} imports {heavy}"
    assert all(_in(m, "bench.results", "bench.errors") or m == "bench" for m in imports(module) if _in(m, "bench"))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "bench.measure")))
def test_measure_imports_neither_run_nor_report(module):
    """A worker measures; it neither runs sweeps (the parent's) nor formats (the report's)."""
    assert not [m for m in imports(module) if _in(m, "bench.run", "bench.report", "bench.commands", "bench.cli")]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _in(m, "bench.report", "bench.commands")))
def test_only_report_and_commands_import_rich_pandas_matplotlib(module):
    drawn = sorted(m for m in imports(module) if m.split(".")[0] in PRESENTATION)
    assert not drawn, f"{module} imports {drawn}: presentation belongs in bench.report or bench.commands"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _in(m, "bench.commands", "bench.cli")))
def test_only_the_command_line_imports_typer(module):
    assert not [m for m in imports(module) if m.split(".")[0] in ("typer", "click")]


def test_no_import_cycle_anywhere():
    """Between modules, lazy imports included (the layers already rule out cycles between packages)."""
    graph = {m: sorted(i for i in imports(m) if i in MODULES and i != m) for m in MODULES}
    cycle = first_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_rules_see_lazy_imports():
    """The reader is not blind: a lazy import is found, one under TYPE_CHECKING is not."""
    assert "bench.measure.breakdown" in imports("bench.commands.inspect")  # inside _inspect_time
    assert "bench.measure.counting" not in imports("bench.results.records")  # TYPE_CHECKING only
    assert "bench.measure.counting" in imports("bench.run.plan")
