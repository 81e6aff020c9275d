"""Every registered architecture: shapes, published counts, real forwards, mixed-variant properties.

Counting runs on the meta device at each paper input (nothing is computed); every architecture's
logits at its paper input are checked by the static profile of all of them (tests/test_bench_cli.py), and
its real forward at ``min_input`` by tests/test_design_archs.py.
"""

import itertools

import pytest
import torch

import archs
from archs.inception import SPLIT_POINTS
from archs.resnet import midplanes
from bench.measure.counting import build_meta, count, param_count

ALL = archs.list_archs()

# Exact values where a reference implementation exists (torchvision 0.29.1 metadata),
# and the DeepMind I3D with PyTorch BN (gamma and beta), docs/architectures.md ("I3D").
EXACT_PARAMS = {
    "r3d_18": 33_371_472,
    "mc3_18": 11_695_440,
    "r2plus1d_18_tv": 31_505_325,
    "s3d": 8_320_048,
    "i3d": 12_697_264,
}
# GMACs published at the given (T, H, W), exactly where the source's definition is ours.
EXACT_GMACS = {
    "r3d_18": [((16, 112, 112), 40.697), ((8, 112, 112), 20.348)],
    "mc3_18": [((16, 112, 112), 43.343), ((8, 112, 112), 21.671)],
    "r2plus1d_18_tv": [((16, 112, 112), 40.519), ((8, 112, 112), 20.260)],
    "s3d": [((16, 224, 224), 17.979), ((32, 224, 224), 35.958), ((64, 224, 224), 71.916), ((128, 224, 224), 143.833)],
    "i3d": [((16, 224, 224), 27.79), ((32, 224, 224), 55.58), ((64, 224, 224), 111.15)],
}
# (params in M, GMACs, tolerance): the authors' model zoo (VMZ, 16x112x112) and derived counts.
APPROX = {
    "r2plus1d_18": (33.3, 41.5, 0.02),
    "r3d_18": (33.4, 40.7, 0.02),
    "r2d_18": (11.5, 2.2, 0.02),
    "fr2d_18": (11.4, 27.6, 0.02),
    "mc2_18": (11.4, 28.5, 0.02),
    "mc3_18": (11.7, 43.3, 0.02),
    "mc4_18": (12.7, 40.0, 0.02),
    "mc5_18": (16.8, 39.9, 0.02),
    "rmc2_18": (33.3, 39.8, 0.02),
    "rmc3_18": (33.0, 25.0, 0.02),
    "rmc4_18": (32.0, 29.1, 0.02),
    "rmc5_18": (27.9, 30.8, 0.02),
    "r3d_34": (63.68, 75.4, 0.01),
    "r2plus1d_34": (63.70, 152.4, 0.01),
    "i3d": (12.69, 111.15, 0.01),
}


def _gmacs(name, thw, **kw):
    return count(name, (1, 3, *thw), **kw).macs / 1e9


@pytest.mark.parametrize("name", [n for n in ALL if archs.get_arch(n).family in ("i3d", "s3d", "i3d_mixed")])
def test_inception_min_input_is_tight(name):
    """One frame or pixel less than min_input makes the fixed 2x7x7 head fail."""
    c, t, h, w = archs.get_arch(name).min_input
    model = build_meta(name)
    model(torch.empty(1, c, t, h, w, device="meta"))
    for smaller in [(1, c, t - 1, h, w), (1, c, t, h - 1, w - 1)]:
        with pytest.raises(RuntimeError):
            model(torch.empty(smaller, device="meta"))


def test_r2d_min_frames_is_its_conv1_length():
    model = build_meta("r2d_18")
    model(torch.empty(1, 3, 16, 16, 16, device="meta"))
    with pytest.raises(RuntimeError):
        model(torch.empty(1, 3, 15, 16, 16, device="meta"))
    assert param_count(build_meta("r2d_18", frames=8))[0] < param_count(build_meta("r2d_18"))[0]


@pytest.mark.parametrize("name", sorted(EXACT_PARAMS))
def test_exact_parameters(name):
    assert param_count(build_meta(name))[0] == EXACT_PARAMS[name]


@pytest.mark.parametrize(("name", "thw", "gmacs"), [(n, s, g) for n, v in EXACT_GMACS.items() for s, g in v])
def test_published_gmacs(name, thw, gmacs):
    """Equal to the published value to its last printed digit."""
    decimals = len(repr(gmacs).split(".")[1])
    assert round(_gmacs(name, thw), decimals) == gmacs


@pytest.mark.parametrize("name", sorted(APPROX))
def test_params_and_gmacs_against_papers(name):
    params_m, gmacs, tol = APPROX[name]
    spec = archs.get_arch(name)
    c = count(name, (1, *spec.default_input))
    assert c.params / 1e6 == pytest.approx(params_m, rel=tol)
    assert c.macs / 1e9 == pytest.approx(gmacs, rel=tol)


