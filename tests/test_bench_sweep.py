"""Scale-out: shards, merging, --only-missing, GPU slots, the submitit local executor, bad input."""

import itertools
import json
import random
import subprocess
import sys
import textwrap

import pytest
import torch
from clirun import ROOT, vbench, vbench_env, vbench_here

from bench.errors import UsageError
from bench.measure.rows import make_row
from bench.results.merge import merge_runs
from bench.results.schema import row_key
from bench.results.store import load_results
from bench.run.plan import Config, Request, make_plan, resolve_gpus
from bench.run.runner import run_plan
from bench.run.shard import assign_shards, parse_shard, prepare_sweep, remaining_plan, select_shard

pytestmark = pytest.mark.slow  # worker processes and signals: the slow tier, which CI always runs

STATIC = Request(archs=["r3d_18", "mc3_18", "r2d_18", "rmc4_18", "fr2d_18"], device="cpu", static=True,
                 batches=[1, 2])  # fmt: skip


def _same(rows):
    """Rows without the columns that differ from run to run."""
    return sorted(json.dumps({k: v for k, v in r.items() if k != "timestamp"}, sort_keys=True) for r in rows)


# ---------------------------------------------------------------- sharding


@pytest.mark.parametrize("n", range(1, 8))
def test_every_job_lands_in_exactly_one_shard(n):
    for seed in range(20):
        rng = random.Random(seed)
        costs = {f"job{i}": rng.choice([0.0, 1.0, rng.uniform(0, 100)]) for i in range(rng.randint(0, 30))}
        shards = assign_shards(costs, n)
        assert set(shards) == set(costs) and all(1 <= s <= n for s in shards.values())
        load = [sum(c for j, c in costs.items() if shards[j] == s) for s in range(1, n + 1)]
        if costs:  # greedy longest-first: no shard exceeds another by more than the largest job
            assert max(load) - min(load) <= max(costs.values()) + 1e-9
        assert assign_shards(dict(reversed(list(costs.items()))), n) == shards  # order does not matter


@pytest.mark.parametrize("n", range(1, 8))
def test_shards_of_a_real_plan_partition_its_jobs(n):
    plan = make_plan(STATIC)
    parts = [select_shard(plan, i, n) for i in range(1, n + 1)]
    ids = [j.id for p in parts for j in p.jobs]
    assert sorted(ids) == sorted(j.id for j in plan.jobs)


def test_merging_the_shards_of_a_static_sweep_gives_the_unsharded_rows(tmp_path):
    plan = make_plan(STATIC)
    whole = run_plan(plan, tmp_path / "whole").rows
    dirs = []
    for i in (1, 2, 3):
        sweep = prepare_sweep(plan, shard=f"{i}/3")
        run_plan(sweep.plan, tmp_path / f"s{i}", extra_env=sweep.environment)
        dirs.append(tmp_path / f"s{i}")
    merged = merge_runs(dirs)
    assert _same(merged.rows) == _same(whole)
    assert [r["arch"] for r in merged.rows] == [r["arch"] for r in whole]  # the sweep's order
    assert not merged.missing and not merged.duplicated
    partial = merge_runs(dirs[:2])
    assert len(partial.missing) == len(select_shard(plan, 3, 3).jobs) > 0
    twice = merge_runs([dirs[0], dirs[0]])
    assert len(twice.duplicated) == len(load_results(dirs[0])[0])


def test_only_missing_measures_only_what_a_run_lacks(tmp_path):
    plan = make_plan(STATIC)
    first = prepare_sweep(plan, shard="1/2")
    run_plan(first.plan, tmp_path, extra_env=first.environment)
    done = load_results(tmp_path)[0]
    # An error row counts as missing, an oom row as done.
    rows = [dict(done[0], status="error"), dict(done[1], status="oom"), *done[2:]]
    todo, kept = remaining_plan(plan, rows)
    todo_keys = {row_key(r) for r in run_plan(todo, tmp_path / "todo").rows}
    assert row_key(done[0]) in todo_keys and row_key(done[1]) not in todo_keys
    assert len(kept) == len(done) - 1 and todo.n_rows == plan.n_rows - len(kept)
    # Rows of configurations that this plan does not hold stay in the folder.
    other = dict(done[2], batch=64)
    assert other in remaining_plan(plan, [*rows, other])[1]

    sweep = prepare_sweep(plan, only_missing_in=tmp_path)
    result = run_plan(sweep.plan, tmp_path, previous=sweep.previous, extra_env=sweep.environment)
    assert sweep.plan.n_rows == plan.n_rows - len(done)
    assert _same(result.rows) == _same(run_plan(plan, tmp_path / "whole").rows)


