"""vbench compare: the Mann-Whitney test, the gate's statistics on synthetic samples, every verdict and exit code."""

import itertools
import json
import math
import random
import statistics

import pytest
from typer.testing import CliRunner

import bench.results.stats
from bench.cli import app
from bench.commands.profile import profile_options
from bench.errors import UsageError
from bench.report.verdict import compare_markdown
from bench.results.columns import COLUMNS
from bench.results.compare import (
    CompareConfig,
    Tolerances,
    compare_rows,
    load_compare_config,
    parse_fraction,
    refresh_command,
    rounds_needed,
)
from bench.results.schema import SCHEMA_VERSION
from bench.results.stats import _u_counts, mann_whitney_u

runner = CliRunner()


# ---------------------------------------------------------------- the test itself


def test_exact_p_values_worked_out_by_hand():
    # x above every y: 1 of the C(6, 3) = 20 orderings is as extreme.
    assert mann_whitney_u([4, 5, 6], [1, 2, 3], "greater").p == pytest.approx(1 / 20)
    assert mann_whitney_u([4, 5, 6], [1, 2, 3], "less").p == 1.0
    assert mann_whitney_u([4, 5, 6], [1, 2, 3], "two-sided").p == pytest.approx(2 / 20)
    # U = 1 (one pair with x < y): P(U >= 8) = (1 + 1) / 20 with U's null distribution 1,1,2,3,3,3,3,2,1,1.
    result = mann_whitney_u([3, 5, 6], [1, 2, 4], "greater")
    assert result.u == 8 and result.exact and result.p == pytest.approx(2 / 20)


@pytest.mark.parametrize(("m", "n"), list(itertools.product(range(1, 6), repeat=2)))
def test_null_distribution_counts_every_ordering(m, n):
    counts = [0] * (m * n + 1)
    for positions in itertools.combinations(range(m + n), m):
        counts[sum(p - i for i, p in enumerate(positions))] += 1  # y's below each x
    assert tuple(counts) == _u_counts(m, n)


def test_normal_approximation_agrees_with_the_exact_test(monkeypatch):
    rng = random.Random(0)
    for _ in range(20):
        x = [rng.gauss(0.4, 1) for _ in range(20)]
        y = [rng.gauss(0.0, 1) for _ in range(20)]
        exact = mann_whitney_u(x, y)
        monkeypatch.setattr(bench.results.stats, "EXACT_MAX", 0)
        approx = mann_whitney_u(x, y)
        monkeypatch.setattr(bench.results.stats, "EXACT_MAX", 100)
        assert exact.exact and not approx.exact
        assert approx.p == pytest.approx(exact.p, abs=0.01)


def test_ties_use_mid_ranks_and_all_equal_samples_prove_nothing():
    # x = [1, 2, 2], y = [2, 3]: ranks 1, 3, 3 | 3, 5 -> U_x = 7 - 6 = 1
    assert mann_whitney_u([1, 2, 2], [2, 3]).u == 1
    assert mann_whitney_u([5.0] * 6, [5.0] * 6).p == 1.0
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


# ---------------------------------------------------------------- the gate on synthetic samples


def _row(arch="r3d_18", samples=None, **over):
    row = dict.fromkeys(COLUMNS)
    row.update(arch=arch, family="r3d", mode="infer", batch=1, frames=16, height=112, width=112, device="cpu",
               dtype="fp32", channels_last=False, compiled=False, cuda_graphs=False, arch_kwargs="{}",
               params=33371472, trainable_params=33371472, gmacs=40.697, gflops=81.394, output_shape="1x400",
               status="ok", error="")  # fmt: skip
    if samples is not None:
        row.update(samples_ms=samples, latency_ms=statistics.median(samples))
    row.update(over)
    return row


def _draw(rng, sigma, scale=1.0, n=10):
    """Latencies around 10 ms with log-normal noise: IQR/median is about 1.35 sigma."""
    return [10.0 * scale * rng.lognormvariate(0, sigma) for _ in range(n)]


