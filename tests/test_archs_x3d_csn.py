"""X3D and CSN: their costs against their references, their structure, and the model contract.

Reference figures (pinned, with how they were obtained):

- pytorchvideo 0.1.5 (PyPI), ``hub.x3d_xs/s/m/l()`` and ``create_csn(model_depth=152,
  stem_pool=nn.MaxPool3d, head_pool_kernel_size=(4, 7, 7))``, built on the meta device and
  counted by vbench's counter (``bench.measure.counting.MacAnalysis``: convolutions and linear
  layers, norms not counted). fvcore's ``FlopCountAnalysis`` of the real ``x3d_xs`` at
  1x3x4x160x160 gives the same 605,256,512 once its ``batch_norm`` entry is taken out.
- PySlowFast's MODEL_ZOO.md X3D GFLOPs (MACs, norms not counted, at the training crop):
  0.60 / 1.96 / 4.73 / 18.37.
- VMZ's model zoo (``c2/tutorials/model_zoo.md``): ir-CSN-152 29.6 M, 96.7 GFLOPs;
  ip-CSN-152 32.8 M, 108.8 GFLOPs; MACs at 32x256x256 (its test script's crop).
"""

from __future__ import annotations

import math
import re
import sys
import types

import pytest
import torch
from torch import nn

import archs
from archs import ConvKind
from archs._blocks import SqueezeExcitation, Swish
from archs.x3d import round_width
from bench.measure.counting import count

X3D = ("x3d_xs", "x3d_s", "x3d_m", "x3d_l")
CSN = ("ir_csn_152", "ip_csn_152")

# name -> (pytorchvideo's parameters, its MACs at the training input, that input (T, S), PySlowFast's GMACs)
X3D_REFERENCE = {
    "x3d_xs": (3_794_274, 605_256_512, (4, 160), 0.60),
    "x3d_s": (3_794_274, 1_962_892_112, (13, 160), 1.96),
    "x3d_m": (3_794_274, 4_732_468_736, (16, 224), 4.73),
    "x3d_l": (6_153_384, 18_367_710_176, (16, 312), 18.37),
}
IR_CSN_152_PARAMS = 29_703_568
IR_CSN_152_MACS_224 = 74_046_244_864  # pytorchvideo at 1x3x32x224x224: its head pool covers the 4x7x7 map
IR_CSN_152_MACS_256_PTV = 96_715_669_504  # at 32x256 its fixed (4, 7, 7) pool leaves 1x2x2 positions for fc
VMZ = {"ir_csn_152": (29.6, 96.7), "ip_csn_152": (32.8, 108.8)}


def _clip(name: str, frames: int, size: int) -> tuple[int, int, int, int, int]:
    return (1, 3, frames, size, size)


# ---------------------------------------------------------------- costs against the references


@pytest.mark.parametrize("name", X3D)
def test_x3d_parameters_and_macs_equal_pytorchvideo_at_the_training_input(name):
    params, macs, (frames, size), _ = X3D_REFERENCE[name]
    assert archs.get_arch(name).default_input == (3, frames, size, size)
    c = count(name, _clip(name, frames, size))
    assert (c.params, c.macs) == (params, macs)


@pytest.mark.parametrize("name", X3D)
def test_x3d_macs_are_pysf_model_zoo_gflops(name):
    """The zoo's "GFLOPs" are MACs without norms at the training crop, to its two decimals (0.6053 is its 0.60)."""
    *_, zoo = X3D_REFERENCE[name]
    assert count(name, (1, *archs.get_arch(name).default_input)).macs / 1e9 == pytest.approx(zoo, abs=0.006)


def test_ir_csn_152_equals_pytorchvideo():
    """Equal where the reference's fixed head pool covers the whole map (32x224); at the paper's 256 the
    reference's (4, 7, 7) pool leaves 1x2x2 positions and applies fc at each, 3 x 2048 x 400 MACs more."""
    assert archs.get_arch("ir_csn_152").default_input == (3, 32, 256, 256)
    c224 = count("ir_csn_152", (1, 3, 32, 224, 224))
    assert (c224.params, c224.macs) == (IR_CSN_152_PARAMS, IR_CSN_152_MACS_224)
    c256 = count("ir_csn_152", (1, 3, 32, 256, 256))
    assert IR_CSN_152_MACS_256_PTV - c256.macs == 3 * 2048 * 400


