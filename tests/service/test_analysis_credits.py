"""Stories of billing, SLA managers and auditors with SLA credits, in one process
(in-process bus), on SQLite and PostgreSQL: monitoring judges a month of a group of
purchased offerings, analysis's clock closes the month once it has settled, and billing
gets one ``SlaCreditDueEvent`` per purchased offering owed a credit, with the amount and
the crossings behind it; the cap, a quarter, a month without breach, two clocks and a
late window. Time is analysis's settable clock."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.bus.topology import BILLING_EVENTS, Binding, QueueSpec
from shared.scheduler import SettableClock
from tests.drivers.http import FlaskHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.registry import RegistryDriver
from tests.drivers.registry import availability as availability_parameter
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_monitoring import at, hour_batch, monitoring  # noqa: F401 - fixtures

pytestmark = pytest.mark.services("threshold-registry", "monitoring", "analysis")
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
SETTLED = NOVEMBER[1] + timedelta(hours=2)  # the settle time is an hour


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 20, tzinfo=UTC))


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Callable[[], Any]]:
    return {"analysis": clock}


@pytest.fixture
def service_env() -> dict[str, str]:
    # The daily trend run off: the clock's work counted here is the periods' closes.
    return {"SLA_ANALYSIS_CREDIT_SETTLE": "PT1H", "SLA_ANALYSIS_TICK": "0.05",
            "SLA_ANALYSIS_TREND_EVERY": "PT0S"}


class Billing:
    """What billing hears: every message on ``billing.events`` (a queue of its own)."""

    def __init__(self, suite: Any) -> None:
        self.transport = suite.runtime("analysis").transport
        self.name = f"test-billing-{uuid.uuid4().hex[:6]}"
        self.transport.declare([QueueSpec(name=self.name, bindings=(
            Binding(BILLING_EVENTS, "#"),))])
        self.heard: list[Any] = []

    def credits(self) -> list[dict[str, Any]]:
        self.heard.extend(self.transport._queues[self.name].items)
        self.transport._queues[self.name].items.clear()
        return [json.loads(m.body) for m in self.heard]


@pytest.fixture
def billing(suite: Any) -> Billing:
    return Billing(suite)


def close(suite: Any, clock: SettableClock, moment: datetime = SETTLED) -> None:
    """Move analysis's clock to ``moment`` (its clock role wakes and closes what is due)."""
    clock.set(moment)
    suite.runtime("analysis").app.wake.set()


