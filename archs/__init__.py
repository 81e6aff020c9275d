"""vbench's architecture registry: video backbones of three papers, built from data.

Importing this package registers every family (explicit imports, no directory
scanning). ``archs`` knows nothing of measuring: it builds models. What a
registered architecture declares and what its model provides (the model
contract) is written in :mod:`archs._registry`.
"""

from archs import inception, resnet  # noqa: F401  (registers the families)
from archs._blocks import ConvKind, ConvPart, VideoClassifier
from archs._published import PublishedResult, published_for, published_table
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

__all__ = [
    "SPLIT_POINTS",
    "ArchConfig",
    "ArchSpec",
    "ConvKind",
    "ConvPart",
    "Family",
    "PublishedResult",
    "UnknownArchError",
    "Variant",
    "VideoClassifier",
    "create_model",
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
    "register_arch",
]
