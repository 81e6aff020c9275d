r"""What weights carry and what a family declares about them: the leaf of ``archs``' weights.

A family's file declares, for each of its architectures, a :class:`Pretrained`:
the preprocessing and evaluation protocol of the architecture's reference, and
the checkpoint :class:`Layout`\ s it loads (each a key map from our state dict to
the checkpoint's, with that checkpoint's own preprocessing and protocol). The
generic reader (:mod:`archs.weights`) knows no family: it tries the layouts a
spec declares. Evaluation protocols (:class:`Protocol`) are declared the same
way, by the family whose paper or model zoo defines them, and
:func:`list_protocols` gathers them for ``vbench evaluate``.

This module imports nothing of ``archs`` and no torch, so that every family
file, the registry and the torch-free commands can import it without a cycle.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "PYTORCHVIDEO_BOTTLENECK",
    "KeyMap",
    "Layout",
    "Preprocess",
    "Pretrained",
    "Protocol",
    "WeightsError",
    "WeightsInfo",
    "get_protocol",
    "identity",
    "list_protocols",
    "pytorchvideo_net_key",
    "register_protocol",
]


class WeightsError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message is one line naming the first problem."""


@dataclass(frozen=True)
class Preprocess:
    """How clips were prepared for the weights (torchvision's weights ``transforms`` metadata, as data).

    Attributes:
        mean: Per-channel mean, applied after pixels are scaled to [0, 1]; scaling to
            [-1, 1] is ``mean = std = (0.5, 0.5, 0.5)``.
        std: Per-channel standard deviation, likewise.
        resize: An int resizes the short side to it (aspect kept); ``(h, w)``
            resizes to exactly that.
        crop: Side of the square crop taken from the resized frames.
        frames: Frames per clip.
        frame_stride: Use every k-th decoded frame.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: tuple[int, int] | int
    crop: int
    frames: int
    frame_stride: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, ints, floats), as :func:`save_weights` stores it."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize if isinstance(self.resize, int) else list(self.resize),
            "crop": self.crop,
            "frames": self.frames,
            "frame_stride": self.frame_stride,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocess:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: a missing field or a value of the wrong type or range.
        """

        def floats(field: str) -> tuple[float, float, float]:
            v = data.get(field)
            if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(_is_number(x) for x in v):
                raise ValueError(f"preprocess {field} must be 3 numbers, got {v!r}")
            if not all(math.isfinite(x) for x in v) or (field == "std" and not all(x > 0 for x in v)):
                raise ValueError(
                    f"preprocess {field} must be finite{' and positive' if field == 'std' else ''}, got {v!r}"
                )
            return (float(v[0]), float(v[1]), float(v[2]))

        def positive(field: str, v: Any = None) -> int:
            v = data.get(field) if v is None else v
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"preprocess {field} must be a positive integer, got {v!r}")
            return v

        resize = data.get("resize")
        if isinstance(resize, (list, tuple)) and len(resize) == 2:
            size: tuple[int, int] | int = (positive("resize", resize[0]), positive("resize", resize[1]))
        else:
            size = positive("resize")
        return cls(
            mean=floats("mean"),
            std=floats("std"),
            resize=size,
            crop=positive("crop"),
            frames=positive("frames"),
            frame_stride=positive("frame_stride"),
        )


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
"""torchvision's ``VideoClassification`` mean (Kinetics-400), also used by VMZ and the IG-65M port."""
KINETICS_STD = (0.22803, 0.22145, 0.216989)
"""torchvision's ``VideoClassification`` standard deviation."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's mean (torchvision's image models; Video Swin)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's standard deviation."""

PYTORCHVIDEO_BOTTLENECK = {
    "conv1": "branch2.conv_a",
    "bn1": "branch2.norm_a",
    "conv2": "branch2.conv_b",
    "bn2": "branch2.norm_b",
    "conv3": "branch2.conv_c",
    "bn3": "branch2.norm_c",
    "downsample.0": "branch1_conv",
    "downsample.1": "branch1_norm",
}
"""The children of a bottleneck block as the ResNet families here name them (``conv1``..``bn3`` on the residual
branch, ``downsample.0``/``.1`` the projection shortcut's conv and BN) -> pytorchvideo's ``BottleneckBlock`` and
``ResBlock`` names (``pytorchvideo/models/resnet.py``), which its CSN and SlowFast checkpoints are keyed by."""


def pytorchvideo_net_key(
    key: str, stem: Mapping[str, str], head: Mapping[str, str], block: Mapping[str, str] | None = None
) -> str | None:
    """Our key -> the key of pytorchvideo's single-pathway ``Net`` (its CSN, X3D and ResNets), or None.

    Both sides are a stem, four stages and a head. Our ``stem.<child>`` is
    ``blocks.0.<stem[child]>``; our top-level ``<m>`` after the stages is
    ``head[m]``; our ``layer<s>.<b>.<child>`` (s from 1) is
    ``blocks.<s>.res_blocks.<b>.<name>``, with the name from ``block`` where it
    has the child, else from :data:`PYTORCHVIDEO_BOTTLENECK`. A child that has
    children of its own is looked up with its first one (``downsample.0``,
    ``se.fc1``), and what is left must be the parameter's own name. A key that
    the tables do not name has no counterpart.
    """
    names = ChainMap(dict(block or {}), PYTORCHVIDEO_BOTTLENECK)
    first, *rest = key.split(".")
    if first == "stem" and len(rest) >= 2 and rest[0] in stem:
        return ".".join(["blocks.0", stem[rest[0]], *rest[1:]])
    if first in head:
        return ".".join([head[first], *rest])
    if not first.startswith("layer") or len(rest) < 3:
        return None
    name, tail = rest[1], rest[2:]
    if f"{name}.{tail[0]}" in names:
        name, tail = f"{name}.{tail[0]}", tail[1:]
    if name not in names or len(tail) != 1:
        return None
    return f"blocks.{first[len('layer') :]}.res_blocks.{rest[0]}.{names[name]}.{tail[0]}"


