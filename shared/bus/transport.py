"""The transport seam: what the outbox and the inbox need from a broker.

Two implementations: :mod:`shared.bus.amqp` (RabbitMQ via pika) and
:class:`InProcessTransport` below for the embedded mode and fast tests.
"""

from __future__ import annotations

import collections
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.bus.envelope import OutgoingMessage
from shared.bus.topology import DEAD_LETTER, EXCHANGES, QueueSpec, topic_matches

RETRY_HEADER = "x-sla-attempt"
REASON_HEADER = "x-sla-dead-letter-reason"
ORIGIN_EXCHANGE_HEADER = "x-sla-original-exchange"
ORIGIN_KEY_HEADER = "x-sla-original-routing-key"
QUEUE_HEADER = "x-sla-queue"
LAST_ERROR_HEADER = "x-sla-last-error"


@dataclass
class Delivery:
    """One message handed to a consumer; exactly one of the settle methods is called."""

    body: bytes
    exchange: str
    routing_key: str
    message_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False

    @property
    def attempt(self) -> int:
        # A header we did not write (another system, a hand-made message) must not crash
        # the consumer: anything that is not a whole number counts as a first attempt.
        try:
            return max(0, int(self.headers.get(RETRY_HEADER, 0) or 0))
        except (TypeError, ValueError):
            return 0

    @property
    def origin_exchange(self) -> str:
        """The exchange it was first published to (a retry travels via the default one)."""
        return str(self.headers.get(ORIGIN_EXCHANGE_HEADER) or self.exchange)

    @property
    def origin_routing_key(self) -> str:
        return str(self.headers.get(ORIGIN_KEY_HEADER) or self.routing_key)


class Settle(ABC):
    """What a consumer does with a delivery once its handler has run."""

    @abstractmethod
    def ack(self) -> None: ...

    def ack_deferred(self) -> None:
        """Acknowledged by a later :meth:`ack_through` of the same consumer (which must
        follow): a group of deliveries costs the broker one acknowledgement."""
        self.ack()

    def ack_through(self) -> None:
        """Acknowledge this delivery and every earlier one of its consumer that is not
        settled yet — only once each of those is settled or deferred."""
        self.ack()

    @abstractmethod
    def retry_later(self, reason: str) -> None:
        """Put the message at the back of the queue with its attempt count raised."""

    @abstractmethod
    def dead_letter(self, reason: str) -> None:
        """Move the message to the queue's dead-letter queue with the reason in its headers."""


Consumer = Callable[[Delivery, Settle], None]
# Several deliveries at once (what had arrived), each with its own settle.
BatchConsumer = Callable[[list[tuple[Delivery, Settle]]], None]


class Transport(ABC):
    """A broker connection factory: publish with confirms, consume with manual acks."""

    @abstractmethod
    def declare(self, queues: Sequence[QueueSpec] = ()) -> None:
        """Declare the suite's exchanges, and the given queues with their bindings."""

    @abstractmethod
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish persistently; return only once the broker has confirmed every message."""

    def publish_started(self, messages: Sequence[OutgoingMessage]) -> Callable[[], None]:
        """Start publishing persistently; the call returned waits until the broker has
        confirmed every message (raising if it has not), so the caller can do other work
        meanwhile (the relay describes its next page). One batch at a time is in flight:
        a further publish on the same thread first waits for the one before. By default
        the batch is published and confirmed at once."""
        self.publish(messages)
        return _confirmed

    @abstractmethod
    def consume(self, queue: QueueSpec, consumer: Consumer, stop: threading.Event,
                prefetch: int = 50, on_idle: Callable[[], None] | None = None,
                idle_timeout: float = 0.25) -> None:
        """Deliver messages of a queue to ``consumer`` until ``stop`` is set.

        ``on_idle`` runs in the consuming thread whenever no message came for
        ``idle_timeout`` seconds (batching consumers flush there)."""

    def consume_many(self, queue: QueueSpec, consumer: BatchConsumer, stop: threading.Event,
                     prefetch: int = 50, max_batch: int = 100,
                     idle_timeout: float = 0.25) -> None:
        """Like :meth:`consume`, but hand ``consumer`` the deliveries that have arrived,
        up to ``max_batch`` at a time, as soon as no further one is waiting: under load
        the lists fill up (one store transaction for many messages), a lone message is
        handed over alone at once (no waiting for company). Every delivery of a list is
        settled by the consumer; a connection lost meanwhile drops the list (the broker
        delivers its unsettled messages again). By default, lists of one."""
        self.consume(queue, lambda delivery, settle: consumer([(delivery, settle)]), stop,
                     prefetch=prefetch)

    @abstractmethod
    def ping(self) -> None:
        """Raise if the broker cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional
        pass


def _confirmed() -> None:
    return None


def dead_letter_headers(delivery: Delivery, queue: QueueSpec, reason: str) -> dict[str, Any]:
    return {
        **delivery.headers,
        REASON_HEADER: reason[:1000],
        ORIGIN_EXCHANGE_HEADER: delivery.origin_exchange,
        ORIGIN_KEY_HEADER: delivery.origin_routing_key,
        QUEUE_HEADER: queue.name,
    }


