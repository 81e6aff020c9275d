"""One source for each fact: torch-free records, the column registry and what is derived from it, the version.

docs/design.md, "Performance targets": the commands that only read saved runs
(``--help``, ``compare``, ``merge``, ``report`` tables) import no torch.
"""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import bench
from bench.errors import UsageError
from bench.measure.rows import make_row
from bench.report.tables import summary_markdown
from bench.results import columns, records
from bench.results.columns import (
    COLUMNS,
    EXACT_METRICS,
    KEY_COLUMNS,
    LABELS,
    REQUIRED_COLUMNS,
    SUMMARY_COLUMNS,
    readme_section,
)
from bench.results.records import Config, Row, check_run_options
from bench.results.store import load_results

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "reports" / "baselines" / "cpu-static"

# ---------------------------------------------------------------- the literals the registry replaced

OLD_REQUIRED = (
    "arch", "family", "mode", "batch", "frames", "height", "width", "device", "device_name", "dtype",
    "channels_last", "compiled", "params", "gmacs", "gflops", "latency_ms", "latency_iqr_ms", "latency_min_ms",
    "n_samples", "clips_per_s", "peak_mem_mib", "status", "error", "torch_version", "vbench_version", "git_sha",
    "timestamp",
)  # fmt: skip
OLD_EXTRA = (
    "arch_kwargs", "cuda_graphs", "trainable_params", "train_gmacs", "activations_m", "output_shape",
    "latency_ci_low_ms", "latency_ci_high_ms", "noisy", "peak_mem_reserved_mib", "threads", "cudnn_benchmark",
    "warmup", "job_id",
)  # fmt: skip
ROOFLINE_EXTRA = ("achieved_tflops", "mfu", "intensity", "bound")
"""Columns added after the registry (issue 13), at the end so that the CSV's older columns keep their places."""
CONTENTION_EXTRA = ("contended", "cpu_share", "load_before", "load_after", "gpu_other_processes", "sm_clock_mhz",
                    "throttle_reasons", "rounds", "settle_s", "settled")  # fmt: skip
"""Columns of issue 23 (was the machine shared while timed?), after those."""
OLD_KEY = (
    "arch", "arch_kwargs", "mode", "batch", "frames", "height", "width", "device", "dtype", "channels_last",
    "compiled", "cuda_graphs",
)  # fmt: skip
OLD_EXACT = ("params", "trainable_params", "gmacs", "gflops", "train_gmacs", "output_shape")
OLD_SUMMARY = (
    ("arch", "arch", "{}", 0), ("mode", "mode", "{}", 7), ("batch", "batch", "{}", 5),
    ("input (TxHxW)", "input", "{}", 4), ("dtype", "dtype", "{}", 8), ("params (M)", "params", "{:.2f}", 6),
    ("GMACs/clip", "gmacs", "{:.2f}", 3), ("latency (ms)", "latency_ms", "{:.2f}", 2),
    ("IQR (ms)", "latency_iqr_ms", "{:.2f}", 11), ("clips/s", "clips_per_s", "{:.1f}", 10),
    ("peak mem (MiB)", "peak_mem_mib", "{:.0f}", 9), ("status", "status", "{}", 1),
)  # fmt: skip
OLD_LEFT = ("arch", "mode", "dtype", "status", "input")
OLD_METRIC_NAMES = {
    "params": "params", "trainable_params": "trainable params", "gmacs": "GMACs/clip", "gflops": "GFLOPs/clip",
    "train_gmacs": "train GMACs/clip", "output_shape": "output shape", "status": "status",
    "latency_ms": "latency (ms)", "peak_mem_mib": "peak mem (MiB)",
}  # fmt: skip


def test_the_registry_derives_the_old_tuples_exactly():
    from bench.results import compare

    assert REQUIRED_COLUMNS == OLD_REQUIRED
    assert columns.EXTRA_COLUMNS == OLD_EXTRA + ROOFLINE_EXTRA + CONTENTION_EXTRA
    assert COLUMNS == OLD_REQUIRED + OLD_EXTRA + ROOFLINE_EXTRA + CONTENTION_EXTRA
    assert KEY_COLUMNS == OLD_KEY
    assert EXACT_METRICS == OLD_EXACT
    assert compare.EXACT_METRICS == OLD_EXACT


def test_the_summary_table_and_the_metric_names_come_from_the_registry():
    assert tuple((c.header, c.name, c.fmt, c.summary_rank) for c in SUMMARY_COLUMNS) == OLD_SUMMARY
    assert {c.name for c in SUMMARY_COLUMNS if not c.numeric} == set(OLD_LEFT)
    assert {k: LABELS[k] for k in OLD_METRIC_NAMES} == OLD_METRIC_NAMES


