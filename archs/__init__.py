"""vbench's architecture registry: video backbones of three papers, built from data.

The first use of the registry (any name below but the published results)
imports the model families, which registers them (explicit imports, no
directory scanning); the published results alone need no torch, so the
commands that only read saved runs (``vbench report`` tables) never import it.
``archs`` knows nothing of measuring: it builds models. What a registered
architecture declares and what its model provides (the model contract) is
written in :mod:`archs._registry`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archs._published import PublishedResult, published_for, published_table

if TYPE_CHECKING:
    from archs._blocks import ConvKind, ConvPart, VideoClassifier
    from archs._factory import create_model
    from archs._registry import (
        ArchConfig,
        ArchSpec,
        Family,
        UnknownArchError,
        Variant,
        get_arch,
        get_family,
        list_archs,
        list_families,
        register_arch,
    )
    from archs._weights import (
        Layout,
        Preprocess,
        Pretrained,
        Protocol,
        WeightsError,
        WeightsInfo,
        get_protocol,
        list_protocols,
        register_protocol,
    )
    from archs.inception import SPLIT_POINTS, inception_v1_2d
    from archs.inflate import inflate_conv_weight, inflate_from_2d, inflate_state_dict
    from archs.weights import default_preprocess, publishers, read_weights, save_weights

_WHERE = {
    **dict.fromkeys(("ConvKind", "ConvPart", "VideoClassifier"), "archs._blocks"),
    **dict.fromkeys(
        (
            "ArchConfig",
            "ArchSpec",
            "Family",
            "UnknownArchError",
            "Variant",
            "get_arch",
            "get_family",
            "get_protocol",
            "list_archs",
            "list_families",
            "list_protocols",
            "register_arch",
        ),
        "archs._registry",
    ),
    **dict.fromkeys(("SPLIT_POINTS", "inception_v1_2d"), "archs.inception"),
    **dict.fromkeys(("inflate_conv_weight", "inflate_from_2d", "inflate_state_dict"), "archs.inflate"),
    **dict.fromkeys(
        (
            "Layout",
            "Preprocess",
            "Pretrained",
            "Protocol",
            "WeightsError",
            "WeightsInfo",
            "get_protocol",
            "list_protocols",
            "register_protocol",
        ),
        "archs._weights",
    ),
    **dict.fromkeys(("default_preprocess", "publishers", "read_weights", "save_weights"), "archs.weights"),
    "create_model": "archs._factory",
}


def __getattr__(name: str) -> Any:
    """The registry and the models, imported (and the families registered) on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'archs' has no attribute {name!r}")
    importlib.import_module("archs._factory")  # imports (and so registers) every family
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "SPLIT_POINTS",
    "ArchConfig",
    "ArchSpec",
    "ConvKind",
    "ConvPart",
    "Family",
    "Layout",
    "Preprocess",
    "Pretrained",
    "Protocol",
    "PublishedResult",
    "UnknownArchError",
    "Variant",
    "VideoClassifier",
    "WeightsError",
    "WeightsInfo",
    "create_model",
    "default_preprocess",
    "get_arch",
    "get_family",
    "get_protocol",
    "inception_v1_2d",
    "inflate_conv_weight",
    "inflate_from_2d",
    "inflate_state_dict",
    "list_archs",
    "list_families",
    "list_protocols",
    "published_for",
    "published_table",
    "publishers",
    "read_weights",
    "register_arch",
    "register_protocol",
    "save_weights",
]
