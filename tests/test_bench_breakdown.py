"""Where the time goes: attribution of operator time to modules, the roofline probe, ``inspect --time``.

Attribution is checked exactly on hand-made profiler events, and on a toy
model whose modules have known relative costs; the roofline's arithmetic on a
fake clock; the command through the CLI: in this process where only the command's own work is checked, and in
subprocesses where a model's prints, exits or registration must not reach the test's process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clirun import vbench, vbench_here
from torch import nn

from archs._blocks import SqueezeExcitation, Swish
from bench.measure.breakdown import OUTSIDE, ROOT_OPS, SCOPE, Op, attribute, module_kind, profile_model
from bench.measure.counting import count
from bench.measure.roofline import ProbeSizes, Roofline, intensity, probe, roofline_for
from bench.measure.rows import make_row
from bench.measure.timing import Measurement
from bench.results.records import Config

BACKWARD = "autograd::engine::evaluate_function: "


# -- attribution, exactly, on hand-made events ------------------------------------------------


def test_attribution_of_hand_made_events_is_exact() -> None:
    ops = [
        Op(SCOPE + "", 5.0, annotation=True),  # 0: the root's range
        Op(SCOPE + "conv", 1.0, parent=0, annotation=True),  # 1
        Op("aten::conv3d", 2.0, parent=1, seq=10),  # 2
        Op("aten::mkldnn_convolution", 100.0, parent=2),  # 3
        Op(SCOPE + "block", 1.0, parent=0, annotation=True),  # 4
        Op(SCOPE + "block.relu", 0.5, parent=4, annotation=True),  # 5
        Op("aten::relu_", 7.0, parent=5, seq=11),  # 6
        Op("aten::add", 3.0, parent=4, seq=12),  # 7: the block's own operator (a residual add)
        Op("aten::mean", 4.0, parent=0, seq=13),  # 8: the root's own operator
        Op("aten::nll_loss", 6.0, seq=14),  # 9: the loss, outside the model
        Op(BACKWARD + "NllLossBackward0", 2.0, seq=14),  # 10: outside (no module made it)
        Op(BACKWARD + "ConvolutionBackward0", 1.0, seq=10),  # 11: the conv's backward node
        Op("aten::convolution_backward", 200.0, parent=11),  # 12
        Op(BACKWARD + "ReluBackward0", 9.0, seq=11),  # 13
        Op(BACKWARD + "torch::autograd::AccumulateGrad", 8.0),  # 14: gradient accumulation: outside
        Op("Optimizer.step#SGD.step", 2.5, annotation=True),  # 15
        Op("aten::add_", 11.0, parent=15),  # 16: the optimiser's work, outside
    ]
    got = attribute(ops)
    assert dict(got.forward_us) == {"conv": 102.0, "block.relu": 7.0, "block": 3.0, "": 4.0}
    assert dict(got.backward_us) == {"conv": 201.0, "block.relu": 9.0}
    assert got.outside_us == 6.0 + 2.0 + 8.0 + 11.0
    assert got.annotation_us == 5.0 + 1.0 + 1.0 + 0.5 + 2.5
    operators = sum(op.self_us for op in ops if not op.annotation)
    assert got.total_us == operators  # nothing dropped, nothing counted twice


def test_a_backward_node_is_matched_on_its_forward_thread() -> None:
    ops = [
        Op(SCOPE + "a", 0.0, thread=1, annotation=True),
        Op("aten::mm", 1.0, parent=0, seq=3, thread=1),
        Op(SCOPE + "b", 0.0, thread=2, annotation=True),
        Op("aten::mm", 1.0, parent=2, seq=3, thread=2),  # the same sequence number on another thread
        Op(BACKWARD + "MmBackward0", 5.0, seq=3, thread=7, fwd_thread=2),
    ]
    assert dict(attribute(ops).backward_us) == {"b": 5.0}


# -- attribution on a real run of a toy model ---------------------------------------------------


class _Matmuls(nn.Module):
    """``times`` products with a fixed square matrix: its cost is ``times`` units."""

    def __init__(self, times: int, n: int = 384) -> None:
        super().__init__()
        self.times = times
        self.weight = nn.Parameter(torch.randn(n, n) / n**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = x @ self.weight
        return x


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.light = _Matmuls(1)
        self.heavy = _Matmuls(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heavy(self.light(x))


def test_a_toy_models_time_goes_to_its_modules_in_proportion_to_their_work() -> None:
    # One thread, and work large enough that a time slice lost to another process (CI runs two
    # test workers on two cores) moves the ratio little: heavy does 8x light's work, and the bounds
    # are wide, since this checks that time lands in the right module, not how fast a matmul runs.
    torch.manual_seed(0)
    model = _Toy()
    x = torch.randn(384, 384)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            fn = lambda: model(x)  # noqa: E731
            fn()
            run = profile_model(model, fn, "cpu", iterations=10)
    finally:
        torch.set_num_threads(threads)
    fwd = run.attribution.forward_us
    assert set(fwd) <= {"", "light", "heavy"}
    ratio = fwd["heavy"] / fwd["light"]
    assert 2.5 < ratio < 25.0, f"heavy does 8x the work of light; attributed {ratio:.2f}x"
    # Everything the profiler saw, and only that, is attributed.
    assert run.attribution.total_us == pytest.approx(run.profiler_us, rel=1e-6)
    assert len(run.walls) == 10


def test_a_training_step_splits_forward_and_backward_per_module() -> None:
    torch.manual_seed(0)
    model = _Toy()
    x = torch.randn(256, 384)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    step()
    run = profile_model(model, step, "cpu", iterations=3)
    a = run.attribution
    assert a.backward_us["heavy"] > a.backward_us["light"] > 0  # backward nodes found their modules
    assert a.forward_us["heavy"] > a.forward_us["light"] > 0
    assert a.outside_us > 0  # the loss and gradient accumulation
    assert a.total_us == pytest.approx(run.profiler_us, rel=1e-6)


@pytest.mark.parametrize(
    ("module", "kind"),
    [
        (nn.Conv3d(4, 4, 3), "3d"),
        (nn.Conv3d(4, 4, (1, 3, 3)), "spatial"),
        (nn.Conv3d(4, 4, (3, 1, 1)), "temporal"),
        (nn.Conv3d(4, 4, 1), "pointwise"),
        (nn.Conv3d(4, 4, (4, 7, 7)), "3d"),
        (nn.BatchNorm3d(4), "norm"),
        (nn.ReLU(), "activation"),
        (nn.MaxPool3d(2), "pooling"),
        (nn.AdaptiveAvgPool3d(1), "pooling"),
        (nn.Linear(4, 4), "linear"),
        (nn.Dropout(), "other"),
        (nn.Conv3d(4, 4, 3, groups=4), "channelwise"),
        (nn.Conv3d(4, 8, 3, groups=2), "3d"),  # grouped, but not one filter per channel
        (nn.Conv3d(4, 4, (5, 1, 1), groups=4), "channelwise"),
        (nn.Conv3d(1, 1, 3, groups=1), "3d"),  # one channel is not a channel-wise conv
        (Swish(), "swish"),
        (SqueezeExcitation(8, 8), "se"),
    ],
)
def test_module_kinds(module: nn.Module, kind: str) -> None:
    assert module_kind(module) == kind


def test_everything_inside_a_gating_module_is_gating() -> None:
    from bench.measure.breakdown import _kinds
    from bench.measure.counting import build_meta

    kinds = _kinds(build_meta("s3d_g"))
    gates = [name for name in kinds if name.endswith("gate") or "Gating" in name]
    gating = {n for n, k in kinds.items() if k == "gating"}
    assert gating, "S3D-G has self-gating modules"
    assert all(any(n == g or n.startswith(g + ".") for g in gating) for n in gating)
    assert not any(k == "gating" for n, k in _kinds(build_meta("s3d")).items()), f"S3D has no gates: {gates}"


class _Attention(nn.Module):
    work_kind = "attention"

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(4, 12)
        self.proj = nn.Linear(4, 4)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attention()
        self.norm = nn.LayerNorm(4)
        self.mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
        self.mlp.work_kind = "mlp"  # an instance attribute is no declaration: the class says what it is


def test_a_declared_kind_covers_what_is_inside_it() -> None:
    from bench.measure.breakdown import _kinds

    kinds = _kinds(_Block())
    assert kinds["attn"] == kinds["attn.qkv"] == kinds["attn.proj"] == "attention"
    assert kinds["norm"] == "norm"
    assert kinds["mlp.0"] == "linear" and kinds["mlp.1"] == "activation"
    assert kinds[""] == "other"


def test_a_composite_modules_own_macs_count_under_its_kind() -> None:
    """Attention's two matmuls run in the attention module's own forward, not in a leaf: they are attention's."""
    from bench.measure.breakdown import Attribution, _breakdown_rows, _Lines

    block = _Block()
    # attention: 300 MACs in all, 100 of them its projections (leaves), 200 its own matmuls; the MLP 60.
    macs = {"": 360, "attn": 300, "attn.qkv": 75, "attn.proj": 25, "mlp": 60, "mlp.0": 30, "mlp.2": 30}
    found = Attribution(forward_us={"attn": 600.0, "attn.qkv": 150.0, "attn.proj": 50.0, "mlp.0": 100.0,
                                    "mlp.2": 100.0})  # fmt: skip
    _, kinds, _ = _breakdown_rows(block, found, _Lines(1, found.total_us, macs, {}, "fp32", False, None, 1))
    by_kind = {k.kind: k for k in kinds}
    assert by_kind["attention"].gmacs * 1e9 == pytest.approx(300)
    assert by_kind["attention"].pct_macs == pytest.approx(300 / 360)
    assert by_kind["linear"].gmacs * 1e9 == pytest.approx(60)
    assert sum(k.pct_macs for k in kinds) == pytest.approx(1.0)


