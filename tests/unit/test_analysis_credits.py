"""The SLA credit rules (services/analysis/credits.py): which summaries count in a period,
when a period closes, and what a purchased offering is owed for it; and the settle
setting, validated at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.analysis import credits
from services.analysis.settings import AnalysisSettings
from shared.config import ConfigError

START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
GOLD = {"creditPercentPerBreachedPeriod": 5.0, "creditCapPercent": 30.0}
CHARGED = {"customerId": "acme", "monthlyCharge": "200.00", "currency": "EUR"}


def row(parameter: str = "availability", down: float = 0, **overrides: Any) -> dict[str, Any]:
    """One purchased offering's statement row for a parameter over the period: ten hours
    measured, ``down`` seconds down, against 99 %."""
    return {"parameter": parameter, "po": "fibre-1", "sla_type": "gold", "windows": 10,
            "eligible": 36000.0, "bad": down, "breaches": 1 if down else 0,
            "comparator": "GE", "target_min": 99.0, "target_max": 99.0, "unit": "%",
            **overrides}


def test_only_a_purchased_offerings_series_with_a_period_counts() -> None:
    summary = {"scope": {"type": "purchasedOffering", "id": "p"}, "purchasedOfferingId": "p",
               "periodStart": "2026-11-01T00:00:00Z", "periodEnd": "2026-12-01T00:00:00Z"}
    assert credits.period_of(summary) == (START, END)
    assert credits.period_of({**summary, "scope": {"type": "offeringGroup", "id": "g"}}) is None
    assert credits.period_of({**summary, "periodStart": None}) is None


def test_a_period_closes_a_settle_time_after_its_end_or_after_its_first_summary() -> None:
    six_hours = 6 * 3600
    assert credits.close_at(END, START + timedelta(days=3), six_hours) == END + timedelta(hours=6)
    backfilled = END + timedelta(days=40)  # its first summary came long after it ended
    assert credits.close_at(END, backfilled, six_hours) == backfilled + timedelta(hours=6)


def test_a_missed_period_is_owed_its_percentage_of_the_monthly_charge() -> None:
    owed = credits.owed("fibre-1", [row(down=1800), row("latency")], GOLD, CHARGED)
    assert owed is not None
    assert (owed.breached_periods, owed.missed_parameters, owed.credit_percent, owed.amount,
            owed.currency, owed.status, owed.window_count) == (
        1, ("availability",), Decimal("5.0"), Decimal("10.00"), "EUR", "due", 20)
    assert credits.percent_text(owed.credit_percent) == "5"


def test_each_parameter_missed_is_a_breached_period_and_the_cap_holds() -> None:
    steep = {"creditPercentPerBreachedPeriod": 20, "creditCapPercent": 30}
    rows = [row(down=1800), row("reachability", down=900)]
    owed = credits.owed("fibre-1", rows, steep, {**CHARGED, "monthlyCharge": "33.33"})
    assert owed is not None
    assert (owed.breached_periods, owed.credit_percent, owed.amount) == (
        2, Decimal("30"), Decimal("10.00"))  # 30 % of 33.33, half to even


def test_nothing_is_owed_without_a_miss_or_for_a_zero_percent() -> None:
    assert credits.owed("fibre-1", [row(), row("latency")], GOLD, CHARGED) is None
    # 36 s down in ten hours is 99.9 %: a breached window, but the period met 99 %.
    assert credits.owed("fibre-1", [row(down=36, breaches=1)], GOLD, CHARGED) is None
    free = {"creditPercentPerBreachedPeriod": 0, "creditCapPercent": 0}
    assert credits.owed("fibre-1", [row(down=1800)], free, CHARGED) is None


def test_what_billing_could_not_apply_is_kept_with_why() -> None:
    unpriced = credits.owed("fibre-1", [row(down=1800)], GOLD, {"customerId": "acme"})
    assert unpriced is not None and (unpriced.status, unpriced.amount, unpriced.currency) == (
        "unpriced", None, None)
    assert unpriced.credit_percent == Decimal("5.0")
    no_terms = credits.owed("fibre-1", [row(down=1800)], None, CHARGED)
    assert no_terms is not None and (no_terms.status, no_terms.credit_percent) == (
        "withoutTerms", None)
    unknown = credits.owed("fibre-1", [row(down=1800)], GOLD, None)
    assert unknown is not None and unknown.status == "unpriced"
    anonymous = credits.owed("fibre-1", [row(down=1800)], GOLD,
                             {"monthlyCharge": "10", "currency": "EUR"})
    assert anonymous is not None and anonymous.status == "withoutCustomer"
    named = credits.with_customer(anonymous, "acme")
    assert (named.customer_id, named.status) == ("acme", "due")


def test_the_settle_time_is_an_iso_duration_checked_at_start() -> None:
    assert AnalysisSettings.from_env({}).credit_settle == 6 * 3600
    assert AnalysisSettings.from_env({"SLA_ANALYSIS_CREDIT_SETTLE": "P1D"}).credit_settle \
        == 86400
    assert AnalysisSettings.from_env({"SLA_ANALYSIS_CREDIT_SETTLE": "PT0S"}).credit_settle == 0
    for bad in ("6h", "-PT1H", "P60D"):
        with pytest.raises(ConfigError) as raised:
            AnalysisSettings.from_env({"SLA_ANALYSIS_CREDIT_SETTLE": bad})
        assert raised.value.variable == "SLA_ANALYSIS_CREDIT_SETTLE"
