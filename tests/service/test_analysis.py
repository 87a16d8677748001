"""Stories of analysis's users, in one process (in-process bus): monitoring evaluates a
few hours of an offering group, its window summaries reach analysis, and an SLA manager
asks for the period's aggregate figures — pooled availability, the share of purchased
offerings meeting their target, breaches, percentiles and the credit exposure — as
JSON and as CSV; bad questions are refused naming the field. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.drivers.analysis import AnalysisDriver
from tests.drivers.http import FlaskHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.registry import RegistryDriver
from tests.drivers.registry import availability as availability_parameter
from tests.drivers.registry import latency as latency_parameter
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_monitoring import at, hour_batch, monitoring  # noqa: F401 - fixtures

pytestmark = pytest.mark.services("threshold-registry", "monitoring", "analysis")
HOURS = 4  # windows 0h … 3h close (the 4h batch moves the watermark past them)


@pytest.fixture
def analysis(suite: Any) -> AnalysisDriver:
    return AnalysisDriver(FlaskHttp(Client(suite.app("analysis"), "/analysis/v1")))


@pytest.fixture
def measured(registry: Client, monitoring: MonitoringDriver,  # noqa: F811
             analysis: AnalysisDriver) -> dict[str, Any]:
    """Three purchased offerings of two customers (one in another customer group), an
    hour of 30 minutes down for the first at 1h, latency rising from 40 to 70 ms; the
    windows of 0h to 3h summarised in analysis."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    manager.agree_standard(
        group=fibre.group, name="Fibre SLOs",
        parameters=[availability_parameter(conformanceTarget=99.0, thresholdTarget=99.5),
                    latency_parameter()])
    tag = uuid.uuid4().hex[:6]
    products = [f"fibre-{n}-{tag}" for n in range(3)]
    customers = ["acme", "acme", "globex"]
    for product, customer in zip(products, customers, strict=True):
        manager.add_purchased_offering(
            product, fibre.offering, customer, sla_type=fibre.gold,
            customerGroup="enterprise" if customer == "acme" else "public",
            monthlyCharge="200.00", currency="EUR")
    regime = monitoring.start_regime(name="Fibre watch", offeringGroupId=fibre.group["id"],
                                     window="PT1H", allowedLateness="PT10M")
    monitoring.wait_until_watched({"purchasedOfferingId": products[-1],
                                   "parameter": "latency", "value": 1,
                                   "observedAt": at(-48)}, timeout=15)
    for hour in range(HOURS + 1):
        answer = monitoring.send_batch(
            hour_batch(products, hour, 40 + 10 * min(hour, 3), down_minutes=30 if hour == 1
                       else 0, who=0), f"{regime['id']}-analysis-{hour}")
        assert answer.status_code == 201, answer.get_json()

    eventually(lambda: analysis.window_count(at(0), at(HOURS)) == 2 * 3 * HOURS, timeout=30)
    return {"group": fibre.group, "offering": fibre.offering, "gold": fibre.gold,
            "products": products, "regime": regime}


def _items(analysis: AnalysisDriver, **query: str) -> list[dict[str, Any]]:
    return analysis.aggregate(at(0), at(HOURS), **query)


def test_the_period_of_a_group_pooled_by_time_with_breaches_targets_and_credits(
        measured: dict[str, Any], analysis: AnalysisDriver) -> None:
    (item,) = _items(analysis, parameter="availability")
    assert (item["windowCount"], item["purchasedOfferingCount"]) == (12, 3)
    assert item["unit"] == "%" and item["availabilityUnit"] == "%"
    # 12 offering-hours, 30 minutes down: pooled by time.
    assert item["eligibleSeconds"] == pytest.approx(12 * 3600)
    assert item["downSeconds"] == pytest.approx(1800)
    assert item["availability"] == pytest.approx(100 * (1 - 1800 / 43200))
    assert (item["breachCount"], item["breachedMinutes"]) == (1, 60)
    # The first missed 99 % over its period (4 hours, 30 minutes down): 2 of 3 met it.
    assert (item["meetingTargetCount"], item["judgedCount"]) == (2, 3)
    assert item["meetingTargetShare"] == pytest.approx(2 / 3)
    # gold: 5 % of a 200 EUR monthly charge per breached period.
    assert item["creditExposure"] == {
        "breachedPeriods": 1, "purchasedOfferingCount": 1,
        "amount": [{"unit": "EUR", "value": "10.00"}], "unpricedCount": 0,
        "withoutTermsCount": 0}


