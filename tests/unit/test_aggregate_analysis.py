"""Aggregate analysis's figures with known answers (services/analysis/aggregates.py):
availability pooled by time, nearest-rank percentiles, targets per conformance period,
credits under a cap — and the SQL statements give, over random summaries, what the
definitions give computed in Python."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.analysis import aggregates as ag
from services.analysis.application import Analysis


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


# --- the statements against the definitions ---------------------------------------------
CUSTOMERS = ("acme", "globex", "initech")
SLA_TYPES = ("gold", "silver", None)
HOUR = 3600.0


def _summary(n: int, rnd: random.Random) -> dict[str, Any]:
    start = 1_767_225_600.0 + HOUR * rnd.randrange(0, 24 * 60)  # two months from 2026-01
    parameter = rnd.choice(("availability", "latency"))
    availability = parameter == "availability"
    eligible = HOUR * rnd.choice((1.0, 0.5, 0.25)) if availability else 0.0
    bad = eligible * rnd.choice((0.0, 0.0, 0.0, 0.001, 0.1)) if availability else 0.0
    value = (100 * (1 - bad / eligible) if availability else rnd.choice((20.0, 40.0, 95.0, 150)))
    breached = value < 99.9 if availability else value > 100
    month = "2026-01-01T00:00:00Z" if start < 1_769_904_000.0 else "2026-02-01T00:00:00Z"
    customer = rnd.choice(CUSTOMERS)
    return {
        "id": str(uuid.UUID(int=n)), "@type": "WindowSummary", "regimeId": "r",
        "parameter": parameter, "scope": {"type": "purchasedOffering", "id": f"po-{n % 7}"},
        "purchasedOfferingId": f"po-{n % 7}", "customerId": customer,
        "customerGroup": "big" if customer == "acme" else None,
        "productOfferingId": "fibre", "offeringGroupId": "g",
        "slaTypeId": SLA_TYPES[n % 7 % 3],
        "windowStart": _iso(start), "windowEnd": _iso(start + HOUR),
        "aggregation": "availability" if availability else "p99",
        "unit": "%" if availability else "ms", "sampleCount": rnd.randrange(1, 60),
        "value": value, "comparator": "GE" if availability else "LE",
        "conformanceTarget": 99.9 if availability else 100.0, "thresholdTarget": None,
        "eligibleSeconds": eligible, "badSeconds": bad, "excludedSeconds": 0.0,
        "classification": "breached" if breached else "ok", "breached": breached,
        "warned": False, "planned": False, "standardId": None, "standardVersion": None,
        "periodStart": month if availability else None, "periodEnd": None,
        "crossingId": None}


def _iso(epoch: float) -> str:
    from shared.times import iso

    return iso(epoch)


def _expected(summaries: list[dict[str, Any]], start: float, end: float,
              group_by: tuple[str, ...], terms: dict[str, Any],
              charge: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    from shared.readmodel import to_stored

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for s in summaries:
        ends = to_stored(s["windowEnd"], "time")
        if start < ends <= end:
            groups.setdefault((*(s[k] for k in group_by), s["parameter"]), []).append(s)
    out = {}
    for key, members in groups.items():
        eligible = sum(s["eligibleSeconds"] for s in members)
        bad = sum(s["badSeconds"] for s in members)
        periods: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        for s in members:
            periods.setdefault((s["purchasedOfferingId"], s["periodStart"]), []).append(s)
        breached_by_po: dict[str, int] = {}
        for (po, _), windows in periods.items():
            e = sum(w["eligibleSeconds"] for w in windows)
            b = sum(w["badSeconds"] for w in windows)
            met = (100 * (e - b) / e >= 99.9) if e else not any(w["breached"] for w in windows)
            breached_by_po[po] = breached_by_po.get(po, 0) + (not met)
        amount = Decimal(0)
        for po, n in breached_by_po.items():
            sla = next(s["slaTypeId"] for s in members if s["purchasedOfferingId"] == po)
            percent = ag.credit_percent(n, terms.get(sla)) if n else None
            if percent:
                amount += ag.credit_amount(percent, charge[po]) or 0
        out[key] = {
            "windowCount": len(members),
            "availability": None if not eligible else 100 * (eligible - bad) / eligible,
            "breachCount": sum(s["breached"] for s in members),
            "breachedMinutes": 60.0 * sum(s["breached"] for s in members),
            "percentile": ag.percentiles([s["value"] for s in members]),
            "meetingTargetCount": sum(1 for n in breached_by_po.values() if n == 0),
            "judgedCount": len(breached_by_po),
            "credit": amount}
    return out


def test_the_statements_give_what_the_definitions_give(tmp_path: Path) -> None:
    rnd = random.Random(11)
    app = Analysis({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                    "SQLITE_DBNAME": str(tmp_path / "analysis.sqlite")})
    try:
        summaries = [_summary(n, rnd) for n in range(1500)]
        for s in summaries:
            app.receive_summary(s)
        terms = {"gold": {"creditPercentPerBreachedPeriod": 5, "creditCapPercent": 8},
                 "silver": {"creditPercentPerBreachedPeriod": 2}}
        charge = {f"po-{n}": "100.00" for n in range(7)}
        kept = {("slaType", k): v for k, v in terms.items()}
        kept.update({("purchasedOffering", po): {"monthlyCharge": c, "currency": "EUR"}
                     for po, c in charge.items()})
        app.fact = lambda kind, rid: kept.get((kind, rid))  # type: ignore[method-assign]
        for _ in range(12):
            start = 1_767_225_600.0 + HOUR * rnd.randrange(0, 24 * 40)
            end = start + HOUR * rnd.randrange(1, 24 * 30)
            group_by = tuple(rnd.sample(("customerId", "customerGroup", "slaTypeId"),
                                        rnd.randrange(0, 3)))
            items = app.aggregate(ag.AggregateQuery(start, end, group_by=group_by))
            expected = _expected(summaries, start, end, group_by, terms, charge)
            got = {(*(i["group"][k] for k in group_by), i["parameter"]): i for i in items}
            assert set(got) == set(expected)
            for key, want in expected.items():
                item = got[key]
                assert item["windowCount"] == want["windowCount"]
                assert item["availability"] == pytest.approx(want["availability"])
                assert (item["breachCount"], item["breachedMinutes"]) == (
                    want["breachCount"], pytest.approx(want["breachedMinutes"]))
                assert item["percentile"] == want["percentile"]
                assert (item["meetingTargetCount"], item["judgedCount"]) == (
                    want["meetingTargetCount"], want["judgedCount"])
                amounts = {a["unit"]: Decimal(a["value"])
                           for a in item["creditExposure"]["amount"]}
                assert amounts.get("EUR", Decimal(0)) == want["credit"]
    finally:
        app.close()
