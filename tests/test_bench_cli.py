"""The command line: exit codes, one-line errors before any work, the happy paths."""

import json

import pytest
import torch
from typer.testing import CliRunner

import archs
from bench.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "r3d18"], "unknown architecture 'r3d18'; did you mean r3d_18"),
        (["--arch", "i3d", "--frames", "8"], "i3d needs at least 9 frames and 193x193 pixels"),
        (["--arch", "r3d_18", "--size", "8"], "min input 3x8x16x16"),
        (["--arch", "r3d_18", "--dtype", "fp8"], "unknown dtype 'fp8'"),
        (["--arch", "r3d_18", "--arch-kwargs", "num_classes"], "--arch-kwargs takes key=value"),
        (["--arch", "r3d_18", "--arch-kwargs", "no_such_option=1"], "r3d_18: bad --arch-kwargs"),
        (["--arch", "i3d_top_heavy", "--arch-kwargs", "split=Mixed_9z"], "split must be one of"),
        (["--arch", "r3d_18", "--batch", "0"], "--batch must be positive"),
        (["--arch", "r3d_18", "--batch", "two"], "--batch takes positive integers"),
        (["--arch", "r3d_18", "--mode", "fly"], "unknown mode 'fly'"),
        (["--arch", "r3d_18", "--device", "tpu"], "unknown device 'tpu'"),
        (["--arch", "r3d_18", "--repeats", "0"], "repeats >= 1"),
        (["--arch", "zz*"], "no architecture matches 'zz*'"),
        (["--arch", "r3d_18", "--plugin", "no_such_module"], "cannot import plugin 'no_such_module'"),
        (["--arch", "r3d_18", "--input", "huge"], "unknown --input 'huge'"),
        (["--arch", "r3d_18", "--input", "min", "--frames", "8"], "--input min cannot be combined with --frames"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_any_work(args, message, tmp_path):
    out = tmp_path / "out"
    result = _run("profile", *args, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path):
    result = _run("profile", "--arch", "r3d_18", "--device", "cuda", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "no CUDA device" in result.stderr


def test_static_profile_of_every_architecture(tmp_path):
    result = _run("profile", "--arch", "all", "--static", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["arch"] for r in rows] == archs.list_archs() and all(r["status"] == "ok" for r in rows)
    for r in rows:  # each model counted on the meta device at its paper input gives 400 logits
        assert r["output_shape"] == "1x400", r["arch"]
        assert r["params"] == r["trainable_params"] > 0 and r["gmacs"] > 0 and r["gflops"] == 2 * r["gmacs"]
    md = (tmp_path / "results.md").read_text()
    assert "| GMACs/clip |" in md and "FLOPs = 2 x MACs" in md
    assert "wrote" in result.output


def test_list_and_json(tmp_path):
    result = _run("list", "mc*")
    assert result.exit_code == 0 and "mc5_18" in result.output
    data = json.loads(_run("list", "--json", "s3d").output)
    assert data[0]["params"] == 8_320_048 and data[0]["min_input"] == [3, 13, 209, 209]  # torchvision's MaxPool_5a
    assert set(data[0]) >= {"name", "family", "default_input", "min_input", "stages", "paper", "published"}
    assert _run("list", "nothing*").exit_code == 2


def test_inspect(tmp_path):
    result = _run("inspect", "r3d_18", "--depth", "1", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert rows[0]["macs"] == sum(r["macs"] for r in rows[1:])
    assert _run("inspect", "nope").exit_code == 2


def test_input_paper_and_min_gives_both_clips_per_architecture(tmp_path):
    result = _run(
        "profile", "--arch", "r3d_18", "--arch", "i3d", "--static", "--input", "paper,min", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    shapes = [(r["arch"], r["frames"], r["height"], r["output_shape"]) for r in rows]
    assert shapes == [("r3d_18", 16, 112, "1x400"), ("r3d_18", 8, 16, "1x400"),
                      ("i3d", 64, 224, "1x400"), ("i3d", 9, 193, "1x400")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("import os\nos._exit(0)\n", "it called os._exit(0)"),
        ("import sys\nsys.exit(0)\n", "it called exit(0)"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ],
    ids=["os._exit", "sys.exit", "KeyboardInterrupt"],
)
def test_a_plugin_that_exits_while_imported_is_one_line_and_exit_2(tmp_path, body, why):
    """A hostile tester's finding: a plugin calling ``os._exit(0)`` at import ended vbench with exit 0, silently.
    In a subprocess: were the fix undone, the plugin would end the test's own process."""
    import subprocess
    import sys

    plugin = tmp_path / "hostile.py"
    plugin.write_text(body)
    for args in (["list"], ["profile", "--arch", "r3d_18", "--static", "--out", str(tmp_path / "out")]):
        done = subprocess.run([sys.executable, "-m", "bench.cli", *args, "--plugin", str(plugin)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.strip() == f"vbench: error: cannot import plugin '{plugin}': {why}"
    assert not (tmp_path / "out").exists()
