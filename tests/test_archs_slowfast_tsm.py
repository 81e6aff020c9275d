"""Slow-only, SlowFast and TSM: counts against their references, the one-clip contract, the Slow clip's frames, the shift.

Reference figures (parameters exact; MACs of convolutions and linear layers,
norms not counted, at the paper's input):

- Slow/SlowFast: pytorchvideo 0.1.5's ``hub.slow_r50``, ``hub.slowfast_r50``,
  ``hub.slowfast_r101`` and ``create_slowfast(slowfast_fusion_conv_kernel_size=(5,
  1, 1), slowfast_fusion_conv_stride=(8, 1, 1))`` (4x16), built on the meta device
  with an adaptive head pool and counted by ``bench.measure.counting`` at the 256 test
  crop, the crop the zoos' GFLOPs are given at (SlowFast#111). The zoos' figures
  they reproduce: PTV ``model_zoo.md`` Slow R50 8x8 32.45 M, 54.52 GMACs;
  SlowFast R50 8x8 34.57 M, 65.71; SlowFast R50 4x16 34.48 M, and the paper's
  36.1 GMACs (PTV's 36.69 is 1.6 % above any count of this network: 36.34 with
  BatchNorm, as MMAction2's 36.3); SlowFast R101 62.83 M (PTV's 127.20 GMACs is
  1 % above ours, as ``shared/reference/modern_families.md`` found).
- TSM: torchvision's ResNet-50 (23,508,032 parameters without its fc) and a
  2048 x 400 fc; 4.089 GMACs per frame with torchvision's 1000-class fc
  (torchvision's ``_ops``), so 8 frames cost 8 x (4,089,184,256 - 2048 x 600).
"""

import re
import sys

import pytest
import reference_impls as ref_impls
import torch

import archs
from archs.slowfast import slow_frame_indices
from archs.tsm import TemporalShift, temporal_shift
from bench.measure.counting import count

# (params, MACs at the default input)
REFERENCE = {
    "slow_r50": (32_454_096, 54_518_382_592),
    "slowfast_r50": (34_566_488, 65_708_888_064),
    "slowfast_r50_4x16": (34_480_216, 36_099_198_976),
    "slowfast_r101": (62_826_968, 125_905_539_072),
    "tsm_r50": (24_327_632, 8 * (4_089_184_256 - 2048 * 600)),
}
DEFAULT_INPUT = {
    "slow_r50": (3, 8, 256, 256),
    "slowfast_r50": (3, 32, 256, 256),
    "slowfast_r50_4x16": (3, 32, 256, 256),
    "slowfast_r101": (3, 32, 256, 256),
    "tsm_r50": (3, 8, 224, 224),
}
PUBLISHED_GMACS = {"slow_r50": 54.52, "slowfast_r50": 65.71, "slowfast_r50_4x16": 36.1, "tsm_r50": 8 * 4.089}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_params_and_macs_equal_the_reference_at_the_paper_input(name):
    spec = archs.get_arch(name)
    assert spec.default_input == DEFAULT_INPUT[name]
    counts = count(name, (1, *spec.default_input))
    assert (counts.params, counts.macs) == REFERENCE[name]
    if name in PUBLISHED_GMACS:
        assert counts.macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], abs=0.006 * (8 if "tsm" in name else 1))


@pytest.mark.parametrize("name", ["slow_r50", "slowfast_r50", "slowfast_r50_4x16", "slowfast_r101"])
def test_published_zoo_counts_beside_ours(name):
    """The zoo's parameters to their printed digit; its GMACs too, except where a note says why not (< 2 %)."""
    params, macs = REFERENCE[name]
    zoo = [r for r in archs.get_arch(name).published if r.gmacs is not None]
    assert zoo and all(
        r.views == "10 clips x 3 crops" and r.input == "x".join(map(str, DEFAULT_INPUT[name][1:])) for r in zoo
    )
    for r in zoo:
        assert round(params / 1e6, 2) == r.params_m
        if r.note and "above" in r.note:
            assert 1.0 < r.gmacs / (macs / 1e9) < 1.02
        else:
            assert round(macs / 1e9, 2) == r.gmacs


def test_tsm_costs_resnet50_per_frame_and_its_shift_nothing():
    one = count("tsm_r50", (1, 3, 1, 224, 224), segments=1)
    eight = count("tsm_r50", (1, 3, 8, 224, 224))
    assert eight.macs == 8 * one.macs and one.params == eight.params
    assert round((one.macs + 2048 * 600) / 1e9, 3) == 4.089  # torchvision's resnet50 _ops, 1000 classes