def test_an_unknown_declared_kind_is_ignored() -> None:
    class Odd(nn.Linear):
        work_kind = "teleportation"

    assert module_kind(Odd(2, 2)) == "linear"


def test_everything_inside_a_module_that_declares_its_work_is_of_its_kind() -> None:
    """X3D's squeeze-excitations are "se" down to their 1x1x1 convolutions; its channel-wise convolutions are
    "channelwise", its swishes "swish", and no other module takes their kinds."""
    from bench.measure.breakdown import _kinds
    from bench.measure.counting import build_meta

    model = build_meta("x3d_xs")
    kinds = _kinds(model)
    assert kinds["layer1.0.se"] == kinds["layer1.0.se.fc1"] == kinds["layer1.0.se.gate"] == "se"
    assert "layer1.1.se" not in kinds  # SE on every other block only
    assert kinds["layer1.0.conv2"] == kinds["stem.temporal"] == "channelwise"
    assert kinds["stem.spatial"] == "spatial" and kinds["layer1.0.conv1"] == "pointwise"
    assert kinds["layer1.0.act2"] == "swish" and kinds["layer1.0.relu"] == "activation"
    roots = {n for n, m in model.named_modules() if isinstance(m, SqueezeExcitation)}
    inside = {n for n in kinds if any(n == r or n.startswith(r + ".") for r in roots)}
    assert {n for n, k in kinds.items() if k == "se"} == inside


