"""Where the time goes, for every architecture: ``vbench inspect --time`` at small clips, with its checks.

For each architecture (inference, and training for the ones named with
``--train``) this measures the time breakdown in a fresh process, one after
the other, and writes under ``--out``:

- ``<arch>-<mode>.json``: the breakdown, as ``vbench inspect --time --json`` gives it;
- ``roofline.json``: the device's measured roofline for the dtype;
- ``summary.md``: per breakdown, the sum check (depth-1 lines / uninstrumented
  latency, target within 10 %), the profiler check (attributed / ``key_averages``
  total, target within 5 %), the instrumentation's overhead and the share of time
  by kind of work; then the by-kind tables of the ``--train`` architectures;
- ``time_by_kind.png`` and ``roofline.png`` (with matplotlib).

Run by hand (never in the tests): ``python benchmarks/time_breakdown.py --out reports/breakdown/cpu``.
The machine is shared: the checks compare numbers measured in one process, minutes apart at most.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = {"resnet": (8, 112), "inception": (16, 224)}
"""Small clips: half the ResNets' 16 frames at their 112 pixels; a quarter of the Inception nets' 64 frames."""


def _clip(arch: str) -> tuple[int, int]:
    """The small clip, or the architecture's smallest where that is larger (R2D folds its 16 frames)."""
    import archs

    spec = archs.get_arch(arch)
    frames, size = SMALL["inception"] if spec.default_input[2] >= 224 else SMALL["resnet"]
    return max(frames, spec.min_input[1]), max(size, spec.min_input[2])


