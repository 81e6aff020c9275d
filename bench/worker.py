"""A worker process: measures every configuration of one architecture.

Started by :mod:`bench.runner` as ``python -m bench.worker``; reads one job as
JSON on stdin and writes one line per message on stdout, each prefixed with
:data:`PREFIX` so that anything a model prints is ignored: first the
environment, then one results row per configuration as soon as it is measured.
An out-of-memory error in one configuration becomes an ``oom`` row and the
worker goes on with the next; any other exception becomes an ``error`` row.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from dataclasses import asdict
from typing import Any

PREFIX = "@@vbench "


def encode_job(job: Any, policy: Any, plugins: list[str]) -> str:
    """The JSON a worker reads (``job`` is a :class:`bench.plan.Job`)."""
    return json.dumps(
        {
            "arch": job.arch,
            "id": job.id,
            "configs": [c.to_dict() for c in job.configs],
            "counts": {",".join(map(str, k)): asdict(v) for k, v in job.counts.items()},
            "policy": asdict(policy),
            "plugins": plugins,
        }
    )


def _emit(kind: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(PREFIX + json.dumps({"type": kind, **payload}, default=str) + "\n")
    sys.stdout.flush()


def main() -> int:
    spec = json.loads(sys.stdin.read())
    for module in spec.get("plugins", []):
        importlib.import_module(module)

    import archs
    from bench.counting import Counts
    from bench.env import environment
    from bench.measure import is_oom, measure_config, setup_device
    from bench.plan import Config
    from bench.schema import make_row
    from bench.timing import SamplePolicy

    configs = [Config.from_dict(c) for c in spec["configs"]]
    counts = {
        tuple(int(v) for v in k.split(",")): Counts(**{**c, "output_shape": tuple(c["output_shape"])})
        for k, c in spec["counts"].items()
    }
    policy = SamplePolicy(**spec["policy"])
    family = archs.get_arch(spec["arch"]).family
    device = configs[0].device if configs else "cpu"
    setup_device(device)
    env = environment(device)
    _emit("env", {"env": env})

    for config in configs:
        c = counts[(config.frames, config.height, config.width)]
        try:
            result = measure_config(config, policy)
            row = make_row(
                config,
                family=family,
                env=env,
                counts=c,
                measurement=result.measurement,
                memory=result.memory,
                job_id=spec["id"],
            )
        except Exception as e:
            status = "oom" if is_oom(e) else "error"
            message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            if status == "error":
                traceback.print_exc(file=sys.stderr)
            row = make_row(
                config, family=family, env=env, counts=c, status=status, error=message[:500], job_id=spec["id"]
            )
        _emit("row", {"row": row})
    return 0


if __name__ == "__main__":
    sys.exit(main())