def test_vmz_zoo_counts_at_8_frames():
    """The zoo's 8-frame column too (R2D folds 8 frames when built with frames=8)."""
    zoo = {"r2plus1d_18": 20.7, "r3d_18": 20.3, "mc2_18": 14.3, "mc4_18": 20.0, "rmc3_18": 12.5, "fr2d_18": 13.8}
    for name, g in zoo.items():
        assert _gmacs(name, (8, 112, 112)) == pytest.approx(g, rel=0.02), name
    assert _gmacs("r2d_18", (8, 112, 112), frames=8) == pytest.approx(1.9, rel=0.02)


def test_r2plus1d_variants_differ_only_in_midplanes():
    per_conv = param_count(build_meta("r2plus1d_18"))[0]
    per_block = param_count(build_meta("r2plus1d_18_tv"))[0]
    assert per_conv - per_block == 33_370_839 - 31_505_325
    # The formula of VMZ's add_conv, worked by hand for the first conv of conv3_x.
    assert midplanes(64, 128) == (3 * 3 * 3 * 64 * 128) // (3 * 3 * 64 + 3 * 128) == 230
    block = build_meta("r2plus1d_18").layer2[0]
    assert block.conv1[0][0].out_channels == midplanes(64, 128)
    assert block.conv2[0][0].out_channels == midplanes(128, 128) == 288
    tv_block = build_meta("r2plus1d_18_tv").layer2[0]
    assert tv_block.conv2[0][0].out_channels == midplanes(64, 128)


def test_s3d_g_is_s3d_plus_gates():
    s3d, s3dg = param_count(build_meta("s3d"))[0], param_count(build_meta("s3d_g"))[0]
    gated = [192] + [w for name, ws in _mixed_widths() for w in (ws[0], ws[2], ws[4], ws[5])]
    assert s3dg - s3d == sum(c * c + c for c in gated)
    assert _gmacs("s3d_g", (64, 224, 224)) - _gmacs("s3d", (64, 224, 224)) == pytest.approx(
        sum(c * c for c in gated) / 1e9
    )


def _mixed_widths():
    from archs.inception import _MIXED

    return _MIXED.items()


def test_heavy_variants_cost_moves_monotonically_with_the_split():
    """Bottom-heavy gains 3D blocks as the split rises; top-heavy loses them (Xie et al. Fig. 1)."""
    shape = (1, 3, 64, 224, 224)
    bottom = [count("i3d_bottom_heavy", shape, split=s).macs for s in SPLIT_POINTS]
    top = [count("i3d_top_heavy", shape, split=s).macs for s in SPLIT_POINTS]
    assert all(a < b for a, b in itertools.pairwise(bottom))
    assert all(a > b for a, b in itertools.pairwise(top))
    i2d, i3d = count("i2d", shape).macs, count("i3d", shape).macs
    assert i2d < min(bottom + top) and max(bottom + top) < i3d


def test_heavy_split_rejects_unknown_block():
    with pytest.raises(ValueError, match="split must be one of"):
        archs.create_model("i3d_top_heavy", split="Mixed_9z")


def test_mc_and_rmc_costs_follow_their_3d_extent():
    """MCx: 3D stages are cheap at the bottom, so cost grows, MC3 > R3D (2D tops keep time).

    rMCx: cost falls as fewer top stages are 3D, except rMC3 < rMC4 < rMC5 where the 2D
    bottom stages keep the full temporal length (VMZ zoo: 25.0, 29.1, 30.8).
    """
    g = {n: _gmacs(n, (16, 112, 112)) for n in ALL if n.startswith(("mc", "rmc", "r3d_18"))}
    assert g["mc2_18"] < g["mc5_18"] < g["mc4_18"] < g["r3d_18"] < g["mc3_18"]
    assert g["rmc3_18"] < g["rmc4_18"] < g["rmc5_18"] < g["rmc2_18"] < g["r3d_18"]


def test_stage_kinds_match_the_definitions():
    kinds = {n: [k for _, k in archs.get_arch(n).stages] for n in ALL}
    assert kinds["mc2_18"] == ["3d", "2d", "2d", "2d", "2d"]
    assert kinds["mc5_18"] == ["3d", "3d", "3d", "3d", "2d"]
    assert kinds["rmc2_18"] == ["2d", "3d", "3d", "3d", "3d"]
    assert kinds["rmc5_18"] == ["2d", "2d", "2d", "2d", "3d"]
    assert kinds["i3d_bottom_heavy"] == ["3d"] * 4 + ["2d"] * 7
    assert kinds["i3d_top_heavy"] == ["2d"] * 4 + ["3d"] * 7
    assert set(kinds["s3d"]) == {"sep"}


def test_counts_scale_linearly_in_time_for_i2d_free_of_padding():
    """Without temporal kernels, cost is exactly proportional to T (a sanity check on counting)."""
    a, b = _gmacs("fr2d_18", (8, 112, 112)), _gmacs("fr2d_18", (16, 112, 112))
    assert b - 2 * a == pytest.approx(-512 * 400 / 1e9, abs=1e-9)
