"""Monitoring's window summaries through the real RabbitMQ into analysis: a suite runs
monitoring alone for a few hours of measurements (its summaries go out with no consumer
bound); analysis is added later, and the backfill (``slactl backfill window-summaries``)
gives it every window, once, with the figures the windows had — run again, nothing
changes; the windows that close from then on reach analysis through the relay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.analysis.aggregates import AggregateQuery
from services.monitoring import backfill
from shared import config
from shared.bus.topology import BrokerNames
from tests.conftest import base_env
from tests.helpers import delete_queues, eventually
from tests.service.conftest import Client

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 24, tzinfo=UTC)
GROUP, OFFERING, GOLD = (str(uuid.uuid4()) for _ in range(3))


def at(hour: float) -> str:
    return (DAY + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")


def seed(monitoring: Any, products: list[str]) -> None:
    """The replicas monitoring would have received from the registry, and a regime."""
    parameter = {"name": "availability", "unit": "%", "kind": "technical",
                 "aggregation": "availability", "comparator": "GE", "conformanceTarget": 99.0,
                 "thresholdTarget": None, "conformancePeriod": "P1M",
                 "evaluationWindow": "PT1H", "graceTimes": 0}
    version = {"version": 1, "lifecycleStatus": "approved", "name": "Availability",
               "description": None, "basis": "commerciallyAgreed", "slaTypeId": None,
               "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
               "parameters": [parameter], "createdAt": "2026-01-01T00:00:00Z",
               "approvedAt": "2026-01-01T00:00:00Z", "approvedBy": "test", "retiredAt": None,
               "changeReason": None}
    standard = str(uuid.uuid4())
    replicas = [
        ("offeringGroup", GROUP, {"id": GROUP, "lifecycleStatus": "active", "version": 1}),
        ("productOffering", OFFERING, {"id": OFFERING, "offeringGroupId": GROUP,
                                       "lifecycleStatus": "active", "version": 1}),
        ("slaType", GOLD, {"id": GOLD, "name": "gold", "maintenanceAccounting": "excluded",
                           "version": 1}),
        ("thresholdStandard", standard, {"id": standard, "offeringGroupId": GROUP,
                                         "productOfferingId": None, "versions": [version],
                                         "version": 2})]
    for n, product in enumerate(products):
        replicas.append(("purchasedOffering", product, {
            "id": product, "customerId": f"cust-{n % 2}", "productOfferingId": OFFERING,
            "slaTypeId": GOLD, "customerGroup": None, "status": "active", "version": 1}))
    for kind, rid, resource in replicas:
        monitoring.receive_replica(kind, rid, resource, int(resource["version"]))
    monitoring.start_regime(name="Fibre watch", offering_group_id=uuid.UUID(GROUP),
                            window="PT1H", allowed_lateness="PT10M")


def send_hours(client: Client, products: list[str], hours: range, tag: str) -> None:
    for hour in hours:
        samples = [{"purchasedOfferingId": p, "parameter": "availability",
                    "value": 0.5 if (hour == 1 and n == 0) else 1.0, "intervalSeconds": 3600,
                    "observedAt": at(hour + 1)} for n, p in enumerate(products)]
        answer = client.post("/measurementBatch", json={"batchId": f"{tag}-{hour}",
                                                        "samples": samples})
        assert answer.status_code == 201, answer.get_json()


def relayed(suite: Any) -> bool:
    relay = suite.runtime("monitoring").relay
    pending = relay.app.recorder.select_notifications(
        start=relay.app.published_position(relay.outbox), limit=1, inclusive_of_start=False,
        topics=relay.topics)
    return not pending


def test_summaries_reach_analysis_through_rabbitmq_and_a_late_analysis_is_backfilled(
        tmp_path: Path, amqp_url: str, unique: str) -> None:
    from services.analysis.service import SPEC as ANALYSIS
    from services.monitoring.service import SPEC as MONITORING
    from shared.wsgi import Suite

    prefix = f"t{unique}."
    settings = config.load(base_env(tmp_path / "var", SLA_BUS_URL=amqp_url,
                                    SLA_BUS_PREFIX=prefix))
    products = [f"fibre-{n}-{unique}" for n in range(3)]
    names = BrokerNames(prefix)
    try:
        # Monitoring alone: windows 0h … 2h close, and their summaries reach no one.
        alone = Suite([MONITORING], settings)
        try:
            seed(alone.runtime("monitoring").app, products)
            send_hours(Client(alone.app("monitoring"), "/monitoring/v1"), products, range(4),
                       "before")
            # (each window: three offerings' series and the group's)
            eventually(lambda: len(alone.runtime("monitoring").app.evaluations()) == 3 * 4
                       and relayed(alone), timeout=30)
        finally:
            alone.stop()

        # Analysis joins; the backfill gives it the windows it missed.
        suite = Suite([MONITORING, ANALYSIS], settings)
        try:
            analysis = suite.runtime("analysis").app
            assert analysis.summary_count() == 0
            monitoring = suite.runtime("monitoring")
            before = len(monitoring.app.evaluations())
            assert backfill.window_summaries(monitoring, batch=2) == before
            eventually(lambda: analysis.summary_count() == before, timeout=30)
            (figures,) = analysis.aggregate(AggregateQuery(
                DAY.timestamp(), DAY.timestamp() + 3 * 3600, parameter="availability"))
            assert figures["windowCount"] == 9  # three offerings, windows 0h … 2h
            assert figures["availability"] == pytest.approx(100 * (1 - 1800 / (9 * 3600)))
            assert figures["breachCount"] == 1
            assert (figures["meetingTargetCount"], figures["judgedCount"]) == (2, 3)

            # Again: nothing changes. And what closes now comes through the relay.
            backfill.window_summaries(monitoring)
            send_hours(Client(suite.app("monitoring"), "/monitoring/v1"), products,
                       range(4, 6), "after")
            # windows 3h and 4h: three offerings' series and the group's each
            eventually(lambda: analysis.summary_count() == before + 4 * 2, timeout=30)
            (grouped, other) = analysis.aggregate(AggregateQuery(
                DAY.timestamp(), DAY.timestamp() + 5 * 3600, group_by=("customerId",)))
            assert (grouped["group"], other["group"]) == ({"customerId": "cust-0"},
                                                          {"customerId": "cust-1"})
            assert grouped["windowCount"] == 10 and other["windowCount"] == 5
        finally:
            suite.stop()
    finally:
        delete_queues(amqp_url, *(names.queue(q) for q in (
            "monitoring.inbox", "monitoring.inbox.dead-letter", "monitoring.measurements",
            "monitoring.measurements.dead-letter", "analysis.inbox",
            "analysis.inbox.dead-letter")))
