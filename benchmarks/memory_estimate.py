"""The memory estimate that decides ``skipped`` rows, against the peak measured on this CPU; and the estimate at
paper input for every registered architecture.

python benchmarks/memory_estimate.py --out reports/benchmarks/memory_estimate.md \
    --raw reports/benchmarks/memory_estimate.json

Part 1 (measured): for a handful of CNNs and transformers at a small clip (8x112
by default), batch 1 and 2, inference and training, each configuration runs in a
fresh process, as a vbench worker runs it: :func:`bench.measure.latency.measure_config`
(one warm-up, then timed iterations; the peak resident set, ``VmHWM``, is reset
after the warm-up and read after the timed ones). The table gives that peak (what
a row's ``peak_mem_mib`` shows) and the process's resident set before the model
was built; what the configuration took is the difference, which is what
:func:`bench.measure.latency.estimate_bytes` estimates (the worker compares it with the
memory still available). The ratio is estimate / taken: >= 1 is an upper bound.
"before" is the estimate as it was (main at 0f2d464: the leaf modules' outputs
alone, attention's own tensors unseen), from the same counts.

Part 2 (static): :func:`bench.measure.latency.estimate_bytes` at each architecture's paper
input, training in fp32, batch 1 and 8, for every registered architecture, with
the CPU's rule and the GPU's (one copy of the weights fewer); counted on the meta
device, nothing measured. Architectures with attention (a module that declares
``work_kind = "attention"``) are marked.

The measurements take about 30 minutes on 2 loaded cores; ``--raw`` keeps them, so
that a change to the estimate is checked again in a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SMALL = {
    "r3d_18": "CNN",
    "r2plus1d_18": "CNN",
    "x3d_m": "CNN",
    "videomae_vit_s": "attention",
    "mvit_v2_s": "attention",
    "swin3d_t": "attention",
    "timesformer": "attention",
}
MIB = 2**20


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _child(spec: dict[str, Any]) -> None:
    """One configuration in this fresh process: the resident set before, and the peak as a worker reads it."""
    import torch

    from bench.measure.latency import measure_config
    from bench.results.records import Config, SamplePolicy

    torch.set_num_threads(spec.pop("threads"))
    config = Config(**spec)
    before = _rss_mib()
    result = measure_config(config, SamplePolicy(warmup=1, repeats=2, min_time=0.0, max_time=30.0))
    print(json.dumps({"before_mib": before, "peak_mib": result.memory["peak_mem_mib"]}))


def _measure(arch: str, frames: int, size: int, batch: int, mode: str, threads: int) -> dict[str, float]:
    spec = dict(
        arch=arch, batch=batch, frames=frames, height=size, width=size, device="cpu", mode=mode, threads=threads
    )
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{arch} {mode} b{batch}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _estimates(arch: str, frames: int, size: int, batch: int, mode: str) -> tuple[int, int]:
    """(estimate, estimate before attention's own tensors counted), bytes."""
    from bench.measure.counting import count
    from bench.measure.latency import estimate_bytes
    from bench.results.records import Config

    counts = count(arch, (1, 3, frames, size, size), train=mode == "train", memory=True)
    config = Config(arch=arch, batch=batch, frames=frames, height=size, width=size, device="cpu", mode=mode)
    return estimate_bytes(counts, config), _estimate_before(counts, config)


def _estimate_before(counts: Any, config: Any) -> int:
    """The estimate as it was before this check (main at 0f2d464): leaf modules' outputs only, fp32."""
    weights = 4 * counts.params
    if config.mode == "train":
        return 3 * weights + 4 * config.batch * counts.activations
    return weights + 3 * 4 * config.batch * counts.peak_activation


def measured_table(frames: int, size: int, threads: int, raw: Path | None = None) -> list[str]:
    """The measured table; ``raw``, a JSON file, keeps each measurement (reused when there: the estimates can
    be computed again without measuring again)."""
    kept: dict[str, dict[str, float]] = json.loads(raw.read_text()) if raw is not None and raw.exists() else {}
    lines = [
        "| arch | kind | mode | batch | RSS before (MiB) | peak_mem_mib | taken (MiB) | estimate (MiB) "
        "| ratio | before: estimate (MiB) | before: ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[tuple[str, str], list[float]] = {}
    for arch, kind in SMALL.items():
        for mode in ("infer", "train"):
            for batch in (1, 2):
                key = f"{arch} {frames}x{size} {mode} b{batch} threads={threads}"
                if key not in kept:
                    kept[key] = _measure(arch, frames, size, batch, mode, threads)
                    if raw is not None:
                        raw.write_text(json.dumps(kept, indent=1))
                got = kept[key]
                taken = got["peak_mib"] - got["before_mib"]
                estimate, old = (b / MIB for b in _estimates(arch, frames, size, batch, mode))
                ratios.setdefault((kind, mode), []).append(estimate / taken)
                lines.append(
                    f"| {arch} | {kind} | {mode} | {batch} | {got['before_mib']:.0f} | {got['peak_mib']:.0f} "
                    f"| {taken:.0f} | {estimate:.0f} | {estimate / taken:.2f} | {old:.0f} | {old / taken:.2f} |"
                )
                print(lines[-1], flush=True)
    lines.append("")
    for (kind, mode), r in ratios.items():
        lines.append(f"- {kind}, {mode}: estimate / taken from {min(r):.2f} to {max(r):.2f}")
    return lines


def static_table() -> list[str]:
    import archs
    from bench.measure.counting import MacAnalysis, build_meta
    from bench.measure.held import largest_output, saved_for_backward
    from bench.measure.latency import estimate_bytes
    from bench.results.records import Config

    lines = [
        "| arch | attention | paper input | params (M) | leaf outputs per clip (M) | saved for backward per clip (M) "
        "| CPU, batch 1 (GiB) | CPU, batch 8 (GiB) | GPU, batch 1 (GiB) | GPU, batch 8 (GiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch in archs.list_archs():
        _, frames, h, w = archs.get_arch(arch).default_input
        model = build_meta(arch)
        attention = any(getattr(type(m), "work_kind", None) == "attention" for m in model.modules())
        shape = (1, 3, frames, h, w)
        counts = dataclasses.replace(
            MacAnalysis(model, shape).counts(),
            saved_activations=saved_for_backward(model, shape),
            largest_output=largest_output(model, shape),
        )
        gib = [
            estimate_bytes(
                counts, Config(arch=arch, batch=b, frames=frames, height=h, width=w, device=device, mode="train")
            )
            / 2**30
            for device in ("cpu", "cuda")
            for b in (1, 8)
        ]
        lines.append(
            f"| {arch} | {'yes' if attention else ''} | {frames}x{h}x{w} | {counts.params / 1e6:.1f} "
            f"| {counts.activations / 1e6:.0f} | {counts.saved_activations / 1e6:.0f} | "
            + " | ".join(f"{g:.1f}" for g in gib)
            + " |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--raw", type=Path, help="JSON file of the measurements: kept, and reused when there.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    import torch

    started = time.time()
    measured = measured_table(args.frames, args.size, args.threads, args.raw)
    static = static_table()
    text = "\n".join(
        [
            "# Memory estimate against the measured peak (CPU), and the estimate at paper input",
            "",
            f"`python benchmarks/memory_estimate.py --frames {args.frames} --size {args.size} "
            f"--threads {args.threads} --out ... --raw ...` (torch {torch.__version__}, this run "
            f"{time.time() - started:.0f} s; measurements kept in the --raw file are reused, not measured again).",
            "",
            f"## Measured at {args.frames}x{args.size}x{args.size} on this CPU: estimate / taken",
            "",
            *measured,
            "",
            "## Estimates at paper input (not measured): training, fp32",
            "",
            *static,
            "",
        ]
    )
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    if str(Path(__file__).resolve().parents[1]) not in sys.path:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
