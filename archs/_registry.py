"""The architecture registry: register, list, get, create.

Modelled on timm's registry (``model_args``, ``default_cfg``) and torchvision's
weights metadata: each architecture is one declaration, a function registered
under its own name that takes the architecture's options (``num_classes``,
``split``, ``frames``...) and returns its configuration (an :class:`ArchConfig`).
The configuration both builds the model and says, without building it, what a
harness needs to know: the paper's input, the smallest valid input, the
temporal kind of each stage. Metadata that depends on an option is derived from
it: ``get_arch("i3d_top_heavy").stages_for(split="Mixed_3b")``,
``get_arch("r2d_18").default_input_for(frames=8)``.

What a family's file says about an architecture's weights (its reference's
preprocessing and evaluation protocol, the checkpoint layouts it loads) is part
of the declaration too (``register_arch(pretrained=...)``, :mod:`archs._weights`);
``create_model(name, weights=...)`` (:mod:`archs._factory`, above the families)
loads a checkpoint through it.

Plugins may register a plain builder instead (a function that returns the
model), with its metadata given to :func:`register_arch`; its metadata then
does not depend on options.

The model contract
------------------
Every registered architecture builds a ``torch.nn.Module`` that:

- takes a clip ``(B, C, T, H, W)`` (C = 3) of at least ``spec.min_input`` and
  returns logits ``(B, num_classes)``, no softmax;
- takes ``num_classes`` (default 400) as an option and has it as
  ``model.num_classes``;
- exposes ``model.forward_features(x)``, the feature extractor, returning a map
  ``(B, model.num_features, t, h, w)``; ``model.forward_head(f)``, from that map
  to the logits; and ``model.classifier``, the layer that produces the logits
  (its ``out_features`` or ``out_channels`` is ``num_classes``);
  ``model(x) == model.forward_head(model.forward_features(x))``.

The families' networks inherit these from :class:`archs._blocks.VideoClassifier`;
``tests/test_design_archs.py`` checks every registered architecture against them.
A new family also names a :class:`Family` (its colour and role in reports) and,
where its paper compares 2D/3D variants, gives each architecture a
:class:`Variant`, so that reports draw it without being told its name.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from torch import nn

from archs._published import PublishedResult, published_for
from archs._weights import KINETICS_MEAN, KINETICS_STD, Preprocess, Pretrained

__all__ = [
    "ArchConfig",
    "ArchSpec",
    "ClassesOption",
    "CroppedClip",
    "Family",
    "UnknownArchError",
    "Variant",
    "get_arch",
    "get_family",
    "list_archs",
    "list_families",
    "register_arch",
]

Shape = tuple[int, int, int, int]
"""An input clip without the batch dimension: (C, T, H, W)."""

Stages = tuple[tuple[str, str], ...]
"""``(stage_name, kind)`` pairs; kind is a :class:`~archs._blocks.ConvKind` value (``"3d"``, ``"2d"``...)."""

Declaration = TypeVar("Declaration", bound=Callable[..., Any])
_Options = TypeVar("_Options", bound="ClassesOption")


@runtime_checkable
class ArchConfig(Protocol):
    """The one configuration of an architecture: it builds the model and states its inputs and stages."""

    @property
    def default_input(self) -> Shape:
        """The paper's input clip (C, T, H, W)."""
        ...

    @property
    def min_input(self) -> Shape:
        """The smallest clip (C, T, H, W) the model accepts."""
        ...

    @property
    def stages(self) -> Stages:
        """Temporal/spatial kind of each stage or block, in order (empty when not meaningful)."""
        ...

    def build(self) -> nn.Module:
        """The model (randomly initialised)."""
        ...


class ClassesOption:
    """For a configuration (a frozen dataclass with a ``num_classes`` field) whose one option is its classes.

    Its :meth:`with_options` is what the architecture's declaring function passes
    its keywords to, so that any other keyword is a TypeError there.
    """

    num_classes: int
    __dataclass_fields__: ClassVar[dict[str, Any]]  # the subclass is a dataclass, which replace() needs

    def with_options(self: _Options, *, num_classes: int | None = None) -> _Options:
        """This configuration with ``num_classes`` logits (unchanged when None); any other keyword is a TypeError."""
        return replace(self, num_classes=self.num_classes if num_classes is None else num_classes)


class CroppedClip:
    """For a configuration whose paper input is ``frames`` RGB frames of ``crop`` x ``crop`` (its fields)."""

    frames: int
    crop: int

    @property
    def default_input(self) -> Shape:
        """(3, frames, crop, crop)."""
        return (3, self.frames, self.crop, self.crop)


@dataclass(frozen=True)
class Family:
    """How reports show a family of architectures.

    Attributes:
        name: The family name of the specs (``"mc"``).
        color: Its colour in every figure.
        mixed: Mixed 2D/3D networks: a report of runs that hold one draws the
            mixed-variants figure.
        series: Where the family's members form a series in the mixed-variants
            figure (MC2 ... MC5), the legend of the line that joins them in
            :attr:`Variant.order`; empty for none.
        marker: The marker of that line.
    """

    name: str
    color: str = "#7f7f7f"
    mixed: bool = False
    series: str = ""
    marker: str = "o"


