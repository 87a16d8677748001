"""Two suites on one broker stay apart: with different ``SLA_BUS_PREFIX`` values, neither
consumes, dead-letters into, or routes through anything of the other's (the suite's own
events, the integration exchanges, the dead-letter exchange and queues, the inboxes)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from shared import config
from shared.bus.amqp import AmqpTransport
from shared.bus.topology import (
    DEAD_LETTER,
    EXCHANGES,
    FULFILMENT_EVENTS,
    SLA_EVENTS,
    Binding,
    BrokerNames,
    QueueSpec,
)
from shared.bus.transport import Delivery, Settle
from tests.conftest import base_env
from tests.helpers import eventually
from tests.integration.bus_fixtures import drain, running
from tests.service.test_notification import crossing

pytestmark = pytest.mark.integration

INBOX = QueueSpec("notification.inbox", (Binding(SLA_EVENTS, "monitoring.crossing.*"),
                                         Binding(FULFILMENT_EVENTS, "product.#")))


class Collecting:
    """A consumer that keeps what it receives, and dead-letters what it is told to."""

    def __init__(self) -> None:
        self.received: list[Delivery] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: Delivery, settle: Settle) -> None:
        with self.lock:
            self.received.append(delivery)
        if delivery.body.startswith(b"poison"):
            settle.dead_letter("poison, on purpose")
        else:
            settle.ack()

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [d.body for d in self.received]


def _broker_queue_exists(amqp_url: str, name: str) -> bool:
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(amqp_url))) as conn:
        try:
            conn.channel().queue_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False


def _take(amqp_url: str, queue: str) -> list[bytes]:
    return [body for _, body in drain(amqp_url, queue)]


def test_two_suites_with_different_prefixes_never_see_each_others_messages(
        amqp_url: str, unique: str) -> None:
    suites = {name: AmqpTransport(amqp_url, prefix=f"{name}-{unique}.") for name in "ab"}
    seen = {name: Collecting() for name in suites}
    for transport in suites.values():
        transport.declare([INBOX])  # the same logical inbox in both suites

    def consumer(name: str) -> Any:
        return lambda stop: suites[name].consume(INBOX, seen[name], stop, idle_timeout=0.05)

    with running(consumer("a"), consumer("b")):
        for name, transport in suites.items():
            transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                  f"{name}: crossing".encode(), f"{name}-1")
            transport.publish_raw(FULFILMENT_EVENTS, "product.create",
                                  f"{name}: product".encode(), f"{name}-2")
            transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                  f"poison from {name}".encode(), f"{name}-3")
        for name in suites:
            eventually(lambda name=name: len(seen[name].bodies()) == 3)
        for transport in suites.values():
            transport.close()

    for name in suites:
        assert sorted(seen[name].bodies()) == sorted(
            [f"{name}: crossing".encode(), f"{name}: product".encode(),
             f"poison from {name}".encode()])
        # Handlers and tracking records see the logical names, prefix or not.
        assert {d.exchange for d in seen[name].received} == {SLA_EVENTS, FULFILMENT_EVENTS}
        names = BrokerNames(f"{name}-{unique}.")
        assert _take(amqp_url, names.queue(INBOX.dead_letter_queue)) == [
            f"poison from {name}".encode()]
        assert _broker_queue_exists(amqp_url, names.queue(INBOX.name))
    assert not _broker_queue_exists(amqp_url, INBOX.name)  # nothing unprefixed was made


def test_every_broker_name_of_a_suite_carries_its_prefix() -> None:
    names = BrokerNames("staging.")
    assert [names.exchange(e) for e in (*EXCHANGES, DEAD_LETTER)] == [
        "staging.sla.events", "staging.fulfilment.events", "staging.measurements",
        "staging.customer-sla.events", "staging.billing.events", "staging.sla.dead-letter"]
    assert names.queue(INBOX.dead_letter_queue) == "staging.notification.inbox.dead-letter"
    assert names.exchange("") == ""  # the default exchange (retries) has no name
    assert names.logical_exchange("staging.sla.events") == SLA_EVENTS


@pytest.fixture
def two_notification_suites(tmp_path: Path, amqp_url: str, unique: str) -> Iterator[dict]:
    from services.notification.service import SPEC
    from shared.wsgi import Suite

    suites = {}
    try:
        for name in ("north", "south"):
            settings = config.load(base_env(tmp_path / name, SLA_BUS_URL=amqp_url,
                                            SLA_BUS_PREFIX=f"{name}-{unique}."))
            suites[name] = Suite([SPEC], settings)
        yield suites
    finally:
        for suite in suites.values():
            suite.stop()


def test_a_suite_opens_incidents_for_its_own_crossings_only(
        two_notification_suites: dict) -> None:
    """The story behind the fix: two suites on one broker, and the one opened incidents
    for the other's crossings."""
    north, south = two_notification_suites["north"], two_notification_suites["south"]
    group = str(uuid.uuid4())
    for suite, crossing_id in ((north, "north-breach"), (south, "south-breach")):
        message = crossing(crossing_id, group)
        suite.runtime("notification").transport.publish_raw(
            SLA_EVENTS, "monitoring.crossing.raised", message.to_bytes(),
            message_id=message.event_id)

    def alerts(suite: Any) -> list[str]:
        return sorted(i.alert_id for i in suite.runtime("notification").app.incidents())

    # South's own crossing was published after north's: once south has it, anything of
    # north's routed to south's inbox would have been consumed before it.
    eventually(lambda: alerts(south), timeout=20)
    eventually(lambda: alerts(north), timeout=20)
    assert alerts(north) == ["north-breach"]
    assert alerts(south) == ["south-breach"]
