"""Reading videos for evaluation: which frames and crops make the views, decoding them, the pixel transforms.

A *view* is one input the model sees: ``frames`` frames, ``frame_stride``
apart, cut at one spatial position. A protocol takes ``clips`` views spread
evenly in time times ``crops`` views spread along the frame's long side (or
the whole video as one view); the prediction for the video is the mean of the
views' softmax. The choices follow the references:

- Time: ``clips`` starts from ``floor(linspace(0, n - span, clips))``, where
  ``span = (frames - 1) * frame_stride + 1``, as torchvision's
  ``UniformClipSampler`` spreads its clips; one clip is the centre one.
- Space: the short side (or both sides) resized as the weights say
  (antialiased bilinear on the 8-bit frames, as torchvision's ``Resize`` does
  on uint8 frames), then ``crops`` squares spread evenly along the long side:
  1 is the centre, 3 are left/centre/right (top/centre/bottom for a portrait
  video), as PySlowFast's ``uniform_crop`` and MMAction2's ``ThreeCrop`` do.
- A video with fewer frames than one view needs is *too short*: it is skipped
  with that reason, not loop-padded (torchvision's ``VideoClips`` makes no clip
  of it either; PySlowFast would repeat frames).

Decoding (:func:`read_video`) runs in DataLoader worker processes: it counts
the video's packets (a demux pass, cheap), decodes up to the last frame a view
needs, and keeps only those frames, resized a few at a time as they are
decoded (memory follows the resized frames, not the source's resolution). Cropping and normalising run
where the model is (:func:`make_views`), on the 8-bit frames, so a worker sends
each needed frame once, small, whatever the number of views.

Any failure becomes a :class:`VideoError` with a short reason (``unreadable``,
``no video stream``, ``corrupt``, ``too short``), never an exception that
ends a worker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import first_line

if TYPE_CHECKING:
    import torch

__all__ = [
    "RESIZE_CHUNK",
    "SKIP_REASONS",
    "WHOLE_MAX_FRAMES",
    "DecodedVideo",
    "VideoError",
    "ViewSpec",
    "clip_starts",
    "crop_offsets",
    "make_views",
    "plan_frames",
    "read_video",
    "resize_frames",
    "resized_size",
]

SKIP_REASONS = ("missing", "unreadable", "no video stream", "corrupt", "too short", "non-finite output")
"""Why a video gives no prediction; the counts in ``evaluation.json`` are keyed by these."""

WHOLE_MAX_FRAMES = 1024
"""The most frames a whole-video view takes (40 s at 25 fps); a longer video gives its centred 1024, and its
prediction line says how many it used."""


class VideoError(Exception):
    """A video that gives no views; ``reason`` is one of :data:`SKIP_REASONS`, ``detail`` one line."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ViewSpec:
    """How to cut one video into views: what the weights' preprocessing and the protocol say.

    Attributes:
        frames: frames per view (the clip length T).
        frame_stride: take every ``frame_stride``-th decoded frame.
        clips: views spread in time; ``None``: the whole video is one view.
        crops: views spread along the long side of each frame.
        crop: side of the square crop, pixels.
        resize: an int resizes the short side to it (aspect kept); ``(h, w)`` resizes to exactly that.
        mean, std: normalisation after the pixels are scaled to [0, 1].
    """

    frames: int
    frame_stride: int
    clips: int | None
    crops: int
    crop: int
    resize: int | tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def span(self) -> int:
        """Decoded frames one clip covers, first to last."""
        return (self.frames - 1) * self.frame_stride + 1

    @property
    def views(self) -> int:
        return (1 if self.clips is None else self.clips) * self.crops


# ---------------------------------------------------------------- where the views are (pure numbers)


