"""``vbench evaluate``: views where the protocols put them, exact accuracy of a toy model, skips, resume, signals.

Videos are made here with PyAV (a few frames of 32x40 pixels). The toy model's
prediction is a known function of the clip: each class has a grey level, and
the logits fall with the distance between the clip's mean pixel value and each
level, so the expected top-1, top-5 and confusion matrix are worked out by hand.
Waits are on conditions (a prediction line written) with generous deadlines,
never fixed sleeps.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner
from waiting import until

from archs import Preprocess
from bench.errors import UsageError
from bench.evaluate.datasets import kinetics400_classes, load_dataset
from bench.evaluate.loop import EvalOptions, evaluate
from bench.evaluate.metrics import compute_metrics
from bench.evaluate.protocols import protocols, resolve_protocol
from bench.evaluate.store import check_eval_out
from bench.evaluate.video import ViewSpec, clip_starts, crop_offsets, make_views, plan_frames, read_video, resized_size

PROTOCOLS = protocols()

# Decoding workers are forked processes: under pytest-xdist a fork from a worker that runs execnet's threads hung
# once on a lock the fork copied (futex wait, CI rehearsal); the slow tier runs these one at a time, as before.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LEVELS = [30 + 35 * c for c in range(6)]
"""The grey level of each toy class."""
CLASSES = [f"c{c}" for c in range(6)]
SPEC = ViewSpec(frames=4, frame_stride=2, clips=2, crops=3, crop=32, resize=32, mean=(0.5,) * 3, std=(0.5,) * 3)

# ---------------------------------------------------------------- helpers


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4", pix_fmt: str = "yuv420p") -> Path:
    """``frames`` (N, H, W, 3) uint8 RGB as a video file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def grey(level: int, n: int = 12) -> np.ndarray:
    return np.full((n, 32, 40, 3), level, np.uint8)


