"""Rounds from the command line: ``vbench merge --rounds`` (runs timed in turns, e.g. base and head in CI),
a ``--rounds`` run cut short, and ``--rounds`` refused with ``--executor``.

The fast tests write run folders by hand and go through the CLI (typer's runner) or the runner with a fake
worker; the real signal test starts processes and is in the slow tier.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
from clirun import ROOT, command, vbench, vbench_env, vbench_here
from waiting import until

from bench.results.store import write_rows
from bench.run.lifetime import RunInterrupted
from bench.run.rounds import combine_rounds

ENV = {"torch_version": "2.13.0", "vbench_version": "0.1", "cpu_name": "test cpu", "torch_threads": 2,
       "device_name": "test cpu"}  # fmt: skip


def _row(arch, samples, contended=False, **over):
    from test_bench_report import _row as row

    return row(arch, "x", latency_ms=sorted(samples)[len(samples) // 2], samples_ms=list(samples),
               n_samples=len(samples), contended=contended, cpu_share=0.3 if contended else 0.95, **over)  # fmt: skip


def _run(tmp_path, name, rows, **env):
    write_rows(tmp_path / name, {**ENV, **env}, rows)
    return str(tmp_path / name)


def _merged(path):
    return {r["arch"]: r for r in json.loads((Path(path) / "results.json").read_text())["rows"]}


# ---------------------------------------------------------------- vbench merge --rounds


def test_merge_rounds_combines_the_runs_as_profile_rounds_combines_its_rounds(tmp_path):
    rounds = [
        [_row("a", [9, 10, 11]), _row("b", [20, 21, 22])],
        [_row("a", [11, 12, 13]), _row("b", [19, 20, 21])],
        [_row("a", [39, 40, 41], contended=True), _row("b", [22, 23, 24])],
    ]
    runs = [_run(tmp_path, f"r{i}", rows) for i, rows in enumerate(rounds)]
    result = vbench_here("merge", "--rounds", *runs, "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _merged(tmp_path / "m")
    # a: the median of the quiet rounds' medians, 10 and 12 (the contended round's 40 is left out).
    assert rows["a"]["latency_ms"] == 11.0 and rows["a"]["round_latency_ms"] == [10.0, 12.0, 40.0]
    assert rows["a"]["round_contended"] == [False, False, True] and rows["a"]["contended"] is False
    assert rows["a"]["samples_ms"] == [9, 10, 11, 11, 12, 13] and rows["a"]["contended_samples_ms"] == [39, 40, 41]
    assert rows["b"]["latency_ms"] == 21.0 and rows["b"]["rounds"] == 3  # median of 21, 20 and 23
    for arch in ("a", "b"):  # the same function as profile --rounds, on the same rows
        expected = combine_rounds([r for rs in rounds for r in rs if r["arch"] == arch], None, None)
        assert {k: rows[arch][k] for k in ("latency_ms", "samples_ms", "n_samples", "latency_ci_low_ms")} == {
            k: expected[k] for k in ("latency_ms", "samples_ms", "n_samples", "latency_ci_low_ms")
        }
    env = json.loads((tmp_path / "m" / "results.json").read_text())["environment"]
    assert env["rounds"] == 3 and env["merged_from"] == runs
    assert [r["arch"] for r in json.loads((tmp_path / "m" / "results.json").read_text())["rows"]] == ["a", "b"]


def test_base_and_head_merged_from_alternating_rounds_go_through_compare(tmp_path):
    from bench.results.store import load_results

    # Base rounds 1-3 and head rounds 1-3, as the workflow makes them; the head's round 2 drifted (+50 %).
    base = [_run(tmp_path, f"base{i}", [_row("a", [t - 1, t, t + 1] * 4)]) for i, t in enumerate((10, 10.2, 9.9))]
    head = [_run(tmp_path, f"head{i}", [_row("a", [t - 1, t, t + 1] * 4)]) for i, t in enumerate((10.1, 15, 10))]
    for side, runs in (("base", base), ("head", head)):
        assert vbench_here("merge", "--rounds", *runs, "--out", str(tmp_path / side)).returncode == 0
    rows, env = load_results(tmp_path / "head")  # the merged folder reads back as a checked run
    assert rows[0]["latency_ms"] == 10.1 and env["rounds"] == 3  # the drifted round moves nothing
    result = vbench_here("compare", str(tmp_path / "base"), str(tmp_path / "head"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_merge_rounds_lists_a_configuration_some_rounds_lack_and_exits_1(tmp_path):
    a = _run(tmp_path, "r1", [_row("a", [9, 10, 11]), _row("b", [20, 21, 22])])
    b = _run(tmp_path, "r2", [_row("a", [11, 12, 13])])
    result = vbench_here("merge", "--rounds", a, b, "--out", str(tmp_path / "m"))
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert "configurations some rounds lack" in said and "(1 of 2)" in said
    rows = _merged(tmp_path / "m")
    assert rows["a"]["rounds"] == 2 and rows["b"]["rounds"] == 1 and rows["b"]["latency_ms"] == 21.0


def test_merge_rounds_refuses_bad_input_in_one_line_with_exit_2(tmp_path):
    a = _run(tmp_path, "r1", [_row("a", [9, 10, 11])])
    b = _run(tmp_path, "r2", [_row("a", [11, 12, 13])], cpu_name="another cpu")
    from test_bench_report import _row as counted

    static = _run(tmp_path, "s1", [counted("a", "x")])
    static2 = _run(tmp_path, "s2", [counted("a", "x")])
    for args, message in (
        ([a], "two or more runs"),
        ([a, a], "given twice"),
        ([a, b], "different cpu_name"),
        ([static, static2], "no timed row"),
    ):
        result = vbench_here("merge", "--rounds", *args, "--out", str(tmp_path / "m"))
        assert result.returncode == 2, (args, (result.stdout + result.stderr))
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- a --rounds run cut short


def test_a_rounds_run_interrupted_in_round_2_keeps_each_configuration_from_its_finished_rounds(tmp_path, monkeypatch):
    import bench.run.runner
    from bench.measure.timing import Measurement
    from bench.results.records import Config, Job, Plan
    from bench.run.plan import Request
    from bench.run.runner import job_row, run_plan

    def job(arch):  # planned by hand: counting on the meta device is not what this tests
        return Job(arch, (Config(arch=arch, batch=1, frames=8, height=32, width=32, device="cpu"),), {}, id=arch)

    plan = Plan(Request(archs=("r3d_18", "mc3_18"), device="cpu"), "cpu", (job("r3d_18"), job("mc3_18")))
    started: list[str] = []

    def fake_worker(job, plan_, timeout, plugins, env, env_out, log_dir, slot=None, max_memory=None, stop=None):
        started.append(job.arch)
        if len(started) == 4:  # round 2, mc3_18: the user presses Ctrl-C
            raise KeyboardInterrupt
        t = {"r3d_18": 0.010, "mc3_18": 0.020}[job.arch] * len(started)
        for config in job.configs:
            yield job_row(job, config, env, measurement=Measurement((t, t, t)), contention={"contended": False})

    monkeypatch.setattr(bench.run.runner, "_run_worker", fake_worker)
    with pytest.raises(RunInterrupted) as caught:
        run_plan(plan, tmp_path / "run", rounds=3)
    assert caught.value.kept == 2 and caught.value.short_rounds == 2
    assert caught.value.exit_code == 130  # Ctrl-C's, as before
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert doc["state"] == "interrupted"
    rows = {r["arch"]: r for r in doc["rows"]}
    # r3d_18 ran in rounds 1 and 3 of the order (10 and 30 ms); mc3_18 in round 1 only (40 ms).
    assert rows["r3d_18"]["rounds"] == 2 and rows["r3d_18"]["round_latency_ms"] == pytest.approx([10.0, 30.0])
    assert rows["r3d_18"]["latency_ms"] == pytest.approx(20.0)
    assert rows["mc3_18"]["rounds"] == 1 and rows["mc3_18"]["latency_ms"] == pytest.approx(40.0)
    # --only-missing with the same --rounds measures them again: neither has 3 rounds.
    from bench.run.shard import remaining_plan

    left, kept = remaining_plan(plan, doc["rows"], rounds=3)
    assert [j.arch for j in left.jobs] == ["r3d_18", "mc3_18"] and kept == []
    left, kept = remaining_plan(plan, doc["rows"], rounds=2)
    assert [j.arch for j in left.jobs] == ["mc3_18"] and [r["arch"] for r in kept] == ["r3d_18"]


def test_rounds_with_an_executor_is_refused_in_one_line_with_exit_2():
    for extra in (["--rounds", "2"], ["--settle", "5"]):
        result = vbench_here("profile", "--arch", "r3d_18", "--device", "cpu", "--executor", "local", *extra)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "do not go with --executor" in lines[0], result.stderr


@pytest.mark.slow
def test_a_signal_in_round_2_keeps_the_finished_rounds_and_the_resume_command_finishes_the_run(tmp_path):
    """SIGTERM to a real run in round 2. (Ctrl-C in round 2 is the in-process test above, exit 130; what a
    signal does to every run, Ctrl-C's SIGINT and SIGTERM both, is test_trust_runs.py's signal test.)"""
    sig = signal.SIGTERM
    out, mark = tmp_path / "run", tmp_path / "first"
    env = vbench_env({"ROUND_HANG_MARK": str(mark)}, plugins=True)
    args = ["profile", "--arch", "fake_ok", "--arch", "round_hang", "--plugin", "fake_archs", "--plugin",
            "round_archs", "--device", "cpu", "--warmup", "0", "--repeats", "2", "--rounds", "2", "--out", str(out)]  # fmt: skip
    run = subprocess.Popen([*command(), *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # fmt: skip
    try:
        # round_hang's second worker (round 2) hangs once it has noted its pid.
        until("round 2's hanging worker", lambda: mark.with_suffix(".hanging").exists(), 120)
        run.send_signal(sig)
        _, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 128 + sig, err
    doc = json.loads((out / "results.json").read_text())
    rows = {r["arch"]: r for r in doc["rows"]}
    assert doc["state"] == "interrupted" and set(rows) == {"fake_ok", "round_hang"}
    assert rows["fake_ok"]["rounds"] == 2 and rows["round_hang"]["rounds"] == 1
    assert len(rows["round_hang"]["samples_ms"]) == 2 and rows["round_hang"]["status"] == "ok"
    assert "kept 2 rows (1 from fewer rounds than asked: measured again)" in err and "Traceback" not in err
    argv = shlex.split(err.split("finish with: ", 1)[1].strip())
    assert argv[:2] == ["vbench", "profile"] and "--only-missing" in argv and "--rounds" in argv
    done = vbench(*argv[1:], plugins=True)  # without ROUND_HANG_MARK: no hang this time
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["state"] == "complete"
    assert sorted((r["arch"], r["status"], r["rounds"]) for r in doc["rows"]) == [
        ("fake_ok", "ok", 2),
        ("round_hang", "ok", 2),
    ]
