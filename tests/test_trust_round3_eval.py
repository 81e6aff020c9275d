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
import clirun
import numpy as np
import pytest
from clirun import ROOT

VBENCH = clirun.command(script=True)[0]


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
    """The installed ``vbench ARGS`` (:func:`clirun.vbench`), from the repository's root."""
    return clirun.vbench(*args, env=env, timeout=timeout, script=True)


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


def evaluate_args(data: Path, weights: Path, out: Path, *extra: str, protocol: str = "single") -> list[str]:
    return ["evaluate", "--arch", "r2d_18", "--weights", str(weights), "--data", str(data), "--protocol", protocol,
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


@pytest.mark.slow
def test_closed_standard_descriptors_change_neither_the_exit_code_nor_the_files(tmp_path):
    """Found by a hostile tester: a closed stderr with a full stdout was an internal error (exit 3). A closed
    descriptor is opened on /dev/null first, so no file vbench opens takes descriptor 2 (where C code's
    warnings would land)."""
    done = shell(f"{shlex.join([VBENCH, 'list'])} > /dev/full 2>&-")
    assert done.returncode == 2  # the full stdout, said nowhere: stderr is closed
    for closed in ("2>&-", ">&- 2>&-", "<&- >&-"):
        out = tmp_path / closed.replace("&", "").replace(">", "o").replace("<", "i").replace(" ", "")
        done = shell(f"{shlex.join([VBENCH, 'profile', '--arch', 'r2d_18', '--static', '--out', str(out)])} {closed}")
        assert done.returncode == 0, (closed, done.stderr)
        rows = json.loads((out / "results.json").read_text())["rows"]  # valid JSON: nothing else wrote into it
        assert [r["status"] for r in rows] == ["ok"]


# ---------------------------------------------------------------- 2. whole-video protocols: memory follows the resized frames


def _peak_rss_mib(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``vbench ARGS`` under a small Python parent; the child's peak RSS (its ``ru_maxrss``), in MiB."""
    code = (
        "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(done.returncode)"
    )
    done = subprocess.run([sys.executable, "-c", code, VBENCH, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)  # fmt: skip
    return int(done.stderr.strip().splitlines()[-1]) / 1024, done


@pytest.mark.slow
def test_a_whole_video_view_of_hd_video_costs_its_resized_frames_not_its_source_frames(tmp_path, checkpoint):
    """128 frames of 720p are 1.3 GiB as decoded RGB arrays and a stacked copy (the code before the fix held both);
    resized to the checkpoint's 32-pixel short side they are 1.6 MiB. The same video at 40x32 is the baseline."""
    for name, (h, w) in (("hd", (720, 1280)), ("small", (32, 40))):
        write_video(tmp_path / name / "c0" / "v.mp4", 60, n=128, height=h, width=w)
        write_video(tmp_path / name / "c1" / "v.mp4", 180, n=128, height=h, width=w)
    peaks = {}
    for name in ("hd", "small"):
        out = tmp_path / f"o-{name}"
        peaks[name], done = _peak_rss_mib(
            evaluate_args(tmp_path / name, checkpoint, out, "--limit", "1", protocol="i3d")
        )
        assert done.returncode == 0, done.stderr
        assert lines(out)[0]["frames_used"] == 128
    # Bounded by RESIZE_CHUNK source frames (8 x 2.6 MiB, twice) and the decoder's own buffers.
    assert peaks["hd"] - peaks["small"] < 150, peaks


# ---------------------------------------------------------------- 3. a decoding worker killed by SIGKILL (the OOM killer)


def _decoders(pid: int) -> list[int]:
    """The decoding workers among ``pid``'s children (multiprocessing's resource tracker is one too)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    found = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:  # gone meanwhile
            pass
    return found


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, six videos each: enough that a worker has videos left when the first prediction is written."""
    root = tmp_path_factory.mktemp("many") / "data"
    for c, level in enumerate((60, 180)):
        for v in range(6):
            write_video(root / f"c{c}" / f"v{v}.mp4", level)
    return root


@pytest.mark.slow
def test_a_decoding_worker_killed_by_sigkill_is_one_line_naming_the_video_and_the_resume_command(
    tmp_path, many, checkpoint
):
    import signal

    from waiting import until

    out = tmp_path / "e"
    args = evaluate_args(many, checkpoint, out)
    args[args.index("--workers") + 1] = "1"
    proc = subprocess.Popen([VBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        until("the decoding worker", lambda: _decoders(proc.pid))  # it holds the first videos from its start
        victim = _decoders(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)  # as the out-of-memory killer does
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 137, err  # 128 + SIGKILL, as for an interrupted run
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "internal error" not in err
    assert "a decoding worker was killed by SIGKILL (likely out of memory" in err
    assert "while decoding c" in err  # the video the worker held
    kept = len(lines(out))
    assert f"kept {kept} predictions in {out}" in err and kept < 12
    assert json.loads((out / "evaluation.json").read_text())["state"] == "interrupted"
    argv = shlex.split(err.split("finish with: ", 1)[1].strip())
    assert argv[:2] == ["vbench", "evaluate"] and argv[-3:] == ["--only-missing", "--out", str(out)]
    done = vbench(*argv[1:])
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["state"] == "complete" and doc["counts"]["evaluated"] == 12


# ---------------------------------------------------------------- 6. --only-missing retries what can change


@pytest.mark.slow
def test_only_missing_retries_missing_unreadable_and_corrupt_videos_and_says_how_many(tmp_path, checkpoint):
    root = tmp_path / "videos"
    write_video(root / "a.mp4", 60)
    write_video(root / "b.mp4", 180)
    write_video(root / "short.mp4", 60, n=5)  # too short: its cause cannot change, it stays skipped
    (root / "bad.mp4").write_bytes(b"not a video at all" * 100)  # unreadable, until it is downloaded again
    listing = root / "list.csv"
    listing.write_text("path,label\na.mp4,c0\nb.mp4,c1\nshort.mp4,c0\nlate.mp4,c1\nbad.mp4,c0\n")
    (tmp_path / "classes.txt").write_text("c0\nc1\n")
    out = tmp_path / "e"
    args = evaluate_args(listing, checkpoint, out, "--classes", str(tmp_path / "classes.txt"))
    first = vbench(*args)
    assert first.returncode == 0, first.stderr
    reasons = {r["video"]: r.get("reason") for r in lines(out)}
    assert reasons == {"a.mp4": None, "b.mp4": None, "short.mp4": "too short", "late.mp4": "missing",
                       "bad.mp4": "unreadable"}  # fmt: skip
    write_video(root / "late.mp4", 180)  # the missing one arrives, the unreadable one is fixed
    write_video(root / "bad.mp4", 60)
    again = vbench(*args, "--only-missing")
    assert again.returncode == 0, again.stderr
    assert "kept 2 predictions and 1 skipped videos of" in again.stdout  # skip lines are not predictions
    assert "retrying 2 skipped videos" in again.stdout and "evaluating 2 videos" in again.stdout
    assert "retried (skipped before)" in again.stdout
    after = lines(out)
    assert sorted(r["video"] for r in after) == ["a.mp4", "b.mp4", "bad.mp4", "late.mp4", "short.mp4"]  # each once
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["counts"]["evaluated"] == 4 and doc["counts"]["skipped_by_reason"] == {"too short": 1}
    assert doc["resumed"]["retried"] == 2


@pytest.mark.slow
def test_only_missing_removes_the_lines_of_videos_the_dataset_no_longer_lists(tmp_path, checkpoint):
    """Found by a hostile tester: a video deleted from the dataset stayed counted (done 6 of 5 listed)."""
    root = tmp_path / "videos"
    for name, level in (("a", 60), ("b", 180), ("gone", 60)):
        write_video(root / "c0" / f"{name}.mp4", level)
    out = tmp_path / "e"
    (tmp_path / "classes.txt").write_text("c0\nc1\n")
    args = evaluate_args(root, checkpoint, out, "--classes", str(tmp_path / "classes.txt"))
    assert vbench(*args).returncode == 0
    assert sorted(r["video"] for r in lines(out)) == ["c0/a.mp4", "c0/b.mp4", "c0/gone.mp4"]
    (root / "c0" / "gone.mp4").unlink()
    write_video(root / "c0" / "new.mp4", 180)
    again = vbench(*args, "--only-missing")
    assert again.returncode == 0, again.stderr
    assert "removed 1 lines of videos the dataset no longer lists" in again.stdout
    assert "evaluating 1 videos" in again.stdout and "removed (no longer listed)" in again.stdout
    assert sorted(r["video"] for r in lines(out)) == ["c0/a.mp4", "c0/b.mp4", "c0/new.mp4"]
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["counts"]["evaluated"] == 3 == doc["dataset"]["videos"]
    assert doc["resumed"]["dropped_unlisted"] == 1 and doc["resumed"]["kept"] == 2


# ---------------------------------------------------------------- 7. one file listed under three spellings


def test_a_plain_csv_listing_one_file_under_three_spellings_is_refused(tmp_path, data, checkpoint):
    listing = tmp_path / "list.csv"
    video = data / "c0" / "v0.mp4"
    os.symlink(video, tmp_path / "link.mp4")
    for spelling in ("./v0.mp4", str(video), "../c0/v0.mp4", str(tmp_path / "link.mp4")):
        listing.write_text(f"v0.mp4,c0\n{spelling},c0\nv1.mp4,c0\n")
        done = vbench(*evaluate_args(listing, checkpoint, tmp_path / "e", "--video-root", str(data / "c0")))
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (
            f"vbench: error: dataset CSV '{listing}', line 2: video '{spelling}' is listed twice (as 'v0.mp4' on line 1)"
        )
        assert not (tmp_path / "e").exists()


# ---------------------------------------------------------------- 9. a class folder whose name is not UTF-8


def test_a_class_folder_whose_name_is_not_utf8_is_one_line_exit_2_and_leaves_no_folder(tmp_path, checkpoint):
    root = tmp_path / "data"
    write_video(root / "c0" / "v.mp4", 60)
    bad = os.path.join(os.fsencode(root), b"c\xff")
    os.makedirs(bad)
    write_video(Path(os.fsdecode(bad)) / "v.mp4", 180)
    out = tmp_path / "e"
    done = vbench(*evaluate_args(root, checkpoint, out))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "has a name that is not UTF-8" in done.stderr
    assert not out.exists()


# ---------------------------------------------------------------- low: entries named like videos that are none


@pytest.mark.slow
def test_links_loops_folders_and_fifos_named_like_videos_are_counted_skips_and_refuse_nothing(tmp_path, checkpoint):
    root = tmp_path / "data"
    write_video(root / "c0" / "v.mp4", 60)
    write_video(root / "c1" / "v.mp4", 180)
    os.symlink("nowhere.mp4", root / "c0" / "dangling.mp4")
    os.symlink("loop.mp4", root / "c1" / "loop.mp4")  # a link to itself: a loop
    (root / "c1" / "folder.mp4").mkdir()
    os.mkfifo(root / "c1" / "fifo.mp4")  # opening it would wait for ever
    write_video(Path(os.fsdecode(os.path.join(os.fsencode(root / "c0"), b"n\xfe.mp4"))), 60)
    out = tmp_path / "e"
    done = vbench(*evaluate_args(root, checkpoint, out))
    assert done.returncode == 0, done.stderr
    reasons = {r["video"]: (r["status"], r.get("reason")) for r in lines(out)}
    assert reasons == {
        "c0/dangling.mp4": ("skipped", "missing"),
        "c1/loop.mp4": ("skipped", "unreadable"),
        "c1/folder.mp4": ("skipped", "unreadable"),
        "c1/fifo.mp4": ("skipped", "unreadable"),
        "c0/v.mp4": ("ok", None),
        "c1/v.mp4": ("ok", None),
        "c0/n\\xfe.mp4": ("ok", None),  # a file name that is not UTF-8 is evaluated, named with an escape
    }
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["counts"]["listed"] == 7 and doc["counts"]["skipped_by_reason"] == {"missing": 1, "unreadable": 3}
    assert "c0/n\\xfe.mp4 pred=" in done.stdout


# ---------------------------------------------------------------- 11. plugins and builder options in evaluate


@pytest.mark.slow
def test_vbenchs_own_checkpoint_of_r2d_18_frames_8_evaluates_with_8_frames(tmp_path, data):
    import archs
    from archs.weights import WeightsError, save_weights

    model = archs.create_model("r2d_18", frames=8, num_classes=2)
    with pytest.raises(WeightsError, match="pass the options it was built with as arch_kwargs"):
        save_weights(model, "r2d_18", tmp_path / "unreadable.pt")  # never a checkpoint that cannot be read back
    assert not (tmp_path / "unreadable.pt").exists()
    weights = save_weights(model, "r2d_18", tmp_path / "r2d_f8.pt", arch_kwargs={"frames": 8})
    assert weights.stat().st_mode & 0o777 == 0o666 & ~_umask()  # the mode a plain file write gives
    out = tmp_path / "e"
    done = vbench("evaluate", "--arch", "r2d_18", "--weights", str(weights), "--data", str(data), "--protocol",
                  "single", "--device", "cpu", "--workers", "0", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["input"]["frames"] == 8 and doc["arch_kwargs"] == {"frames": 8} and doc["counts"]["evaluated"] == 4
    assert "16x112x112" not in done.stdout and "8x112x112" in done.stdout


def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask in /proc/self/status")


@pytest.mark.slow
def test_evaluate_takes_arch_kwargs_plugins_and_vbench_plugins(tmp_path, data):
    plugin = ROOT / "tests" / "plugins" / "fake_archs.py"
    state = tmp_path / "fake_ok.pt"
    code = (
        "import sys, torch; from bench.run.plugins import load_plugins; load_plugins([sys.argv[1]]); import archs; "
        "torch.manual_seed(0); torch.save(archs.create_model('fake_ok', num_classes=2).state_dict(), sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(plugin), str(state)], check=True, cwd=tmp_path, timeout=120)
    args = ["evaluate", "--arch", "fake_ok", "--weights", str(state), "--arch-kwargs", "num_classes=2", "--data",
            str(data), "--protocol", "single", "--device", "cpu", "--workers", "0"]  # fmt: skip
    by_option = vbench(*args, "--plugin", str(plugin), "--out", str(tmp_path / "a"))
    assert by_option.returncode == 0, by_option.stderr
    by_env = vbench(*args, "--out", str(tmp_path / "b"), env={"VBENCH_PLUGINS": str(plugin)})
    assert by_env.returncode == 0, by_env.stderr
    for out in (tmp_path / "a", tmp_path / "b"):
        doc = json.loads((out / "evaluation.json").read_text())
        assert doc["arch"] == "fake_ok" and doc["counts"]["evaluated"] == 4 and doc["classes"]["count"] == 2
    assert [r["top5_prob"] for r in lines(tmp_path / "a")] == [r["top5_prob"] for r in lines(tmp_path / "b")]
    wrong = vbench(*args, "--arch-kwargs", "colour=1", "--plugin", str(plugin), "--out", str(tmp_path / "c"))
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert not (tmp_path / "c").exists()


def test_a_checkpoint_whose_classifier_has_no_rows_is_refused(tmp_path, data):
    import torch

    import archs

    state = archs.create_model("r2d_18", num_classes=2).state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(0, 512), torch.zeros(0)
    torch.save(state, tmp_path / "empty_head.pt")
    done = vbench(*evaluate_args(data, tmp_path / "empty_head.pt", tmp_path / "e"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "classifier fc.weight has 0 rows" in done.stderr and not (tmp_path / "e").exists()