def credits_of(analysis: Client, **query: str) -> list[dict[str, Any]]:
    answer = analysis.get("/slaCredit", query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


@pytest.fixture
def analysis(suite: Any) -> Client:
    return Client(suite.app("analysis"), "/analysis/v1")


def test_a_month_with_a_breach_gives_billing_one_credit_with_its_amount_and_crossings(
        suite: Any, registry: Client, monitoring: MonitoringDriver,  # noqa: F811
        analysis: Client, billing: Billing, clock: SettableClock) -> None:
    """Three purchased offerings watched hourly against 99 % a calendar month; the first
    is down 30 minutes of one hour (a breach, and a month under 99 % over the hours
    measured); once November has settled, billing hears of its credit only: 5 % of its
    200 EUR, with the crossing monitoring raised."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    manager.agree_standard(group=fibre.group, name="Fibre SLOs", parameters=[
        availability_parameter(conformanceTarget=99.0, thresholdTarget=99.5,
                               conformancePeriod="P1M")])
    tag = uuid.uuid4().hex[:6]
    products = [f"fibre-{n}-{tag}" for n in range(3)]
    for product in products:
        manager.add_purchased_offering(product, fibre.offering, "acme", sla_type=fibre.gold,
                                       monthlyCharge="200.00", currency="EUR")
    regime = monitoring.start_regime(name="Fibre watch", offeringGroupId=fibre.group["id"],
                                     window="PT1H", allowedLateness="PT10M")
    monitoring.wait_until_watched({"purchasedOfferingId": products[-1],
                                   "parameter": "availability", "value": 1,
                                   "observedAt": at(-48)}, timeout=15)
    for hour in range(4):
        answer = monitoring.send_batch(
            [s for s in hour_batch(products, hour, 40, down_minutes=30 if hour == 1 else 0,
                                   who=0) if s["parameter"] == "availability"],
            f"{regime['id']}-credit-{hour}")
        assert answer.status_code == 201, answer.get_json()
    app = suite.runtime("analysis").app
    eventually(lambda: (app.aggregate(_month_query()) or [{}])[0].get("eligibleSeconds")
               == 9 * 3600, timeout=30)  # three hours of each (and the first sample's)
    crossings = [c["id"] for c in monitoring.crossings(scopeType="purchasedOffering",
                                                       parameter="availability")
                 if c["scopeId"] == products[0]]

    close(suite, clock, NOVEMBER[1] + timedelta(minutes=30))  # not settled yet
    assert app.tick() == 0 and credits_of(analysis) == []
    close(suite, clock)
    (message,) = eventually(billing.credits, timeout=15)
    assert message["eventType"] == "SlaCreditDueEvent" and message["source"] == "analysis"
    credit = message["event"]["slaCredit"]
    assert credit | {"id": None} == {
        "id": None, "purchasedOfferingId": products[0], "customerId": "acme",
        "slaTypeId": fibre.gold["id"],
        "period": {"startDateTime": "2026-11-01T00:00:00Z",
                   "endDateTime": "2026-12-01T00:00:00Z"},
        "breachedPeriods": 1, "creditPercent": 5, "amount": "10.00", "currency": "EUR",
        "crossingIds": crossings}
    assert crossings

    (listed,) = credits_of(analysis, customerId="acme")
    assert (listed["status"], listed["amount"], listed["lateWindowCount"]) == ("due", "10.00", 0)
    assert listed["id"] == credit["id"]
    read = analysis.get(f"/slaCredit/{credit['id']}").get_json()
    assert read["crossingIds"] == crossings and read["missedParameters"] == ["availability"]
    assert credits_of(analysis, purchasedOfferingId=products[1]) == []
    # The same figure as the aggregate analysis's credit exposure of the month.
    exposure = app.aggregate(_month_query())[0]["creditExposure"]
    assert exposure["amount"] == [{"unit": "EUR", "value": "10.00"}]
    # Nothing more, however often the clock comes back.
    assert app.tick() == 0 and billing.credits() == [message]


def _month_query() -> Any:
    from services.analysis.aggregates import AggregateQuery

    return AggregateQuery(start=NOVEMBER[0].timestamp(), end=NOVEMBER[1].timestamp(),
                          parameter="availability")


# --- the rules, with summaries handed to analysis as monitoring publishes them ---------------
@pytest.fixture
def estate(registry: Client, suite: Any) -> dict[str, Any]:
    """Two SLA types (gold 5 % a breached period capped at 30 %; steep 20 % capped at
    30 %), purchased offerings of each, one without a charge, replicated in analysis."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    steep = manager.create_sla_type("steep", creditPercentPerBreachedPeriod=20,
                                    creditCapPercent=30)
    tag = uuid.uuid4().hex[:6]
    made = {"gold": f"gold-{tag}", "steep": f"steep-{tag}", "free": f"free-{tag}",
            "fine": f"fine-{tag}"}
    manager.add_purchased_offering(made["gold"], fibre.offering, "acme", sla_type=fibre.gold,
                                   monthlyCharge="99.99", currency="EUR")
    manager.add_purchased_offering(made["steep"], fibre.offering, "globex", sla_type=steep,
                                   monthlyCharge="1000", currency="USD")
    manager.add_purchased_offering(made["free"], fibre.offering, "acme", sla_type=fibre.gold)
    manager.add_purchased_offering(made["fine"], fibre.offering, "acme", sla_type=fibre.gold,
                                   monthlyCharge="50", currency="EUR")
    app = suite.runtime("analysis").app
    eventually(lambda: all(app.fact("purchasedOffering", po) for po in made.values())
               and app.fact("slaType", steep["id"]), timeout=15)
    return {**made, "goldType": fibre.gold["id"], "steepType": steep["id"]}


