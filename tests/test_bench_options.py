"""Measurement options take effect inside the model (on the CPU, where CI can check them).

A row labelled bf16 or channels-last must have been measured so: the first
convolution of the model sees what the option promises.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import archs
from bench.measure.latency import measure_config
from bench.results.records import SamplePolicy
from bench.run.plan import Config


@pytest.fixture
def first_conv(monkeypatch: pytest.MonkeyPatch) -> list[tuple[torch.dtype, bool]]:
    """(output dtype, input is channels-last) of the first Conv3d, for every forward of the measured model."""
    seen: list[tuple[torch.dtype, bool]] = []
    build = archs.create_model

    def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
        model = build(name, **kwargs)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))

        def hook(_m: torch.nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen.append((out.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last_3d)))

        conv.register_forward_hook(hook)
        return model

    monkeypatch.setattr(archs, "create_model", create_model)
    return seen


def _measure(**kw: Any) -> None:
    config = Config(**{"arch": "r3d_18", "batch": 1, "frames": 1, "height": 16, "width": 16, "device": "cpu", **kw})
    measure_config(config, SamplePolicy(warmup=1, repeats=2))


def test_bf16_autocast_reaches_the_convolutions(first_conv):
    _measure(dtype="bf16")
    assert len(first_conv) == 3 and {dtype for dtype, _ in first_conv} == {torch.bfloat16}


def test_fp32_stays_fp32(first_conv):
    _measure()
    assert {dtype for dtype, _ in first_conv} == {torch.float32}
    assert not any(cl for _, cl in first_conv)


def test_channels_last_reaches_the_convolutions(first_conv):
    _measure(channels_last=True)
    assert len(first_conv) == 3 and all(cl for _, cl in first_conv)


def test_channels_last_reaches_the_2d_convolutions_of_a_folded_network(monkeypatch):
    """TSM runs 2D convolutions on frames folded into the batch: its 4-D weights become channels-last (2D)
    beside the 3D clip, and its first conv sees a channels-last input."""
    seen: list[bool] = []
    build = archs.create_model

    def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
        model = build(name, **kwargs)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(
            lambda m, inputs, out: seen.append(
                m.weight.is_contiguous(memory_format=torch.channels_last)
                and inputs[0].is_contiguous(memory_format=torch.channels_last)
            )
        )
        return model

    monkeypatch.setattr(archs, "create_model", create_model)
    config = Config(arch="tsm_r50", batch=1, frames=8, height=32, width=32, device="cpu", channels_last=True)
    measure_config(config, SamplePolicy(warmup=1, repeats=2))
    assert len(seen) == 3 and all(seen)
