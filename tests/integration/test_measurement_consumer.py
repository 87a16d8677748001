"""Monitoring's measurement consumer on the real RabbitMQ, PostgreSQL and Redis: a batch
sent again is acknowledged as a duplicate even when its samples are late by now, the same
batch id with other samples is dead-lettered with the reason, and a store that refuses
writes is backed off and retried, then dead-lettered after ``max_deliveries`` attempts —
nothing is lost, nothing is retried for ever."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

from services.monitoring.application import Monitoring
from services.monitoring.messaging import MEASUREMENT_BINDINGS, MeasurementConsumer
from shared import config
from shared.bus.amqp import AmqpTransport
from shared.bus.topology import MEASUREMENTS, QueueSpec
from shared.bus.transport import REASON_HEADER
from shared.cache import make_cache
from shared.store import ensure_schema
from tests.conftest import SECRET, base_env
from tests.e2e.processes import wait_until
from tests.helpers import delete_queues, drop_schemas
from tests.integration.test_monitoring_stream import GROUP, estate, ts

pytestmark = pytest.mark.integration


class Intake:
    """A monitoring store of its own (schema, queue, cache namespace) and its consumer."""

    def __init__(self, postgres: dict[str, str], amqp_url: str, redis_url: str, tmp: Path,
                 max_deliveries: int = 5) -> None:
        self.prefix = f"c{uuid.uuid4().hex[:8]}_"
        self.postgres, self.amqp_url = postgres, amqp_url
        env = base_env(tmp, SLA_BUS_URL=amqp_url, PERSISTENCE_MODULE="eventsourcing.postgres",
                       **postgres, SLA_SCHEMA_PREFIX=self.prefix, REDIS_URL=redis_url,
                       SLA_SECRET_KEY=SECRET)
        store_env = config.load(env).store_env("monitoring")
        self.schema = store_env["POSTGRES_SCHEMA"]
        ensure_schema(store_env)
        self.app = Monitoring(store_env, cache=make_cache(redis_url, self.prefix + "monitoring"))
        self.products = [f"{self.prefix}p{n}" for n in range(2)]
        for kind, rid, resource in estate(self.products):
            self.app.receive_replica(kind, rid, resource, int(resource["version"]))
        self.app.start_regime(name="intake", offering_group_id=uuid.UUID(GROUP),
                              offering_id=None, sla_type_id=None, customer_group=None,
                              parameters=["latency"], window="PT1M",
                              allowed_lateness="PT10S", clear_after=1)
        self.queue = QueueSpec(name=f"consumer-{self.prefix}.measurements",
                               bindings=MEASUREMENT_BINDINGS)
        self.transport = AmqpTransport(amqp_url)
        self.transport.declare([self.queue])
        self.consumer = MeasurementConsumer(self.app, self.transport, self.queue,
                                            max_deliveries=max_deliveries, backoff_cap=0.2)

    def publish(self, batch_id: str, samples: list[dict[str, Any]]) -> None:
        body = {"eventId": str(uuid.uuid4()), "eventTime": ts(0),
                "eventType": "MeasurementBatchEvent",
                "event": {"batchId": batch_id, "samples": samples}}
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.amqp_url))
                                ) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(MEASUREMENTS, "measurement.test", json.dumps(body),
                                  pika.BasicProperties(delivery_mode=2, message_id=batch_id))

    def sample(self, seconds: float, value: float = 20) -> dict[str, Any]:
        return {"purchasedOfferingId": self.products[0], "parameter": "latency",
                "value": value, "observedAt": ts(seconds)}

    def dead_letters(self) -> dict[str, str]:
        """message id -> reason, of what is in the dead-letter queue now (taken)."""
        letters = {}
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.amqp_url))
                                ) as connection:
            channel = connection.channel()
            while True:
                method, props, _ = channel.basic_get(self.queue.dead_letter_queue,
                                                     auto_ack=True)
                if method is None:
                    return letters
                letters[props.message_id] = (props.headers or {}).get(REASON_HEADER, "")

    def rename(self, table: str, to: str) -> None:
        with psycopg.connect(host=self.postgres["POSTGRES_HOST"],
                             port=self.postgres["POSTGRES_PORT"],
                             user=self.postgres["POSTGRES_USER"],
                             dbname=self.postgres["POSTGRES_DBNAME"], autocommit=True) as conn:
            conn.execute(f'ALTER TABLE "{self.schema}"."{table}" RENAME TO "{to}"')

    def close(self) -> None:
        self.transport.close()
        self.app.close()
        drop_schemas(self.postgres, self.prefix)
        delete_queues(self.amqp_url, self.queue.name, self.queue.dead_letter_queue)


@contextlib.contextmanager
def consuming(intake: Intake) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=intake.consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


@pytest.fixture
def intake(postgres: dict[str, str], amqp_url: str, redis_url: str,
           tmp_path: Path) -> Iterator[Intake]:
    made = Intake(postgres, amqp_url, redis_url, tmp_path, max_deliveries=3)
    try:
        yield made
    finally:
        made.close()


def test_a_batch_sent_again_is_a_duplicate_even_late_and_other_samples_are_dead_lettered(
        intake: Intake) -> None:
    letters: dict[str, str] = {}
    with consuming(intake):
        intake.publish(f"{intake.prefix}b1", [intake.sample(0)])
        wait_until(lambda: intake.app.batch(f"{intake.prefix}b1"), 20, "b1 recorded")
        intake.publish(f"{intake.prefix}b2", [intake.sample(3600)])  # b1's samples: late
        wait_until(lambda: intake.app.batch(f"{intake.prefix}b2"), 20, "b2 recorded")
        intake.publish(f"{intake.prefix}b1", [intake.sample(0)])  # redelivered as it was
        intake.publish(f"{intake.prefix}b1", [intake.sample(0, value=99)])  # reused id
        intake.publish(f"{intake.prefix}b2", [intake.sample(3600, value=98)])  # reused id
        wait_until(lambda: letters.update(intake.dead_letters()) or len(letters) >= 2, 20,
                   "the reused batch ids dead-lettered")
    assert set(letters) == {f"{intake.prefix}b1", f"{intake.prefix}b2"}
    assert all("recorded before with other samples" in r for r in letters.values()), letters
    assert intake.dead_letters() == {}  # the exact repeat was acknowledged, not dead-lettered
    assert intake.app.batch(f"{intake.prefix}b1").samples[0][3] == 20


def test_a_store_that_refuses_writes_is_retried_then_dead_lettered_and_nothing_is_lost(
        intake: Intake) -> None:
    letters: dict[str, str] = {}
    with consuming(intake):
        intake.publish(f"{intake.prefix}warm", [intake.sample(0)])
        wait_until(lambda: intake.app.batch(f"{intake.prefix}warm"), 20, "the first batch")
        intake.rename("monitoring_events", "moved")
        try:
            # A store down for longer than the attempts allow: dead-lettered, with why.
            intake.publish(f"{intake.prefix}lost", [intake.sample(10)])
            wait_until(lambda: letters.update(intake.dead_letters()) or letters, 30,
                       "the batch dead-lettered after its attempts")
            # A store that comes back in time: the batch is recorded.
            intake.publish(f"{intake.prefix}kept", [intake.sample(20)])
            failures = intake.consumer.failures
            wait_until(lambda: intake.consumer.failures > failures, 20, "a failed attempt")
        finally:
            intake.rename("moved", "monitoring_events")
        wait_until(lambda: intake.app.batch(f"{intake.prefix}kept"), 30, "recorded when back")
    reason = letters[f"{intake.prefix}lost"]
    assert reason.startswith("failed 3 times; last: "), reason
    assert intake.app.batch(f"{intake.prefix}lost") is None  # in the dead-letter queue
    assert intake.consumer.last_error is None