@pytest.mark.parametrize("name", CSN)
def test_csn_within_one_percent_of_the_vmz_zoo_at_32x256(name):
    params_m, gmacs = VMZ[name]
    c = count(name, (1, *archs.get_arch(name).default_input))
    assert c.params / 1e6 == pytest.approx(params_m, rel=0.01)
    assert c.macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_ip_csn_adds_a_pointwise_conv_and_a_norm_to_every_block():
    """ip - ir, by hand: each block's 1x1x1 (w x w) and its BN (2 w) in parameters; in MACs, that
    1x1x1 on the map entering the middle conv (before the first block of res3..res5 strides)."""
    depths, inner = (3, 8, 36, 3), (64, 128, 256, 512)
    shape = (1, 3, 32, 256, 256)
    ip, ir = count("ip_csn_152", shape), count("ir_csn_152", shape)
    assert ip.params - ir.params == sum(d * (w * w + 2 * w) for d, w in zip(depths, inner, strict=True))

    t, s = 32, 64  # after the stem (stride 1, 2, 2) and its max-pool (1, 2, 2) at 32x256
    macs = 0
    for stage, (d, w) in enumerate(zip(depths, inner, strict=True)):
        macs += w * w * t * s * s  # the first block sees the stage's input map
        if stage > 0:
            t, s = t // 2, s // 2
        macs += (d - 1) * w * w * t * s * s
    assert ip.macs - ir.macs == macs


# ---------------------------------------------------------------- structure


def _meta(name, **kwargs):
    with torch.device("meta"):
        return archs.create_model(name, **kwargs)


def test_round_width_is_pysf_rule():
    """Nearest multiple of 8, at least 8, bumped when rounding lost more than 10 %."""
    assert [round_width(12, 2.0), round_width(24, 2.0), round_width(48, 2.0)] == [24, 48, 96]
    assert round_width(54, 1 / 16) == 8  # 3.4 -> the minimum
    assert round_width(216, 1 / 16) == 16  # 13.5 -> 16
    assert round_width(432, 1 / 16) == 32  # 27 -> 24 lost 11 %, so 32


@pytest.mark.parametrize(("name", "depths"), [("x3d_m", (3, 5, 11, 7)), ("x3d_l", (5, 10, 25, 15))])
def test_x3d_stages_se_and_swish_where_pytorchvideo_puts_them(name, depths):
    model = _meta(name)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert tuple(len(s) for s in stages) == depths
    for stage, width in zip(stages, (24, 48, 96, 192), strict=True):
        inner = int(2.25 * width)
        for j, block in enumerate(stage):
            assert block.conv3.out_channels == width and block.conv1.out_channels == inner
            assert block.conv2.groups == inner and block.conv2.kernel_size == (3, 3, 3)
            assert block.conv2.stride == ((1, 2, 2) if j == 0 else (1, 1, 1))  # never in time
            assert isinstance(block.se, SqueezeExcitation) == (j % 2 == 0)
            if block.se is not None:
                assert block.se.fc1.out_channels == round_width(inner, 1 / 16)
            assert isinstance(block.act2, Swish)
    swishes = [n for n, m in model.named_modules() if isinstance(m, (Swish, nn.SiLU))]
    assert swishes == [f"layer{i + 1}.{j}.act2" for i, d in enumerate(depths) for j in range(d)]
    # the res2 shortcut strides but keeps 24 channels: pytorchvideo gives it no BatchNorm
    assert len(model.layer1[0].downsample) == 1 and len(model.layer2[0].downsample) == 2


def test_x3d_stem_and_head():
    model = _meta("x3d_xs")
    spatial, temporal = model.stem.spatial, model.stem.temporal
    assert (spatial.kernel_size, spatial.stride, spatial.groups) == ((1, 3, 3), (1, 2, 2), 1)
    assert (temporal.kernel_size, temporal.padding, temporal.groups) == ((5, 1, 1), (2, 0, 0), 24)
    assert (model.conv5.in_channels, model.conv5.out_channels, model.lin5.out_channels) == (192, 432, 2048)
    assert model.lin5.bias is None and model.num_features == 432
    names = [n for n, _ in model.named_children()]
    assert names[names.index("lin5") + 1] == "relu_lin5"  # no BatchNorm after lin5
    assert model.dropout.p == 0.5 and _meta("x3d_xs", dropout=0.0).dropout.p == 0.0


