"""Aggregate analysis's figures with known answers (services/analysis/aggregates.py):
availability pooled by time, nearest-rank percentiles, targets per conformance period,
credits under a cap (the statements against these definitions, on both stores:
tests/integration/test_aggregate_statements.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.analysis import aggregates as ag


def test_availability_is_pooled_by_time_never_a_mean_of_percentages() -> None:
    # A day of one offering at 100 % and an hour of another at 0 %: the mean of the two
    # percentages would say 50 %.
    eligible = 86_400 + 3_600
    assert ag.pooled_availability(eligible, 3_600) == pytest.approx(86_400 / 90_000)
    assert ag.in_unit(ag.pooled_availability(eligible, 3_600), "%") == pytest.approx(96.0)
    assert ag.pooled_availability(0, 0) is None
    assert ag.in_unit(0.5, "ratio") == 0.5


@pytest.mark.parametrize(("n", "p", "rank"), [(1, 50, 1), (1, 99, 1), (4, 50, 2), (4, 90, 4),
                                              (10, 90, 9), (100, 99, 99), (101, 99, 100)])
def test_nearest_rank(n: int, p: int, rank: int) -> None:
    assert ag.nearest_rank(n, p) == rank


def test_percentiles_of_window_values() -> None:
    assert ag.percentiles([70, 40, 60, 50]) == {"p50": 50, "p90": 70, "p99": 70}
    assert ag.percentiles([]) == {"p50": None, "p90": None, "p99": None}


@pytest.mark.parametrize(("value", "comparator", "target", "met"), [
    (99.9, "GE", 99.9, True), (99.89, "GE", 99.9, False), (99.9, "GT", 99.9, False),
    (100, ".le", 100, True), (101, "LE", 100, False), (99, "LT", 100, True),
    (5.0, "EQ", 5.0 + 1e-10, True), (5.1, "EQ", 5.0, False)])
def test_a_value_against_its_target(value: float, comparator: str, target: float,
                                    met: bool) -> None:
    assert ag.satisfies(value, comparator, target) is met


def test_a_period_is_judged_on_its_pooled_availability_against_the_strictest_target() -> None:
    period = {"eligible": 7_200.0, "bad": 3.6, "breaches": 1, "comparator": "GE",
              "unit": "%", "target_min": 99.9, "target_max": 99.9}
    assert ag.period_met(period)  # 99.95 % over the period, though one window breached
    revised = {**period, "target_max": 99.99}  # the standard was raised mid-period
    assert not ag.period_met(revised)
    latency = {"eligible": 0.0, "bad": 0.0, "breaches": 0, "comparator": "LE", "unit": "ms",
               "target_min": 100.0, "target_max": 100.0}
    assert ag.period_met(latency)
    assert not ag.period_met({**latency, "breaches": 2})


def test_credits_per_breached_period_under_the_cap() -> None:
    gold = {"creditPercentPerBreachedPeriod": 5, "creditCapPercent": 12}
    assert ag.credit_percent(1, gold) == Decimal(5)
    assert ag.credit_percent(3, gold) == Decimal(12)
    assert ag.credit_percent(3, {"creditPercentPerBreachedPeriod": "2.5"}) == Decimal("7.5")
    assert ag.credit_percent(1, {}) is None
    assert ag.credit_amount(Decimal(5), "199.99") == Decimal("10.00")
    assert ag.credit_amount(Decimal(5), None) is None
