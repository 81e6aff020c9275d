"""Every file vbench reads is checked: a wrongly typed, hostile or odd file is one line and exit code 2.

Most cases call the readers in this process (fast); each class of problem also
goes once through the real command line in a subprocess, which must exit 2
with exactly one line on stderr that names the file (and the field) and no
traceback anywhere.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.commands.profile import profile_options
from bench.errors import UsageError
from bench.results.accuracy import load_accuracy
from bench.results.compare import NOT_REFRESHED, compare_rows, load_compare_config, refresh_command
from bench.results.config import tool_table
from bench.results.io import read_text
from bench.results.stats import mann_whitney_u
from bench.results.store import load_results
from bench.results.validate import MAX_DEPTH, check_results_doc, load_results_doc

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "reports" / "baselines" / "cpu-static" / "results.json"
_BASELINE_DOC = json.loads(BASELINE.read_text())

DECLARED = profile_options()
"""Every option of ``vbench profile`` and whether it is a flag."""


def _doc() -> dict[str, Any]:
    """A fresh copy of a committed results document (42 rows) to spoil."""
    return copy.deepcopy(_BASELINE_DOC)


def _save(folder: Path, doc: Any, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(text if text is not None else json.dumps(doc))
    return path


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip


def _assert_refused(result: subprocess.CompletedProcess[str], *needles: str | Path) -> None:
    """Exit 2, one line on stderr that starts with ``vbench: error:`` and names each needle, no traceback."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbench: error: "), result.stderr
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])


