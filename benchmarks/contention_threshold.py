"""The CPU-share threshold of ``contended``, measured: quiet against two busy processes, side by side.

Times one small configuration through the real timing path (:func:`bench.measure.latency.measure_config`)
in alternating states, so that whatever else the machine does weighs on both alike:

- ``quiet``: nothing started by this script;
- ``busy``: two processes spinning ``while True: pass`` for the whole measurement.

For each measurement it prints the CPU share (:func:`bench.measure.timing.cpu_share`), the median latency and
the 1-minute load average before and after, and writes ``reports/benchmarks/contention_threshold.md``.

    python benchmarks/contention_threshold.py [--pairs 6] [--arch r3d_18] [--frames 8] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.measure.latency import measure_config
from bench.measure.timing import CONTENDED_SHARE
from bench.results.records import Config, SamplePolicy

ROOT = Path(__file__).resolve().parent.parent


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _schedstat() -> tuple[float, float]:
    """(CPU time, time runnable but waiting for a CPU) of all this process's threads, in seconds (Linux)."""
    run = wait = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9


def start_busy(n: int, deadline_s: float = 30.0) -> list[subprocess.Popen[bytes]]:
    """``n`` spinning processes, returned once each has been seen on a CPU."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not all(_cpu_ticks(p.pid) > 0 for p in procs):
        time.sleep(0.02)
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--arch", default="r3d_18")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "reports/benchmarks/contention_threshold.md"))
    args = ap.parse_args()
    config = Config(args.arch, 1, args.frames, args.size, args.size, "cpu")
    policy = SamplePolicy(warmup=2, repeats=args.repeats)
    threads = torch.get_num_threads()
    records: list[dict[str, object]] = []
    for i in range(args.pairs):
        for state in ("quiet", "busy") if i % 2 == 0 else ("busy", "quiet"):
            procs = start_busy(2) if state == "busy" else []
            try:
                before = os.getloadavg()[0]
                run0, wait0 = _schedstat()
                m = measure_config(config, policy).measurement
                run1, wait1 = _schedstat()
                after = os.getloadavg()[0]
            finally:
                stop(procs)
            share = m.cpu_share(threads)
            # Had nothing else wanted the CPUs: the waiting time (over the whole measurement, warm-up and build
            # included) taken out of the wall span, scaled to the timed span.
            span = run1 - run0 + wait1 - wait0
            waited = (wait1 - wait0) / span if span > 0 else 0.0
            alone = min(1.0, share / (1 - waited)) if share is not None and waited < 1 else None
            rec = {"pair": i, "state": state, "share": share, "waited": waited, "alone": alone,
                   "ms": m.median * 1e3, "before": before, "after": after}  # fmt: skip
            records.append(rec)
            print(f"{i} {state:5} share {share:.3f} waited {waited:.3f} alone {alone} median {m.median * 1e3:8.1f} ms load {before:.2f}->{after:.2f}",
                  flush=True)  # fmt: skip
    quiet = [float(r["share"]) for r in records if r["state"] == "quiet"]  # type: ignore[arg-type]
    busy = [float(r["share"]) for r in records if r["state"] == "busy"]  # type: ignore[arg-type]
    lines = [
        "# The CPU-share threshold of `contended`: quiet against two busy processes",
        "",
        f"`python benchmarks/contention_threshold.py --pairs {args.pairs} --arch {args.arch} "
        f"--frames {args.frames} --size {args.size}` on {os.cpu_count()} cores, torch threads {threads}, "
        f"torch {torch.__version__}; {args.repeats} timed samples a measurement, states alternated.",
        "",
        "| pair | state | CPU share | runnable but waiting | share had none waited | median (ms) | load before "
        "| load after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['pair']} | {r['state']} | {r['share']:.3f} | {r['waited']:.3f} | {r['alone']:.3f} | {r['ms']:.1f} | {r['before']:.2f} | {r['after']:.2f} |"
        for r in records
    ]
    lines += [
        "",
        f"Quiet: share min {min(quiet):.3f}, median {statistics.median(quiet):.3f}, max {max(quiet):.3f}. "
        f"Busy: share min {min(busy):.3f}, median {statistics.median(busy):.3f}, max {max(busy):.3f}. "
        f"Threshold in vbench (`bench.measure.timing.CONTENDED_SHARE`): {CONTENDED_SHARE}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