def test_only_missing_through_the_command_line(tmp_path):
    args = ["profile", "--arch", "r3d_18", "--arch", "mc3_18", "--static", "--out", str(tmp_path)]
    assert vbench_here(*args, "--shard", "1/2").returncode == 0
    result = vbench_here(*args, "--only-missing")
    assert result.returncode == 0 and "kept 1 rows of the folder; measured 1" in result.stdout + result.stderr
    assert sorted(r["arch"] for r in load_results(tmp_path)[0]) == ["mc3_18", "r3d_18"]


# ---------------------------------------------------------------- parallel workers


def test_gpu_slots_run_one_worker_each_and_a_crash_loses_nothing(tmp_path):
    """Four jobs on two slots (CUDA_VISIBLE_DEVICES values; on a CPU machine torch ignores them)."""
    log = tmp_path / "slots.log"
    script = textwrap.dedent(f"""
        import fake_archs
        from pathlib import Path
        from bench.run.plan import Request, make_plan
        from bench.run.runner import run_plan
        from bench.results.records import SamplePolicy
        plan = make_plan(Request(archs=["fake_slot1", "fake_slot2", "fake_crash", "fake_slot3", "fake_slot4"],
                                 device="cpu", batches=[1, 2], policy=SamplePolicy(warmup=0, repeats=3)))
        from bench.run.plugins import load_plugins
        run_plan(plan, Path({str(tmp_path / "run")!r}), slots=("0", "1"), plugins=load_plugins(["fake_archs"]))
    """)
    env = vbench_env({"VBENCH_SLOT_LOG": str(log)}, plugins=True, path=[ROOT])
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = load_results(tmp_path / "run")[0]
    status = {(r["arch"], r["batch"]): r["status"] for r in rows}
    assert status.pop(("fake_crash", 2)) == "error" and set(status.values()) == {"ok"} and len(status) == 9
    assert [r["arch"] for r in rows][:2] == ["fake_slot1", "fake_slot1"]  # plan order, whatever finished first
    spans = [json.loads(line) for line in log.read_text().splitlines()]
    assert {s[0] for s in spans} == {"0", "1"}  # both slots used
    for slot in ("0", "1"):
        mine = sorted((a, b) for s, a, b in spans if s == slot)
        assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(mine))  # never two at once on one slot


def test_counting_in_parallel_processes_gives_the_same_plan():
    one = make_plan(STATIC)
    two = make_plan(Request(**{**STATIC.__dict__, "count_workers": 2}))
    assert [(j.id, j.counts) for j in one.jobs] == [(j.id, j.counts) for j in two.jobs]


# ---------------------------------------------------------------- the cluster path, run locally


