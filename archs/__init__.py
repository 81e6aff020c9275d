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
    from archs._registry import (
        ArchConfig,
        ArchSpec,
        Family,
        UnknownArchError,
        Variant,
        create_model,
        get_arch,
        get_family,
        list_archs,
        list_families,
        register_arch,
    )
    from archs.inception import SPLIT_POINTS, inception_v1_2d
    from archs.inflate import inflate_conv_weight, inflate_from_2d, inflate_state_dict
    from archs.weights import (
        Preprocess,
        WeightsError,
        WeightsInfo,
        default_preprocess,
        read_weights,
        save_weights,
    )

_WHERE = {
    **dict.fromkeys(("ConvKind", "ConvPart", "VideoClassifier"), "archs._blocks"),
    **dict.fromkeys(
        (
            "ArchConfig",
            "ArchSpec",
            "Family",
            "UnknownArchError",
            "Variant",
            "create_model",
            "get_arch",
            "get_family",
            "list_archs",
            "list_families",
            "register_arch",
        ),
        "archs._registry",
    ),
    **dict.fromkeys(("SPLIT_POINTS", "inception_v1_2d"), "archs.inception"),
    **dict.fromkeys(("inflate_conv_weight", "inflate_from_2d", "inflate_state_dict"), "archs.inflate"),
    **dict.fromkeys(
        ("Preprocess", "WeightsError", "WeightsInfo", "default_preprocess", "read_weights", "save_weights"),
        "archs.weights",
    ),
}


def __getattr__(name: str) -> Any:
    """The registry and the models, imported (and the families registered) on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'archs' has no attribute {name!r}")
    importlib.import_module("archs.inception")  # registers the families
    importlib.import_module("archs.resnet")
    importlib.import_module("archs.mvit")
    importlib.import_module("archs.swin3d")
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
    "Preprocess",
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
    "inception_v1_2d",
    "inflate_conv_weight",
    "inflate_from_2d",
    "inflate_state_dict",
    "list_archs",
    "list_families",
    "published_for",
    "published_table",
    "read_weights",
    "register_arch",
    "save_weights",
]