class Toy(torch.nn.Module):
    """Logits ``-|m - level_k| / 35`` of the clip's mean pixel value ``m`` (inputs normalised with 0.5/0.5)."""

    def __init__(self, n: int = 6) -> None:
        super().__init__()
        self.levels = torch.tensor([30.0 + 35 * c for c in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = ((x * 0.5 + 0.5) * 255).mean(dim=(1, 2, 3, 4))
        return -(m[:, None] - self.levels[None]).abs() / 35


def toy_dataset(root: Path) -> Path:
    """Six class folders; ``c0/wrong`` looks like c5 (a top-5 miss), ``c1/wrong`` like c4 (a top-5 hit); a corrupt
    and a too-short video in c5; one class in .avi, .mkv and .webm."""
    for c in range(6):
        write_video(root / f"c{c}" / "a.mp4", grey(LEVELS[c]))
    write_video(root / "c0" / "b.avi", grey(LEVELS[0]))
    write_video(root / "c2" / "b.webm", grey(LEVELS[2]), codec="libvpx")
    write_video(root / "c3" / "b.mkv", grey(LEVELS[3]), codec="ffv1", pix_fmt="bgr0")
    write_video(root / "c0" / "wrong.mp4", grey(LEVELS[5]))
    write_video(root / "c1" / "wrong.mp4", grey(LEVELS[4]))
    write_video(root / "c5" / "short.mp4", grey(LEVELS[5], n=5))
    (root / "c5" / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    return root


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("videos") / "data")


def _lines(out: Path) -> list[dict[str, Any]]:
    path = out / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------- where the views are


def test_clip_starts_spread_like_torchvision_and_one_clip_is_the_centre():
    assert clip_starts(50, 4, 5) == [0, 11, 23, 34, 46]  # floor(linspace(0, 46, 5)), as UniformClipSampler
    assert clip_starts(50, 4, 1) == [23]
    assert clip_starts(7, 7, 3) == [0, 0, 0]
    with pytest.raises(Exception, match="6 frames; a clip needs 7"):
        clip_starts(6, 7, 1)


def test_crop_offsets_centre_and_three_along_the_long_side():
    assert crop_offsets(32, 48, 16, 1) == [(8, 16)]
    assert crop_offsets(32, 48, 16, 3) == [(8, 0), (8, 16), (8, 32)]  # left, centre, right
    assert crop_offsets(48, 32, 16, 3) == [(0, 8), (16, 8), (32, 8)]  # portrait: top, centre, bottom
    assert crop_offsets(17, 17, 16, 1) == [(0, 0)]  # round(0.5) = 0, as torchvision's center_crop
    assert resized_size(240, 320, 128) == (128, 170)  # the long side truncated, as torchvision
    assert resized_size(320, 240, 128) == (170, 128)
    assert resized_size(240, 320, (128, 171)) == (128, 171)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_protocol_gives_its_views(name):
    protocol = PROTOCOLS[name]
    assert protocol.source
    frames = protocol.frames or 4
    spec = ViewSpec(frames, 2, protocol.clips, protocol.crops, 16, 16, (0.5,) * 3, (0.5,) * 3)
    n = 300
    clips = plan_frames(n, spec)
    crops = crop_offsets(16, 24, 16, protocol.crops)
    if protocol.clips is None:  # the whole video, at the stride, as one view
        assert clips == [list(range(0, n, 2))]
    else:
        assert len(clips) == protocol.clips and all(len(c) == frames for c in clips)
        last = n - spec.span
        assert [c[0] for c in clips] == (
            [last // 2] if protocol.clips == 1 else np.floor(np.linspace(0, last, protocol.clips)).astype(int).tolist()
        )
        assert all(np.diff(c).tolist() == [2] * (frames - 1) for c in clips)
    assert len(crops) == protocol.crops
    assert crops == ([(0, 4)] if protocol.crops == 1 else [(0, 0), (0, 4), (0, 8)])


def test_preset_counts_follow_their_sources():
    views = {name: (p.clips, p.crops, p.frames) for name, p in PROTOCOLS.items()}
    assert views["torchvision"] == (5, 1, None)
    assert views["torchvision_s3d"] == (1, 1, 128)
    assert views["r2plus1d"] == (10, 1, None)
    assert views["i3d"] == (None, 1, None) and views["s3d"] == (None, 1, None)
    assert views["slowfast"] == (10, 3, None)
    assert resolve_protocol("r2plus1d", crops=3).crops == 3
    for bad in ({"clips": 0}, {"crops": -1}):
        with pytest.raises(UsageError, match="must be from 1 to"):
            resolve_protocol("torchvision", **bad)
    with pytest.raises(UsageError, match="unknown protocol 'nope'"):
        resolve_protocol("nope")


def test_decoded_views_hold_the_frames_and_pixels_the_plan_names(tmp_path):
    # Lossless video: red = 10 x frame index, green = 5 x column, blue = 7 x row.
    n, h, w = 20, 32, 48
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 0] = (np.arange(n) * 10)[:, None, None]
    frames[..., 1] = (np.arange(w) * 5)[None, None, :]
    frames[..., 2] = (np.arange(h) * 7)[None, :, None]
    path = write_video(tmp_path / "ramp.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    spec = ViewSpec(3, 2, 2, 3, 16, (32, 48), (0.0,) * 3, (1.0,) * 3)
    video = read_video(path, spec)
    assert video.n_frames == n and video.frames.shape == (6, 3, 32, 48)
    views = make_views(video, spec, range(6)) * 255  # (V, 3, T, 16, 16), back in pixel values
    for v, ((first, *_), left) in enumerate((c, x) for c in ([0, 2, 4], [15, 17, 19]) for x in (0, 16, 32)):
        clip = [first + 2 * k for k in range(3)]
        assert views[v, 0, :, 0, 0].round().tolist() == [10.0 * f for f in clip]
        assert views[v, 1, 0, 0, :].round().tolist() == [5.0 * (left + x) for x in range(16)]
        assert views[v, 2, 0, :, 0].round().tolist() == [7.0 * (8 + y) for y in range(16)]
    whole = read_video(path, ViewSpec(3, 3, None, 1, 16, 16, (0.0,) * 3, (1.0,) * 3))
    assert whole.clips == [list(range(7))] and whole.frames.shape == (7, 3, 16, 24)  # frames 0, 3, ..., 18


def test_unreadable_corrupt_and_too_short_videos_give_their_reason(tmp_path, videos):
    def reason(path: Path) -> str:
        try:
            read_video(path, SPEC)
        except Exception as e:
            return getattr(e, "reason", type(e).__name__)
        return "ok"

    audio = tmp_path / "audio.mkv"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes((videos / "c1" / "a.mp4").read_bytes()[:600])
    assert reason(videos / "c5" / "corrupt.mp4") == "unreadable"
    assert reason(videos / "c5" / "short.mp4") == "too short"
    assert reason(audio) == "no video stream"
    assert reason(truncated) in ("unreadable", "corrupt", "too short")
    assert reason(videos / "c1" / "a.mp4") == "ok"


# ---------------------------------------------------------------- accuracy, exactly


EXPECTED_CONFUSION = {(0, 0): 2, (0, 5): 1, (1, 1): 1, (1, 4): 1, (2, 2): 2, (3, 3): 2, (4, 4): 1, (5, 5): 1}


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_dataset_accuracy_confusion_and_skips_are_exact(tmp_path, videos, workers):
    out = tmp_path / "eval"
    result = evaluate(Toy(), SPEC, load_dataset(videos), CLASSES, out, options=EvalOptions(batch=4, workers=workers))
    m = result.metrics
    # 11 videos read: 9 right; c0/wrong (looks like c5) misses top-5 too: the farthest of 6 levels is c0's.
    assert m.videos == 11 and m.top1 == pytest.approx(100 * 9 / 11) and m.top5 == pytest.approx(100 * 10 / 11)
    assert m.skipped_by_reason == {"unreadable": 1, "too short": 1}
    assert {(t, p): n for t, row in enumerate(m.confusion) for p, n in enumerate(row) if n} == EXPECTED_CONFUSION
    assert [pc["top1"] for pc in m.per_class] == pytest.approx([200 / 3, 50, 100, 100, 100, 100])
    lines = _lines(out)
    assert [r["video"] for r in lines] == [
        "c0/a.mp4", "c0/b.avi", "c0/wrong.mp4", "c1/a.mp4", "c1/wrong.mp4", "c2/a.mp4", "c2/b.webm",
        "c3/a.mp4", "c3/b.mkv", "c4/a.mp4", "c5/a.mp4", "c5/corrupt.mp4", "c5/short.mp4",
    ]  # fmt: skip
    wrong = next(r for r in lines if r["video"] == "c1/wrong.mp4")
    assert wrong["pred"] == 4 and wrong["top5"] == [4, 3, 5, 2, 1] and wrong["views"] == 6
    short = next(r for r in lines if r["video"] == "c5/short.mp4")
    assert short["status"] == "skipped" and short["reason"] == "too short" and "a clip needs 7" in short["detail"]
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "complete"
    assert doc["counts"] == {"listed": 13, "done": 13, "evaluated": 11, "skipped": 2, "remaining": 0,
                             "skipped_by_reason": {"unreadable": 1, "too short": 1}}  # fmt: skip
    assert doc["accuracy"]["top1"] == pytest.approx(100 * 9 / 11)
    assert doc["input"]["frames"] == 4 and doc["input"]["size"] == 32 and doc["protocol"]["views_per_video"] == 6
    assert {"torch_version", "host", "device", "av_version"} <= doc["environment"].keys()
    timing = doc["timing"]
    assert timing["clips"] == 66 and timing["workers"] == workers and timing["bottleneck"] in ("loader", "model")
    assert all(
        timing[k] > 0 for k in ("decode_s", "preprocess_s", "model_s", "decode_clips_per_s", "model_clips_per_s")
    )
    confusion = (out / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "true \\ predicted,c0,c1,c2,c3,c4,c5" and confusion[1] == "c0,2,0,0,0,0,1"
    assert (out / "per_class.csv").read_text().splitlines()[1] == "0,c0,3,66.6667,66.6667"


def test_whole_video_protocol_runs_each_video_once(tmp_path, videos):
    spec = ViewSpec(4, 1, None, 1, 32, 32, (0.5,) * 3, (0.5,) * 3)
    result = evaluate(Toy(), spec, load_dataset(videos).limit(4), CLASSES, tmp_path / "o", options=EvalOptions(batch=8))
    assert result.metrics.videos == 4 and result.timing.clips == 4
    assert [r["frames_used"] for r in _lines(tmp_path / "o")] == [12, 12, 12, 12]


def test_kinetics_csv_finds_videos_by_id_and_times_and_counts_the_missing(tmp_path):
    names = ["level zero", "level one", "level two", "level three", "level four", "level five"]
    root = tmp_path / "k400"
    write_video(root / "val" / "aaa_000010_000020.mp4", grey(LEVELS[0]))
    write_video(root / "val" / "level_one" / "bbb_000001_000011.mp4", grey(LEVELS[1]))
    write_video(root / "val" / "level two" / "ccc_000000_000010.mkv", grey(LEVELS[2]), codec="ffv1", pix_fmt="bgr0")
    (root / "val.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "level zero,aaa,10,20,val\nlevel one,bbb,1,11,val\nlevel two,ccc,0,10,val\nlevel five,gone,5,15,val\n"
    )
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    dataset = load_dataset(root / "val.csv")
    assert dataset.layout == "kinetics-csv" and dataset.root == root / "val"
    result = evaluate(Toy(), SPEC, dataset, names, tmp_path / "o")
    assert result.metrics.videos == 3 and result.metrics.top1 == 100.0
    assert result.metrics.skipped_by_reason == {"missing": 1}
    first = _lines(tmp_path / "o")[0]
    assert (first["video"], first["status"], first["reason"]) == ("gone_000005_000015", "skipped", "missing")


def test_plain_csv_dataset_with_and_without_header(tmp_path, videos):
    (tmp_path / "list.csv").write_text(f"path,label\n{videos}/c4/a.mp4,c4\nc1/wrong.mp4,c1\nnot/there.mp4,c2\n")
    dataset = load_dataset(tmp_path / "list.csv", video_root=videos)
    assert [it.key for it in dataset.items] == [f"{videos}/c4/a.mp4", "c1/wrong.mp4"]
    result = evaluate(Toy(), SPEC, dataset, CLASSES, tmp_path / "o")
    assert (result.metrics.videos, result.metrics.top1, result.metrics.skipped_by_reason) == (2, 50.0, {"missing": 1})
    (tmp_path / "bare.csv").write_text(f"{videos}/c4/a.mp4,c4\n")
    assert len(load_dataset(tmp_path / "bare.csv").items) == 1


def test_a_400_class_model_maps_folder_labels_through_the_kinetics_list(tmp_path, videos):
    k400 = kinetics400_classes()
    assert len(k400) == 400 and k400 == sorted(k400) and k400[:2] == ["abseiling", "air drumming"]
    assert "passing American football (in game)" in k400 and k400[-1] == "zumba"
    for folder in ("abseiling", "air_drumming", "passing_American_football_(in_game)"):
        (tmp_path / "d" / folder).mkdir(parents=True)
        (tmp_path / "d" / folder / "v.mp4").write_bytes((videos / "c0" / "a.mp4").read_bytes())
    from bench.evaluate.datasets import resolve_classes

    dataset = load_dataset(tmp_path / "d")
    names, source = resolve_classes(None, dataset, 400)
    assert source == "kinetics400"
    result = evaluate(Toy(400), SPEC, dataset, names, tmp_path / "o")
    assert sorted(r["target"] for r in _lines(tmp_path / "o")) == [
        0,
        1,
        k400.index("passing American football (in game)"),
    ]
    assert result.metrics.videos == 3


# ---------------------------------------------------------------- nothing lost


def test_an_interrupted_evaluation_resumes_with_only_missing(tmp_path, videos):
    out, dataset = tmp_path / "o", load_dataset(videos)

    def stop_after_four(record: dict[str, Any]) -> None:
        if len(_lines(out)) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(Toy(), SPEC, dataset, CLASSES, out, options=EvalOptions(batch=5), on_video=stop_after_four)
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "interrupted" and doc["counts"]["done"] == 4 and doc["counts"]["remaining"] == 9
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"video": "c2/a.mp4", "sta')  # a line cut short by a kill
    with pytest.raises(UsageError, match="already holds an evaluation"):
        evaluate(Toy(), SPEC, dataset, CLASSES, out)
    seen: list[str] = []
    done = evaluate(Toy(), SPEC, dataset, CLASSES, out, resume=True, on_video=lambda r: seen.append(r["video"]))
    assert done.kept == 4 and len(seen) == 9 and seen[0] == "c1/wrong.mp4"
    assert sorted(r["video"] for r in _lines(out)) == sorted({r["video"] for r in _lines(out)})  # each once
    assert done.metrics.videos == 11 and done.metrics.top1 == pytest.approx(100 * 9 / 11)
    assert json.loads((out / "evaluation.json").read_text())["state"] == "complete"
    other = ViewSpec(4, 2, 3, 3, 32, 32, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(UsageError, match=r"other settings \(views\)"):
        evaluate(Toy(), other, dataset, CLASSES, out, resume=True)


def test_out_folders_that_are_not_evaluations_are_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(UsageError, match=r"holds files vbench evaluate did not write \(thesis.tex\)"):
        check_eval_out(tmp_path / "mine", overwrite=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{}")
    with pytest.raises(UsageError, match="did not write"):
        check_eval_out(tmp_path / "run", resume=True)
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        check_eval_out(tmp_path / "f")
    assert check_eval_out(tmp_path / "new") == tmp_path / "new" and not (tmp_path / "new").exists()


def test_metrics_of_hand_made_lines():
    ok = {"status": "ok"}
    lines = [{**ok, "target": 0, "pred": 0, "top5": [0, 1]}, {**ok, "target": 1, "pred": 0, "top5": [0, 1]},
             {"status": "skipped", "reason": "corrupt"}]  # fmt: skip
    m = compute_metrics(lines, 2)
    assert (m.videos, m.top1, m.top5, m.k, m.mean_class_top1) == (2, 50.0, 100.0, 2, 50.0)
    assert m.confusion == [[1, 0], [1, 0]] and m.skipped_by_reason == {"corrupt": 1}
    assert compute_metrics([], 3).top1 is None


# ---------------------------------------------------------------- the command line


RUNNER = textwrap.dedent(
    """
    import os, sys, time
    from types import SimpleNamespace
    import torch
    import bench.commands.evaluate as ec
    from bench.cli import _user_errors, app, main

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.levels = torch.tensor([30.0 + 35 * c for c in range(6)])
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1 and os.environ.get("TOY_HANG"):
                while True:
                    time.sleep(0.05)
            m = ((x * 0.5 + 0.5) * 255).mean(dim=(1, 2, 3, 4))
            return -(m[:, None] - self.levels[None]).abs() / 35

    def build(arch, weights, arch_kwargs=None):
        if os.environ.get("TOY_REAL"):
            return real(arch, weights, arch_kwargs)
        pre = SimpleNamespace(mean=(0.5,) * 3, std=(0.5,) * 3, resize=32, crop=32, frames=4, frame_stride=2)
        model = Toy()
        model.pretrained_cfg = SimpleNamespace(layout="toy", source="toy weights", num_classes=6, preprocess=pre)
        return model

    if __name__ == "__main__":  # the decoding workers start fresh (spawn) and import this script again
        real, ec._build_model = ec._build_model, build
        if not any(c.name == "evaluate" for c in app.registered_commands):
            app.command("evaluate")(_user_errors(ec.evaluate_cmd))
        sys.argv[0] = "vbench"
        main()
    """
)


@pytest.fixture(scope="module")
def runner_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runner") / "run_vbench.py"
    path.write_text(RUNNER)
    return path


def _cli(script: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ, **env},
    )


def test_sigint_keeps_the_predictions_and_the_printed_command_finishes(tmp_path, videos, runner_script):
    weights, out = tmp_path / "w.pt", tmp_path / "eval"
    weights.write_bytes(b"toy")
    args = ["evaluate", "--arch", "mc3_18", "--weights", str(weights), "--data", str(videos), "--clips", "2",
            "--crops", "3", "--batch", "6", "--workers", "1", "--device", "cpu", "--out", str(out)]  # fmt: skip
    run = _cli(runner_script, *args, TOY_HANG="1")
    try:
        until("the first prediction line", lambda: len(_lines(out)) >= 1)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, err
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "interrupted" and doc["counts"]["done"] == 1 and len(_lines(out)) == 1
    assert "kept 1 predictions" in err and "Traceback" not in err
    argv = shlex.split(err.split("finish with: ", 1)[1].strip())
    assert argv[:2] == ["vbench", "evaluate"] and "--only-missing" in argv and argv[-2:] == ["--out", str(out)]
    done = _cli(runner_script, *argv[1:])
    stdout, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "complete" and doc["counts"]["evaluated"] == 11 and len(_lines(out)) == 13
    assert doc["accuracy"]["top1"] == pytest.approx(100 * 9 / 11) and doc["weights"]["source"] == "toy weights"
    assert "kept 1 predictions" in stdout and "top-1 (%)" in stdout


def _app() -> typer.Typer:
    from bench.cli import _user_errors
    from bench.commands.evaluate import evaluate_cmd

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        pass

    app.command("evaluate")(_user_errors(evaluate_cmd))
    return app


def _toy_build(arch: str, weights: Path, arch_kwargs: Any = None) -> Any:
    pre = Preprocess(mean=(0.5,) * 3, std=(0.5,) * 3, resize=32, crop=32, frames=4, frame_stride=2)
    model = Toy()
    model.pretrained_cfg = SimpleNamespace(layout="toy", source="toy", num_classes=6, preprocess=pre)  # type: ignore[assignment]
    return model


def test_the_command_evaluates_and_prints_the_summary(tmp_path, videos, monkeypatch):
    monkeypatch.setattr("bench.commands.evaluate._build_model", _toy_build)
    (tmp_path / "w.pt").write_bytes(b"x")
    result = CliRunner().invoke(_app(), ["evaluate", "--arch", "mc3_18", "--weights", str(tmp_path / "w.pt"),
                                         "--data", str(videos), "--protocol", "single", "--workers", "0",
                                         "--limit", "5", "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "top-1 (%)" in result.stdout and "c1/wrong.mp4 pred=c4 label=c1 views=1" in result.stdout
    doc = json.loads((tmp_path / "o" / "evaluation.json").read_text())
    assert doc["protocol"]["name"] == "single" and doc["counts"]["listed"] == 5 and doc["accuracy"]["top1"] == 60.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "{tmp}/nope"], "--data '{tmp}/nope' does not exist"),
        (["--data", "{tmp}/empty"], "holds no videos"),
        (["--arch", "r3d18"], "unknown architecture 'r3d18'"),
        (["--protocol", "best"], "unknown protocol 'best'"),
        (["--clips", "0"], "--clips must be >= 1"),
        (["--crops", "0"], "--crops must be >= 1"),
        (["--classes", "{tmp}/gappy.txt"], "line 2 is empty"),
        (["--classes", "{tmp}/five.txt"], "the model has 6 classes but --classes file"),
        (["--classes", "{tmp}/other.txt"], "labels are not in --classes file"),
        (["--weights", "{tmp}/missing.pt"], "--weights '{tmp}/missing.pt' does not exist"),
        (["--frames", "0"], "--frames must be >= 1"),
        (["--batch", "0"], "--batch must be >= 1; got 0"),
        (["--workers", "-1"], "--workers must be >= 0; got -1"),
        (["--dtype", "fp8"], "unknown dtype 'fp8'"),
        (["--out", "{tmp}/taken"], "holds files vbench evaluate did not write"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, videos, monkeypatch, extra, message):
    monkeypatch.setattr("bench.commands.evaluate._build_model", _toy_build)
    (tmp_path / "w.pt").write_bytes(b"x")
    (tmp_path / "empty" / "c0").mkdir(parents=True)
    (tmp_path / "gappy.txt").write_text("c0\n\nc1\n")
    (tmp_path / "five.txt").write_text("\n".join(CLASSES[:5]))
    (tmp_path / "other.txt").write_text("\n".join(f"x{c}" for c in range(6)))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    args = {
        "--arch": "mc3_18",
        "--weights": str(tmp_path / "w.pt"),
        "--data": str(videos),
        "--out": str(tmp_path / "o"),
    }
    options = [x.replace("{tmp}", str(tmp_path)) for x in extra]
    for name, value in zip(options[::2], options[1::2]):
        args[name] = value
    result = CliRunner().invoke(_app(), ["evaluate", *[x for kv in args.items() for x in kv]])
    assert result.exit_code == 2, result.output
    assert message.replace("{tmp}", str(tmp_path)) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path, videos, runner_script):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(1).bytes(2000))
    wrong = tmp_path / "wrong_layout.pt"
    torch.save({"not_a_layer.weight": torch.zeros(3)}, wrong)
    for weights in (garbage, wrong):
        run = _cli(runner_script, "evaluate", "--arch", "r3d_18", "--weights", str(weights), "--data", str(videos),
                   "--out", str(tmp_path / "o"), TOY_REAL="1")  # fmt: skip
        _, err = run.communicate(timeout=120)
        assert run.returncode == 2, err
        assert err.startswith("vbench: error: --weights") and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "o").exists()


def test_a_vbench_checkpoint_is_evaluated_with_the_preprocessing_it_records(tmp_path, videos, runner_script):
    import archs

    model = archs.create_model("mc3_18", num_classes=6)
    pre = Preprocess(mean=(0.45,) * 3, std=(0.225,) * 3, resize=32, crop=32, frames=4, frame_stride=2)
    archs.save_weights(model, "mc3_18", tmp_path / "mc3.pt", preprocess=pre)
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    run = _cli(runner_script, "evaluate", "--arch", "mc3_18", "--weights", str(tmp_path / "mc3.pt"), "--data",
               str(videos), "--classes", str(tmp_path / "classes.txt"), "--limit", "3", "--workers", "0",
               "--out", str(tmp_path / "o"), TOY_REAL="1")  # fmt: skip
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    doc = json.loads((tmp_path / "o" / "evaluation.json").read_text())
    assert doc["weights"]["layout"] == "vbench" and len(doc["weights"]["sha256"]) == 64
    assert doc["input"] == {"frames": 4, "size": 32, "frame_stride": 2, "resize": 32, "mean": [0.45] * 3,
                            "std": [0.225] * 3}  # fmt: skip
    assert doc["protocol"]["name"] == "r2plus1d" and doc["protocol"]["views_per_video"] == 10  # mc3_18: Tran et al.
    assert doc["counts"]["evaluated"] == 3 and doc["classes"]["count"] == 6


def test_importing_the_command_imports_neither_torch_nor_av():
    code = "import sys, bench.commands.evaluate; print(sorted(m for m in ('torch', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_size_scales_the_resize_and_the_default_protocol_follows_the_weights():
    from bench.commands.evaluate import _view_spec

    with pytest.raises(UsageError) as e:
        resolve_protocol("nope")
    assert str(e.value).endswith(", ".join(PROTOCOLS))  # a wrong name lists every family's presets
    pre = Preprocess(mean=(0.4,) * 3, std=(0.2,) * 3, resize=(128, 171), crop=112, frames=16, frame_stride=2)
    spec = _view_spec(pre, PROTOCOLS["torchvision"], None, 224)
    assert (spec.frames, spec.frame_stride, spec.crop, spec.resize, spec.clips, spec.crops) == (
        16,
        2,
        224,
        (256, 342),
        5,
        1,
    )
    assert _view_spec(pre, PROTOCOLS["torchvision_s3d"], None, None).frames == 128
    assert _view_spec(pre, PROTOCOLS["i3d"], 32, None).frames == 32


def test_the_default_protocol_is_the_one_the_weights_reference_evaluated_with():
    import archs

    def protocol_of(arch: str, layout: str) -> str:
        pretrained = archs.get_arch(arch).pretrained()
        if layout == "vbench":  # our own checkpoints: the architecture's reference
            return pretrained.protocol
        return next(lay.protocol for lay in pretrained.layouts if lay.name == layout)

    cases = [("r2plus1d_18_tv", "torchvision"), ("s3d", "torchvision"), ("i3d", "piergiaj-i3d"),
             ("i3d_bottom_heavy", "vbench"), ("s3d_g", "vbench"), ("mc2_18", "vmz")]  # fmt: skip
    assert [protocol_of(*c) for c in cases] == ["torchvision", "torchvision_s3d", "i3d", "i3d", "s3d", "r2plus1d"]


def test_a_registered_architecture_runs_on_the_views(tmp_path, videos):
    import archs

    model = archs.create_model("mc3_18", num_classes=6)
    spec = ViewSpec(4, 2, 1, 1, 32, 32, (0.45,) * 3, (0.225,) * 3)
    result = evaluate(model, spec, load_dataset(videos).limit(3), CLASSES, tmp_path / "o", options=EvalOptions(batch=2))
    lines = _lines(tmp_path / "o")
    assert result.metrics.videos == 3 and all(0 < sum(r["top5_prob"]) <= 1.0001 for r in lines)


# ---------------------------------------------------------------- what a hostile tester found


class _NaN(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], len(CLASSES)), float("nan"))


