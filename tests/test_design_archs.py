"""The design of ``archs``: the model contract, one declaration per architecture, the convolution kinds' rules.

Driven by the registry: a new architecture is checked by being registered.
Shapes are checked on the meta device; the composition ``forward == head(features)``
with a real forward at each architecture's ``min_input``.
"""

import ast
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from graphs import first_cycle
from torch import nn

import archs
from archs import ConvKind, Family, Variant, _registry
from archs.inception import BLOCKS, SPLIT_POINTS

ALL = archs.list_archs()
K3D, K2D, R2P1D, SEP, FOLDED, SHIFT = (ConvKind(k) for k in ("3d", "2d", "(2+1)d", "sep", "r2d", "shift"))


def _meta(name, **kwargs):
    with torch.device("meta"):
        return archs.create_model(name, **kwargs)


# ---------------------------------------------------------------- the model contract


@pytest.mark.parametrize("name", ALL)
def test_every_architecture_meets_the_model_contract(name):
    spec = archs.get_arch(name)
    for classes in (400, 7):
        model = _meta(name, num_classes=classes).eval()  # shapes only; eval skips batch norm's statistics on meta
        assert model.num_classes == classes
        assert isinstance(model.num_features, int) and model.num_features > 0
        x = torch.empty(2, *spec.min_input, device="meta")
        features = model.forward_features(x)
        assert features.ndim == 5 and tuple(features.shape[:2]) == (2, model.num_features)
        assert tuple(model.forward_head(features).shape) == (2, classes)
        assert tuple(model(x).shape) == (2, classes)
        classifier = model.classifier
        assert isinstance(classifier, nn.Module) and any(m is classifier for m in model.modules())
        assert getattr(classifier, "out_features", getattr(classifier, "out_channels", None)) == classes


@pytest.mark.parametrize("name", ALL)
def test_forward_is_the_head_of_the_features(name):
    """A real forward at the smallest input: finite logits of the right shape, equal to head(features)."""
    torch.manual_seed(0)
    model = archs.create_model(name, num_classes=5).eval()
    x = torch.randn(2, *archs.get_arch(name).min_input)
    with torch.inference_mode():
        out = model(x)
        assert torch.equal(out, model.forward_head(model.forward_features(x)))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


# ---------------------------------------------------------------- one declaration: spec and build from one config


@pytest.mark.parametrize("name", ALL)
def test_spec_metadata_is_the_configuration_with_default_options(name):
    spec = archs.get_arch(name)
    config = spec.config()
    assert isinstance(config, archs.ArchConfig)
    assert spec.default_input == spec.default_input_for() == config.default_input
    assert spec.min_input == spec.min_input_for() == config.min_input
    assert spec.stages == spec.stages_for() == config.stages
    assert spec.builder.__name__ == name and spec.builder.__doc__ == spec.configure.__doc__


def _temporal_extent(module: nn.Module) -> int:
    """The largest temporal kernel of the convolutions in a block (1 for a 2D block)."""
    return max(m.kernel_size[0] for m in module.modules() if isinstance(m, nn.Conv3d))


@pytest.mark.parametrize(
    ("name", "split"), list(itertools.product(("i3d_bottom_heavy", "i3d_top_heavy"), SPLIT_POINTS))
)
def test_heavy_stages_follow_the_split_and_the_built_model(name, split):
    spec = archs.get_arch(name)
    low, high = (K3D, K2D) if name == "i3d_bottom_heavy" else (K2D, K3D)
    i = BLOCKS.index(split)
    stages = spec.stages_for(split=split)
    assert [b for b, _ in stages] == list(BLOCKS)
    assert [k for _, k in stages] == [low] * i + [high] * (len(BLOCKS) - i)
    model = _meta(name, split=split)
    for block, kind in stages:
        assert (_temporal_extent(getattr(model.features, block)) > 1) == kind.temporal, block


def test_heavy_default_split_is_mixed_4b():
    for name in ("i3d_bottom_heavy", "i3d_top_heavy"):
        spec = archs.get_arch(name)
        assert spec.stages == spec.stages_for(split="Mixed_4b") != spec.stages_for(split="Mixed_3b")


@pytest.mark.parametrize("frames", [1, 8, 16, 32])
def test_r2d_inputs_follow_frames(frames):
    spec = archs.get_arch("r2d_18")
    assert spec.default_input_for(frames=frames) == (3, frames, 112, 112)
    assert spec.min_input_for(frames=frames) == (3, frames, 16, 16)
    assert spec.stages_for(frames=frames)[0] == ("conv1", FOLDED)
    model = _meta("r2d_18", frames=frames).eval()
    assert model.stem[0].kernel_size == (frames, 7, 7)
    assert tuple(model(torch.empty(1, *spec.min_input_for(frames=frames), device="meta")).shape) == (1, 400)
    if frames > 1:
        with pytest.raises(RuntimeError):
            model(torch.empty(1, 3, frames - 1, 16, 16, device="meta"))


