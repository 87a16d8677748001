"""Trend analysis's series as the service builds them from window summaries' sums: the
calendar of points (UTC days, ISO weeks, months; a window counts in the period of its
end), availability pooled by time within a point, gaps kept as gaps, and each series'
result read for an SLA — deteriorating or not, the projected crossing of its target
as dates, and the line an SLA manager reads."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pymannkendall
import pytest

from services.analysis import trend_series as ts

DAY = 86400.0


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def day_index(text: str) -> int:
    return int(epoch(text) // DAY)


def question(start: str, end: str, **kw: Any) -> ts.TrendQuery:
    return ts.TrendQuery(start=epoch(start), end=epoch(end), **kw)


def row(day: int, key: str = "fibre", parameter: str = "availability", *,
        eligible: float = 0.0, bad: float = 0.0, weighted: float = 0.0, weight: float = 0.0,
        target: float = 99.0, comparator: str = "GE", unit: str = "%") -> dict[str, Any]:
    return {"k0": key, "parameter": parameter, "day": day, "windows": 24,
            "eligible": eligible, "bad": bad, "weighted": weighted, "weight": weight,
            "target_min": target, "target_max": target, "comparator": comparator,
            "unit": unit, "aggregation": "availability" if eligible else "p95"}


def test_points_are_utc_days_iso_weeks_and_months_of_the_windows_ends() -> None:
    # A window ending at midnight belongs to the day before (end inclusive).
    assert ts._day_of(epoch("2026-11-02T00:00:00")) == day_index("2026-11-01T00:00:00")
    assert ts._day_of(epoch("2026-11-02T00:00:01")) == day_index("2026-11-02T00:00:00")
    # ISO weeks start on Monday: 2026-11-30 is a Monday, 2026-11-29 a Sunday.
    monday, sunday = day_index("2026-11-30T00:00:00"), day_index("2026-11-29T00:00:00")
    assert ts.bucket_of_day(monday, "week") == ts.bucket_of_day(sunday, "week") + 1
    assert ts.bucket_start(ts.bucket_of_day(monday + 3, "week"), "week") == \
        epoch("2026-11-30T00:00:00")
    month = ts.bucket_of_day(day_index("2026-02-28T00:00:00"), "month")
    assert ts.bucket_start(month, "month") == epoch("2026-02-01T00:00:00")
    assert ts.bucket_start(month + 1, "month") == epoch("2026-03-01T00:00:00")
    assert ts.bucket_start(month + 11, "month") == epoch("2027-01-01T00:00:00")

    calendar = ts.Calendar.of(question("2026-11-01T00:00:00", "2026-12-01T00:00:00"))
    assert calendar.count == 30 and calendar.start_of(0) == epoch("2026-11-01T00:00:00")
    weeks = ts.Calendar.of(question("2026-11-01T00:00:00", "2026-12-01T00:00:00",
                                    granularity="week"))
    # Sun 1 Nov is in the week of Mon 26 Oct; Mon 30 Nov starts the last one.
    assert (weeks.start_of(0), weeks.count) == (epoch("2026-10-26T00:00:00"), 6)
    months = ts.Calendar.of(question("2026-01-01T00:00:00", "2027-01-01T00:00:00",
                                     granularity="month"))
    assert months.count == 12
    # Half of a point is half of its period: half of February is 14 days.
    assert months.time_at(1.5) == epoch("2026-02-15T00:00:00")


def test_a_week_pools_its_days_availability_by_time_and_a_gap_stays_a_gap() -> None:
    query = question("2026-11-01T00:00:00", "2026-11-29T00:00:00", granularity="week")
    first = day_index("2026-11-02T00:00:00")  # a Monday: the second point
    rows = [row(first, eligible=86400.0, bad=0.0),            # a day at 100 %
            row(first + 1, eligible=3600.0, bad=3600.0),      # an hour at 0 %
            row(first + 14, eligible=86400.0, bad=864.0)]     # two weeks on: 99 %
    (series,) = ts.series_of(query, rows, [{"k0": "fibre", "parameter": "availability",
                                            "offering": "o-1"}])
    assert series.values.shape == (5,)
    assert math.isnan(series.values[0]) and math.isnan(series.values[2])
    assert series.values[1] == pytest.approx(100 * 86400 / 90000)  # 96 %, not 50 %
    assert series.values[3] == pytest.approx(99.0)
    assert (series.target, series.higher_is_better, series.offerings) == (99.0, True, ["o-1"])


def test_other_parameters_weigh_each_window_by_its_samples() -> None:
    query = question("2026-11-01T00:00:00", "2026-11-03T00:00:00")
    day = day_index("2026-11-01T00:00:00")
    rows = [row(day, parameter="latency", weighted=40.0 * 60 + 100.0 * 1, weight=61,
                comparator="LE", target=80.0, unit="ms")]
    (series,) = ts.series_of(query, rows, [])
    assert series.values[0] == pytest.approx((40 * 60 + 100) / 61)
    assert series.higher_is_better is False


def _declining(n: int = 60, start: float = 99.95, step: float = 0.01, seed: int = 7
               ) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start - step * np.arange(n) + rng.normal(0, 0.004, n)


def test_a_deteriorating_availability_is_projected_to_its_target_as_a_date() -> None:
    query = question("2026-09-01T00:00:00", "2026-10-31T00:00:00", test="original",
                     horizon=120 * DAY)
    values = _declining()
    series = ts.Series(("fibre",), "availability", values, unit="%", comparator="GE",
                       target=99.0, offerings=["o-1"])
    result = ts.analyse(query, series)
    reference = pymannkendall.original_test(values)
    assert result["trend"] == reference.trend == "decreasing"
    assert result["slope"] == pytest.approx(reference.slope, abs=1e-9)
    assert result["intercept"] == pytest.approx(reference.intercept, abs=1e-9)
    assert result["deteriorating"] is True
    projection = result["projection"]
    assert projection["status"] == "crossing"
    position = (99.0 - reference.intercept) / reference.slope
    crossing = epoch("2026-09-01T00:00:00") + position * DAY
    assert ts.times.parse(projection["crossing_date_time"]).timestamp() == \
        pytest.approx(crossing, abs=1)
    earliest = ts.times.parse(projection["earliest_date_time"]).timestamp()
    latest = ts.times.parse(projection["latest_date_time"]).timestamp()
    assert earliest <= crossing <= latest
    assert len(result["points"]) == 60 and result["points"][0] == {
        "start_date_time": "2026-09-01T00:00:00Z", "value": pytest.approx(values[0])}
    assert ts.severity(result) == "minor"
    line = ts.summary(result, "day")
    assert line.startswith("availability of productOfferingId fibre: decreasing")
    assert "projected to cross 99.0 %" in line and projection["crossing_date_time"][:10] in line


def test_rising_latency_deteriorates_and_rising_availability_does_not() -> None:
    query = question("2026-09-01T00:00:00", "2026-10-31T00:00:00", horizon=10 * DAY)
    rising = 100.0 - _declining()
    latency = ts.Series(("fibre",), "latency", 40 + 10 * rising, unit="ms", comparator="LE",
                        target=200.0)
    assert ts.analyse(query, latency)["deteriorating"] is True
    # Far from its ceiling: deteriorating, but not within a 10-day horizon.
    assert ts.analyse(query, latency)["projection"]["status"] == "not within the horizon"
    better = ts.Series(("fibre",), "availability", 99.0 + rising / 100, unit="%",
                       comparator="GE", target=99.0)
    improving = ts.analyse(query, better)
    assert (improving["trend"], improving["deteriorating"], improving["projection"]) == (
        "increasing", False, None)
    assert ts.severity(improving) == "info"
    exact = ts.Series(("fibre",), "jitter", rising, comparator="EQ", target=1.0)
    assert ts.analyse(query, exact)["deteriorating"] is False


def test_a_series_already_past_its_target_is_major_and_too_few_points_is_no_trend() -> None:
    query = question("2026-09-01T00:00:00", "2026-10-31T00:00:00")
    past = ts.Series(("fibre",), "availability", _declining(start=99.2), unit="%",
                     comparator="GE", target=99.0)
    result = ts.analyse(query, past)
    assert result["projection"]["status"] == "already crossed"
    assert ts.severity(result) == "major"
    sparse = np.full(60, np.nan)
    sparse[10] = 99.9
    lonely = ts.analyse(query, ts.Series(("fibre",), "availability", sparse, unit="%",
                                         comparator="GE", target=99.0))
    assert (lonely["trend"], lonely["n"], lonely["p"], lonely["z"]) == ("no trend", 1, None,
                                                                         None)
    assert ts.summary(lonely, "day") == "availability of productOfferingId fibre: " \
                                        "no trend over 1 day"


def test_a_question_is_refused_when_it_cannot_be_asked() -> None:
    with pytest.raises(ValueError, match="granularity"):
        question("2026-09-01T00:00:00", "2026-10-01T00:00:00", granularity="hour")
    with pytest.raises(ValueError, match="end after"):
        question("2026-10-01T00:00:00", "2026-09-01T00:00:00")
    seasonal = question("2026-01-01T00:00:00", "2027-01-01T00:00:00", granularity="month",
                        test="seasonal")
    assert seasonal.period == 12
    assert ts.TrendQuery.from_dict(seasonal.to_dict()) == seasonal


def test_the_daily_runs_settings_are_checked_at_start_naming_the_variable() -> None:
    from services.analysis.settings import AnalysisSettings
    from shared.config import ConfigError

    settings = AnalysisSettings.from_env({})
    assert (settings.trends.every, settings.trends.delay, settings.trends.test) == (
        DAY, 3600.0, "hamed_rao")
    tuned = AnalysisSettings.from_env({"SLA_ANALYSIS_TREND_EVERY": "P7D",
                                       "SLA_ANALYSIS_TREND_GROUP_BY": "slaTypeId,customerGroup"})
    assert tuned.trends.every == 7 * DAY
    assert tuned.trends.group_by == ("slaTypeId", "customerGroup")
    for variable, value in [("SLA_ANALYSIS_TREND_EVERY", "daily"),
                            ("SLA_ANALYSIS_TREND_GROUP_BY", "region"),
                            ("SLA_ANALYSIS_TREND_TEST", "spearman"),
                            ("SLA_ANALYSIS_TREND_LOOKBACK", "PT1H"),
                            ("SLA_ANALYSIS_TREND_ALPHA", "2"),
                            ("SLA_ANALYSIS_TREND_MAX_SERIES", "0")]:
        with pytest.raises(ConfigError) as refused:
            AnalysisSettings.from_env({variable: value})
        assert refused.value.variable == variable
