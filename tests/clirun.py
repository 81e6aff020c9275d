"""Running ``vbench`` as a user does, for the tests of the command line.

:func:`vbench` starts it in a subprocess (``python -m bench.cli``): what a model prints, an exit or a
signal cannot reach the test's process, and a plugin's architectures never enter its registry.
:func:`vbench_here` runs it in the test's process through Typer's runner, for checks of the command's
own work (a refusal, a JSON field), without an interpreter and torch to start (about 2 s each).
Both give a :class:`subprocess.CompletedProcess`: the exit code, stdout and stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = str(Path(__file__).parent / "plugins")
"""The folder of the test plugins (``fake_archs``): on ``PYTHONPATH`` where a test names them."""


def vbench_env(env: Mapping[str, str] | None = None, plugins: bool = False) -> dict[str, str]:
    """The environment :func:`vbench` gives its subprocess: this one's, 200 columns, ``env``, and the test
    plugins on ``PYTHONPATH`` with ``plugins``."""
    environ = {**os.environ, "COLUMNS": "200", **(env or {})}
    if plugins:
        environ["PYTHONPATH"] = os.pathsep.join([PLUGINS, os.environ.get("PYTHONPATH", "")])
    return environ


def vbench(
    *args: object,
    cwd: Path = ROOT,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    plugins: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``vbench ARGS`` in a subprocess, 200 columns wide; ``plugins`` puts the test plugins on its path."""
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=vbench_env(env, plugins), cwd=cwd,
    )  # fmt: skip


def vbench_here(*args: object, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vbench ARGS`` in this process, 200 columns wide, ``env`` set while it runs."""
    from typer.testing import CliRunner

    from bench.cli import app

    argv = [str(a) for a in args]
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200", **(env or {})})
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)
