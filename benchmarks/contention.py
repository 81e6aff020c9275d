"""Does `contended` catch what busy neighbours do to a run? Four runs of one plan, side by side.

1. a quiet run (nothing started by this script);
2. a run with two busy processes (``while True: pass``) throughout;
3. a run with them for its first half (stopped after half the quiet run's wall time);
4. a quiet run again.

Writes ``reports/benchmarks/contention.md``: each row's latency, its ratio to the first quiet run and its
``contended`` flag, and whether every row is within 25 % of the quiet run or flagged (the issue's bar).

    python benchmarks/contention.py [--arch r3d_18 --arch mc3_18 ...] [--frames 8] [--size 32] [--repeats 10]
                                    [--rounds 1]

With ``--rounds N`` every run is ``vbench profile --rounds N`` (architectures interleaved, a worker each per
round; a row's latency is the median of its quiet rounds' medians), and the table says how many of each
row's rounds were quiet.

The timing gate's A/A false-alarm rate (also with contention in half of a run) and its power on a known
10 % slowdown need tens of runs each: ``benchmarks/gate_power.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _busy(n: int) -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    end = time.monotonic() + 30
    while time.monotonic() < end and not all(_ticks(p.pid) > 0 for p in procs):
        time.sleep(0.02)
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def _profile(args: argparse.Namespace, out: Path) -> tuple[list[dict], float]:
    cmd = [sys.executable, "-m", "bench.cli", "profile", *[a for name in args.arch for a in ("--arch", name)],
           "--device", "cpu", "--frames", str(args.frames), "--size", str(args.size), "--repeats", str(args.repeats),
           "--rounds", str(args.rounds), "--out", str(out)]  # fmt: skip
    start = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    return json.loads((out / "results.json").read_text())["rows"], wall


def _quiet_rounds(row: dict) -> str:
    """``k of n`` rounds not contended (a row of one round: 1 of 1, or 0 of 1)."""
    flags = row.get("round_contended") or [bool(row.get("contended"))]
    return f"{sum(not f for f in flags)} of {len(flags)}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", action="append")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="vbench profile --rounds")
    ap.add_argument("--out", default=str(ROOT / "reports/benchmarks/contention.md"))
    args = ap.parse_args()
    args.arch = args.arch or ["r3d_18", "mc3_18", "r2plus1d_18"]
    runs: dict[str, list[dict]] = {}
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs["quiet"], walls["quiet"] = _profile(args, Path(tmp) / "quiet")
        procs = _busy(2)
        try:
            runs["busy"], walls["busy"] = _profile(args, Path(tmp) / "busy")
        finally:
            _stop(procs)
        procs = _busy(2)
        timer = threading.Timer(walls["quiet"] / 2, _stop, args=(procs,))
        timer.start()
        try:
            runs["busy first half"], walls["busy first half"] = _profile(args, Path(tmp) / "half")
        finally:
            timer.cancel()
            _stop(procs)
        runs["quiet again"], walls["quiet again"] = _profile(args, Path(tmp) / "quiet2")
    # The reference of each architecture: its row in the first run that was not contended (the machine is
    # shared with others too: "quiet" only means this script started nothing), else the first quiet run's.
    quiet = {r["arch"]: r["latency_ms"] for r in runs["quiet"]}
    reference = {name: "quiet" for name in quiet}
    for name in ("quiet again", "busy first half", "busy", "quiet"):
        for r in runs[name]:
            if not r.get("contended"):
                quiet[r["arch"]], reference[r["arch"]] = r["latency_ms"], name
    lines = [
        "# Contention: a plan quiet, beside two busy processes, beside them for half the run, quiet again",
        "",
        f"`python benchmarks/contention.py {' '.join('--arch ' + a for a in args.arch)} --frames {args.frames} "
        f"--size {args.size} --repeats {args.repeats}"
        + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
        + f"` on {os.cpu_count()} cores. Ratio: latency / the reference, "
        "each architecture's row in the first run (quiet first) that was not `contended`: "
        + ", ".join(f"{a}: {reference[a]}" for a in reference)
        + ". Bar (issue 23): every row within 25 % of the reference, or `contended`.",
        "",
        "| run | wall (s) | arch | latency (ms) | ratio | CPU share | load before | quiet rounds | contended "
        "| meets the bar |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name, rows in runs.items():
        for r in rows:
            ratio = r["latency_ms"] / quiet[r["arch"]] if quiet.get(r["arch"]) else float("nan")
            ok = bool(r.get("contended")) or abs(ratio - 1) <= 0.25
            verdicts.append(ok)
            lines.append(
                f"| {name} | {walls[name]:.0f} | {r['arch']} | {r['latency_ms']:.2f} | {ratio:.2f} | "
                f"{r.get('cpu_share') or float('nan'):.2f} | {r.get('load_before') or float('nan'):.2f} | "
                f"{_quiet_rounds(r)} | {r.get('contended')} | {'yes' if ok else 'NO'} |"
            )
    lines += ["", f"Rows meeting the bar: {sum(verdicts)} of {len(verdicts)}.", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