# ---------------------------------------------------------------- SlowFast's Slow clip


def test_slow_frames_are_pyslowfast_linspace_indices():
    # linspace(0, 31, 8) = 0, 4.43, 8.86, 13.29, 17.71, 22.14, 26.57, 31, truncated
    assert slow_frame_indices(32, 4).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    # linspace(0, 31, 4) = 0, 10.33, 20.67, 31
    assert slow_frame_indices(32, 8).tolist() == [0, 10, 20, 31]
    assert slow_frame_indices(8, 4).tolist() == [0, 7]
    assert slow_frame_indices(4, 4).tolist() == [0]


@pytest.mark.parametrize(
    ("name", "expected"), [("slowfast_r50", [0, 4, 8, 13, 17, 22, 26, 31]), ("slowfast_r50_4x16", [0, 10, 20, 31])]
)
def test_the_model_feeds_its_slow_pathway_those_frames(name, expected):
    model = archs.create_model(name, num_classes=3).eval()
    seen = {}
    model.slow.stem.register_forward_pre_hook(lambda _m, args: seen.setdefault("slow", args[0]))
    model.fast.stem.register_forward_pre_hook(lambda _m, args: seen.setdefault("fast", args[0]))
    clip = torch.arange(32, dtype=torch.float32).view(1, 1, 32, 1, 1).expand(1, 3, 32, 32, 32).contiguous()
    with torch.inference_mode():
        model(clip)
    assert seen["slow"][0, 0, :, 0, 0].tolist() == expected
    assert torch.equal(seen["fast"], clip)


def test_slowfast_refuses_a_clip_that_is_not_a_multiple_of_alpha():
    model = archs.create_model("slowfast_r50", num_classes=3).eval()
    with pytest.raises(ValueError, match="multiple of 4, got 6"):
        model(torch.zeros(1, 3, 6, 32, 32))


@pytest.mark.parametrize("name", ["slow_r50", "slowfast_r50", "slowfast_r50_4x16", "tsm_r50"])
def test_one_clip_in_logits_out_at_a_small_input(name):
    torch.manual_seed(0)
    model = archs.create_model(name, num_classes=5).eval()
    c, t, _, _ = archs.get_arch(name).min_input
    with torch.inference_mode():
        out = model(torch.randn(2, c, t, 32, 48))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


# ---------------------------------------------------------------- TSM's shift and segments


def test_shift_moves_one_fold_back_and_one_forward_with_zeros_at_the_ends():
    # one clip of 3 frames, 8 channels (fold = 1), 1 x 1 pixels; x[t, c] = 10 t + c
    x = (10 * torch.arange(3).view(3, 1) + torch.arange(8).view(1, 8)).float().view(3, 8, 1, 1)
    out = temporal_shift(x, segments=3).view(3, 8)
    assert out[:, 0].tolist() == [10, 20, 0]  # channel 0 takes the next frame's
    assert out[:, 1].tolist() == [0, 1, 11]  # channel 1 takes the previous frame's
    assert torch.equal(out[:, 2:], x.view(3, 8)[:, 2:])


def test_shift_keeps_clips_apart_in_a_batch():
    # two clips of 2 frames, 16 channels (fold = 2): no channel crosses from one clip to the other
    x = torch.arange(1, 5, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 16, 1, 1)
    out = temporal_shift(x, segments=2)[:, :, 0, 0]
    assert out[:, :2].tolist() == [[2, 2], [0, 0], [4, 4], [0, 0]]
    assert out[:, 2:4].tolist() == [[0, 0], [1, 1], [0, 0], [3, 3]]
    assert torch.equal(out[:, 4:], x[:, 4:, 0, 0])


def test_shift_module_declares_its_kind_and_has_no_parameters():
    shift = TemporalShift(8)
    assert TemporalShift.work_kind == "shift" and not list(shift.parameters())
    model = archs.create_model("tsm_r50")
    assert sum(isinstance(m, TemporalShift) for m in model.modules()) == 16  # every block of ResNet-50
    assert all(str(kind) == "shift" for _, kind in archs.get_arch("tsm_r50").stages[1:])


def test_tsm_refuses_a_clip_of_another_length():
    model = archs.create_model("tsm_r50", num_classes=3).eval()
    with pytest.raises(ValueError, match="built for 8 segments and got a clip of 16 frames; build it with segments=16"):
        model(torch.zeros(1, 3, 16, 32, 32))


def test_segments_is_an_option_and_the_inputs_follow_it():
    spec = archs.get_arch("tsm_r50")
    assert spec.default_input == (3, 8, 224, 224)
    assert spec.default_input_for(segments=16) == (3, 16, 224, 224)
    assert spec.min_input_for(segments=16) == (3, 16, 32, 32)
    model = archs.create_model("tsm_r50", segments=4, num_classes=3).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 3)
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="segments must be"):
            spec.config(segments=bad)


