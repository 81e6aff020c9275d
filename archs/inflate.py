"""Inflation: bootstrap a 3D network from the weights of its 2D counterpart.

Carreira & Zisserman (CVPR 2017, sec. 2.2): "repeating the weights of the 2D
filters N times along the time dimension, and rescaling them by dividing by N".
The rescaling keeps the "boring-video fixed point": on a clip made of one image
repeated in time, every inflated conv returns, at each time step away from the
temporal padding, exactly what the 2D conv returns on that image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["inflate_conv_weight", "inflate_from_2d", "inflate_state_dict"]


def inflate_conv_weight(weight_2d: Tensor, time: int) -> Tensor:
    """(O, I, H, W) -> (O, I, time, H, W): repeated ``time`` times and divided by ``time``."""
    if weight_2d.ndim != 4:
        raise ValueError(f"expected a 4-d conv weight, got shape {tuple(weight_2d.shape)}")
    if time < 1:
        raise ValueError(f"time must be positive, got {time}")
    return weight_2d.unsqueeze(2).repeat(1, 1, time, 1, 1) / time


def inflate_state_dict(state_2d: dict[str, Tensor], model_3d: nn.Module) -> dict[str, Tensor]:
    """A state dict for ``model_3d`` made from a 2D network's, matched by name.

    5-d weights are inflated from their 4-d counterparts (the temporal extent is
    read from the 3D weight); every other tensor (BN, biases, linear layers) must
    have the same shape in both and is copied.

    Raises:
        KeyError: if a tensor of the 3D network has no 2D counterpart.
        ValueError: if shapes do not correspond.
    """
    out: dict[str, Tensor] = {}
    for name, target in model_3d.state_dict().items():
        if name not in state_2d:
            raise KeyError(f"2D state dict has no '{name}'")
        src = state_2d[name]
        if target.ndim == 5 and src.ndim == 4:
            src = inflate_conv_weight(src, target.shape[2])
        if src.shape != target.shape:
            raise ValueError(f"'{name}': 2D shape {tuple(src.shape)} does not inflate to {tuple(target.shape)}")
        out[name] = src.to(dtype=target.dtype)
    return out


@torch.no_grad()
def inflate_from_2d(model_3d: nn.Module, model_2d: nn.Module) -> nn.Module:
    """Load ``model_2d``'s weights into ``model_3d`` by inflation; returns ``model_3d``."""
    model_3d.load_state_dict(inflate_state_dict(model_2d.state_dict(), model_3d))
    return model_3d
