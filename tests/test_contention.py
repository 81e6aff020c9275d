"""Contention (issue 23): the CPU share against fake clocks, the GPU path against a fake NVML, one real
run beside busy processes, and what compare and report make of a contended row."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from waiting import until

from bench.measure.contention import LOAD_EXCESS_PER_CORE, contention_columns, cpu_contended, gpu_monitor, reason_names
from bench.measure.timing import CONTENDED_SHARE, Measurement, cpu_share, sample
from bench.results.records import SamplePolicy

# ---------------------------------------------------------------- the CPU share, against fake clocks


class _FakeClocks:
    """A wall clock and a CPU clock that each call of the timed function advances by known amounts."""

    def __init__(self, wall_per_call: float, cpu_per_call: float) -> None:
        self.wall = 100.0
        self.cpu = 7.0
        self.wall_per_call, self.cpu_per_call = wall_per_call, cpu_per_call

    def fn(self) -> None:
        self.wall += self.wall_per_call
        self.cpu += self.cpu_per_call

    def time(self, fn) -> float:
        start = self.wall
        fn()
        return self.wall - start


def test_the_share_is_cpu_time_over_wall_time_times_threads_across_the_timed_samples():
    # 10 samples of 0.2 s wall each; the process's 2 threads got 0.3 s of CPU a sample: 3 s / (2 s x 2) = 0.75.
    clocks = _FakeClocks(wall_per_call=0.2, cpu_per_call=0.3)
    m = sample(
        clocks.fn, SamplePolicy(warmup=3, repeats=10), clocks, now=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu
    )
    assert m.n == 10
    assert m.wall_s == pytest.approx(2.0)
    assert m.cpu_s == pytest.approx(3.0)  # the warm-up's CPU time is not counted
    assert m.cpu_share(2) == pytest.approx(0.75)
    assert m.cpu_share(1) == 1.0  # clipped: never above 1


def test_a_quiet_run_is_not_contended_and_two_busy_processes_on_its_cores_are():
    # Quiet: 2 threads computing all along (CPU time = 2 x wall) -> share 1, load no more than the run's own.
    quiet = _FakeClocks(wall_per_call=0.1, cpu_per_call=0.2)
    m = sample(quiet.fn, SamplePolicy(0, 5), quiet, now=lambda: quiet.wall, cpu_clock=lambda: quiet.cpu)
    assert m.cpu_share(2) == pytest.approx(1.0)
    assert not cpu_contended(m.cpu_share(2), 2.1, 2.0, threads=2, cores=2)
    # Two busy processes on the same two cores: the worker's threads get half of them.
    busy = _FakeClocks(wall_per_call=0.1, cpu_per_call=0.1)
    m = sample(busy.fn, SamplePolicy(0, 5), busy, now=lambda: busy.wall, cpu_clock=lambda: busy.cpu)
    assert m.cpu_share(2) == pytest.approx(0.5)
    assert cpu_contended(m.cpu_share(2), 4.0, 4.0, threads=2, cores=2)


def test_the_threshold_is_strict_and_its_value_is_the_25_percent_bound():
    # A share of 0.8 slows a CPU-bound row by at most 1 / 0.8 = 1.25: the 25 % bound.
    assert pytest.approx(1 / 1.25) == CONTENDED_SHARE
    assert not cpu_contended(CONTENDED_SHARE, None, None, 2, 2)
    assert cpu_contended(CONTENDED_SHARE - 0.01, None, None, 2, 2)
    assert cpu_share(0.79, 0.5, 2) == pytest.approx(0.79)
    assert cpu_share(1.0, 0.0, 2) is None and cpu_share(1.0, 1.0, 0) is None


def test_the_share_decides_and_the_load_only_where_no_share_was_measured():
    cores, threads = 4, 2
    high = threads + LOAD_EXCESS_PER_CORE * cores  # 6.0: another machine's worth of runnable tasks
    # A lagging load average after busy processes stopped (measured: 4.3-4.8 on 2 cores, share 0.99): quiet.
    assert not cpu_contended(0.99, high + 3, high + 3, threads, cores)
    assert cpu_contended(0.5, 0.0, 0.0, threads, cores)
    # No share (an mps row): the load, high at both ends.
    assert cpu_contended(None, high, high + 1, threads, cores)
    assert not cpu_contended(None, high - 0.1, high + 5, threads, cores)  # the load average lags: both ends
    assert not cpu_contended(None, None, high, threads, cores)
    assert not cpu_contended(None, None, None, None, None)


def test_a_measurement_without_cpu_times_has_no_share():
    assert Measurement((0.1, 0.2)).cpu_share(2) is None


# ---------------------------------------------------------------- the GPU path, against a fake NVML


class _FakeNvml:
    """The few ``pynvml`` calls vbench makes, over scripted readings."""

    NVML_CLOCK_SM = 1

    def __init__(self, pids=(), clocks=(1980,), reasons=(0,), uuid="GPU-1234") -> None:
        self.pids, self.clocks, self.reasons, self.uuid = list(pids), list(clocks), list(reasons), uuid
        self.calls = 0
        self.inits = 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        if uuid != self.uuid:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return "handle"

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return "handle"

    def _next(self, values):
        return values[min(self.calls, len(values) - 1)]

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=p, usedGpuMemory=1) for p in self._next(self.pids or [()])]

    def nvmlDeviceGetClockInfo(self, handle, which):
        assert which == self.NVML_CLOCK_SM
        return self._next(self.clocks)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        value = self._next(self.reasons)
        self.calls += 1
        return value


def _watch(nvml: _FakeNvml, readings: int = 3):
    monitor = gpu_monitor("1234", 0, import_nvml=lambda: nvml)
    assert monitor is not None
    for _ in range(readings):
        monitor.sample()
    return monitor.stop()


def test_the_gpu_alone_and_at_full_clock_is_not_contended():
    me = os.getpid()
    report = _watch(_FakeNvml(pids=[(me,)], clocks=(1980, 1755, 1980), reasons=(0, 0x4, 0)))
    assert report.other_processes == 0
    assert report.sm_clock_mhz == 1755  # the lowest clock sampled
    assert report.columns()["throttle_reasons"] == "sw_power_cap"  # recorded, not a slowdown at full load
    assert not report.contended
    assert contention_columns("cuda", None, 1.0, 1.0, 8, report)["contended"] is False


def test_another_process_on_the_gpu_makes_the_row_contended():
    me = os.getpid()
    report = _watch(_FakeNvml(pids=[(me,), (me, 4242), (me,)]))
    assert report.other_processes == 1
    assert report.contended
    cols = contention_columns("cuda", None, 0.5, 0.5, 8, report)
    assert cols["contended"] is True and cols["gpu_other_processes"] == 1


def test_in_a_container_the_worker_is_one_of_the_host_pids_listed():
    # NVML lists host pids; this process's pid is not among them: one of them is the worker.
    assert _watch(_FakeNvml(pids=[(91001,)])).other_processes == 0
    assert _watch(_FakeNvml(pids=[(91001, 91002)])).other_processes == 1


def test_thermal_or_board_slowdown_makes_the_row_contended():
    report = _watch(_FakeNvml(pids=[(os.getpid(),)], reasons=(0, 0x40 | 0x4, 0)))
    assert report.throttled and report.contended
    assert reason_names(report.reasons) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert reason_names(0x8 | 0x10000) == ["hw_slowdown", "0x10000"]


def test_the_monitor_samples_in_a_thread_while_started():
    nvml = _FakeNvml(pids=[(os.getpid(),)])
    monitor = gpu_monitor("GPU-1234", 0, import_nvml=lambda: nvml)
    assert monitor is not None
    monitor.interval = 0.001
    monitor.start()
    until("the monitor's thread to sample", lambda: nvml.calls >= 5, deadline_s=30)
    report = monitor.stop()
    assert report.samples >= 5


def test_without_nvml_the_gpu_fields_stay_empty():
    def missing():
        raise ImportError("No module named 'pynvml'")

    assert gpu_monitor("1234", 0, import_nvml=missing) is None
    assert gpu_monitor("other", 0, import_nvml=lambda: _FakeNvml()) is None  # no such device
    cols = contention_columns("cuda", None, 1.0, 1.0, 8, None)
    assert cols["gpu_other_processes"] is None and cols["throttle_reasons"] is None
    assert cols["contended"] is False


# ---------------------------------------------------------------- for real: two busy processes


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_busy_processes_on_the_machine_make_a_real_measurement_contended():
    import torch

    threads = torch.get_num_threads()
    n_busy = max(2, os.cpu_count() or 2)  # one per core at least: the worker's threads can get half at most
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_busy)]
    try:
        until("the busy processes to run", lambda: all(_cpu_ticks(p.pid) > 0 for p in busy), deadline_s=60)
        a = torch.randn(256, 256)

        def step() -> object:
            return a @ a

        seen: list[float | None] = []

        def flagged() -> bool:
            m = sample(step, SamplePolicy(warmup=2, repeats=20, min_time=1.0), _WallClock())
            share = m.cpu_share(threads)
            seen.append(share)
            return contention_columns("cpu", share, None, None, threads)["contended"]

        until(f"a contended measurement (shares seen: {seen})", flagged, deadline_s=120)
        assert seen[-1] is not None and seen[-1] < CONTENDED_SHARE
    finally:
        for p in busy:
            p.kill()
        for p in busy:
            p.wait()


class _WallClock:
    def time(self, fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


# ---------------------------------------------------------------- compare: a contended row is inconclusive


def _timed(samples, **over):
    from test_bench_compare import _row

    return _row(samples=samples, **over)


def test_compare_calls_a_contended_head_inconclusive_with_exit_4(tmp_path):
    from test_bench_compare import _compare, _save

    quiet = [100.0 + i for i in range(10)]
    base = _save(tmp_path / "base", [_timed(quiet, contended=False)])
    # 4x slower, significant, but timed beside busy processes: not a regression, and not a pass.
    slow = _compare(base, _save(tmp_path / "slow", [_timed([4 * t for t in quiet], contended=True, cpu_share=0.2)]))
    assert slow.exit_code == 4, slow.output
    assert "## vbench compare: no regression, 1 inconclusive" in slow.stdout
    assert "| ? | r3d_18 |" in slow.stdout and "inconclusive (head contended)" in slow.stdout
    assert "could not be judged" in slow.stdout
    # The same numbers, contended: still no pass.
    same = _compare(base, _save(tmp_path / "same", [_timed(quiet, contended=True)]))
    assert same.exit_code == 4, same.output  # equal latency is still no pass: the machine was shared
    # Quiet on both sides: the real verdicts and exit codes.
    assert _compare(base, _save(tmp_path / "q", [_timed(quiet, contended=False)])).exit_code == 0
    regressed = _compare(base, _save(tmp_path / "r", [_timed([4 * t for t in quiet], contended=False)]))
    assert regressed.exit_code == 1 and "| + | r3d_18 |" in regressed.stdout


def test_a_contended_base_is_inconclusive_too_and_a_regression_elsewhere_still_fails(tmp_path):
    from test_bench_compare import _compare, _save

    quiet = [100.0 + i for i in range(10)]
    base = _save(
        tmp_path / "base",
        [_timed(quiet, contended=True), _timed(quiet, arch="mc3_18", contended=False)],
    )
    head = _save(
        tmp_path / "head",
        [_timed(quiet, contended=False), _timed([2 * t for t in quiet], arch="mc3_18", contended=False)],
    )
    result = _compare(base, head)
    assert result.exit_code == 1, result.output  # the regression wins over the inconclusive row
    assert "inconclusive (base contended)" in result.stdout
    assert "| + | mc3_18 |" in result.stdout


# ---------------------------------------------------------------- report and tables: marked, left out of fits


def test_a_contended_latency_is_off_the_pareto_front_unless_asked():
    from test_bench_report import ACC, _costs

    from bench.report.tradeoff import tradeoff_frame

    rows = _costs()
    rows[2]["contended"] = True  # "c": on the latency front when quiet (4 ms, 65 %)
    frame = tradeoff_frame(rows, ACC).set_index("arch")
    # Without c (4 ms, 65 %), a (5 ms, 60 %) is no longer dominated: it joins the front.
    assert frame["pareto_latency"].to_dict() == {"a": True, "b": True, "c": None, "d": None}
    assert frame.loc["c", "contended"] and frame.loc["c", "latency_ms"] == 4.0  # shown, not ranked
    assert frame["pareto_gmacs"].to_dict() == {"a": True, "b": True, "c": False, "d": None}  # MACs: unaffected
    included = tradeoff_frame(rows, ACC, include_contended=True).set_index("arch")
    assert included["pareto_latency"].to_dict() == {"a": False, "b": True, "c": True, "d": None}


def test_contended_latencies_are_left_out_of_the_scaling_fits_unless_asked():
    from test_bench_report import _row

    from bench.report.tradeoff import scaling_frame

    rows = [_row("r", "x", frames=t, size=112, gmacs=0.01 * t, latency_ms=2.0 * t, n_samples=5) for t in (4, 8, 16)]
    rows.append(_row("r", "x", frames=32, size=112, gmacs=0.32, latency_ms=500.0, n_samples=5, contended=True))

    def latency_fit(frame):
        (fit,) = [r for r in frame.itertuples() if r.metric == "latency"]
        return round(fit.exponent, 6), fit.n

    assert latency_fit(scaling_frame(rows)) == (1.0, 3)  # the 4x-too-slow row is not in the fit
    exponent, n = latency_fit(scaling_frame(rows, include_contended=True))
    assert n == 4 and exponent > 1.1


def test_report_marks_contended_rows_and_include_contended_puts_them_back(tmp_path):
    from clirun import vbench_here
    from test_bench_report import _costs, _save

    rows = _costs()
    rows[2]["contended"] = True
    run = _save(tmp_path / "run", rows)
    result = vbench_here("report", run, "--out", tmp_path / "r", "--no-plots")
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert "4.00 (contended)" in text
    assert "left out of the scaling fits and the latency Pareto front" in text
    again = vbench_here("report", run, "--out", tmp_path / "r2", "--no-plots", "--include-contended")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "included in the scaling fits" in (tmp_path / "r2" / "report.md").read_text()


def test_the_run_summary_marks_contended_rows_with_a_footnote():
    from test_bench_report import _row

    from bench.report.tables import row_line, summary_markdown

    quiet = _row("a", "x", latency_ms=5.0, n_samples=3, contended=False)
    shared = _row("b", "x", latency_ms=9.0, n_samples=3, contended=True, noisy=True)
    text = summary_markdown([quiet, shared])
    assert "| 5.00 |" in text and "9.00 (noisy, contended)" in text
    assert "(contended): 1 row was timed while another workload took a material part of the machine" in text
    assert "(contended)" not in summary_markdown([quiet])
    assert "latency_ms=9.00 (noisy, contended)" in row_line(shared)


@pytest.mark.slow
def test_a_real_cpu_run_fills_the_contention_columns(tmp_path):
    from test_bench_runner import FAST, _vbench

    from bench.results.store import load_results

    out = tmp_path / "run"
    proc = _vbench("profile", "--arch", "fake_ok", "--plugin", "fake_archs", *FAST, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (row,) = load_results(out)[0]
    assert 0 < row["cpu_share"] <= 1
    assert isinstance(row["contended"], bool)
    expected = cpu_contended(row["cpu_share"], row["load_before"], row["load_after"], row["threads"], os.cpu_count())
    assert row["contended"] is expected  # the verdict of the recorded share and loads, whatever this machine does
    assert row["load_before"] >= 0 and row["load_after"] >= 0
    assert row["gpu_other_processes"] is None and row["throttle_reasons"] is None  # a CPU row: no NVML
    csv_header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"contended", "cpu_share", "load_before", "load_after"} <= set(csv_header)


# ---------------------------------------------------------------- rounds and settling


def test_round_robin_runs_every_job_once_per_round_rounds_in_turn():
    from bench.run.rounds import round_robin

    assert round_robin(["a", "b", "c"], 2) == [(1, "a"), (1, "b"), (1, "c"), (2, "a"), (2, "b"), (2, "c")]
    assert round_robin(["a"], 1) == [(1, "a")]


def _round(samples, contended=False, **over):
    from test_bench_report import _row

    return _row("a", "x", batch=2, latency_ms=sorted(samples)[len(samples) // 2], samples_ms=list(samples),
                n_samples=len(samples), contended=contended, cpu_share=0.3 if contended else 0.95, **over)  # fmt: skip


def test_the_row_of_several_rounds_is_the_median_of_the_quiet_rounds_medians():
    from bench.run.rounds import combine_rounds

    rounds = [_round([9, 10, 11]), _round([11, 12, 13]), _round([39, 40, 41], contended=True)]
    row = combine_rounds(rounds, settle_s=1.5, settled=True)
    assert row["latency_ms"] == 11.0  # median of 10 and 12; the contended round's 40 is left out
    assert row["round_latency_ms"] == [10.0, 12.0, 40.0] and row["round_contended"] == [False, False, True]
    assert row["samples_ms"] == [9, 10, 11, 11, 12, 13] and row["contended_samples_ms"] == [39, 40, 41]
    assert row["n_samples"] == 6 and row["latency_min_ms"] == 9.0
    assert row["clips_per_s"] == pytest.approx(2 / 0.011)
    assert row["contended"] is False and row["cpu_share"] == 0.95
    assert (row["rounds"], row["settle_s"], row["settled"]) == (3, 1.5, True)


def test_when_every_round_was_contended_all_make_the_number_and_the_row_says_contended():
    from bench.run.rounds import combine_rounds

    row = combine_rounds([_round([9, 10, 11], True), _round([19, 20, 21], True), _round([29, 30, 31], True)])
    assert row["latency_ms"] == 20.0 and row["contended"] is True and row["contended_samples_ms"] == []


def test_a_round_that_failed_gives_its_row():
    from bench.run.rounds import combine_rounds

    bad = _round([1.0], status="oom", error="out of memory")
    assert combine_rounds([_round([9, 10, 11]), bad])["status"] == "oom"


def test_settle_waits_for_a_quiet_machine_within_its_limit():
    from bench.run.rounds import settle

    clock = iter(range(100))  # one second a call: start 0, then a reading of the clock after each busy reading
    readings = iter([0.9, 0.7, 0.1])
    assert settle(30, busy=lambda: next(readings), now=lambda: next(clock)) == (3, True)
    clock = iter(range(100))
    # Busy: checked at 1 (below the limit) and 2 (the limit): gives up, 3 s after the start, unsettled.
    assert settle(2, busy=lambda: 0.95, now=lambda: next(clock)) == (3, False)
    assert settle(5, busy=lambda: None, now=lambda: 0.0) == (0.0, False)  # no /proc/stat: no wait


def test_rounds_interleave_the_architectures_in_fresh_workers(tmp_path, monkeypatch):
    import bench.run.runner
    from bench.run.plan import Request, make_plan
    from bench.run.runner import job_row, run_plan

    plan = make_plan(Request(archs=("r3d_18", "mc3_18"), device="cpu", frames="8", sizes="32"))
    started: list[str] = []
    latency = {"r3d_18": [10.0, 30.0, 12.0], "mc3_18": [20.0, 22.0, 24.0]}

    def fake_worker(job, plan_, timeout, plugins, env, env_out, log_dir, slot=None, max_memory=None, stop=None):
        n = sum(a == job.arch for a in started)
        started.append(job.arch)
        t = latency[job.arch][n] / 1e3
        m = Measurement((t, t, t))
        for config in job.configs:
            yield job_row(job, config, env, measurement=m, contention={"contended": job.arch == "r3d_18" and n == 1})

    monkeypatch.setattr(bench.run.runner, "_run_worker", fake_worker)
    seen = []
    out = run_plan(plan, tmp_path / "run", rounds=3, on_row=seen.append)
    assert started == ["r3d_18", "mc3_18"] * 3
    rows = {r["arch"]: r for r in out.rows}
    assert rows["r3d_18"]["latency_ms"] == pytest.approx(11.0)  # round 2 (30 ms) was contended
    assert rows["r3d_18"]["round_contended"] == [False, True, False]
    assert rows["mc3_18"]["latency_ms"] == pytest.approx(22.0)
    assert all(r["rounds"] == 3 for r in out.rows) and len(seen) == 2
    assert out.environment["rounds"] == 3


def test_bad_rounds_or_settle_are_one_line_and_exit_2():
    from clirun import vbench_here

    for args, message in ((["--rounds", "0"], "--rounds must be 1 or more"), (["--settle", "-1"], "--settle")):
        result = vbench_here("profile", "--arch", "r3d_18", "--device", "cpu", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