# -- the roofline ---------------------------------------------------------------------------------


class _FakeClock:
    """Returns the given seconds in turn (cycling); never runs the function."""

    def __init__(self, *seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def time(self, fn: object) -> float:
        t = self.seconds[self.calls % len(self.seconds)]
        self.calls += 1
        return t


SMALL = ProbeSizes(matmul=64, conv3d=(1, 4, 2, 8), copy_mib=1, repeats=3)


def test_the_roofline_probe_on_a_fake_clock() -> None:
    clock = _FakeClock(0.5)
    r = probe("cpu", "fp32", sizes=SMALL, clock=clock, device_name="fake")
    assert clock.calls == 9  # three probes, three timed runs each (the warm-up runs are not timed)
    assert r.matmul_tflops == pytest.approx(2 * 64**3 / 0.5 / 1e12)
    assert r.conv3d_tflops == pytest.approx(2 * 1 * 4 * 4 * 27 * 2 * 8 * 8 / 0.5 / 1e12)
    assert r.bandwidth_gbs == pytest.approx(2 * 2**20 / 0.5 / 1e9)
    assert r.peak_tflops == max(r.matmul_tflops, r.conv3d_tflops)
    assert r.ridge == pytest.approx(r.peak_tflops * 1e12 / (r.bandwidth_gbs * 1e9))


def test_the_probe_takes_the_median_of_its_repeats() -> None:
    # Per probe, three timed runs: 1 s, 3 s, 2 s -> the median, 2 s, for each of the three.
    r = probe("cpu", "fp32", sizes=SMALL, clock=_FakeClock(1.0, 3.0, 2.0), device_name="fake")
    assert r.matmul_tflops == pytest.approx(2 * 64**3 / 2.0 / 1e12)
    assert r.bandwidth_gbs == pytest.approx(2 * 2**20 / 2.0 / 1e9)


def test_roofline_arithmetic() -> None:
    r = Roofline("cpu", "x", "fp32", "t", 2, matmul_tflops=1.0, conv3d_tflops=2.0, bandwidth_gbs=100.0)
    assert r.peak_tflops == 2.0
    assert r.ridge == pytest.approx(20.0)  # 2e12 FLOP/s / 1e11 B/s
    assert r.attainable_tflops(10.0) == pytest.approx(1.0)
    assert r.attainable_tflops(40.0) == 2.0
    assert (r.bound(19.9), r.bound(20.0)) == ("memory", "compute")
    assert Roofline.from_dict(r.to_dict()) == r


def test_the_roofline_is_cached_per_device_dtype_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.measure.roofline as roofline

    probes = []

    def fake_probe(device: str, dtype: str = "fp32", **kw: object) -> Roofline:
        probes.append((device, dtype))
        return Roofline(device, str(kw.get("device_name")), dtype, torch.__version__, torch.get_num_threads(),
                        1.0, 2.0, 50.0)  # fmt: skip

    monkeypatch.setattr(roofline, "probe", fake_probe)
    path = tmp_path / "cache" / "roofline.json"
    first = roofline_for("cpu", "fp32", path=path)
    assert roofline_for("cpu", "fp32", path=path) == first
    assert probes == [("cpu", "fp32")]  # the second call read the cache
    roofline_for("cpu", "bf16", path=path)
    assert probes == [("cpu", "fp32"), ("cpu", "bf16")]
    roofline_for("cpu", "fp32", path=path, refresh=True)
    assert len(probes) == 3
    path.write_text("{not json")  # a damaged cache is measured again, never trusted
    roofline_for("cpu", "fp32", path=path)
    assert len(probes) == 4
    assert json.loads(path.read_text())  # and rewritten whole


def test_a_timed_row_states_its_throughput_and_mfu() -> None:
    c = count("r3d_18", (1, 3, 8, 16, 16), train=True)
    config = Config("r3d_18", batch=2, frames=8, height=16, width=16, device="cpu", mode="infer")
    roof = Roofline("cpu", "x", "fp32", "t", 2, matmul_tflops=0.1, conv3d_tflops=0.2, bandwidth_gbs=10.0)
    m = Measurement((0.010, 0.020, 0.030))
    row = make_row(config, family="r3d", env={}, counts=c, measurement=m, roofline=roof)
    achieved = 2 * c.macs * 2 / 0.020 / 1e12
    assert row["achieved_tflops"] == pytest.approx(achieved)
    assert row["mfu"] == pytest.approx(achieved / 0.2)
    assert row["intensity"] == pytest.approx(intensity(c.macs, c.traffic, c.params, "fp32", 2))
    assert row["bound"] == roof.bound(row["intensity"])
    train = make_row(Config("r3d_18", 2, 8, 16, 16, "cpu", mode="train"), family="r3d", env={}, counts=c,
                     measurement=m, roofline=roof)  # fmt: skip
    assert train["achieved_tflops"] == pytest.approx(2 * c.train_macs * 2 / 0.020 / 1e12)  # type: ignore[operator]
    untimed = make_row(config, family="r3d", env={}, counts=c, status="error", error="x")
    assert untimed["achieved_tflops"] is None and untimed["mfu"] is None


def test_intensity_by_hand() -> None:
    # 1000 MACs per clip, 100 activation elements moved per clip, 10 weights; batch 2 in bf16:
    # FLOPs 2 * 1000 * 2 = 4000; bytes 2 * 100 * 2 + 4 * 10 = 440.
    assert intensity(1000, 100, 10, "bf16", batch=2) == pytest.approx(4000 / 440)


# -- through the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r3d_train_json() -> dict:
    done = vbench_here("inspect", "r3d_18", "--time", "--mode", "train", "--frames", "8", "--size", "32", "--json",
                   "--iterations", "2", "--depth", "3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_inspect_time_json_fields(r3d_train_json: dict) -> None:
    b = r3d_train_json
    assert b["arch"] == "r3d_18" and b["mode"] == "train" and b["input_shape"] == [1, 3, 8, 32, 32]
    assert b["latency_ms"] > 0
    for m in b["modules"]:
        assert {"module", "depth", "type", "gmacs", "latency_ms", "pct_time", "forward_ms", "backward_ms"} <= set(m)
    assert max(m["depth"] for m in b["modules"]) == 3  # --depth 3
    names = [m["module"] for m in b["modules"]]
    assert {"stem", "layer1", "layer4.1.conv2", "fc", ROOT_OPS, OUTSIDE} <= set(names)
    depth1 = [m for m in b["modules"] if m["depth"] == 1]
    assert sum(m["latency_ms"] for m in depth1) == pytest.approx(b["attributed_ms"], rel=1e-6)
    assert b["profiler_ratio"] == pytest.approx(1.0, abs=0.05) and b["profiler_ok"]
    assert isinstance(b["sum_ok"], bool) and b["sum_ratio"] > 0
    assert sum(k["pct_time"] for k in b["kinds"]) == pytest.approx(1.0)
    assert {k["kind"] for k in b["kinds"]} >= {"3d", "norm", "activation"}
    stem = next(m for m in b["modules"] if m["module"] == "stem")
    assert stem["backward_ms"] > 0 and stem["forward_ms"] > 0
    assert b["roofline"]["peak_tflops"] > 0


def test_training_on_one_value_per_channel_names_the_batch_option() -> None:
    # r3d_18 at 8x16x16 pools to 1x1x1 before its last batch norm: one clip, one value per channel.
    done = vbench_here("inspect", "r3d_18", "--time", "--mode", "train", "--frames", "8", "--size", "16",
                       "--iterations", "1")  # fmt: skip
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        "vbench: error: r3d_18: the model failed: ValueError: Expected more than 1 value per channel when training, "
        "got input size torch.Size([1, 512, 1, 1, 1]) (batch norm in training needs more than one value per "
        "channel: try --batch 2)"
    )


def test_inspect_time_prints_its_checks(tmp_path: Path) -> None:
    trace = tmp_path / "t" / "trace.json"
    done = vbench_here("inspect", "r2plus1d_18", "--time", "--frames", "8", "--size", "16", "--iterations", "2",
                   "--depth", "1", "--trace", str(trace))  # fmt: skip
    assert done.returncode == 0, done.stderr
    for text in ("time by module", "time by kind of work", "sum check:", "profiler check:", "instrumentation "
                 "overhead:", "roofline (cpu fp32", "temporal", "spatial"):  # fmt: skip
        assert text in done.stdout
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(str(e.get("name", "")).startswith(SCOPE + "layer1") for e in events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "9"], "--depth 9: r3d_18's modules are at most"),
        (["--device", "cuda"], "--device cuda: no CUDA device is available"),
        (["--mode", "both"], "--mode must be 'infer' or 'train'"),
        (["--batch", "0"], "--batch and --iterations must be >= 1"),
        (["--dtype", "fp64"], "fp64"),
        (["--trace", "."], "is a folder"),
    ],
)
def test_inspect_time_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = vbench_here("inspect", "r3d_18", "--time", "--frames", "8", "--size", "16", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_time_options_without_time_are_refused() -> None:
    done = vbench_here("inspect", "r3d_18", "--mode", "train")
    assert done.returncode == 2 and "need --time" in done.stderr


def test_profile_trace_writes_a_trace_per_configuration(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = vbench("profile", "--arch", "r3d_18", "--input", "min", "--mode", "both", "--batch", "2", "--repeats",
                   "2", "--warmup", "1", "--trace", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    traces = sorted(p.name for p in (out / "traces").iterdir())
    assert traces == ["r3d_18-infer-b2-8x16x16-cpu-fp32.json", "r3d_18-train-b2-8x16x16-cpu-fp32.json"]
    events = json.loads((out / "traces" / traces[1]).read_text())["traceEvents"]
    assert any("ConvolutionBackward" in str(e.get("name", "")) for e in events)
    doc = json.loads((out / "results.json").read_text())
    assert doc["environment"]["rooflines"]["fp32"]["peak_tflops"] > 0
    for row in doc["rows"]:
        assert row["achieved_tflops"] > 0 and row["mfu"] > 0 and row["bound"] in ("compute", "memory")


def test_trace_with_static_is_refused() -> None:
    done = vbench_here("profile", "--arch", "r3d_18", "--static", "--trace")
    assert done.returncode == 2 and "--trace records timed iterations" in done.stderr


# -- the report: why latency does not follow MACs -------------------------------------------------


def _row(arch: str, gmacs: float, latency_ms: float, bound: str) -> dict:
    return {"arch": arch, "status": "ok", "mode": "infer", "device": "cpu", "dtype": "fp32", "batch": 2,
            "frames": 8, "height": 16, "width": 16, "gmacs": gmacs, "train_gmacs": None, "latency_ms": latency_ms,
            "achieved_tflops": 0.1, "mfu": 0.5, "intensity": 3.0, "bound": bound}  # fmt: skip


def test_throughput_is_ranked_by_gmacs_per_second_by_hand() -> None:
    from bench.report.markdown import throughput_lines
    from bench.report.tradeoff import throughput_frame

    # Per iteration (batch 2): a: 20 GMACs in 100 ms = 200 GMAC/s; b: 4 GMACs in 40 ms = 100 GMAC/s;
    # c: 1 GMAC in 50 ms = 20 GMAC/s. An error row is left out.
    rows = [_row("b", 2.0, 40.0, "compute"), _row("a", 10.0, 100.0, "compute"), _row("c", 0.5, 50.0, "memory"),
            {**_row("d", 1.0, 1.0, "compute"), "status": "error"}]  # fmt: skip
    frame = throughput_frame(rows)
    assert list(frame["arch"]) == ["a", "b", "c"]
    assert list(frame["rank"]) == [1, 2, 3]
    assert list(frame["gmacs_per_s"]) == pytest.approx([200.0, 100.0, 20.0])
    assert list(frame["x_slowest"]) == pytest.approx([10.0, 5.0, 1.0])
    text = "\n".join(throughput_lines(frame))
    assert "below the ridge: `c`." in text


def test_report_takes_breakdowns_and_refuses_a_bad_one(tmp_path: Path, r3d_train_json: dict) -> None:
    run = tmp_path / "run"
    done = vbench("profile", "--arch", "r3d_18", "--input", "min", "--repeats", "2", "--warmup", "1",
                   "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    good = tmp_path / "b.json"
    good.write_text(json.dumps(r3d_train_json))
    done = vbench_here("report", str(run), "--breakdown", str(good), "--out", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Why latency does not follow MACs" in text and "Share of time (and of MACs) by kind" in text
    assert (tmp_path / "rep" / "throughput.csv").is_file()
    assert (tmp_path / "rep" / "roofline.png").is_file() and (tmp_path / "rep" / "time_by_kind.png").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**r3d_train_json, "kinds": [{"kind": "3d", "pct_time": "x"}]}))
    done = vbench_here("report", str(run), "--breakdown", str(bad), "--out", str(tmp_path / "rep2"))
    assert done.returncode == 2 and "breakdown file" in done.stderr and "kind 1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_roofline_command(tmp_path: Path) -> None:
    env = {"VBENCH_CACHE_DIR": str(tmp_path)}
    cached = {"device": "cpu", "device_name": "?", "dtype": "fp32", "torch_version": torch.__version__,
              "threads": torch.get_num_threads(), "matmul_tflops": 1.5, "conv3d_tflops": 2.0, "bandwidth_gbs": 40.0}  # fmt: skip
    from bench.measure.environment import cpu_name
    from bench.measure.roofline import _key

    cached["device_name"] = cpu_name()
    key = _key("cpu", cpu_name(), torch.__version__, "fp32", torch.get_num_threads())
    (tmp_path / "roofline.json").write_text(json.dumps({key: cached}))
    done = vbench_here("roofline", "--device", "cpu", "--json", env=env)
    assert done.returncode == 0, done.stderr
    (r,) = json.loads(done.stdout)
    assert (r["peak_tflops"], r["bandwidth_gbs"], r["ridge_flop_per_byte"]) == (2.0, 40.0, 50.0)  # read, not probed
    bad = vbench_here("roofline", "--dtype", "fp64", env=env)
    assert bad.returncode == 2 and "unknown dtype 'fp64'" in bad.stderr


# -- what a hostile tester found ----------------------------------------------------------------------

PLUGIN = """
import sys
from torch import nn
from archs import register_arch


class Shallow(nn.Module):
    def __init__(self, mode, num_classes=400):
        super().__init__()
        self.mode = mode
        self.fc = nn.Linear(3, num_classes)

    def forward(self, x):
        if x.device.type != "meta":
            print("chatter from the model")
            if self.mode == "exit":
                sys.exit(0)
        out = self.fc(x.mean((2, 3, 4)))
        return (out, out) if self.mode == "tuple" and x.device.type != "meta" else out


SPEC = {"family": "shallow", "paper": "test double", "default_input": (3, 2, 4, 4), "min_input": (3, 1, 1, 1),
        "stages": (("all", "3d"),)}
for mode in ("ok", "exit", "tuple"):
    def build(mode=mode, **kw):
        return Shallow(mode, **kw)
    build.__name__ = f"shallow_{mode}"
    register_arch(**SPEC)(build)
"""


def test_inspect_time_checks_every_depth_before_measuring() -> None:
    done = vbench_here("inspect", "*[13]d_18", "--time", "--frames", "8", "--size", "16", "--depth", "5")
    assert done.returncode == 2 and "--depth 5: r3d_18's modules are at most 4 deep" in done.stderr
    assert done.stdout == ""  # nothing was measured first and thrown away


def test_inspect_time_with_a_pattern_gives_a_mapping_even_for_one_match() -> None:
    done = vbench_here("inspect", "r3d_1*", "--time", "--frames", "8", "--size", "16", "--depth", "1", "--json",
                   "--iterations", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert list(out) == ["r3d_18"] and out["r3d_18"]["modules"][0]["gmacs"] > 0


def test_inspect_time_gmacs_are_per_clip(r3d_train_json: dict) -> None:
    done = vbench_here("inspect", "r3d_18", "--time", "--frames", "8", "--size", "16", "--batch", "2", "--json",
                   "--iterations", "1", "--depth", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (root,) = json.loads(done.stdout)["modules"]
    assert root["gmacs"] == pytest.approx(count("r3d_18", (1, 3, 8, 16, 16)).macs / 1e9)


@pytest.mark.parametrize("args", [["--dtype", "fp32,bf16"], ["--trace", "/proc/version"],
                                  ["--trace", "/nonexistent-root-folder/x/t.json"]])  # fmt: skip
def test_inspect_time_refuses_what_it_cannot_honour_before_measuring(tmp_path: Path, args: list[str]) -> None:
    if "/nonexistent-root-folder/x/t.json" in args and os.access("/", os.W_OK):
        args = ["--trace", str(_a_file(tmp_path) / "t.json")]  # as root every folder is writable: a file as folder
    done = vbench_here("inspect", "r3d_18", "--time", "--frames", "8", "--size", "16", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def _a_file(tmp_path: Path) -> Path:
    f = tmp_path / "plain-file"
    f.write_text("x")
    return f


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plugin")
    path = folder / "shallow_plugin.py"
    path.write_text(PLUGIN)
    return path


def test_a_shallow_plugin_model_gets_the_default_depth_and_its_prints_stay_off_stdout(plugin_file: Path) -> None:
    done = vbench("inspect", "shallow_ok", "--plugin", str(plugin_file), "--time", "--json", "--iterations", "1",
                   timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    b = json.loads(done.stdout)  # parseable: the model's prints went to stderr
    assert max(m["depth"] for m in b["modules"]) == 1
    assert "chatter from the model" in done.stderr


@pytest.mark.parametrize(("arch", "message"), [("shallow_exit", "SystemExit"), ("shallow_tuple", "tuple")])
def test_a_model_that_fails_under_inspect_time_is_one_line_and_exit_1(
    plugin_file: Path, arch: str, message: str
) -> None:
    done = vbench("inspect", arch, "--plugin", str(plugin_file), "--time", "--iterations", "1", timeout=120)
    assert done.returncode == 1, (done.stdout, done.stderr)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"vbench: error: {arch}: the model failed") and message in last


def test_implausible_cached_roofs_are_measured_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.measure.roofline as roofline
    from bench.measure.environment import cpu_name

    probes = []

    def fake_probe(device: str, dtype: str = "fp32", **kw: object) -> Roofline:
        probes.append(dtype)
        return Roofline(device, cpu_name(), dtype, torch.__version__, torch.get_num_threads(), 1.0, 2.0, 50.0)

    monkeypatch.setattr(roofline, "probe", fake_probe)
    key = roofline._key("cpu", cpu_name(), torch.__version__, "fp32", torch.get_num_threads())
    good = {"device": "cpu", "device_name": cpu_name(), "dtype": "fp32", "torch_version": torch.__version__,
            "threads": torch.get_num_threads(), "matmul_tflops": 1.0, "conv3d_tflops": 2.0, "bandwidth_gbs": 50.0}  # fmt: skip
    path = tmp_path / "roofline.json"
    for bad in ({"bandwidth_gbs": float("inf")}, {"matmul_tflops": 5e6}, {"conv3d_tflops": -5.0},
                {"matmul_tflops": 1e-320, "conv3d_tflops": 1e-320}, {"threads": "x"}, {"matmul_tflops": True}):  # fmt: skip
        path.write_text(json.dumps({key: {**good, **bad}}))
        before = len(probes)
        r = roofline_for("cpu", "fp32", path=path)
        assert len(probes) == before + 1, bad  # not trusted: measured again
        assert r.bandwidth_gbs == 50.0
    path.unlink()
    os.mkfifo(path)  # a FIFO would block a plain read forever
    roofline_for("cpu", "fp32", path=path.with_name("other.json"))
    assert roofline._read_cache(path) == {}


def test_no_roofline_for_fp16_on_a_cpu() -> None:
    with pytest.raises(RuntimeError, match="fp16 on a CPU"):
        roofline_for("cpu", "fp16")
    done = vbench_here("roofline", "--device", "cpu", "--dtype", "fp16")
    assert done.returncode == 2 and "no roofline for fp16 on cpu" in done.stderr


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ([{"kind": "3d", "latency_ms": 1, "pct_time": 0.5, "gmacs": 1, "pct_macs": 0.5}] * 2, "listed twice"),
        ([{"kind": "wormhole", "latency_ms": 1, "pct_time": 0.5, "gmacs": 1, "pct_macs": 0.5}], "must be one of"),
        ([{"kind": "3d", "latency_ms": 1, "pct_time": 1e300, "gmacs": 1, "pct_macs": 0.5}], "a share from 0 to 1"),
        ([{"kind": "3d", "latency_ms": 1, "pct_time": 0.7, "gmacs": 1, "pct_macs": 0.5},
          {"kind": "norm", "latency_ms": 1, "pct_time": 0.7, "gmacs": 0, "pct_macs": 0}], "more than the whole"),
    ],
)  # fmt: skip
def test_impossible_breakdowns_are_refused(tmp_path: Path, kinds: list, message: str) -> None:
    from bench.errors import UsageError
    from bench.results.breakdowns import load_breakdowns

    doc = {"arch": "a", "mode": "infer", "device": "cpu", "dtype": "fp32", "input_shape": [1, 3, 8, 16, 16],
           "kinds": kinds}  # fmt: skip
    (tmp_path / "b.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=message):
        load_breakdowns(tmp_path / "b.json")


def test_the_breakdown_file_reads_back_what_it_wrote(tmp_path: Path) -> None:
    """``inspect --time --json`` writes one breakdown (by name) or an object of them (a pattern); ``report
    --breakdown`` reads either back, each with the module lines down to the depth that was asked."""
    from bench.results.breakdowns import Breakdown, KindTime, ModuleTime, breakdowns_json, load_breakdowns

    def line(module: str, depth: int) -> ModuleTime:
        return ModuleTime(module, depth, "Conv3d", "3d", 10, 0.5, 2.0, None, 2.0, 0.5, 1.0, 250.0, None, None)

    kinds = [KindTime("3d", 3.0, 0.75, 0.5, 1.0, 166.7), KindTime("norm", 1.0, 0.25, 0.0, 0.0, None)]
    b = Breakdown("r3d_18", (1, 3, 8, 32, 32), "cpu", "fp32", "infer", 4.0, 0.1, 4.4, 2, 4.0, 4.0, 0.2,
                  [line("R3D", 0), line("stem", 1), line("stem.0", 2)], kinds, [line("stem", 1)])  # fmt: skip
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text(breakdowns_json({"r3d_18": b}, {"r3d_18": 1}, single=True))
    two.write_text(breakdowns_json({"r3d_18": b, "other": b}, {"r3d_18": None, "other": 0}, single=False))
    [read] = load_breakdowns(one)
    assert read["kinds"] == [dataclasses.asdict(k) for k in kinds] and read["input_shape"] == [1, 3, 8, 32, 32]
    assert [m["module"] for m in read["modules"]] == ["R3D", "stem"]  # depth 1
    assert read["sum_ratio"] == 1.0 and read["overhead"] == pytest.approx(0.1)
    assert [len(r["modules"]) for r in load_breakdowns(two)] == [3, 1]


def test_a_trace_name_that_is_not_utf8_is_one_line_and_exit_2_before_timing(tmp_path: Path) -> None:
    """torch's profiler takes the trace's name as text; such a name used to fail after the timing, as exit 1."""
    bad = os.fsencode(tmp_path) + b"/bad\xff\xfename.json"
    cmd = [sys.executable.encode(), b"-m", b"bench.cli", b"inspect", b"r2d_18", b"--time", b"--frames", b"16",
           b"--size", b"32", b"--iterations", b"1", b"--trace", bad]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "not valid UTF-8" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not os.path.exists(bad)


def test_the_printed_checks_and_the_files_flags_share_their_bounds() -> None:
    """4.3 ms of lines against a 4.0 ms latency is 107.5 %: within the sum check's 10 %; 4.3 against the
    profiler's 4.0 is out of its 5 %. The printed verdicts and the file's flags say the same."""
    from bench.report.tables import breakdown_checks
    from bench.results.breakdowns import Breakdown

    b = Breakdown("r3d_18", (1, 3, 8, 32, 32), "cpu", "fp32", "infer", 4.0, 0.1, 4.4, 2, 4.3, 4.0, 0.2, [], [], [])
    sums, profiler = breakdown_checks(b)[:2]
    assert sums.endswith("= 107.5 % of the uninstrumented latency 4.00 ms (IQR 0.10); within 10 %: ok")
    assert profiler == (
        "profiler check: 107.50 % of torch.profiler's key_averages() total (4.00 ms); within 5 %: OUT OF BOUNDS"
    )
    d = b.to_dict()
    assert (d["sum_ok"], d["profiler_ok"]) == (True, False)