def test_the_type_checks_of_a_file_come_from_the_registry():
    from bench.results import validate as v

    old = {
        **dict.fromkeys(("arch", "family", "mode", "device", "dtype"), v._NAME),
        **dict.fromkeys(("batch", "frames", "height", "width"), v._POSITIVE),
        **dict.fromkeys(("device_name", "torch_version", "vbench_version", "git_sha", "timestamp", "output_shape",
                         "job_id", "throttle_reasons"), v._NAME_OR_NONE),
        "error": v._TEXT_OR_NONE,
        **dict.fromkeys(("channels_last", "compiled", "cuda_graphs"), v._FLAG),
        **dict.fromkeys(("noisy", "cudnn_benchmark", "contended", "settled"), v._FLAG_OR_NONE),
        **dict.fromkeys(("params", "trainable_params", "n_samples", "warmup", "threads", "gpu_other_processes",
                         "rounds"),
                        v._COUNT),
        **dict.fromkeys(("gmacs", "gflops", "train_gmacs", "activations_m", "latency_ms", "latency_iqr_ms",
                         "latency_min_ms", "latency_ci_low_ms", "latency_ci_high_ms", "clips_per_s", "peak_mem_mib",
                         "peak_mem_reserved_mib", "achieved_tflops", "mfu", "intensity", "cpu_share", "load_before",
                         "load_after", "sm_clock_mhz", "settle_s"), v._AMOUNT),
        "bound": v._NAME_OR_NONE,
    }  # fmt: skip
    assert set(v.ROW_CHECKS) == set(COLUMNS)
    assert {k: c for k, c in v.ROW_CHECKS.items() if k not in ("status", "arch_kwargs")} == old
    assert v.ROW_CHECKS["status"][0]("ok") and not v.ROW_CHECKS["status"][0]("fine")
    assert v.ROW_CHECKS["arch_kwargs"][0]('{"depth": 50}') and not v.ROW_CHECKS["arch_kwargs"][0]("[1]")


def test_the_docs_results_columns_table_is_rendered_from_the_registry():
    text = (ROOT / "docs" / "columns.md").read_text()
    begin, end = (
        "<!-- generated from bench/results/columns.py: begin -->\n",
        "<!-- generated from bench/results/columns.py: end -->\n",
    )
    assert text.count(begin) == text.count(end) == 1
    assert text.startswith("# Results columns\n")
    start = text.index(begin) + len(begin)
    assert text[start : text.index(end, start)] == readme_section()
    for name in COLUMNS:
        assert f"| `{name}` |" in readme_section()


def test_row_is_typed_with_every_column():
    assert Row.__required_keys__ == frozenset(REQUIRED_COLUMNS)
    assert Row.__optional_keys__ == frozenset((*OLD_EXTRA, *ROOFLINE_EXTRA, *CONTENTION_EXTRA, "samples_ms"))


def test_make_row_fills_every_column_in_order():
    row = make_row(Config("r3d_18", 2, 16, 112, 112, "cpu"), family="resnet", env={"cpu_name": "X"}, counts=None)
    assert list(row) == [*COLUMNS, "samples_ms"]
    assert (row["device_name"], row["n_samples"], row["samples_ms"], row["arch_kwargs"]) == ("X", 0, [], "{}")
    with pytest.raises(ValueError, match="unknown status"):
        make_row(Config("a", 1, 8, 8, 8, "cpu"), family="f", env={}, counts=None, status="fine")


@pytest.mark.parametrize("results", sorted(ROOT.glob("reports/**/results.json")), ids=lambda p: str(p.parent.name))
def test_committed_summaries_regenerate_byte_identical(results):
    md = results.with_name("results.md")
    if not md.is_file():
        pytest.skip("no results.md beside it")
    rows, _ = load_results(results)
    assert summary_markdown(rows) == md.read_text()


def test_the_enums_are_literals_and_their_tuples_are_derived():
    assert records.DEVICES == ("cpu", "cuda", "mps", "auto")
    assert records.DTYPES == ("fp32", "bf16", "fp16")
    assert records.MODES == ("infer", "train", "both")
    assert records.STATUSES == ("ok", "oom", "timeout", "error", "skipped", "unsupported")
    assert records.COUNTERS == ("torch", "fvcore")
    assert records.INPUTS == ("paper", "min")