def _outcomes(sigma, slowdown, seeds=300):
    out = {"fail": 0, "not significant": 0}
    for seed in range(seeds):
        rng = random.Random(seed)
        base, head = _draw(rng, sigma), _draw(rng, sigma, slowdown)
        comparison = compare_rows([_row(samples=base)], [_row(samples=head)])
        out["fail"] += bool(comparison.regressions)
        out["not significant"] += any(c.verdict == "not significant" for c in comparison.changes)
    return {k: v / seeds for k, v in out.items()}


def test_a_a_comparisons_fail_at_most_alpha_of_the_time():
    alpha, seeds = 0.05, 400
    plain = sum(
        mann_whitney_u(_draw(random.Random(s), 0.05), _draw(random.Random(s + 10_000), 0.05)).p < alpha
        for s in range(seeds)
    )
    slack = 3 * math.sqrt(alpha * (1 - alpha) / seeds)
    assert plain / seeds <= alpha + slack  # the test is calibrated against "no change" ...
    assert _outcomes(0.05, 1.0)["fail"] <= alpha  # ... and the gate, which tests against the tolerance, more so
    assert _outcomes(0.2, 1.0)["fail"] <= alpha  # also on a noisy machine


def test_a_15_percent_slowdown_with_realistic_noise_is_detected():
    # sigma 0.02: IQR/median about 0.03, what a GPU gives; 10 samples a side (the default --repeats)
    assert _outcomes(0.02, 1.15)["fail"] >= 0.95


def test_a_15_percent_slowdown_hidden_in_noise_is_shown_not_failed():
    rng = random.Random(1)
    base, head = _draw(rng, 0.3), _draw(rng, 0.3, 1.15)
    q1, _, q3 = statistics.quantiles(base, n=4)
    assert (q3 - q1) / statistics.median(base) > 0.3
    (change,) = compare_rows([_row(samples=base)], [_row(samples=head)]).changes
    assert (change.mark, change.verdict, change.fails) == ("~", "not significant", False)
    assert change.ratio > 1.1 and change.p >= 0.05
    rates = _outcomes(0.3, 1.15)
    assert rates["not significant"] >= 0.5  # the usual outcome (else the medians land within 10 %)
    assert rates["fail"] <= 0.15  # a real 15 % change, yet the noise rarely lets it through the gate


# ---------------------------------------------------------------- rounds: the worker process as the unit


def _rounds_row(medians, contended=None, n=10, spread=0.01, seed=0):
    """A row timed in rounds: ``n`` samples around each round's median, the quiet rounds' samples pooled."""
    rng = random.Random(seed)
    contended = contended or [False] * len(medians)
    quiet = [m for m, bad in zip(medians, contended) if not bad]
    samples = [m * rng.lognormvariate(0, spread) for m, bad in zip(medians, contended) if not bad for _ in range(n)]
    return _row(samples=samples, latency_ms=statistics.median(quiet), rounds=len(medians),
                round_latency_ms=list(medians), round_contended=list(contended))  # fmt: skip


def test_rounds_needed_is_the_smallest_count_whose_best_p_is_below_alpha():
    # 3 a side: at best 1 / C(6, 3) = 0.05, not below 0.05; 4 a side: 1 / 70. At 0.01: 1 / 252 with 5.
    assert rounds_needed(0.05) == 4
    assert rounds_needed(0.01) == 5
    assert rounds_needed(0.2) == 2  # 1 / C(4, 2) = 1/6


def test_with_enough_rounds_the_round_medians_are_tested():
    base = _rounds_row([10.0, 10.1, 10.2, 10.3, 10.4])
    head = _rounds_row([12.0, 12.1, 12.2, 12.3, 12.4], seed=1)  # every head round beyond 1.1 x every base round
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.verdict, change.note) == ("+", "slower", "5 and 5 rounds")
    assert change.p == pytest.approx(1 / math.comb(10, 5))  # complete separation of 5 and 5 values
    assert change.ratio == pytest.approx(12.2 / 10.2)


def test_one_slow_process_is_not_a_regression_when_rounds_are_the_unit():
    # The head's third worker ran 30 % slow (another memory layout, another core): its 10 samples, pooled with
    # the others, make the sample test significant; as one round of five it is one value in ten.
    base = _rounds_row([10.0, 10.1, 10.2, 10.3, 10.4])
    head = _rounds_row([10.05, 10.15, 13.2, 13.3, 13.4], seed=1)
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.verdict, change.note) == ("~", "not significant", "5 and 5 rounds")
    pooled = mann_whitney_u([t / 1.1 for t in head["samples_ms"]], base["samples_ms"], "greater")
    assert pooled.p < 0.05  # what the gate said before rounds were its unit