def test_csn_middle_convolutions():
    ir, ip = _meta("ir_csn_152"), _meta("ip_csn_152")
    assert isinstance(ir.layer3[0].conv2, nn.Conv3d) and ir.layer3[0].conv2.groups == 256
    assert ir.layer3[0].conv2.stride == (2, 2, 2) and ir.layer3[0].downsample[0].stride == (2, 2, 2)
    middle = ip.layer3[0].conv2
    assert [type(m) for m in middle] == [nn.Conv3d, nn.BatchNorm3d, nn.Conv3d]
    assert middle.pointwise.kernel_size == (1, 1, 1) and middle.pointwise.groups == 1
    assert middle.channelwise.groups == 256 and middle.channelwise.stride == (2, 2, 2)
    assert {m.eps for m in ir.modules() if isinstance(m, nn.BatchNorm3d)} == {1e-5}  # pytorchvideo
    assert {m.eps for m in ip.modules() if isinstance(m, nn.BatchNorm3d)} == {1e-3}  # VMZ
    assert isinstance(ir.stem.pool, nn.MaxPool3d) and ir.stem.conv.kernel_size == (3, 7, 7)


def test_channelwise_kind_rules_and_stage_labels():
    kind = ConvKind.CHANNELWISE
    assert ConvKind("channelwise") is kind and kind.temporal and not kind.factorised
    assert kind.groups(54) == 54 and ConvKind.THREE_D.groups(54) == 1
    assert kind.parts(3, (1, 2, 2)) == ConvKind.THREE_D.parts(3, (1, 2, 2))
    assert kind.stride(2) == (2, 2, 2)
    for name in (*X3D, *CSN):
        assert [k for _, k in archs.get_arch(name).stages][1:] == [kind] * 4


# ---------------------------------------------------------------- the model contract at small inputs


@pytest.mark.parametrize(("name", "shape"), [("x3d_xs", (2, 3, 3, 48, 64)), ("ir_csn_152", (1, 3, 9, 32, 40))])
def test_real_forward_at_a_small_odd_input_gives_finite_logits(name, shape):
    """Adaptive pooling: any clip at least the minimum gives (B, classes) logits, not a softmax."""
    torch.manual_seed(0)
    model = archs.create_model(name, num_classes=7).eval()
    with torch.inference_mode():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 7) and torch.isfinite(out).all()
    assert not torch.allclose(out.sum(1), torch.ones(shape[0]))


@pytest.mark.parametrize("name", (*X3D, *CSN))
def test_minimum_input_and_families(name):
    spec = archs.get_arch(name)
    assert spec.family == ("x3d" if name in X3D else "csn")
    frames = spec.min_input[1]
    assert spec.min_input == (3, frames, 32, 32)
    features = _meta(name).eval().forward_features(torch.empty(1, *spec.min_input, device="meta"))
    # X3D keeps every frame; CSN halves time in res3..res5
    assert features.shape[2] == (frames if name in X3D else math.ceil(frames / 8)) and features.shape[3:] == (1, 1)


# ---------------------------------------------------------------- logits equal to the reference's (pytorchvideo)


@pytest.fixture(scope="module")
def ptv():
    """pytorchvideo's model builders, or a skip.

    Its ``models/head.py`` imports ``torchvision.ops.RoIAlign``, used only by
    detection heads. Where torchvision cannot be imported (a CPU-only torch beside
    torchvision's CUDA wheel, as on this project's CI), a stand-in module with no
    ``RoIAlign`` lets the classification models import; none of them touches it.
    """
    pytest.importorskip("pytorchvideo", reason="pytorchvideo (0.1.5, the reference) is not installed")
    pytest.importorskip("fvcore", reason="pytorchvideo's X3D needs fvcore's SqueezeExcitation")
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.ops")}
    try:
        import torchvision.ops  # noqa: F401
    except Exception:
        stand_in, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.RoIAlign = None  # type: ignore[attr-defined]
        stand_in.ops = ops  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        from pytorchvideo.models import csn, hub, x3d

        yield types.SimpleNamespace(hub=hub, create_x3d=x3d.create_x3d, create_csn=csn.create_csn)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine terms, and a classifier that gives logits of order one, so that
    every tensor of the checkpoint changes the output (DESIGN.md, "Testing equivalence")."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = torch.rand(n, generator=g) + 0.5
        elif isinstance(m, nn.Linear):
            m.weight.data = torch.randn(m.weight.shape, generator=g) / m.in_features**0.5
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
    return model.eval()


