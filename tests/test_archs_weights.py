"""Reference checkpoints load into vbench's models, which then compute what the references compute.

For every reference (torchvision's video ResNets and S3D, piergiaj's I3D, the VMZ /
IG-65M R(2+1)D-34), a state dict in the reference's own key names and shapes, made
by an independent re-implementation of the reference (``tests/reference_impls.py``),
is loaded with ``archs.create_model(name, weights=...)``; the logits of both are
compared at several input sizes, among them sizes where TensorFlow's SAME padding is
asymmetric and where torchvision's S3D pooling rounds down.

Equal logits prove something only if the logits depend on the input: weights are
initialised so that activations keep their scale (Kaiming fan-in, BatchNorm with
spread), the clips have large-scale structure (not white noise, which global pooling
averages away), and the mismatch is judged against how far the reference's logits
move between two clips. Each comparison prints its numbers (``pytest -s``).
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import reference_impls as ref_impls
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import archs
from archs import Preprocess, WeightsError, WeightsInfo
from archs._blocks import SameConv3d, SameMaxPool2d, SameMaxPool3d, same_padding

_S3D_URL = "https://download.pytorch.org/models/s3d-d76dad2f.pth"  # torchvision's S3D_Weights.KINETICS400_V1


@dataclass(frozen=True)
class Reference:
    build: Callable[[], nn.Module]
    logits: Callable[[nn.Module, Tensor], Tensor]
    layout: str
    sizes: tuple[tuple[int, int, int], ...]


def _call(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


_RESNET_SIZES = ((8, 16, 16), (9, 23, 17))
REFERENCES = {
    "r3d_18": Reference(ref_impls.tv_r3d_18, _call, "torchvision", _RESNET_SIZES),
    "mc3_18": Reference(ref_impls.tv_mc3_18, _call, "torchvision", _RESNET_SIZES),
    "r2plus1d_18_tv": Reference(ref_impls.tv_r2plus1d_18, _call, "torchvision", _RESNET_SIZES),
    "r2plus1d_34": Reference(ref_impls.ig65m_r2plus1d_34, _call, "vmz", ((8, 16, 16), (10, 24, 24))),
    # 13x209x209: torchvision's smallest clip. 17x225x225: MaxPool_5a sees 5x15x15 and rounds down to 2x7x7.
    "s3d": Reference(ref_impls.TvS3D, _call, "torchvision", ((13, 209, 209), (17, 225, 225))),
    # 9x193x193: odd before every strided op, SAME is symmetric. 10x200x224: SAME pads one more after than before
    # at the stem and MaxPool_5a in time, at every strided op in width, at all but MaxPool_4a in height.
    "i3d": Reference(ref_impls.PiergiajI3D, ref_impls.deepmind_logits, "piergiaj-i3d", ((9, 193, 193), (10, 200, 224))),
}


@functools.cache
def _pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(the reference with scale-preserving random weights, our model loaded from its state dict), in eval mode."""
    reference = ref_impls.scale_preserving_init(REFERENCES[name].build(), seed=0).eval()
    ours = archs.create_model(name, weights=reference.state_dict()).eval()
    return reference, ours


