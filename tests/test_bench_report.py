"""vbench report: Pareto and growth fits on hand-made tables, the tables, the figures, bad input."""

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.errors import UsageError
from bench.report.analysis import fit_growth, pareto_front
from bench.report.builder import write_report
from bench.report.tradeoff import (
    accuracy_records,
    failures_frame,
    paper_frame,
    report_frames,
    report_text,
    scaling_frame,
    tradeoff_frame,
)
from bench.results.accuracy import load_accuracy
from bench.results.columns import COLUMNS
from bench.results.schema import SCHEMA_VERSION

runner = CliRunner()


# ---------------------------------------------------------------- numbers, by hand


def test_pareto_front_by_hand():
    # (cost, accuracy)
    points = [(1, 50), (2, 60), (3, 55), (2, 60), (4, 70), (0.5, 40), (4, 65), (5, 70)]
    # (3, 55) is beaten by (2, 60); (4, 65) by (4, 70); (5, 70) by (4, 70); equal points both stay.
    assert pareto_front(points) == [True, True, False, True, True, True, False, False]
    assert pareto_front([]) == []
    assert pareto_front([(1, 1)]) == [True]


def test_growth_exponents_of_an_exact_power_law():
    rows = [
        {"frames": t, "height": s, "batch": b, "y": 3.0 * t * s**2 * b**0.5}
        for t in (4, 8, 16) for s in (56, 112) for b in (1, 2, 4)
    ]  # fmt: skip
    fit = fit_growth(rows, ("frames", "height", "batch"), "y")
    assert fit.exponents == pytest.approx({"frames": 1.0, "height": 2.0, "batch": 0.5})
    assert fit.r2 == pytest.approx(1.0) and fit.n == 18


def test_growth_fit_uses_only_the_axes_that_vary_and_skips_bad_values():
    rows = [{"frames": t, "height": 112, "batch": 1, "y": 5.0 * t**1.5} for t in (2, 4, 8)]
    rows.append({"frames": 16, "height": 112, "batch": 1, "y": None})  # a failed row
    fit = fit_growth(rows, ("frames", "height", "batch"), "y")
    assert list(fit.exponents) == ["frames"] and fit.exponents["frames"] == pytest.approx(1.5) and fit.n == 3
    assert fit_growth(rows[:1], ("frames", "height"), "y") is None  # nothing varies
    assert fit_growth([], ("frames",), "y") is None


# ---------------------------------------------------------------- tables


def _row(arch="r3d_18", family="r3d", frames=16, size=112, batch=1, **over):
    row = dict.fromkeys(COLUMNS)
    row.update(arch=arch, family=family, mode="infer", batch=batch, frames=frames, height=size, width=size,
               device="cpu", device_name="test cpu", dtype="fp32", channels_last=False, compiled=False,
               cuda_graphs=False, arch_kwargs="{}", params=10_000_000, gmacs=10.0, gflops=20.0, status="ok", error="",
               latency_ms=None, n_samples=0)  # fmt: skip
    row.update(over)
    return row


ACC = [
    {"arch": "a", "input": "16x112x112", "top1": 60.0, "top5": 80.0, "dataset": "K400", "source": "paper A"},
    {"arch": "b", "input": "16x112x112", "top1": 70.0, "top5": None, "dataset": "K400", "source": "paper B"},
    {"arch": "c", "input": "16x112x112", "top1": 65.0, "top5": None, "dataset": "K400", "source": "paper C"},
    {"arch": "c", "input": "8x112x112", "top1": 50.0, "top5": None, "dataset": "K400", "source": "paper C, 8 frames"},
]


def _costs():
    return [
        _row("a", "x", gmacs=10.0, latency_ms=5.0, n_samples=3),
        _row("b", "x", gmacs=40.0, latency_ms=8.0, n_samples=3),
        _row("c", "x", gmacs=50.0, latency_ms=4.0, n_samples=3),  # dominated in MACs, not in latency
        _row("d", "x", gmacs=1.0, latency_ms=1.0, n_samples=3),  # no accuracy: no Pareto flag
    ]


