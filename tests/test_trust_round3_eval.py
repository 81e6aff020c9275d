"""Trust, round 3 (issue 19), the evaluate side: every command through the real ``vbench`` program.

Each test drives the installed ``vbench`` command in a subprocess (through a shell where a pipe or a
redirection is the point) and fails on the code before the fix it covers. Videos are made here with PyAV
(a few frames of 32x40 pixels); the model is a real registered architecture (``r2d_18``, 2 classes) saved
with ``archs.weights.save_weights``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
VBENCH = str(Path(sys.executable).parent / "vbench")


# ---------------------------------------------------------------- helpers


def write_video(path: Path, level: int, n: int = 16, height: int = 32, width: int = 40) -> Path:
    """``n`` grey frames of ``level`` as an mpeg4 video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = height, width
        stream.pix_fmt = "yuv420p"
        for _ in range(n):
            frame = np.full((height, width, 3), level, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def vbench(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VBENCH, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})}
    )


def shell(command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def lines(out: Path) -> list[dict[str, Any]]:
    path = out / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def save_checkpoint(path: Path, num_classes: int = 2, frames: int = 16, **arch_kwargs: Any) -> Path:
    """A vbench-layout checkpoint of ``r2d_18`` whose preprocessing is 32-pixel crops of ``frames`` frames."""
    import archs
    from archs.weights import Preprocess, save_weights

    model = archs.create_model("r2d_18", num_classes=num_classes, **arch_kwargs)
    pre = Preprocess(mean=(0.45,) * 3, std=(0.225,) * 3, resize=32, crop=32, frames=frames, frame_stride=1)
    return save_weights(model, "r2d_18", path, preprocess=pre)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, two videos each."""
    root = tmp_path_factory.mktemp("videos") / "data"
    for c, level in enumerate((60, 180)):
        for v in range(2):
            write_video(root / f"c{c}" / f"v{v}.mp4", level)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "r2d.pt")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished (static) profile run."""
    out = tmp_path_factory.mktemp("runs") / "run"
    done = vbench("profile", "--arch", "r2d_18", "--static", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def evaluate_args(data: Path, weights: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--arch", "r2d_18", "--weights", str(weights), "--data", str(data), "--protocol", "single",
            "--device", "cpu", "--workers", "0", "--out", str(out), *extra]  # fmt: skip


# ---------------------------------------------------------------- 1. a closed stdout never ends a command


def _piped(args: list[str]) -> tuple[int, str]:
    """``vbench ARGS | head -c 1`` through bash: the exit code of vbench (``PIPESTATUS[0]``) and its stderr.

    A byte printed first feeds ``head``, so ``head`` has read its byte and gone before vbench prints
    anything: every line vbench prints then meets a closed pipe, on every run (no race with ``head``).
    """
    quoted = shlex.join([VBENCH, *args])
    done = shell(f"{{ printf x; {quoted}; }} | head -c 1 >/dev/null; exit ${{PIPESTATUS[0]}}")
    return done.returncode, done.stderr


def _clean(err: str) -> bool:
    return "Traceback" not in err and "error" not in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [["list"], ["inspect", "mc*"]],
    ids=["list", "inspect-pattern"],
)
def test_a_closed_stdout_never_changes_the_exit_code_of_list_and_inspect(args):
    code, err = _piped(args)
    assert code == 0 and _clean(err), err


@pytest.mark.slow
def test_a_closed_stdout_does_not_end_inspect_time(tmp_path):
    trace = tmp_path / "trace.json"
    code, err = _piped(["inspect", "mc3_18", "--time", "--frames", "4", "--size", "32", "--iterations", "1",
                        "--trace", str(trace)])  # fmt: skip
    assert code == 0 and _clean(err), err
    assert trace.stat().st_size > 0  # the work after the printing started was done


@pytest.mark.slow
def test_a_closed_stdout_does_not_end_profile_report_compare_merge_or_roofline(tmp_path, run):
    code, err = _piped(["profile", "--arch", "r2d_18", "--static", "--out", str(tmp_path / "p")])
    assert code == 0 and _clean(err), err
    assert json.loads((tmp_path / "p" / "results.json").read_text())["rows"][0]["status"] == "ok"
    code, err = _piped(["report", str(run), "--no-plots", "--out", str(tmp_path / "r")])
    assert code == 0 and "Traceback" not in err, err
    assert (tmp_path / "r" / "report.md").is_file()
    code, err = _piped(["compare", str(run), str(run)])
    assert code == 0 and _clean(err), err
    code, err = _piped(["merge", str(run), "--out", str(tmp_path / "m")])
    assert code == 0 and _clean(err), err
    assert (tmp_path / "m" / "results.json").is_file()
    code, err = _piped(["roofline", "--device", "cpu"])
    assert code == 0 and _clean(err), err


@pytest.mark.slow
def test_a_closed_stdout_does_not_end_evaluate(tmp_path, data, checkpoint):
    out = tmp_path / "e"
    code, err = _piped(evaluate_args(data, checkpoint, out))
    assert code == 0 and _clean(err), err
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "complete" and doc["counts"]["evaluated"] == 4 and len(lines(out)) == 4


@pytest.mark.slow
def test_a_full_disk_behind_stdout_is_one_line_and_exit_2_after_the_work(tmp_path, data, checkpoint):
    out = tmp_path / "e"
    done = shell(f"{shlex.join([VBENCH, *evaluate_args(data, checkpoint, out)])} > /dev/full")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot write standard output (No space left on device)" in done.stderr
    assert json.loads((out / "evaluation.json").read_text())["state"] == "complete"  # the work was done
    done = shell(f"{shlex.join([VBENCH, 'list'])} > /dev/full")
    assert done.returncode == 2 and done.stderr.startswith("vbench: error: cannot write standard output")
