"""Decoding and preprocessing throughput of ``vbench evaluate`` (clips/s, the model left out).

python benchmarks/decode_speed.py --videos 6 --repeats 3 --out reports/benchmarks/decode_speed.md

Makes Kinetics-like videos with PyAV (10 s, 25 fps, 340x256, H.264), then runs
:func:`bench.evaluate.loop.evaluate` on them with a model that costs nothing, so
the time is the loader's: demuxing, decoding, colour conversion, resizing
(in the DataLoader workers), cutting and normalising the views (in the main
process), and writing the prediction lines. A clip is one view the model would
see. Medians over ``--repeats`` runs, for 0 workers (decoding in the main
process) and 2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from bench.evaluate.datasets import load_dataset
from bench.evaluate.loop import EvalOptions, evaluate
from bench.evaluate.video import ViewSpec
from bench.measure.environment import environment

CONFIGS = {
    # torchvision's video ResNets: resize 128x171, 112 centre crop, 16 frames; 1 clip, and the 5 clips it evaluates with
    "16x112x112": [
        ViewSpec(16, 1, 1, 1, 112, (128, 171), (0.432, 0.395, 0.376), (0.228, 0.221, 0.217)),
        ViewSpec(16, 1, 5, 1, 112, (128, 171), (0.432, 0.395, 0.376), (0.228, 0.221, 0.217)),
    ],
    # I3D/S3D: short side 256, 224 crop, 64 frames; 1 clip, and the 10 clips x 3 crops of the multi-view protocol
    "64x224x224": [
        ViewSpec(64, 1, 1, 1, 224, 256, (0.5,) * 3, (0.5,) * 3),
        ViewSpec(64, 1, 10, 3, 224, 256, (0.5,) * 3, (0.5,) * 3),
    ],
}


class _Free(torch.nn.Module):
    """A model that costs nothing: the loader's time is all there is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 2)


def make_videos(root: Path, n: int, seconds: float = 10.0, fps: int = 25, size: tuple[int, int] = (256, 340)) -> None:
    """``n`` H.264 videos of moving gradients and noise (so the encoder has something to encode), two classes."""
    rng = np.random.default_rng(0)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        path = root / f"c{i % 2}" / f"v{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
            for t in range(int(seconds * fps)):
                frame = np.stack(
                    [(x + 3 * t + 40 * i) % 256, (y + 2 * t) % 256, ((x + y) // 2 + t) % 256], axis=-1
                ).astype(np.uint8)
                frame = np.clip(frame + rng.integers(-12, 12, frame.shape), 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def measure(data: Path, spec: ViewSpec, workers: int, repeats: int, batch: int) -> dict[str, Any]:
    dataset = load_dataset(data)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = evaluate(
                _Free(), spec, dataset, ["c0", "c1"], Path(out) / "e", options=EvalOptions(batch=batch, workers=workers)
            )
            wall = time.perf_counter() - t0
        t = result.timing
        runs.append({"clips_per_s": t.clips / wall, "wall_s": wall, "videos": t.videos, "clips": t.clips,
                     "decode_s": t.decode_s, "resize_s": t.resize_s, "views_s": t.views_s, "wait_s": t.wait_s})  # fmt: skip
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--note",
        default="A 2-core virtual machine: read the numbers for their proportions.",
        help="What else the machine ran, said in the report.",
    )
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "videos"
        t0 = time.perf_counter()
        make_videos(data, args.videos)
        print(f"made {args.videos} videos in {time.perf_counter() - t0:.1f} s")
        for clip, specs in CONFIGS.items():
            for spec in specs:
                for workers in (0, 2):
                    m = measure(data, spec, workers, args.repeats, args.batch)
                    n = m["videos"]
                    views = f"{spec.clips} x {spec.crops}"
                    rows.append(
                        f"| {clip} | {views} | {workers} | {m['clips_per_s']:.1f} | {n / m['wall_s']:.2f} | "
                        f"{1000 * m['decode_s'] / n:.0f} | {1000 * m['resize_s'] / n:.0f} | "
                        f"{1000 * m['views_s'] / n:.0f} | {1000 * m['wait_s'] / n:.0f} |"
                    )
                    print(rows[-1], flush=True)
    env = environment(None)
    text = (
        "# Decoding and preprocessing throughput of `vbench evaluate`\n\n"
        f"Command: `python benchmarks/decode_speed.py --videos {args.videos} --repeats {args.repeats}`. "
        f"{args.videos} H.264 videos made with PyAV (10 s, 25 fps, 340x256, yuv420p: Kinetics copies with a short side "
        "of 256), evaluated with a model that costs nothing, so the time is the loader's: demux, decode, RGB "
        "conversion and resize (antialiased bilinear) in the DataLoader workers (or in the main process with 0 "
        f"workers), cutting and normalising the views in the main process, batch {args.batch}. Medians over "
        f"{args.repeats} runs. Per-video times are sums over the workers.\n\n"
        "| clip (TxHxW) | views (clips x crops) | workers | clips/s | videos/s | decode (ms/video) | "
        "resize (ms/video) | views (ms/video) | waited for loader (ms/video) |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Machine: {env['cpu_name']}, {env['cpu_count']} CPUs, torch {env['torch_version']}, PyAV {av.__version__}, "
        f"vbench {env['vbench_version']} ({env['git_sha']}). {args.note} With one clip per video, decoding up to the clip (the demux pass, then H.264 decoding "
        "of every frame before the clip's last) is nearly all the cost; more clips per video share one decode; "
        "at 64x224x224 with 30 views, cutting and normalising the float views in the main process dominates on "
        "a CPU (on a GPU the crops travel as 8-bit and are normalised there). On a free machine with more cores, "
        "workers scale decoding until the model is the bottleneck (`evaluation.json` says which: "
        "`timing.bottleneck`).\n"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
