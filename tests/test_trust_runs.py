"""Trustworthy runs, tested as a user meets them: the real CLI in subprocesses, hostile plugins.

Nothing a model prints can change a row; a signal ends every process and keeps every
finished row; a folder is never silently replaced or written by two runs; workers
import nothing from the working directory. Waits are on conditions (a row written,
a file present, a process gone) with generous deadlines, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import until

pytestmark = pytest.mark.slow  # worker processes and signals: the slow tier, which CI always runs

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = str(Path(__file__).parent / "plugins")
FAST = ["--device", "cpu", "--warmup", "0", "--repeats", "2"]
HOSTILE = ["--plugin", "hostile_archs", "--plugin", "fake_archs"]


def _env(**extra: str) -> dict[str, str]:
    paths = [PLUGINS, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))  # no empty entry: that would be the cwd
    env.update(extra)
    return env


def _vbench(*args: str, cwd: Path = ROOT, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(**extra),
        cwd=cwd,
    )


def _start(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(**extra),
        cwd=ROOT,
    )


def _start_hanging(pids: Path, *args: str) -> subprocess.Popen[str]:
    """A run whose ``hostile_hang`` model hangs, noting its worker's pid and its child's in ``pids``."""
    return _start(*args, HOSTILE_PIDS=str(pids), HOSTILE_HANG="1")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _jsonl(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def _doc(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbench: error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- the private channel


def test_nothing_a_model_prints_changes_adds_or_removes_a_row(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_spoof", "--arch", "fake_ok", *HOSTILE, "--batch", "1,2", *FAST,
                   "--timeout", "60", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = _doc(out)["rows"]
    assert [(r["arch"], r["batch"], r["status"]) for r in rows] == [
        ("hostile_spoof", 1, "ok"), ("hostile_spoof", 2, "ok"), ("fake_ok", 1, "ok"), ("fake_ok", 2, "ok"),
    ]  # fmt: skip
    assert all(r["latency_ms"] != 0.001 and r["n_samples"] >= 2 for r in rows)
    assert len(_jsonl(out)) == 4
    log = (out / "logs" / "hostile_spoof.log").read_bytes()
    assert b"@@vbench" in log and b"\xff\xfe invalid utf-8" in log  # what the model printed, kept apart


def test_an_error_full_of_markup_is_shown_literally_and_escaped_in_files(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_markup", "--arch", "fake_ok", *HOSTILE, *FAST, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = {r["arch"]: r for r in _doc(out)["rows"]}
    assert rows["hostile_markup"]["status"] == "error" and rows["fake_ok"]["status"] == "ok"
    assert "[enforce fail at a.cpp:1]" in rows["hostile_markup"]["error"]
    assert "[enforce fail at a.cpp:1]" in proc.stdout  # not eaten as rich markup
    md = (out / "results.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert "<script>" not in md and len(table) == 2 + 2  # header, rule, 2 rows (a contended row adds a footnote)


def test_wrong_outputs_are_error_rows_naming_expected_and_actual(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_none", "--arch", "hostile_shape", *HOSTILE, *FAST, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = {r["arch"]: r for r in _doc(out)["rows"]}
    assert rows["hostile_none"]["status"] == "error"
    assert "NoneType" in rows["hostile_none"]["error"] and "(1, 400)" in rows["hostile_none"]["error"]
    assert rows["hostile_shape"]["status"] == "error"
    assert "1x7" in rows["hostile_shape"]["error"] and "1x400" in rows["hostile_shape"]["error"]


def test_a_forked_child_does_not_outlive_its_job(tmp_path):
    pids = tmp_path / "pids"
    proc = _vbench("profile", "--arch", "hostile_fork", *HOSTILE, *FAST, "--out", str(tmp_path / "run"),
                   HOSTILE_PIDS=str(pids))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _pids(pids), "the model did not fork"
    until("the forked child to be gone", lambda: not any(_alive(p) for p in _pids(pids)), 10)


# ---------------------------------------------------------------- process lifetime


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_every_process_keeps_the_rows_and_the_resume_command_works(tmp_path, sig):
    out, pids = tmp_path / "run", tmp_path / "pids"
    run = _start_hanging(
        pids, "profile", "--arch", "fake_ok", "--arch", "hostile_hang", *HOSTILE, *FAST, "--out", str(out)
    )
    try:
        until("fake_ok's row", lambda: len(_jsonl(out)) == 1)
        until("the hanging worker and its child", lambda: len(_pids(pids)) >= 2)
        sent = time.monotonic()
        run.send_signal(sig)
        _, err = run.communicate(timeout=30)
        assert time.monotonic() - sent < 5
    finally:
        run.kill()
    assert run.returncode == 128 + sig, err
    until("every worker process to be gone", lambda: not any(_alive(p) for p in _pids(pids)), 5)
    doc = _doc(out)
    assert doc["state"] == "interrupted" and [r["arch"] for r in doc["rows"]] == ["fake_ok"]
    assert "kept 1 rows" in err and "Traceback" not in err
    resume = err.split("finish with: ", 1)[1].strip()
    argv = shlex.split(resume)
    assert argv[:2] == ["vbench", "profile"] and "--only-missing" in argv and argv[-2:] == ["--out", str(out)]
    # The printed command finishes the run (without the hang this time).
    done = _vbench(*argv[1:])
    assert done.returncode == 0, done.stderr
    assert [(r["arch"], r["status"]) for r in _doc(out)["rows"]] == [("fake_ok", "ok"), ("hostile_hang", "ok")]
    assert _doc(out)["state"] == "complete"


def test_workers_exit_by_themselves_when_the_parent_is_killed(tmp_path):
    out, pids = tmp_path / "run", tmp_path / "pids"
    run = _start_hanging(pids, "profile", "--arch", "hostile_hang", *HOSTILE, *FAST, "--out", str(out))
    try:
        until("the hanging worker and its child", lambda: len(_pids(pids)) >= 2)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        until("the orphaned worker and its child to exit", lambda: not any(_alive(p) for p in _pids(pids)), 5)
    finally:
        run.kill()
    # The killed run left results.json "running": readers take the rows from results.jsonl.
    assert _doc(out)["state"] == "running"


# ---------------------------------------------------------------- folders


def test_a_folder_holding_a_run_is_refused_unless_finished_or_overwritten(tmp_path):
    out = tmp_path / "run"
    first = _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--static", "--out", str(out))
    assert first.returncode == 0, first.stderr
    again = _vbench("profile", "--arch", "fake_oom", *HOSTILE, "--static", "--out", str(out))
    assert again.returncode == 2
    _one_error_line(again, "already holds a run", "--only-missing", "--overwrite")
    assert [r["arch"] for r in _doc(out)["rows"]] == ["fake_ok"]  # untouched
    resumed = _vbench("profile", "--arch", "fake_oom", *HOSTILE, "--static", "--only-missing", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert [r["arch"] for r in _doc(out)["rows"]] == ["fake_ok", "fake_oom"]
    replaced = _vbench("profile", "--arch", "fake_crash", *HOSTILE, "--static", "--overwrite", "--out", str(out))
    assert replaced.returncode == 0, replaced.stderr
    assert [r["arch"] for r in _doc(out)["rows"]] == ["fake_crash"]


def test_two_runs_never_write_one_folder(tmp_path):
    out, pids = tmp_path / "run", tmp_path / "pids"
    run = _start_hanging(pids, "profile", "--arch", "hostile_hang", *HOSTILE, *FAST, "--out", str(out))
    try:
        until("the first run to hold its folder", lambda: len(_pids(pids)) >= 2)
        second = _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--static", "--only-missing", "--out", str(out))
        assert second.returncode == 2
        _one_error_line(second, "another vbench run", f"pid {run.pid}")
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=30)


def test_default_folders_are_unique_even_in_the_same_second(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.cli", "profile", "--arch", "fake_ok", *HOSTILE, "--static"],
                         env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    folders = sorted((tmp_path / "reports" / "runs").iterdir())
    assert len(folders) == 3
    assert all(len(_doc(f)["rows"]) == 1 for f in folders)


def test_a_killed_run_never_lets_an_older_results_json_win(tmp_path):
    out, pids = tmp_path / "run", tmp_path / "pids"
    assert _vbench("profile", "--arch", "fake_oom", *HOSTILE, "--static", "--out", str(out)).returncode == 0
    run = _start_hanging(
        pids,
        "profile",
        "--arch",
        "fake_ok",
        "--arch",
        "hostile_hang",
        *HOSTILE,
        *FAST,
        "--overwrite",
        "--out",
        str(out),
    )
    try:
        until("fake_ok's row", lambda: [r["arch"] for r in _jsonl(out)] == ["fake_ok"])
        until("the hanging worker and its child", lambda: len(_pids(pids)) >= 2)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        run.kill()
    until("the orphans to exit", lambda: not any(_alive(p) for p in _pids(pids)), 5)
    merged = _vbench("merge", str(out), "--out", str(tmp_path / "merged"))
    assert [r["arch"] for r in _doc(tmp_path / "merged")["rows"]] == ["fake_ok"], merged.stderr


def test_only_missing_refuses_rows_of_another_environment(tmp_path):
    out = tmp_path / "run"
    assert _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--static", "--out", str(out)).returncode == 0
    doc = _doc(out)
    doc["environment"]["torch_version"] = "0.0.1"
    (out / "results.json").write_text(json.dumps(doc))
    mixed = _vbench("profile", "--arch", "fake_ok", "--arch", "fake_oom", *HOSTILE, "--static", "--only-missing",
                    "--out", str(out))  # fmt: skip
    assert mixed.returncode == 2
    _one_error_line(mixed, "torch_version", "--allow-mixed")
    allowed = _vbench("profile", "--arch", "fake_ok", "--arch", "fake_oom", *HOSTILE, "--static", "--only-missing",
                      "--allow-mixed", "--out", str(out))  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: (t / "f").write_text("x") and t / "f", "is a file"),
        (lambda t: (t / "g").write_text("x") and t / "g" / "sub", "cannot be written"),
        (lambda t: "", "empty"),
    ],
)
def test_an_unusable_out_is_refused_before_any_work(tmp_path, make, message):
    proc = _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--static", "--out", str(make(tmp_path)))
    assert proc.returncode == 2
    _one_error_line(proc, message)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_ends_with_one_line_and_keeps_the_finished_rows(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = disk / "run"
        proc = _vbench("profile", "--arch", "fake_ok", "--arch", "hostile_fill", "--arch", "fake_oom", *HOSTILE,
                       *FAST, "--out", str(out), HOSTILE_FILL=str(disk))  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        _one_error_line(proc, "No space left on device", "results.jsonl")
        kept = [r["arch"] for r in _jsonl(out)]
        assert kept[0] == "fake_ok" and "fake_oom" not in kept  # the row before is kept; the run stopped there
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---------------------------------------------------------------- code and output


def test_workers_import_nothing_from_the_working_directory(tmp_path):
    marker = tmp_path / "imported"
    for name in ("json", "inspect", "typing", "torch"):
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('{name} ')\n")
    vbench = Path(sys.executable).with_name("vbench")
    proc = subprocess.run([str(vbench), "profile", "--arch", "fake_ok", *HOSTILE, *FAST, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=180, env=_env(), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), marker.read_text()
    assert _doc(tmp_path / "run")["rows"][0]["status"] == "ok"


def test_a_closed_stdout_stops_the_printing_not_the_run(tmp_path):
    out = tmp_path / "run"
    cmd = (f"{shlex.quote(sys.executable)} -m bench.cli profile --arch fake_ok --arch fake_oom {' '.join(HOSTILE)} "
           f"--batch 1,2 {' '.join(FAST)} --out {shlex.quote(str(out))} | head -c 1; exit ${{PIPESTATUS[0]}}")  # fmt: skip
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=180, env=_env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _doc(out)["state"] == "complete" and len(_doc(out)["rows"]) == 4


def test_plugins_as_paths_in_every_command_recorded_and_failing_in_one_line(tmp_path):
    path = str(Path(PLUGINS) / "hostile_archs.py")
    listed = _vbench("list", "hostile_*", "--plugin", path, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"hostile_fill", "hostile_fork", "hostile_spoof"} <= {a["name"] for a in json.loads(listed.stdout)}
    inspected = _vbench("inspect", "hostile_s*", "--plugin", path, "--json")
    assert inspected.returncode == 0 and set(json.loads(inspected.stdout)) == {"hostile_spoof"}
    assert "hostile_shape: the model returned logits of shape 1x7" in inspected.stderr
    out = tmp_path / "run"
    run = _vbench("profile", "--arch", "hostile_fork", "--plugin", path, *FAST, "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert _doc(out)["environment"]["plugins"][0]["path"] == path
    for bad, why in (("exiting_plugin", "exit(4)"), ("no_such_plugin_here", "No module named"),
                     (str(tmp_path / "none.py"), "no such file")):  # fmt: skip
        proc = _vbench("list", "--plugin", bad)
        assert proc.returncode == 2
        _one_error_line(proc, why)


# ---------------------------------------------------------------- the small ones


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timeout", "inf"], "--timeout"),
        (["--timeout", "nan"], "--timeout"),
        (["--max-time", "nan"], "--max-time"),
        (["--min-time", "5", "--max-time", "1"], "cannot exceed"),
        (["--arch-kwargs", "num_classes=0"], "num_classes"),
        (["--arch-kwargs", "num_classes=-5"], "num_classes"),
        (["--arch-kwargs", "frames=0"], "frames"),
        (["--shards", "4"], "--executor"),
        (["--partition", "gpu"], "--executor"),
        (["--max-memory", "lots"], "--max-memory"),
        (["--allow-mixed"], "--only-missing"),
    ],
)
def test_bad_options_exit_2_before_any_work(tmp_path, args, message):
    proc = _vbench("profile", "--arch", "fake_ok", *HOSTILE, *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    _one_error_line(proc, message)
    assert not (tmp_path / "run" / "results.json").exists()


def test_repeated_grid_values_are_measured_once_and_files_are_world_readable(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--batch", "1,1,2", "--dtype", "fp32,fp32", "--static",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["batch"] for r in _doc(out)["rows"]] == [1, 2]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.json", "results.csv", "results.md", "results.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_configuration_estimated_not_to_fit_is_skipped_with_its_estimate(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "fake_ok", *HOSTILE, "--batch", "1", *FAST, "--max-memory", "1KiB",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = _doc(out)["rows"][0]
    assert row["status"] == "skipped" and "estimated memory" in row["error"] and "--max-memory" in row["error"]


def test_the_executor_gets_no_empty_tasks_and_times_one_task_at_a_time(tmp_path):
    pytest.importorskip("submitit")
    out, log = tmp_path / "run", tmp_path / "slots.jsonl"
    proc = _vbench("profile", "--arch", "fake_slot1", "--arch", "fake_slot2", *HOSTILE, *FAST, "--repeats", "5",
                   "--executor", "local", "--shards", "4", "--out", str(out), VBENCH_SLOT_LOG=str(log))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["1-of-2", "2-of-2"]
    spans = [json.loads(line)[1:] for line in log.read_text().splitlines()]
    by_task = {}
    for task in ("1-of-2", "2-of-2"):
        env = _doc(out / "shards" / task)["environment"]
        by_task[task] = (env["started_at"], env["finished_at"])
    (a0, a1), (b0, b1) = by_task.values()
    assert a1 <= b0 or b1 <= a0, by_task  # one after the other, never side by side
    assert len(spans) >= 10


def test_merge_warns_when_runs_were_timed_at_the_same_time_on_one_machine(tmp_path):
    for name in ("a", "b"):
        assert _vbench("profile", "--arch", f"fake_slot{1 if name == 'a' else 2}", *HOSTILE, *FAST,
                       "--out", str(tmp_path / name)).returncode == 0  # fmt: skip
    a, b = _doc(tmp_path / "a"), _doc(tmp_path / "b")
    b["environment"]["started_at"], b["environment"]["finished_at"] = a["environment"]["started_at"], "9999"
    (tmp_path / "b" / "results.json").write_text(json.dumps(b))
    merged = _vbench("merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m"))
    assert merged.returncode == 0, merged.stderr
    assert "timed at the same time" in merged.stdout
    assert _doc(tmp_path / "m")["environment"]["timed_concurrently"]


def test_an_internal_error_is_exit_3_with_the_traceback_in_a_file(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import bench.run.plan
    from bench.cli import app

    def broken(*_a, **_k):
        raise RuntimeError("a bug [/] in vbench")

    monkeypatch.setattr(bench.run.plan, "make_plan", broken)
    result = CliRunner().invoke(app, ["inspect", "r3d_18"])
    assert result.exit_code == 3
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("vbench: error: internal error: RuntimeError: a bug [/] in vbench (traceback in ")
    trace = Path(line.rsplit("traceback in ", 1)[1].rstrip(")"))
    assert "Traceback" in trace.read_text()
    trace.unlink()


def test_a_worker_killed_by_the_kernel_oom_killer_is_an_oom_row(monkeypatch):
    from bench.run import launch

    monkeypatch.setattr(launch, "_oom_kills", lambda: 4)
    assert launch._exit_status(-signal.SIGKILL, 3)[0] == "oom"
    assert launch._exit_status(-signal.SIGKILL, 4) == ("error", "worker killed by SIGKILL (not by vbench)")
    assert launch._exit_status(3, 4) == ("error", "worker exited with code 3")


# ---------------------------------------------------------------- what a hostile tester found next


def test_rows_forged_on_any_file_descriptor_are_ignored(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_forge", *HOSTILE, "--batch", "1,2", *FAST, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = _doc(out)["rows"]
    assert [(r["arch"], r["batch"], r["status"]) for r in rows] == [
        ("hostile_forge", 1, "ok"),
        ("hostile_forge", 2, "ok"),
    ]
    assert all(r["latency_ms"] != 0.001 and r["n_samples"] >= 2 and r["family"] == "hostile" for r in rows)


def test_daemons_and_double_forks_of_a_model_do_not_outlive_its_job(tmp_path):
    pids = tmp_path / "pids"
    proc = _vbench("profile", "--arch", "hostile_daemon", *HOSTILE, *FAST, "--out", str(tmp_path / "run"),
                   HOSTILE_PIDS=str(pids))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(_pids(pids)) == 2, "the model did not leave its daemons"
    until("the daemons to be gone", lambda: not any(_alive(p) for p in _pids(pids)), 10)


@pytest.mark.parametrize("how", ["exit", "kbi"])
def test_a_builder_that_exits_while_counted_is_an_error_row(tmp_path, how):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_exitbuild", "--arch", "fake_ok", *HOSTILE, "--static",
                   "--out", str(out), HOSTILE_EXIT_BUILD=how)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {r["arch"]: r for r in _doc(out)["rows"]}
    assert rows["hostile_exitbuild"]["status"] == "error" and rows["fake_ok"]["status"] == "ok"
    assert ("SystemExit" if how == "exit" else "KeyboardInterrupt") in rows["hostile_exitbuild"]["error"]


def test_a_model_that_exits_is_an_error_row_that_says_so(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_exit", "--arch", "fake_ok", *HOSTILE, *FAST, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = {r["arch"]: r for r in _doc(out)["rows"]}
    assert rows["hostile_exit"]["status"] == "error" and "SystemExit" in rows["hostile_exit"]["error"]
    assert rows["fake_ok"]["status"] == "ok"


def test_a_plugin_cannot_register_a_name_that_would_break_files_and_tables(tmp_path):
    plugin = tmp_path / "badname.py"
    plugin.write_text(
        "from archs import register_arch\n"
        "def build(**kw):\n    raise AssertionError('never built')\n"
        "build.__name__ = 'bad\\nname'\n"
        "register_arch(family='x', default_input=(3, 1, 1, 1), min_input=(3, 1, 1, 1), paper='x')(build)\n"
    )
    proc = _vbench("list", "--plugin", str(plugin))
    assert proc.returncode == 2
    _one_error_line(proc, "names are letters, digits")


def test_a_run_with_every_standard_stream_closed_measures_normally(tmp_path):
    out = tmp_path / "run"
    cmd = (f"{shlex.quote(sys.executable)} -m bench.cli profile --arch fake_ok {' '.join(HOSTILE)} {' '.join(FAST)} "
           f"--out {shlex.quote(str(out))} <&- >&- 2>&-")  # fmt: skip
    proc = subprocess.run(["bash", "-c", cmd], timeout=180, env=_env(), cwd=ROOT)
    assert proc.returncode == 0
    assert [(r["arch"], r["status"]) for r in _doc(out)["rows"]] == [("fake_ok", "ok")]


def test_counting_processes_and_executor_tasks_import_nothing_from_the_working_directory(tmp_path):
    marker = tmp_path / "imported"
    for name in ("threading", "signal", "selectors", "subprocess"):
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('{name} ')\n")
    vbench = Path(sys.executable).with_name("vbench")
    proc = subprocess.run([str(vbench), "profile", "--arch", "fake_ok", "--arch", "fake_oom", *HOSTILE, "--static",
                           "--count-workers", "2", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=180, env=_env(), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), marker.read_text()
    pytest.importorskip("submitit")
    task = subprocess.run([str(vbench), "profile", "--arch", "fake_ok", *HOSTILE, *FAST, "--executor", "local",
                           "--shards", "1", "--out", str(tmp_path / "cluster")],
                          capture_output=True, text=True, timeout=180, env=_env(), cwd=tmp_path)  # fmt: skip
    assert task.returncode == 0, task.stderr
    assert not marker.exists(), marker.read_text()  # nor the executor's task processes
