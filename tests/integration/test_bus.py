"""The bus against a real RabbitMQ: outbox relay, inbox, dead letters, a broker outage.

Every test has its own queues (``test-<unique>.*``, deleted afterwards), its own result ids
(``r-<unique>-…``) and its own producer name (``analysis-test-<unique>``, so message ids
``<source>:<n>`` never collide with the real analysis service's in other consumers of the
key): other producers on the same routing key are tolerated because only this test's
result ids are counted, and are rejected by the test handler so they are never tracked.
Consumers run the real :class:`Inbox` in a thread; effects are read back from the
consumer's store (one ``Receipt`` per processing).

Three tests at the end run the same inbox over :class:`InProcessTransport` (no broker).
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.bus.amqp import AmqpTransport, PublishNotConfirmed
from shared.bus.inbox import groupable, tracking_for
from shared.bus.outbox import OutboxRelay, run_relays
from shared.bus.topology import SLA_EVENTS, QueueSpec
from shared.bus.transport import (
    LAST_ERROR_HEADER,
    ORIGIN_EXCHANGE_HEADER,
    ORIGIN_KEY_HEADER,
    QUEUE_HEADER,
    REASON_HEADER,
    RETRY_HEADER,
    InProcessTransport,
    Transport,
)
from shared.store import ensure_schema
from tests.conftest import amqp_user, rabbitmqctl, require_command, when_the_broker_runs
from tests.integration.bus_fixtures import (
    BINDINGS,
    EVENT_TYPE,
    ROUTING_KEY,
    ConsumerApp,
    CrashingTransport,
    ObservedInbox,
    ProducerApp,
    RawBroker,
    ReceiptHandler,
    SimulatedCrash,
    consumed,
    delivery_from,
    describe,
    drop_schema,
    envelope,
    postgres_env,
    result_id_of,
    running,
    sqlite_env,
    wait_until,
)

MAX_DELIVERIES = 3
PREFETCH = 10


# --- fixtures ---------------------------------------------------------------------------
@pytest.fixture
def broker(amqp_url: str) -> RawBroker:
    return RawBroker(amqp_url)


@pytest.fixture
def queue(amqp_url: str, broker: RawBroker, unique: str) -> Iterator[QueueSpec]:
    """This test's inbox queue (and its dead-letter queue), bound before anything is sent."""
    spec = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport = AmqpTransport(amqp_url)
    transport.declare([spec])
    yield spec
    with contextlib.suppress(Exception):
        broker.delete(spec.name, spec.dead_letter_queue)


@pytest.fixture
def tap(broker: RawBroker, unique: str) -> Iterator[str]:
    """A plain queue on the routing key: what was really published, and how often."""
    name = f"test-{unique}.tap"
    broker.declare_tap(name)
    yield name
    with contextlib.suppress(Exception):
        broker.delete(name)


@pytest.fixture
def prefix(unique: str) -> str:
    return f"r-{unique}-"


@pytest.fixture
def source(unique: str) -> str:
    """The producing service's name (relay ``service``, envelope ``source``, message ids
    ``<source>:<n>``), unique per test: the suite's real consumers bound to this routing key
    (a threshold-registry inbox left on the broker) must never track a test message under
    the real ``analysis`` service's notification ids."""
    return f"analysis-test-{unique}"


@pytest.fixture
def producer(tmp_path: Path) -> Iterator[ProducerApp]:
    app = ProducerApp(sqlite_env(tmp_path / "analysis.sqlite"))
    yield app
    app.close()


StoreFactory = Callable[..., ConsumerApp]


@pytest.fixture
def pg_consumer(postgres: dict[str, str], unique: str) -> Iterator[StoreFactory]:
    """Consumer stores on PostgreSQL, each in a fresh schema dropped afterwards."""
    made: list[tuple[ConsumerApp, str]] = []

    def make(single_row_tracking: str = "n") -> ConsumerApp:
        schema = f"test_bus_{unique}_{len(made)}"
        env = postgres_env(postgres, schema, single_row_tracking)
        ensure_schema(env)
        app = ConsumerApp(env)
        made.append((app, schema))
        return app

    yield make
    for app, schema in made:
        app.close()
        drop_schema(postgres, schema)


@pytest.fixture
def sqlite_consumer(tmp_path: Path) -> StoreFactory:
    def make() -> ConsumerApp:
        return ConsumerApp(sqlite_env(tmp_path / f"consumer-{uuid.uuid4().hex[:6]}.sqlite"))

    return make