def _refused(fn: Any, *needles: str | Path) -> str:
    """``fn()`` raises a one-line UsageError that names each needle; returns the message."""
    with pytest.raises(UsageError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    for needle in needles:
        assert str(needle) in message, (needle, message)
    return message


def _compare(base: Path, head: Path, *more: str | Path) -> subprocess.CompletedProcess[str]:
    return _cli("compare", base, head, *(more or ("--config", os.devnull)))


# ---------------------------------------------------------------- committed files still load


@pytest.mark.parametrize("path", sorted(ROOT.glob("reports/**/results.json")), ids=lambda p: str(p.parent.name))
def test_every_committed_results_file_loads(path):
    rows, env = load_results(path)
    assert rows and isinstance(env, dict)
    assert load_results_doc(path, path)[2]["schema_version"] == 1


def test_the_repository_config_loads():
    config = load_compare_config(ROOT / "pyproject.toml")
    assert config.for_arch("i3d").latency == 0.15


# ---------------------------------------------------------------- wrongly typed results


def _spoil_row(column: str, value: Any) -> Any:
    doc = _doc()
    doc["rows"][2][column] = value
    return doc


def _spoil_env(key: str, value: Any) -> Any:
    doc = _doc()
    doc["environment"][key] = value
    return doc


NAN = float("nan")

RESULTS_CASES = [
    (lambda: _spoil_row("params", "abc"), ["row 3 (", "'params' must be a non-negative integer", "got 'abc'"]),
    (lambda: _spoil_row("params", -1), ["'params'"]),
    (lambda: _spoil_row("batch", [1]), ["row 3", "'batch' must be a positive integer; got [1]"]),
    (lambda: _spoil_row("batch", True), ["'batch'", "got true"]),
    (lambda: _spoil_row("frames", 0), ["'frames'"]),
    (lambda: _spoil_row("height", 1.5), ["'height'"]),
    (lambda: _spoil_row("gmacs", NAN), ["'gmacs' must be a finite", "got NaN"]),
    (lambda: _spoil_row("latency_ms", float("inf")), ["'latency_ms'", "Infinity"]),
    (lambda: _spoil_row("latency_ms", -3.0), ["'latency_ms'"]),
    (lambda: _spoil_row("channels_last", "yes"), ["'channels_last' must be true or false"]),
    (lambda: _spoil_row("noisy", 1), ["'noisy'"]),
    (lambda: _spoil_row("status", "fine"), ["'status' must be one of ok, oom"]),
    (lambda: _spoil_row("arch", "r3d\n18"), ["row 3:", "'arch'"]),
    (lambda: _spoil_row("arch", "\ud800"), ["'arch'"]),
    (lambda: _spoil_row("arch", ""), ["'arch'"]),
    (lambda: _spoil_row("mode", None), ["'mode'"]),
    (lambda: _spoil_row("error", {"a": 1}), ["'error'"]),
    (lambda: _spoil_row("arch_kwargs", "[1, 2]"), ["'arch_kwargs'"]),
    (lambda: _spoil_row("arch_kwargs", '{"depth": NaN}'), ["'arch_kwargs'"]),
    (lambda: _spoil_row("samples_ms", "1,2"), ["'samples_ms' must be a list"]),
    (lambda: _spoil_row("samples_ms", [1.0, NAN]), ["'samples_ms'[1] must be a finite non-negative number; got NaN"]),
    (lambda: _spoil_row("samples_ms", [1.0, True]), ["'samples_ms'[1]"]),
    (lambda: _spoil_row("my_column", {"a": 1}), ["'my_column' must be a plain value"]),
    (lambda: _spoil_row("my_column", [1, [2]]), ["'my_column'"]),
    (lambda: _spoil_row("my_column", [1, NAN]), ["'my_column'[1] must be finite"]),
    (lambda: {**_doc(), "environment": 5}, ["'environment' must be an object; got 5"]),
    (lambda: {**_doc(), "environment": None}, ["'environment' must be an object; got null"]),
    (lambda: _spoil_env("torch_threads", "2"), ["environment 'torch_threads'"]),
    (lambda: _spoil_env("torch_version", ["2.4"]), ["environment 'torch_version'"]),
    (lambda: _spoil_env("command", "vbench profile"), ["environment 'command'"]),
    (lambda: _spoil_env("options", {"--arch": "r3d_18"}), ["environment 'options' '--arch'"]),
    (lambda: _spoil_env("sweep", [1]), ["environment 'sweep'"]),
    (lambda: _spoil_env("sweep", {"all_jobs": [1]}), ["'all_jobs'"]),
    (lambda: _spoil_env("anything", {"deep": [1.0, NAN]}), ["environment.anything.deep[1] must be finite"]),
    (lambda: {**_doc(), "schema_version": "1"}, ["'schema_version' must be the integer 1; got '1'"]),
    (lambda: {**_doc(), "schema_version": True}, ["'schema_version'"]),
    (lambda: {**_doc(), "schema_version": 2}, ["schema version 2; this vbench reads version 1"]),
    (lambda: {**_doc(), "rows": {"a": 1}}, ["'rows' must be a list"]),
    (lambda: {**_doc(), "rows": [1]}, ["row 1 must be an object"]),
    (lambda: [1, 2], ["is not a vbench results file"]),
]


@pytest.mark.parametrize(("make", "needles"), RESULTS_CASES)
def test_wrongly_typed_results_are_refused_naming_the_field(tmp_path, make, needles):
    path = _save(tmp_path / "run", make())
    _refused(lambda: load_results(path), path, *needles)


def test_a_row_without_a_required_column_is_refused(tmp_path):
    doc = _doc()
    del doc["rows"][4]["arch"], doc["rows"][4]["params"]
    path = _save(tmp_path / "run", doc)
    _refused(lambda: load_results(path), path, "row 5 lacks required columns: arch, params")


def test_values_are_shown_short_and_on_one_line(tmp_path):
    path = _save(tmp_path / "run", _spoil_row("params", "x\n" * 500))
    message = _refused(lambda: load_results(path), "'params'")
    assert len(message) < len(str(path)) + 150


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("1" + "0" * 400, ["'params'", "an integer of 401 digits"]),  # an int literal beyond float range
        ("-" + "9" * 5000, ["'params'", "5000 digits"]),  # beyond Python's own 4300-digit limit
        ("1e400", ["'params'", "Infinity"]),
    ],
)
def test_numbers_beyond_float_range_are_refused(tmp_path, text, needles):
    doc = _spoil_row("params", "@@")
    path = _save(tmp_path / "run", None, json.dumps(doc).replace('"@@"', text))
    _refused(lambda: load_results(path), path, *needles)


def test_huge_integers_anywhere_are_refused(tmp_path):
    doc = _doc()
    doc["extra"] = {"n": "@@"}
    path = _save(tmp_path / "run", None, json.dumps(doc).replace('"@@"', "7" * 400))
    _refused(lambda: load_results(path), path, "'extra'.n", "too large for a float")