def test_grouped_by_customer_with_percentiles_of_the_measured_values(
        measured: dict[str, Any], analysis: AnalysisDriver) -> None:
    items = _items(analysis, parameter="latency", groupBy="customerId")
    by_customer = {i["group"]["customerId"]: i for i in items}
    assert set(by_customer) == {"acme", "globex"}
    acme, globex = by_customer["acme"], by_customer["globex"]
    assert (acme["windowCount"], globex["windowCount"]) == (8, 4)
    # Window values 40, 50, 60, 70 ms per offering (acme: each twice): nearest rank.
    assert acme["percentile"] == {"p50": 50.0, "p90": 70.0, "p99": 70.0}
    assert globex["percentile"] == {"p50": 50.0, "p90": 70.0, "p99": 70.0}
    assert acme["availability"] is None  # latency measures no time
    assert (acme["meetingTargetCount"], acme["judgedCount"]) == (2, 2)
    assert acme["breachCount"] == 0

    both = _items(analysis, groupBy="customerGroup,customerId")
    assert sorted((i["group"]["customerGroup"], i["group"]["customerId"], i["parameter"])
                  for i in both) == [
        ("enterprise", "acme", "availability"), ("enterprise", "acme", "latency"),
        ("public", "globex", "availability"), ("public", "globex", "latency")]
    (only,) = _items(analysis, parameter="availability", customerId="globex")
    assert only["availability"] == pytest.approx(100.0)
    assert only["creditExposure"]["breachedPeriods"] == 0
    narrowed = _items(analysis, parameter="availability",
                      purchasedOfferingId=measured["products"][0])
    assert narrowed[0]["availability"] == pytest.approx(100 * (1 - 1800 / 14400))


def test_the_same_answer_as_csv(measured: dict[str, Any], analysis: AnalysisDriver) -> None:
    query = {"groupBy": "customerId", "parameter": "availability"}
    by_accept, rows = analysis.aggregate_csv(at(0), at(HOURS), **query)
    by_format, same = analysis.aggregate_csv(at(0), at(HOURS), by_accept=False, **query)
    assert by_accept.headers["Content-Type"].startswith("text/csv")
    assert by_accept.text == by_format.text and rows == same
    acme = next(r for r in rows if r["customerId"] == "acme")
    assert float(acme["availability"]) == pytest.approx(100 * (1 - 1800 / 28800))
    assert acme["creditAmount"] == "10.00 EUR" and acme["breachCount"] == "1"


def test_outside_the_period_nothing_is_counted(measured: dict[str, Any],
                                               analysis: AnalysisDriver) -> None:
    assert analysis.aggregate(at(10), at(20)) == []


@pytest.mark.services("analysis")
@pytest.mark.parametrize(("query", "field"), [
    ({"to": "2026-11-21T00:00:00Z"}, "from"),
    ({"from": "yesterday", "to": "2026-11-21T00:00:00Z"}, "from"),
    ({"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, "to"),
    ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z", "groupBy": "region"},
     "groupBy"),
    ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z", "scopeType": "x"},
     "scopeType"),
    ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z", "format": "xml"},
     "format"),
    ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z", "customer": "acme"},
     "customer"),
])
def test_a_bad_question_is_refused_naming_the_field(analysis: AnalysisDriver, query: dict[str, str],
                                                    field: str) -> None:
    answer = analysis.ask(query)
    assert answer.status == 400, answer.text
    assert field in str(answer.body), answer.body
