"""Measured beside published accuracy, end to end, on videos generated here (no data set can be downloaded).

1. Writes a small Kinetics-style folder data set with PyAV: ``--classes`` Kinetics-400
   class names, ``--per-class`` videos each (moving coloured bars, 128x171, 25 fps).
2. Saves a randomly initialised ``r2plus1d_18_tv`` as a bare state dict: torchvision's
   own layout, which ``vbench evaluate`` recognises (a real user passes torchvision's
   checkpoint here, or ``--weights torchvision`` where a network exists).
3. ``vbench evaluate`` with torchvision's protocol (5 clips x 1 centre crop, 16x112x112).
4. ``vbench report`` of the committed CPU run at paper inputs beside that evaluation:
   r2plus1d_18_tv's top-1 is marked *measured*, every other architecture's *published*.

The measured top-1 of random weights on synthetic videos is chance or worse: the
numbers show the pipeline, not the model.

``python benchmarks/evaluate_demo.py --out reports/evaluate-demo``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_videos(root: Path, classes: list[str], per_class: int, frames: int = 75) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for v in range(per_class):
            colour = rng.integers(0, 256, size=3, dtype=np.uint8)
            with av.open(str(root / name / f"{name.replace(' ', '_')}_{v}.mp4"), "w") as out:
                stream = out.add_stream("mpeg4", rate=25)
                stream.width, stream.height, stream.pix_fmt = 172, 128, "yuv420p"
                for t in range(frames):
                    img = np.zeros((128, 172, 3), dtype=np.uint8)
                    x = (4 * t * (c + 1) + 17 * v) % 172
                    img[:, max(0, x - 12) : x + 12] = colour
                    img[(3 * t) % 128, :] = 255 - colour
                    for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "evaluate-demo")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--run", type=Path, default=ROOT / "reports" / "cpu-paper")
    args = parser.parse_args()

    import torch

    import archs
    from bench.evaluate.datasets import kinetics400_classes

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "videos"
        write_videos(data, list(kinetics400_classes())[: args.classes], args.per_class)
        torch.manual_seed(0)
        checkpoint = Path(tmp) / "r2plus1d_18_random.pth"
        torch.save(archs.create_model("r2plus1d_18_tv").state_dict(), checkpoint)
        vbench = [sys.executable, "-m", "bench.cli"]
        evaluation = args.out / "evaluation"
        for cmd in (
            [*vbench, "evaluate", "--arch", "r2plus1d_18_tv", "--weights", str(checkpoint), "--data", str(data),
             "--device", "cpu", "--out", str(evaluation), "--overwrite"],
            [*vbench, "report", str(args.run), str(evaluation), "--out", str(args.out / "report"), "--overwrite"],
        ):  # fmt: skip
            print("$", " ".join(cmd[2:]), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"wrote {evaluation} and {args.out / 'report'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
