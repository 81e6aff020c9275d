"""The CUDA code paths, wired against a fake ``torch.cuda`` on the CPU.

CI has no GPU, and a GPU is lent to few sessions: a wiring mistake in the CUDA
branches (events, synchronisation, peak-memory statistics, device properties,
free memory, cuDNN settings) must fail here, not on the GPU. The model runs on
the CPU; every ``torch.cuda`` call the CUDA path makes goes to a recording fake.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
import torch

import bench.measure.environment
import bench.measure.latency
from bench.measure.timing import CudaEventClock
from bench.results.records import SamplePolicy
from bench.run.plan import Config


class FakeCuda:
    """Records calls; CUDA events measure a fake clock that advances 5 ms per timed call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.now_ms = 0.0
        self.allocated = 300 * 2**20
        self.reserved = 512 * 2**20
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing, "timing events must be created with enable_timing=True"
                self.t: float | None = None

            def record(self, stream: Any = None) -> None:
                cuda.calls.append("record")
                cuda.now_ms += 2.5  # each recorded event: half of a 5 ms iteration
                self.t = cuda.now_ms

            def synchronize(self) -> None:
                cuda.calls.append("event.synchronize")

            def elapsed_time(self, end: Any) -> float:
                assert self.t is not None and end.t is not None, "elapsed_time before both events were recorded"
                return end.t - self.t

        self.Event = Event

    def synchronize(self) -> None:
        self.calls.append("synchronize")

    def reset_peak_memory_stats(self) -> None:
        self.calls.append("reset_peak_memory_stats")

    def max_memory_allocated(self) -> int:
        return self.allocated

    def max_memory_reserved(self) -> int:
        return self.reserved

    def empty_cache(self) -> None:
        self.calls.append("empty_cache")

    def mem_get_info(self) -> tuple[int, int]:
        return 70 * 2**30, 80 * 2**30

    def current_device(self) -> int:
        return 0

    def get_device_properties(self, index: int) -> Any:
        assert index == 0
        return types.SimpleNamespace(name="NVIDIA Fake H200", total_memory=141 * 2**30, major=9, minor=0)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    fake = FakeCuda()
    for name in ("Event", "synchronize", "reset_peak_memory_stats", "max_memory_allocated", "max_memory_reserved",
                 "empty_cache", "mem_get_info", "current_device", "get_device_properties"):  # fmt: skip
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    # The model and its input live on the CPU: "cuda" devices become the CPU inside bench.measure.latency only.
    real_device = torch.device
    proxy = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    proxy.device = lambda d: real_device("cpu") if str(d).startswith("cuda") else real_device(d)
    monkeypatch.setattr(bench.measure.latency, "torch", proxy)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    return fake


def _config(**kw: Any) -> Config:
    return Config(**{"arch": "r3d_18", "batch": 1, "frames": 1, "height": 16, "width": 16, "device": "cuda", **kw})


def test_the_event_clock_times_between_recorded_events(fake_cuda):
    clock = CudaEventClock()
    assert clock.time(lambda: None) == pytest.approx(0.0025)  # 2.5 ms between start and end, in seconds
    assert fake_cuda.calls == ["record", "record", "event.synchronize"]


def test_a_cuda_measurement_uses_events_and_resets_peak_memory_after_warmup(fake_cuda):
    result = bench.measure.latency.measure_config(_config(), SamplePolicy(warmup=2, repeats=4))
    assert result.measurement.n == 4
    assert all(t == pytest.approx(0.0025) for t in result.measurement.times_s)
    assert result.memory == {"peak_mem_mib": 300.0, "peak_mem_reserved_mib": 512.0}
    calls = fake_cuda.calls
    # Warm-up untimed; synchronize and reset the peak statistics, then 4 x (record, record, wait).
    assert calls[:2] == ["synchronize", "reset_peak_memory_stats"]
    assert calls[2:14] == ["record", "record", "event.synchronize"] * 4
    assert calls[-1] == "empty_cache"


def test_training_on_cuda_goes_through_the_same_wiring(fake_cuda):
    result = bench.measure.latency.measure_config(_config(mode="train", batch=2), SamplePolicy(warmup=1, repeats=2))
    assert result.measurement.n == 2 and result.memory["peak_mem_reserved_mib"] == 512.0


def test_cuda_settings_environment_and_free_memory(fake_cuda):
    bench.measure.latency.setup_device("cuda")
    assert torch.backends.cudnn.benchmark is True  # took effect, and is recorded in every row
    env = bench.measure.environment.environment("cuda")
    assert env["device_name"] == "NVIDIA Fake H200" and env["device_memory_mib"] == 141 * 1024
    assert env["device_capability"] == "9.0" and env["cudnn_benchmark"] is True
    assert bench.measure.latency.device_free_bytes("cuda") == 70 * 2**30


def test_the_cpu_path_never_touches_cuda(fake_cuda):
    bench.measure.latency.measure_config(_config(device="cpu"), SamplePolicy(warmup=1, repeats=2))
    assert fake_cuda.calls == []
