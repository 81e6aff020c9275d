"""Settings from a TOML file: the ``[tool.vbench.<section>]`` tables of ``pyproject.toml``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.io import SMALL_CAP, read_text, show_path
from bench.results.validate import show

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["default_config", "tool_table"]


def default_config(path: Path | None) -> Path | None:
    """The file the user named, else ``./pyproject.toml`` where there is one."""
    if path is not None:
        return path
    return Path("pyproject.toml") if Path("pyproject.toml").is_file() else None


def _is_devnull(path: Path) -> bool:
    return os.path.realpath(path) == os.path.realpath(os.devnull)


def tool_table(path: Path | None, section: str) -> dict[str, Any]:
    """``[tool.vbench.<section>]`` of ``path`` (empty without a file or without the table).

    The file is read as every file vbench reads is (a regular file of at most
    16 MiB, UTF-8 with or without a byte-order mark); ``/dev/null`` stands for
    an empty file, i.e. no settings.

    Raises:
        UsageError: the file cannot be read or is not TOML, or ``tool``,
            ``tool.vbench`` or the section is not a table.
    """
    if path is None or _is_devnull(Path(path)):
        return {}
    name = show_path(path)
    text = read_text(path, "config", SMALL_CAP)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{name} is not valid TOML: {str(e).splitlines()[0] if str(e) else e}") from None
    except (ValueError, RecursionError):  # an integer of thousands of digits; arrays nested thousands deep
        raise UsageError(f"{name} is not valid TOML: a value too large or nested too deeply") from None
    node: Any = doc
    for depth, key in enumerate(("tool", "vbench", section), start=1):
        if key not in node:
            return {}
        node = node[key]
        if not isinstance(node, dict):
            table = ".".join(("tool", "vbench", section)[:depth])
            raise UsageError(f"{name}: [{table}] must be a table; got {show(node)}")
    return node
