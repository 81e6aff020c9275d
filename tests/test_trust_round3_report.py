"""Issue 19 ("Trust, round 3"), the report, merge, path and run items: each through the real ``vbench`` command.

Every test here failed on the code before its fix: the item it covers is named in its docstring.
"""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from clirun import ROOT, made_once, vbench

from bench.cli import app
from bench.commands.common import path_parameters
from bench.commands.profile import _CLUSTER_OPTIONS, NOT_RESUMED, profile_command, profile_options
from bench.results.compare import NOT_REFRESHED

pytestmark = pytest.mark.slow  # worker processes and signals: the slow tier, which CI always runs

FAST = ["--device", "cpu", "--warmup", "0", "--repeats", "2"]


def _vbench(*args: object, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return vbench(*args, cwd=cwd, env=env, plugins=True, path=[ROOT])


def _one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbench: error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two static runs of r3d_18: the published configuration (400 classes) and a 2-class head (made once a
    session)."""

    def make(root: Path) -> subprocess.CompletedProcess[str]:
        for name, extra in (("k400", []), ("two", ["--arch-kwargs", "num_classes=2"])):
            done = _vbench("profile", "--arch", "r3d_18", "--static", *extra, "--out", root / name)
            if done.returncode:
                break
        return done

    root, done = made_once(tmp_path_factory.getbasetemp(), "round3-report-runs", make)
    assert done.returncode == 0, done.stderr
    return {"k400": root / "k400", "two": root / "two"}


def _evaluation(folder: Path, top1: float, num_classes: int, arch: str = "r3d_18") -> Path:
    """An ``evaluation.json`` as ``vbench evaluate`` writes it (the fields the report reads)."""
    folder.mkdir(parents=True)
    record = {"arch": arch, "input": "16x112x112", "top1": top1, "top5": 100.0, "views": "5 clips x 1 crop",
              "dataset": "mine", "source": "measured: vbench evaluate, protocol torchvision, 8 videos"}  # fmt: skip
    doc = {"schema": "vbench-evaluation", "arch": arch, "state": "complete", "weights": {"num_classes": num_classes},
           "classes": {"count": num_classes}, "counts": {"listed": 8, "evaluated": 8}, "accuracy_record": record}  # fmt: skip
    (folder / "evaluation.json").write_text(json.dumps(doc))
    return folder


def _tradeoff(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "tradeoff.csv").open() as f:
        return {r["arch"]: r for r in csv.DictReader(f)}


# ---------------------------------------------------------------- item 5: the full configuration joins


def test_accuracies_join_on_the_whole_configuration_and_published_only_on_the_published_one(tmp_path, runs):
    """Item 5: a 2-class evaluation joins the 2-class row only; the 400-class row keeps its own accuracy."""
    two = _evaluation(tmp_path / "eval-two", top1=87.5, num_classes=2)
    k400 = _evaluation(tmp_path / "eval-k400", top1=55.0, num_classes=400)
    done = _vbench("report", runs["k400"], runs["two"], two, k400, "--out", tmp_path / "rep", "--no-plots")
    assert done.returncode == 0, done.stderr
    rows = _tradeoff(tmp_path / "rep")
    assert (rows["r3d_18"]["top1"], rows["r3d_18"]["accuracy_kind"]) == ("55.0", "measured")
    assert (rows["r3d_18(num_classes=2)"]["top1"], rows["r3d_18(num_classes=2)"]["accuracy_kind"]) == (
        "87.5", "measured"
    )  # fmt: skip

    # Without evaluations: the published Kinetics-400 top-1 (64.7, Tran et al.) is the 400-class row's only.
    done = _vbench("report", runs["k400"], runs["two"], "--out", tmp_path / "pub", "--no-plots")
    assert done.returncode == 0, done.stderr
    rows = _tradeoff(tmp_path / "pub")
    assert (rows["r3d_18"]["top1"], rows["r3d_18"]["accuracy_kind"]) == ("64.7", "published")
    assert rows["r3d_18(num_classes=2)"]["top1"] == "" and rows["r3d_18(num_classes=2)"]["accuracy_kind"] == ""


def test_an_evaluation_that_no_run_holds_is_said(tmp_path, runs):
    """Item 5: a 2-class evaluation beside a 400-class run only is not joined, and the report says so."""
    two = _evaluation(tmp_path / "eval-two", top1=87.5, num_classes=2)
    done = _vbench("report", runs["k400"], two, "--out", tmp_path / "rep", "--no-plots")
    assert done.returncode == 0, done.stderr
    assert _tradeoff(tmp_path / "rep")["r3d_18"]["accuracy_kind"] == "published"
    assert "r3d_18(num_classes=2) at 16x112x112, which no run holds" in done.stderr


def test_a_user_accuracy_of_a_2_class_head_joins_its_row_only(tmp_path, runs):
    """Item 5: the accuracy file's optional ``arch_kwargs`` column names the configuration."""
    acc = tmp_path / "acc.csv"
    acc.write_text('arch,input,top1,source,arch_kwargs\nr3d_18,16x112x112,91.0,my lab,"{""num_classes"": 2}"\n')
    done = _vbench("report", runs["k400"], runs["two"], "--accuracy", acc, "--out", tmp_path / "rep", "--no-plots")
    assert done.returncode == 0, done.stderr
    rows = _tradeoff(tmp_path / "rep")
    assert (rows["r3d_18(num_classes=2)"]["top1"], rows["r3d_18(num_classes=2)"]["accuracy_kind"]) == ("91.0", "yours")
    assert rows["r3d_18"]["accuracy_kind"] == "published"


def test_a_number_of_the_accuracy_file_that_an_evaluation_replaces_is_said(tmp_path, runs):
    """Found by a hostile tester: the file's number was dropped without a word when an evaluation measured the same
    configuration. The measured one wins (it is what this machine measured), and the report says so."""
    acc = tmp_path / "acc.csv"
    acc.write_text("arch,input,top1,source\nr3d_18,16x112x112,42.0,my lab\n")
    measured = _evaluation(tmp_path / "eval-a", top1=55.0, num_classes=400)
    done = _vbench("report", runs["k400"], measured, "--accuracy", acc, "--out", tmp_path / "rep", "--no-plots")
    assert done.returncode == 0, done.stderr
    row = _tradeoff(tmp_path / "rep")["r3d_18"]
    assert (row["top1"], row["accuracy_kind"]) == ("55.0", "measured")
    note = next(line for line in done.stderr.splitlines() if "42.0" in line)
    assert f"accuracy file '{acc}', record 1" in note and f"evaluation '{measured}' measured it" in note


# ---------------------------------------------------------------- item 4: two evaluations of one configuration


def test_two_evaluations_of_one_configuration_are_refused_naming_both(tmp_path, runs):
    """Item 4: refused (exit 2, one line naming both folders), never one silently dropped."""
    a = _evaluation(tmp_path / "eval-a", top1=55.0, num_classes=400)
    b = _evaluation(tmp_path / "eval-b", top1=61.0, num_classes=400)
    line = _one_line_error(_vbench("report", runs["k400"], a, b, "--out", tmp_path / "rep", "--no-plots"))
    assert f"evaluation '{a}'" in line and f"evaluation '{b}'" in line and "r3d_18 at 16x112x112" in line
    assert not (tmp_path / "rep").exists()
    # The same two, one of them of a 2-class head: two configurations, both kept.
    c = _evaluation(tmp_path / "eval-c", top1=90.0, num_classes=2)
    done = _vbench("report", runs["k400"], runs["two"], a, c, "--out", tmp_path / "rep", "--no-plots")
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- item 8: NAME_MAX in every path parameter


def _commands() -> dict[str, Any]:
    return typer.main.get_command(app).commands  # type: ignore[attr-defined,no-any-return]


def _path_cases() -> list[tuple[str, str]]:
    cases = []
    for name, command in _commands().items():
        for param in path_parameters(command.callback.__wrapped__).values():
            cases.append((name, param))
    return cases


def test_every_path_option_is_found():
    """Item 8: the shared check sees every option that takes a path (the ones the issue names among them)."""
    cases = set(_path_cases())
    for case in [("profile", "--out"), ("profile", "--weights"), ("profile", "--plugin"), ("inspect", "--trace"),
                 ("compare", "--markdown"), ("compare", "--config"), ("compare", "BASE"), ("report", "RESULTS"),
                 ("report", "--out"), ("report", "--accuracy"), ("report", "--breakdown"), ("merge", "RUNS"),
                 ("merge", "--out"), ("evaluate", "--data"), ("evaluate", "--weights"), ("evaluate", "--out"),
                 ("evaluate", "--classes"), ("evaluate", "--video-root"), ("list", "--plugin")]:  # fmt: skip
        assert case in cases


def _argv(command: Any, target: str, value: str) -> list[str]:
    """The command with ``target`` given ``value`` and every other required parameter ``x``."""
    options, arguments = [command.name], []
    for p in command.params:
        if p.param_type_name == "argument":
            arguments.append(value if p.name.upper() == target else "x")
        elif max(p.opts, key=len) == target:
            options += [target, value]
        elif p.required:
            options += [max(p.opts, key=len), "x"]
    return [*options, *(["--time"] if command.name == "inspect" else []), *arguments]


@pytest.mark.parametrize(("name", "param"), _path_cases())
def test_a_name_longer_than_name_max_is_one_line_and_exit_2(tmp_path, name, param):
    """Item 8: exit 2 and one line naming the option, in every command (was exit 3, an internal error)."""
    long = str(tmp_path / ("a" * 300) / "f.json")
    line = _one_line_error(_vbench(*_argv(_commands()[name], param, long), cwd=tmp_path))
    assert f"{param}: the name 'aaaaaaaaaaaaaaaaaaaa...' in the path is 300 bytes long" in line and "NAME_MAX" in line


# ---------------------------------------------------------------- item 10: merge takes run folders only


@pytest.mark.parametrize("kind", ["empty", "evaluation", "other"])
def test_merge_refuses_a_folder_without_a_run(tmp_path, runs, kind):
    """Item 10: an empty folder, an evaluation or any other folder is one line and exit 2 (was exit 0)."""
    folder = tmp_path / kind
    if kind == "evaluation":
        _evaluation(folder, top1=50.0, num_classes=400)
    else:
        folder.mkdir()
        if kind == "other":
            (folder / "notes.txt").write_text("not a run\n")
    line = _one_line_error(_vbench("merge", runs["k400"], folder, "--out", tmp_path / "merged"))
    what = "a vbench evaluation, not a profile run" if kind == "evaluation" else "no vbench run"
    assert f"'{folder}' holds {what}" in line
    assert not (tmp_path / "merged").exists()


# ---------------------------------------------------------------- item 12a: refresh and resume commands


def _refresh_options(command: str) -> set[str]:
    return {a for a in shlex.split(command) if a.startswith("--")} - {"--overwrite", "--out"}


def test_the_refresh_command_repeats_every_option_but_the_declared_dropped_ones(tmp_path):
    """Item 12a: every option of ``vbench profile`` is either in the refresh command or in NOT_REFRESHED
    (with why); ``--weights`` and ``--trace`` were dropped."""
    declared = profile_options()
    assert set(NOT_REFRESHED) <= set(declared) and all(NOT_REFRESHED.values())
    options = {name: True if is_flag else [f"v-{name[2:]}"] for name, is_flag in declared.items()}
    base, head = tmp_path / "base", tmp_path / "head"
    for folder, params in ((base, 100), (head, 101)):
        folder.mkdir()
        row = {"arch": "r3d_18", "family": "r3d", "mode": "infer", "batch": 1, "frames": 16, "height": 112,
               "width": 112, "device": "cpu", "device_name": "cpu", "dtype": "fp32", "channels_last": False,
               "compiled": False, "params": params, "gmacs": 1.0, "gflops": 2.0, "latency_ms": None,
               "latency_iqr_ms": None, "latency_min_ms": None, "n_samples": 0, "clips_per_s": None,
               "peak_mem_mib": None, "status": "ok", "error": "", "torch_version": "2", "vbench_version": "0",
               "git_sha": "", "timestamp": "t"}  # fmt: skip
        doc = {"schema_version": 1, "rows": [row], "environment": {"options": options}}
        (folder / "results.json").write_text(json.dumps(doc))
    done = _vbench("compare", base, head)
    assert done.returncode == 1, done.stderr  # params changed: a regression
    command = next(line for line in done.stdout.splitlines() if line.startswith("vbench profile "))
    assert _refresh_options(command) == set(declared) - set(NOT_REFRESHED)
    assert "--weights v-weights" in command and "--trace" in command.split()


def test_the_resume_command_repeats_every_option_but_the_declared_dropped_ones(tmp_path):
    """Item 12a: the command that finishes a run repeats every recorded option but NOT_RESUMED (and, run
    locally, the cluster options)."""
    declared = profile_options()
    assert set(NOT_RESUMED) <= set(declared) and set(_CLUSTER_OPTIONS) <= set(declared) and all(NOT_RESUMED.values())
    options = {name: True if is_flag else [f"v-{name[2:]}"] for name, is_flag in declared.items()}
    for local, dropped in ((False, set(NOT_RESUMED)), (True, set(NOT_RESUMED) | set(_CLUSTER_OPTIONS))):
        command = profile_command(options, tmp_path, "--only-missing", local=local)
        assert _refresh_options(command) == (set(declared) - dropped) | {"--only-missing"}


# ---------------------------------------------------------------- item 12b: shard folders have their Markdown
# Checked on the local executor's sweep of test_bench_sweep.py (test_submitit_local_executor_runs_a_sharded_sweep_end_to_end):
# one sweep for both.


# ---------------------------------------------------------------- item 12c: one environment per job


def test_a_crashed_worker_s_rows_carry_the_environment_it_reported(tmp_path):
    """Item 12c: the worker reports a (fake) GPU; its ok row and the error rows the parent makes for what it
    did not finish both name it (the error rows named the parent's device before)."""
    out = tmp_path / "run"
    done = _vbench("profile", "--arch", "fake_crash", "--plugin", "fake_archs", "--plugin", "fake_gpu_env",
                   "--batch", "1,2,3", *FAST, "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {r["batch"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert [rows[b]["status"] for b in (1, 2, 3)] == ["ok", "error", "error"]
    assert {rows[b]["device_name"] for b in (1, 2, 3)} == {"Fake GPU 9000"}
    assert {rows[b]["torch_version"] for b in (1, 2, 3)} == {"0.0-fake"}


# ---------------------------------------------------------------- low items


def test_profile_refuses_an_evaluation_folder(tmp_path):
    """Low: ``profile --out`` an evaluation folder is refused (a report would then see the evaluation only)."""
    folder = _evaluation(tmp_path / "eval", top1=50.0, num_classes=400)
    for extra in ([], ["--overwrite"], ["--only-missing"]):
        line = _one_line_error(_vbench("profile", "--arch", "r3d_18", "--static", *extra, "--out", folder))
        assert "holds a vbench evaluation (evaluation.json), not a run" in line
    assert sorted(p.name for p in folder.iterdir()) == ["evaluation.json"]


@pytest.mark.parametrize(
    "args",
    [["profile"], ["profile", "--arch", "r3d_18", "--warmup", "x"], ["profile", "--arch", "r3d_18", "--bogus"],
     ["report"], ["compare", "a"], ["list", "a", "b"]],
)  # fmt: skip
def test_the_parser_s_own_errors_are_one_line(args):
    """Low: a missing or unknown option or a badly typed value was a five-line box."""
    line = _one_line_error(_vbench(*args))
    assert f"(see 'python -m bench.cli {args[0]} --help')" in line


def test_roofline_does_not_name_a_cache_it_could_not_write(tmp_path):
    """Low: with an unwritable cache, ``vbench roofline`` says nothing was cached (it printed the path)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = _vbench("roofline", "--device", "cpu", VBENCH_CACHE_DIR=str(blocker / "cache"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"not cached: {blocker / 'cache' / 'roofline.json'} cannot be written " \
        "(measured again next time)"  # fmt: skip


def test_profile_weights_records_the_absolute_path_and_its_sha256(tmp_path):
    """Low: ``profile --weights`` recorded the path as typed and no hash; now as ``vbench evaluate`` does."""
    import hashlib

    import archs
    from archs.weights import save_weights

    save_weights(archs.create_model("r3d_18", num_classes=3), "r3d_18", tmp_path / "w.pt")
    done = _vbench("profile", "--arch", "r3d_18", "--weights", "w.pt", "--input", "min", *FAST,
                   "--out", "run", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = json.loads((tmp_path / "run" / "results.json").read_text())["environment"]
    digest = hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert env["weights"] == {"path": str(tmp_path / "w.pt"), "sha256": digest}
    assert env["options"]["--weights"] == [str(tmp_path / "w.pt")]
