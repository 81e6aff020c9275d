"""Shared test set-up: CUDA tests skip cleanly on machines without a GPU; one roofline cache per session;
one torch thread per test process when pytest-xdist runs tests side by side."""

import os
import tempfile

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Every run's worker measures the device's roofline once and caches it; the tests share one
    # cache of their own (never the user's), so the probe runs once per session, not once per run.
    os.environ.setdefault("VBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="vbench-test-cache-"))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # `pytest -n N` runs N test processes on the machine's cores. With torch's default of one
        # intra-op thread per core, N processes run N x cores threads, and a thread that waits at an
        # OpenMP barrier for a descheduled sibling stalls: on this 2-core machine, with other work
        # running, r3d_18's forward on a 1x3x8x16x16 clip took 0.98 s on 2 threads and 0.11 s on one.
        # One thread per test process, and per `vbench` it starts (OMP_NUM_THREADS is inherited),
        # keeps the side-by-side processes from stalling each other.
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