def test_contended_rounds_are_left_out_of_the_round_test():
    base = _rounds_row([10.0, 30.0, 10.1, 10.2, 10.3], contended=[False, True, False, False, False])
    head = _rounds_row([12.0, 12.1, 12.2, 12.3, 12.4], seed=1)
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.note) == ("+", "4 and 5 rounds")
    assert change.p == pytest.approx(1 / math.comb(9, 4))


def test_rounds_left_too_few_by_contention_are_inconclusive_not_tested_on_samples():
    # Five rounds a side would reach alpha; four of the head's were contended, and the one quiet worker's samples
    # are what rounds avoid testing. Whatever the ratio: within the tolerance too.
    base = _rounds_row([10.0, 10.1, 10.2, 10.3, 10.4])
    for medians in ([12.0, 30.0, 30.1, 30.2, 30.3], [10.1, 30.0, 30.1, 30.2, 30.3]):
        head = _rounds_row(medians, contended=[False, True, True, True, True], seed=1)
        comparison = compare_rows([base], [head])
        (change,) = comparison.changes
        assert (change.mark, change.verdict) == ("?", "inconclusive")
        assert change.note == "too few quiet rounds: 5 of 5 and 1 of 5"
        assert comparison.exit_code == 4


def test_too_few_rounds_fall_back_to_the_samples_and_say_so():
    base = _rounds_row([10.0, 10.1, 10.2])
    head = _rounds_row([12.0, 12.1, 12.2], seed=1)
    (change,) = compare_rows([base], [head]).changes
    assert change.note == "samples: 3 and 3 quiet rounds are too few at alpha 0.05"
    assert change.mark == "+"  # 30 samples a side, every head sample beyond 1.1 x the base's
    assert change.p < 1 / math.comb(6, 3)
    # With alpha 0.2, three rounds a side are enough: 1 / 20 < 0.2.
    loose = CompareConfig(default=Tolerances(alpha=0.2))
    (change,) = compare_rows([base], [head], loose).changes
    assert change.note == "3 and 3 rounds" and change.p == pytest.approx(1 / 20)


@pytest.mark.parametrize(
    "bad",
    [
        {"round_contended": [False, False]},  # not one flag per median
        {"round_contended": [0, 0, 0, 0, 0]},  # flags that are not bools
        {"round_latency_ms": [10.0, -1.0, 10.2, 10.3, 10.4]},  # a median that is no latency
        {"round_latency_ms": "10,10,10,10,10"},
    ],
)
def test_malformed_rounds_fall_back_to_the_samples(bad):
    base = {**_rounds_row([10.0, 10.1, 10.2, 10.3, 10.4]), **bad}
    head = _rounds_row([12.0, 12.1, 12.2, 12.3, 12.4], seed=1)
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.note) == ("+", "samples: only the head has rounds")
    assert change.p < 1 / math.comb(10, 5)  # 50 samples a side: the sample test's p, not the rounds'


def test_a_a_rounds_with_process_to_process_spread_fail_at_most_alpha_of_the_time():
    # Each worker process draws its own level (sigma 0.08 between processes, 0.01 within one), as separate
    # workers on this machine did (reports/benchmarks/gate_power.md: A/A head/base 0.85-1.19). One worker a
    # side, the sample test takes 10 correlated samples for 10 independent ones and fails A/A pairs often; five
    # rounds a side, the round test fails them at most alpha of the time.
    seeds, fails, single_fails = 300, 0, 0
    for seed in range(seeds):
        rng = random.Random(seed)
        base = _rounds_row([10 * rng.lognormvariate(0, 0.08) for _ in range(5)], seed=2 * seed)
        head = _rounds_row([10 * rng.lognormvariate(0, 0.08) for _ in range(5)], seed=2 * seed + 1)
        fails += bool(compare_rows([base], [head]).regressions)
        first = [_rounds_row(row["round_latency_ms"][:1], seed=seed) for row in (base, head)]
        single_fails += bool(compare_rows([first[0]], [first[1]]).regressions)
    assert fails / seeds <= 0.05
    assert single_fails / seeds > 0.10


