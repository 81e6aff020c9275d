"""Slow-only, SlowFast and TSM: counts against their references, the one-clip contract, the Slow clip's frames, the shift.

Reference figures (parameters exact; MACs of convolutions and linear layers,
norms not counted, at the paper's input):

- Slow/SlowFast: pytorchvideo 0.1.5's ``hub.slow_r50``, ``hub.slowfast_r50``,
  ``hub.slowfast_r101`` and ``create_slowfast(slowfast_fusion_conv_kernel_size=(5,
  1, 1), slowfast_fusion_conv_stride=(8, 1, 1))`` (4x16), built on the meta device
  with an adaptive head pool and counted by ``bench.counting`` at the 256 test
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

import pytest
import torch

import archs
from archs.slowfast import slow_frame_indices
from archs.tsm import TemporalShift, temporal_shift
from bench.counting import count

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