def summary(po: str, sla_type: str, hour: int, *, down: float = 0, parameter: str = "availability",
            period: tuple[datetime, datetime] = NOVEMBER, customer: str = "acme") -> dict[str, Any]:
    """A window summary of an hour of a period, as monitoring publishes it (``down``
    seconds down: breached under 99 %)."""
    start = period[0] + timedelta(hours=hour)
    value = 100 * (1 - down / 3600)
    breached = value < 99.0
    return {
        "id": f"{po}-{parameter}-{period[0]:%Y%m}-{hour}", "regimeId": "r", "parameter": parameter,
        "scope": {"type": "purchasedOffering", "id": po}, "purchasedOfferingId": po,
        "customerId": customer, "customerGroup": None, "productOfferingId": "o",
        "offeringGroupId": "g", "slaTypeId": sla_type,
        "windowStart": start.isoformat().replace("+00:00", "Z"),
        "windowEnd": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "aggregation": "availability", "unit": "%", "sampleCount": 1, "value": value,
        "comparator": "GE", "conformanceTarget": 99.0, "thresholdTarget": 99.5,
        "eligibleSeconds": 3600.0, "badSeconds": float(down), "excludedSeconds": 0.0,
        "classification": "breached" if breached else "ok", "breached": breached,
        "warned": False, "planned": False, "standardId": "s", "standardVersion": 1,
        "periodStart": period[0].isoformat().replace("+00:00", "Z"),
        "periodEnd": period[1].isoformat().replace("+00:00", "Z"),
        "crossingId": f"cr-{po}-{parameter}-{hour}" if breached else None}


def test_the_cap_several_parameters_missed_no_charge_and_no_breach(
        suite: Any, estate: dict[str, Any], analysis: Client, billing: Billing,
        clock: SettableClock) -> None:
    app = suite.runtime("analysis").app
    gold, steep, free, fine = estate["gold"], estate["steep"], estate["free"], estate["fine"]
    for po, sla in ((gold, estate["goldType"]), (steep, estate["steepType"]),
                    (free, estate["goldType"]), (fine, estate["goldType"])):
        for hour in range(3):
            breach = po != fine and hour == 1
            for parameter in ("availability", "reachability"):
                if parameter == "reachability" and po not in (gold, steep):
                    continue
                app.receive_summary(summary(po, sla, hour, down=1800 if breach else 0,
                                            parameter=parameter, customer="x"))
    close(suite, clock)
    messages = eventually(lambda: len(billing.credits()) == 2 and billing.credits(),
                          timeout=15)
    by_po = {m["event"]["slaCredit"]["purchasedOfferingId"]: m["event"]["slaCredit"]
             for m in messages}
    # gold missed two parameters: 2 × 5 % of 99.99 EUR, to the cent.
    assert (by_po[gold]["breachedPeriods"], by_po[gold]["creditPercent"],
            by_po[gold]["amount"]) == (2, 10, "10.00")
    assert by_po[gold]["crossingIds"] == [f"cr-{gold}-availability-1",
                                          f"cr-{gold}-reachability-1"]
    # steep missed two as well: 2 × 20 % capped at 30 % of 1000 USD.
    assert (by_po[steep]["breachedPeriods"], by_po[steep]["creditPercent"],
            by_po[steep]["amount"], by_po[steep]["currency"]) == (2, 30, "300.00", "USD")
    assert by_po[steep]["customerId"] == "globex"  # the inventory's, not the summary's
    # free has no charge: kept, not published; fine met its target: nothing.
    (kept,) = credits_of(analysis, purchasedOfferingId=free)
    assert (kept["status"], kept["amount"], kept["creditPercent"]) == ("unpriced", None, "5")
    assert credits_of(analysis, purchasedOfferingId=fine) == []
    assert {c["status"] for c in credits_of(analysis)} == {"due", "unpriced"}
    assert len(credits_of(analysis, status="due")) == 2


