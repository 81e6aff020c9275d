"""The timer and its statistics, against a fake clock and values worked out by hand."""

import pytest

from bench.measure.timing import HostClock, Measurement, median_ci, quantile, sample
from bench.results.records import SamplePolicy


class FakeTime:
    """A clock that advances only when the timed function runs, by preset durations."""

    def __init__(self, durations):
        self.t = 0.0
        self.durations = list(durations)
        self.calls = 0
        self.events = []

    def now(self):
        return self.t

    def fn(self):
        self.t += self.durations[self.calls % len(self.durations)]
        self.calls += 1
        self.events.append("fn")

    def sync(self):
        self.events.append("sync")


def test_quantiles_match_linear_interpolation():
    xs = [4.0, 1.0, 3.0, 2.0]
    assert quantile(xs, 0.5) == 2.5
    assert quantile(xs, 0.25) == 1.75
    assert quantile(xs, 0.75) == 3.25
    assert quantile([7.0], 0.9) == 7.0


def test_measurement_statistics_by_hand():
    m = Measurement((0.010, 0.012, 0.011, 0.013, 0.030))
    assert m.n == 5
    assert m.median == 0.012
    assert m.iqr == pytest.approx(0.013 - 0.011)
    assert m.min == 0.010
    assert m.noisy  # 0.002 / 0.012 > 0.1
    assert not Measurement((1.0, 1.01, 0.99, 1.0)).noisy
    with pytest.raises(ValueError):
        Measurement(())


def test_median_ci_uses_binomial_order_statistics():
    xs = list(range(1, 11))  # n = 10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024
    assert median_ci(xs) == (2, 9)
    assert median_ci([5.0, 1.0, 3.0]) == (1.0, 5.0)  # too few samples: [min, max]
    ys = list(range(100))  # n = 100: the classic ranks 40 and 61 (1-based)
    assert median_ci(ys) == (39, 60)


def test_warmup_is_not_timed_and_sync_brackets_each_sample():
    fake = FakeTime([5.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    clock = HostClock(sync=fake.sync, now=fake.now)
    m = sample(fake.fn, SamplePolicy(warmup=2, repeats=5), clock, now=fake.now)
    assert m.times_s == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert m.warmup == 2 and fake.calls == 7
    assert fake.events[:2] == ["fn", "fn"]  # warm-up, unsynchronised
    assert fake.events[2:] == ["sync", "fn", "sync"] * 5
    assert m.median == 3.0 and m.iqr == 2.0


def test_min_time_extends_and_max_time_cuts_sampling():
    fake = FakeTime([1.0])
    clock = HostClock(now=fake.now)
    assert sample(fake.fn, SamplePolicy(warmup=0, repeats=3, min_time=7.5), clock, now=fake.now).n == 8
    fake = FakeTime([1.0])
    assert (
        sample(fake.fn, SamplePolicy(warmup=0, repeats=50, max_time=4.0), HostClock(now=fake.now), now=fake.now).n == 4
    )


def test_policy_rejects_nonsense():
    for bad in [dict(repeats=0), dict(warmup=-1), dict(max_time=0), dict(min_time=-1)]:
        with pytest.raises(ValueError):
            SamplePolicy(**bad)