def make_inbox(app: ConsumerApp, transport: Transport, queue: QueueSpec, prefix: str,
               unique: str) -> tuple[ObservedInbox, ReceiptHandler]:
    handler = ReceiptHandler(app, prefix)
    inbox = ObservedInbox(app, f"test-consumer-{unique}", transport, queue,
                          handlers={EVENT_TYPE: handler}, max_deliveries=MAX_DELIVERIES,
                          prefetch=PREFETCH)
    return inbox, handler


def relay_all(relay: OutboxRelay) -> None:
    while relay.run_once():
        pass


def ours(taken: list, prefix: str) -> list[tuple[str, str]]:
    """(result id, message id) of this test's messages among raw ones."""
    found = []
    for _method, props, body in taken:
        result_id = result_id_of(body)
        if result_id and result_id.startswith(prefix):
            found.append((result_id, props.message_id))
    return found


def dead_letters(broker: RawBroker, queue: QueueSpec, message_ids: set[str],
                 timeout: float = 20) -> dict[str, tuple]:
    """The dead letters of the given message ids, taken from the DLQ by basic_get."""
    taken = broker.collect(
        queue.dead_letter_queue,
        lambda got: message_ids <= {p.message_id for _m, p, _b in got},
        timeout, f"{sorted(message_ids)} in {queue.dead_letter_queue}")
    return {p.message_id: (m, p, b) for m, p, b in taken if p.message_id in message_ids}


# --- 1. outbox ----------------------------------------------------------------------------
@pytest.mark.integration
def test_relay_crash_before_publish_publishes_everything_once_on_restart(
        amqp_url: str, producer: ProducerApp, tap: str, broker: RawBroker, prefix: str,
        source: str):
    n = 12
    for i in range(n):
        producer.produce(f"{prefix}{i}")
    last = producer.max_notification_id()

    crashing = CrashingTransport(AmqpTransport(amqp_url), after_publishing=False)
    with pytest.raises(SimulatedCrash):
        OutboxRelay(producer, source, crashing, describe).run_once()
    assert producer.published_position() == 0  # the store committed, nothing went out
    assert ours(broker.take_all(tap), prefix) == []

    transport = AmqpTransport(amqp_url)
    try:
        relay_all(OutboxRelay(producer, source, transport, describe, batch=5))
    finally:
        transport.close()

    assert producer.published_position() == last
    # Publisher confirms: everything is in the tap queue once run_once has returned.
    taken = broker.take_all(tap)
    got = ours(taken, prefix)
    assert sorted(r for r, _ in got) == sorted(f"{prefix}{i}" for i in range(n))
    message_ids = [m for _, m in got]
    assert len(set(message_ids)) == n == len(message_ids)
    assert set(message_ids) == {f"{source}:{k}" for k in range(last - n + 1, last + 1)}
    for _method, props, body in taken:
        if (result_id_of(body) or "").startswith(prefix):
            assert props.delivery_mode == 2 and props.type == EVENT_TYPE
            assert json.loads(body)["eventId"] == props.message_id


@pytest.mark.integration
def test_relay_crash_after_publish_resends_and_inbox_keeps_one_effect(
        amqp_url: str, producer: ProducerApp, tap: str, broker: RawBroker, queue: QueueSpec,
        pg_consumer: StoreFactory, prefix: str, unique: str, source: str):
    n = 10
    for i in range(n):
        producer.produce(f"{prefix}{i}")
    consumer = pg_consumer()
    inbox, _ = make_inbox(consumer, AmqpTransport(amqp_url), queue, prefix, unique)
    publisher = AmqpTransport(amqp_url)

    with running(inbox.run):
        crashing = CrashingTransport(publisher, after_publishing=True)
        with pytest.raises(SimulatedCrash):
            OutboxRelay(producer, source, crashing, describe).run_once()
        assert producer.published_position() == 0  # published, but not recorded
        relay_all(OutboxRelay(producer, source, publisher, describe))  # the restart
        assert producer.published_position() == producer.max_notification_id()

        wanted = {f"{prefix}{i}" for i in range(n)}
        wait_until(lambda: all(len(inbox.of(r, "ack")) == 2 for r in wanted), 30,
                   "both copies of every message to be settled")
    publisher.close()

    got = ours(broker.take_all(tap), prefix)
    assert len(got) == 2 * n  # the restart really re-sent every message
    effects = consumer.effects()
    assert {r: effects[r] for r in wanted} == dict.fromkeys(wanted, 1)
    assert sum(effects.values()) == n
    assert consumed(inbox.service, "duplicate") == n