def test_a_model_that_outputs_nan_gets_no_accuracy_but_a_counted_skip(tmp_path, videos):
    result = evaluate(_NaN(), SPEC, load_dataset(videos), CLASSES, tmp_path / "e", options=EvalOptions(workers=0))
    assert result.metrics.videos == 0 and result.metrics.top1 is None
    assert result.metrics.skipped_by_reason["non-finite output"] == 11
    for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in a prediction line"))


def test_preprocessing_with_a_zero_or_infinite_std_is_refused():
    good = {"mean": [0.5] * 3, "std": [0.5] * 3, "resize": 128, "crop": 112, "frames": 16, "frame_stride": 1}
    assert Preprocess.from_dict(good).std == (0.5, 0.5, 0.5)
    for bad in ({"std": [0, 0, 0]}, {"std": [1, float("inf"), 1]}, {"mean": [float("nan")] * 3}):
        with pytest.raises(ValueError, match="must be finite"):
            Preprocess.from_dict({**good, **bad})


def test_clip_and_crop_counts_are_bounded():
    with pytest.raises(UsageError, match="--clips must be from 1 to 300"):
        resolve_protocol("single", 1_000_000, None)
    with pytest.raises(UsageError, match="--crops must be from 1 to 3"):
        resolve_protocol("single", None, 4)