def test_five_rounds_a_side_still_catch_a_30_percent_slowdown():
    seeds, caught = 200, 0
    for seed in range(seeds):
        rng = random.Random(seed)
        base = _rounds_row([10 * rng.lognormvariate(0, 0.08) for _ in range(5)], seed=2 * seed)
        head = _rounds_row([13 * rng.lognormvariate(0, 0.08) for _ in range(5)], seed=2 * seed + 1)
        caught += bool(compare_rows([base], [head]).regressions)
    assert caught / seeds >= 0.75


def test_faster_is_reported_better_and_never_fails():
    rng = random.Random(3)
    comparison = compare_rows([_row(samples=_draw(rng, 0.02))], [_row(samples=_draw(rng, 0.02, 0.7))])
    (change,) = comparison.changes
    assert (change.mark, change.verdict) == ("-", "faster") and not comparison.regressions


def test_per_architecture_tolerance_relaxes_the_gate():
    rng = random.Random(4)
    base, head = _draw(rng, 0.02), _draw(rng, 0.02, 1.15)
    assert compare_rows([_row(samples=base)], [_row(samples=head)]).regressions
    loose = CompareConfig(per_arch=(("r3d_*", Tolerances(latency=0.25)),))
    assert not compare_rows([_row(samples=base)], [_row(samples=head)], loose).changes


def test_memory_gates_on_its_ratio():
    base, head = _row(device="cuda", peak_mem_mib=1000.0), _row(device="cuda", peak_mem_mib=1060.0)
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.metric, change.fails) == ("+", "peak_mem_mib", True)
    assert not compare_rows([base], [_row(device="cuda", peak_mem_mib=1040.0)]).changes


def test_a_cpu_rows_peak_rss_fails_only_beyond_its_noise_between_processes():
    # Four runs of mc3_18 at 8x32x32 on this machine read 301.5, 301.6, 301.6 and 327.1 MiB of peak RSS.
    base, head = _row(peak_mem_mib=301.5), _row(peak_mem_mib=327.1)
    (change,) = compare_rows([base], [head]).changes
    assert (change.mark, change.verdict, change.fails) == ("~", "more memory", False)
    assert change.note == "peak RSS: within its noise between processes"
    assert compare_rows([base], [head]).exit_code == 0
    (less,) = compare_rows([head], [base]).changes  # noise is not an improvement either
    assert (less.mark, less.verdict, less.fails) == ("~", "less memory", False)
    (shrunk,) = compare_rows([base], [_row(peak_mem_mib=301.5 * 0.74)]).changes
    assert (shrunk.mark, shrunk.fails) == ("-", False)
    # Beyond 25 %, the growth is a regression on the CPU too; on CUDA, beyond the tolerance (above).
    (grown,) = compare_rows([base], [_row(peak_mem_mib=301.5 * 1.26)]).changes
    assert (grown.mark, grown.fails, grown.note) == ("+", True, "")


# ---------------------------------------------------------------- counts, statuses, rows


@pytest.mark.parametrize(
    ("metric", "new"), [("params", 33371473), ("gmacs", 40.6971), ("gflops", 81.3942), ("output_shape", "1x401")]
)
def test_any_exact_change_fails_improvements_included(metric, new):
    for value in (new, _row()[metric]):
        comparison = compare_rows([_row()], [_row(**{metric: value})])
        assert bool(comparison.regressions) == (value == new)
    smaller = compare_rows([_row()], [_row(params=33371471)])
    assert smaller.counts_changed and smaller.regressions[0].mark == "x"


@pytest.mark.parametrize(("base", "head", "mark", "fails"), [
    ("ok", "oom", "!", True), ("ok", "error", "!", True), ("ok", "timeout", "!", True),
    ("oom", "ok", "-", False), ("oom", "error", "~", False),
])  # fmt: skip
def test_status_changes(base, head, mark, fails):
    (change,) = compare_rows([_row(status=base)], [_row(status=head, error="boom" if head != "ok" else "")]).changes
    assert (change.mark, change.fails) == (mark, fails)


