"""The aggregate statements on the stores the suite runs on (SQLite and PostgreSQL: on
PostgreSQL the percentiles are ``percentile_disc``, elsewhere ranked rows): over random
summaries they give what the definitions (services/analysis/aggregates.py) give computed
in Python, and the same again once the read model is rebuilt from the log."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from services.analysis import aggregates as ag
from services.analysis.application import Analysis

pytestmark = pytest.mark.integration

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


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_the_statements_give_what_the_definitions_give(store_env: dict[str, str]) -> None:
    rnd = random.Random(11)
    app = Analysis(store_env)
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
        app.facts = lambda kind, ids: {  # type: ignore[method-assign]
            i: kept[(kind, i)] for i in ids if (kind, i) in kept}
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
        # Rebuilt from the log (slactl readmodel rebuild analysis): the same answers.
        asked = ag.AggregateQuery(1_767_225_600.0, 1_772_323_200.0, group_by=("customerId",))
        before = app.aggregate(asked)
        report = app.index.rebuild()
        assert report.rows == len(summaries)
        assert report.created == len(summaries)  # straight off their creation events
        assert _rounded(app.aggregate(asked)) == _rounded(before)  # (summed in another order)
    finally:
        app.close()