def _converted(ours: nn.Module, state: dict[str, torch.Tensor], to_ref) -> dict[str, torch.Tensor]:
    """The reference's state dict under our keys; every reference tensor used exactly once."""
    keys = {k: to_ref(k) for k in ours.state_dict()}
    assert None not in keys.values(), [k for k, v in keys.items() if v is None]
    assert sorted(keys.values()) == sorted(state), set(state) ^ set(keys.values())
    return {k: state[ref] for k, ref in keys.items()}


def _same_logits(ref: nn.Module, ours: nn.Module, shape, atol: float = 1e-5) -> None:
    torch.manual_seed(1)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected, got = ref(x.clone()), ours(x)
    assert expected.shape == got.shape == (shape[0], 400)
    assert expected.std() > 0.1  # logits, not a softmax
    torch.testing.assert_close(got, expected, atol=atol, rtol=1e-4)


def _x3d_reference(ptv, name: str, frames: int, size: int) -> nn.Module:
    """pytorchvideo's hub model ``name``, or (at another clip) ``create_x3d`` with the hub's factors, whose head
    pool is then sized for that clip; the softmax the hub model ends in removed (vbench returns logits)."""
    _, _, (t, s), _ = X3D_REFERENCE[name]
    if (frames, size) == (t, s):
        ref = getattr(ptv.hub, name)(pretrained=False)
    else:
        depth = 5.0 if name == "x3d_l" else 2.2
        ref = ptv.create_x3d(input_clip_length=frames, input_crop_size=size, depth_factor=depth)
    assert isinstance(ref.blocks[-1].activation, nn.Softmax)
    ref.blocks[-1].activation = None
    return _trained_like(ref)


@pytest.mark.parametrize(
    ("name", "frames", "size"),
    [("x3d_xs", 4, 160), ("x3d_s", 13, 96), ("x3d_m", 5, 64), ("x3d_l", 2, 64)],
)
def test_x3d_with_pytorchvideo_weights_gives_its_logits(ptv, name, frames, size):
    """x3d_xs at its training clip (the hub model itself); the others at small clips, their head pool
    built for the clip as the hub builds it for the training clip."""
    from archs import x3d

    ref = _x3d_reference(ptv, name, frames, size)
    ours = archs.create_model(name).eval()
    ours.load_state_dict(_converted(ours, ref.state_dict(), x3d.pytorchvideo_key), strict=True)
    _same_logits(ref, ours, (1 if frames * size > 600 else 2, 3, frames, size, size))


