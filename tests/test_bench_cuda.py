"""GPU code paths: CUDA events, memory, autocast, channels-last, compile, CUDA graphs.

Marked ``cuda``: skipped cleanly on a machine without CUDA (CI). Run on a GPU
machine with ``python -m pytest -m cuda`` or through ``benchmarks/gpu_check.sh``.
"""

import pytest
import torch

from bench.measure.latency import is_oom, measure_config, setup_device
from bench.results.records import SamplePolicy
from bench.run.plan import Config

pytestmark = pytest.mark.cuda
POLICY = SamplePolicy(warmup=2, repeats=5)


def _cfg(**kw):
    base = dict(arch="r2plus1d_18", batch=1, frames=8, height=112, width=112, device="cuda")
    return Config(**{**base, **kw})


def test_events_memory_and_modes():
    infer1 = measure_config(_cfg(), POLICY)
    infer8 = measure_config(_cfg(batch=8), POLICY)
    train1 = measure_config(_cfg(mode="train"), POLICY)
    assert infer1.measurement.n == 5 and infer1.measurement.median > 0
    assert 0 < infer1.memory["peak_mem_mib"] <= infer1.memory["peak_mem_reserved_mib"]
    assert infer8.memory["peak_mem_mib"] > infer1.memory["peak_mem_mib"]
    assert train1.memory["peak_mem_mib"] > infer1.memory["peak_mem_mib"]
    setup_device("cuda")
    assert torch.backends.cudnn.benchmark is True  # autotuning on, as every CUDA row records


@pytest.mark.parametrize(
    "options",
    [
        dict(dtype="bf16"),
        dict(dtype="fp16"),
        dict(channels_last=True),
        dict(cuda_graphs=True),
        dict(dtype="bf16", mode="train"),
    ],
)
def test_options_run(options):
    r = measure_config(_cfg(**options), POLICY)
    assert r.measurement.median > 0 and r.memory["peak_mem_mib"] > 0


def test_compile_runs():
    r = measure_config(_cfg(compiled=True), SamplePolicy(warmup=3, repeats=3))
    assert r.measurement.median > 0


def test_out_of_memory_is_recognised():
    with pytest.raises(torch.OutOfMemoryError) as err:
        torch.empty(1 << 50, device="cuda")
    assert is_oom(err.value)
