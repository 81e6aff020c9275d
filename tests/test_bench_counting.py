"""Counting against ground truth worked out by hand, and the two counters against each other."""

import pytest
import torch
from torch import nn

import archs
from archs.resnet import midplanes
from bench.measure.counting import COUNTERS, count, count_macs, module_breakdown, param_count


def _meta(module: nn.Module) -> nn.Module:
    return module.to("meta")


def test_conv3d_macs_from_the_formula():
    # C_in * C_out * kt * kh * kw * T_out * H_out * W_out
    conv = _meta(nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False))
    assert count_macs(conv, (1, 3, 16, 112, 112)) == 3 * 64 * 3 * 7 * 7 * 16 * 56 * 56
    assert count_macs(conv, (4, 3, 16, 112, 112)) == 4 * 3 * 64 * 3 * 7 * 7 * 16 * 56 * 56


def test_depthwise_conv_counts_one_input_channel_per_output():
    conv = _meta(nn.Conv3d(32, 32, 3, padding=1, groups=32, bias=False))
    assert count_macs(conv, (1, 32, 8, 14, 14)) == 32 * 1 * 27 * 8 * 14 * 14


def test_2plus1d_block_macs_by_hand():
    """The first block of conv3_x of R(2+1)D-18 at 16x112x112: input 64x16x56x56, stride 2."""
    block = archs.create_model("r2plus1d_18").layer2[0].to("meta")
    t, h = 8, 28  # output size after stride 2 in time and space
    m1, m2 = midplanes(64, 128), midplanes(128, 128)
    expected = (
        64 * m1 * 9 * 16 * h * h  # 1x3x3, spatial stride only: 16 frames, 28x28
        + m1 * 128 * 3 * t * h * h  # 3x1x1, temporal stride
        + 128 * m2 * 9 * t * h * h
        + m2 * 128 * 3 * t * h * h
        + 64 * 128 * t * h * h  # 1x1x1 projection shortcut, stride 2
    )
    assert count_macs(block, (1, 64, 16, 56, 56)) == expected


def test_linear_and_matmul_macs():
    lin = _meta(nn.Linear(512, 400))
    assert count_macs(lin, (2, 512)) == 2 * 512 * 400


class _SelfAttention(nn.Module):
    """Attention without projections: MACs are the two matmuls alone (the scale is elementwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q = (x * self.scale).view(b, n, 2, c // 2).transpose(1, 2)  # 2 heads
        return torch.nn.functional.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(b, n, c)


_ATTENTION_MACS = 3 * 2 * 50 * 50 * (16 + 16)  # batch x heads x L x S x (E + Ev): Q K^T, then weights x V


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_fused_attention_counts_its_two_matmuls(device):
    # On the CPU, SDPA runs a fused kernel that torch's counter counts as zero (pytorch#195460).
    model = _SelfAttention().to(device)
    assert count_macs(model, (3, 50, 32)) == _ATTENTION_MACS


def test_fvcore_counts_fused_attention():
    pytest.importorskip("fvcore")
    from fvcore.nn import FlopCountAnalysis

    from bench.measure.fvcore_counter import _attention

    analysis = FlopCountAnalysis(_SelfAttention(), torch.randn(3, 50, 32))
    analysis.set_op_handle(**{"aten::scaled_dot_product_attention": _attention})
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() == _ATTENTION_MACS


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_training_counts_fused_attention_backward(device):
    from bench.measure.counting import MacAnalysis

    # backward of the two matmuls: two matmuls for each (grads of both operands), i.e. 2x forward
    assert MacAnalysis(_SelfAttention().to(device), (3, 50, 32)).train_total() == 3 * _ATTENTION_MACS


class _Pathways(nn.Module):
    """A parent that calls its container's members one by one (SlowFast's pathways, a ModuleList of blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.path = nn.Module()
        self.path.first = nn.Linear(8, 8, bias=False)
        self.path.second = nn.Linear(8, 4, bias=False)
        self.blocks = nn.ModuleList(nn.Linear(4, 4, bias=False) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.path.second(self.path.first(x))
        for block in self.blocks:
            x = block(x)
        return x


def test_a_container_nobody_calls_holds_its_childrens_macs():
    from bench.measure.counting import MacAnalysis

    by_module = MacAnalysis(_Pathways().to("meta"), (2, 8)).by_module()
    assert by_module["path"] == 2 * (8 * 8 + 8 * 4) and by_module["blocks"] == 2 * 3 * 16
    assert by_module["path"] + by_module["blocks"] == by_module[""]


def test_param_count_counts_shared_tensors_once_and_trainable_apart():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, shared, nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    assert param_count(model) == (20 + 10, 20 + 2)


def test_training_macs_are_about_three_times_forward():
    c = count("r3d_18", (1, 3, 16, 112, 112), train=True)
    # backward = input grads + weight grads; conv1 needs no input grad
    assert 2.9 < c.train_macs / c.macs < 3.0
    assert count("r3d_18", (1, 3, 16, 112, 112)).train_macs is None


def test_activations_are_the_elements_written_by_leaf_modules():
    model = nn.Sequential(nn.Conv3d(3, 8, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 4 * 4, 5))
    from bench.measure import counting

    with torch.device("meta"):
        m = model.to("meta")
    with counting._activation_hooks(m) as (written, read):
        m(torch.empty(1, 3, 2, 4, 4, device="meta"))
    assert written == {"0": 256, "1": 256, "2": 256, "3": 5}
    assert read == {"0": 96, "1": 256, "2": 256, "3": 256}  # each one's tensor input: the traffic's other half


def test_module_breakdown_sums_to_the_total():
    rows = module_breakdown("r3d_18", (1, 3, 16, 112, 112), max_depth=1)
    root, children = rows[0], rows[1:]
    assert root.depth == 0 and root.macs == count("r3d_18", (1, 3, 16, 112, 112)).macs
    assert sum(r.macs for r in children) == root.macs
    assert sum(r.params for r in children) == root.params
    assert [r.name for r in children] == ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


@pytest.mark.parametrize("name", archs.list_archs())
def test_fvcore_agrees_with_the_meta_counter(name):
    """Two independent counters, same conv + linear MACs, for every registered architecture."""
    pytest.importorskip("fvcore")
    shape = (1, *archs.get_arch(name).min_input)
    fvcore = COUNTERS["fvcore"](name, shape)
    assert fvcore.total() == count(name, shape).macs
    assert dict(fvcore.unsupported_ops()) == {}
