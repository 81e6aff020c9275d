"""Shared test set-up: CUDA tests skip cleanly on machines without a GPU; one roofline cache per session."""

import os
import tempfile

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Every run's worker measures the device's roofline once and caches it; the tests share one
    # cache of their own (never the user's), so the probe runs once per session, not once per run.
    os.environ.setdefault("VBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="vbench-test-cache-"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
