"""The notification service in its distributed wiring: real RabbitMQ (a unique queue
prefix per test), crossings published as monitoring would, a real webhook receiver and a
real SMTP server on loopback; delivery outcomes published back on the bus."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest

from services.notification.signature import verify_signature
from shared import config
from shared.bus.topology import SLA_EVENTS, BrokerNames
from tests.conftest import base_env
from tests.helpers import delete_queues, eventually
from tests.integration.bus_fixtures import drain
from tests.service import test_notification as stories
from tests.service.conftest import Client
from tests.service.test_notification import Mailbox, Receiver, crossing

pytestmark = pytest.mark.integration

# The real SMTP server and webhook receiver of the service stories.
mailbox = stories.mailbox
receiver = stories.receiver


@pytest.fixture
def distributed(tmp_path: Path, amqp_url: str, unique: str,
                mailbox: tuple[Mailbox, int]) -> Any:
    from services.notification.service import SPEC
    from shared.wsgi import Suite

    prefix = f"t{unique}."
    settings = config.load(base_env(
        tmp_path / "var", SLA_BUS_URL=amqp_url, SLA_BUS_PREFIX=prefix, SLA_PREFETCH="10",
        # notification's own settings, read from the same environment when it is built
        SLA_SMTP_HOST="127.0.0.1", SLA_SMTP_PORT=str(mailbox[1]),
        SLA_WEBHOOK_ALLOW="127.0.0.1/32", SLA_DELIVERY_BACKOFF_BASE="0.2",
        SLA_DELIVERY_BACKOFF_CAP="0.5"))
    suite = Suite([SPEC], settings, start_workers=False)
    runtime = suite.runtime("notification")
    names = BrokerNames(prefix)
    tap = names.queue("tap")
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(amqp_url))) as conn:
        channel = conn.channel()
        channel.exchange_declare(names.exchange(SLA_EVENTS), exchange_type="topic",
                                 durable=True)
        channel.queue_declare(tap, durable=True)
        channel.queue_bind(tap, names.exchange(SLA_EVENTS), routing_key="notification.#")
    runtime.start_workers()
    try:
        yield suite, tap
    finally:
        suite.stop()
        delete_queues(amqp_url, tap, names.queue(runtime.queue.name),
                      names.queue(runtime.queue.dead_letter_queue))


def _take(amqp_url: str, queue: str) -> list[dict[str, Any]]:
    return [{"routing_key": key, "body": json.loads(body)} for key, body in drain(amqp_url, queue)]


def test_a_crossing_on_rabbitmq_reaches_webhook_and_mailbox_once_and_is_reported(
        distributed: Any, amqp_url: str, receiver: Receiver,
        mailbox: tuple[Mailbox, int]) -> None:
    suite, tap = distributed
    runtime = suite.runtime("notification")
    n = Client(suite.app("notification"), "/notification/v1")
    group = str(uuid.uuid4())
    created = n.post("/notificationList", json={
        "name": "NOC", "offeringGroupIds": [group], "groupWait": 0,
        "topics": [{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major"}],
        "members": [{"name": "hook", "channel": "webhook", "address": f"{receiver.url}/h"},
                    {"name": "mail", "channel": "email", "address": "noc@sla.example"}]})
    assert created.status_code == 201, created.get_json()
    secret = created.get_json()["members"][0]["secret"]

    breach = crossing(f"cr-{uuid.uuid4().hex[:6]}", group)
    for _ in range(2):  # the broker redelivers: still one message each
        runtime.transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                      breach.to_bytes(), message_id=breach.event_id)
    got = eventually(lambda: receiver.at("/h"), timeout=20)
    eventually(lambda: mailbox[0].to("noc@sla.example"), timeout=20)
    assert verify_signature(secret, got[0]["headers"], got[0]["body"])

    published: list[dict[str, Any]] = []
    eventually(lambda: published.extend(_take(amqp_url, tap)) or len(
        [m for m in published if m["routing_key"] == "notification.delivery.delivered"]) == 2,
        timeout=20)
    assert len(receiver.at("/h")) == 1 and len(mailbox[0].to("noc@sla.example")) == 1
    reported = [m["body"] for m in published]
    assert {m["eventType"] for m in reported} == {"NotificationDeliveryChangeEvent"}
    # The breach's acknowledgement links went to the recipients, and nowhere else.
    assert "/acknowledge?token=" in json.loads(got[0]["body"])["alerts"][0]["ackUrl"]
    assert "/acknowledge?token=" in mailbox[0].to("noc@sla.example")[0].get_body(
        ("plain",)).get_content()
    assert "acknowledge?token=" not in json.dumps(reported)
    assert {m["correlationId"] for m in reported} == {breach.correlation_id}


def test_the_delivery_retries_until_the_receiver_returns(
        distributed: Any, receiver: Receiver) -> None:
    suite, _ = distributed
    runtime = suite.runtime("notification")
    n = Client(suite.app("notification"), "/notification/v1")
    group = str(uuid.uuid4())
    n.post("/notificationList", json={
        "name": "NOC", "offeringGroupIds": [group], "groupWait": 0,
        "topics": [{"eventTypes": ["*"]}],
        "members": [{"name": "hook", "channel": "webhook", "address": f"{receiver.url}/h"}]})
    receiver.stop()
    breach = crossing(f"cr-{uuid.uuid4().hex[:6]}", group)
    runtime.transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                  breach.to_bytes(), message_id=breach.event_id)
    eventually(lambda: any(d["attemptCount"] >= 2 for d in n.get("/delivery").get_json()),
               timeout=20)
    receiver.start()
    done = eventually(lambda: [d for d in n.get("/delivery").get_json()
                               if d["status"] == "delivered"], timeout=20)
    assert done[0]["attemptCount"] >= 2
    assert len(receiver.at("/h")) == 1


def test_deleting_a_hub_subscription_stops_its_retries_to_a_failing_listener(
        distributed: Any, receiver: Receiver) -> None:
    suite, _ = distributed
    runtime = suite.runtime("notification")
    n = Client(suite.app("notification"), "/notification/v1")
    group = str(uuid.uuid4())
    receiver.status = 503
    hubs = {name: n.post("/hub", json={"callback": f"{receiver.url}/{name}",
                                       "query": f"offeringGroupId={group}"}).get_json()
            for name in ("kept", "gone")}
    breach = crossing(f"cr-{uuid.uuid4().hex[:6]}", group)
    runtime.transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                  breach.to_bytes(), message_id=breach.event_id)

    def of(name: str) -> dict[str, Any]:
        return next((d for d in n.get("/delivery").get_json()
                     if d["hubId"] == hubs[name]["id"]), {"attemptCount": 0})

    eventually(lambda: of("gone")["attemptCount"] >= 2 and of("kept")["attemptCount"] >= 2,
               timeout=20)
    assert n.delete(hubs["gone"]["href"]).status_code == 204
    sent_before = len(receiver.at("/gone"))
    assert of("gone")["status"] == "cancelled"
    receiver.status = 204
    eventually(lambda: of("kept")["status"] == "delivered", timeout=20)
    gone = of("gone")
    assert gone["status"] == "cancelled" and gone["nextAttemptAt"] is None
    assert len(receiver.at("/gone")) <= sent_before + 1  # at most the attempt under way
    assert uuid.UUID(gone["id"]) not in {d.id for d in runtime.app.due_deliveries()}
