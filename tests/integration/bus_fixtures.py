"""Helpers for tests/integration/test_bus.py: a tiny producer and consumer service, a
raw-pika view of the broker, transports that crash on purpose, and polling.

The producer ("analysis") stores ``AnalysisResult`` aggregates and its outbox relay
publishes each as an ``AnalysisResultEvent``. The consumer stores one ``Receipt`` per
*processing* of a result (a fresh aggregate id each time), so a message that took effect
twice shows up as two receipts: the effect count is read back from the consumer's store.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from prometheus_client import REGISTRY

from shared.bus.envelope import Envelope, OutgoingMessage
from shared.bus.inbox import Inbox, Rejected
from shared.bus.outbox import Publication
from shared.bus.topology import SLA_EVENTS, Binding, QueueSpec
from shared.bus.transport import Delivery, Settle, Transport
from shared.store import ServiceApplication
from shared.times import iso

EVENT_TYPE = "AnalysisResultEvent"
ROUTING_KEY = "analysis.analysis-result.produced"
BINDINGS = (Binding(SLA_EVENTS, ROUTING_KEY),)


# --- messages ---------------------------------------------------------------------------
def analysis_result(result_id: str, offering_id: str | None = None,
                    severity: str = "minor") -> dict[str, Any]:
    """The ``event`` of an AnalysisResultEvent (contracts/schemas/common.json#analysisResult)."""
    return {"analysisResult": {
        "id": result_id,
        "kind": "trend",
        "target": {"type": "productOffering",
                   "id": offering_id or str(uuid.uuid5(uuid.NAMESPACE_URL, result_id))},
        "summary": f"test result {result_id}",
        "severity": severity,
        "parameter": None,
        "analysedAt": "2026-11-25T10:00:00Z",
        "details": {},
    }}


def envelope(result_id: str, number: int, source: str, **event_kw: Any) -> Envelope:
    """The envelope the relay of ``source`` would publish for its notification ``number``."""
    return Envelope(event_id=f"{source}:{number}", event_time=iso(), event_type=EVENT_TYPE,
                    event=analysis_result(result_id, **event_kw), source=source)


def result_id_of(body: bytes) -> str | None:
    """The analysis result id a message body carries, or None (garbage, other shapes)."""
    try:
        return str(Envelope.from_bytes(body).event["analysisResult"]["id"])
    except Exception:  # noqa: BLE001 - anything unreadable is simply "not ours"
        return None


# --- the producing service ----------------------------------------------------------------
class AnalysisResult(Aggregate):
    @staticmethod
    def create_id(result_id: str, offering_id: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:test-bus:analysis-result:{result_id}")

    @event("Produced")
    def __init__(self, result_id: str, offering_id: str) -> None:
        self.result_id = result_id
        self.offering_id = offering_id


class ProducerApp(ServiceApplication):
    def produce(self, result_id: str) -> None:
        offering_id = str(uuid.uuid5(uuid.NAMESPACE_URL, result_id))
        self.save(AnalysisResult(result_id=result_id, offering_id=offering_id))


def describe(domain_event: DomainEventProtocol) -> Publication | None:
    """The producer's outbox mapping: each produced result is one AnalysisResultEvent."""
    if isinstance(domain_event, AnalysisResult.Produced):
        state = vars(domain_event)
        return Publication(routing_key=ROUTING_KEY, event_type=EVENT_TYPE,
                           event=analysis_result(state["result_id"], state["offering_id"]))
    return None


# --- the consuming service ----------------------------------------------------------------
class Receipt(Aggregate):
    """One processing of one analysis result (a new id each time: duplicates would show)."""

    @event("Recorded")
    def __init__(self, result_id: str, message_id: str) -> None:
        self.result_id = result_id
        self.message_id = message_id


class ConsumerApp(ServiceApplication):
    def record(self, result_id: str, message_id: str) -> None:
        self.save(Receipt(result_id=result_id, message_id=message_id))

    def effects(self) -> Counter[str]:
        """How many times each result id took effect, read back from the store."""
        counts: Counter[str] = Counter()
        for notification in self.notifications():
            domain_event = self.mapper.to_domain_event(notification)
            if isinstance(domain_event, Receipt.Recorded):
                counts[vars(domain_event)["result_id"]] += 1
        return counts


class ReceiptHandler:
    """The consumer's AnalysisResultEvent handler, with failures injected on request.

    Results whose id does not start with ``prefix`` belong to some other test or process
    publishing on the same routing key: they are rejected (dead-lettered, never tracked),
    so they can neither count as an effect nor shadow one of ours.
    """

    def __init__(self, app: ConsumerApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix
        self.fail_once: set[str] = set()
        self.always_fail: set[str] = set()
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, envelope: Envelope) -> None:
        result_id = str(envelope.event["analysisResult"]["id"])
        if not result_id.startswith(self.prefix):
            raise Rejected(f"not a message of this test: {result_id}")
        with self._lock:
            self.attempts[result_id] += 1
            first = self.attempts[result_id] == 1
        if result_id in self.always_fail:
            raise RuntimeError(f"simulated permanent failure for {result_id}")
        if result_id in self.fail_once and first:
            raise RuntimeError(f"simulated transient failure for {result_id}")
        self.app.record(result_id, envelope.event_id)


# --- observing the inbox ----------------------------------------------------------------
@dataclass(frozen=True)
class Settled:
    result_id: str | None
    message_id: str | None
    action: str  # ack | retry | dead-letter | none
    attempt: int
    redelivered: bool
    reason: str | None = None


class _RecordingSettle(Settle):
    def __init__(self, inner: Settle | None, record: Callable[[str, str | None], None]) -> None:
        self.inner, self.record = inner, record

    def ack(self) -> None:
        if self.inner is not None:
            self.inner.ack()
        self.record("ack" if self.inner is not None else "none", None)

    def ack_deferred(self) -> None:
        if self.inner is not None:
            self.inner.ack_deferred()
        self.record("ack" if self.inner is not None else "none", None)

    def ack_through(self) -> None:
        if self.inner is not None:
            self.inner.ack_through()
        self.record("ack" if self.inner is not None else "none", None)

    def retry_later(self, reason: str) -> None:
        if self.inner is not None:
            self.inner.retry_later(reason)
        self.record("retry", reason)

    def dead_letter(self, reason: str) -> None:
        if self.inner is not None:
            self.inner.dead_letter(reason)
        self.record("dead-letter", reason)


class ObservedInbox(Inbox):
    """The real Inbox; every settlement is also written down (after it happened)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settled: list[Settled] = []
        self.batches: list[int] = []  # how many deliveries each receive_many was given
        self._lock = threading.Lock()

    def _observed(self, delivery: Delivery, settle: Settle | None) -> Settle:
        if isinstance(settle, _RecordingSettle):
            return settle  # a group handled again one by one: recorded already

        def record(action: str, reason: str | None) -> None:
            with self._lock:
                self.settled.append(Settled(result_id_of(delivery.body), delivery.message_id,
                                            action, delivery.attempt, delivery.redelivered,
                                            reason))

        return _RecordingSettle(settle, record)

    def receive(self, delivery: Delivery, settle: Settle | None) -> None:  # type: ignore[override]
        """``settle=None`` processes a delivery but never settles it (a crash before the ack)."""
        super().receive(delivery, self._observed(delivery, settle))

    def receive_many(self, deliveries: list[tuple[Delivery, Settle]]) -> None:
        with self._lock:
            self.batches.append(len(deliveries))
        super().receive_many([(d, self._observed(d, s)) for d, s in deliveries])

    def of(self, result_id: str, action: str | None = None) -> list[Settled]:
        with self._lock:
            return [s for s in self.settled
                    if s.result_id == result_id and (action is None or s.action == action)]


def consumed(service: str, outcome: str) -> float:
    """The inbox's Prometheus counter for one outcome (0 when never incremented)."""
    return REGISTRY.get_sample_value("sla_inbox_messages_total",
                                     {"service": service, "outcome": outcome}) or 0.0


@contextlib.contextmanager
def running(*targets: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run each ``target(stop)`` in a thread; stop and join them on the way out."""
    stop = threading.Event()
    threads = [threading.Thread(target=t, args=(stop,), daemon=True, name=f"bus-test-{i}")
               for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        assert not any(t.is_alive() for t in threads), "a bus worker did not stop"


# --- transports that crash on purpose -----------------------------------------------------
class SimulatedCrash(RuntimeError):
    pass


class CrashingTransport(Transport):
    """Wraps a transport; ``publish`` crashes before (or after) really publishing, once."""

    def __init__(self, inner: Transport, after_publishing: bool) -> None:
        self.inner, self.after_publishing = inner, after_publishing
        self.crashed = False

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.crashed:
            self.inner.publish(messages)
            return
        self.crashed = True
        if self.after_publishing:
            self.inner.publish(messages)
            raise SimulatedCrash("crashed after publishing, before recording the position")
        raise SimulatedCrash("crashed after the store commit, before publishing")

    def declare(self, queues: Sequence[QueueSpec] = ()) -> None:
        self.inner.declare(queues)

    def consume(self, queue: QueueSpec, consumer: Any, stop: threading.Event,
                prefetch: int = 50) -> None:
        self.inner.consume(queue, consumer, stop, prefetch)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


# --- stores -----------------------------------------------------------------------------
def sqlite_env(path: Path) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "10", "SINGLE_ROW_TRACKING": "n"}


def postgres_env(postgres: dict[str, str], schema: str,
                 single_row_tracking: str = "n") -> dict[str, str]:
    return {**postgres, "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_SCHEMA": schema, "SINGLE_ROW_TRACKING": single_row_tracking,
            "POSTGRES_POOL_SIZE": "3"}


def drop_schema(postgres: dict[str, str], schema: str) -> None:
    import psycopg

    with psycopg.connect(host=postgres["POSTGRES_HOST"], port=postgres["POSTGRES_PORT"],
                         user=postgres["POSTGRES_USER"],
                         password=postgres.get("POSTGRES_PASSWORD") or None,
                         dbname=postgres["POSTGRES_DBNAME"], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- the broker, seen through raw pika ----------------------------------------------------
class RawBroker:
    """Direct pika access for what the suite's transport does not offer: taps, basic_get."""

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> pika.BlockingConnection:
        params = pika.URLParameters(self.url)
        params.socket_timeout = 5
        return pika.BlockingConnection(params)

    def declare_tap(self, name: str, exchange: str = SLA_EVENTS,
                    routing_key: str = ROUTING_KEY) -> None:
        """A plain queue bound to a key, to see exactly what was published."""
        with contextlib.closing(self.connect()) as conn:
            channel = conn.channel()
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            channel.queue_declare(name, durable=True)
            channel.queue_bind(name, exchange, routing_key=routing_key)

    def take_all(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        """Every message ready in the queue now (removed from it)."""
        taken = []
        with contextlib.closing(self.connect()) as conn:
            channel = conn.channel()
            while True:
                method, props, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append((method, props, body))

    def collect(self, queue: str, done: Callable[[list[tuple[Any, Any, bytes]]], bool],
                timeout: float, what: str) -> list[tuple[Any, Any, bytes]]:
        """Take messages from a queue until ``done(all taken so far)``; fail on timeout."""
        taken: list[tuple[Any, Any, bytes]] = []

        def check() -> bool:
            taken.extend(self.take_all(queue))
            return done(taken)

        wait_until(check, timeout, what, interval=0.1)
        return taken

    def delete(self, *queues: str) -> None:
        with contextlib.closing(self.connect()) as conn:
            channel = conn.channel()
            for name in queues:
                channel.queue_delete(name)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def accepts() -> bool:
            try:
                with contextlib.closing(self.connect()) as conn:
                    conn.channel().exchange_declare(SLA_EVENTS, exchange_type="topic",
                                                    durable=True)
                return True
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_until(accepts, timeout, "RabbitMQ to accept connections again", interval=0.5)


def delivery_from(method: Any, props: Any, body: bytes) -> Delivery:
    return Delivery(body=body, exchange=method.exchange, routing_key=method.routing_key,
                    message_id=props.message_id, headers=dict(props.headers or {}),
                    redelivered=bool(method.redelivered))


# --- polling ----------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def drain(amqp_url: str, queue: str) -> list[tuple[str, bytes]]:
    """Every message waiting on ``queue`` (taken off it): its routing key and body."""
    import pika

    taken = []
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(amqp_url))) as conn:
        channel = conn.channel()
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((method.routing_key, body))
