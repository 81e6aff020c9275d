"""Reading checkpoints into vbench's models, whatever layout their reference wrote them in.

This reader knows no family. Each family's file declares, per architecture, the
checkpoint layouts it loads (:class:`~archs._weights.Layout`: a key map, the
checkpoint's preprocessing and evaluation protocol) in its
:class:`~archs._weights.Pretrained`; vbench's own layout (our ``state_dict()``
keys, optionally saved by :func:`save_weights` with the architecture and its
preprocessing) fits every architecture. A checkpoint is recognised by its keys:
the layout that finds most of them wins, the family's own before vbench's when
both are our keys (a bare video ResNet state dict is ``torchvision`` or ``vmz``,
as its family says).

Loading is strict: every tensor of the model must come from the checkpoint with
its shape, and every tensor of the checkpoint must be used (BatchNorm's
``num_batches_tracked``, absent from old checkpoints, is the one exception). The
first problem raises :class:`~archs._weights.WeightsError`, one line, in the
checkpoint's own key names. ``num_classes`` is read from the classifier's shape
unless given.

``Preprocess`` has no frame rate: ``frame_stride`` counts decoded frames, and the
rates the layouts' docs give are what the frames were decoded at.

Reach these through ``archs`` (``archs.read_weights``, ``archs.create_model``),
which registers the families first; this module imports none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archs._registry import ArchSpec, get_arch, list_archs
from archs._weights import Layout, Preprocess, WeightsError, WeightsInfo, identity

__all__ = [
    "WeightsSource",
    "default_preprocess",
    "load_weights_into",
    "publishers",
    "read_weights",
    "save_weights",
]

WeightsSource = str | os.PathLike[str] | Mapping[str, Tensor]
"""A checkpoint path, ``"torchvision"`` (download torchvision's published weights), or a state dict."""

VBENCH = "vbench"
"""The name of vbench's own layout: our keys."""


def publishers() -> list[str]:
    """The names that ``weights=`` takes in place of a file: layouts whose publisher serves them (``torchvision``)."""
    return sorted({lay.name for n in list_archs() for lay in get_arch(n).pretrained().layouts if lay.url})


def default_preprocess(name: str, **options: Any) -> Preprocess:
    """What the architecture's reference (or paper) trained with, for a model without weights.

    Its family's file says (``ArchSpec.pretrained``); an architecture whose family
    says nothing (a plugin's) gets a crop of its default input from frames resized
    by 8/7, with the Kinetics mean and std.

    Raises:
        UnknownArchError: an unregistered name.
    """
    return get_arch(name).pretrained(**options).preprocess


def _candidates(spec: ArchSpec, options: Mapping[str, Any], saved_by_vbench: bool) -> list[Layout]:
    """The layouts a checkpoint for ``spec`` may be in: its family's, then vbench's (only vbench's if it says so)."""
    pretrained = spec.pretrained(**options)
    ours = Layout(VBENCH, identity, pretrained.preprocess, pretrained.protocol)
    return [ours] if saved_by_vbench else [*pretrained.layouts, ours]


def _known_layout(keys: list[str]) -> str | None:
    """Which layout a checkpoint's keys look like, and whose it is (for the error when it fits none asked for)."""
    layouts: dict[str, tuple[set[str], list[str], list[str]]] = {}  # pattern -> (layout names, archs, families)
    for name in list_archs():
        spec = get_arch(name)
        for layout in spec.pretrained().layouts:
            if layout.pattern:
                names, archs_, families = layouts.setdefault(layout.pattern, (set(), [], []))
                names.add(layout.name)
                archs_.append(name)
                families.extend(f for f in [spec.family] if f not in families)
    best, score = None, 0
    for pattern, (names, archs_, families) in layouts.items():
        n = sum(1 for k in keys if re.search(pattern, k))
        if n > score:
            whose = (
                archs_[0]
                if len(archs_) == 1
                else f"the {', '.join(families)} famil{'ies' if len(families) > 1 else 'y'}"
            )
            best, score = f"{' or '.join(sorted(names))}, for {whose}", n
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


def _load_safetensors(path: str) -> dict[str, Tensor]:
    """A Hugging Face ``save_pretrained`` folder (``model.safetensors``, or its shards) or one ``.safetensors`` file.

    The folder's ``config.json`` is not read: the architecture and its options say
    what the tensors must fit.
    """
    folder = os.path.isdir(path)
    index = os.path.join(path, "model.safetensors.index.json")
    if folder and os.path.isfile(index):
        try:
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise WeightsError(f"{index}: not a safetensors index ({_reason(e)})") from e
    elif folder:
        files = ["model.safetensors"]
        if not os.path.isfile(os.path.join(path, files[0])):
            raise WeightsError(
                f"{path}: a folder without model.safetensors (Hugging Face's save_pretrained writes one)"
            )
    else:
        files = [os.path.basename(path)]
        path = os.path.dirname(path)
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsError(
            f"{path}: reading safetensors needs the safetensors package (pip install safetensors)"
        ) from None
    state: dict[str, Tensor] = {}
    for name in files:
        file = os.path.join(path, name)
        try:
            state.update(load_file(file, device="cpu"))
        except FileNotFoundError:
            raise WeightsError(f"{file}: no such file") from None
        except Exception as e:
            raise WeightsError(f"{file}: not a safetensors file ({_reason(e)})") from e
    return state


def _load_file(path: str) -> Any:
    if os.path.isdir(path) or path.endswith(".safetensors"):
        return _load_safetensors(path)
    try:
        with _namespace_allowed():
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot read it ({e.strerror or _reason(e)})") from e
    except Exception as e:
        raise WeightsError(f"{path}: not a PyTorch checkpoint that loads with weights_only=True ({_reason(e)})") from e


def _download(spec: ArchSpec, options: Mapping[str, Any], publisher: str) -> Any:
    """A publisher's weights for the architecture (its layout's ``url``), through torch.hub's cache (hash checked)."""
    url = next((lay.url for lay in spec.pretrained(**options).layouts if lay.name == publisher and lay.url), "")
    if not url:
        names = [
            n
            for n in list_archs()
            if any(lay.name == publisher and lay.url for lay in get_arch(n).pretrained().layouts)
        ]
        raise WeightsError(f"{publisher}: publishes no weights for {spec.name} (only {', '.join(names)})")
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    except Exception as e:
        raise WeightsError(f"{publisher}: cannot download {url} ({_reason(e)})") from e


def _source(weights: WeightsSource) -> str:
    if isinstance(weights, Mapping):
        return "<state dict>"
    return os.fspath(weights)


_WRAPPERS = ("state_dict", "model", "model_state", "model_state_dict", "module", "net")
"""Keys under which training scripts keep the weights ({"state_dict": ...}, torchvision's references' {"model": ...})."""


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def _unwrap(source: str, obj: Any) -> tuple[Mapping[str, Any] | None, dict[str, Tensor]]:
    """(vbench metadata or None, the state dict with any ``module.`` or ``model.`` prefix removed)."""
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
    # DataParallel / DistributedDataParallel save under ``module.``; PySlowFast its PyTorchVideo models under ``model.``
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
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


def _prepared(layout: Layout, state: dict[str, Tensor]) -> dict[str, Tensor] | None:
    """The checkpoint as the layout reads it (its ``prepare`` applied); None when it is not in that layout."""
    if layout.prepare is None:
        return state
    try:
        return layout.prepare(dict(state))
    except (KeyError, ValueError, IndexError, RuntimeError):
        return None


def _choose(
    source: str, name: str, layouts: list[Layout], state: dict[str, Tensor], model: nn.Module
) -> tuple[Layout, dict[str, Tensor]]:
    """The layout whose keys the checkpoint holds most of (and the checkpoint as it reads it); an error naming what
    the checkpoint is when none fits."""
    ours = list(model.state_dict())
    best: tuple[int, Layout, dict[str, Tensor]] | None = None
    for layout in layouts:
        prepared = _prepared(layout, state)
        if prepared is None:
            continue
        score = sum(1 for k in ours if (ref := layout.to_ref(k)) is not None and ref in prepared)
        if score > 0 and (best is None or score > best[0]):
            best = (score, layout, prepared)
    if best is not None:
        return best[1], best[2]
    keys = list(state)
    known = _known_layout(keys)
    if known is not None:
        raise WeightsError(f"{source}: its keys are in layout {known}, which does not fit {name}")
    names = ", ".join(dict.fromkeys(lay.name for lay in layouts))
    raise WeightsError(f"{source}: no known layout ({names}) fits its keys for {name} (first key {keys[0]!r})")


def _convert(source: str, name: str, layout: Layout, model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
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
            possibly with a ``module.`` or ``model.`` prefix), a publisher's name
            (:func:`publishers`: ``"torchvision"`` downloads torchvision's published
            weights through torch.hub's cache), or a state dict.
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
    elif isinstance(weights, str) and weights in publishers():
        raw = _download(spec, options, weights)
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
    layouts = _candidates(spec, options, meta is not None)
    layout, state = _choose(source, name, layouts, state, model)
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

    preprocess = layout.preprocess
    if meta is not None and meta.get("preprocess") is not None:
        try:
            preprocess = Preprocess.from_dict(meta["preprocess"])
        except (ValueError, TypeError, AttributeError) as e:
            raise WeightsError(f"{source}: layout vbench, malformed preprocess ({_reason(e)})") from e
    kwargs = {k: v for k, v in options.items() if k != "num_classes"}
    return WeightsInfo(layout.name, source, num_classes, preprocess, layout.protocol, kwargs), converted


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
    if target.is_symlink():  # written through: the link's target is replaced, the link kept
        target = Path(os.path.realpath(target))
    if target.exists() and not target.is_file():  # a device or FIFO is never replaced (as root: /dev/null)
        raise WeightsError(f"{path}: not a regular file (a device, FIFO or socket); name a file")
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
