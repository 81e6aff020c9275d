"""Wall time of `vbench profile --arch all --static` as a whole process (target: under 10 s).

python benchmarks/static_speed.py --runs 5 --out reports/benchmarks/static_speed.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure.environment import environment


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bench.cli", "profile", "--arch", "all", "--static", "--out", d],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t0)
    env = environment(None)
    text = (
        "# `vbench profile --arch all --static`: whole-process wall time\n\n"
        f"Command: `python benchmarks/static_speed.py --runs {args.runs}`; every architecture at its paper input.\n\n"
        f"| runs | median (s) | min (s) | max (s) |\n|---:|---:|---:|---:|\n"
        f"| {len(times)} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |\n\n"
        f"Target: under 10 s. {env['cpu_name']}, {env['cpu_count']} CPUs, torch {env['torch_version']}, "
        f"vbench {env['vbench_version']} ({env['git_sha']}).\n"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