@pytest.mark.integration
def test_a_page_in_flight_when_the_connection_drops_is_not_recorded_and_is_sent_again(
        amqp_url: str, producer: ProducerApp, tap: str, broker: RawBroker, prefix: str,
        source: str):
    """A full page is left in flight (the next one is described meanwhile): its position
    is recorded only once the broker has confirmed it, so a connection lost before that
    leaves the position where it was and the page goes out again."""
    n = 12
    for i in range(n):
        producer.produce(f"{prefix}{i}")
    last = producer.max_notification_id()
    first_page = {f"{source}:{k}" for k in range(last - n + 1, last - n + 6)}
    transport = AmqpTransport(amqp_url)
    relay = OutboxRelay(producer, source, transport, describe, batch=5)
    try:
        assert relay.run_once() == 5  # the first page handed over, not yet confirmed
        assert producer.published_position() == 0
        transport.close()  # the connection is gone before tx.commit-ok was read
        try:
            relay.run_once()  # describes the next page, then hears of the first
        except PublishNotConfirmed:
            assert producer.published_position() == 0
        else:  # the commit-ok had come in with the first page's last write: recorded
            assert producer.published_position() == last - n + 5
        relay_all(relay)
    finally:
        transport.close()

    assert producer.published_position() == last
    got = ours(broker.take_all(tap), prefix)
    counts: dict[str, int] = {}
    for _, message_id in got:
        counts[message_id] = counts.get(message_id, 0) + 1
    assert set(counts) == {f"{source}:{k}" for k in range(last - n + 1, last + 1)}
    # Only the page that was in flight can have gone out twice.
    assert all(c == 1 for m, c in counts.items() if m not in first_page)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_batch_the_broker_refuses_raises_instead_of_waiting_for_its_commit(
        amqp_url: str, unique: str):
    """Regression: a batch waited for its ``tx.commit-ok`` on the connection, so a channel
    the broker closed (here: an exchange that does not exist) left the relay waiting for
    ever; the wait is on the channel, which raises as ``tx_commit`` itself did."""
    import pika.exceptions

    from shared.bus.envelope import Envelope, OutgoingMessage

    transport = AmqpTransport(amqp_url, prefix=f"test-{unique}.")
    envelope = Envelope(event_id=f"x:{unique}", event_time="2026-12-01T00:00:00Z",
                        event_type=EVENT_TYPE, event={})
    message = OutgoingMessage("no-such-exchange", ROUTING_KEY, envelope, envelope.event_id)
    try:
        with pytest.raises((pika.exceptions.ChannelClosed,
                            pika.exceptions.ChannelWrongStateError, PublishNotConfirmed)):
            transport.publish([message])
        transport.publish([])  # the transport carries on with a new channel
    finally:
        transport.close()


# --- 2. inbox dedup -----------------------------------------------------------------------
@pytest.mark.integration
def test_inbox_redelivery_and_duplicate_publish_take_effect_once(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    consumer = pg_consumer()
    transport = AmqpTransport(amqp_url)
    inbox, _ = make_inbox(consumer, transport, queue, prefix, unique)

    # (a) processed, then the connection drops before the ack: the broker redelivers.
    dropped = envelope(f"{prefix}dropped", 1, source)
    transport.publish_raw(SLA_EVENTS, ROUTING_KEY, dropped.to_bytes(), dropped.event_id)
    connection = broker.connect()
    try:
        channel = connection.channel()

        def get_ours():
            method, props, body = channel.basic_get(queue.name, auto_ack=False)
            if method is not None and result_id_of(body) != f"{prefix}dropped":
                channel.basic_nack(method.delivery_tag, requeue=True)  # someone else's
                return None
            return (method, props, body) if method is not None else None

        method, props, body = wait_until(get_ours, 10, "the message to reach the queue")
        inbox.receive(delivery_from(method, props, body), None)  # effect saved, no ack
        assert consumer.effects()[f"{prefix}dropped"] == 1
    finally:
        connection.close()  # the unacked message goes back to the queue

    # (b) the same envelope bytes published twice with the same message id.
    twice = envelope(f"{prefix}twice", 2, source)
    for _ in range(2):
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, twice.to_bytes(), twice.event_id)

    with running(inbox.run):
        wait_until(lambda: inbox.of(f"{prefix}dropped", "ack")
                   and len(inbox.of(f"{prefix}twice", "ack")) == 2, 20,
                   "the redelivery and both copies to be acknowledged")
    transport.close()

    redelivery = inbox.of(f"{prefix}dropped", "ack")
    assert len(redelivery) == 1 and redelivery[0].redelivered
    effects = consumer.effects()
    assert effects[f"{prefix}dropped"] == 1
    assert effects[f"{prefix}twice"] == 1
    assert consumed(inbox.service, "duplicate") == 2
    assert consumed(inbox.service, "processed") == 2
    assert broker.take_all(queue.dead_letter_queue) == []


