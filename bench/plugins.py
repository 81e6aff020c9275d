"""Plugins: modules imported before a run so that they can register more architectures.

Named with ``--plugin MODULE`` or in the ``VBENCH_PLUGINS`` environment
variable (comma-separated). Workers import the same modules.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from bench.errors import UsageError

__all__ = ["load_plugins"]


def load_plugins(names: Sequence[str] = ()) -> list[str]:
    """Import ``names`` and those of ``VBENCH_PLUGINS``; returns every module imported."""
    env = [n.strip() for n in os.environ.get("VBENCH_PLUGINS", "").split(",") if n.strip()]
    modules = list(dict.fromkeys([*env, *names]))
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UsageError(f"cannot import plugin '{name}': {e}") from None
    return modules