def test_two_clocks_and_a_redelivery_make_one_credit_and_a_late_window_is_counted(
        suite: Any, estate: dict[str, Any], analysis: Client, billing: Billing,
        clock: SettableClock) -> None:
    app = suite.runtime("analysis").app
    gold = estate["gold"]
    for hour in range(3):
        app.receive_summary(summary(gold, estate["goldType"], hour, down=900 * (hour == 2)))
    assert app.receive_summary(summary(gold, estate["goldType"], 2, down=900)) is None
    clock.set(SETTLED)  # two clocks find the close due at once (the role's is a third)
    loops = [app.scheduler(), app.scheduler()]
    threads = [threading.Thread(target=loop.run_due) for loop in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app.wake.set()
    (message,) = eventually(billing.credits, timeout=15)
    assert message["event"]["slaCredit"]["amount"] == "5.00"  # 5 % of 99.99 EUR
    assert app.tick() == 0

    # A window of November arriving now: counted, never applied.
    app.receive_summary(summary(gold, estate["goldType"], 5, down=3600))
    (credit,) = credits_of(analysis, purchasedOfferingId=gold)
    assert (credit["lateWindowCount"], credit["windowCount"], credit["breachedPeriods"]) == (
        1, 3, 1)
    assert app.tick() == 0 and billing.credits() == [message]


def test_a_quarter_closes_at_its_end_and_a_backfill_waits_for_its_windows(
        suite: Any, estate: dict[str, Any], analysis: Client, billing: Billing,
        clock: SettableClock) -> None:
    """A quarterly standard's period closes at the quarter's end, not at a month's; one
    whose summaries arrive long after it ended (a backfill) closes a settle time after
    the first of them came, with every window the backfill brought."""
    app = suite.runtime("analysis").app
    gold = estate["gold"]
    q4 = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    app.receive_summary(summary(gold, estate["goldType"], 2, down=1800, period=q4))
    close(suite, clock)  # December's first hours: November would close, not the quarter
    assert app.tick() == 0 and credits_of(analysis) == []

    q3 = (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
    backfilled = [summary(gold, estate["goldType"], hour, down=1800 * (hour == 3), period=q3)
                  for hour in range(6)]
    app.receive_summary(backfilled[0])  # the backfill starts, long after Q3 ended
    clock.set(SETTLED + timedelta(minutes=30))
    for late in backfilled[1:]:
        app.receive_summary(late)
    assert app.tick() == 0  # an hour after its first summary, not before
    close(suite, clock, SETTLED + timedelta(hours=1, minutes=1))
    (q3_credit,) = eventually(billing.credits, timeout=15)
    assert q3_credit["event"]["slaCredit"]["period"] == {
        "startDateTime": "2026-07-01T00:00:00Z", "endDateTime": "2026-10-01T00:00:00Z"}

    close(suite, clock, q4[1] + timedelta(hours=1, seconds=1))
    messages = eventually(lambda: len(billing.credits()) == 2 and billing.credits(),
                          timeout=15)
    q4_credit = messages[1]["event"]["slaCredit"]
    assert (q4_credit["period"]["endDateTime"], q4_credit["amount"]) == (
        "2027-01-01T00:00:00Z", "5.00")
    (listed,) = credits_of(analysis, **{"periodStart.gte": "2026-10-01T00:00:00Z"})
    assert listed["id"] == q4_credit["id"] and listed["windowCount"] == 1


def test_an_auditor_reads_when_a_period_closed_and_what_it_found(
        suite: Any, estate: dict[str, Any], analysis: Client, clock: SettableClock) -> None:
    from services.analysis.domain import credit_period_id

    app = suite.runtime("analysis").app
    app.receive_summary(summary(estate["gold"], estate["goldType"], 0, down=1800))
    app.receive_summary(summary(estate["fine"], estate["goldType"], 0))
    close(suite, clock)
    period = credit_period_id(*NOVEMBER)

    def closed() -> dict[str, Any] | None:
        answer = analysis.get(f"/audit/aggregates/{period}/state?version=2")
        return answer.get_json()["resource"] if answer.status_code == 200 else None

    state = eventually(closed)
    assert (state["closeAt"], state["closedAt"], state["purchasedOfferingCount"],
            state["windowCount"], state["creditCount"], state["publishedCount"]) == (
        "2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z", 2, 2, 1, 1)
    history = analysis.get(f"/audit/aggregates/{period}/history").get_json()
    assert [(e["eventType"], e["actor"]) for e in history] == [
        ("CreditPeriod.Opened", None), ("CreditPeriod.Closed", "analysis:clock")]
