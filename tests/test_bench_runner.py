"""The runner end to end: worker processes, failures that lose nothing, files on disk.

These run the real CLI in a subprocess with the ``fake_archs`` plugin (tests/plugins),
so that the fake architectures never enter this process's registry.
"""

import json
import signal
import subprocess
import sys

import pytest
import torch
from clirun import made_once, vbench, vbench_env
from waiting import until

from bench.results.records import SamplePolicy
from bench.results.store import load_results
from bench.run.plan import Request, make_plan
from bench.run.runner import run_plan

pytestmark = pytest.mark.slow  # worker processes and signals: the slow tier, which CI always runs

FAST = ["--device", "cpu", "--warmup", "0", "--repeats", "2"]


def _vbench(*args, timeout=120):
    return vbench(*args, timeout=timeout, plugins=True)


def _rows(out):
    return {(r["arch"], r["batch"]): r for r in load_results(out)[0]}


FAULTS = ["fake_oom", "fake_crash", "fake_hang", "fake_broken", "fake_ok"]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """One run of every failing fake model, then ``fake_ok``, with ``--fail-on-error``; made once a session.

    (Without ``--fail-on-error`` a run with failed rows exits 0: the hostile runs of test_trust_runs.py check it.)
    """

    def run(folder):
        archs = [a for name in FAULTS for a in ("--arch", name)]
        return _vbench("profile", *archs, "--plugin", "fake_archs", "--batch", "1,2,3", "--timeout", "10", *FAST,
                       "--fail-on-error", "--out", str(folder / "run"))  # fmt: skip

    folder, proc = made_once(tmp_path_factory.getbasetemp(), "runner-faulty", run)
    return proc, _rows(folder / "run")


def test_oom_crash_and_hang_each_become_a_status_row_and_nothing_is_lost(faulty):
    proc, rows = faulty
    assert len(rows) == 15
    # Out of memory in one configuration: an oom row, and the worker goes on.
    assert [rows["fake_oom", b]["status"] for b in (1, 2, 3)] == ["ok", "oom", "oom"]
    assert "out of memory" in rows["fake_oom", 2]["error"]
    # A crash: the finished row stays, the unfinished ones are errors with the exit code.
    assert [rows["fake_crash", b]["status"] for b in (1, 2, 3)] == ["ok", "error", "error"]
    assert "exited with code 3" in rows["fake_crash", 2]["error"]
    # A hang: killed after the timeout, every unfinished row a timeout row.
    assert [rows["fake_hang", b]["status"] for b in (1, 2, 3)] == ["timeout"] * 3
    # And the next architecture still runs.
    assert all(rows["fake_ok", b]["status"] == "ok" for b in (1, 2, 3))
    # Counting columns are filled whatever happened to the timing.
    counted = [r for (arch, _), r in rows.items() if arch != "fake_broken"]
    assert all(r["params"] == 3 * 4 + 4 + 4 * 400 + 400 and r["gmacs"] is not None for r in counted)
    assert (
        rows["fake_ok", 1]["n_samples"] >= 2
        and len(rows["fake_ok", 1]["samples_ms"]) == rows["fake_ok", 1]["n_samples"]
    )
    assert "10 of 15 rows did not finish ok" in proc.stdout


def test_fail_on_error_exits_1(faulty):
    proc, _ = faulty
    assert proc.returncode == 1, proc.stderr


def test_a_model_that_cannot_be_built_gets_error_rows_and_the_others_run(faulty):
    _, rows = faulty
    assert [rows["fake_broken", b]["status"] for b in (1, 2, 3)] == ["error"] * 3
    assert rows["fake_broken", 1]["error"].startswith("AttributeError while building or counting")
    assert rows["fake_broken", 1]["params"] is None
    assert [rows["fake_ok", b]["status"] for b in (1, 2, 3)] == ["ok"] * 3


def test_a_slow_worker_start_is_not_taken_for_a_hang(tmp_path, monkeypatch):
    monkeypatch.setenv("VBENCH_SLOW_IMPORT", "1")
    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "fake_ok", "--plugin", "fake_archs", "--plugin", "slow_start",
                   "--timeout", "2", *FAST, "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _rows(out)["fake_ok", 1]["status"] == "ok"  # 4 s to start, 2 s allowed per row: still ok


def test_an_interrupted_run_keeps_every_finished_row(tmp_path):
    env = vbench_env(plugins=True)
    cmd = [sys.executable, "-m", "bench.cli", "profile", "--arch", "fake_ok", "--arch", "fake_hang",
           "--plugin", "fake_archs", *FAST, "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl, csv = tmp_path / "results.jsonl", tmp_path / "results.csv"
    # The CSV is rewritten once an architecture is done: wait for fake_ok's, and for fake_hang's worker to have
    # started (its log is opened as it starts), then kill the run mid fake_hang.
    until("fake_ok in results.csv", lambda: csv.exists() and "fake_ok" in csv.read_text(), 60)
    until("fake_hang's worker", lambda: (tmp_path / "logs" / "fake_hang.log").exists(), 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["arch"], r["status"]) for r in rows] == [("fake_ok", "ok")]
    assert [line.split(",")[0] for line in csv.read_text().splitlines()[1:]] == ["fake_ok"]


def test_static_run_writes_all_files_without_workers(tmp_path):
    plan = make_plan(Request(archs=["r3d_18", "mc3_18"], device="cpu", batches=[1, 8], static=True, mode="both"))
    seen = []
    result = run_plan(plan, tmp_path, on_row=seen.append, markdown=lambda rows: f"{len(rows)} rows\n")
    assert len(seen) == len(result.rows) == 8
    assert (tmp_path / "results.md").read_text() == "8 rows\n"
    rows, env = load_results(tmp_path)
    assert env["torch_version"] == torch.__version__
    r = next(r for r in rows if r["arch"] == "r3d_18" and r["batch"] == 8 and r["mode"] == "train")
    assert r["params"] == 33_371_472 and round(r["gmacs"], 3) == 40.697 and r["gflops"] == 2 * r["gmacs"]
    assert r["train_gmacs"] > 2.9 * r["gmacs"] and r["output_shape"] == "8x400"
    assert r["status"] == "ok" and r["latency_ms"] is None
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    from bench.results.columns import REQUIRED_COLUMNS

    assert set(REQUIRED_COLUMNS) <= set(header)


def test_real_worker_measures_a_small_clip(tmp_path):
    plan = make_plan(
        Request(
            archs=["r2plus1d_18"],
            device="cpu",
            frames=[8],
            sizes=[32],
            mode="both",
            policy=SamplePolicy(warmup=1, repeats=3),
        )
    )
    result = run_plan(plan, tmp_path)
    assert [r["status"] for r in result.rows] == ["ok", "ok"], result.rows
    for r in result.rows:
        assert r["n_samples"] == 3 and r["latency_ms"] > 0 and r["peak_mem_mib"] > 0
        assert r["latency_min_ms"] <= r["latency_ms"] and r["clips_per_s"] == pytest.approx(1000 / r["latency_ms"])
        assert r["threads"] == result.environment["torch_threads"]


def test_the_parent_never_initialises_cuda():
    make_plan(Request(archs=["r3d_18"], device="auto", static=True))
    assert not torch.cuda.is_initialized()
