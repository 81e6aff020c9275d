"""The registry's verbs: register, list, get, create."""

import json

import pytest
from torch import nn

import archs
from archs import _registry


def test_every_design_key_is_registered():
    expected = {
        "i3d", "i2d", "s3d", "s3d_g", "i3d_bottom_heavy", "i3d_top_heavy",
        "r3d_18", "r3d_34", "mc2_18", "mc3_18", "mc4_18", "mc5_18",
        "rmc2_18", "rmc3_18", "rmc4_18", "rmc5_18", "r2d_18", "fr2d_18",
        "r2plus1d_18", "r2plus1d_34", "r2plus1d_18_tv",
        "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "ir_csn_152", "ip_csn_152",
        "slow_r50", "slowfast_r50", "slowfast_r50_4x16", "slowfast_r101", "tsm_r50",
        "timesformer", "videomae_vit_s", "videomae_vit_b",
        "mvit_v1_b", "mvit_v2_s", "mvit_v2_b", "swin3d_t", "swin3d_s", "swin3d_b",
    }  # fmt: skip
    assert set(archs.list_archs()) == expected


def test_list_is_naturally_sorted_and_filters():
    assert archs.list_archs("r3d_*") == ["r3d_18", "r3d_34"]
    assert archs.list_archs("mc*") == ["mc2_18", "mc3_18", "mc4_18", "mc5_18"]
    assert archs.list_archs(["r3d_*", "i3d"]) == ["i3d", "r3d_18", "r3d_34"]
    assert archs.list_archs(["i*", "r3d*", "s3d"], exclude=["r*", "s3d*", "*csn*"]) == [
        "i2d",
        "i3d",
        "i3d_bottom_heavy",
        "i3d_top_heavy",
    ]
    assert archs.list_archs(family="s3d") == ["s3d", "s3d_g"]
    assert archs.list_archs("nothing*") == []


def test_natural_key_orders_numbers_numerically():
    names = ["mc10_18", "mc2_18", "r3d_34", "r3d_18"]
    assert sorted(names, key=_registry._natural_key) == ["mc2_18", "mc10_18", "r3d_18", "r3d_34"]


def test_unknown_name_suggests_close_matches():
    with pytest.raises(archs.UnknownArchError) as err:
        archs.get_arch("r3d18")
    assert "r3d_18" in str(err.value)
    assert err.value.suggestions[0] == "r3d_18"
    with pytest.raises(KeyError):
        archs.create_model("not_a_model")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):

        @archs.register_arch(family="x", default_input=(3, 1, 1, 1), min_input=(3, 1, 1, 1), paper="-")
        def r3d_18() -> nn.Module:  # same name as the real one
            return nn.Identity()


def test_create_model_drops_none_overrides():
    model = archs.create_model("r3d_18", num_classes=None)
    assert model.fc.out_features == 400
    assert archs.create_model("r3d_18", num_classes=7).fc.out_features == 7


def test_spec_is_frozen_and_json_ready():
    spec = archs.get_arch("mc3_18")
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    data = spec.to_dict()
    assert "builder" not in data
    json.dumps(data)
    assert data["stages"][:3] == [["conv1", "3d"], ["conv2_x", "3d"], ["conv3_x", "2d"]]


@pytest.mark.parametrize("name", archs.list_archs())
def test_spec_fields_are_consistent(name):
    spec = archs.get_arch(name)
    assert spec.name == name == spec.builder.__name__
    assert len(spec.default_input) == 4 and len(spec.min_input) == 4
    assert spec.default_input[0] == spec.min_input[0] == 3
    assert all(m <= d for m, d in zip(spec.min_input, spec.default_input, strict=True))
    assert spec.paper and spec.family and spec.stages


def test_published_results_have_sources_and_allowed_tags():
    table = archs.published_table()
    assert set(table) <= set(archs.list_archs())
    for name, results in table.items():
        assert archs.get_arch(name).published == results
        for r in results:
            assert r.tag in ("P", "S") and r.source
            assert r.top1 is not None or r.params_m is not None or r.gmacs is not None
    assert any(r.top1 == 71.1 for r in archs.get_arch("i3d").published)
