"""Plugins: code imported before a run so that it can register more architectures.

Named with ``--plugin MODULE`` or ``--plugin path/to/file.py``, or in the
``VBENCH_PLUGINS`` environment variable (comma-separated). A plugin is code: it
runs in the vbench process and in every worker. The parent imports each plugin
and records where it was found; workers load exactly those files, by path,
never by searching a path that holds the working directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.errors import UsageError, first_line

__all__ = ["import_plugins", "load_plugins", "plugin_names"]


def plugin_names(names: Sequence[str] = ()) -> list[str]:
    """``VBENCH_PLUGINS`` first, then ``names``, without repeats."""
    env = [n.strip() for n in os.environ.get("VBENCH_PLUGINS", "").split(",") if n.strip()]
    return list(dict.fromkeys([*env, *names]))


def _is_path(name: str) -> bool:
    return name.endswith(".py") or os.sep in name or "/" in name


def _from_file(module: str, path: str, locations: Sequence[str] | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        module, path, submodule_search_locations=list(locations) if locations is not None else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load '{path}'")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(module, None)
        raise
    return mod


def _load_one(name: str) -> dict[str, Any]:
    """Import one plugin; return how a worker finds it again (module name, file, package folders)."""
    if _is_path(name):
        path = Path(name).resolve()
        if not path.is_file():
            raise UsageError(f"plugin '{name}': no such file")
        module = "vbench_plugin_" + re.sub(r"\W", "_", path.stem)
        _from_file(module, str(path))
        return {"name": name, "module": module, "path": str(path), "locations": None}
    mod = importlib.import_module(name)
    spec = getattr(mod, "__spec__", None)
    locations = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else None
    return {"name": name, "module": name, "path": getattr(mod, "__file__", None), "locations": locations}


class _HardExit(BaseException):
    """``os._exit`` called by a plugin while it is imported: caught, where the real one would end vbench
    at once, with the plugin's exit code and nothing said."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _hard_exit(code: int) -> None:
    raise _HardExit(code)


def _plugin_error(name: str, e: BaseException) -> UsageError:
    if isinstance(e, _HardExit):
        why = f"it called os._exit({e.code!r})"
    else:
        why = f"it called exit({e.code!r})" if isinstance(e, SystemExit) else first_line(e)
    return UsageError(f"cannot import plugin '{name}': {why}"[:500])


def load_plugins(names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Import ``names`` and those of ``VBENCH_PLUGINS``; returns what :func:`import_plugins` takes.

    Raises:
        UsageError: a plugin that cannot be found, fails to import, raises or exits.
    """
    import archs

    loaded = []
    for name in plugin_names(names):
        before = set(archs.list_archs())
        real_exit, os._exit = os._exit, _hard_exit  # type: ignore[assignment]
        try:
            loaded.append(_load_one(name))
        except UsageError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt, _HardExit) as e:
            raise _plugin_error(name, e) from None
        finally:
            os._exit = real_exit
        added = sorted(set(archs.list_archs()) - before)
        loaded[-1]["archs"] = added  # counted in another process: their builders are not vbench's code
        for arch in added:
            if not _NAME.fullmatch(arch):
                raise UsageError(
                    f"plugin '{name}' registered an architecture named {arch[:60]!r}; names are letters, digits "
                    "and _ . + - (they become file names, table cells and command-line arguments)"
                )
    return loaded


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")
"""What an architecture's name may hold: it is written into files, tables and commands."""


def import_plugins(plugins: Sequence[dict[str, Any]]) -> None:
    """In a worker or a counting process: load each plugin from the file the parent found."""
    for p in plugins:
        if p["module"] in sys.modules:
            continue
        if p.get("path") and "." not in p["module"]:
            _from_file(p["module"], p["path"], p.get("locations"))
        else:
            importlib.import_module(p["module"])