def test_options_that_are_none_are_dropped_and_unknown_ones_raise():
    r2d = archs.get_arch("r2d_18")
    assert r2d.default_input_for(frames=None, num_classes=None) == r2d.default_input
    with pytest.raises(TypeError):  # only R2D folds frames; other ResNets do not take the option
        archs.get_arch("r3d_18").default_input_for(frames=8)
    with pytest.raises(TypeError):
        archs.create_model("i3d", split="Mixed_3b")
    with pytest.raises(TypeError):  # gating is what makes S3D-G, not an option of S3D
        archs.create_model("s3d", gating=True)
    with pytest.raises(ValueError, match="split must be one of"):
        archs.get_arch("i3d_top_heavy").stages_for(split="Mixed_9z")
    with pytest.raises(ValueError, match="frames must be"):
        archs.get_arch("r2d_18").default_input_for(frames=0)


def test_s3d_dropout_default_is_its_own_and_an_option():
    assert archs.get_arch("s3d").config().dropout == 0.2
    assert archs.get_arch("s3d").config(dropout=0.4).dropout == 0.4
    assert archs.get_arch("i3d").config().dropout == 0.5


# ---------------------------------------------------------------- the convolution kinds


def test_conv_kind_labels_are_the_stage_labels():
    assert [str(k) for k in ConvKind] == ["3d", "2d", "(2+1)d", "sep", "r2d", "channelwise", "shift"]
    assert ConvKind("2d") is K2D and K2D == "2d" and f"{R2P1D}" == "(2+1)d"


def test_only_a_kind_without_time_keeps_time_when_it_downsamples():
    assert K2D.stride(2) == (1, 2, 2)
    for kind in (K3D, R2P1D, SEP, FOLDED):
        assert kind.temporal and kind.convolves_time and kind.stride(2) == (2, 2, 2)
    assert not K2D.temporal and not K2D.convolves_time
    # TSM's shift mixes frames without convolving over time: its convs are 2D and keep time
    assert SHIFT.temporal and not SHIFT.convolves_time and SHIFT.stride(2) == (1, 2, 2)
    assert SHIFT.parts(3, SHIFT.stride(2)) == K2D.parts(3, K2D.stride(2))


def test_conv_kind_parts_for_a_k_by_k_conv():
    assert K3D.parts(3, (2, 2, 2)) == (((3, 3, 3), (2, 2, 2), (1, 1, 1)),)
    assert K2D.parts(3, K2D.stride(2)) == (((1, 3, 3), (1, 2, 2), (0, 1, 1)),)
    for kind in (R2P1D, SEP):
        assert kind.factorised
        spatial, temporal = kind.parts(3, (2, 2, 2))
        assert spatial == ((1, 3, 3), (1, 2, 2), (0, 1, 1)) and temporal == ((3, 1, 1), (2, 1, 1), (1, 0, 0))
    # stems: R3D's 3x7x7, I3D's 7x7x7 stride 2, R2D's folding conv (no temporal padding)
    assert K3D.parts(7, (1, 2, 2), t=3) == (((3, 7, 7), (1, 2, 2), (1, 3, 3)),)
    assert K3D.parts(7, (2, 2, 2)) == (((7, 7, 7), (2, 2, 2), (3, 3, 3)),)
    assert FOLDED.parts(7, (1, 2, 2), t=16) == (((16, 7, 7), (1, 2, 2), (0, 3, 3)),)
    assert not (K3D.factorised or K2D.factorised or FOLDED.factorised) and FOLDED.folds_time


def test_resnet_blocks_are_built_by_their_kinds_rules():
    """The first block of conv3_x: its convs and shortcut are what the stage's kind says."""
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        kind = dict(archs.get_arch(name).stages)["conv3_x"]
        block = _meta(name).layer2[0]
        convs = [m for m in block.conv1.modules() if isinstance(m, nn.Conv3d)]
        parts = kind.parts(3, kind.stride(2))
        assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [tuple(p) for p in parts]
        assert block.downsample[0].stride == kind.stride(2)


# ---------------------------------------------------------------- families and comparisons for reports


def test_every_family_is_described_and_mixed_families_mix():
    families = {archs.get_arch(n).family for n in ALL}
    described = {f: archs.get_family(f) for f in families}
    assert all(f.color != Family(f.name).color for f in described.values())
    assert len({f.color for f in described.values()}) == len(described)
    for name in ALL:
        spec = archs.get_arch(name)
        if described[spec.family].mixed:
            kinds = {k for _, k in spec.stages}
            assert K2D in kinds and any(k.temporal for k in kinds), name
    assert archs.get_family("no_such_family") == Family("no_such_family")


def test_comparisons_are_ordered_and_their_sweeps_valid():
    members: dict[str, list[archs.ArchSpec]] = {}
    for name in ALL:
        spec = archs.get_arch(name)
        if spec.variant is not None:
            members.setdefault(spec.variant.comparison, []).append(spec)
    assert len(members) == 2
    for specs in members.values():
        orders = [s.variant.order for s in specs]
        assert len(set(orders)) == len(orders)
        for spec in specs:
            for split in spec.variant.splits:
                spec.stages_for(split=split)  # every swept value is an option the architecture takes
    series = [n for n in ALL if archs.get_family(archs.get_arch(n).family).series]
    assert series and all(archs.get_arch(n).variant is not None for n in series)


