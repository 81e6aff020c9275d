"""The architecture registry: register, list, get, create.

Modelled on timm's registry and torchvision's weights metadata: a builder
function is registered under its own name together with a frozen
:class:`ArchSpec`, so that everything a harness needs to know before building
a model (family, inputs, paper, published results) is readable without
building it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from archs._published import PublishedResult, published_for

__all__ = [
    "ArchSpec",
    "UnknownArchError",
    "create_model",
    "get_arch",
    "list_archs",
    "list_families",
    "register_arch",
]

Shape = tuple[int, int, int, int]
"""An input clip without the batch dimension: (C, T, H, W)."""

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ArchSpec:
    """What is known about an architecture without building it.

    Attributes:
        name: Registry key, the builder function's name.
        family: Family name shared by related architectures (``"i3d"``, ``"resnet3d"``...).
        builder: The registered function; ``builder(**kwargs)`` returns the model.
        default_input: The paper's input clip (C, T, H, W).
        min_input: The smallest clip (C, T, H, W) the model accepts with default kwargs.
        stages: Temporal/spatial type of each stage or block in order, as
            ``(stage_name, kind)`` pairs with kind one of ``"3d"``, ``"2d"``,
            ``"(2+1)d"`` or ``"sep"`` (separable). Empty when not meaningful.
        paper: The reference for the definition.
        description: One line on what distinguishes this architecture.
        published: Published results for this architecture, from ``published.json``.
    """

    name: str
    family: str
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    default_input: Shape
    min_input: Shape
    stages: tuple[tuple[str, str], ...]
    paper: str
    description: str = ""
    published: tuple[PublishedResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (everything except the builder)."""
        return {
            "name": self.name,
            "family": self.family,
            "default_input": list(self.default_input),
            "min_input": list(self.min_input),
            "stages": [list(s) for s in self.stages],
            "paper": self.paper,
            "description": self.description,
            "published": [p.to_dict() for p in self.published],
        }


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


def register_arch(
    *,
    family: str,
    default_input: Shape,
    min_input: Shape,
    paper: str,
    stages: Iterable[tuple[str, str]] = (),
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Register a builder under its function name.

    Raises:
        ValueError: if the name is already registered.
    """

    def decorator(fn: Builder) -> Builder:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"architecture '{name}' is already registered")
        _REGISTRY[name] = ArchSpec(
            name=name,
            family=family,
            builder=fn,
            default_input=tuple(default_input),  # type: ignore[arg-type]
            min_input=tuple(min_input),  # type: ignore[arg-type]
            stages=tuple(tuple(s) for s in stages),  # type: ignore[misc]
            paper=paper,
            description=description,
            published=published_for(name),
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


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the architecture ``name``; keyword overrides that are None are dropped.

    Dropping None lets a command line pass every option through with a default of
    None, as timm's ``create_model`` does.
    """
    spec = get_arch(name)
    return spec.builder(**{k: v for k, v in kwargs.items() if v is not None})
