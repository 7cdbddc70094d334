"""The report's intervals against outside references: SciPy's Wilson interval, the normal-theory interval of a
mean on a large sample, and hand-worked cases."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from microdl.experiments.report import stats


@pytest.mark.parametrize(("k", "n"), [(0, 30), (7, 30), (30, 30), (166, 400), (1, 5)])
def test_proportion_is_scipys_wilson_interval(k, n):
    est = stats.proportion([1] * k + [0] * (n - k))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert est.value == pytest.approx(k / n)
    assert (est.low, est.high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    assert est.n == n and "Wilson" in est.method


def test_zero_in_thirty_is_not_zero_for_sure():
    # hand-worked: Wilson's upper bound for 0 successes is z² / (n + z²) = 3.8415 / 33.8415
    assert stats.proportion([0] * 30).high == pytest.approx(3.841459 / 33.841459, rel=1e-6)


def test_mean_is_the_t_interval_of_scipy():
    x = np.random.default_rng(0).normal(3.0, 2.0, 12)
    from scipy.stats import t as student_t

    lo, hi = student_t.interval(0.95, x.size - 1, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(x.size))
    est = stats.mean(x)
    assert (est.low, est.high) == (pytest.approx(lo), pytest.approx(hi))


@pytest.mark.parametrize("draw", ["normal", "skewed"])
def test_intervals_cover_a_known_effect_at_least_90_percent_of_the_time(draw):
    # A simulation with a known answer: 1000 replications of 10 seeds each. A percentile bootstrap of 5 seeds
    # covered about 84% (normal) and 73% (skewed); the t intervals must cover >= 90% (nominal 95%).
    rng = np.random.default_rng(123)
    covered_mean = covered_ratio = 0
    reps, n = 1000, 10
    for _ in range(reps):
        if draw == "normal":
            x = rng.normal(1.0, 2.0, n)
            truth = 1.0
        else:  # a gamma with shape 2: skewed, mean 2
            x = rng.gamma(2.0, 1.0, n)
            truth = 2.0
        est = stats.mean(x)
        covered_mean += est.low <= truth <= est.high
        # paired ratio: b is a shared seed effect, a = 1.5 * b * lognormal noise; the true geometric ratio is 1.5
        b = rng.lognormal(0.0, 1.0, n)
        a = 1.5 * b * rng.lognormal(0.0, 0.3 if draw == "normal" else 0.6, n)
        r = stats.paired_ratio(a, b)
        covered_ratio += r.low <= 1.5 <= r.high
    assert covered_mean / reps >= 0.90
    assert covered_ratio / reps >= 0.90


def test_bootstrap_mean_matches_the_normal_interval_on_a_large_sample():
    x = np.random.default_rng(0).normal(3.0, 2.0, 400)
    est = stats.bootstrap(x.size, lambda i: float(np.mean(x[i])))
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert est.value == pytest.approx(x.mean())
    assert est.low == pytest.approx(x.mean() - half, abs=0.06 * half)
    assert est.high == pytest.approx(x.mean() + half, abs=0.06 * half)


def test_paired_statistics_cancel_what_the_pairs_share():
    base = np.random.default_rng(1).lognormal(0.0, 2.0, 5)  # wildly different seeds
    ratio = stats.paired_ratio(3.0 * base, base)
    assert (ratio.value, ratio.low, ratio.high) == pytest.approx((3.0, 3.0, 3.0))
    diff = stats.paired_difference(base + 0.5, base)
    assert (diff.value, diff.low, diff.high) == pytest.approx((0.5, 0.5, 0.5))


def test_paired_ratio_is_a_geometric_mean():
    est = stats.paired_ratio([2.0, 8.0], [1.0, 1.0])
    assert est.value == pytest.approx(4.0) and est.n == 2
    assert est.low < 4.0 < est.high


@pytest.mark.parametrize("diverged", [None, math.nan, math.inf])
def test_a_diverged_run_counts_as_a_failure_never_dropped(diverged):
    good = [1.0, 1.1, 0.9, 1.0, 1.05]
    est = stats.paired_ratio([*good, diverged], [1.0] * 6)
    assert est.n == 6  # not dropped
    # the failure weighs as FAILURE_FACTOR times the worst finite value: the geometric mean moves up
    expected = math.exp(np.mean(np.log([*good, stats.FAILURE_FACTOR * 1.1])))
    assert est.value == pytest.approx(expected)
    assert est.value > stats.paired_ratio(good, [1.0] * 5).value * 1.3
    with pytest.raises(ValueError, match="every unit"):
        stats.paired_difference([0.1, None], [0.2, 0.3])


def test_bootstrap_keeps_infinity_and_drops_undefined_resamples():
    times = np.array([1.0, 2.0, math.inf])
    est = stats.bootstrap(3, lambda i: float(np.mean(times[i])))
    assert est.value == math.inf and est.high == math.inf and est.low == pytest.approx(1.0)
    est = stats.bootstrap(4, lambda i: math.nan if 0 in i else 1.0)
    assert est.low == est.high == 1.0
    with pytest.raises(ValueError):
        stats.bootstrap(0, lambda i: 0.0)


def test_exact_and_round_trip():
    e = stats.exact(-2)
    assert (e.value, e.low, e.high, e.n) == (-2.0, -2.0, -2.0, 0) and e.method.startswith("exact")
    est = stats.mean([1.0, 2.0, 4.0])
    assert stats.Estimate.from_dict(est.to_dict()) == est
    assert stats.Estimate(math.inf, 1.0, math.inf, 3, "x").to_dict()["high"] is None


def test_intervals_are_reproducible():
    x = [0.3, 1.2, 0.8, 2.2, 0.1]
    assert stats.mean(x) == stats.mean(x)