def test_documents_parsed_elsewhere_are_checked_too():
    """``check_results_doc`` also takes rows that came from ``results.jsonl``, parsed by plain ``json``."""
    doc = _doc()
    rows, env, same = check_results_doc(doc, "run/results.jsonl")
    assert len(rows) == len(doc["rows"]) > 0 and env == doc["environment"] and same is doc
    for column, value in (("params", 10**400), ("samples_ms", [1.0, 10**400]), ("my_column", 10**5000)):
        spoilt = _spoil_row(column, value)
        _refused(lambda d=spoilt: check_results_doc(d, "run/results.jsonl"), "run/results.jsonl", f"'{column}'")


def test_deep_nesting_is_refused_before_parsing(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = _save(tmp_path / "run", None, '{"schema_version": 1, "rows": ' + deep + "}")
    _refused(lambda: load_results(path), path, f"nested deeper than {MAX_DEPTH} levels")
    _save(tmp_path / "cut", None, "[" * 100_000)
    _refused(lambda: load_results(tmp_path / "cut"), "nested deeper")
    start = time.monotonic()  # escaped quotes without an end: the depth scan stays linear
    _save(tmp_path / "quotes", None, '["' + '\\"[' * 500_000)
    _refused(lambda: load_results(tmp_path / "quotes"), "is not a vbench results file")
    assert time.monotonic() - start < 30  # linear: well under a second; quadratic: hours
    doc = _spoil_row("error", "[" * 10_000)  # brackets inside strings do not count
    assert load_results(_save(tmp_path / "fine", doc))[0][2]["error"] == "[" * 10_000


# ---------------------------------------------------------------- files that are not regular files


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    _refused(lambda: load_results(fifo), fifo, "is a FIFO, not a file")
    _refused(lambda: load_accuracy(fifo), "accuracy file", "FIFO")
    _refused(lambda: tool_table(fifo, "compare"), "config", "FIFO")
    assert time.monotonic() - start < 30  # opening a FIFO to read would block for ever


def test_devices_and_folders_are_refused(tmp_path):
    if os.path.exists("/dev/zero"):
        _refused(lambda: load_results("/dev/zero"), "/dev/zero", "is a device, not a file")
        _refused(lambda: load_accuracy("/dev/zero"), "/dev/zero", "device")
        _refused(lambda: tool_table(Path("/dev/zero"), "compare"), "/dev/zero", "device")
    (tmp_path / "run" / "results.json").mkdir(parents=True)
    _refused(lambda: load_results(tmp_path / "run"), "results.json", "is a folder, not a file")
    _refused(lambda: load_accuracy(tmp_path), tmp_path, "is a folder")
    _refused(lambda: tool_table(tmp_path, "compare"), tmp_path, "is a folder")
    assert tool_table(Path(os.devnull), "compare") == {}  # --config /dev/null: no settings


def test_size_caps_and_encoding(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 101)
    _refused(lambda: read_text(big, "results file", cap=100), big, "too large")
    assert read_text(big, "results file", cap=101) == "x" * 101
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "caf\xe9"}')
    _refused(lambda: load_results(latin), latin, "not UTF-8")
    bom = _save(tmp_path / "bom", None)
    bom.write_bytes(b"\xef\xbb\xbf" + BASELINE.read_bytes())
    assert len(load_results(bom)[0]) == len(json.loads(BASELINE.read_text())["rows"])


def test_cli_refuses_hostile_results_files(tmp_path):
    good = BASELINE.parent
    wrong = _save(tmp_path / "wrong", _spoil_row("params", "abc"))
    _assert_refused(_compare(good, wrong), wrong, "row 3 (", "'params'")

    deep = _save(tmp_path / "deep", None, "[" * 100_000 + "]" * 100_000)
    _assert_refused(_compare(deep, good), deep, "nested deeper")

    huge = _save(tmp_path / "huge", None, json.dumps(_spoil_row("params", "@@")).replace('"@@"', "1" + "0" * 400))
    _assert_refused(_compare(good, huge), huge, "'params'", "401 digits")

    nan = _save(tmp_path / "nan", _spoil_row("samples_ms", [1.0, NAN, 2.0]))
    _assert_refused(_compare(good, nan), nan, "'samples_ms'[1]")

    (tmp_path / "folder" / "results.json").mkdir(parents=True)
    _assert_refused(_compare(good, tmp_path / "folder"), "results.json", "is a folder")