def test_tradeoff_joins_accuracy_at_the_same_input_and_marks_pareto():
    frame = tradeoff_frame(_costs(), ACC).set_index("arch")
    assert frame.loc["c", "top1"] == 65.0 and frame.loc["c", "accuracy_source"] == "paper C"  # not the 8-frame one
    assert frame.loc["a", "top1_per_gmac"] == pytest.approx(6.0)
    assert frame["pareto_gmacs"].to_dict() == {"a": True, "b": True, "c": False, "d": None}
    assert frame["pareto_latency"].to_dict() == {"a": False, "b": True, "c": True, "d": None}


def test_a_different_input_gets_no_accuracy():
    frame = tradeoff_frame([_row("c", "x", frames=32)], ACC)
    assert frame["top1"].isna().all()


def test_user_accuracy_replaces_the_published_one(tmp_path):
    path = tmp_path / "acc.csv"
    path.write_text("arch,input,top1,source,dataset\nr3d_18,16x112x112,70.5,our run 42,K400-val\n")
    records = accuracy_records(load_accuracy(path))
    frame = tradeoff_frame([_row()], records)
    assert frame.loc[0, "top1"] == 70.5 and frame.loc[0, "accuracy_source"] == "our run 42"
    frame = tradeoff_frame([_row()], accuracy_records())
    assert frame.loc[0, "top1"] == 64.7  # VMZ, R3D-18 at 16x112x112


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("arch,input\nr3d_18,16x112x112\n", "lacks columns: top1, source"),
        ("arch,input,top1,source\nr3d_18,16x112x112,high,x\n", "top1/top5 must be numbers"),
        ("arch,input,top1,source\n", "holds no records"),
    ],
)
def test_bad_accuracy_files(tmp_path, content, message):
    path = tmp_path / "acc.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_accuracy(path)


def test_failed_rows_are_listed_not_dropped():
    rows = [*_costs(), _row("e", "x", batch=8, status="oom", error="CUDA out of memory"),
            _row("f", "x", params=None, gmacs=None, status="error", error="worker exited with code 3")]  # fmt: skip
    trade, failures = tradeoff_frame(rows, ACC), failures_frame(rows)
    assert set(trade["arch"]) == {"a", "b", "c", "d", "e", "f"}
    assert list(failures["status"]) == ["oom", "error"]
    text = report_text(report_frames(rows, ACC), ["run"])
    assert "## Failures" in text and "| e | infer | 8 | 16x112x112 | fp32 | cpu | oom | CUDA out of memory |" in text
    assert "| f | 16x112x112 | - | - |" in text  # in the trade-off table too, with its status
    assert "None: every row finished ok." not in text


def test_report_sections_are_one_list_in_the_markdown_order():
    from bench.report.builder import REPORT_FILES
    from bench.report.tradeoff import SECTIONS

    assert [s.title for s in SECTIONS] == [
        "Trade-off", "Failures", "Ours beside the papers", "Scaling", "How cost grows with clip length and frame size",
        "Why latency does not follow MACs",
    ]  # fmt: skip
    assert {f"{s.name}.csv" for s in SECTIONS} <= REPORT_FILES
    # No published count, no second clip size: the paper, scaling and growth sections have nothing to say.
    text = report_text(report_frames(_costs(), ACC), ["run"])
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == [
        "Trade-off", "Failures", "Why latency does not follow MACs",
    ]  # fmt: skip


def test_figures_section_says_which_figures_are_counted_afresh():
    from pathlib import Path

    from bench.report.markdown import figures_markdown

    assert figures_markdown([]) == ""
    text = figures_markdown([Path("tradeoff_gmacs.png"), Path("mixed_variants.png")], ("mixed_variants",))
    assert text.startswith(
        "\n## Figures\n\n![tradeoff_gmacs](tradeoff_gmacs.png)\n![mixed_variants](mixed_variants.png)\n"
    )
    assert "`mixed_variants`: counted with this checkout's models, not read from the runs." in text
    assert "counted" not in figures_markdown([Path("tradeoff_gmacs.png")], ("mixed_variants",))


