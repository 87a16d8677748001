"""Measurements through the real RabbitMQ into monitoring workers running as processes
on PostgreSQL and Redis. One worker is killed with SIGKILL in the middle of the stream
and restarted: no sample is lost or counted twice, and its window results equal those
of a worker that ran without interruption."""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import pytest

from services.monitoring.application import Monitoring
from shared import config
from tests.conftest import SECRET, base_env
from tests.e2e.processes import Process, wait_until, worker
from tests.helpers import delete_queues, drop_schemas

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 24, tzinfo=UTC)
GROUP = str(uuid.uuid4())
OFFERING = str(uuid.uuid4())


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def estate(products: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """The replicas monitoring would have received from the registry."""
    version = {"version": 1, "lifecycleStatus": "approved", "name": "Latency",
               "description": None, "basis": "internallyAcceptable", "slaTypeId": None,
               "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
               "parameters": [{"name": "latency", "unit": "ms", "kind": "technical",
                               "aggregation": "p99", "comparator": "LE",
                               "conformanceTarget": 100, "thresholdTarget": 80,
                               "conformancePeriod": None, "evaluationWindow": "PT1M",
                               "graceTimes": 1}],
               "createdAt": "2026-01-01T00:00:00Z", "approvedAt": "2026-01-01T00:00:00Z",
               "approvedBy": "test", "retiredAt": None, "changeReason": None}
    standard_id = str(uuid.uuid4())
    replicas = [("productOffering", OFFERING, {"id": OFFERING, "offeringGroupId": GROUP,
                                               "lifecycleStatus": "active", "version": 1}),
                ("thresholdStandard", standard_id, {
                    "id": standard_id, "offeringGroupId": GROUP, "productOfferingId": None,
                    "versions": [version], "version": 2})]
    for product in products:
        replicas.append(("purchasedOffering", product, {
            "id": product, "customerId": "c", "productOfferingId": OFFERING,
            "slaTypeId": None, "customerGroup": None, "status": "active", "version": 1}))
    return replicas


class Estate:
    """One monitoring deployment (its own schema and queues) with the same estate."""

    def __init__(self, name: str, postgres: dict[str, str], amqp_url: str, redis_url: str,
                 tmp: Path, products: list[str]) -> None:
        self.prefix = f"s{uuid.uuid4().hex[:8]}_"
        self.queue_prefix = f"stream-{self.prefix}."
        self.postgres = postgres
        self.env = base_env(tmp / name, SLA_BUS_URL=amqp_url,
                            PERSISTENCE_MODULE="eventsourcing.postgres", **postgres,
                            SLA_SCHEMA_PREFIX=self.prefix, SLA_BUS_PREFIX=self.queue_prefix,
                            REDIS_URL=redis_url, SLA_CHECKPOINT_SECONDS="1",
                            SLA_SECRET_KEY=SECRET)
        settings = config.load(self.env)
        from shared.store import ensure_schema

        store_env = settings.store_env("monitoring")
        ensure_schema(store_env)
        self.app = Monitoring(store_env)
        for kind, rid, resource in estate(products):
            self.app.receive_replica(kind, rid, resource, int(resource["version"]))
        self.app.start_regime(name="stream", offering_group_id=uuid.UUID(GROUP),
                              offering_id=None, sla_type_id=None, customer_group=None,
                              parameters=["latency"], window="PT1M",
                              allowed_lateness="PT10S", clear_after=1)
        self.log_dir = tmp / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.process: Process | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.process = worker("monitoring", self.env, self.log_dir / f"worker-{self.runs}.log")

    def results(self) -> dict[tuple, tuple]:
        return {(e.parameter, e.scope_type, e.scope_id, e.window_start): (
            e.result["value"], e.result["classification"], e.result["count"],
            tuple(e.result["batchIds"]), e.result.get("crossingId") is not None)
            for e in self.app.evaluations()}

    def crossings(self) -> list[tuple]:
        return sorted((c.scope_type, c.scope_id, c.raised["windowStart"], c.level,
                       tuple(h["change"] for h in c.history)) for c in self.app.crossings())

    def close(self, amqp_url: str) -> None:
        if self.process:
            self.process.stop()
        self.app.close()
        drop_schemas(self.postgres, self.prefix)
        delete_queues(amqp_url, *(self.queue_prefix + queue for queue in (
            "monitoring.measurements", "monitoring.measurements.dead-letter",
            "monitoring.inbox", "monitoring.inbox.dead-letter")))


@pytest.fixture
def estates(postgres: dict[str, str], amqp_url: str, redis_url: str,
            tmp_path: Path) -> Iterator[tuple[Estate, Estate, list[str]]]:
    products = [f"stream-{uuid.uuid4().hex[:6]}-{n}" for n in range(10)]
    reference = Estate("reference", postgres, amqp_url, redis_url, tmp_path, products)
    killed = Estate("killed", postgres, amqp_url, redis_url, tmp_path, products)
    try:
        yield reference, killed, products
    finally:
        reference.close(amqp_url)
        killed.close(amqp_url)


def queue_ready(amqp_url: str, name: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(
        estates: tuple[Estate, Estate, list[str]], amqp_url: str) -> None:
    reference, killed, products = estates
    reference.start()
    killed.start()
    for e in (reference, killed):
        wait_until(lambda e=e: queue_ready(amqp_url, e.queue_prefix + "monitoring.measurements"),
                   60, "measurement queue declared", e.process)

    rng = random.Random(7)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    messages = 240
    step = 3.0  # seconds of observed time per message: 20 messages a 1-minute window
    for m in range(messages):
        samples = [{"purchasedOfferingId": products[i % len(products)], "parameter": "latency",
                    "value": round(rng.uniform(20, 70 if m < 120 else 160), 1),
                    "observedAt": ts(m * step + i * 0.1)} for i in range(25)]
        body = {"eventId": str(uuid.uuid4()), "eventTime": ts(m * step),
                "eventType": "MeasurementBatchEvent",
                "event": {"batchId": f"{killed.prefix}b{m}", "samples": samples}}
        for e in (reference, killed):  # each deployment has its own exchanges
            channel.basic_publish(e.queue_prefix + "measurements", "measurement.stream",
                                  json.dumps(body),
                                  pika.BasicProperties(delivery_mode=2,
                                                       message_id=f"{killed.prefix}b{m}"))
        if m == messages // 3:
            # Wait until the worker is busy with the stream, then kill it outright.
            wait_until(lambda: len(killed.app.evaluations()) > 0, 60, "first evaluations",
                       killed.process)
            killed.process.send(signal.SIGKILL)
            killed.process.proc.wait(10)
        if m == messages // 2:
            killed.start()
    # A last sample far ahead closes every window of the stream.
    sentinel = {"eventId": str(uuid.uuid4()), "eventTime": ts(0),
                "eventType": "MeasurementBatchEvent",
                "event": {"batchId": f"{killed.prefix}sentinel", "samples": [{
                    "purchasedOfferingId": products[0], "parameter": "latency", "value": 1,
                    "observedAt": ts(messages * step + 600)}]}}
    for e in (reference, killed):
        channel.basic_publish(e.queue_prefix + "measurements", "measurement.stream",
                              json.dumps(sentinel), pika.BasicProperties(delivery_mode=2))
    connection.close()

    windows = int(messages * step // 60)
    expected = windows * (len(products) + 1)  # each offering and the group, each window
    for e in (reference, killed):
        wait_until(lambda e=e: len(e.app.evaluations()) >= expected, 120,
                   f"{expected} window evaluations", e.process)
    time.sleep(0.5)  # anything evaluated twice would show up by now
    want, got = reference.results(), killed.results()
    assert len(want) == expected
    assert got == want
    assert killed.crossings() == reference.crossings()
    # Every sample counted once.
    for e in (reference, killed):
        counted = sum(r[2] for k, r in e.results().items() if k[1] == "offeringGroup")
        assert counted == messages * 25
    crossings = [c for c in killed.app.crossings() if c.scope_type == "offeringGroup"]
    assert [c.level for c in crossings] == ["breached"]