def test_cli_refuses_a_fifo_promptly_and_a_device(tmp_path):
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    _assert_refused(_compare(fifo, BASELINE), fifo, "FIFO")
    assert time.monotonic() - start < 60
    if os.path.exists("/dev/zero"):
        _assert_refused(_compare(BASELINE, Path("/dev/zero")), "/dev/zero", "device")


def test_cli_merge_refuses_a_wrong_environment(tmp_path):
    run = _save(tmp_path / "run", {**_doc(), "environment": 5}).parent
    _assert_refused(_cli("merge", run, "--out", tmp_path / "merged"), run, "'environment'")
    assert not (tmp_path / "merged").exists()


# ---------------------------------------------------------------- accuracy files


def _accuracy(tmp_path: Path, text: str, name: str = "acc.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_an_excel_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = _accuracy(tmp_path, "arch,input,top1,top5,source\r\nr3d_18,16x112x112,70.5,,ours\r\n", encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    [record] = load_accuracy(path)
    assert record["arch"] == "r3d_18" and record["top1"] == 70.5 and record["top5"] is None


ACCURACY_CASES = [
    ("arch,input,top1,source\nr3d_18,16x112x112,nan,x\n", "acc.csv", ["record 1 (line 2)", "'top1'", "'nan'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,inf,x\n", "acc.csv", ["'top1'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,1e400,x\n", "acc.csv", ["'top1'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,101,x\n", "acc.csv", ["'top1'", "from 0 to 100"]),
    ("arch,input,top1,top5,source\na,16x112x112,1,x,s\n", "acc.csv", ["'top5'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,50,x\n,8x112x112,50,x\n", "acc.csv", ["record 2", "'arch'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,50,x,extra\n", "acc.csv", ["record 1", "more cells"]),
    ("arch,input,top1,source\nr3d_18,16x112\x00,50,x\n", "acc.csv", ["record 1", "'input'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,50,x\u2028y\n", "acc.csv", ["record 1", "'source'"]),
    ("arch,input,top1,source\nr3d_18,16x112x112,50," + "x" * 200_000 + "\n", "acc.csv", ["not valid CSV"]),
    ('[{"arch": "a", "input": "16x112x112", "top1": true, "source": "s"}]', "acc.json", ["record 1", "'top1'"]),
    ('[{"arch": "a", "input": "16x112x112", "top1": NaN, "source": "s"}]', "acc.json", ["'top1'", "NaN"]),
    ('[{"arch": "a", "input": "16x112x112", "top1": Infinity, "source": "s"}]', "acc.json", ["'top1'"]),
    ('[{"input": "16x112x112", "top1": 50, "source": "s"}]', "acc.json", ["record 1", "'arch' is missing"]),
    ('[{"arch": 5, "input": "16x112x112", "top1": 50, "source": "s"}]', "acc.json", ["'arch'"]),
    ('[{"arch": "a", "input": "x", "top1": 5, "source": "s", "views": [1]}]', "acc.json", ["'views'"]),
    ("[" * 1000 + "]" * 1000, "acc.json", ["nested deeper"]),
    ('{"arch": "a"}', "acc.json", ["JSON list of objects"]),
]


@pytest.mark.parametrize(("text", "name", "needles"), ACCURACY_CASES)
def test_bad_accuracy_records_are_refused(tmp_path, text, name, needles):
    path = _accuracy(tmp_path, text, name)
    _refused(lambda: load_accuracy(path), path, *needles)


def test_cli_report_reads_a_bom_csv_and_refuses_bad_accuracy(tmp_path):
    run = BASELINE.parent
    good = _accuracy(tmp_path, "arch,input,top1,source\r\nr3d_18,16x112x112,70.5,ours\r\n", encoding="utf-8-sig")
    result = _cli("report", run, "--accuracy", good, "--no-plots", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    bad = _accuracy(tmp_path, '[{"arch": "r3d_18", "input": "16x112x112", "top1": NaN, "source": "s"}]', "bad.json")
    result = _cli("report", run, "--accuracy", bad, "--no-plots", "--out", tmp_path / "out2")
    _assert_refused(result, bad, "record 1", "'top1'")


# ---------------------------------------------------------------- [tool.vbench.compare]

CONFIG_CASES = [
    ("[tool.vbench.compare]\narch = 5\n", ["[tool.vbench.compare]", "'arch' must be a table"]),
    ('[tool.vbench.compare.arch]\n"r*" = 3\n', ['[tool.vbench.compare.arch."r*"] must be a table', "got 3"]),
    ("[tool.vbench.compare]\nlatency-tol = true\n", ["[tool.vbench.compare] latency-tol", "got true"]),
    ("[tool.vbench.compare]\nlatency-tol = [1]\n", ["[tool.vbench.compare] latency-tol", "got [1]"]),
    ("[tool.vbench.compare]\nmemory-tol = {a = 1}\n", ["memory-tol"]),
    ("[tool.vbench.compare]\nlatency-tol = nan\n", ["latency-tol"]),
    ("[tool.vbench.compare]\nlatency-tol = " + "9" * 400 + "\n", ["latency-tol"]),
    ("[tool.vbench.compare]\nlatency-tol = 1979-05-27\n", ["latency-tol"]),
    ('[tool.vbench.compare]\nlatency-tol = "1\\n0%"\n', ["latency-tol", "\\n"]),
    ("[tool.vbench.compare]\nalpha = true\n", ["[tool.vbench.compare] alpha", "got true"]),
    ('[tool.vbench.compare]\nalpha = "x"\n', ["alpha", "got 'x'"]),
    ("[tool.vbench.compare]\nalpha = " + "9" * 400 + "\n", ["alpha"]),
    ('[tool.vbench.compare.arch."r*"]\narch = {}\n', ['[tool.vbench.compare.arch."r*"]', "unknown key 'arch'"]),
    ('[tool.vbench.compare]\n"a\\nb" = 1\n', ["unknown key 'a\\nb'"]),
    ("[tool.vbench]\ncompare = 5\n", ["[tool.vbench.compare] must be a table; got 5"]),
    ("tool = 5\n", ["[tool] must be a table"]),
    ("[tool]\nvbench = [1]\n", ["[tool.vbench] must be a table"]),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", ["is not valid TOML"]),
    ("x = " + "1" * 5000 + "\n", ["is not valid TOML"]),
    ("[tool.vbench.compare\n", ["is not valid TOML"]),
]


@pytest.mark.parametrize(("text", "needles"), CONFIG_CASES)
def test_config_of_the_wrong_shape_is_refused(tmp_path, text, needles):
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    _refused(lambda: load_compare_config(path), path, *needles)


def test_config_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.vbench.compare]\nlatency-tol = "20%"\nalpha = "0.01"\n', encoding="utf-8-sig")
    config = load_compare_config(path)
    assert config.default.latency == 0.2 and config.default.alpha == 0.01


def test_cli_refuses_a_config_of_the_wrong_shape(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.vbench.compare.arch]\n"r*" = 3\n')
    _assert_refused(_compare(BASELINE, BASELINE, "--config", path), path, '[tool.vbench.compare.arch."r*"]')
    _assert_refused(_compare(BASELINE, BASELINE, "--config", tmp_path), tmp_path, "is a folder")


# ---------------------------------------------------------------- verdicts never rest on NaN


def _timed(samples: list[float]) -> dict[str, Any]:
    row = dict(_doc()["rows"][0], status="ok", samples_ms=samples, latency_ms=sorted(samples)[len(samples) // 2])
    return row


def test_non_finite_samples_never_decide_a_verdict():
    base = _timed([10.0, 10.1, 10.2, 9.9, 10.05, 9.95, 10.15, 10.0])
    for bad in ([NAN] * 8, [1.0, 1.0, NAN, 1.0, 1.0, 1.0, 1.0, 1.0], [float("inf")] * 8):
        head = _timed(bad)
        head["latency_ms"] = NAN
        comparison = compare_rows([base], [head])
        assert not comparison.regressions
        assert not any(c.verdict in ("faster", "slower") for c in comparison.changes)


@pytest.mark.parametrize("bad", [NAN, float("inf"), -float("inf"), 10**400, True, "1"])
def test_the_rank_test_refuses_non_finite_values(bad):
    with pytest.raises(ValueError, match="finite"):
        mann_whitney_u([1.0, 2.0, bad], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        mann_whitney_u([1.0], [bad])
    assert not math.isnan(mann_whitney_u([1.0, 2.0], [1.5, 3.0]).p)


# ---------------------------------------------------------------- the refresh command


def test_refresh_command_is_rebuilt_from_recorded_options(tmp_path):
    options = {
        "--arch": ["r*_18", "mc3_18"], "--static": True, "--compile": False, "--batch": ["1,8"],
        "--arch-kwargs": ["depth=50"], "--out": ["/elsewhere"], "--shard": ["1/2"], "--executor": ["slurm"],
        "--only-missing": True, "--evil": ["$(rm -rf ~)"],
    }  # fmt: skip
    folder = tmp_path / "my base"
    command = refresh_command({"options": options, "command": ["rm", "-rf", "/"]}, folder, DECLARED)
    expected = "vbench profile --arch 'r*_18' --arch mc3_18 --batch 1,8 --static --arch-kwargs depth=50"
    assert command == f"{expected} --overwrite --out '{folder}'"
    assert shlex.split(command)[-1] == str(folder)


def test_refresh_command_quotes_every_recorded_value(tmp_path):
    env = {"options": {"--arch": ["$(rm -rf ~)", "a;b", "-x"], "--device": ["cpu"]}}
    argv = shlex.split(refresh_command(env, tmp_path, DECLARED))
    assert argv == ["vbench", "profile", "--arch", "$(rm -rf ~)", "--arch", "a;b", "--arch=-x", "--device", "cpu",
                    "--overwrite", "--out", str(tmp_path)]  # fmt: skip
    assert "'$(rm -rf ~)'" in refresh_command(env, tmp_path, DECLARED)


@pytest.mark.parametrize(
    "env",
    [
        {"options": {"--arch": ["r3d_18\nrm -rf ~"]}},
        {"options": {"--arch": ["```\n$(rm -rf ~)"]}},
        {"options": {"--arch": ["a`id`"]}},
        {"options": {"--arch": ["a\u202eb"]}},
        {"options": {"--arch": "r3d_18"}},
        {"options": {"--static": ["yes"]}},
        {"options": {"--arch": [5]}},
        {"options": {}},
        {"command": ["vbench", "profile", "--arch", "r3d_18\n$(rm -rf ~)"]},
        {"command": ["vbench", "profile", "--arch", "`rm -rf ~`"]},
        {"command": ["rm", "-rf", "~"]},
        {"command": "vbench profile --arch all"},
        {"command": ["vbench", "profile", 5]},
        {},
    ],
)
def test_refresh_command_falls_back_to_the_placeholder(tmp_path, env):
    command = refresh_command(env, tmp_path, DECLARED)
    assert command == f"vbench profile <the options of the baseline run> --overwrite --out {tmp_path}"


def test_refresh_command_from_a_recorded_command_line(tmp_path):
    env = {"command": ["vbench", "profile", "--arch", "$(rm -rf ~)", "--out", "x", "--out=y", "--shard", "1/2",
                       "--only-missing", "--static"]}  # fmt: skip
    command = refresh_command(env, tmp_path / "base", DECLARED)
    assert shlex.split(command) == ["vbench", "profile", "--arch", "$(rm -rf ~)", "--static", "--overwrite",
                                    "--out", str(tmp_path / "base")]  # fmt: skip
    assert "$(rm" not in command.replace("'$(rm -rf ~)'", "")
    assert "\n" not in refresh_command(env, "base\nrm -rf ~", DECLARED) and "<the baseline folder>" in refresh_command(
        env, "base\nrm -rf ~", DECLARED
    )


def test_refresh_options_are_options_of_vbench_profile():
    assert set(NOT_REFRESHED) <= set(DECLARED) and {"--arch", "--weights", "--trace"} <= set(DECLARED)
    assert {"--out", "--only-missing", "--overwrite", "--shard", "--executor"} <= set(NOT_REFRESHED)