def test_new_and_removed_rows_are_listed_not_failed():
    comparison = compare_rows([_row(), _row(arch="mc3_18")], [_row(), _row(batch=8)])
    assert comparison.new == ["r3d_18 infer b8 16x112x112 fp32 cpu"]
    assert comparison.removed == ["mc3_18 infer b1 16x112x112 fp32 cpu"]
    assert not comparison.regressions and comparison.unchanged == 1


def test_nothing_in_common_or_duplicate_rows_is_bad_input():
    with pytest.raises(UsageError, match="share no configuration"):
        compare_rows([_row()], [_row(batch=2)])
    with pytest.raises(UsageError, match="two rows"):
        compare_rows([_row(), _row()], [_row()])


def test_markdown_verdict_and_refresh_command():
    comparison = compare_rows([_row(), _row(arch="mc3_18")], [_row(params=1), _row(arch="mc3_18", status="oom")])
    env = {"command": ["vbench", "profile", "--arch", "all", "--static", "--out", "somewhere/else"]}
    text = compare_markdown(
        comparison, "base", "head", refresh_command(env, "reports/baselines/cpu-static", profile_options())
    )
    assert text.startswith("## vbench compare: 2 regressions")
    assert "| x | r3d_18 | infer b1 16x112x112 fp32 cpu | params | 33,371,472 | 1 |" in text
    assert "| ! | mc3_18 |" in text and "new failure" in text
    assert "vbench profile --arch all --static --overwrite --out reports/baselines/cpu-static" in text
    assert "`x` an exact count" in text


def test_tolerance_parsing_and_config_file(tmp_path):
    assert parse_fraction("10%", "t") == pytest.approx(0.1) and parse_fraction("0.1", "t") == 0.1
    for bad in ("ten", "10", "-5%"):
        with pytest.raises(UsageError):
            parse_fraction(bad, "--latency-tol")
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text('[tool.vbench.compare]\nlatency-tol = "20%"\n\n[tool.vbench.compare.arch."i3d*"]\nalpha = 0.01\n')
    config = load_compare_config(cfg, memory_tol="3%")
    assert config.default == Tolerances(latency=0.2, memory=0.03, alpha=0.05)
    assert config.for_arch("i3d_top_heavy") == Tolerances(latency=0.2, memory=0.03, alpha=0.01)
    cfg.write_text("[tool.vbench.compare]\nlatency = 1\n")
    with pytest.raises(UsageError, match="unknown key 'latency'"):
        load_compare_config(cfg)


# ---------------------------------------------------------------- the command line


def _save(path, rows, version=SCHEMA_VERSION, env=None):
    path.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": version, "environment": env or {}, "rows": rows}
    (path / "results.json").write_text(json.dumps(doc))
    return str(path)


def _compare(*args, env=None):
    return runner.invoke(app, ["compare", *args, "--config", "/dev/null"], env=env)


def test_exit_codes_of_the_gate(tmp_path):
    base = _save(tmp_path / "base", [_row()])
    assert _compare(base, _save(tmp_path / "same", [_row()])).exit_code == 0
    changed = _compare(base, _save(tmp_path / "changed", [_row(gmacs=41.0)]))
    assert changed.exit_code == 1 and "| x | r3d_18 |" in changed.stdout
    oom = _compare(base, _save(tmp_path / "oom", [_row(status="oom", error="CUDA out of memory")]))
    assert oom.exit_code == 1 and "new failure (CUDA out of memory)" in oom.stdout


def test_the_verdict_names_the_rounds_it_tested(tmp_path):
    base = _save(tmp_path / "base", [_rounds_row([10.0, 10.1, 10.2, 10.3, 10.4])])
    head = _save(tmp_path / "head", [_rounds_row([12.0, 12.1, 12.2, 12.3, 12.4], seed=1)])
    result = _compare(base, head)
    assert result.exit_code == 1
    assert "slower (5 and 5 rounds)" in result.stdout
    assert "on the quiet rounds' medians where both sides have enough (4 a side), else on the raw samples" in (
        result.stdout
    )
    few = _save(tmp_path / "few", [_rounds_row([12.0, 12.1, 12.2], seed=1)])
    assert "slower (samples: only the head has rounds)" in _compare(_save(tmp_path / "one", [_row(
        samples=[10.0 + i / 100 for i in range(10)])]), few).stdout  # fmt: skip