# --- 3. loss hazard -----------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("tracking", ["per-id", "single-row"])
def test_message_retried_behind_later_ones_is_still_processed(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str, tracking: str):
    """The loss hazard of single-row tracking: A fails once, is requeued behind B, C, D
    (already tracked), and must still take effect. The single-row variant shows the hazard
    the per-id setting avoids."""
    consumer = pg_consumer("n" if tracking == "per-id" else "y")
    transport = AmqpTransport(amqp_url)
    inbox, handler = make_inbox(consumer, transport, queue, prefix, unique)
    a, b, c, d = (f"{prefix}{x}" for x in "abcd")
    handler.fail_once.add(a)
    for number, result_id in enumerate((a, b, c, d), start=1):
        message = envelope(result_id, number, source)
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, message.to_bytes(), message.event_id)

    with running(inbox.run):
        wait_until(lambda: all(consumer.effects()[r] for r in (b, c, d)), 20, "B, C and D")
        if tracking == "per-id":
            wait_until(lambda: consumer.effects()[a], 20, "A after its retry")
        else:
            wait_until(lambda: inbox.of(a, "dead-letter"), 30, "A to be dead-lettered")
    transport.close()

    effects = consumer.effects()
    assert [effects[r] for r in (b, c, d)] == [1, 1, 1]
    first = inbox.of(a)[0]
    assert first.action == "retry" and first.attempt == 0
    settled = [s.result_id for s in inbox.settled if s.action != "retry"]
    assert settled.index(d) < settled.index(a)  # A really came back behind D
    if tracking == "per-id":
        assert effects[a] == 1
        assert broker.take_all(queue.dead_letter_queue) == []
    else:
        # One tracking row per upstream: id 1 is "not greater than" 4 and can never be saved.
        assert effects[a] == 0
        assert "IntegrityError" in (inbox.of(a, "dead-letter")[0].reason or "")


# --- 4. the broker goes away --------------------------------------------------------------
@contextlib.contextmanager
def broker_outage(vhost: str) -> Iterator[None]:
    """The broker is gone for this session (and only for it: the session's vhost): every
    connection is dropped and new ones are refused, until the outage ends. Durable queues
    and persistent messages survive, as they do a broker restart."""
    require_command("rabbitmqctl", "to take the broker away")
    when_the_broker_runs(lambda: rabbitmqctl("clear_permissions", "-p", vhost, amqp_user()))
    try:
        when_the_broker_runs(lambda: rabbitmqctl(
            "close_all_connections", "--vhost", vhost, "--limit", "1000",
            "simulated broker outage"))
        yield
    finally:
        when_the_broker_runs(lambda: rabbitmqctl(
            "set_permissions", "-p", vhost, amqp_user(), ".*", ".*", ".*"))


@pytest.mark.integration
def test_a_broker_outage_while_publishing_loses_nothing_and_doubles_nothing(
        amqp_url: str, amqp_vhost: str, broker: RawBroker, queue: QueueSpec,
        producer: ProducerApp,
        pg_consumer: StoreFactory, prefix: str, unique: str, source: str):
    consumer = pg_consumer()
    inbox, _ = make_inbox(consumer, AmqpTransport(amqp_url), queue, prefix, unique)
    relay_transport = AmqpTransport(amqp_url)
    relay = OutboxRelay(producer, source, relay_transport, describe, batch=20,
                        poll_interval=0.05)
    saved: list[str] = []

    def produce(stop) -> None:
        while not stop.is_set():
            result_id = f"{prefix}{len(saved)}"
            producer.produce(result_id)
            saved.append(result_id)
            stop.wait(0.02)

    def relay_run(stop: threading.Event) -> None:
        try:
            relay.run(stop)
        finally:
            relay_transport.close()  # the publisher connection belongs to this thread

    with running(inbox.run, relay_run):
        with running(produce):
            wait_until(lambda: len(consumer.effects()) >= 10, 20, "the first effects")
            before_stop = len(saved)
            with broker_outage(amqp_vhost):
                wait_until(lambda: len(saved) >= before_stop + 20, 10,
                           "saves while the broker is down")
                stop_app_done = len(saved)
                threading.Event().wait(3)  # the outage lasts ~3 s (not an assertion)
            broker.wait_ready(60)
            recovered_at = len(saved)
            wait_until(lambda: len(saved) >= recovered_at + 20, 10, "saves after recovery")
        total = len(saved)
        assert stop_app_done > before_stop  # some events were saved while it was down

        def all_arrived() -> bool:
            effects = consumer.effects()
            return all(effects[r] for r in saved)

        wait_until(all_arrived, 60, f"all {total} effects after the restart")
        wait_until(lambda: producer.published_position() == producer.max_notification_id(),
                   20, "the relay to record its position")

    effects = consumer.effects()
    assert sorted(effects) == sorted(saved)
    assert [r for r, count in effects.items() if count != 1] == []
    assert sum(effects.values()) == total
    assert relay.last_error is None


