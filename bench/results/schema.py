"""The results schema: one tidy row per (arch, batch, frames, height, width, device, dtype, mode, options).

Rows are :class:`~bench.results.records.Row` dicts with the columns of the registry in
:mod:`bench.results.columns`, holding raw-enough numbers
(milliseconds and MiB with full precision; nothing rounded). ``gmacs``,
``gflops``, ``train_gmacs`` and ``activations_m`` are **per clip** (batch 1),
as published tables give them; latency is per iteration of the whole batch,
and ``clips_per_s = batch / latency``. Plain data: no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from bench.results.columns import KEY_COLUMNS
from bench.results.records import Config

__all__ = [
    "SCHEMA_VERSION",
    "clip_of",
    "config_key",
    "is_contended",
    "is_missing",
    "row_key",
]

SCHEMA_VERSION = 1


def row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of :data:`KEY_COLUMNS` as text: what identifies a row's configuration."""
    return tuple(str(row.get(c, "")) for c in KEY_COLUMNS)


def config_key(config: Config) -> tuple[str, ...]:
    """The key :func:`row_key` gives the row of this configuration."""
    fields = {**config.to_dict(), "arch_kwargs": json.dumps(dict(config.arch_kwargs), sort_keys=True)}
    return row_key(fields)


def clip_of(row: Mapping[str, Any]) -> str:
    """``"16x112x112"``: the clip of a row, spelt as published inputs are."""
    return f"{row.get('frames')}x{row.get('height')}x{row.get('width')}"


def is_missing(value: Any) -> bool:
    """None, "" and NaN all mean "not measured" (JSON, CSV cells and pandas spell it differently)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def is_contended(row: Mapping[str, Any]) -> bool:
    """A row read back from a file (CSV cells spell the flag as text) says it was contended."""
    return row.get("contended") in (True, "True", "true", 1)