# ---------------------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """The views of a video: ``clips`` spread in time (``None``: the whole video) x ``crops`` along the long side.

    Attributes:
        name: The preset's name (``vbench evaluate --protocol``).
        clips: Clips per video, uniformly spaced; ``None`` runs the model once on the whole video.
        crops: Crops per clip along the long side (1: the centre; 3: both ends and the centre).
        frames: The clip length the protocol fixes (``None``: the weights' own).
        source: Where the protocol comes from (paper and section, or model-zoo file).
    """

    name: str
    clips: int | None
    crops: int
    frames: int | None = None
    source: str = ""

    def describe(self) -> str:
        clips = "whole video" if self.clips is None else f"{self.clips} clip{'s' * (self.clips != 1)}"
        return f"{clips} x {self.crops} crop{'s' * (self.crops != 1)}"


_PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add an evaluation preset; registering the same one twice is harmless, another under its name raises."""
    known = _PROTOCOLS.setdefault(protocol.name, protocol)
    if known != protocol:
        raise ValueError(f"protocol '{protocol.name}' is already registered as {known}")
    return protocol


def list_protocols() -> dict[str, Protocol]:
    """Every registered preset by name, in registration order (import ``archs``' families first)."""
    return dict(_PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The preset ``name``.

    Raises:
        KeyError: an unknown name.
    """
    return _PROTOCOLS[name]


# Presets of no one family: the quickest check, and the multi-view protocol that several model zoos share.
SINGLE = register_protocol(Protocol("single", 1, 1, source="one centre clip, one centre crop (clip-level accuracy)"))
# The multi-view protocol of the PySlowFast, PyTorchVideo and MMAction2 model zoos (NUM_ENSEMBLE_VIEWS 10,
# NUM_SPATIAL_CROPS 3; MMAction2 ThreeCrop): 10 uniform clips x 3 crops along the long side.
MULTI_VIEW = register_protocol(
    Protocol("slowfast", 10, 3, source="PySlowFast/PyTorchVideo/MMAction2 model zoos (10 clips x 3 crops)")
)


# ---------------------------------------------------------------------------------------- layouts

KeyMap = Callable[[str], "str | None"]
"""Our key -> the checkpoint's key for it (None: the layout has no counterpart)."""


def identity(key: str) -> str | None:
    """The key map of a checkpoint whose keys are ours."""
    return key


@dataclass(frozen=True)
class Layout:
    """One way a checkpoint of an architecture is written: its keys, and how it was trained and evaluated.

    Attributes:
        name: The layout's name, recorded in :class:`WeightsInfo` (``"torchvision"``, ``"piergiaj-i3d"``).
        to_ref: Our state-dict key -> the checkpoint's key.
        preprocess: The preprocessing the checkpoint was trained with.
        protocol: The name of the :class:`Protocol` its reference evaluated with.
        prepare: Rearranges the checkpoint's tensors before keys are mapped (a fused
            ``qkv`` split in three, say); ``None``: used as read.
        pattern: A regular expression its keys match, to name the layout when a
            checkpoint fits no layout of the architecture asked for.
        url: Where its publisher serves it (``create_model(name, weights="torchvision")``).
    """

    name: str
    to_ref: KeyMap
    preprocess: Preprocess
    protocol: str
    prepare: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
    pattern: str = ""
    url: str = ""


@dataclass(frozen=True)
class Pretrained:
    """What a family's file says about an architecture's weights (timm's ``pretrained_cfg``, as data).

    Attributes:
        preprocess: What the architecture's reference (or paper) trained with: the
            preprocessing of a model without weights and of vbench's own checkpoints.
        protocol: The :class:`Protocol` its reference evaluated with.
        layouts: The checkpoint layouts it loads, besides vbench's own.
    """

    preprocess: Preprocess
    protocol: str
    layouts: tuple[Layout, ...] = ()


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from and how its inputs must be prepared (``model.pretrained_cfg``).

    Attributes:
        layout: The :class:`Layout`'s name (``"vbench"`` for our own).
        source: The checkpoint's path, ``"torchvision"``, or ``"<state dict>"``.
        num_classes: Logits of the checkpoint's classifier.
        preprocess: The preprocessing the weights were trained with.
        protocol: The protocol the weights' reference evaluated with.
        arch_kwargs: The builder options the weights fit (``num_classes`` apart): a vbench checkpoint's
            recorded ones, and those given.
    """

    layout: str
    source: str
    num_classes: int
    preprocess: Preprocess
    protocol: str = "single"
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