def _pyslowfast_key_of_pytorchvideo(key: str) -> str:
    """pytorchvideo's X3D key -> PySlowFast's, written from PySlowFast's code (``video_model_builder.X3D``,
    ``stem_helper.X3DStem``, ``resnet_helper.ResBlock``/``X3DTransform``, ``head_helper.X3DHead``, ``operators.SE``),
    independently of ``archs.x3d``."""
    rules = [
        (r"^blocks\.0\.conv\.conv_t\.", "s1.pathway0_stem.conv_xy."),  # pytorchvideo's conv_t is the spatial conv
        (r"^blocks\.0\.conv\.conv_xy\.", "s1.pathway0_stem.conv."),
        (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
        (r"^blocks\.5\.pool\.pre_conv\.", "head.conv_5."),
        (r"^blocks\.5\.pool\.pre_norm\.", "head.conv_5_bn."),
        (r"^blocks\.5\.pool\.post_conv\.", "head.lin_5."),
        (r"^blocks\.5\.proj\.", "head.projection."),
    ]
    for pattern, repl in rules:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    m = re.match(r"^blocks\.(\d)\.res_blocks\.(\d+)\.(.*)$", key)
    assert m, key
    stage, block, rest = int(m[1]) + 1, m[2], m[3]
    parts = {
        "branch1_conv.": "branch1.",
        "branch1_norm.": "branch1_bn.",
        "branch2.conv_a.": "branch2.a.",
        "branch2.norm_a.": "branch2.a_bn.",
        "branch2.conv_b.": "branch2.b.",
        "branch2.norm_b.0.": "branch2.b_bn.",
        "branch2.norm_b.1.block.0.": "branch2.se.fc1.",
        "branch2.norm_b.1.block.2.": "branch2.se.fc2.",
        "branch2.conv_c.": "branch2.c.",
        "branch2.norm_c.": "branch2.c_bn.",
    }
    prefix = next(p for p in parts if rest.startswith(p))
    return f"s{stage}.pathway0_res{block}.{parts[prefix]}{rest[len(prefix) :]}"


def test_x3d_with_pyslowfast_weights_gives_its_logits(ptv):
    """PySlowFast's X3D is pytorchvideo's plus a BatchNorm on res2's first shortcut: the reference is
    pytorchvideo's model with that BatchNorm put in, its checkpoint in PySlowFast's names."""
    from archs import x3d

    ref = _x3d_reference(ptv, "x3d_xs", 4, 64)
    shortcut = ref.blocks[1].res_blocks[0]
    assert shortcut.branch1_conv is not None and shortcut.branch1_norm is None
    shortcut.branch1_norm = _trained_like(nn.BatchNorm3d(24), seed=3)
    checkpoint = {_pyslowfast_key_of_pytorchvideo(k): v for k, v in ref.state_dict().items()}
    assert "s2.pathway0_res0.branch1_bn.running_var" in checkpoint

    ours = archs.create_model("x3d_xs").eval()
    folded = x3d.fold_pyslowfast_shortcut_norm(dict(checkpoint))
    ours.load_state_dict(_converted(ours, folded, x3d.pyslowfast_key), strict=True)
    _same_logits(ref, ours, (2, 3, 4, 64, 64))


def test_folding_needs_pyslowfasts_shortcut_norm():
    from archs import x3d

    with pytest.raises(KeyError):
        x3d.fold_pyslowfast_shortcut_norm({"blocks.0.conv.conv_t.weight": torch.zeros(1)})


def test_ir_csn_152_with_pytorchvideo_weights_gives_its_logits(ptv):
    """pytorchvideo's ir-CSN-152 (its hub's csn_r101 construction at depth 152) with the head pool sized for
    the 8x64x64 clip, where its last map is 1x2x2, as (4, 7, 7) is for 32x224x224."""
    from archs import csn

    ref = _trained_like(
        ptv.create_csn(model_depth=152, stem_pool=nn.MaxPool3d, head_pool_kernel_size=(1, 2, 2)), seed=5
    )
    ours = archs.create_model("ir_csn_152").eval()
    ours.load_state_dict(_converted(ours, ref.state_dict(), csn.pytorchvideo_key), strict=True)
    _same_logits(ref, ours, (1, 3, 8, 64, 64), atol=1e-4)


# ---------------------------------------------------------------- checkpoints through create_model (the layouts)


def _save(tmp_path, payload) -> str:
    path = tmp_path / "checkpoint.pyth"
    torch.save(payload, path)
    return str(path)


def test_x3d_pytorchvideo_checkpoints_load_through_create_model(ptv, tmp_path):
    """pytorchvideo's hub reads its files' ``["model_state"]``; PySlowFast saves its pytorchvideo models
    as ``{"model_state": ...}`` with a ``model.`` prefix; a bare state dict is what the hub model holds.
    All three load to the same tensors, which give the reference's logits."""
    ref = _x3d_reference(ptv, "x3d_xs", 4, 64)
    state = ref.state_dict()
    payloads = [
        state,
        {"model_state": state, "epoch": 300},
        {"model_state": {f"model.{k}": v for k, v in state.items()}, "cfg": "X3D_XS"},
    ]
    models = []
    for i, payload in enumerate(payloads):
        path = tmp_path / f"checkpoint{i}.pyth"
        torch.save(payload, path)
        models.append(archs.create_model("x3d_xs", weights=str(path)).eval())
        info = models[-1].pretrained_cfg
        assert (info.layout, info.num_classes, info.protocol) == ("pytorchvideo", 400, "x3d")
    first = models[0].state_dict()
    for other in models[1:]:
        assert all(torch.equal(first[k], v) for k, v in other.state_dict().items())
    _same_logits(ref, models[0], (2, 3, 4, 64, 64))


def test_x3d_pyslowfast_checkpoint_loads_through_create_model(ptv, tmp_path):
    ref = _x3d_reference(ptv, "x3d_m", 4, 64)
    ref.blocks[1].res_blocks[0].branch1_norm = _trained_like(nn.BatchNorm3d(24), seed=7)
    state = {_pyslowfast_key_of_pytorchvideo(k): v for k, v in ref.state_dict().items()}
    path = _save(tmp_path, {"model_state": state, "optimizer_state": {}, "epoch": 300})
    model = archs.create_model("x3d_m", weights=path).eval()
    assert model.pretrained_cfg.layout == "pyslowfast"
    _same_logits(ref, model, (2, 3, 4, 64, 64))


def test_ir_csn_pytorchvideo_checkpoint_loads_through_create_model(ptv, tmp_path):
    ref = _trained_like(ptv.create_csn(model_depth=152, stem_pool=nn.MaxPool3d, head_pool_kernel_size=(1, 2, 2)))
    state = {f"model.{k}": v for k, v in ref.state_dict().items()}
    model = archs.create_model("ir_csn_152", weights=_save(tmp_path, {"model_state": state})).eval()
    assert (model.pretrained_cfg.layout, model.pretrained_cfg.protocol) == ("pytorchvideo", "csn")
    _same_logits(ref, model, (1, 3, 8, 64, 64), atol=1e-4)


def test_a_checkpoint_of_the_other_family_is_refused_in_one_line():
    """pytorchvideo's X3D and CSN share its block names but not its stems: each refuses the other's checkpoint,
    naming the layout and the first tensor it lacks."""
    from archs import csn, x3d

    x3d_state = {x3d.pytorchvideo_key(k): v for k, v in archs.create_model("x3d_xs").state_dict().items()}
    with pytest.raises(archs.WeightsError, match=r"layout pytorchvideo, missing key blocks\.0\.conv\.weight$"):
        archs.create_model("ir_csn_152", weights=x3d_state)
    with torch.device("meta"):
        csn_keys = [csn.pytorchvideo_key(k) for k in archs.create_model("ir_csn_152").state_dict()]
    csn_state = {k: torch.zeros(1) for k in csn_keys if k is not None}
    with pytest.raises(archs.WeightsError, match=r"layout pytorchvideo, missing key blocks\.0\.conv\.conv_t\.weight$"):
        archs.create_model("x3d_xs", weights=csn_state)


def test_preprocessing_and_protocols_with_their_sources():
    from archs._weights import KINETICS_MEAN, get_protocol

    for name, (crop, frames, stride) in {
        "x3d_xs": (182, 4, 12),
        "x3d_s": (182, 13, 6),
        "x3d_m": (256, 16, 5),
        "x3d_l": (356, 16, 5),
        "ir_csn_152": (256, 32, 2),
        "ip_csn_152": (256, 32, 2),
    }.items():
        pretrained = archs.get_arch(name).pretrained()
        p = pretrained.preprocess
        assert (p.resize, p.crop, p.frames, p.frame_stride) == (crop, crop, frames, stride), name
        assert all(layout.preprocess == p for layout in pretrained.layouts)
        protocol = get_protocol(pretrained.protocol)
        assert (protocol.clips, protocol.crops) == (10, 3) and protocol.source
        assert p.mean == ((0.45,) * 3 if name != "ip_csn_152" else KINETICS_MEAN)
    assert [lay.name for lay in archs.get_arch("x3d_m").pretrained().layouts] == ["pytorchvideo", "pyslowfast"]
    assert archs.get_arch("ip_csn_152").pretrained().layouts == ()