def test_submitit_local_executor_runs_a_sharded_sweep_end_to_end(tmp_path):
    """Also issue 19's item 12b: every shard folder gets its Markdown table (``run_shard`` left it empty)."""
    pytest.importorskip("submitit")
    out = tmp_path / "run"
    result = vbench_here("profile", "--arch", "r3d_18", "--arch", "mc3_18", "--static", "--executor", "local",
                         "--shards", "2", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows, env = load_results(out)
    assert sorted(r["arch"] for r in rows) == ["mc3_18", "r3d_18"] and all(r["status"] == "ok" for r in rows)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["1-of-2", "2-of-2"]
    assert len(env["merged_from"]) == 2
    tables = {p.parent.name: p.read_text() for p in (out / "shards").glob("*/results.md")}
    assert set(tables) == {"1-of-2", "2-of-2"}
    held = [arch for text in tables.values() for arch in ("r3d_18", "mc3_18") if f"| {arch} |" in text]
    assert sorted(held) == ["mc3_18", "r3d_18"]


def test_a_killed_array_task_loses_no_other_task_rows_and_its_rest_becomes_error_rows(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "run"
    args = ["profile", "--arch", "fake_ok", "--arch", "fake_slot1", "--arch", "fake_killtask", "--arch", "fake_slot2",
            "--plugin", "fake_archs", "--device", "cpu", "--warmup", "0", "--repeats", "2", "--batch", "1,2",
            "--executor", "local", "--shards", "2", "--out", str(out)]  # fmt: skip
    # In a subprocess, so that the fake architectures stay out of this process's registry.
    proc = vbench(*args, cwd=tmp_path, plugins=True, path=[ROOT])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed" in proc.stdout and "recorded as error/timeout rows" in proc.stdout
    rows = load_results(out)[0]
    assert len(rows) == 8  # every configuration has its row
    status = {(r["arch"], r["batch"]): r["status"] for r in rows}
    assert status[("fake_killtask", 1)] == status[("fake_killtask", 2)] == "error"
    killed = next(r for r in rows if r["arch"] == "fake_killtask")
    assert "array task" in killed["error"] and "did not finish" in killed["error"]
    ok = [a for (a, _), s in status.items() if s == "ok"]
    assert ok  # the other task's jobs finished


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3/2"], "--shard I/N needs 1 <= I <= N; got '3/2'"),
        (["--shard", "0/0"], "--shard I/N needs 1 <= I <= N; got '0/0'"),
        (["--shard", "a/b"], "--shard takes I/N with whole numbers"),
        (["--gpus", "0"], "--gpus needs --device cuda"),
        (["--gpus", "x"], "--gpus takes GPU indices"),
        (["--executor", "pbs"], "unknown executor 'pbs'"),
        (["--executor", "local", "--shard", "1/2"], "--executor runs every shard itself"),
        (["--only-missing"], "--only-missing needs --out"),
        (["--count-workers", "0"], "--count-workers must be at least 1"),
    ],
)
def test_bad_sweep_options_exit_2_with_one_line(args, message, tmp_path):
    out = [] if "--only-missing" in args else ["--out", str(tmp_path / "out")]
    result = vbench_here("profile", "--arch", "r3d_18", "--static", "--device", "cpu", *args, *out)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_gpu_that_is_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_gpus("1,0", "cuda") == ["1", "0"]
    with pytest.raises(UsageError, match=r"--gpus 0,5: no GPU 5 here; torch sees 2 \(0..1\)"):
        resolve_gpus("0,5", "cuda")
    with pytest.raises(UsageError, match="names a GPU twice"):
        resolve_gpus("1,1", "cuda")
    assert parse_shard("2/4") == (2, 4)


def test_merging_runs_from_different_machines_is_refused(tmp_path):
    def save(name, env):
        config = Config(arch="r3d_18", batch=1, frames=16, height=112, width=112, device="cuda")
        row = make_row(config, family="resnet", env=env, counts=None)
        row.update(n_samples=5, latency_ms=1.0)
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"schema_version": 1, "environment": env,
                                                                  "rows": [row]}))  # fmt: skip
        return str(tmp_path / name)

    a = save("a", {"device_name": "NVIDIA H100", "torch_version": "2.13.0"})
    b = save("b", {"device_name": "NVIDIA A100", "torch_version": "2.13.0"})
    result = vbench_here("merge", a, b, "--out", tmp_path / "m")
    assert result.returncode == 2 and "different device_name" in result.stderr and "--allow-mixed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    result = vbench_here("merge", a, b, "--out", tmp_path / "m", "--allow-mixed")
    assert result.returncode == 1  # merged, but both hold the same configuration
    assert "configurations held twice" in result.stdout + result.stderr
    missing = vbench_here("merge", tmp_path / "nope", "--out", tmp_path / "m2")
    assert missing.returncode == 2 and "no run folder" in missing.stderr