def test_tsm_logits_are_the_mean_of_per_frame_logits():
    torch.manual_seed(0)
    model = archs.create_model("tsm_r50", segments=2, num_classes=4).eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.inference_mode():
        features = model.forward_features(x)
        per_frame = model.fc(features.mean((3, 4)).transpose(1, 2))  # (1, T, classes)
        assert torch.allclose(model(x), per_frame.mean(1), atol=1e-6)


# ---------------------------------------------------------------- checkpoints: the references' logits
#
# Each reference gets random weights that keep activations' scale (``scale_preserving_init``); its state
# dict, in its own key names, is loaded into our model through the layout's key map, and the logits of both
# are compared on clips with structure at every scale, the mismatch judged against how far the
# reference's logits move between two clips (DESIGN.md, "Testing equivalence").


def _clips(thw, n=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, max(thw[0] // 4, 2), 6, 6, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=thw, mode="trilinear", align_corners=False)
    return 1.5 * smooth + 0.5 * torch.randn(n, 3, *thw, generator=g)


def _assert_same_function(expected, got):
    diff = (got - expected).abs().max().item()
    movement = (expected[0] - expected[1]).abs().max().item()
    print(f"max|logit diff| = {diff:.3g}, movement = {movement:.3g}, max|logit| = {expected.abs().max().item():.3g}")
    assert movement > 1e-2 * expected.abs().max().item(), "the logits hardly depend on the input"
    assert diff <= 1e-4 * movement


@pytest.fixture
def pytorchvideo(monkeypatch):
    """pytorchvideo 0.1.5's model builders, or skip.

    Its ``models.head`` imports ``torchvision.ops.RoIAlign``, used only by its detection heads; where
    torchvision is missing or cannot load its operators (a torchvision built for another torch), a
    stand-in lets the classification models import, for this test only.
    """
    pytest.importorskip("pytorchvideo", reason="the Slow/SlowFast reference is pytorchvideo 0.1.5 (pip)")
    try:
        import torchvision.ops  # noqa: F401
    except Exception:
        import types

        stand_in = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.RoIAlign = object
        stand_in.ops = ops
        monkeypatch.setitem(sys.modules, "torchvision", stand_in)
        monkeypatch.setitem(sys.modules, "torchvision.ops", ops)
    import pytorchvideo.models.hub as hub
    from pytorchvideo.models.slowfast import create_slowfast

    return hub, create_slowfast


# (frames, size) of the comparison: small clips whose final map the reference's fixed head pool covers
_SMALL = (8, 32)


def _pytorchvideo_reference(name, hub, create_slowfast):
    """The reference of ``name`` and the alpha it samples the Slow clip with (None: one pathway).

    Its head pools with a fixed kernel, the final map of its training clip; here that kernel is set to
    the final map of the small clip compared (the reference's own rule at this clip), so that it too
    averages the whole map.
    """
    t, s = _SMALL
    side = s // 32
    if name == "slow_r50":
        reference = hub.slow_r50()
        reference.blocks[5].pool = torch.nn.AvgPool3d((t, side, side), stride=1)
        return reference, None
    alpha = 8 if name == "slowfast_r50_4x16" else 4
    if name == "slowfast_r50":
        reference = hub.slowfast_r50()
    elif name == "slowfast_r101":
        reference = hub.slowfast_r101()
    else:  # no hub entry: PySlowFast's SLOWFAST_4x16_R50.yaml (ALPHA 8, FUSION_KERNEL_SZ 5) in create_slowfast
        reference = create_slowfast(
            model_depth=50, slowfast_fusion_conv_kernel_size=(5, 1, 1), slowfast_fusion_conv_stride=(8, 1, 1)
        )
    pools = [torch.nn.AvgPool3d((t // alpha, side, side), stride=1), torch.nn.AvgPool3d((t, side, side), stride=1)]
    reference.blocks[5].pool = torch.nn.ModuleList(pools)
    return reference, alpha


def _reference_logits(reference, alpha, x):
    if alpha is None:
        return reference(x)
    # PySlowFast's pack_pathway_output, written out; a fresh list each call (the reference overwrites it)
    t = x.shape[2]
    slow = torch.index_select(x, 2, torch.linspace(0, t - 1, t // alpha).long())
    return reference([slow, x])


# PyTorchVideo's key -> PySlowFast's, written from PySlowFast's module names (video_model_builder.py,
# resnet_helper.py, stem_helper.py, head_helper.py), independently of archs.slowfast's maps.
_PTV_TO_PYSF = (
    (r"^blocks\.0\.multipathway_blocks\.(\d)\.conv\.", r"s1.pathway\1_stem.conv."),
    (r"^blocks\.0\.multipathway_blocks\.(\d)\.norm\.", r"s1.pathway\1_stem.bn."),
    (r"^blocks\.0\.conv\.", "s1.pathway0_stem.conv."),
    (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
    (r"^blocks\.(\d)\.multipathway_fusion\.conv_fast_to_slow\.", lambda m: f"s{int(m[1]) + 1}_fuse.conv_f2s."),
    (r"^blocks\.(\d)\.multipathway_fusion\.norm\.", lambda m: f"s{int(m[1]) + 1}_fuse.bn."),
    (
        r"^blocks\.(\d)\.multipathway_blocks\.(\d)\.res_blocks\.(\d+)\.",
        lambda m: f"s{int(m[1]) + 1}.pathway{m[2]}_res{m[3]}.",
    ),
    (r"^blocks\.(\d)\.res_blocks\.(\d+)\.", lambda m: f"s{int(m[1]) + 1}.pathway0_res{m[2]}."),
    (r"^blocks\.[56]\.proj\.", "head.projection."),
    (r"\.branch2\.conv_([abc])\.", r".branch2.\1."),
    (r"\.branch2\.norm_([abc])\.", r".branch2.\1_bn."),
    (r"\.branch1_conv\.", ".branch1."),
    (r"\.branch1_norm\.", ".branch1_bn."),
)


def _as_pyslowfast(state):
    out = {}
    for key, value in state.items():
        for pattern, repl in _PTV_TO_PYSF:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


@pytest.mark.parametrize("name", ["slow_r50", "slowfast_r50", "slowfast_r50_4x16", "slowfast_r101"])
def test_slowfast_checkpoints_give_the_references_logits(name, pytorchvideo):
    """PyTorchVideo's checkpoints as its hub keeps them (bare) and as PySlowFast saves them (``model.`` in
    ``model_state``), and the same weights under PySlowFast's own names, give the reference's logits."""
    reference, alpha = _pytorchvideo_reference(name, *pytorchvideo)
    reference = ref_impls.scale_preserving_init(reference, seed=0).eval()
    state = reference.state_dict()
    x = _clips((_SMALL[0], _SMALL[1], _SMALL[1]))
    with torch.inference_mode():
        expected = _reference_logits(reference, alpha, x)
    # the hub's bare state dict; PySlowFast's .pyth of a PyTorchVideo model wraps it as {"model_state": {"model.*"}}
    wrapped = {"model_state": {f"model.{k}": v for k, v in state.items()}} if name == "slow_r50" else state
    checkpoints = {
        "pytorchvideo": [state] if wrapped is state else [state, wrapped],
        "pyslowfast": [{"epoch": 196, "model_state": _as_pyslowfast(state)}],
    }
    for layout, variants in checkpoints.items():
        for checkpoint in variants:
            ours = archs.create_model(name, weights=checkpoint).eval()
            info = ours.pretrained_cfg
            assert (info.layout, info.num_classes, info.protocol) == (layout, 400, "slowfast")
            assert info.preprocess == archs.default_preprocess(name)
            with torch.inference_mode():
                _assert_same_function(expected, ours(x))


# ---- TSM: the authors' TSN (ops/models.py) around torchvision's ResNet-50, re-implemented here


def _reference_shift(x, n_segment, fold_div=8):
    """TemporalShift.shift of ops/temporal_shift.py (not in place): a zero tensor, then three slice copies."""
    nt, c, h, w = x.size()
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


class _Shifted(torch.nn.Module):
    """TemporalShift(net, n_segment): shift, then the wrapped conv (so its weight is ``conv1.net.weight``)."""

    def __init__(self, net, n_segment):
        super().__init__()
        self.net, self.n_segment = net, n_segment

    def forward(self, x):
        return self.net(_reference_shift(x, self.n_segment))


class _TVBottleneck(torch.nn.Module):
    """torchvision's ResNet Bottleneck (stride on the 3x3), its attribute names."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class _TSN(torch.nn.Module):
    """ops/models.py's TSN for RGB, ResNet-50, is_shift, shift_place "blockres", avg consensus, dropout > 0."""

    def __init__(self, num_class, num_segments):
        super().__init__()
        nn = torch.nn
        base = nn.Module()
        base.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        base.bn1 = nn.BatchNorm2d(64)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            layer = []
            for j in range(blocks):
                block = _TVBottleneck(inplanes, planes, 2 if i and not j else 1)
                block.conv1 = _Shifted(block.conv1, num_segments)  # make_temporal_shift, n_round 1
                layer.append(block)
                inplanes = planes * 4
            setattr(base, f"layer{i + 1}", nn.Sequential(*layer))
        self.base_model = base
        self.new_fc = nn.Linear(2048, num_class)
        self.num_segments = num_segments

    def forward(self, x):  # x: (N, T * 3, H, W), frames stacked along channels as the authors' loader does
        b = self.base_model
        x = x.view(-1, 3, *x.size()[-2:])
        x = torch.nn.functional.max_pool2d(torch.relu(b.bn1(b.conv1(x))), 3, 2, 1)
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = layer(x)
        out = self.new_fc(x.mean((2, 3)))
        return out.view(-1, self.num_segments, *out.size()[1:]).mean(1)


def test_our_shift_is_the_authors():
    x = torch.randn(2 * 3, 16, 5, 4)
    assert torch.equal(temporal_shift(x, 3), _reference_shift(x, 3))


@pytest.mark.parametrize("segments", [8, 3])
def test_tsm_checkpoint_gives_the_authors_logits(segments):
    reference = ref_impls.scale_preserving_init(_TSN(400, segments), seed=0).eval()
    # as the authors save it: DataParallel's module. prefix, under state_dict, beside the epoch and best top-1
    checkpoint = {
        "epoch": 50,
        "best_prec1": 74.1,
        "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()},
    }
    ours = archs.create_model("tsm_r50", segments=segments, weights=checkpoint).eval()
    info = ours.pretrained_cfg
    assert (info.layout, info.num_classes, info.protocol) == ("tsm", 400, "tsm_dense")
    assert (info.preprocess.frames, info.preprocess.frame_stride, info.preprocess.crop) == (
        segments,
        64 // segments,
        256,
    )
    x = _clips((segments, 64, 64))
    stacked = x.transpose(1, 2).reshape(2, segments * 3, 64, 64)  # (N, T x C, H, W), frame by frame
    with torch.inference_mode():
        _assert_same_function(reference(stacked), ours(x))


# ---------------------------------------------------------------- preprocessing and protocols


def test_preprocessing_and_protocols_are_the_references():
    protocols = archs.list_protocols()
    assert (protocols["slowfast"].clips, protocols["slowfast"].crops) == (10, 3)
    assert (protocols["tsm_dense"].clips, protocols["tsm_dense"].crops, protocols["tsm_dense"].frames) == (10, 3, None)
    assert (protocols["tsm_uniform"].clips, protocols["tsm_uniform"].crops, protocols["tsm_uniform"].frames) == (
        1,
        1,
        8,
    )
    # PySlowFast's DATA.MEAN / STD; TEST_CROP_SIZE 256; NUM_FRAMES x SAMPLING_RATE of each config
    for name, frames, stride in [
        ("slow_r50", 8, 8),
        ("slowfast_r50", 32, 2),
        ("slowfast_r50_4x16", 32, 2),
        ("slowfast_r101", 32, 2),
    ]:
        pretrained = archs.get_arch(name).pretrained()
        p = pretrained.preprocess
        assert (p.mean, p.std, p.resize, p.crop, p.frames, p.frame_stride) == (
            (0.45,) * 3,
            (0.225,) * 3,
            256,
            256,
            frames,
            stride,
        )
        assert pretrained.protocol == "slowfast"
        assert [layout.name for layout in pretrained.layouts] == ["pytorchvideo", "pyslowfast"]
    # TSM's dense models: ImageNet mean/std, short side 256, full-resolution crops, 8 frames at stride 64 // 8
    tsm = archs.get_arch("tsm_r50").pretrained()
    p = tsm.preprocess
    assert (p.mean, p.std, p.resize, p.crop, p.frames, p.frame_stride) == (
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        256,
        256,
        8,
        8,
    )
    assert tsm.protocol == "tsm_dense" and [layout.name for layout in tsm.layouts] == ["tsm"]
    assert archs.get_arch("tsm_r50").pretrained(segments=16).preprocess.frames == 16


def test_a_checkpoint_of_another_model_is_one_line_naming_its_layout():
    slow = archs.create_model("slow_r50", num_classes=3).state_dict()
    from archs.slowfast import pytorchvideo_key

    with pytest.raises(archs.WeightsError, match="layout pytorchvideo") as e:
        archs.create_model("tsm_r50", weights={pytorchvideo_key(k, two_pathways=False): v for k, v in slow.items()})
    assert "\n" not in str(e.value)
