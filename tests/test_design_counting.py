"""The counting API in fvcore's shape: one analysis per (model, input), many views, counters a table.

docs/design.md, "The FLOP convention"; docs/contributing.md, "Style" (one analysis, many views).
"""

import subprocess
import sys

import pytest
import torch
from torch import nn

import archs
from bench.measure.counting import (
    COUNTERS,
    MacAnalysis,
    build_meta,
    count,
    count_with,
    module_breakdown,
)
from bench.measure.mac_rules import MAC_FREE_OPS

SHAPE = (2, 3, 4, 6, 6)

# By hand, batch 2 of 3 x 4 x 6 x 6:
#   conv: 3x3x3, padding 1, 3 -> 8 channels, no bias: output 2 x 8 x 4 x 6 x 6 = 2304 elements,
#         each 3 * 27 = 81 MACs                                       -> 2304 * 81 = 186_624
#   fc:   8 -> 5 on 2 clips                                           -> 2 * 8 * 5 =      80
#   (ReLU, pooling and flatten have no MACs under the convention)        total      186_704
CONV_MACS = 2 * 8 * 4 * 6 * 6 * 3 * 27
FC_MACS = 2 * 8 * 5
# Training: backward of fc = input grad (80) + weight grad (80); backward of conv = weight grad
# only (the clip needs no gradient), as many MACs as its forward.
TRAIN_MACS = (CONV_MACS + FC_MACS) + (FC_MACS + FC_MACS) + CONV_MACS


