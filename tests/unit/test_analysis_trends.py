"""Trend analysis (``services/analysis/trends.py``) against pymannkendall itself: every
field of every test on many seeded random series (trends, none, ties, constants, missing
values, short series, seasonal periods 12 and 7), the batch path against the one-series
path, and what a trend means for an SLA (deterioration, the projected crossing)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pymannkendall as mk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analysis import trends
from services.analysis.trends import TrendResult

FIELDS = ("p", "z", "tau", "s", "var_s", "slope", "intercept")
TOLERANCE = 1e-9


def reference(x: np.ndarray, test: str, alpha: float = 0.05, period: int | None = None,
              lag: int | None = None) -> Any:
    """pymannkendall's answer, or None where it raises (too few values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if test == "original":
                return mk.original_test(x, alpha=alpha)
            if test == "seasonal":
                return mk.seasonal_test(x, period=period, alpha=alpha)
            if test == "hamed_rao":
                return mk.hamed_rao_modification_test(x, alpha=alpha, lag=lag)
            return mk.yue_wang_modification_test(x, alpha=alpha, lag=lag)
        except ZeroDivisionError:
            return None


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def assert_same(ref: Any, ours: TrendResult, where: str = "") -> None:
    assert ref is not None, where
    assert ours.trend == ref.trend, where
    assert ours.h == bool(ref.h), where
    for field in FIELDS:
        theirs = float(getattr(ref, "Tau" if field == "tau" else field))
        assert close(getattr(ours, field), theirs), (
            f"{where}: {field} {getattr(ours, field)!r} != pymannkendall's {theirs!r}")


def assert_results_equal(a: TrendResult, b: TrendResult, where: str = "") -> None:
    assert (a.trend, a.h, a.n) == (b.trend, b.h, b.n), where
    for field in FIELDS:
        assert close(getattr(a, field), getattr(b, field)), f"{where}: {field}"


# --- the series ------------------------------------------------------------------------------
def make(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)
    if kind == "trend":
        x = rng.normal(0, 1, n) + rng.choice([-1, 1]) * rng.uniform(0.02, 0.2) * t
    elif kind == "no trend":
        x = rng.normal(50, 5, n)
    elif kind == "ties":
        x = np.round(rng.normal(0, 1.5, n) + rng.uniform(-0.05, 0.05) * t)
    elif kind == "constant":
        x = np.full(n, 99.95)
    elif kind == "linear":  # exact line: the detrended series is (nearly) constant
        x = 2.0 * t + 1.0
    elif kind == "autocorrelated":  # AR(1), φ = 0.8, with a weak trend
        x = np.empty(n)
        x[0] = rng.normal()
        for i in range(1, n):
            x[i] = 0.8 * x[i - 1] + rng.normal()
        x += 0.02 * t
    elif kind == "seasonal":
        x = (10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
             + rng.uniform(-0.1, 0.1) * t)
    else:
        raise AssertionError(kind)
    return x


def with_gaps(x: np.ndarray, rng: np.random.Generator, share: float = 0.2) -> np.ndarray:
    x = x.copy()
    x[rng.random(len(x)) < share] = np.nan
    return x


KINDS = ("trend", "no trend", "ties", "constant", "linear", "autocorrelated", "seasonal")


def corpus(seed: int, count: int, lengths: tuple[int, int] = (4, 100),
           gaps: bool = True) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        x = make(KINDS[i % len(KINDS)], int(rng.integers(*lengths)), rng)
        out.append(with_gaps(x, rng) if gaps and i % 4 == 3 else x)
    return out


# --- each test against pymannkendall, one series at a time -----------------------------------
@pytest.mark.parametrize("test", ["original", "hamed_rao", "yue_wang"])
def test_every_field_is_pymannkendalls_on_many_random_series(test: str) -> None:
    checked = 0
    for i, x in enumerate(corpus({"original": 1, "hamed_rao": 2, "yue_wang": 3}[test], 150)):
        ref = reference(x, test)
        ours = trends.mann_kendall(x, test)
        assert_same(ref, ours, f"series {i}, {len(x)} points")
        checked += 1
    assert checked == 150


