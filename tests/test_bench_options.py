"""Measurement options take effect inside the model (on the CPU, where CI can check them).

A row labelled bf16 or channels-last must have been measured so: the first
convolution of the model sees what the option promises.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import archs
from bench.measure import measure_config
from bench.plan import Config
from bench.timing import SamplePolicy


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
