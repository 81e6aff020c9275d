"""Evaluation protocols: the named views (clips x crops) a model is evaluated with, and ``--clips``/``--crops``.

Each family's file declares its own protocols and says where they come from (:func:`archs.list_protocols`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import archs
from bench.errors import UsageError

if TYPE_CHECKING:
    from archs import Protocol

__all__ = ["MAX_CLIPS", "protocols", "resolve_protocol"]


def protocols() -> dict[str, Protocol]:
    """Every preset, by name: the ones each family's file declares (:func:`archs.list_protocols`)."""
    return archs.list_protocols()


MAX_CLIPS = 300
"""Most clips per video a protocol may take (the papers use 1 to 115; 300 is ten a second of a 30 s clip)."""


def resolve_protocol(name: str, clips: int | None = None, crops: int | None = None) -> Protocol:
    """The preset ``name`` with ``--clips``/``--crops`` overriding its counts (named ``custom`` then).

    Raises:
        UsageError: an unknown name, or clips/crops below 1.
    """
    presets = protocols()
    if name not in presets:
        raise UsageError(f"unknown protocol '{name}'; choose from {', '.join(presets)}")
    for value, what, most in ((clips, "--clips", MAX_CLIPS), (crops, "--crops", 3)):
        if value is not None and not 1 <= value <= most:
            raise UsageError(f"{what} must be from 1 to {most}; got {value}")
    base = presets[name]
    if clips is None and crops is None:
        return base
    return dataclasses.replace(
        base,
        name="custom",
        clips=clips if clips is not None else base.clips,
        crops=crops if crops is not None else base.crops,
        source=f"{name} with --clips/--crops",
    )
