"""``vbench report`` joins accuracies measured by ``vbench evaluate`` with the costs of profile runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import vbench_here

from bench.report.tradeoff import accuracy_records, tradeoff_frame
from bench.results.evaluation import load_evaluation


def _evaluation(folder: Path, arch: str = "r3d_18", top1: float = 12.5, state: str = "complete") -> Path:
    folder.mkdir(parents=True)
    record = {"arch": arch, "input": "16x112x112", "top1": top1, "top5": 50.0, "views": "5 clips x 1 crop",
              "dataset": "generated", "source": "measured: vbench evaluate, protocol torchvision, 8 videos"}  # fmt: skip
    doc = {"state": state, "counts": {"listed": 10, "evaluated": 8}, "accuracy_record": record}
    (folder / "evaluation.json").write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def static_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "static"
    done = vbench_here("profile", "--arch", "r3d_18", "--arch", "mc3_18", "--static", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_a_measured_accuracy_wins_and_is_marked(tmp_path: Path, static_run: Path) -> None:
    measured = load_evaluation(_evaluation(tmp_path / "eval"))
    assert measured["tag"] == "measured" and measured["videos"] == 8
    records = accuracy_records(measured=[measured])
    rows = [{"arch": a, "family": "r3d", "mode": "infer", "batch": 1, "frames": 16, "height": 112, "width": 112,
             "gmacs": 40.0, "params": 1, "status": "ok"} for a in ("r3d_18", "mc3_18")]  # fmt: skip
    frame = tradeoff_frame(rows, records).set_index("arch")
    assert (frame.loc["r3d_18", "top1"], frame.loc["r3d_18", "accuracy_kind"]) == (12.5, "measured")
    assert frame.loc["mc3_18", "accuracy_kind"] == "published"  # torchvision's published mc3_18 at 16x112x112

    done = vbench_here("report", str(static_run), str(tmp_path / "eval"), "--out", str(tmp_path / "rep"), "--no-plots")
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "rep" / "report.md").read_text()
    r3d = next(line for line in table.splitlines() if line.startswith("| r3d_18 "))
    assert "| 12.5 |" in r3d and "| measured |" in r3d
    mc3 = next(line for line in table.splitlines() if line.startswith("| mc3_18 "))
    assert "| published |" in mc3

    # Only measured accuracies: the Pareto front is on them alone.
    done = vbench_here("report", str(static_run), str(tmp_path / "eval"), "--no-published", "--out",
                   str(tmp_path / "rep2"), "--no-plots")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "rep2" / "report.md").read_text().splitlines()
    assert "| measured |" in next(line for line in lines if line.startswith("| r3d_18 "))
    assert "| - |" in next(line for line in lines if line.startswith("| mc3_18 "))


def test_an_interrupted_evaluation_says_so(tmp_path: Path) -> None:
    rec = load_evaluation(_evaluation(tmp_path / "e", state="interrupted") / "evaluation.json")
    assert "interrupted: 8 of 10 videos" in rec["source"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"state": "complete", "accuracy_record": None}, "holds no accuracy"),
        ({"state": "complete", "accuracy_record": {"arch": "r3d_18", "input": "x", "top1": 140, "source": "s"}},
         "top1/top5 must be numbers from 0 to 100"),
        ({"state": "weird", "accuracy_record": {"arch": "r3d_18", "input": "x", "top1": 1, "source": "s"}},
         "'state' or 'counts' is malformed"),
        ([1, 2], "must hold a JSON object"),
    ],
)  # fmt: skip
def test_a_bad_evaluation_is_one_line_and_exit_2(tmp_path: Path, static_run: Path, doc: object, message: str) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "evaluation.json").write_text(json.dumps(doc))
    done = vbench_here("report", str(static_run), str(tmp_path / "e"), "--out", str(tmp_path / "rep"), "--no-plots")
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_evaluations_alone_are_refused(tmp_path: Path) -> None:
    done = vbench_here("report", str(_evaluation(tmp_path / "e")), "--out", str(tmp_path / "rep"), "--no-plots")
    assert done.returncode == 2 and "no profile run among the inputs" in done.stderr