@pytest.mark.parametrize("period", [12, 7])
def test_the_seasonal_test_is_pymannkendalls_with_periods_12_and_7(period: int) -> None:
    for i, x in enumerate(corpus(10 + period, 80, lengths=(2 * period + 1, 8 * period))):
        assert_same(reference(x, "seasonal", period=period),
                    trends.mann_kendall(x, "seasonal", period=period), f"series {i}")


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.2])
def test_the_significance_level_is_configurable(alpha: float) -> None:
    for test in ("original", "hamed_rao", "yue_wang"):
        for x in corpus(20, 25):
            assert_same(reference(x, test, alpha=alpha),
                        trends.mann_kendall(x, test, alpha=alpha), test)


def test_a_weak_trend_is_significant_at_one_level_and_not_at_a_stricter_one() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        x = rng.normal(0, 1, 40) + 0.03 * np.arange(40)
        p = trends.mann_kendall(x).p
        if 0.01 < p < 0.05:
            assert trends.mann_kendall(x, alpha=0.05).h
            assert not trends.mann_kendall(x, alpha=0.01).h
            return
    pytest.fail("no series with 0.01 < p < 0.05 among 200")


@pytest.mark.parametrize("lag", [0, 1, 3, 500])
def test_the_corrected_tests_take_a_number_of_lags(lag: int) -> None:
    for test in ("hamed_rao", "yue_wang"):
        for x in corpus(30 + lag, 20, lengths=(10, 80)):
            if lag >= len(x[~np.isnan(x)]):  # pymannkendall fails past the series' lags
                ours = trends.mann_kendall(x, test, lag=lag)
                assert_same(reference(x, test, lag=None), ours, "every lag")
                continue
            assert_same(reference(x, test, lag=lag), trends.mann_kendall(x, test, lag=lag),
                        f"{test}, lag {lag}")


def test_constant_series_have_no_trend_and_no_variance() -> None:
    for n in (2, 3, 10, 90):
        x = np.full(n, 7.0)
        for test in ("original", "yue_wang"):
            ours = trends.mann_kendall(x, test)
            assert_same(reference(x, test), ours)
            assert (ours.trend, ours.s, ours.slope) == ("no trend", 0.0, 0.0)
        assert trends.mann_kendall(x).var_s == 0.0
        assert trends.mann_kendall(x).p == 1.0


def test_missing_values_are_skipped_as_pymannkendall_skips_them() -> None:
    x = np.array([1.0, np.nan, 3.0, 2.0, np.nan, np.nan, 6.0, 5.0, 8.0, np.nan, 9.0])
    for test in ("original", "hamed_rao", "yue_wang"):
        ours = trends.mann_kendall(x, test)
        assert_same(reference(x, test), ours, test)
        assert ours.n == 7
    assert_same(reference(x, "seasonal", period=2),
                trends.mann_kendall(x, "seasonal", period=2))