def clip_starts(n_frames: int, span: int, clips: int) -> list[int]:
    """First decoded frame of each clip: ``clips`` starts spread evenly over ``[0, n_frames - span]``.

    One clip is the centre one. Raises :class:`VideoError` (``too short``) when ``n_frames < span``.
    """
    last = n_frames - span
    if last < 0:
        raise VideoError("too short", f"{n_frames} frames; a clip needs {span}")
    if clips == 1:
        return [last // 2]
    return [math.floor(i * last / (clips - 1)) for i in range(clips)]


def plan_frames(n_frames: int, spec: ViewSpec) -> list[list[int]]:
    """The decoded-frame indices of each clip (one list per clip, ``spec.frames`` long; whole video: all).

    Raises:
        VideoError: ``too short``: fewer frames than one clip needs.
    """
    if spec.clips is None:
        taken = list(range(0, n_frames, spec.frame_stride))
        if len(taken) < spec.frames:
            raise VideoError(
                "too short",
                f"{n_frames} frames give {len(taken)} at stride {spec.frame_stride}; a view needs {spec.frames}",
            )
        if len(taken) > WHOLE_MAX_FRAMES:
            first = (len(taken) - WHOLE_MAX_FRAMES) // 2
            taken = taken[first : first + WHOLE_MAX_FRAMES]
        return [taken]
    return [
        [s + k * spec.frame_stride for k in range(spec.frames)] for s in clip_starts(n_frames, spec.span, spec.clips)
    ]


def crop_offsets(height: int, width: int, crop: int, crops: int) -> list[tuple[int, int]]:
    """``(top, left)`` of each square crop: spread evenly along the long side, centred on the short side.

    One crop is the centre (``round((L - crop) / 2)``, as torchvision's ``center_crop``); three are
    left/centre/right, or top/centre/bottom when the frame is taller than wide.
    """
    if crop > height or crop > width:
        raise ValueError(f"a {crop}-pixel crop does not fit a {height}x{width} frame")

    def spread(length: int) -> list[int]:
        room = length - crop
        if crops == 1:
            return [round(room / 2.0)]
        return [round(i * room / (crops - 1)) for i in range(crops)]

    if height > width:
        left = round((width - crop) / 2.0)
        return [(top, left) for top in spread(height)]
    top = round((height - crop) / 2.0)
    return [(top, left) for left in spread(width)]


def resized_size(height: int, width: int, resize: int | tuple[int, int]) -> tuple[int, int]:
    """The frame size after resizing, as torchvision computes it (the long side truncated)."""
    if isinstance(resize, tuple):
        return resize
    if height <= width:
        return resize, int(resize * width / height)
    return int(resize * height / width), resize


# ---------------------------------------------------------------- decoding and transforms


@dataclass
class DecodedVideo:
    """What a worker sends back for one video.

    Attributes:
        frames: uint8 ``(N, 3, H, W)``, the distinct frames the views use, resized.
        clips: per clip, the positions of its frames in ``frames``.
        n_frames: the video's frame count (from its packets).
        decode_s: demuxing, decoding and colour conversion; ``resize_s``: resizing.
    """

    frames: torch.Tensor
    clips: list[list[int]]
    n_frames: int
    decode_s: float
    resize_s: float


def _first_line(e: BaseException) -> str:
    return first_line(e)[:200]


def _count_packets(path: Path) -> int:
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


RESIZE_CHUNK = 8
"""Frames decoded at the source's resolution before they are resized together: memory is bounded by the resized
frames plus this many source frames (two copies of them: the arrays and the stacked batch), whatever the length."""


def _decode(
    path: Path, wanted: set[int], threads: int, resize: int | tuple[int, int]
) -> tuple[torch.Tensor | None, list[int], int, float]:
    """The frames at ``wanted`` indices, resized as they are decoded (:data:`RESIZE_CHUNK` at a time) into one
    uint8 ``(N, 3, h, w)`` tensor; the indices it holds, in order; how many frames were decoded (it stops after
    the last wanted one); the seconds spent resizing."""
    import av
    import torch

    out: torch.Tensor | None = None
    got: list[int] = []
    chunk: list[Any] = []
    resize_s = 0.0
    last = max(wanted)
    n = 0

    def flush() -> None:
        nonlocal out, resize_s
        t0 = time.perf_counter()
        small = resize_frames(chunk, resize)
        if out is None:
            out = torch.empty((len(wanted), *small.shape[1:]), dtype=torch.uint8)
        if small.shape[1:] != out.shape[1:]:
            raise VideoError("corrupt", f"the frame size changes within the video ({tuple(small.shape[2:])})")
        out[len(got) - len(chunk) : len(got)] = small
        chunk.clear()
        resize_s += time.perf_counter() - t0

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        if threads != 1:
            stream.thread_type = "AUTO"
        stream.codec_context.thread_count = max(threads, 0)
        for frame in container.decode(stream):
            if n in wanted:
                chunk.append(frame.to_ndarray(format="rgb24"))
                got.append(n)
                if len(chunk) == RESIZE_CHUNK:
                    flush()
            n += 1
            if n > last:
                break
    if chunk:
        flush()
    if out is not None and len(got) < len(wanted):
        out = out[: len(got)].clone()
    return out, got, n, resize_s


def resize_frames(frames: Sequence[Any], resize: int | tuple[int, int]) -> torch.Tensor:
    """RGB frames (H, W, 3 uint8 arrays) -> uint8 ``(N, 3, h, w)``, antialiased bilinear.

    Resized as 8-bit images, the way torchvision's ``Resize`` treats uint8 frames (torch's uint8 kernel, a
    channels-last view: some twenty times faster than resizing floats, and within 1 of rounding them).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    height, width = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise VideoError("corrupt", "the frame size changes within the video")
    size = resized_size(height, width, resize)
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # NHWC memory: channels-last, as the kernel likes
    if x.shape[-2:] != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def read_video(path: str | Path, spec: ViewSpec, threads: int = 1) -> DecodedVideo:
    """Decode the frames ``spec``'s views need, resizing them as they come; any failure is a :class:`VideoError`.

    Memory is bounded by the resized frames (plus :data:`RESIZE_CHUNK` frames at the source's resolution), so
    a whole-video view of a long 1080p video costs what its 256-pixel frames cost.

    ``threads``: FFmpeg decoding threads (1 in DataLoader workers, which already run in parallel; 0 = FFmpeg's
    choice).
    """
    path = Path(path)
    start = time.perf_counter()
    try:
        n_packets = _count_packets(path)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError("unreadable", _first_line(e)) from None
    if n_packets == 0:
        raise VideoError("too short", "no frames")
    clips = plan_frames(n_packets, spec)
    try:
        frames, got, n_decoded, resize_s = _decode(path, {i for c in clips for i in c}, threads, spec.resize)
        if n_decoded < n_packets and max(i for c in clips for i in c) >= n_decoded:
            # Fewer frames than packets (packets that hold no picture): plan again on what decodes.
            n_packets = n_decoded
            clips = plan_frames(n_decoded, spec)
            del frames
            frames, got, n_decoded, resize_s = _decode(path, {i for c in clips for i in c}, threads, spec.resize)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError("corrupt", _first_line(e)) from None
    position = {index: p for p, index in enumerate(got)}
    if frames is None or any(i not in position for c in clips for i in c):
        wanted = len({i for c in clips for i in c})
        raise VideoError("corrupt", f"only {len(got)} of the {wanted} frames the views need decode")
    total = time.perf_counter() - start
    return DecodedVideo(
        frames=frames,
        clips=[[position[i] for i in c] for c in clips],
        n_frames=n_packets,
        decode_s=total - resize_s,
        resize_s=resize_s,
    )


def make_views(video: DecodedVideo, spec: ViewSpec, which: Sequence[int], device: Any = "cpu") -> torch.Tensor:
    """Views ``which`` (index = clip * crops + crop) as a normalised float ``(V, 3, T, crop, crop)`` on ``device``.

    Crops are cut on the 8-bit frames and moved before conversion, so a GPU receives a quarter of the bytes.
    """
    import torch

    _, _, height, width = video.frames.shape
    offsets = crop_offsets(height, width, spec.crop, spec.crops)
    c = spec.crop
    views = []
    for v in which:
        clip, (top, left) = video.clips[v // spec.crops], offsets[v % spec.crops]
        views.append(video.frames[clip, :, top : top + c, left : left + c].permute(1, 0, 2, 3))
    batch = torch.stack(views).to(device, non_blocking=True).float()
    # (x / 255 - mean) / std, with the 255 folded into the constants: one pass fewer over the largest tensor.
    mean = torch.tensor(spec.mean, device=batch.device).view(1, 3, 1, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(spec.std, device=batch.device).view(1, 3, 1, 1, 1) * 255.0)
    return batch.sub_(mean).mul_(scale)
