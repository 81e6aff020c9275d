"""Inflation: repeat 2D kernels in time and divide by N; the boring-video fixed point."""

import pytest
import torch
from torch import nn

import archs
from archs.inflate import inflate_conv_weight, inflate_state_dict


def _random_2d_inception(seed: int = 0) -> nn.Module:
    """A 2D Inception-v1 with non-trivial BN statistics, so that BN is part of the check."""
    torch.manual_seed(seed)
    model = archs.inception_v1_2d(num_classes=400).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


def test_inflate_conv_weight_repeats_and_divides():
    w = torch.arange(6.0).reshape(1, 1, 2, 3)
    w3 = inflate_conv_weight(w, 3)
    assert w3.shape == (1, 1, 3, 2, 3)
    for t in range(3):
        assert torch.equal(w3[:, :, t], w / 3)
    assert torch.allclose(w3.sum(dim=2), w)


def test_inflate_conv_weight_rejects_bad_input():
    with pytest.raises(ValueError):
        inflate_conv_weight(torch.zeros(1, 1, 1, 3, 3), 3)
    with pytest.raises(ValueError):
        inflate_conv_weight(torch.zeros(1, 1, 3, 3), 0)


def test_inflation_maps_every_tensor_of_i3d():
    model_2d, model_3d = _random_2d_inception(), archs.create_model("i3d")
    state = inflate_state_dict(model_2d.state_dict(), model_3d)
    assert state.keys() == model_3d.state_dict().keys()
    stem = state["features.Conv_1a.conv.weight"]
    assert stem.shape == (64, 3, 7, 7, 7)
    assert torch.allclose(stem.sum(dim=2), model_2d.state_dict()["features.Conv_1a.conv.weight"])


def test_inflation_refuses_mismatched_networks():
    with pytest.raises((KeyError, ValueError)):
        inflate_state_dict(archs.inception_v1_2d().state_dict(), archs.create_model("s3d"))


def _features_per_block(model_2d, model_3d, image, frames):
    clip = image[:, :, None].repeat(1, 1, frames, 1, 1)
    x2, x3 = image, clip
    with torch.inference_mode():
        for (name, l2), (_, l3) in zip(model_2d.features.named_children(), model_3d.features.named_children()):
            x2, x3 = l2(x2), l3(x3)
            yield name, x2, x3


def test_boring_video_fixed_point():
    """On one image repeated in time, I3D's features equal the 2D network's at every time
    step away from the temporal padding, at every block up to Mixed_5c."""
    model_2d = _random_2d_inception()
    model_3d = archs.inflate_from_2d(archs.create_model("i3d"), model_2d).eval()
    image = torch.randn(1, 3, 32, 32)
    for name, x2, x3 in _features_per_block(model_2d, model_3d, image, frames=128):
        t = x3.shape[2]
        middle = range(t // 4, t - t // 4)  # far from the zero padding at both ends
        for i in middle:
            torch.testing.assert_close(x3[:, :, i], x2, atol=1e-4, rtol=1e-4, msg=f"{name} t={i}")
    # The border does see the padding, so the check above is not vacuous.
    _, x2, x3 = next(iter(_features_per_block(model_2d, model_3d, image, frames=128)))
    assert not torch.allclose(x3[:, :, 0], x2, atol=1e-4)


def test_without_rescaling_the_fixed_point_breaks():
    model_2d = _random_2d_inception()
    model_3d = archs.inflate_from_2d(archs.create_model("i3d"), model_2d).eval()
    with torch.no_grad():
        model_3d.features.Conv_1a.conv.weight.mul_(7)  # repeat without dividing by N = 7
    image = torch.randn(1, 3, 32, 32)
    _, x2, x3 = next(iter(_features_per_block(model_2d, model_3d, image, frames=32)))
    assert not torch.allclose(x3[:, :, 8], x2, atol=1e-2)
