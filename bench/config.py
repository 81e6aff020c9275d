"""Settings from a TOML file: the ``[tool.vbench.<section>]`` tables of ``pyproject.toml``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.errors import UsageError

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


def tool_table(path: Path | None, section: str) -> dict[str, Any]:
    """``[tool.vbench.<section>]`` of ``path`` (empty without a file or without the table).

    Raises:
        UsageError: the file cannot be read or is not TOML.
    """
    if path is None:
        return {}
    try:
        doc = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"cannot read config '{path}': {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"'{path}' is not valid TOML: {e}") from None
    table = doc.get("tool", {}).get("vbench", {}).get(section, {})
    return table if isinstance(table, dict) else {}
