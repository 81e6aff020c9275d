"""``create_model``: above the families, it imports every one of them (which registers them) and builds.

A new family is one file in ``archs/`` and one import line here; nothing else in
``archs`` or ``bench`` names it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

import archs.csn
import archs.inception
import archs.mvit
import archs.resnet
import archs.slowfast
import archs.swin3d
import archs.timesformer
import archs.tsm
import archs.videomae
import archs.x3d
from archs._registry import get_arch
from archs.weights import WeightsSource, load_weights_into, read_weights

__all__ = ["FAMILY_MODULES", "create_model"]

FAMILY_MODULES = (
    archs.inception,
    archs.resnet,
    archs.x3d,
    archs.csn,
    archs.slowfast,
    archs.tsm,
    archs.timesformer,
    archs.videomae,
    archs.mvit,
    archs.swin3d,
)
"""The families' files, in the order their architectures are registered."""


def create_model(name: str, weights: WeightsSource | None = None, **kwargs: Any) -> nn.Module:
    """Build the architecture ``name``; keyword overrides that are None are dropped.

    Dropping None lets a command line pass every option through with a default of
    None, as timm's ``create_model`` does.

    Args:
        name: A registered architecture.
        weights: A checkpoint to load (a path, ``"torchvision"`` for torchvision's
            published weights, or a state dict), in any layout its family declares
            or vbench's own (:func:`archs.weights.read_weights`); loaded strictly.
            Without ``num_classes`` the checkpoint's is used. The model's
            ``pretrained_cfg`` (timm's name) is then its
            :class:`~archs._weights.WeightsInfo`: layout, source, classes,
            preprocessing, protocol.
        **kwargs: The architecture's options.

    Raises:
        UnknownArchError: an unregistered name.
        archs.WeightsError: weights that cannot be read or do not fit (one line).
    """
    spec = get_arch(name)
    options = {k: v for k, v in kwargs.items() if v is not None}
    if weights is None:
        return spec.builder(**options)
    info, state = read_weights(name, weights, **options)
    model = spec.builder(**{"num_classes": info.num_classes, **info.arch_kwargs, **options})
    return load_weights_into(model, info, state)