# --- 5. malformed messages ----------------------------------------------------------------
@pytest.mark.integration
def test_malformed_messages_are_dead_lettered_and_consumer_carries_on(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, sqlite_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    consumer = sqlite_consumer()
    transport = AmqpTransport(amqp_url)
    inbox, _ = make_inbox(consumer, transport, queue, prefix, unique)
    garbage_id, broken_id = f"garbage-{unique}", f"broken-{unique}"
    broken = envelope(f"{prefix}broken", 1, source, severity="catastrophic")
    valid = envelope(f"{prefix}valid", 2, source)

    with running(inbox.run):
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, b"\x00not json{", garbage_id)
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, broken.to_bytes(), broken_id)
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, valid.to_bytes(), valid.event_id)
        wait_until(lambda: consumer.effects()[f"{prefix}valid"], 20, "the valid message")
        letters = dead_letters(broker, queue, {garbage_id, broken_id})
    transport.close()

    headers = {mid: p.headers for mid, (_m, p, _b) in letters.items()}
    assert "not JSON" in headers[garbage_id][REASON_HEADER]
    reason = headers[broken_id][REASON_HEADER]
    assert "AnalysisResultEvent breaks its contract" in reason and "severity" in reason
    for h in headers.values():
        assert h[ORIGIN_EXCHANGE_HEADER] == SLA_EVENTS
        assert h[ORIGIN_KEY_HEADER] == ROUTING_KEY
        assert h[QUEUE_HEADER] == queue.name
    assert letters[garbage_id][2] == b"\x00not json{"  # the body travels unchanged
    assert consumer.effects()[f"{prefix}broken"] == 0


# --- 6. a handler that always fails -------------------------------------------------------
@pytest.mark.integration
def test_handler_failing_every_time_is_dead_lettered_after_max_deliveries(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    consumer = pg_consumer()
    transport = AmqpTransport(amqp_url)
    inbox, handler = make_inbox(consumer, transport, queue, prefix, unique)
    poison, after = envelope(f"{prefix}poison", 1, source), envelope(f"{prefix}after", 2, source)
    handler.always_fail.add(f"{prefix}poison")

    with running(inbox.run):
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, poison.to_bytes(), poison.event_id)
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, after.to_bytes(), after.event_id)
        wait_until(lambda: consumer.effects()[f"{prefix}after"], 20, "the next message")
        letters = dead_letters(broker, queue, {poison.event_id})
    transport.close()

    _method, props, body = letters[poison.event_id]
    assert result_id_of(body) == f"{prefix}poison"
    reason = props.headers[REASON_HEADER]
    assert f"failed {MAX_DELIVERIES} times" in reason
    assert "RuntimeError: simulated permanent failure" in reason
    assert props.headers[RETRY_HEADER] == MAX_DELIVERIES - 1  # attempts before the last
    assert "simulated permanent failure" in props.headers[LAST_ERROR_HEADER]
    assert props.headers[ORIGIN_EXCHANGE_HEADER] == SLA_EVENTS
    assert handler.attempts[f"{prefix}poison"] == MAX_DELIVERIES
    assert consumer.effects()[f"{prefix}poison"] == 0


# --- the same inbox, in process -----------------------------------------------------------
def test_in_process_duplicates_take_effect_once(sqlite_consumer: StoreFactory, unique: str,
                                               prefix: str, source: str):
    transport = InProcessTransport()
    queue = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport.declare([queue])
    consumer = sqlite_consumer()
    inbox, _ = make_inbox(consumer, transport, queue, prefix, unique)
    message = envelope(f"{prefix}twice", 1, source)

    with running(inbox.run):
        for _ in range(2):
            transport.publish_raw(SLA_EVENTS, ROUTING_KEY, message.to_bytes(), message.event_id)
        wait_until(lambda: len(inbox.of(f"{prefix}twice", "ack")) == 2, 10, "both copies")

    assert consumer.effects()[f"{prefix}twice"] == 1
    assert consumed(inbox.service, "duplicate") == 1


