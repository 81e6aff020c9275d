"""Harness overhead: vbench's reported latency against a bare, hand-written timing loop.

For each architecture, the same model and input are timed alternately by
``bench.measure.latency.measure_config`` (the code path every row goes through) and by
a plain loop (perf_counter on CPU, CUDA events on GPU), in interleaved rounds
inside one process so that drift and noise hit both alike. Reports the median
of each and their ratio. Target: within 2 %.

    python benchmarks/overhead.py --device cpu --out reports/benchmarks/overhead_cpu.md
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch

import archs
from bench.measure.environment import environment
from bench.measure.latency import measure_config
from bench.results.records import SamplePolicy
from bench.run.plan import Config

CASES = {  # (arch, frames, size): small enough on a CPU to take hundreds of samples
    "cpu": [("r2plus1d_18", 8, 32), ("mc3_18", 8, 32), ("r3d_18", 8, 32)],
    "cuda": [("r2plus1d_18", 16, 112), ("r3d_18", 16, 112), ("i3d", 64, 224)],
}


def bare_loop(arch: str, shape: tuple[int, ...], device: str, n: int, warmup: int) -> list[float]:
    torch.manual_seed(0)
    model = archs.create_model(arch).to(device).eval()
    x = torch.randn(shape, device=device)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(n):
            if device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    return times


def ratio_ci(bare: list[float], harness: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of median(harness) / median(bare), resampling both sides."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(harness, k=len(harness))) / statistics.median(rng.choices(bare, k=len(bare)))
        for _ in range(n)
    )
    return ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]


def iqr_ratio(xs: list[float]) -> float:
    q = statistics.quantiles(xs, n=4)
    return (q[2] - q[0]) / statistics.median(xs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--per-round", type=int, default=6)
    p.add_argument("--threads", type=int, help="torch threads on the CPU (1 is far less noisy on a shared machine)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    lines = [
        f"# Harness overhead on {args.device}",
        "",
        f"Command: `python benchmarks/overhead.py --device {args.device} --rounds {args.rounds} "
        f"--per-round {args.per_round}" + (f" --threads {args.threads}" if args.threads else "") + "` "
        f"({args.rounds} interleaved rounds x {args.per_round} samples each way, batch 1, fp32, inference).",
        "",
        "| arch | input (TxHxW) | bare loop median (ms) | vbench median (ms) | ratio | 95 % CI of the ratio "
        "| bare IQR/median | vbench IQR/median |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for arch, t, s in CASES[args.device]:
        config = Config(arch=arch, batch=1, frames=t, height=s, width=s, device=args.device)
        policy = SamplePolicy(warmup=2, repeats=args.per_round, max_time=600)
        bare, harness = [], []
        for _ in range(args.rounds):
            bare += bare_loop(arch, config.input_shape, args.device, args.per_round, warmup=2)
            harness += list(measure_config(config, policy).measurement.times_s)
        b, h = statistics.median(bare), statistics.median(harness)
        low, high = ratio_ci(bare, harness)
        line = (
            f"| {arch} | {t}x{s}x{s} | {b * 1e3:.2f} | {h * 1e3:.2f} | {h / b:.3f} | {low:.3f} to {high:.3f} "
            f"| {iqr_ratio(bare):.3f} | {iqr_ratio(harness):.3f} |"
        )
        print(line, flush=True)
        lines.append(line)
    env = environment(args.device)
    lines += ["", f"torch {env['torch_version']}, {env.get('device_name') or env['cpu_name']}, "
              f"{env['torch_threads']} threads, vbench {env['vbench_version']} ({env['git_sha']})."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