def test_ours_beside_the_papers_with_the_difference():
    rows = [
        _row("r3d_18", params=33_371_472, gmacs=40.696553472),
        _row("s3d", "s3d", frames=64, size=224, params=8_320_048, gmacs=71.916314624),
    ]
    paper = paper_frame(rows)
    r3d = paper[(paper.arch == "r3d_18") & (paper.source.str.contains("torchvision"))].set_index("count")
    assert r3d.loc["params (M)", "verdict"] == "exact" and r3d.loc["GMACs", "verdict"] == "exact"
    vmz = paper[(paper.arch == "r3d_18") & (paper.source.str.contains("VMZ"))].set_index("count")
    assert vmz.loc["params (M)", "verdict"] == "rounds to it"  # 33.37 -> 33.4
    s3d = paper[paper.arch == "s3d"].iloc[0]
    assert s3d.verdict == "differs" and s3d.diff_pct == pytest.approx(100 * (71.916314624 - 66.4) / 66.4)
    assert "stem" in s3d.note


def test_scaling_fits_and_says_where_latency_departs_from_macs():
    rows = [
        _row("r", "x", frames=t, size=s, gmacs=0.01 * t * s**2 / 1e3, latency_ms=2.0 * t**0.5 * s**2 / 1e3,
             n_samples=5)
        for t in (4, 8, 16) for s in (56, 112)
    ]  # fmt: skip
    frame = scaling_frame(rows)
    got = {(r.axis, r.metric): (round(r.exponent, 6), r.note) for r in frame.itertuples()}
    assert got[("T (frames)", "MACs")] == (1.0, "")
    assert got[("H=W (size)", "MACs")] == (2.0, "")
    assert got[("T (frames)", "latency")] == (0.5, "grows slower than MACs (-0.50)")
    assert got[("H=W (size)", "latency")][1] == ""


# ---------------------------------------------------------------- files and figures


def _save(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "environment": {}, "rows": rows}))
    return path


def test_report_writes_tables_and_valid_figures(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [_row("r3d_18", gmacs=40.7, latency_ms=30.0, n_samples=3), _row("mc3_18", "r3d", gmacs=43.3, latency_ms=25.0, n_samples=3),
            *[_row("r2d_18", "r2d", frames=t, gmacs=0.13 * t, latency_ms=1.0 + t, n_samples=3) for t in (8, 16)]]  # fmt: skip
    text, paths, notes = write_report([_save(tmp_path / "run", rows)], tmp_path / "out", variants=False)
    names = {p.name for p in paths}
    assert {"report.md", "tradeoff.csv", "paper.csv", "scaling.csv", "failures.csv"} <= names
    assert {"tradeoff_gmacs.png", "tradeoff_gmacs.svg", "tradeoff_latency.png", "scaling.svg"} <= names
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if p.suffix == ".svg":
            assert ET.parse(p).getroot().tag.endswith("svg")
    assert "![tradeoff_gmacs](tradeoff_gmacs.png)" in text and not notes


def test_variants_figure_from_records(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.report.plots import plot_variants

    sweep = [{"arch": v, "split": s, "gmacs": g} for v, base in (("i3d_bottom_heavy", 50), ("i3d_top_heavy", 90))
             for s, g in zip(("Conv_2c", "Mixed_3b"), (base, base + (10 if base == 50 else -10)))]  # fmt: skip
    sweep += [{"arch": "i3d", "split": None, "gmacs": 111.0}, {"arch": "i2d", "split": None, "gmacs": 37.0}]
    resnets = [{"arch": "mc2_18", "family": "mc", "gmacs": 28.5, "top1": 64.8},
               {"arch": "mc3_18", "family": "mc", "gmacs": 43.3, "top1": 65.2},
               {"arch": "r3d_18", "family": "r3d", "gmacs": 40.7, "top1": 64.7}]  # fmt: skip
    paths = plot_variants(sweep, resnets, tmp_path / "mixed")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no results at"),
        (lambda p: (p / "bad.json").write_text("[1, 2") and p / "bad.json", "is not a vbench results file"),
        (lambda p: _save(p / "empty", []), "holds no rows"),
        (lambda p: (p / "v.json").write_text('{"schema_version": 99, "rows": [{}]}') and p / "v.json", "version 99"),
    ],
)
def test_report_on_bad_files_exits_2_with_one_line(tmp_path, make, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(make(tmp_path)), "--out", str(out), "--no-plots"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_report_cli_with_a_bad_accuracy_file_exits_2(tmp_path):
    run = _save(tmp_path / "run", [_row()])
    (tmp_path / "acc.csv").write_text("arch,top1\nx,1\n")
    result = runner.invoke(app, ["report", str(run), "--accuracy", str(tmp_path / "acc.csv"), "--no-plots",
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and "lacks columns: input, source" in result.stderr