def test_in_process_relay_and_malformed_messages(tmp_path: Path, sqlite_consumer: StoreFactory,
                                                 unique: str, prefix: str, source: str):
    transport = InProcessTransport()
    queue = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport.declare([queue])
    consumer = sqlite_consumer()
    inbox, _ = make_inbox(consumer, transport, queue, prefix, unique)
    producer = ProducerApp(sqlite_env(tmp_path / "producer.sqlite"))
    broken = envelope(f"{prefix}broken", 1, source, severity="catastrophic")
    try:
        for i in range(3):
            producer.produce(f"{prefix}{i}")
        with running(inbox.run):
            transport.publish_raw(SLA_EVENTS, ROUTING_KEY, b"not json", f"garbage-{unique}")
            transport.publish_raw(SLA_EVENTS, ROUTING_KEY, broken.to_bytes(), "broken")
            relay_all(OutboxRelay(producer, source, transport, describe))
            relay_all(OutboxRelay(producer, source, transport, describe))  # nothing left
            wait_until(lambda: len(consumer.effects()) == 3, 10, "the relayed messages")
            wait_until(lambda: len(transport.dead_letters(queue)) == 2, 10, "two dead letters")
    finally:
        producer.close()

    assert consumer.effects() == dict.fromkeys((f"{prefix}{i}" for i in range(3)), 1)
    reasons = {m.message_id: m.headers[REASON_HEADER] for m in transport.dead_letters(queue)}
    assert "not JSON" in reasons[f"garbage-{unique}"]
    assert "breaks its contract" in reasons["broken"]


def test_in_process_foreign_attempt_header_does_not_stop_the_consumer(
        sqlite_consumer: StoreFactory, unique: str, prefix: str, source: str):
    """Regression: a failing message whose ``x-sla-attempt`` header is not a number (another
    system's header) used to raise ValueError out of Inbox.receive and kill the consumer."""
    transport = InProcessTransport()
    queue = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport.declare([queue])
    consumer = sqlite_consumer()
    inbox, handler = make_inbox(consumer, transport, queue, prefix, unique)
    odd, after = envelope(f"{prefix}odd", 1, source), envelope(f"{prefix}after", 2, source)
    handler.fail_once.add(f"{prefix}odd")

    with running(inbox.run):
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, odd.to_bytes(), odd.event_id,
                              {RETRY_HEADER: "not-a-number"})
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, after.to_bytes(), after.event_id)
        wait_until(lambda: consumer.effects()[f"{prefix}odd"]
                   and consumer.effects()[f"{prefix}after"], 10, "both messages")

    assert inbox.of(f"{prefix}odd")[0].action == "retry"
    assert consumer.effects()[f"{prefix}odd"] == 1


def test_in_process_two_logs_of_one_service_are_each_published_once(
        tmp_path: Path, sqlite_consumer: StoreFactory, unique: str, prefix: str, source: str):
    """A service that publishes from two logs (monitoring: outcomes and regimes) numbers
    each log's notifications from 1: the further log's messages carry ids of their own and
    its relay a position of its own, so the consumer takes every message of both once and
    a relay that fails does not hold up the other."""
    transport = InProcessTransport()
    queue = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport.declare([queue])
    consumer = sqlite_consumer()
    inbox, _ = make_inbox(consumer, transport, queue, prefix, unique)
    first = ProducerApp(sqlite_env(tmp_path / "first.sqlite"))
    further = ProducerApp(sqlite_env(tmp_path / "further.sqlite"))
    failing = ProducerApp(sqlite_env(tmp_path / "failing.sqlite"))

    def broken(event: object) -> None:
        raise RuntimeError("this log's mapping is broken")

    relays = [OutboxRelay(first, source, transport, describe, poll_interval=0.01),
              OutboxRelay(further, source, transport, describe, poll_interval=0.01,
                          log="further"),
              OutboxRelay(failing, source, transport, broken, log="failing")]
    try:
        for i in range(3):
            first.produce(f"{prefix}first-{i}")
            further.produce(f"{prefix}further-{i}")
            failing.produce(f"{prefix}failing-{i}")
        with running(inbox.run, lambda stop: run_relays(relays, stop)):
            wait_until(lambda: len(consumer.effects()) == 6, 10, "both logs' messages")
            wait_until(lambda: relays[2].last_error, 10, "the broken log's error")
        assert first.published_position() == further.published_position(
            relays[1].outbox) == 3
        assert further.published_position() == 0  # the first log's name is not used
        assert failing.published_position(relays[2].outbox) == 0
        assert relays[0].last_error is None and relays[1].last_error is None
    finally:
        for app in (first, further, failing):
            app.close()

    assert consumer.effects() == dict.fromkeys(
        [f"{prefix}{log}-{i}" for log in ("first", "further") for i in range(3)], 1)
    assert consumed(inbox.service, "duplicate") == 0