class Toy(nn.Module):
    """Conv3d + Linear, counting its own forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 5)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(self.flat(self.pool(self.act(self.conv(x)))))


def _toy() -> Toy:
    return Toy().to("meta").eval()


def test_total_by_module_and_by_operator_agree_with_the_hand_count():
    a = MacAnalysis(_toy(), SHAPE)
    assert a.total() == CONV_MACS + FC_MACS == 186_704
    depth1 = {name: macs for name, macs in a.by_module().items() if name and "." not in name}
    assert depth1 == {"conv": CONV_MACS, "act": 0, "pool": 0, "flat": 0, "fc": FC_MACS}
    assert sum(depth1.values()) == a.total() == a.by_module()[""]
    assert a.by_operator() == {"aten.convolution": CONV_MACS, "aten.addmm": FC_MACS}
    assert sum(a.by_operator().values()) == a.total()
    assert a.by_module_and_operator()["fc"] == {"aten.addmm": FC_MACS}
    assert a.total("conv") == CONV_MACS and a.by_operator("conv") == {"aten.convolution": CONV_MACS}


def test_one_forward_pass_answers_every_view():
    model = _toy()
    a = MacAnalysis(model, SHAPE)
    assert model.calls == 0  # built cheaply; runs on first use
    a.total(), a.by_module(), a.by_operator(), a.by_module_and_operator(), a.unsupported_ops()
    a.uncounted_ops(), a.activations(), a.activations_by_module(), a.peak_activation(), a.output_shape()
    a.params_by_module(), a.module_stats(), a.counts()
    assert model.calls == 1
    assert a.train_total() == TRAIN_MACS
    assert model.calls == 2  # training MACs need a backward: one more pass, once
    assert a.counts(train=True).train_macs == TRAIN_MACS and model.calls == 2


def test_activations_params_and_output_from_the_same_pass():
    a = MacAnalysis(_toy(), SHAPE)
    assert a.activations_by_leaf() == {"conv": 2304, "act": 2304, "pool": 16, "flat": 16, "fc": 10}
    assert a.activations() == 4650 and a.peak_activation() == 2304
    assert a.activations_by_module()[""] == 4650 and a.activations_by_module()["fc"] == 10
    assert a.output_shape() == (2, 5)
    assert a.params() == a.trainable_params() == 8 * 3 * 27 + 8 * 5 + 5
    assert a.params_by_module() == {"": 693, "conv": 648, "act": 0, "pool": 0, "flat": 0, "fc": 45}
    c = a.counts()
    assert (c.params, c.macs, c.train_macs, c.activations, c.output_shape, c.peak_activation) == (
        693,
        186_704,
        None,
        4650,
        (2, 5),
        2304,
    )


class WithMatVec(nn.Module):
    """A linear layer, then a matrix-vector product FlopCounterMode has no formula for (aten.mv)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.direction = nn.Parameter(torch.empty(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + torch.relu(x @ self.direction).unsqueeze(1) + torch.cdist(x, x).sum()


def test_operators_that_do_work_but_are_not_counted_are_reported():
    a = MacAnalysis(WithMatVec().to("meta"), (3, 8))
    assert a.total() == 3 * 8 * 4  # only the linear layer
    assert a.unsupported_ops() == {"aten.mv": 1, "aten._cdist_forward": 1}
    uncounted = a.uncounted_ops()
    assert uncounted["aten.mv"] == 1 and uncounted["aten.relu"] == 1  # free ops are seen, not reported
    assert all(op in MAC_FREE_OPS for op in uncounted.keys() - a.unsupported_ops().keys())


def test_free_operators_run_whole_and_count_what_the_decomposition_counts():
    """Batch and layer norm reach the counter undecomposed (their Python decomposition on the meta device was most
    of a static run's count), and the MACs are FlopCounterMode's own, which decomposes them."""
    from torch.utils.flop_counter import FlopCounterMode

    model = nn.Sequential(nn.Conv3d(3, 8, 3), nn.BatchNorm3d(8), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                          nn.LayerNorm(8), nn.Linear(8, 5)).eval().to("meta")  # fmt: skip
    a = MacAnalysis(model, (1, 3, 4, 8, 8))
    uncounted = a.uncounted_ops()
    assert uncounted["aten.native_batch_norm"] == 1 and uncounted["aten.native_layer_norm"] == 1
    assert "aten.rsqrt" not in uncounted  # what their decompositions would have left
    with FlopCounterMode(display=False) as plain:
        model(torch.empty(1, 3, 4, 8, 8, device="meta"))
    assert a.total() == plain.get_total_flops() // 2 == 8 * 3 * 27 * 2 * 6 * 6 + 8 * 5


@pytest.mark.parametrize("name", archs.list_archs())
def test_no_registered_architecture_has_unsupported_operators(name):
    a = MacAnalysis(build_meta(name), (1, *archs.get_arch(name).min_input))
    assert a.unsupported_ops() == {}


def test_the_counters_are_a_table():
    assert set(COUNTERS) == {"torch", "fvcore"}
    with pytest.raises(ValueError, match="torch, fvcore"):
        count_with("flops", "r3d_18", (1, 3, 8, 16, 16))
    shape = (1, *archs.get_arch("r3d_18").min_input)
    assert COUNTERS["torch"]("r3d_18", shape).total() == count("r3d_18", shape).macs
    assert count_with("torch", "r3d_18", shape, train=True) == count("r3d_18", shape, train=True)


def test_importing_counting_does_not_import_fvcore():
    code = "import sys, bench.measure.counting; assert 'fvcore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fvcore_counter_agrees_on_a_real_architecture():
    pytest.importorskip("fvcore")
    shape = (1, *archs.get_arch("r2plus1d_18").min_input)
    fv = COUNTERS["fvcore"]("r2plus1d_18", shape)
    assert fv.total() == COUNTERS["torch"]("r2plus1d_18", shape).total() and fv.unsupported_ops() == {}
    counts = count_with("fvcore", "r2plus1d_18", shape, train=True)
    assert counts.macs == fv.total() and counts.train_macs is None
    assert counts.params == count("r2plus1d_18", shape).params


# Written down from bench.measure.counting before it became one analysis: (params, trainable, macs,
# train_macs, activations, output_shape, peak_activation) at min_input, and the breakdown
# (rows, then sums over every row of params, MACs, activations, then the depth <= 1 rows).
BEFORE = {
    "r3d_18": (
        (33371472, 33371472, 415473664, 1231970304, 642960, (1, 400), 32768),
        (92, 166185056, 2047852544, 2928416),
        [
            ("VideoResNet", "VideoResNet", 0, 33371472, 415473664, 642960),
            ("stem", "Sequential", 1, 28352, 14450688, 98304),
            ("layer1", "Sequential", 1, 442880, 226492416, 393216),
            ("layer2", "Sequential", 1, 1557760, 99614720, 114688),
            ("layer3", "Sequential", 1, 6228480, 49807360, 28672),
            ("layer4", "Sequential", 1, 24908800, 24903680, 7168),
            ("avgpool", "AdaptiveAvgPool3d", 1, 0, 0, 512),
            ("fc", "Linear", 1, 205200, 204800, 400),
        ],
    ),
    "r2plus1d_18": (
        (33370839, 33370839, 423634432, 1267516416, 1930470, (1, 400), 73728),
        (159, 199176311, 2516638208, 10620196),
        [
            ("VideoResNet", "VideoResNet", 0, 33370839, 423634432, 1930470),
            ("stem", "Sequential", 1, 15473, 7810560, 167424),
            ("layer1", "Sequential", 1, 444032, 226492416, 1277952),
            ("layer2", "Sequential", 1, 1559564, 108068864, 368896),
            ("layer3", "Sequential", 1, 6231320, 54034432, 92224),
            ("layer4", "Sequential", 1, 24915250, 27023360, 23062),
            ("avgpool", "AdaptiveAvgPool3d", 1, 0, 0, 512),
            ("fc", "Linear", 1, 205200, 204800, 400),
        ],
    ),
    "s3d_g": (
        (9545056, 9545056, 9213683392, None, 68689136, (1, 400), 5419584),  # train: 26844371328
        (493, 67538720, 59887202752, 403906864),
        [
            ("InceptionNet", "InceptionNet", 0, 9545056, 9213683392, 68689136),
            ("features", "Sequential", 1, 9135056, 9213273792, 68686688),
            ("avgpool", "AvgPool3d", 1, 0, 0, 1024),
            ("dropout", "Dropout", 1, 0, 0, 1024),
            ("logits", "Conv3d", 1, 410000, 409600, 400),
        ],
    ),
}


@pytest.mark.parametrize("name", BEFORE)
def test_count_and_breakdown_give_the_numbers_they_gave_before(name):
    expected_counts, expected_sums, expected_top = BEFORE[name]
    shape = (1, *archs.get_arch(name).min_input)
    c = count(name, shape, train=expected_counts[3] is not None)
    got = (c.params, c.trainable_params, c.macs, c.train_macs, c.activations, c.output_shape, c.peak_activation)
    assert got == expected_counts
    rows = module_breakdown(name, shape)
    sums = (len(rows), sum(r.params for r in rows), sum(r.macs for r in rows), sum(r.activations for r in rows))
    assert sums == expected_sums
    top = [(r.name, r.type, r.depth, r.params, r.macs, r.activations) for r in rows if r.depth <= 1]
    assert top == expected_top
    assert module_breakdown(name, shape, max_depth=1) == [r for r in rows if r.depth <= 1]