def test_verdict_goes_to_the_step_summary_and_a_file(tmp_path):
    summary, md = tmp_path / "summary.md", tmp_path / "verdict.md"
    summary.write_text("earlier step\n")
    base = _save(tmp_path / "base", [_row()])
    result = _compare(base, base, "--markdown", str(md), env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0
    assert summary.read_text().startswith("earlier step\n## vbench compare: no regression")
    assert md.read_text() == result.stdout


def test_markdown_never_replaces_a_device_or_fifo_and_writes_through_a_link(tmp_path):
    """As root, a rename over /dev/full made it a regular file (a hostile tester's finding): refused instead."""
    import os
    import stat

    base = _save(tmp_path / "base", [_row()])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = _compare(base, base, "--markdown", str(fifo))
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target, link = tmp_path / "target.md", tmp_path / "link.md"
    link.symlink_to(target)
    assert _compare(base, base, "--markdown", str(link)).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("## vbench compare: no regression")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: str(p / "missing"), "no results at"),
        (lambda p: (p / "bad.json").write_text("{not json") and str(p / "bad.json"), "is not a vbench results file"),
        (lambda p: _save(p / "empty", []), "holds no rows"),
        (lambda p: _save(p / "v0", [_row()], version=0), "schema version 0; this vbench reads version 1"),
        (lambda p: _save(p / "other", [_row(batch=4)]), "share no configuration"),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, setup, message):
    base = _save(tmp_path / "base", [_row()])
    result = _compare(base, setup(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_tolerance_exits_2(tmp_path):
    base = _save(tmp_path / "base", [_row()])
    result = _compare(base, base, "--latency-tol", "10")
    assert result.exit_code == 2 and "ambiguous; write 10% or 0.1" in result.stderr


def test_timed_runs_on_different_machines_are_flagged():
    rng = random.Random(5)
    base_env = {"device_name": "NVIDIA H100", "torch_threads": 2}
    head_env = {"device_name": "NVIDIA A100", "torch_threads": 2}
    samples = _draw(rng, 0.02)
    comparison = compare_rows([_row(samples=samples)], [_row(samples=samples)], None, base_env, head_env)
    assert comparison.warnings == ["different devices: base NVIDIA H100, head NVIDIA A100"]
    assert "> warning: different devices" in compare_markdown(comparison, "b", "h")


def test_a_markdown_path_under_a_file_is_one_line_before_the_verdict(tmp_path):
    """A hostile tester's finding: ``--markdown a_file/x.md`` printed the verdict, then "File exists"."""
    base = _save(tmp_path / "base", [_row()])
    (tmp_path / "a_file").write_text("")
    result = _compare(base, base, "--markdown", str(tmp_path / "a_file" / "x.md"))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"vbench: error: --markdown '{tmp_path / 'a_file' / 'x.md'}': its folder '{tmp_path / 'a_file'}' "
        "is a file, not a folder"
    )


def test_the_ratio_is_of_the_rows_latencies_as_their_tables_show_them():
    """A row of several rounds has the median of its rounds' medians as its latency, not its pooled samples'
    median (found by the helper who wired ``merge --rounds``: 510 ms in the table, 536 ms in the verdict)."""
    rounds = [[10.0, 10.0, 10.0], [10.0, 14.0, 14.0], [10.0, 14.0, 14.0]]  # medians 10, 14, 14: latency 14
    pooled = [t for r in rounds for t in r]
    assert statistics.median(pooled) == 10.0 != statistics.median(statistics.median(r) for r in rounds) == 14.0
    base = _row(samples=pooled, latency_ms=14.0)
    head = _row(samples=[t * 1.5 for t in pooled], latency_ms=21.0)
    (change,) = [c for c in compare_rows([base], [head]).changes if c.metric == "latency_ms"]
    assert (change.base, change.head, change.ratio) == (14.0, 21.0, 1.5)