# --- 7. groups: many messages, one transaction ----------------------------------------------
def grouped_inbox(app: ConsumerApp, transport: Transport, queue: QueueSpec, prefix: str,
                  unique: str) -> tuple[ObservedInbox, ReceiptHandler]:
    """The inbox with a groupable handler: what has arrived is handled in groups (one
    store transaction with every message's tracking record), as the replica kit's are."""
    handler = ReceiptHandler(app, prefix)
    inbox = ObservedInbox(app, f"test-consumer-{unique}", transport, queue,
                          handlers={EVENT_TYPE: groupable(handler)},
                          max_deliveries=MAX_DELIVERIES, prefetch=PREFETCH)
    return inbox, handler


def publish_all(transport: AmqpTransport, messages: list) -> None:
    for message in messages:
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, message.to_bytes(), message.event_id)


@pytest.mark.integration
def test_a_group_takes_effect_once_for_duplicates_inside_it_and_before_it(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    consumer = pg_consumer()
    transport = AmqpTransport(amqp_url)
    inbox, _ = grouped_inbox(consumer, transport, queue, prefix, unique)
    earlier = envelope(f"{prefix}earlier", 1, source)
    publish_all(transport, [earlier])
    with running(inbox.run):
        wait_until(lambda: inbox.of(f"{prefix}earlier", "ack"), 20, "the earlier message")

    # Queued before the inbox runs again, so they arrive together: each of a, b twice
    # in the group, and the earlier message again.
    a, b, c = (envelope(f"{prefix}{x}", n, source) for n, x in enumerate("abc", start=2))
    publish_all(transport, [a, b, a, earlier, c, b])
    before = {o: consumed(inbox.service, o) for o in ("duplicate", "processed", "regrouped")}
    with running(inbox.run):
        wait_until(lambda: len([s for s in inbox.settled if s.action == "ack"]) == 7, 20,
                   "every copy to be acknowledged")
    transport.close()

    assert max(inbox.batches) > 1  # they really came as a group
    effects = consumer.effects()
    assert {r: effects[r] for r in (f"{prefix}{x}" for x in ("earlier", "a", "b", "c"))} == \
        dict.fromkeys((f"{prefix}{x}" for x in ("earlier", "a", "b", "c")), 1)
    assert consumed(inbox.service, "duplicate") - before["duplicate"] == 3
    assert consumed(inbox.service, "processed") - before["processed"] == 3
    assert consumed(inbox.service, "regrouped") == before["regrouped"]  # no fallback
    assert all(consumer.is_tracked(tracking_for(delivery_of(m), m)) for m in (a, b, c))
    assert broker.take_all(queue.dead_letter_queue) == []


@pytest.mark.integration
def test_a_poison_message_in_a_group_is_dead_lettered_alone_and_the_others_take_effect(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    consumer = pg_consumer()
    transport = AmqpTransport(amqp_url)
    inbox, handler = grouped_inbox(consumer, transport, queue, prefix, unique)
    messages = [envelope(f"{prefix}{n}", n, source) for n in range(1, 7)]
    poison = messages[2]
    handler.always_fail.add(f"{prefix}3")
    handler.fail_once.add(f"{prefix}5")  # a transient failure in the same group
    publish_all(transport, messages)

    with running(inbox.run):
        good = [f"{prefix}{n}" for n in (1, 2, 4, 5, 6)]
        wait_until(lambda: all(consumer.effects()[r] for r in good), 30, "the good messages")
        letters = dead_letters(broker, queue, {poison.event_id}, timeout=30)
    transport.close()

    assert max(inbox.batches) > 1
    effects = consumer.effects()
    assert [effects[r] for r in good] == [1] * 5
    assert effects[f"{prefix}3"] == 0
    reason = letters[poison.event_id][1].headers[REASON_HEADER]
    assert f"failed {MAX_DELIVERIES} times" in reason and "simulated permanent" in reason
    assert handler.attempts[f"{prefix}3"] >= MAX_DELIVERIES  # in groups, then alone
    assert consumed(inbox.service, "regrouped") >= len(messages)


@pytest.mark.integration
def test_a_connection_closed_between_a_groups_commit_and_its_ack_redelivers_duplicates(
        amqp_url: str, broker: RawBroker, queue: QueueSpec, pg_consumer: StoreFactory,
        prefix: str, unique: str, source: str):
    """The broker drops the inbox's own connection (``rabbitmqctl close_connection``)
    while a group is being handled: the group commits, its acknowledgement never
    arrives, the broker delivers the messages again, and they are acknowledged as
    duplicates — each message took effect once."""
    require_command("rabbitmqctl", "to close the inbox's connection")
    consumer = pg_consumer()
    name = f"test-inbox-{unique}"
    transport = AmqpTransport(amqp_url, name=name)
    inbox, handler = grouped_inbox(consumer, transport, queue, prefix, unique)
    messages = [envelope(f"{prefix}{n}", n, source) for n in range(1, 9)]
    closed: list[str] = []

    def close_own_connection(envelope_: Any) -> None:
        if not closed and str(envelope_.event["analysisResult"]["id"]) == f"{prefix}2":
            listing = rabbitmqctl("list_connections", "pid", "client_properties",
                                  "--no-table-headers", "-q")
            pids = [line.split("\t", 1)[0] for line in listing.splitlines() if name in line]
            assert pids, f"no connection named {name}"
            for pid in pids:
                rabbitmqctl("close_connection", pid, "closed by the test mid-group")
            closed.extend(pids)
        handler(envelope_)

    inbox.handlers = {EVENT_TYPE: groupable(close_own_connection)}
    publish = AmqpTransport(amqp_url)
    publish_all(publish, messages)
    before = consumed(inbox.service, "duplicate")
    with running(inbox.run):
        wanted = {f"{prefix}{n}" for n in range(1, 9)}
        wait_until(lambda: all(consumer.effects()[r] for r in wanted), 30, "every effect")
        wait_until(lambda: consumed(inbox.service, "duplicate") > before, 30,
                   "the redelivered group to be acknowledged as duplicates")
        wait_until(lambda: broker_queue_empty(broker, queue), 30, "the queue to empty")
    transport.close()
    publish.close()

    assert closed
    assert max(inbox.batches) > 1
    effects = consumer.effects()
    assert {r: effects[r] for r in wanted} == dict.fromkeys(wanted, 1)
    redelivered = [s for s in inbox.settled if s.action == "ack" and s.redelivered]
    assert redelivered  # the group came back from the broker, and was acknowledged
    assert broker.take_all(queue.dead_letter_queue) == []


def broker_queue_empty(broker: RawBroker, queue: QueueSpec) -> bool:
    with contextlib.closing(broker.connect()) as conn:
        declared = conn.channel().queue_declare(queue.name, passive=True)
        return declared.method.message_count == 0 and declared.method.consumer_count >= 1


def delivery_of(message: Any) -> Any:
    from shared.bus.transport import Delivery

    return Delivery(message.to_bytes(), SLA_EVENTS, ROUTING_KEY, message.event_id)


def test_in_process_groups_take_effect_once(sqlite_consumer: StoreFactory, unique: str,
                                            prefix: str, source: str):
    """The same groups on SQLite, over the in-process bus (the embedded suite)."""
    transport = InProcessTransport()
    queue = QueueSpec(name=f"test-{unique}.inbox", bindings=BINDINGS)
    transport.declare([queue])
    consumer = sqlite_consumer()
    inbox, handler = grouped_inbox(consumer, transport, queue, prefix, unique)
    messages = [envelope(f"{prefix}{n}", n, source) for n in range(1, 6)]
    handler.fail_once.add(f"{prefix}4")
    for message in [*messages, messages[0]]:
        transport.publish_raw(SLA_EVENTS, ROUTING_KEY, message.to_bytes(), message.event_id)

    with running(inbox.run):
        wait_until(lambda: len(inbox.of(f"{prefix}1", "ack")) == 2
                   and all(consumer.effects()[f"{prefix}{n}"] for n in range(1, 6)), 10,
                   "every message")

    assert max(inbox.batches) > 1
    assert consumer.effects() == dict.fromkeys((f"{prefix}{n}" for n in range(1, 6)), 1)
