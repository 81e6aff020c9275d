"""Measure one configuration for real: build, warm up, time, read peak memory.

Runs inside a worker process (:mod:`bench.run.worker`); returns plain records and
never prints. Inference runs under ``torch.inference_mode()``; training is
forward + cross-entropy + backward + SGD step. Reduced precision uses autocast.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import archs
from bench.measure.contention import GpuMonitor, GpuReport
from bench.measure.counting import Counts
from bench.measure.timing import Clock, CudaEventClock, HostClock, Measurement, sample
from bench.results.records import Config, Memory, SamplePolicy

__all__ = [
    "Result",
    "clock_for",
    "device_free_bytes",
    "estimate_bytes",
    "is_oom",
    "measure_config",
    "prepare",
    "setup_device",
    "step_fn",
    "unsupported",
]

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Result:
    measurement: Measurement
    memory: Memory
    gpu: GpuReport | None = None
    """What NVML saw on the device during the timed samples (None: not watched)."""


def is_oom(exc: BaseException) -> bool:
    """Out-of-memory on any device: CUDA's own error, or an allocator's message."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def estimate_bytes(counts: Counts, config: Config) -> int:
    """Memory one configuration needs, from its counts, before anything is allocated (a rough upper bound).

    Weights in fp32 (autocast keeps them so); activations in the dtype's width.

    Training holds the weights, their gradients and the optimiser's momentum; every
    tensor the backward reads (autograd's saved tensors, :attr:`Counts.saved_activations`:
    attention's probabilities where the CPU's kernel keeps them, only its O(N)
    log-sum-exp where it does not); and the gradients the backward writes, one per
    tensor the leaf modules wrote, counted as if none reused another's memory. Counts
    without saved tensors (another counter) take the leaf modules' outputs for them.

    Inference on a GPU holds the weights and about three of its largest tensors at
    once (input, output and a residual branch; the caching allocator reuses the rest),
    the largest being any operator's output, attention's scores and bias included
    (:attr:`Counts.largest_output`). On the CPU the peak is the resident set, and the
    C allocator keeps much of what a step frees: an inference counts every leaf
    module's output and the largest tensor once more; a training step one more copy
    of the weights, which the measured peaks show (the kernels' reordered weights and
    gradients, what the allocator keeps). ``benchmarks/memory_estimate.py`` checks the
    estimate against the CPU's measured peaks.
    """
    width = 2 if config.dtype in _AUTOCAST else 4
    weights = 4 * counts.params
    largest = max(counts.peak_activation, counts.largest_output)
    cpu = config.device == "cpu"
    if config.mode == "train":
        held = counts.saved_activations or counts.activations
        return (4 if cpu else 3) * weights + width * config.batch * (held + counts.activations)
    if cpu:
        return weights + width * config.batch * (counts.activations + largest)
    return weights + 3 * width * config.batch * largest


def device_free_bytes(device: str) -> int | None:
    """What the device has free now: CUDA's free memory, or the host's available memory (Linux)."""
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    if device == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def unsupported(config: Config) -> str:
    """Why this configuration cannot be measured as asked (``""`` when it can): an ``unsupported`` row.

    Measuring something else under the same label would be a wrong number, not a missing one.
    """
    if config.cuda_graphs and config.mode == "train":
        return "--cuda-graphs replays inference only; a training step is not captured"
    if config.dtype == "fp16" and config.device == "cpu" and not _cpu_fp16_autocast():
        return "this torch has no fp16 autocast on the CPU"
    return ""


def _cpu_fp16_autocast() -> bool:
    try:
        with torch.autocast(device_type="cpu", dtype=torch.float16):
            return True
    except (RuntimeError, ValueError):
        return False


def setup_device(device: str) -> None:
    """Process-wide settings for timing: cuDNN autotuning on (recorded in every row)."""
    if device == "cuda":
        torch.backends.cudnn.benchmark = True


def _sync(device: str) -> Callable[[], None] | None:
    if device == "cuda":
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return None


def clock_for(device: str) -> Clock:
    """CUDA events on a GPU; elsewhere the host clock, synchronised where the device is asynchronous."""
    return CudaEventClock() if device == "cuda" else HostClock(sync=_sync(device))


