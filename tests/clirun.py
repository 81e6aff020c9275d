"""Running ``vbench`` as a user does, for the tests of the command line.

:func:`vbench` starts it in a subprocess (``python -m bench.cli``): what a model prints, an exit or a
signal cannot reach the test's process, and a plugin's architectures never enter its registry.
:func:`vbench_here` runs it in the test's process through Typer's runner, for checks of the command's
own work (a refusal, a JSON field), without an interpreter and torch to start (about 2 s each).
Both give a :class:`subprocess.CompletedProcess`: the exit code, stdout and stderr. :func:`made_once` gives
the tests of a session one folder that a run filled once, whichever pytest-xdist process asked for it first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = str(Path(__file__).parent / "plugins")
"""The folder of the test plugins (``fake_archs``): on ``PYTHONPATH`` where a test names them."""


def vbench_env(
    env: Mapping[str, str] | None = None, plugins: bool = False, path: Sequence[str | Path] = ()
) -> dict[str, str]:
    """The environment :func:`vbench` gives its subprocess: this one's, 200 columns, ``env``, and on
    ``PYTHONPATH`` the test plugins with ``plugins`` and the folders of ``path``. No empty entry is left on
    ``PYTHONPATH`` (an empty entry is the working directory, which a test of imports must keep off the path)."""
    environ = {**os.environ, "COLUMNS": "200", **(env or {})}
    extra = [*([PLUGINS] if plugins else []), *map(str, path)]
    if extra:
        kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        environ["PYTHONPATH"] = os.pathsep.join([*extra, *kept])
    return environ


def vbench(
    *args: object,
    cwd: Path = ROOT,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    plugins: bool = False,
    path: Sequence[str | Path] = (),
    script: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``vbench ARGS`` in a subprocess, 200 columns wide; ``plugins`` puts the test plugins on its path, ``path``
    more folders. ``script`` runs the installed ``vbench`` script instead of ``python -m bench.cli`` (which puts
    the working directory first on ``sys.path``)."""
    return subprocess.run(
        [*command(script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=vbench_env(env, plugins, path), cwd=cwd,
    )  # fmt: skip


def command(script: bool = False) -> list[str]:
    """The start of a ``vbench`` command line: the installed script, or ``python -m bench.cli``."""
    return [str(Path(sys.executable).with_name("vbench"))] if script else [sys.executable, "-m", "bench.cli"]


def vbench_here(*args: object, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vbench ARGS`` in this process, 200 columns wide, ``env`` set while it runs."""
    from typer.testing import CliRunner

    from bench.cli import app

    argv = [str(a) for a in args]
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200", **(env or {})})
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)


def made_once(
    base: Path, name: str, make: Callable[[Path], subprocess.CompletedProcess[str]]
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The folder ``name`` that ``make`` filled, and what ``make`` returned: made once in a test session.

    ``base`` is the session's ``tmp_path_factory.getbasetemp()``. Under pytest-xdist each test process has a
    base of its own in one folder of the session: the folder is made there, by the first process that asks,
    under a file lock; another process that asks meanwhile waits for it, then reads what it left (a module-
    scoped fixture alone runs again in every test process that runs one of its tests). A ``make`` that
    raised leaves no record of what it returned: the next process to ask makes the folder again.
    """
    import fcntl

    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, made = root / name, root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done = make(folder)
            made.write_text(json.dumps([[str(a) for a in done.args], done.returncode, done.stdout, done.stderr]))
    args, code, out, err = json.loads(made.read_text())
    return folder, subprocess.CompletedProcess(args, code, out, err)