@pytest.mark.parametrize("n", [2, 3])
def test_short_series_of_two_or_three_values(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        x = np.round(rng.normal(0, 1, n))
        assert_same(reference(x, "original"), trends.mann_kendall(x), f"{x}")
        assert_same(reference(x, "yue_wang"), trends.mann_kendall(x, "yue_wang"), f"{x}")
        if n == 3:
            assert_same(reference(x, "hamed_rao"), trends.mann_kendall(x, "hamed_rao"))


def test_too_few_values_give_no_trend_where_pymannkendall_raises() -> None:
    cases = [("original", [5.0]), ("original", []), ("original", [np.nan, 2.0, np.nan]),
             ("hamed_rao", [1.0, 2.0]), ("yue_wang", [np.nan]),
             ("seasonal", [1.0, 2.0, 3.0]),
             ("seasonal", [1.0, np.nan, np.nan, 2.0, np.nan, 5.0, np.nan, np.nan])]
    for test, values in cases:
        x = np.array(values)
        period = 4 if test == "seasonal" else None
        assert reference(x, test, period=period) is None, (test, values)
        ours = trends.mann_kendall(x, test, period=period)
        assert (ours.trend, ours.h) == ("no trend", False), (test, values)
        assert math.isnan(ours.p) and math.isnan(ours.z), (test, values)
        assert ours.n == int(np.sum(~np.isnan(x)))


small_values = st.one_of(st.sampled_from([0.0, 1.0, 1.5, 2.0, -3.0, 99.9, math.nan]),
                         st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(small_values, min_size=0, max_size=40), st.sampled_from([2, 3, 7, 12]))
def test_any_short_series_with_ties_and_gaps_matches(values: list[float], period: int) -> None:
    x = np.array(values, dtype=float)
    for test, kwargs in (("original", {}), ("yue_wang", {}), ("hamed_rao", {}),
                         ("seasonal", {"period": period})):
        ref = reference(x, test, **kwargs)
        ours = trends.mann_kendall(x, test, **kwargs)
        if ref is None:
            assert ours.trend == "no trend" and math.isnan(ours.p)
        else:
            assert_same(ref, ours, test)


# --- the batch path --------------------------------------------------------------------------
def batch_of(seed: int, rows: int, points: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = np.stack([make(KINDS[i % len(KINDS)], points, rng) for i in range(rows)])
    for i in range(5, rows, 11):
        matrix[i] = with_gaps(matrix[i], rng)
    matrix[3, -10:] = np.nan  # a shorter series, padded
    return matrix


@pytest.mark.parametrize("test,period", [("original", None), ("hamed_rao", None),
                                         ("yue_wang", None), ("seasonal", 12),
                                         ("seasonal", 7)])
def test_the_batch_equals_pymannkendall_and_the_one_series_path(
        test: str, period: int | None) -> None:
    matrix = batch_of(40, 100, 90)
    batch = trends.mann_kendall_batch(matrix, test, period=period)
    assert len(batch) == 100
    for i, x in enumerate(matrix):
        if i % 2 or not np.isnan(x).any():  # the fast path's rows, and half the others
            assert_same(reference(x, test, period=period), batch[i], f"row {i}")
        assert_results_equal(batch[i], trends.mann_kendall(x, test, period=period),
                             f"row {i}")


@pytest.mark.parametrize("points", [2, 3, 5, 13])
def test_the_batch_of_short_series(points: int) -> None:
    rng = np.random.default_rng(points)
    matrix = np.round(rng.normal(0, 1, (30, points)))
    matrix[::5] = 4.0
    for test, period in (("original", None), ("hamed_rao", None), ("yue_wang", None),
                         ("seasonal", 3)):
        batch = trends.mann_kendall_batch(matrix, test, period=period)
        for i, x in enumerate(matrix):
            assert_results_equal(batch[i], trends.mann_kendall(x, test, period=period),
                                 f"{test} row {i}")
            ref = reference(x, test, period=period)
            if ref is not None:
                assert_same(ref, batch[i], f"{test} row {i}")


def test_the_batch_takes_lags_and_alpha_and_big_chunks() -> None:
    matrix = batch_of(50, 700, 30)  # more rows than one chunk of 30-point series
    for test in ("hamed_rao", "yue_wang"):
        batch = trends.mann_kendall_batch(matrix, test, alpha=0.1, lag=3)
        for i in range(0, 700, 10):
            assert_same(reference(matrix[i], test, alpha=0.1, lag=3), batch[i], f"row {i}")


def test_the_batch_refuses_what_is_not_a_matrix_of_finite_values_or_gaps() -> None:
    with pytest.raises(ValueError, match="2-D"):
        trends.mann_kendall_batch([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        trends.mann_kendall_batch([[1.0, math.inf, 3.0]])
    with pytest.raises(ValueError, match="period"):
        trends.mann_kendall_batch([[1.0, 2.0, 3.0]], "seasonal")
    with pytest.raises(ValueError, match="unknown test"):
        trends.mann_kendall([1.0, 2.0, 3.0], "sen")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        trends.mann_kendall([1.0, 2.0, 3.0], alpha=1.5)


# --- deterioration and projection ------------------------------------------------------------
def availability(slope: float, n: int = 60, seed: int = 1, start: float = 99.99
                 ) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start + slope * np.arange(n) + rng.normal(0, 0.001, n)


def test_deterioration_is_the_bad_direction_for_the_parameter() -> None:
    falling = trends.mann_kendall(availability(-0.0005))
    rising = trends.mann_kendall(availability(+0.0005))
    flat = trends.mann_kendall(availability(0.0))
    assert (falling.trend, rising.trend, flat.trend) == ("decreasing", "increasing",
                                                         "no trend")
    assert trends.deteriorating(falling, higher_is_better=True)  # availability falls
    assert not trends.deteriorating(falling, higher_is_better=False)  # latency falls
    assert trends.deteriorating(rising, higher_is_better=False)  # latency, errors rise
    assert not trends.deteriorating(rising, higher_is_better=True)
    assert not trends.deteriorating(flat, higher_is_better=True)
    assert not trends.deteriorating(flat, higher_is_better=False)
    batch = trends.mann_kendall_batch(np.stack([availability(-0.0005), availability(0.0005),
                                                availability(0.0)]))
    assert trends.deteriorating(batch, higher_is_better=True).tolist() == [True, False, False]


def test_the_slope_interval_is_read_off_the_ordered_pairwise_slopes() -> None:
    x = availability(-0.0005)
    result = trends.mann_kendall(x)
    low, high = trends.sen_slope_interval(x)
    assert low < result.slope < high
    slopes = np.sort([(x[j] - x[i]) / (j - i) for i in range(60) for j in range(i + 1, 60)])
    c = 1.959963984540054 * math.sqrt(result.var_s)
    m1, m2 = (len(slopes) - c) / 2, (len(slopes) + c) / 2 + 1
    assert low == pytest.approx(np.interp(m1, np.arange(1, len(slopes) + 1), slopes))
    assert high == pytest.approx(np.interp(m2, np.arange(1, len(slopes) + 1), slopes))
    wider = trends.sen_slope_interval(x, alpha=0.01)
    assert wider[0] < low and wider[1] > high


def test_a_deteriorating_series_crosses_its_target_within_the_horizon() -> None:
    x = availability(-0.0005)  # 99.99 % falling 0.0005 points a day: 99.9 near day 180
    projection = trends.project_crossing(x, 99.9, higher_is_better=True, horizon=365)
    result = projection.result
    assert projection.status == "crossing"
    assert projection.crossing == pytest.approx((99.9 - result.intercept) / result.slope)
    assert 150 < projection.crossing < 210
    assert projection.earliest is not None and projection.latest is not None
    assert 59 < projection.earliest < projection.crossing < projection.latest
    assert projection.slope_low < projection.slope < projection.slope_high < 0


def test_a_crossing_beyond_the_horizon_is_not_within_the_horizon() -> None:
    x = availability(-0.0005)
    projection = trends.project_crossing(x, 99.9, higher_is_better=True, horizon=30)
    assert projection.status == "not within the horizon"
    assert projection.crossing is None and projection.latest is None
    assert projection.horizon_end == 59 + 30


def test_a_latency_rising_towards_its_limit_and_one_already_past_it() -> None:
    rng = np.random.default_rng(3)
    latency = 60 + 0.25 * np.arange(90) + rng.normal(0, 2, 90)  # ms, limit 100
    ahead = trends.project_crossing(latency, 100.0, higher_is_better=False, horizon=200)
    assert ahead.status == "crossing" and 150 < ahead.crossing < 175
    assert ahead.earliest < ahead.crossing < ahead.latest
    past = trends.project_crossing(latency, 70.0, higher_is_better=False, horizon=200)
    assert past.status == "already crossed" and past.crossing < 89


def test_an_improving_or_flat_series_has_no_projection() -> None:
    for x, better in ((availability(+0.0005), True), (availability(0.0), True),
                      (availability(-0.0005), False)):
        projection = trends.project_crossing(x, 99.9, higher_is_better=better, horizon=365)
        assert projection.status == "not deteriorating"
        assert (projection.crossing, projection.earliest, projection.latest) == (None,) * 3


def test_a_limit_line_that_crosses_after_the_horizon_leaves_the_latest_unknown() -> None:
    x = availability(-0.0005)
    far = trends.project_crossing(x, 99.9, higher_is_better=True, horizon=10_000)
    assert far.latest is not None and far.crossing is not None
    horizon = (far.crossing + far.latest) / 2 - 59
    near = trends.project_crossing(x, 99.9, higher_is_better=True, horizon=horizon)
    assert near.status == "crossing" and near.crossing == far.crossing
    assert near.earliest == far.earliest and near.latest is None


def test_the_seasonal_projection_works_per_point() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(96)
    x = 99.99 + 0.003 * np.sin(2 * np.pi * t / 12) - 0.0004 * t + rng.normal(0, 0.0005, 96)
    projection = trends.project_crossing(x, 99.9, higher_is_better=True, horizon=400,
                                         test="seasonal", period=12)
    result = projection.result
    assert result.trend == "decreasing"
    assert projection.slope == pytest.approx(result.slope / 12)
    assert projection.crossing == pytest.approx((99.9 - result.intercept) / (result.slope / 12))
    assert 200 < projection.crossing < 250

