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
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from clirun import PLUGINS, ROOT, command, made_once, vbench, vbench_env, vbench_here
from waiting import until

pytestmark = pytest.mark.slow  # worker processes and signals: the slow tier, which CI always runs

FAST = ["--device", "cpu", "--warmup", "0", "--repeats", "2"]
HOSTILE = ["--plugin", "hostile_archs", "--plugin", "fake_archs"]
HOSTILE_PATH = str(Path(PLUGINS) / "hostile_archs.py")


def _vbench(*args: object, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vbench ARGS`` in a subprocess with the test plugins on its path."""
    return vbench(*args, cwd=cwd, env=env, plugins=True)


def _start(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=vbench_env(extra, plugins=True), cwd=ROOT)  # fmt: skip


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


def _pids(path: Path, behaviour: str | None = None) -> list[int]:
    """The pids the hostile models noted in ``path`` (those of ``behaviour``'s model only, when given)."""
    lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [int(pid) for pid, who in lines if behaviour in (None, who)]


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

SHARED = ["hostile_spoof", "hostile_markup", "hostile_none", "hostile_shape", "hostile_fork", "hostile_forge",
          "hostile_daemon", "hostile_exit", "hostile_exitbuild", "fake_ok"]  # fmt: skip
LOOK_ALIKES = ("json", "inspect", "typing", "torch")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One run of the hostile models that end on their own, then ``fake_ok``, read by the tests that check what
    it left (each model's rows are its own: what one does cannot reach another's); made once in a session.

    It is started as a user starts it, with the installed ``vbench`` script, in a folder of modules named like
    ones vbench and its workers import (``json.py``...: each notes its import in ``imported``); the hostile
    plugin is given by its path, ``HOSTILE_EXIT_BUILD=exit`` makes ``hostile_exitbuild``'s builder exit while
    it is counted, and the forking models note their children's pids in ``pids``.
    """

    def run(cwd: Path) -> subprocess.CompletedProcess[str]:
        for name in LOOK_ALIKES:
            (cwd / f"{name}.py").write_text(f"open({str(cwd / 'imported')!r}, 'a').write('{name} ')\n")
        archs = [a for name in SHARED for a in ("--arch", name)]
        return vbench("profile", *archs, "--plugin", HOSTILE_PATH, "--plugin", "fake_archs", "--batch", "1,2",
                      *FAST, "--timeout", "60", "--out", cwd / "run", cwd=cwd, plugins=True, script=True,
                      env={"HOSTILE_PIDS": str(cwd / "pids"), "HOSTILE_EXIT_BUILD": "exit"})  # fmt: skip

    cwd, proc = made_once(tmp_path_factory.getbasetemp(), "trust-runs-hostile", run)
    assert proc.returncode == 0, proc.stderr
    out = cwd / "run"
    rows = _doc(out)["rows"]
    first = {r["arch"]: r for r in reversed(rows)}  # each architecture's first row (batch 1)
    return SimpleNamespace(proc=proc, out=out, pids=cwd / "pids", marker=cwd / "imported", rows=first, all_rows=rows)


def _rows_of(hostile: SimpleNamespace, arch: str) -> list[dict]:
    return [r for r in hostile.all_rows if r["arch"] == arch]


def test_nothing_a_model_prints_changes_adds_or_removes_a_row(hostile):
    rows = hostile.all_rows
    # Every configuration of the run has its one row, in the plan's order, and no other row (nor "spoofed").
    assert [(r["arch"], r["batch"]) for r in rows] == [(a, b) for a in SHARED for b in (1, 2)]
    assert len(_jsonl(hostile.out)) == len(rows)
    spoof = _rows_of(hostile, "hostile_spoof")
    assert [(r["batch"], r["status"]) for r in spoof] == [(1, "ok"), (2, "ok")]
    assert [r["status"] for r in _rows_of(hostile, "fake_ok")] == ["ok", "ok"]
    assert all(r["latency_ms"] != 0.001 and r["n_samples"] >= 2 for r in spoof)
    log = (hostile.out / "logs" / "hostile_spoof.log").read_bytes()
    assert b"@@vbench" in log and b"\xff\xfe invalid utf-8" in log  # what the model printed, kept apart


def test_an_error_full_of_markup_is_shown_literally_and_escaped_in_files(hostile):
    rows = hostile.rows
    assert rows["hostile_markup"]["status"] == "error" and rows["fake_ok"]["status"] == "ok"
    assert "[enforce fail at a.cpp:1]" in rows["hostile_markup"]["error"]
    assert "[enforce fail at a.cpp:1]" in hostile.proc.stdout  # not eaten as rich markup
    md = (hostile.out / "results.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    # Header, rule and a line a row (a contended row adds a footnote, not a line of the table).
    assert "<script>" not in md and len(table) == 2 + len(hostile.all_rows)


def test_wrong_outputs_are_error_rows_naming_expected_and_actual(hostile):
    rows = hostile.rows
    assert rows["hostile_none"]["status"] == "error"
    assert "NoneType" in rows["hostile_none"]["error"] and "(1, 400)" in rows["hostile_none"]["error"]
    assert rows["hostile_shape"]["status"] == "error"
    assert "1x7" in rows["hostile_shape"]["error"] and "1x400" in rows["hostile_shape"]["error"]


def test_a_forked_child_does_not_outlive_its_job(hostile):
    assert _pids(hostile.pids, "fork"), "the model did not fork"
    until("the forked child to be gone", lambda: not any(_alive(p) for p in _pids(hostile.pids, "fork")), 10)


# ---------------------------------------------------------------- process lifetime


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_every_process_keeps_the_rows_and_the_resume_command_works(tmp_path, sig):
    """While the run hangs, a second run into its folder is refused naming it (two runs never write one folder);
    the signal then ends every process, keeps the finished row, and the printed command finishes the run."""
    out, pids = tmp_path / "run", tmp_path / "pids"
    run = _start_hanging(
        pids, "profile", "--arch", "fake_ok", "--arch", "hostile_hang", *HOSTILE, *FAST, "--out", str(out)
    )
    try:
        until("fake_ok's row", lambda: len(_jsonl(out)) == 1)
        until("the hanging worker and its child", lambda: len(_pids(pids)) >= 2)
        # In this process: the refusal needs no model (and no plugin); the folder's lock names the running vbench.
        second = vbench_here("profile", "--arch", "r3d_18", "--static", "--only-missing", "--out", out)
        assert second.returncode == 2
        _one_error_line(second, "another vbench run", f"pid {run.pid}")
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


def test_a_killed_run_never_lets_an_older_results_json_win_and_its_workers_exit_by_themselves(tmp_path):
    """The parent killed (SIGKILL) mid-run: its orphaned worker and the worker's child exit by themselves; the
    run's results.json says "running" (readers take the rows from results.jsonl), and a finished run that the
    folder held before (results.json "complete") never wins over what the killed run wrote."""
    out, pids = tmp_path / "run", tmp_path / "pids"
    older = vbench("profile", "--arch", "r3d_18", "--static", "--out", out)  # no plugin: counted in its process
    assert older.returncode == 0, older.stderr
    assert _doc(out)["state"] == "complete"
    run = _start_hanging(pids, "profile", "--arch", "fake_ok", "--arch", "hostile_hang", *HOSTILE, *FAST,
                         "--overwrite", "--out", str(out))  # fmt: skip
    try:
        until("fake_ok's row", lambda: [r["arch"] for r in _jsonl(out)] == ["fake_ok"])
        until("the hanging worker and its child", lambda: len(_pids(pids)) >= 2)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        until("the orphaned worker and its child to exit", lambda: not any(_alive(p) for p in _pids(pids)), 5)
    finally:
        run.kill()
    assert _doc(out)["state"] == "running"
    merged = vbench_here("merge", out, "--out", tmp_path / "merged")
    assert [r["arch"] for r in _doc(tmp_path / "merged")["rows"]] == ["fake_ok"], merged.stderr


# ---------------------------------------------------------------- folders
# Refusals of a folder are vbench's own work, before any model runs: in this process, with real architectures.


def test_a_folder_holding_a_run_is_refused_unless_finished_or_overwritten(tmp_path):
    out = tmp_path / "run"
    first = vbench_here("profile", "--arch", "r3d_18", "--static", "--out", out)
    assert first.returncode == 0, first.stderr
    again = vbench_here("profile", "--arch", "mc3_18", "--static", "--out", out)
    assert again.returncode == 2
    _one_error_line(again, "already holds a run", "--only-missing", "--overwrite")
    assert [r["arch"] for r in _doc(out)["rows"]] == ["r3d_18"]  # untouched
    resumed = vbench_here("profile", "--arch", "mc3_18", "--static", "--only-missing", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["arch"] for r in _doc(out)["rows"]] == ["r3d_18", "mc3_18"]
    replaced = vbench_here("profile", "--arch", "r2d_18", "--static", "--overwrite", "--out", out)
    assert replaced.returncode == 0, replaced.stderr
    assert [r["arch"] for r in _doc(out)["rows"]] == ["r2d_18"]


def test_default_folders_are_unique_even_in_the_same_second(tmp_path):
    procs = [
        subprocess.Popen([*command(), "profile", "--arch", "r3d_18", "--static"], env=vbench_env(), cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    folders = sorted((tmp_path / "reports" / "runs").iterdir())
    assert len(folders) == 3
    assert all(len(_doc(f)["rows"]) == 1 for f in folders)


def test_only_missing_refuses_rows_of_another_environment(tmp_path):
    out = tmp_path / "run"
    assert vbench_here("profile", "--arch", "r3d_18", "--static", "--out", out).returncode == 0
    doc = _doc(out)
    doc["environment"]["torch_version"] = "0.0.1"
    (out / "results.json").write_text(json.dumps(doc))
    both = ["--arch", "r3d_18", "--arch", "mc3_18", "--static", "--only-missing", "--out", out]
    mixed = vbench_here("profile", *both)
    assert mixed.returncode == 2
    _one_error_line(mixed, "torch_version", "--allow-mixed")
    allowed = vbench_here("profile", *both, "--allow-mixed")
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
    proc = vbench_here("profile", "--arch", "r3d_18", "--static", "--out", str(make(tmp_path)))
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
                       *FAST, "--out", str(out), env={"HOSTILE_FILL": str(disk)})  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        _one_error_line(proc, "No space left on device", "results.jsonl")
        kept = [r["arch"] for r in _jsonl(out)]
        assert kept[0] == "fake_ok" and "fake_oom" not in kept  # the row before is kept; the run stopped there
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---------------------------------------------------------------- code and output


def test_workers_import_nothing_from_the_working_directory(hostile):
    """The shared run was started in a folder of look-alikes of json, inspect, typing and torch: neither vbench
    nor any of its workers and counting processes imported one."""
    assert not hostile.marker.exists(), hostile.marker.read_text()
    assert hostile.rows["fake_ok"]["status"] == "ok"


def test_a_closed_stdout_stops_the_printing_not_the_run(tmp_path):
    out = tmp_path / "run"
    cmd = (f"{shlex.join(command())} profile --arch fake_ok --arch fake_oom {' '.join(HOSTILE)} "
           f"--batch 1,2 {' '.join(FAST)} --out {shlex.quote(str(out))} | head -c 1; exit ${{PIPESTATUS[0]}}")  # fmt: skip
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=180,
                          env=vbench_env(plugins=True), cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _doc(out)["state"] == "complete" and len(_doc(out)["rows"]) == 4


def test_plugins_as_paths_in_every_command_recorded_and_failing_in_one_line(tmp_path, hostile):
    listed = _vbench("list", "hostile_*", "--plugin", HOSTILE_PATH, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"hostile_fill", "hostile_fork", "hostile_spoof"} <= {a["name"] for a in json.loads(listed.stdout)}
    inspected = _vbench("inspect", "hostile_s*", "--plugin", HOSTILE_PATH, "--json")
    assert inspected.returncode == 0 and set(json.loads(inspected.stdout)) == {"hostile_spoof"}
    assert "hostile_shape: the model returned logits of shape 1x7" in inspected.stderr
    # The shared run was given the hostile plugin by its path: its workers ran the models, the path is recorded.
    assert hostile.rows["hostile_fork"]["status"] == "ok"
    assert _doc(hostile.out)["environment"]["plugins"][0]["path"] == HOSTILE_PATH
    # A plugin that exits while imported: in a subprocess (it would end this one). Those that cannot be imported
    # at all: in this process.
    for bad, why, run in (("exiting_plugin", "exit(4)", _vbench), ("no_such_plugin_here", "No module named", vbench_here),
                          (str(tmp_path / "none.py"), "no such file", vbench_here)):  # fmt: skip
        proc = run("list", "--plugin", bad)
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
    proc = vbench_here("profile", "--arch", "r3d_18", *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    _one_error_line(proc, message)
    assert not (tmp_path / "run" / "results.json").exists()


def test_repeated_grid_values_are_measured_once_and_files_are_world_readable(tmp_path):
    out = tmp_path / "run"
    proc = vbench_here("profile", "--arch", "r3d_18", "--batch", "1,1,2", "--dtype", "fp32,fp32", "--static",
                       "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["batch"] for r in _doc(out)["rows"]] == [1, 2]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.json", "results.csv", "results.md", "results.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_configuration_estimated_not_to_fit_is_skipped_with_its_estimate(tmp_path):
    out = tmp_path / "run"
    proc = vbench_here("profile", "--arch", "r3d_18", "--input", "min", "--batch", "1", *FAST, "--max-memory", "1KiB",
                       "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = _doc(out)["rows"][0]
    assert row["status"] == "skipped" and "estimated memory" in row["error"] and "--max-memory" in row["error"]


def test_the_executor_gets_no_empty_tasks_times_one_task_at_a_time_and_imports_nothing_from_the_cwd(tmp_path):
    """Four shards asked of a sweep of two jobs: two tasks, timed one after the other. Started with the installed
    script in a folder of look-alikes of modules that counting processes (``--count-workers 2``), the executor's
    task processes and their workers import: none is imported."""
    pytest.importorskip("submitit")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    marker, out, log = tmp_path / "imported", tmp_path / "run", tmp_path / "slots.jsonl"
    for name in ("threading", "signal", "selectors", "subprocess"):
        (cwd / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('{name} ')\n")
    proc = vbench("profile", "--arch", "fake_slot1", "--arch", "fake_slot2", *HOSTILE, *FAST, "--repeats", "5",
                  "--count-workers", "2", "--executor", "local", "--shards", "4", "--out", out, cwd=cwd,
                  plugins=True, script=True, env={"VBENCH_SLOT_LOG": str(log)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), marker.read_text()
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
    for name, arch in (("a", "r3d_18"), ("b", "mc3_18")):  # timed by a worker each; the runs' own work here
        done = vbench_here("profile", "--arch", arch, "--input", "min", *FAST, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
    a, b = _doc(tmp_path / "a"), _doc(tmp_path / "b")
    b["environment"]["started_at"], b["environment"]["finished_at"] = a["environment"]["started_at"], "9999"
    (tmp_path / "b" / "results.json").write_text(json.dumps(b))
    merged = vbench_here("merge", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "m")
    assert merged.returncode == 0, merged.stderr
    assert "timed at the same time" in merged.stdout
    assert _doc(tmp_path / "m")["environment"]["timed_concurrently"]


def test_an_internal_error_is_exit_3_with_the_traceback_in_a_file(tmp_path, monkeypatch):
    import bench.run.plan

    def broken(*_a, **_k):
        raise RuntimeError("a bug [/] in vbench")

    monkeypatch.setattr(bench.run.plan, "make_plan", broken)
    result = vbench_here("inspect", "r3d_18")
    assert result.returncode == 3
    line = (result.stdout + result.stderr).strip().splitlines()[-1]
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


def test_rows_forged_on_any_file_descriptor_are_ignored(hostile):
    rows = _rows_of(hostile, "hostile_forge")
    assert [(r["arch"], r["batch"], r["status"]) for r in rows] == [
        ("hostile_forge", 1, "ok"),
        ("hostile_forge", 2, "ok"),
    ]
    assert all(r["latency_ms"] != 0.001 and r["n_samples"] >= 2 and r["family"] == "hostile" for r in rows)


def test_daemons_and_double_forks_of_a_model_do_not_outlive_its_job(hostile):
    # A daemon and a double-forked grandchild from each configuration's model (batches 1 and 2).
    assert len(_pids(hostile.pids, "daemon")) == 2 * 2, "the model did not leave its daemons"
    until("the daemons to be gone", lambda: not any(_alive(p) for p in _pids(hostile.pids, "daemon")), 10)


def test_a_builder_that_exits_while_counted_is_an_error_row(hostile):
    """``sys.exit(1)`` in the builder (the shared run's ``HOSTILE_EXIT_BUILD=exit``): an error row, the run goes on."""
    rows = hostile.rows
    assert rows["hostile_exitbuild"]["status"] == "error" and rows["fake_ok"]["status"] == "ok"
    assert "SystemExit" in rows["hostile_exitbuild"]["error"]


def test_a_builder_that_raises_keyboard_interrupt_while_counted_is_an_error_row(tmp_path):
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "hostile_exitbuild", "--arch", "fake_ok", *HOSTILE, "--static",
                   "--out", str(out), env={"HOSTILE_EXIT_BUILD": "kbi"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {r["arch"]: r for r in _doc(out)["rows"]}
    assert rows["hostile_exitbuild"]["status"] == "error" and rows["fake_ok"]["status"] == "ok"
    assert "KeyboardInterrupt" in rows["hostile_exitbuild"]["error"]


def test_a_model_that_exits_is_an_error_row_that_says_so(hostile):
    rows = hostile.rows
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
    cmd = (f"{shlex.join(command())} profile --arch fake_ok {' '.join(HOSTILE)} {' '.join(FAST)} "
           f"--out {shlex.quote(str(out))} <&- >&- 2>&-")  # fmt: skip
    proc = subprocess.run(["bash", "-c", cmd], timeout=180, env=vbench_env(plugins=True), cwd=ROOT)
    assert proc.returncode == 0
    assert [(r["arch"], r["status"]) for r in _doc(out)["rows"]] == [("fake_ok", "ok")]
