"""A planned outage end to end, distributed: the registry, monitoring and
outage-negotiation as gunicorn processes plus their workers on RabbitMQ, PostgreSQL and
Redis. An outage over a group is agreed through outage-negotiation's API; its agreement
reaches monitoring over the bus; a breach-worthy dip inside its window raises nothing
and stays out of the budget, the same dip outside it breaches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import pytest

from shared import auth
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver, availability
from tests.e2e.processes import distributed_suite, wait_until

pytestmark = pytest.mark.e2e
SERVICES = ("threshold-registry", "monitoring", "outage-negotiation")


@pytest.fixture
def suite_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                    tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    with distributed_suite(SERVICES, amqp_url=amqp_url, postgres=postgres,
                           redis_url=redis_url, logs=tmp_path, unique=unique, secret=SECRET,
                           settings={"SLA_RELAY_POLL_INTERVAL": "0.05"}, http_workers=1) as suite:
        yield suite


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_dip_inside_an_agreed_outage_raises_nothing_and_outside_it_breaches(
        suite_processes: dict[str, Any], amqp_url: str) -> None:
    bases = suite_processes["bases"]
    admin = auth.issue(SECRET, ["admin"], "e2e")
    manager = RegistryDriver(NetworkHttp(bases["threshold-registry"], admin))
    watcher = MonitoringDriver.at(bases["monitoring"], admin)
    probe = MonitoringDriver.at(bases["monitoring"], auth.issue(SECRET, ["ingest"], "probe"))
    planner = OutageDriver.at(bases["outage-negotiation"], admin)

    group = manager.create_group("Metro fibre")
    offering = manager.create_offering("Metro 10G", group=group)
    # No notice asked, maintenance excluded: the outage can start within the minute.
    bronze = manager.create_sla_type("bronze", minimumNoticeDays=0)
    manager.agree_standard(group=group, name="Metro availability", parameters=[
        availability(conformanceTarget=99.0, thresholdTarget=None, evaluationWindow="PT1M")])
    products = [f"metro-{n}" for n in range(2)]
    for product in products:
        manager.add_purchased_offering(product, offering, f"cust-{product}", sla_type=bronze)
    watcher.start_regime(name="Metro watch", offeringGroupId=group["id"], window="PT1M",
                         allowedLateness="PT0S")

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    watch = channel.queue_declare("", exclusive=True).method.queue
    events = suite_processes["prefix"] + "sla.events"
    channel.exchange_declare(events, exchange_type="topic", durable=True)
    for key in ("monitoring.crossing.*", "outage-negotiation.planned-outage.*"):
        channel.queue_bind(watch, events, key)

    def heard(kind: str) -> Any:
        while True:
            method, _, raw = channel.basic_get(watch, auto_ack=True)
            if not method:
                return None
            message = json.loads(raw)
            if message["eventType"] == kind:
                return message

    # The outage's minute starts at the next minute boundary at least 15 s away, so it
    # can still be agreed before it starts; every sample stays within monitoring's five
    # minutes of allowed clock skew.
    def boundary() -> datetime | None:
        now = datetime.now(UTC)
        start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        return start if (start - now).total_seconds() >= 15 else None

    start = wait_until(boundary, 20, "a minute boundary far enough ahead")
    # The whole group is known to outage-negotiation once the registry's events arrive.
    drafted = wait_until(lambda: (a := planner.draft(
        {"offeringGroupId": group["id"]}, [window(iso(start), iso(start + timedelta(
            minutes=1)))], reason="metro ring upgrade", expect=None)).status == 201 and a,
        30, "outage-negotiation knows the group").body
    proposed = wait_until(lambda: (a := planner.move(drafted, "propose", expect=None))
                          .status == 200 and a, 30, "the inventory is known").body
    assert proposed["affectedPurchasedOfferingCount"] == 2
    planner.move(drafted, "negotiate")
    agreed = planner.move(drafted, "agree").body
    assert agreed["status"] == "agreed"
    message = wait_until(lambda: heard("PlannedOutageChangeEvent"), 20, "agreement published")
    assert message["event"]["change"] == "agreed"
    assert sorted(message["event"]["plannedOutage"]["affectedPurchasedOfferingIds"]) == \
        products

    def reading(minute: int, up: float) -> list[dict[str, Any]]:
        """Each offering's availability over the minute ``start + minute``."""
        return [{"purchasedOfferingId": p, "parameter": "availability", "value": up,
                 "intervalSeconds": 60, "observedAt": iso(start + timedelta(minutes=minute + 1))}
                for p in products]

    # Minute 0 (inside the outage) and minute 2 (outside) are half down; 1 and 3 are up.
    for minute, up in ((0, 0.5), (1, 1.0), (2, 0.5), (3, 1.0)):
        answer = wait_until(lambda minute=minute, up=up: (r := probe.send_batch(
            reading(minute, up), f"metro-{minute}")).status_code in (200, 201) and r,
            30, "monitoring takes the reading")
        assert answer.json()["rejected"] == [], answer.json()

    scope = {"scopeType": "purchasedOffering", "scopeId": products[0]}

    def evaluated() -> Any:
        found = watcher.evaluations({**scope, "windowStart.gte": iso(start)},
                                    parameter="availability", sort="windowStart")
        return found if len(found) >= 3 else None

    inside, after, outside = wait_until(evaluated, 30, "the windows evaluated")[:3]
    assert inside["windowStart"] == iso(start)
    assert inside["excludedSeconds"] == 60 and inside["eligibleSeconds"] == 0
    assert inside["classification"] != "breached"
    assert outside["classification"] == "breached" and outside["value"] == 50.0
    # The dip inside the outage took nothing from the budget (a window with no eligible
    # time has no figure of its own); the one outside did.
    assert inside["remainingBudget"] is None and after["remainingBudget"] == 1.0
    assert outside["remainingBudget"] < 1.0
    crossing = wait_until(lambda: heard("ThresholdCrossingEvent"), 20, "breach published")
    assert crossing["event"]["crossing"]["window"]["startDateTime"] == iso(
        start + timedelta(minutes=2))
    connection.close()