def test_the_evaluations_own_options_are_checked_in_one_place():
    """The command line and a library caller of evaluate() meet the same check (check_eval_options)."""
    from bench.evaluate.loop import check_eval_options

    check_eval_options(batch=1, workers=None, resume=True, overwrite=False)
    check_eval_options(batch=1, workers=0, resume=False, overwrite=True)
    for options, message in (
        ({"batch": 0, "workers": 0, "resume": False, "overwrite": False}, "--batch must be >= 1; got 0"),
        ({"batch": 8, "workers": -2, "resume": False, "overwrite": False}, "--workers must be >= 0; got -2"),
        ({"batch": 8, "workers": None, "resume": True, "overwrite": True}, "--overwrite replaces it; pass one"),
    ):
        with pytest.raises(UsageError, match=re.escape(message)):
            check_eval_options(**options)


def test_the_groups_signal_reported_outside_the_loop_is_an_interruption_too(tmp_path, videos, monkeypatch):
    # torch's SIGCHLD handler can raise the DataLoader's RuntimeError wherever the main thread is.
    def dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("DataLoader worker (pid 12) is killed by signal: Terminated. ")

    monkeypatch.setattr("bench.commands.evaluate._build_model", _toy_build)
    monkeypatch.setattr("bench.evaluate.loop.evaluate", dies)
    (tmp_path / "w.pt").write_bytes(b"x")
    result = CliRunner().invoke(_app(), ["evaluate", "--arch", "mc3_18", "--weights", str(tmp_path / "w.pt"),
                                         "--data", str(videos), "--workers", "0", "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 143, result.output
    assert result.stderr.startswith("vbench: interrupted;")


def test_a_decoding_worker_stopped_by_the_groups_signal_is_an_interruption():
    from bench.evaluate.loop import DecoderDied

    def stop(text: str) -> int | None:
        return DecoderDied(text, 9, None).stop_signal

    assert stop("DataLoader worker (pid 12) is killed by signal: Terminated. ") == 15
    assert stop("DataLoader worker (pid(s) 3, 4) is killed by signal: Interrupt. ") == 2
    assert stop("DataLoader worker (pid 12) is killed by signal: Hangup. ") == 1
    assert stop("DataLoader worker (pid 12) is killed by signal: Killed. ") is None
    assert stop("DataLoader worker (pid(s) 12) exited unexpectedly") is None
