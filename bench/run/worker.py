"""A worker process: measures every configuration of one architecture.

Started by :mod:`bench.run.runner` through :data:`BOOTSTRAP`. It reads one job as
JSON on stdin and sends its messages on a private pipe whose file descriptor
is given on stdin: first the environment, then one results row per
configuration as soon as it is measured, one JSON object a line. Whatever the
model prints goes to stdout and stderr, which the parent writes to a log and
never parses, so nothing a model prints or writes can change, add or remove a
row. An out-of-memory error in one configuration becomes an ``oom`` row and the
worker goes on with the next; a configuration whose estimated memory exceeds
what the device has free becomes a ``skipped`` row; any other exception
becomes an ``error`` row.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from bench.errors import first_line  # torch-free: nothing heavy is imported before the job's plugins

if TYPE_CHECKING:
    from bench.results.records import SamplePolicy, Status

BOOTSTRAP = (
    "import os, sys\n"
    "cwd = os.getcwd()\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.', cwd)]\n"
    "sys.path.append(os.environ['VBENCH_ROOT'])\n"
    "from bench.run.worker import main\n"
    "sys.exit(main())\n"
)
"""What ``python -c`` runs: the working directory leaves ``sys.path`` before anything is imported.

A ``json.py`` or ``inspect.py`` where the user happens to run vbench must not be
executed by the workers; vbench's own folder goes to the *end* of the path, so it
can never shadow the standard library or torch.
"""


def encode_job(
    job: Any,
    policy: Any,
    plugins: list[dict[str, Any]],
    max_memory: int | None = None,
    channel: tuple[int, str] = (-1, ""),
    trace_dir: str | None = None,
    weights: str | None = None,
) -> str:
    """The JSON a worker reads on stdin (``job`` is a :class:`bench.run.plan.Job`; plugins as
    :func:`bench.run.plugins.load_plugins`; ``channel``: the result pipe's descriptor and the token
    every message must carry). Neither is in the environment, where a model would look first."""
    return json.dumps(
        {
            "channel": {"fd": channel[0], "token": channel[1]},
            "arch": job.arch,
            "id": job.id,
            "configs": [c.to_dict() for c in job.configs],
            "counts": {",".join(map(str, k)): asdict(v) for k, v in job.counts.items()},
            "policy": asdict(policy),
            "plugins": plugins,
            "max_memory": max_memory,
            "trace_dir": trace_dir,
            "weights": weights,
        }
    )


class _Channel:
    """The private pipe to the parent; a child the model forks loses it at once.

    Every message carries the job's token: the parent ignores lines without it,
    so a model that writes blindly to file descriptors forges nothing. (Code in
    this process can still read the token from memory: a plugin is code, and
    vbench guards against accidents and blind writes, not against a model that
    sets out to read vbench's own variables.)
    """

    def __init__(self, fd: int, token: str) -> None:
        os.set_inheritable(fd, False)  # never passed to a program the model starts
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._fd = fd
        self._token = token
        os.register_at_fork(after_in_child=self._drop)

    def _drop(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._fd)  # the forked child's copy now points nowhere: no row can come from it
        os.close(devnull)

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "token": self._token, **payload}, default=str, allow_nan=True) + "\n"
        self._file.write(line.encode())
        self._file.flush()


def main() -> int:
    spec = json.loads(sys.stdin.buffer.read())
    channel = _Channel(int(spec["channel"]["fd"]), str(spec["channel"]["token"]))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a model that reads stdin gets end-of-file, not the parent's pipe
    os.close(devnull)

    from bench.run.lifetime import watch_parent

    watch_parent(int(os.environ.get("VBENCH_PARENT_PID", os.getppid())))

    from bench.run.plugins import import_plugins

    import_plugins(spec.get("plugins", []))

    import archs
    from bench.measure.contention import gpu_monitor
    from bench.measure.counting import Counts
    from bench.measure.environment import environment
    from bench.measure.latency import device_free_bytes, estimate_bytes, setup_device, unsupported
    from bench.measure.rows import make_row
    from bench.results.records import Config, SamplePolicy

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
    rooflines = _rooflines(device, sorted({c.dtype for c in configs if not unsupported(c)}))
    env["rooflines"] = {dtype: r.to_dict() for dtype, r in rooflines.items()}
    channel.send("env", {"env": env})
    how = _Measuring(
        policy, env, device, spec.get("weights"), spec.get("trace_dir"), _monitor_factory(device, gpu_monitor)
    )

    for config in configs:
        c = counts[(config.frames, config.height, config.width)]
        row = functools.partial(
            make_row, config, family=family, env=env, counts=c, job_id=spec["id"], roofline=rooflines.get(config.dtype)
        )
        why = unsupported(config)
        if why:
            channel.send("row", {"row": row(status="unsupported", error=why)})
            continue
        need = estimate_bytes(c, config)
        limit = spec.get("max_memory") or device_free_bytes(device)
        if limit is not None and need > limit:
            channel.send("row", {"row": row(status="skipped", error=_skip_reason(need, limit, spec))})
            continue
        channel.send("row", {"row": _measured(config, c, row, how)})
    return 0


@dataclass(frozen=True)
class _Measuring:
    """What every configuration of the job is measured with, read from the job once."""

    policy: SamplePolicy
    env: dict[str, Any]
    """The worker's environment (its ``torch_threads``)."""
    device: str
    weights: str | None
    trace_dir: str | None
    new_monitor: Callable[[], Any]
    """A fresh GPU monitor for each row (:func:`_monitor_factory`)."""


def _measured(config: Any, c: Any, row: Callable[..., Any], how: _Measuring) -> Any:
    """The row of one configuration (``c``: its counts), measured: ``ok``, or the model's ``oom`` or ``error``.

    Its imports are of modules :func:`main` has imported already (after the plugins): lookups, not loads."""
    from bench.measure.contention import contention_columns, load_average, usable_cores
    from bench.measure.latency import is_oom, measure_config

    try:
        load_before = load_average()
        expected = (config.batch, *c.output_shape[1:])
        result = measure_config(
            config, how.policy, expected_shape=expected, weights=how.weights, monitor=how.new_monitor()
        )
        threads = how.env.get("torch_threads")
        # The most CPU the worker can get: its threads, or the cores it may use when they are fewer.
        most = min(threads, usable_cores() or threads) if threads else None
        share = result.measurement.cpu_share(most) if how.device == "cpu" and most else None
        contention = contention_columns(how.device, share, load_before, load_average(), threads, result.gpu)
        out = row(measurement=result.measurement, memory=result.memory, contention=contention)
        if how.trace_dir:
            _trace(config, how.trace_dir)
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # the model's, never the parent's: it sends SIGKILL
        status: Status = "oom" if isinstance(e, Exception) and is_oom(e) else "error"
        if status == "error":
            traceback.print_exc(file=sys.stderr)
        out = row(status=status, error=first_line(e)[:500])
    return out


def _monitor_factory(device: str, gpu_monitor: Any) -> Any:
    """A function that returns a fresh NVML monitor of the worker's GPU for each row (None off CUDA or
    without NVML)."""
    if device != "cuda":
        return lambda: None
    import torch

    index = torch.cuda.current_device()
    uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", "") or "") or None
    return lambda: gpu_monitor(uuid, index)


def _trace(config: Any, folder: str) -> None:
    """A Chrome/Perfetto trace of two iterations of ``config`` (a trace that fails is said on the log; the
    row, already measured, is kept)."""
    import hashlib
    import re
    from pathlib import Path

    from bench.measure.breakdown import write_trace

    flags = [f for f in ("channels_last", "compiled", "cuda_graphs") if getattr(config, f)]
    parts = [config.arch, config.mode, f"b{config.batch}", f"{config.frames}x{config.height}x{config.width}",
             config.device, config.dtype, *flags]  # fmt: skip
    if config.arch_kwargs:
        parts.append(hashlib.sha1(json.dumps(dict(config.arch_kwargs), sort_keys=True).encode()).hexdigest()[:8])
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", "-".join(parts))
    try:
        write_trace(config, Path(folder) / f"{name}.json")
    except Exception as e:
        print(f"vbench: no trace for {name}: {first_line(e)}", file=sys.stderr)


def _rooflines(device: str, dtypes: list[str]) -> dict[str, Any]:
    """The device's measured roofline for each dtype (cached across runs); one that cannot be
    measured is left out, and its rows have no ``mfu`` (said on the log, never a lost row)."""
    from bench.measure.roofline import roofline_for

    found = {}
    for dtype in dtypes:
        try:
            found[dtype] = roofline_for(device, dtype)
        except Exception as e:  # a dtype without kernels on this device: its rows still get measured
            print(f"vbench: no roofline for {device} {dtype}: {first_line(e)}", file=sys.stderr)
    return found


def _skip_reason(need: int, limit: int, spec: dict[str, Any]) -> str:
    where = "--max-memory" if spec.get("max_memory") else "free on the device"
    return f"estimated memory {need / 2**30:.2f} GiB exceeds {limit / 2**30:.2f} GiB ({where})"


if __name__ == "__main__":
    sys.exit(main())
