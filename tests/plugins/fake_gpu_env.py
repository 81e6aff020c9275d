"""Makes a worker report an environment it does not have: a GPU named ``Fake GPU 9000`` and torch ``0.0-fake``
(a vbench plugin for the runner's tests). In the parent process it changes nothing."""

import os

if os.environ.get("VBENCH_WORKER") == "1":
    import bench.measure.environment

    _real = bench.measure.environment.environment

    def _reported(device=None):
        return {**_real(device), "device_name": "Fake GPU 9000", "torch_version": "0.0-fake"}

    bench.measure.environment.environment = _reported