def _run(arch: str, mode: str, device: str, dtype: str, iterations: int) -> dict:
    frames, size = _clip(arch)
    cmd = [sys.executable, "-m", "bench.cli", "inspect", arch, "--time", "--json", "--mode", mode, "--device", device,
           "--dtype", dtype, "--frames", str(frames), "--size", str(size), "--iterations", str(iterations),
           "--depth", "3"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{arch} {mode}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _why(b: dict) -> str:
    """One sentence per breakdown, from its numbers: the slowest kind of work with MACs against the fastest, and
    attention's share of time against its share of MACs where the model attends."""
    rated = [k for k in b["kinds"] if k["gmacs_per_s"] and k["pct_macs"] >= 0.01]
    if len(rated) < 2:
        return ""
    slow = min(rated, key=lambda k: k["gmacs_per_s"])
    fast = max(rated, key=lambda k: k["gmacs_per_s"])
    text = (
        f"- **{b['arch']}** ({b['mode']}): {slow['kind']} work does {_pct(slow['pct_macs'])} of the MACs in "
        f"{_pct(slow['pct_time'])} of the time, at {slow['gmacs_per_s']:.1f} GMAC/s, against "
        f"{fast['gmacs_per_s']:.1f} GMAC/s for its {fast['kind']} work ({fast['gmacs_per_s'] / slow['gmacs_per_s']:.1f}x)."
    )
    attention = next((k for k in b["kinds"] if k["kind"] == "attention" and k["pct_time"] > 0), None)
    if attention is not None:
        text += (
            f" Attention (its projections and the two matmuls) takes {_pct(attention['pct_time'])} of the time "
            f"for {_pct(attention['pct_macs'])} of the MACs."
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "breakdown" / "cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--arch", nargs="*", default=None, help="default: every architecture")
    parser.add_argument("--train", nargs="*", default=["r2plus1d_18", "s3d_g", "i3d"])
    parser.add_argument(
        "--detail",
        nargs="*",
        default=None,
        help="architectures whose tables by kind and stage are written (default: the --train ones)",
    )
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()

    import archs
    from bench.measure.roofline import roofline_for

    names = args.arch or archs.list_archs()
    args.out.mkdir(parents=True, exist_ok=True)
    roof = roofline_for(args.device, args.dtype)
    (args.out / "roofline.json").write_text(json.dumps(roof.to_dict(), indent=1) + "\n")

    started = time.monotonic()
    found = []
    for arch in names:
        for mode in ("infer", "train") if arch in args.train else ("infer",):
            b = _run(arch, mode, args.device, args.dtype, args.iterations)
            (args.out / f"{arch}-{mode}.json").write_text(json.dumps(b, indent=1) + "\n")
            found.append(b)
            print(f"{arch:18s} {mode:5s} latency {b['latency_ms']:9.2f} ms  sum {_pct(b['sum_ratio']):>8s}  "
                  f"profiler {_pct(b['profiler_ratio']):>8s}  overhead {100 * b['overhead']:+.1f} %", flush=True)  # fmt: skip
    took = time.monotonic() - started

    lines = [
        f"# Time breakdowns on {roof.device_name} ({args.device}, {args.dtype}, {roof.threads} threads)",
        "",
        f"`python benchmarks/time_breakdown.py --out {os.path.relpath(args.out, ROOT)}` (torch {roof.torch_version}; "
        f"{took / 60:.1f} minutes on a shared machine). Small clips: {SMALL['resnet'][0]}x{SMALL['resnet'][1]}^2 "
        f"where the paper's clip is under 224 pixels (the ResNets), {SMALL['inception'][0]}x{SMALL['inception'][1]}^2 "
        "otherwise, or the smallest valid clip where that is larger; batch 1.",
        "",
        f"Measured roofline: peak {roof.peak_tflops:.3f} TFLOP/s (matmul {roof.matmul_tflops:.3f}, conv3d "
        f"{roof.conv3d_tflops:.3f}), copy bandwidth {roof.bandwidth_gbs:.1f} GB/s, ridge {roof.ridge:.1f} FLOP/byte.",
        "",
        "*sum*: the depth-1 lines (every operator's self time) over the latency measured without instrumentation "
        "(target: within 10 %). *profiler*: the attributed total over torch.profiler's own `key_averages()` total "
        "for the same run (target: within 5 %). *overhead*: an instrumented iteration over an uninstrumented one.",
        "",
        "| arch | mode | input | latency (ms) | GMAC/s | sum | profiler | overhead | top kinds by time |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for b in found:
        root = b["modules"][0]
        top = sorted(b["kinds"], key=lambda k: -k["pct_time"])[:3]
        kinds = ", ".join(f"{k['kind']} {100 * k['pct_time']:.0f} %" for k in top)
        clip = "x".join(str(v) for v in b["input_shape"][2:])
        lines.append(
            f"| {b['arch']} | {b['mode']} | {clip} | {b['latency_ms']:.1f} | {root['gmacs_per_s'] or 0:.1f} | "
            f"{_pct(b['sum_ratio'])} | {_pct(b['profiler_ratio'])} | {100 * b['overhead']:+.1f} % | {kinds} |"
        )
    ok_sum = sum(abs(b["sum_ratio"] - 1) <= 0.10 for b in found)
    ok_prof = sum(abs(b["profiler_ratio"] - 1) <= 0.05 for b in found)
    lines += ["", f"Sum check within 10 %: {ok_sum} of {len(found)}. Profiler check within 5 %: {ok_prof} of "
              f"{len(found)}.", ""]  # fmt: skip
    detail = args.train if args.detail is None else args.detail
    why = [line for b in found if b["arch"] in detail and (line := _why(b))]
    if why:
        lines += ["## Why the MACs run at different speeds", "", *why, ""]
    for b in found:
        if b["arch"] not in detail:
            continue
        lines += [f"## {b['arch']}, {b['mode']}", "", "| kind | time (ms) | % time | GMACs | % MACs | GMAC/s |",
                  "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for k in b["kinds"]:
            rate = f"{k['gmacs_per_s']:.1f}" if k["gmacs_per_s"] else "-"
            lines.append(f"| {k['kind']} | {k['latency_ms']:.2f} | {_pct(k['pct_time'])} | {k['gmacs']:.3f} | "
                         f"{_pct(k['pct_macs'])} | {rate} |")  # fmt: skip
        lines += [
            "",
            "| stage | time (ms) | % time | GMACs | % MACs | GMAC/s | bound |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for s in b["stages"]:
            rate = f"{s['gmacs_per_s']:.1f}" if s["gmacs_per_s"] else "-"
            lines.append(f"| {s['module']} | {s['latency_ms']:.2f} | {_pct(s['pct_time'])} | {s['gmacs']:.3f} | "
                         f"{_pct(s['pct_macs'])} | {rate} | {s['bound'] or '-'} |")  # fmt: skip
        lines.append("")
    (args.out / "summary.md").write_text("\n".join(lines))

    try:
        import pandas as pd

        from bench.report import plots
    except ImportError:
        print("figures skipped: matplotlib is not installed")
        return 0
    plots.plot_time_by_kind([b for b in found if b["arch"] in args.train or b["mode"] == "infer"],
                            args.out / "time_by_kind")  # fmt: skip
    points = pd.DataFrame(
        [{"device": b["device"], "dtype": b["dtype"], "mode": b["mode"], "batch": b["input_shape"][0],
          "arch": b["arch"], "intensity": b["modules"][0]["intensity"],
          "achieved_tflops": 2 * b["modules"][0]["gmacs"] / b["latency_ms"]}  # GMACs per ms -> TFLOP/s
         for b in found]
    )  # fmt: skip
    plots.plot_roofline(points, {(args.device, args.dtype): roof.to_dict()}, args.out / "roofline")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