@dataclass
class _Message:
    body: bytes
    exchange: str
    routing_key: str
    message_id: str | None
    headers: dict[str, Any]


class _Queue:
    def __init__(self) -> None:
        self.items: collections.deque[_Message] = collections.deque()
        self.cond = threading.Condition()


class InProcessTransport(Transport):
    """A broker inside the process with AMQP topic semantics, for the embedded mode.

    Messages live in memory: what a crash loses here the outbox publishes again on start,
    and the inbox's tracking records make the re-delivery harmless.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bindings: dict[str, list[tuple[str, str]]] = {ex: [] for ex in EXCHANGES}
        self._queues: dict[str, _Queue] = {}

    def declare(self, queues: Sequence[QueueSpec] = ()) -> None:
        with self._lock:
            for spec in queues:
                self._queues.setdefault(spec.name, _Queue())
                self._queues.setdefault(spec.dead_letter_queue, _Queue())
                for b in spec.bindings:
                    entry = (b.routing_key, spec.name)
                    if entry not in self._bindings.setdefault(b.exchange, []):
                        self._bindings[b.exchange].append(entry)

    def _put(self, queue: str, message: _Message) -> None:
        q = self._queues[queue]
        with q.cond:
            q.items.append(message)
            q.cond.notify()

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        for m in messages:
            body = m.to_bytes()
            self.publish_raw(m.exchange, m.routing_key, body, m.message_id, dict(m.headers))

    def publish_raw(self, exchange: str, routing_key: str, body: bytes,
                    message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        with self._lock:
            targets = {q for pattern, q in self._bindings.get(exchange, [])
                       if topic_matches(pattern, routing_key)}
        for q in targets:
            self._put(q, _Message(body, exchange, routing_key, message_id, dict(headers or {})))

    def consume(self, queue: QueueSpec, consumer: Consumer, stop: threading.Event,
                prefetch: int = 50, on_idle: Callable[[], None] | None = None,
                idle_timeout: float = 0.25) -> None:
        self.declare([queue])
        q = self._queues[queue.name]
        while not stop.is_set():
            with q.cond:
                if not q.items:
                    q.cond.wait(timeout=idle_timeout)
                    message = None
                else:
                    message = q.items.popleft()
            if message is None:
                if on_idle is not None:
                    on_idle()
                continue
            delivery = Delivery(message.body, message.exchange, message.routing_key,
                                message.message_id, dict(message.headers))
            consumer(delivery, _InProcessSettle(self, queue, message, delivery))

    def consume_many(self, queue: QueueSpec, consumer: BatchConsumer, stop: threading.Event,
                     prefetch: int = 50, max_batch: int = 100,
                     idle_timeout: float = 0.25) -> None:
        self.declare([queue])
        q = self._queues[queue.name]
        while not stop.is_set():
            with q.cond:
                if not q.items:
                    q.cond.wait(timeout=idle_timeout)
                taken = [q.items.popleft() for _ in range(min(max_batch, len(q.items)))]
            if not taken:
                continue
            batch: list[tuple[Delivery, Settle]] = []
            for message in taken:
                delivery = Delivery(message.body, message.exchange, message.routing_key,
                                    message.message_id, dict(message.headers))
                batch.append((delivery, _InProcessSettle(self, queue, message, delivery)))
            consumer(batch)

    def dead_letters(self, queue: QueueSpec) -> list[_Message]:
        return list(self._queues.get(queue.dead_letter_queue, _Queue()).items)

    def depth(self, queue_name: str) -> int:
        q = self._queues.get(queue_name)
        return len(q.items) if q else 0

    def ping(self) -> None:
        return None


class _InProcessSettle(Settle):
    def __init__(self, transport: InProcessTransport, queue: QueueSpec, message: _Message,
                 delivery: Delivery) -> None:
        self.t, self.queue, self.message, self.delivery = transport, queue, message, delivery

    def ack(self) -> None:
        return None

    def retry_later(self, reason: str) -> None:
        headers = {**self.message.headers, RETRY_HEADER: self.delivery.attempt + 1,
                   LAST_ERROR_HEADER: reason[:500]}
        self.t._put(self.queue.name, _Message(self.message.body, self.message.exchange,
                                              self.message.routing_key, self.message.message_id,
                                              headers))

    def dead_letter(self, reason: str) -> None:
        headers = dead_letter_headers(self.delivery, self.queue, reason)
        self.t._put(self.queue.dead_letter_queue, _Message(
            self.message.body, DEAD_LETTER, self.queue.name, self.message.message_id, headers))


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    return min(cap, base * (2 ** attempt))


def sleep_or_stop(stop: threading.Event, seconds: float) -> bool:
    """Sleep unless stopped; returns True when stopped."""
    return stop.wait(seconds) if seconds > 0 else stop.is_set()


def monotonic() -> float:
    return time.monotonic()