@dataclass(frozen=True)
class Variant:
    """An architecture's place in its paper's comparison of 2D/3D variants (the mixed-variants figure).

    Attributes:
        comparison: The comparison it belongs to, one panel of the figure (its title).
        order: Its position in the comparison.
        label: Its legend entry where the figure draws it as a line of its own
            (a split sweep, a reference level); empty: the family's.
        color: That line's colour; empty: the family's.
        splits: The values of its ``split`` option that the figure sweeps (the
            Bottom-/Top-Heavy I3Ds); empty: drawn at its defaults.
    """

    comparison: str
    order: int
    label: str = ""
    color: str = ""
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchSpec:
    """What is known about an architecture without building it.

    Attributes:
        name: Registry key, the declaring function's name.
        family: Family name shared by related architectures (``"i3d"``, ``"r3d"``...).
        builder: ``builder(**kwargs)`` returns the model (named as the architecture).
        configure: ``configure(**kwargs)`` returns the :class:`ArchConfig` for those options.
        default_input: The paper's input clip (C, T, H, W), with default options.
        min_input: The smallest clip (C, T, H, W) the model accepts with default options.
        stages: Temporal/spatial type of each stage or block in order, as
            ``(stage_name, kind)`` pairs with kind one of ``"3d"``, ``"2d"``,
            ``"(2+1)d"``, ``"sep"`` (separable) or ``"r2d"`` (time folded),
            with default options. Empty when not meaningful.
        paper: The reference for the definition.
        description: One line on what distinguishes this architecture.
        published: Published results for this architecture, from ``published.json``.
        variant: Its place in its paper's comparison of 2D/3D variants, if any.
        declare_pretrained: ``declare_pretrained(config)`` returns the
            :class:`~archs._weights.Pretrained` of the configuration (its family's
            file declares it); see :meth:`pretrained`.
    """

    name: str
    family: str
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    configure: Callable[..., ArchConfig] = field(repr=False, compare=False)
    default_input: Shape
    min_input: Shape
    stages: Stages
    paper: str
    description: str = ""
    published: tuple[PublishedResult, ...] = ()
    variant: Variant | None = None
    declare_pretrained: Callable[[ArchConfig], Pretrained] | None = field(default=None, repr=False, compare=False)

    def config(self, **kwargs: Any) -> ArchConfig:
        """The configuration for these options; options that are None are dropped (as by ``create_model``).

        Raises:
            TypeError: an option the architecture does not take.
            ValueError: a value it does not accept (``split="Mixed_9z"``).
        """
        return self.configure(**{k: v for k, v in kwargs.items() if v is not None})

    def default_input_for(self, **kwargs: Any) -> Shape:
        """The paper's input with these options: R2D built with ``frames=8`` takes 3x8x112x112.

        Raises as :meth:`config`.
        """
        return self.config(**kwargs).default_input

    def min_input_for(self, **kwargs: Any) -> Shape:
        """The smallest valid input with these options: R2D built with ``frames=8`` needs 8 frames.

        Raises as :meth:`config`.
        """
        return self.config(**kwargs).min_input

    def stages_for(self, **kwargs: Any) -> Stages:
        """The kind of each stage with these options: a heavy I3D's follow its ``split``.

        Raises as :meth:`config`.
        """
        return self.config(**kwargs).stages

    def pretrained(self, **kwargs: Any) -> Pretrained:
        """Its reference's preprocessing and protocol, and the checkpoint layouts it loads, with these options.

        An architecture whose family declares none (a plugin's) gets a crop of its
        default input from frames resized by 8/7, the Kinetics mean and std,
        one clip of its frames, and no layout but vbench's own.

        Raises as :meth:`config`.
        """
        config = self.config(**kwargs)
        if self.declare_pretrained is not None:
            return self.declare_pretrained(config)
        _, frames, height, _ = config.default_input
        return Pretrained(Preprocess(KINETICS_MEAN, KINETICS_STD, round(height * 8 / 7), height, frames, 1), "single")

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (everything except the builder)."""
        return {
            "name": self.name,
            "family": self.family,
            "default_input": list(self.default_input),
            "min_input": list(self.min_input),
            "stages": [[name, str(kind)] for name, kind in self.stages],
            "paper": self.paper,
            "description": self.description,
            "published": [p.to_dict() for p in self.published],
        }


@dataclass(frozen=True)
class _Fixed:
    """The configuration of a plain builder registered with its metadata (a plugin's)."""

    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any]
    default_input: Shape
    min_input: Shape
    stages: Stages

    def build(self) -> nn.Module:
        return self.builder(**self.kwargs)