@dataclass(frozen=True)
class _TinyConfig:
    """A minimal configuration, as a new family would declare one."""

    width: int = 4
    num_classes: int = 400
    default_input: tuple[int, int, int, int] = (3, 4, 8, 8)
    min_input: tuple[int, int, int, int] = (3, 1, 1, 1)
    stages: tuple[tuple[str, str], ...] = (("all", "3d"),)

    def build(self) -> nn.Module:
        return nn.Sequential(nn.Conv3d(3, self.width, 1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5))


@pytest.fixture
def new_family():
    """A family registered for one test, then removed again."""
    family = Family("tiny_test_family", color="#123456", mixed=True)

    @archs.register_arch(family=family, paper="-", variant=Variant("A test comparison", order=0))
    def tiny_test_arch(**options):
        return replace(_TinyConfig(), **options)

    yield family
    del _registry._REGISTRY["tiny_test_arch"], _registry._FAMILIES[family.name]


def test_a_new_family_reaches_reports_through_the_registry(new_family):
    pytest.importorskip("matplotlib")
    from bench.report import builder, plots, variants

    spec = archs.get_arch("tiny_test_arch")
    assert spec.family == new_family.name and spec.config(width=8).width == 8
    assert archs.get_family(new_family.name) == new_family
    assert plots._colour(new_family.name) == "#123456"
    assert builder._holds_mixed_family([{"family": new_family.name}])
    assert [s.name for s in variants.comparisons()["A test comparison"]] == ["tiny_test_arch"]


def test_a_plain_builder_keeps_its_metadata_whatever_the_options():
    """A plugin registers a builder that returns the model, with its metadata beside it."""

    @archs.register_arch(family="plain_test", paper="-", default_input=(3, 4, 8, 8), min_input=(3, 1, 1, 1))
    def plain_test_arch(num_classes=400):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    try:
        spec = archs.get_arch("plain_test_arch")
        assert spec.builder is plain_test_arch and spec.stages == ()
        assert spec.default_input_for(num_classes=3) == (3, 4, 8, 8) and spec.min_input_for() == (3, 1, 1, 1)
        assert archs.create_model("plain_test_arch", num_classes=3)[1].out_features == 3
        assert archs.get_family("plain_test") == Family("plain_test")
    finally:
        del _registry._REGISTRY["plain_test_arch"]


def test_registration_checks_declarations_and_families():
    with pytest.raises(TypeError, match="not an ArchConfig"):

        @archs.register_arch(family="x", paper="-")
        def not_a_declaration():
            return nn.Identity()

    with pytest.raises(ValueError, match="already registered as"):

        @archs.register_arch(family=Family("mc", color="#000000"), paper="-")
        def recoloured_mc(**options):
            return _TinyConfig()

    assert "not_a_declaration" not in ALL and "recoloured_mc" not in archs.list_archs()


# ---------------------------------------------------------------- bench/ knows no architecture names

_ROOT = Path(__file__).resolve().parents[1]
_BENCH = sorted(str(p.relative_to(_ROOT)) for p in (_ROOT / "bench").rglob("*.py"))


@pytest.mark.parametrize("path", _BENCH)
def test_bench_names_no_architecture_family_or_layout(path):
    """bench/ never chooses by name: what differs between families is declared in their files (archs/)."""
    names = set(ALL) | {archs.get_arch(n).family for n in ALL}
    names |= {layout.name for n in ALL for layout in archs.get_arch(n).pretrained().layouts}
    tree = ast.parse((_ROOT / path).read_text())
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & names


def _module_imports(path: Path, package: str) -> set[str]:
    """The ``archs``/``bench`` modules a file imports when it is imported (not those under TYPE_CHECKING or in
    functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ("archs", "bench")}


def _graph() -> dict[str, set[str]]:
    modules = {}
    for path in sorted([*(_ROOT / "archs").rglob("*.py"), *(_ROOT / "bench").rglob("*.py")]):
        parts = path.relative_to(_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return {
        name: {m for m in _module_imports(path, name) if m in modules and m != name} for name, path in modules.items()
    }


def test_no_import_cycle_in_archs_or_bench():
    graph = _graph()
    cycle = first_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_family_files_know_neither_the_reader_nor_the_factory():
    """A family's file imports the leaves (blocks, registry, weights types); the reader and create_model sit above."""
    graph = _graph()
    leaves = {"archs._blocks", "archs._vit", "archs._registry", "archs._weights", "archs._published", "archs.inflate"}
    for module in archs._factory.FAMILY_MODULES:
        assert graph[module.__name__] <= leaves | {m.__name__ for m in archs._factory.FAMILY_MODULES}, module
    assert not graph["archs._weights"], "the weights types are a leaf"
    assert not graph["archs._vit"], "the transformer blocks are a leaf"
    assert all("archs._factory" not in deps for deps in graph.values()), "nothing below imports the factory"
