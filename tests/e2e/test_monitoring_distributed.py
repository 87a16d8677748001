"""The suite's distributed wiring end to end: registry and monitoring as gunicorn
processes plus their workers; the registry's standards and inventory reach monitoring
over RabbitMQ; measurements over HTTP raise a crossing that is published on the bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from shared import auth
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.registry import RegistryDriver, latency
from tests.e2e.processes import distributed_suite, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def suite_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                    tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    with distributed_suite(("threshold-registry", "monitoring"), amqp_url=amqp_url,
                           postgres=postgres, redis_url=redis_url, logs=tmp_path,
                           unique=unique, secret=SECRET,
                           settings={"SLA_RELAY_POLL_INTERVAL": "0.05"},
                           http_workers=2) as suite:
        yield suite


def test_a_breach_measured_over_http_is_published_with_its_evidence(
        suite_processes: dict[str, Any], amqp_url: str) -> None:
    registry, monitoring = (suite_processes["bases"][s] for s in ("threshold-registry",
                                                                   "monitoring"))
    watcher = MonitoringDriver.at(monitoring, auth.issue(SECRET, ["admin"], "e2e"))
    probe = MonitoringDriver.at(monitoring, auth.issue(SECRET, ["ingest"], "probe"))
    manager = RegistryDriver(NetworkHttp(registry, auth.issue(SECRET, ["admin"], "e2e")))
    group = manager.create_group("DSL")
    offering = manager.create_offering("DSL 100", group=group)
    manager.agree_standard(group=group, name="DSL latency", basis="internallyAcceptable",
                           parameters=[latency(aggregation="mean", conformanceTarget=40,
                                               thresholdTarget=None, evaluationWindow="PT5M")])
    product = f"dsl-{uuid.uuid4().hex[:6]}"
    manager.add_purchased_offering(product, offering, "c1")
    watcher.start_regime(name="DSL watch", offeringGroupId=group["id"], window="PT5M",
                         allowedLateness="PT0S")

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    watch = channel.queue_declare("", exclusive=True).method.queue
    events = suite_processes["prefix"] + "sla.events"  # the suite's own exchange
    channel.exchange_declare(events, exchange_type="topic", durable=True)
    channel.queue_bind(watch, events, "monitoring.crossing.*")

    def sample(minute: int, value: float) -> dict[str, Any]:
        return {"purchasedOfferingId": product, "parameter": "latency", "value": value,
                "observedAt": f"2026-11-25T10:{minute:02d}:00Z"}

    # The registry's inventory reaches monitoring over the bus; then a breach, then a
    # sample of the next window closes it.
    wait_until(lambda: probe.send_batch([sample(0, 90), sample(2, 70)], "b1").status_code
               in (200, 201), 30, "monitoring knows the purchased offering")
    closing = probe.send_batch([sample(5, 10)], "b2")
    assert closing.status_code == 201, closing.json()

    def crossing() -> Any:
        method, _, raw = channel.basic_get(watch, auto_ack=True)
        return json.loads(raw) if method else None

    message = wait_until(crossing, 20, "crossing published")
    event = message["event"]["crossing"]
    assert message["eventType"] == "ThresholdCrossingEvent"
    assert event["level"] == "breached" and event["measuredValue"] == 80
    assert event["batchIds"] == ["b1"] and event["standardVersion"] == 1
    connection.close()


def test_a_group_watched_by_a_regime_is_kept_until_the_regime_stops(
        suite_processes: dict[str, Any]) -> None:
    """Monitoring's worker publishes the regime from its main log over RabbitMQ; the
    registry's worker keeps it in its replica (PostgreSQL), which its HTTP processes read."""
    from services.threshold_registry.domain.replicas import REGIME, Replica

    registry, monitoring = (suite_processes["bases"][s] for s in ("threshold-registry",
                                                                   "monitoring"))
    admin = {"Authorization": f"Bearer {auth.issue(SECRET, ['admin'], 'e2e')}"}
    watcher = MonitoringDriver.at(monitoring, auth.issue(SECRET, ["admin"], "e2e"))
    group = requests.post(f"{registry}/offeringGroup", headers=admin,
                          json={"name": "Leased lines"}).json()
    regime = watcher.start_regime(name="Leased watch", offeringGroupId=group["id"],
                                  window="PT5M")
    known = f"{registry}/audit/aggregates/{Replica.create_id(REGIME, regime['id'])}/history"

    def heard(changes: int) -> bool:  # what the registry's log holds of the regime
        answer = requests.get(known, headers=admin)
        return answer.status_code == 200 and len(answer.json()) == changes

    wait_until(lambda: heard(1), 30, "the registry hears of the regime")
    refused = requests.delete(f"{registry}/offeringGroup/{group['id']}", headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["details"] == {"monitoringRegime": [regime["id"]]}
    assert "Leased watch" in refused.json()["message"]

    assert watcher.stop(regime["id"]).status_code == 200
    wait_until(lambda: heard(2), 30, "the registry hears that the regime stopped")
    assert requests.delete(f"{registry}/offeringGroup/{group['id']}",
                           headers=admin).status_code == 204