def _clips(thw: tuple[int, int, int], n: int = 2, seed: int = 1) -> Tensor:
    """Clips with structure at every scale: a coarse random pattern, upsampled, plus pixel noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, max(thw[0] // 4, 2), 6, 6, generator=g)
    smooth = F.interpolate(coarse, size=thw, mode="trilinear", align_corners=False)
    return 1.5 * smooth + 0.5 * torch.randn(n, 3, *thw, generator=g)


def _compare(name: str, thw: tuple[int, int, int]) -> tuple[float, float, float]:
    """(max |logit difference|, reference movement between the two clips, max |reference logit|)."""
    reference, ours = _pair(name)
    x = _clips(thw)
    with torch.inference_mode():
        expected = REFERENCES[name].logits(reference, x)
        got = ours(x)
    assert got.shape == expected.shape == (2, 400)
    diff = (got - expected).abs().max().item()
    movement = (expected[0] - expected[1]).abs().max().item()
    return diff, movement, expected.abs().max().item()


@pytest.mark.parametrize(("name", "thw"), [(n, s) for n, r in REFERENCES.items() for s in r.sizes])
def test_loaded_model_computes_what_the_reference_computes(name, thw, record_property):
    diff, movement, scale = _compare(name, thw)
    print(f"\n{name} {'x'.join(map(str, thw))}: max|logit diff| = {diff:.3g}, movement = {movement:.3g}, "
          f"max|logit| = {scale:.3g}")  # fmt: skip
    record_property(f"{name}_{'x'.join(map(str, thw))}", {"diff": diff, "movement": movement})
    assert movement > 1e-2 * scale, "the logits hardly depend on the input: the comparison would prove nothing"
    assert diff <= 1e-4 * movement


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_layout_and_preprocess_are_recorded(name):
    _, ours = _pair(name)
    info = ours.pretrained_cfg
    assert isinstance(info, WeightsInfo)
    assert (info.layout, info.source, info.num_classes) == (REFERENCES[name].layout, "<state dict>", 400)
    assert info.preprocess == archs.default_preprocess(name)


def test_preprocess_per_layout():
    tv = archs.default_preprocess("r3d_18")
    assert tv.mean == (0.43216, 0.394666, 0.37645) and tv.std == (0.22803, 0.22145, 0.216989)
    assert (tv.resize, tv.crop, tv.frames, tv.frame_stride) == ((128, 171), 112, 16, 1)
    s3d = archs.default_preprocess("s3d")
    assert (s3d.resize, s3d.crop, s3d.frames, s3d.mean) == ((256, 256), 224, 128, tv.mean)
    i3d = archs.default_preprocess("i3d")
    assert (i3d.mean, i3d.std, i3d.resize, i3d.crop, i3d.frames) == ((0.5,) * 3, (0.5,) * 3, 256, 224, 64)
    ig = archs.default_preprocess("r2plus1d_34")
    assert (ig.resize, ig.crop, ig.frames, ig.mean) == (128, 112, 32, tv.mean)
    assert archs.default_preprocess("r2d_18").frames == 16 and archs.default_preprocess("i2d") == i3d


# ---------------------------------------------------------------- the comparisons have teeth


def test_symmetric_padding_would_not_match_piergiaj():
    """The I3D of before (symmetric padding) is told apart: on even sizes SAME pads the stem 2/3 and
    MaxPool_2a 0/1, symmetric padding 3/3 and 1/1, which samples another grid (same shapes)."""
    reference, ours = _pair("i3d")
    x = _clips((10, 64, 64), n=1)
    stem = ours.features.Conv_1a
    symmetric_conv = nn.Conv3d(3, 64, 7, 2, 3, bias=False)
    symmetric_conv.weight = stem.conv.weight
    symmetric_pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    with torch.inference_mode():
        expected = reference.MaxPool3d_2a_3x3(reference.Conv3d_1a_7x7(x))
        assert torch.equal(ours.features.MaxPool_2a(stem(x)), expected)
        symmetric = symmetric_pool(stem.act(stem.bn(symmetric_conv(x))))
    assert symmetric.shape == expected.shape
    assert (symmetric - expected).abs().max() > 0.1 * expected.abs().max()


def test_ceil_mode_pool_would_not_match_torchvision_s3d():
    """The S3D of before (MaxPool_5a in ceil mode) kept 3x8x8 positions where torchvision keeps 2x7x7."""
    with torch.device("meta"):
        reference, ours = ref_impls.TvS3D(), archs.create_model("s3d")
        x = torch.empty(1, 3, 17, 225, 225)
        assert ours.forward_features(x).shape == reference.features(x).shape == (1, 1024, 2, 7, 7)
        ours.features.MaxPool_5a.ceil_mode = True
        assert ours.forward_features(x).shape == (1, 1024, 3, 8, 8)


def test_bn_eps_of_vmz_matters():
    """IG-65M's eps 1e-3 is part of the function: the reference with PyTorch's default eps differs."""
    reference, ours = _pair("r2plus1d_34")
    default_eps = copy.deepcopy(reference)
    for m in default_eps.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-5
    x = _clips((8, 16, 16))
    with torch.inference_mode():
        expected, other = reference(x), default_eps(x)
    movement = (expected[0] - expected[1]).abs().max().item()
    assert (other - ours(x)).abs().max().item() > 1e-3 * movement


def test_bn_settings_follow_the_references():
    def bns(name):
        return [m for m in archs.create_model(name).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    assert {(m.eps, m.momentum) for m in bns("i3d")} == {(1e-3, 0.01)}  # piergiaj
    assert {(m.eps, m.momentum) for m in bns("s3d")} == {(1e-3, 0.001)}  # torchvision
    assert {(m.eps, m.momentum) for m in bns("r3d_18")} == {(1e-5, 0.1)}  # torchvision
    assert {m.eps for m in bns("r2plus1d_34")} == {1e-3}  # VMZ / IG-65M


def test_same_padding_ops_equal_explicit_padding():
    """SAME conv and max-pool (input-dependent, asymmetric) equal padding by hand, then a VALID op."""
    assert same_padding(224, 7, 2) == (2, 3) and same_padding(225, 7, 2) == (3, 3)
    assert same_padding(224, 3, 2) == (0, 1) and same_padding(7, 2, 2) == (0, 1) and same_padding(8, 2, 2) == (0, 0)
    torch.manual_seed(0)
    for k, s in [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (4, 2), (7, 2), (3, 3)]:
        conv = SameConv3d(2, 3, k, s, 0, bias=False)
        pool3, pool2 = SameMaxPool3d(k, s), SameMaxPool2d(k, s)
        for n in range(max(k - 2, 1), 11):
            x = torch.randn(1, 2, n, n + 1, n + 2)
            pads = [same_padding(m, k, s) for m in x.shape[2:]]
            flat = [p for before, after in reversed(pads) for p in (before, after)]
            torch.testing.assert_close(conv(x), F.conv3d(F.pad(x, flat), conv.weight, None, s))
            assert torch.equal(pool3(x), F.max_pool3d(F.pad(x, flat, value=-math.inf), k, s))
            assert torch.equal(pool2(x[:, :, 0]), F.max_pool2d(F.pad(x[:, :, 0], flat[:4], value=-math.inf), k, s))


# ---------------------------------------------------------------- loading: wrappers, classes, vbench's own layout


def _piergiaj_state(num_classes: int = 400) -> dict[str, Tensor]:
    return ref_impls.PiergiajI3D(num_classes).state_dict()


def test_num_classes_comes_from_the_checkpoint():
    model = archs.create_model("i3d", weights=_piergiaj_state(157))  # piergiaj's Charades head
    assert model.num_classes == 157 == model.pretrained_cfg.num_classes


def test_old_checkpoints_without_num_batches_tracked_load():
    state = {k: v for k, v in _piergiaj_state().items() if not k.endswith("num_batches_tracked")}
    assert archs.create_model("i3d", weights=state).pretrained_cfg.layout == "piergiaj-i3d"


def test_wrappers_and_module_prefix(tmp_path):
    state = ref_impls.tv_mc3_18(num_classes=5).state_dict()
    prefixed = {f"module.{k}": v for k, v in state.items()}
    for wrapped in ({"state_dict": state}, {"model": prefixed, "epoch": 3}, {"model": {"state_dict": state}}):
        assert archs.create_model("mc3_18", weights=wrapped).num_classes == 5
    # torchvision's reference scripts save their argparse Namespace beside the weights
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": prefixed, "args": argparse.Namespace(lr=0.1), "epoch": 44}, path)
    model = archs.create_model("mc3_18", weights=path)
    assert model.pretrained_cfg.source == str(path) and model.pretrained_cfg.layout == "torchvision"
    torch.testing.assert_close(model.fc.weight, state["fc.weight"])


def test_vbench_layout_round_trip(tmp_path):
    model = archs.create_model("i3d", num_classes=7)
    with torch.no_grad():
        model.logits.bias.fill_(0.25)
    mine = Preprocess((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize=(240, 320), crop=224, frames=32, frame_stride=2)
    path = archs.save_weights(model, "i3d", tmp_path / "mine.pt", preprocess=mine)
    loaded = archs.create_model("i3d", weights=path)
    assert loaded.pretrained_cfg == WeightsInfo("vbench", str(path), 7, mine, "i3d")
    assert torch.equal(loaded.logits.bias, model.logits.bias)
    # a bare state dict in our keys is the vbench layout too, with the architecture's preprocessing
    info, _ = archs.read_weights("i3d", model.state_dict())
    assert (info.layout, info.num_classes, info.preprocess) == ("vbench", 7, archs.default_preprocess("i3d"))
    with pytest.raises(WeightsError, match="saved from 'i3d', not i2d"):
        archs.create_model("i2d", weights=path)


def test_given_num_classes_must_match_the_checkpoint():
    with pytest.raises(WeightsError, match=r"wrong shape for logits\.conv3d\.weight"):
        archs.create_model("i3d", weights=_piergiaj_state(), num_classes=10)


# ---------------------------------------------------------------- errors: one line, the first problem


def _error(name: str, weights, **kw) -> str:
    with pytest.raises(WeightsError) as info:
        archs.create_model(name, weights=weights, **kw)
    message = str(info.value)
    assert "\n" not in message and message, message
    assert isinstance(info.value, ValueError)
    return message


def test_wrong_layout():
    message = _error("i3d", {"foo.weight": torch.zeros(3), "bar.bias": torch.zeros(3)})
    assert message.startswith("<state dict>: no known layout") and "'foo.weight'" in message


def test_a_layout_of_another_architecture():
    assert "layout piergiaj-i3d, for i3d, which does not fit s3d" in _error("s3d", _piergiaj_state())
    message = _error("i3d", ref_impls.tv_mc3_18().state_dict())
    assert "layout torchvision or vmz, for the " in message and "mc" in message  # a video ResNet's


def test_missing_key(tmp_path):
    state = _piergiaj_state()
    del state["Mixed_5c.b3b.conv3d.weight"]
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    assert _error("i3d", path) == f"{path}: layout piergiaj-i3d, missing key Mixed_5c.b3b.conv3d.weight"


def test_unexpected_key():
    state = ref_impls.tv_r3d_18().state_dict()
    state["layer5.0.conv1.0.weight"] = torch.zeros(1)
    assert _error("r3d_18", state) == "<state dict>: layout torchvision, unexpected key layer5.0.conv1.0.weight"


def test_wrong_shape():
    state = ref_impls.tv_r2plus1d_18().state_dict()  # torchvision's midplanes: not the paper's r2plus1d_18
    message = _error("r2plus1d_18", state)
    assert message.startswith(
        "<state dict>: layout vmz, wrong shape for layer2.0.conv2.0.0.weight: (230, 128, 1, 3, 3)"
    )


def test_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 this is not a checkpoint \xff" * 10)
    assert _error("r3d_18", garbage).startswith(f"{garbage}: not a PyTorch checkpoint")
    assert _error("r3d_18", tmp_path / "absent.pt") == f"{tmp_path / 'absent.pt'}: no such file"
    not_weights = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_weights)
    assert "holds no state dict" in _error("r3d_18", not_weights)


def test_torchvision_weights_offline(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution\nmore detail")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    message = _error("s3d", "torchvision")
    assert message.startswith(f"torchvision: cannot download {_S3D_URL}")
    assert "name resolution" in message
    assert "publishes no weights for i3d" in _error("i3d", "torchvision")


def test_torchvision_weights_load_through_the_hub(monkeypatch):
    """With the download stubbed by a torchvision-layout state dict, the weights load and say where from."""
    state = ref_impls.TvS3D().state_dict()
    urls = []

    def hub(url, *args, **kwargs):
        urls.append(url)
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", hub)
    model = archs.create_model("s3d", weights="torchvision")
    assert urls == [_S3D_URL]
    assert (model.pretrained_cfg.layout, model.pretrained_cfg.source) == ("torchvision", "torchvision")


def test_weights_names_are_exported():
    for name in ("Preprocess", "WeightsInfo", "WeightsError", "read_weights", "default_preprocess", "save_weights"):
        assert name in archs.__all__ and getattr(archs, name) is not None
    assert issubclass(archs.WeightsError, ValueError)


def test_save_weights_never_replaces_a_device_or_fifo(tmp_path):
    import os
    import stat

    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    with pytest.raises(WeightsError, match="not a regular file"):
        archs.save_weights(archs.create_model("r2d_18", frames=1), "r2d_18", fifo, arch_kwargs={"frames": 1})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