def test_executors_are_one_fact():
    from bench.run import cluster

    assert cluster.EXECUTORS == records.EXECUTORS


# ---------------------------------------------------------------- the command line


def _profile_options() -> dict[str, object]:
    command = typer.main.get_command(__import__("bench.cli", fromlist=["app"]).app)
    profile = command.commands["profile"]  # type: ignore[attr-defined]
    return {p.name: p for p in profile.params}


def test_profile_help_lists_the_choices_from_their_constants_in_panels():
    params = _profile_options()
    for name, values in (("device", records.DEVICES), ("dtype", records.DTYPES), ("mode", records.MODES),
                         ("counter", records.COUNTERS), ("input_", records.INPUTS),
                         ("executor", records.EXECUTORS)):  # fmt: skip
        listed = f"{', '.join(values[:-1])} or {values[-1]}"
        assert listed in params[name].help, name
    panels = {p.rich_help_panel for p in params.values()} - {None}
    assert panels == {"Grid", "Timing", "Output", "Sweeps", "Cluster", "Models"}
    assert all(p.rich_help_panel for p in params.values()), [n for n, p in params.items() if not p.rich_help_panel]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": {"shards": 2}}, "--shards only apply with --executor slurm|local"),
        ({"min_time": float("nan")}, "--min-time must be a finite number of seconds; got nan"),
        ({"max_time": 0.0}, "--max-time must be a finite number of seconds above 0"),
        ({"timeout": float("inf")}, "--timeout must be a finite number of seconds above 0"),
        ({"repeats": 0}, "repeats >= 1"),
        ({"count_workers": 0}, "--count-workers must be at least 1"),
        ({"executor": "local", "shard": "1/2"}, "--executor runs every shard itself"),
        ({"only_missing": True}, "--only-missing needs --out"),
        ({"only_missing": True, "out_given": True, "overwrite": True}, "choose one"),
        ({"allow_mixed": True}, "--allow-mixed only applies with --only-missing"),
        ({"max_memory": "lots"}, "--max-memory takes a size such as 8GiB"),
        ({"max_memory": "0"}, "--max-memory must be above 0"),
        ({"rounds": 0}, "--rounds must be 1 or more; got 0"),
        ({"settle": -1.0}, "--settle must be a finite number of seconds; got -1.0"),
        ({"executor": "slurm", "rounds": 3}, "--rounds and --settle run on this machine"),
        ({"executor": "local", "settle": 2.0}, "--rounds and --settle run on this machine"),
    ],
)
def test_run_options_are_checked_in_the_library(options, message):
    with pytest.raises(UsageError, match=message.replace("|", r"\|").replace("(", r"\(")):
        check_run_options(**options)


def test_run_options_when_valid():
    run = check_run_options(warmup=1, repeats=2, max_memory="2GiB", timeout=5.0)
    assert (run.policy.warmup, run.policy.repeats, run.max_memory, run.timeout) == (1, 2, 2 * 2**30, 5.0)


# ---------------------------------------------------------------- no torch for the commands that read runs

PROBE = runpy.run_path(str(ROOT / "benchmarks" / "import_time.py"))["PROBE"]
"""What ``benchmarks/import_time.py`` runs: the CLI as ``vbench`` would, then what it imported."""


def _probe(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["compare", str(RUN), str(RUN)],
        ["merge", str(RUN), "--out", "{tmp}/merged"],
        ["report", str(RUN), "--no-plots", "--out", "{tmp}/report"],
    ],
    ids=["help", "compare", "merge", "report"],
)
def test_commands_that_read_saved_runs_import_no_torch(command, tmp_path):
    found = _probe(*(a.format(tmp=tmp_path) for a in command))
    assert found["code"] == 0
    assert not found["torch"], found
    # The report reads the published results from archs (archs/_published.py, no torch); the others need no archs.
    assert command[0] == "report" or not found["archs"], found


def test_the_records_import_no_torch():
    modules = "bench.results.records, bench.results.columns, bench.results.schema, bench.results.compare, bench.results.store, bench.results.merge, bench.report.tables"
    code = f"import sys, {modules}, bench.results.validate, bench.run.shard, bench.results.config; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_an_unknown_architecture_is_still_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "list", "r3d18"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("vbench: error: no architecture matches")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "inspect", "r3d18"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "did you mean r3d_18" in proc.stderr


# ---------------------------------------------------------------- the version: one fact


def test_the_version_is_read_from_bench():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bench.__version__"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.stdout.strip() == f"vbench {bench.__version__}"
