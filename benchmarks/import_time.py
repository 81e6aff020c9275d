"""Start-up cost of the commands that only read saved runs: wall time, modules imported, torch or not.

``docs/design.md``, "Performance targets": ``--help``, ``compare``, ``merge`` and ``report``
tables import no torch and start in well under a second. Each command runs in a
fresh interpreter (``python -m bench.cli ...``) on the committed CPU baseline;
the module count and whether ``torch`` (or ``archs``, which imports torch) was
imported are read from ``sys.modules`` when the command returns.

python benchmarks/import_time.py --runs 5 --out reports/benchmarks/import_time.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "reports" / "baselines" / "cpu-static"

PROBE = """
import contextlib, io, json, runpy, sys
sys.argv = ["vbench", *sys.argv[1:]]
code = 0
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        runpy.run_module("bench.cli", run_name="__main__")
    except SystemExit as e:
        code = e.code or 0
print(json.dumps({"code": code, "modules": len(sys.modules), "torch": "torch" in sys.modules,
                  "archs": "archs" in sys.modules}))
"""
"""Runs the CLI as ``vbench`` would, then reports what it imported (stdout of the command is swallowed)."""


def commands(tmp: Path) -> dict[str, list[str]]:
    """The four commands, each writing (where it writes) into a fresh folder under ``tmp``."""
    return {
        "vbench --help": ["--help"],
        "vbench compare A A": ["compare", str(RUN), str(RUN)],
        "vbench merge A --out M": ["merge", str(RUN), "--out", str(tmp / "merged")],
        "vbench report A --no-plots --out R": ["report", str(RUN), "--no-plots", "--out", str(tmp / "report")],
    }


def probe(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, env={**os.environ}, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed for {args}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    p.add_argument("--label", default="", help="A title for this measurement (e.g. 'before', 'after').")
    args = p.parse_args()
    lines = [
        "| command | exit | median wall (s) | min (s) | modules | torch imported | archs imported |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for name in commands(Path(".")):
        times = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as d:
                run_argv = commands(Path(d))[name]
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "bench.cli", *run_argv], capture_output=True, cwd=ROOT)
                times.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as d:
            found = probe(commands(Path(d))[name])
        lines.append(
            f"| `{name}` | {found['code']} | {statistics.median(times):.2f} | {min(times):.2f} | {found['modules']} | "
            f"{'yes' if found['torch'] else 'no'} | {'yes' if found['archs'] else 'no'} |"
        )
    text = "\n".join(
        [
            f"### {args.label or 'import time'}",
            "",
            f"`python benchmarks/import_time.py --runs {args.runs}`: median and minimum of {args.runs} whole-process "
            "wall times of `python -m bench.cli ...` on `reports/baselines/cpu-static`; modules in `sys.modules` "
            "when the command returns (fresh interpreter). "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}.",
            "",
            *lines,
            "",
        ]
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