class UnknownArchError(KeyError):
    """Raised for a name that is not registered; the message names close matches."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown architecture '{name}'{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


_REGISTRY: dict[str, ArchSpec] = {}
_FAMILIES: dict[str, Family] = {}


def _shape(value: Iterable[int]) -> Shape:
    c, t, h, w = value
    return (c, t, h, w)


def _stages(value: Iterable[Sequence[str]]) -> Stages:
    return tuple((name, kind) for name, kind in value)


def _add_family(family: Family) -> None:
    known = _FAMILIES.setdefault(family.name, family)
    if known != family:
        raise ValueError(f"family '{family.name}' is already registered as {known}")


def _fixed(
    builder: Callable[..., nn.Module], default_input: Shape, min_input: Shape, stages: Stages
) -> Callable[..., ArchConfig]:
    """A plain builder's ``configure``: its metadata whatever the options."""

    def configure(**kwargs: Any) -> ArchConfig:
        return _Fixed(builder, kwargs, default_input, min_input, stages)

    return configure


def _builder(configure: Callable[..., ArchConfig]) -> Callable[..., nn.Module]:
    """A declaration's builder: the model of its configuration, named as the declaration."""

    @functools.wraps(configure)
    def builder(**kwargs: Any) -> nn.Module:
        return configure(**kwargs).build()

    return builder


def register_arch(
    *,
    family: str | Family,
    paper: str,
    description: str = "",
    variant: Variant | None = None,
    default_input: Shape | None = None,
    min_input: Shape | None = None,
    stages: Iterable[tuple[str, str]] = (),
    pretrained: Callable[[Any], Pretrained] | None = None,
) -> Callable[[Declaration], Declaration]:
    """Register a declaration (or a plain builder) under its function name; returns the function unchanged.

    A declaration takes the architecture's options and returns its
    :class:`ArchConfig`; inputs and stages come from the configuration.
    Without a declaration, pass ``default_input`` and ``min_input`` (and
    ``stages``): the function is then the builder itself, returning the model.

    Args:
        family: The family name, or a :class:`Family` (registered with it).
        paper: The reference for the definition.
        description: One line on what distinguishes it.
        variant: Its place in its paper's comparison of 2D/3D variants.
        default_input: A plain builder's paper input (C, T, H, W).
        min_input: A plain builder's smallest valid input.
        stages: A plain builder's stage kinds.
        pretrained: ``pretrained(config)`` returns what the family's file declares
            about the architecture's weights (:class:`~archs._weights.Pretrained`):
            its reference's preprocessing and protocol, and its checkpoint layouts.

    Raises:
        ValueError: if the name is already registered, a family of that name
            differs, or only one of default_input and min_input is given.
        TypeError: if a declaration does not return an :class:`ArchConfig`.
    """
    if (default_input is None) != (min_input is None):
        raise ValueError("a plain builder needs both default_input and min_input")

    def decorator(fn: Declaration) -> Declaration:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"architecture '{name}' is already registered")
        if default_input is not None and min_input is not None:
            configure = _fixed(fn, _shape(default_input), _shape(min_input), _stages(stages))
            builder: Callable[..., nn.Module] = fn
        else:
            configure, builder = fn, _builder(fn)
        config = configure()
        if not isinstance(config, ArchConfig):
            raise TypeError(f"{name}() returned {type(config).__name__}, not an ArchConfig")
        if isinstance(family, Family):
            _add_family(family)
        _REGISTRY[name] = ArchSpec(
            name=name,
            family=family.name if isinstance(family, Family) else family,
            builder=builder,
            configure=configure,
            default_input=_shape(config.default_input),
            min_input=_shape(config.min_input),
            stages=_stages(config.stages),
            paper=paper,
            description=description,
            published=published_for(name),
            variant=variant,
            declare_pretrained=pretrained,
        )
        return fn

    return decorator


def _natural_key(name: str) -> list[Any]:
    """Sort key that orders digits numerically: r3d_18 before r3d_34, mc2 before mc10."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


def _as_patterns(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def list_archs(
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    family: str | Iterable[str] | None = None,
) -> list[str]:
    """Registered names matching shell-style patterns, in natural order.

    Args:
        include: Pattern(s) a name must match (any of them); all names when None.
        exclude: Pattern(s) that remove a name.
        family: Family name pattern(s) the architecture's family must match.
    """
    inc, exc, fam = _as_patterns(include), _as_patterns(exclude), _as_patterns(family)
    names = []
    for name, spec in _REGISTRY.items():
        if inc and not any(fnmatch.fnmatchcase(name, p) for p in inc):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in exc):
            continue
        if fam and not any(fnmatch.fnmatchcase(spec.family, p) for p in fam):
            continue
        names.append(name)
    return sorted(names, key=_natural_key)


def list_families() -> list[str]:
    """The distinct family names, in natural order."""
    return sorted({s.family for s in _REGISTRY.values()}, key=_natural_key)


def get_family(name: str) -> Family:
    """The :class:`Family` registered under ``name``; a grey one with no role for a family nobody described."""
    return _FAMILIES.get(name) or Family(name)


def get_arch(name: str) -> ArchSpec:
    """The spec registered under ``name``.

    Raises:
        UnknownArchError: with close matches in its message.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        raise UnknownArchError(name, close) from None
