"""``vbench profile --weights``: the timed model loads a checkpoint, checked before any work."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from clirun import vbench, vbench_here

import archs
from archs import save_weights


@pytest.mark.slow  # a worker process
def test_profile_times_the_checkpoints_model(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    save_weights(archs.create_model("r3d_18", num_classes=7), "r3d_18", path)
    out = tmp_path / "run"
    done = vbench("profile", "--arch", "r3d_18", "--input", "min", "--repeats", "2", "--warmup", "1",
                   "--weights", str(path), "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = csv.DictReader((out / "results.csv").open())
    assert (row["status"], row["output_shape"], json.loads(row["arch_kwargs"])) == ("ok", "1x7", {"num_classes": 7})
    assert json.loads((out / "results.json").read_text())["environment"]["weights"]["path"] == str(path.resolve())


def test_weights_that_do_not_fit_are_one_line_before_any_work(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    save_weights(archs.create_model("r3d_18"), "r3d_18", path)
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(b"not a checkpoint")
    for args, message in [
        (["--arch", "mc3_18", "--weights", str(path)], "--weights: "),
        (["--arch", "r3d_18", "--arch", "mc3_18", "--weights", str(path)], "fits one architecture"),
        (["--arch", "r3d_18", "--weights", str(garbage)], "--weights: "),
        (["--arch", "r3d_18", "--static", "--weights", str(path)], "--static times nothing"),
    ]:
        done = vbench_here("profile", *args, "--input", "min", "--out", str(tmp_path / "never"))
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "never").exists()
