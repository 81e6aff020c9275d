"""Peak memory of decoding one video for ``vbench evaluate``, against resolution and length, for each protocol.

python benchmarks/decode_memory.py --out reports/benchmarks/decode_memory.md

Makes videos with PyAV (MPEG-4 part 2, 25 fps, a moving gradient) at 360p,
720p and 1080p, 6 s and 12 s long, then decodes each with
:func:`bench.evaluate.video.read_video` as a DataLoader worker does (one FFmpeg thread,
one torch thread), once per protocol with the preprocessing of that protocol's
reference weights. Each decode runs in a forked child of a process that has
already imported torch and PyAV; the child resets its peak resident set
(``/proc/self/clear_refs``), decodes, and reports ``VmHWM`` less its resident
set before decoding: the memory decoding that one video took.

The target (issue 19): at most twice the resized frames the views are cut
from (what the worker hands over) plus a constant that does not grow with the
video's length: :data:`bench.evaluate.video.RESIZE_CHUNK` frames at the source's
resolution, twice (the decoded arrays and their stacked batch), and 64 MiB for
the decoder and the allocator.

``--code DIR`` imports ``bench`` from another checkout (for example the code
before the fix) to measure it the same way.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESOLUTIONS = {"360p": (360, 640), "720p": (720, 1280), "1080p": (1080, 1920)}
SECONDS = (6, 12)
FPS = 25

_KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))
_HALF = ((0.5,) * 3, (0.5,) * 3)
PROTOCOLS: dict[str, dict[str, Any]] = {
    # name: the views (clips, crops) and the preprocessing of the reference weights (archs/weights.py)
    "torchvision": {"clips": 5, "crops": 1, "frames": 16, "resize": (128, 171), "crop": 112, "norm": _KINETICS},
    "torchvision_s3d": {"clips": 1, "crops": 1, "frames": 128, "resize": (256, 256), "crop": 224, "norm": _KINETICS},
    "r2plus1d": {"clips": 10, "crops": 1, "frames": 32, "resize": 128, "crop": 112, "norm": _KINETICS},
    "i3d": {"clips": None, "crops": 1, "frames": 64, "resize": 256, "crop": 224, "norm": _HALF},
    "s3d": {"clips": None, "crops": 1, "frames": 64, "resize": 256, "crop": 224, "norm": _HALF},
    "slowfast": {"clips": 10, "crops": 3, "frames": 32, "resize": 256, "crop": 224, "norm": _HALF},
    "single": {"clips": 1, "crops": 1, "frames": 16, "resize": (128, 171), "crop": 112, "norm": _KINETICS},
}
DECODER_MIB = 64
"""The part of the constant that is neither frames nor views: FFmpeg's buffers, the allocator's slack."""


def make_video(path: Path, height: int, width: int, frames: int) -> None:
    import av
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.height, stream.width = height, width
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 2_000_000
        for t in range(frames):
            level = ((x + 4 * t) % 256).astype(np.uint8)
            rgb = np.stack([level, ((y + 2 * t) % 256).astype(np.uint8), np.full_like(level, 128)], axis=-1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(path: Path, spec: Any) -> dict[str, Any]:
    """Decode ``path`` in a forked child; what it cost (MiB above the child's resident set before decoding)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: decode once, report, leave without running the parent's clean-up
        os.close(read)
        try:
            from bench.evaluate.video import VideoError, read_video

            Path("/proc/self/clear_refs").write_text("5")  # the peak resident set restarts from now
            before = _status_kib("VmRSS")
            t0 = time.perf_counter()
            try:
                video = read_video(path, spec, threads=1)
                result: dict[str, Any] = {
                    "frames": int(video.frames.shape[0]),
                    "frames_mib": video.frames.numel() / 2**20,
                    "size": tuple(video.frames.shape[2:]),
                }
            except VideoError as e:
                result = {"skipped": e.reason}
            result["seconds"] = time.perf_counter() - t0
            result["extra_mib"] = (_status_kib("VmHWM") - before) / 1024
            os.write(write, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else {"skipped": "the child died"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="Markdown file for the table (default: print it)")
    p.add_argument("--code", type=Path, help="Import bench from this checkout instead of this one")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help="Comma-separated protocol names")
    p.add_argument("--resolutions", default=",".join(RESOLUTIONS), help="Comma-separated: 360p, 720p, 1080p")
    args = p.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    import av
    import torch

    import bench.evaluate.video
    from bench.evaluate.video import ViewSpec

    torch.set_num_threads(1)
    chunk = getattr(bench.evaluate.video, "RESIZE_CHUNK", None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vbench-decode-memory-") as tmp:
        for res in args.resolutions.split(","):
            height, width = RESOLUTIONS[res]
            source_mib = height * width * 3 / 2**20
            for seconds in SECONDS:
                video = Path(tmp) / f"{res}-{seconds}s.mp4"
                t0 = time.perf_counter()
                make_video(video, height, width, seconds * FPS)
                print(f"made {video.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
                for name in args.protocols.split(","):
                    cfg = PROTOCOLS[name]
                    spec = ViewSpec(
                        cfg["frames"], 1, cfg["clips"], cfg["crops"], cfg["crop"], cfg["resize"], *cfg["norm"]
                    )
                    got = measure(video, spec)
                    limit = 2 * got.get("frames_mib", 0.0) + 2 * (chunk or 8) * source_mib + DECODER_MIB
                    rows.append((name, res, seconds, got, limit))
                    print(name, res, f"{seconds}s", got, file=sys.stderr)
    head = [
        f"# Peak memory of decoding one video (`python benchmarks/decode_memory.py`{' --code ' + str(args.code) if args.code else ''})",
        "",
        f"torch {torch.__version__}, PyAV {av.__version__}, one FFmpeg thread and one torch thread (as a decoding "
        f"worker); MPEG-4 videos at {FPS} fps. *extra*: the decoding child's peak resident set (VmHWM) less its "
        "resident set before it decoded. *resized frames*: the uint8 frames the views are cut from, which the worker "
        "hands over. *bound*: twice the resized frames plus "
        + (f"{chunk} source frames twice (RESIZE_CHUNK) and {DECODER_MIB} MiB" if chunk else
           f"8 source frames twice and {DECODER_MIB} MiB (this code has no RESIZE_CHUNK)")
        + ": a constant for a resolution, whatever the length.",
        "",
        "| protocol | resolution | length (s) | frames kept | resized to | resized frames (MiB) | extra (MiB) | bound (MiB) | within | decode (s) |",
        "|---|---|---:|---:|---|---:|---:|---:|---|---:|",
    ]  # fmt: skip
    body = []
    for name, res, seconds, got, limit in rows:
        if "skipped" in got:
            body.append(f"| {name} | {res} | {seconds} | - | - | - | {got['extra_mib']:.0f} | - | {got['skipped']} | "
                        f"{got['seconds']:.1f} |")  # fmt: skip
            continue
        size = "x".join(str(v) for v in got["size"])
        ok = "yes" if got["extra_mib"] <= limit else "**no**"
        body.append(f"| {name} | {res} | {seconds} | {got['frames']} | {size} | {got['frames_mib']:.1f} | "
                    f"{got['extra_mib']:.0f} | {limit:.0f} | {ok} | {got['seconds']:.1f} |")  # fmt: skip
    text = "\n".join([*head, *body]) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