class _PeakRss:
    """Peak resident memory of this process, resettable on Linux (``/proc/self/clear_refs``)."""

    _status = Path("/proc/self/status")

    def reset(self) -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def read_mib(self) -> float | None:
        try:
            for line in self._status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        except (ImportError, OSError):
            return None


def step_fn(
    model: nn.Module, x: torch.Tensor, config: Config, expected: tuple[int, ...] | None = None
) -> Callable[[], object]:
    """One iteration of ``config``'s mode: an inference under ``inference_mode``, or a training step
    (forward, cross-entropy, backward, SGD step), under autocast for the half dtypes."""
    device_type = "cuda" if config.device == "cuda" else config.device
    autocast = (
        (lambda: torch.autocast(device_type=device_type, dtype=_AUTOCAST[config.dtype]))
        if config.dtype in _AUTOCAST
        else contextlib.nullcontext
    )
    if config.mode == "infer":
        model.eval()

        def infer() -> object:
            with torch.inference_mode(), autocast():
                return model(x)

        checked = _checked(infer, expected)
        return _graphed(checked) if config.cuda_graphs else checked

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    target = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def train() -> object:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()
        return loss

    return train


def _graphed(fn: Callable[[], object]) -> Callable[[], object]:
    """Capture ``fn`` in a CUDA graph (after warm-up on a side stream) and replay it."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def _checked(fn: Callable[[], object], expected: tuple[int, ...] | None) -> Callable[[], object]:
    """``fn``, whose first result must be a tensor of ``expected`` shape (inference only)."""
    if expected is None:
        return fn
    first = True

    def call() -> object:
        nonlocal first
        out = fn()
        if first:
            first = False
            actual = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            if actual != expected:
                raise RuntimeError(f"the model returned {actual}; expected logits of shape {expected}")
        return out

    return call


def _channels_last(model: nn.Module) -> nn.Module:
    """Every 5-D parameter and buffer channels-last (3D), every 4-D one channels-last (2D).

    ``Module.to(memory_format=...)`` converts to one format and refuses tensors of the
    other rank; a network of 2D convolutions on frames folded into the batch (TSM) has
    4-D weights beside the 5-D clip.
    """
    formats = {5: torch.channels_last_3d, 4: torch.channels_last}
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.dim() in formats:
            t.data = t.data.contiguous(memory_format=formats[t.dim()])
    return model


def prepare(config: Config, weights: str | None = None) -> tuple[nn.Module, torch.Tensor]:
    """The model of ``config`` (through the registry, seeded; ``weights`` loaded when given) and a random
    input batch, on its device, in its memory format, compiled when asked."""
    device = torch.device(config.device)
    torch.manual_seed(0)
    model = archs.create_model(config.arch, weights=weights, **dict(config.arch_kwargs)).to(device)
    x = torch.randn(config.input_shape, device=device)
    if config.channels_last:
        model = _channels_last(model)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    if config.compiled:
        model = torch.compile(model)  # type: ignore[assignment]
    return model, x


def measure_config(
    config: Config,
    policy: SamplePolicy,
    clock: Clock | None = None,
    expected_shape: tuple[int, ...] | None = None,
    weights: str | None = None,
    monitor: GpuMonitor | None = None,
) -> Result:
    """Build the model of ``config`` on its device and time it under ``policy``.

    ``monitor``, when given, samples the device (NVML) during the timed samples only.

    ``expected_shape``, when given, is checked against the first inference
    output (a model that returns the wrong thing is an error, not a latency).

    Raises whatever the model raises; the worker turns out-of-memory errors
    into ``oom`` rows (see :func:`is_oom`).
    """
    model, x = prepare(config, weights)
    fn = step_fn(model, x, config, expected_shape)
    cuda = config.device == "cuda"
    rss = _PeakRss()
    try:
        for _ in range(policy.warmup):
            fn()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            rss.reset()
        timed = SamplePolicy(0, policy.repeats, policy.min_time, policy.max_time, policy.max_samples)
        if monitor is not None:
            monitor.start()
        try:
            m = sample(fn, timed, clock or clock_for(config.device))
        finally:
            gpu = monitor.stop() if monitor is not None else None
        if cuda:
            memory: Memory = {
                "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20,
                "peak_mem_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
            }
        else:
            memory = {"peak_mem_mib": rss.read_mib()}
    finally:
        del fn, model, x
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return Result(measurement=replace(m, warmup=policy.warmup), memory=memory, gpu=gpu)
