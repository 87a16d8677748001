"""The outbox relay: publishes a service's notification log to the bus.

Nothing is published in the request path. The relay reads the notifications after the
last published position, publishes them (the broker acknowledges each batch), then records
the new position in the service's own store. A crash anywhere in between re-sends a batch;
the consumers' inbox makes the re-send harmless. Nothing is ever lost (docs/architecture.md,
"Outbox and inbox").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification
from prometheus_client import Counter, Gauge

from shared.bus import contracts
from shared.bus.envelope import Envelope, OutgoingMessage
from shared.bus.topology import SLA_EVENTS
from shared.bus.transport import Transport, backoff
from shared.store import ServiceApplication
from shared.times import iso
from shared.wakeups import Mark, sleep

log = logging.getLogger(__name__)

PUBLISHED = Counter("sla_outbox_published_total", "Messages published by the outbox relay",
                    ["service"])
LAG = Gauge("sla_outbox_lag", "Notifications recorded but not yet published", ["service"])


class Publication:
    """What a service publishes for one of its domain events."""

    def __init__(self, routing_key: str, event_type: str, event: dict[str, Any],
                 exchange: str = SLA_EVENTS) -> None:
        self.routing_key, self.event_type, self.event, self.exchange = (
            routing_key, event_type, event, exchange)


# A service's mapping from a stored domain event to what it publishes (or None).
Describe = Callable[[DomainEventProtocol], Publication | list[Publication] | None]


class OutboxRelay:
    def __init__(self, app: ServiceApplication, service: str, transport: Transport,
                 describe: Describe, batch: int = 500, poll_interval: float = 0.2,
                 topics: Sequence[str] = (), log: str = "") -> None:
        """``topics``: only events of these topics are published (others are skipped
        without being read, which matters beside high-volume internal events).

        ``log`` names a further log of a service that publishes from two (monitoring: its
        crossings and alerts from its outcomes log, its regimes from its main one). Each
        log numbers its notifications from 1, so such a relay keeps its position under a
        name of its own and its message ids read ``<service>.<log>:<notification id>``
        (the first log's stay ``<service>:<notification id>``): no id is ever shared."""
        self.app, self.service, self.transport, self.describe = app, service, transport, describe
        self.topics = list(topics)
        self.log = log
        self.name = f"{service}.{log}" if log else service
        self.outbox = f"{ServiceApplication.OUTBOX}{log}" if log else ServiceApplication.OUTBOX
        self._scanned = 0
        self.batch, self.poll_interval = batch, poll_interval
        self.last_error: str | None = None

    def to_messages(self, notification: Notification) -> list[OutgoingMessage]:
        event, meta = self.app.decode(notification)
        described = self.describe(event)
        if described is None:
            return []
        publications = described if isinstance(described, list) else [described]
        messages = []
        for i, pub in enumerate(publications):
            suffix = f"/{i}" if i else ""
            envelope = Envelope(
                event_id=f"{self.name}:{notification.id}{suffix}",
                event_time=iso(getattr(event, "timestamp", None)),
                event_type=pub.event_type,
                event=pub.event,
                source=self.service,
                correlation_id=meta.get("correlationId"),
                causation_id=meta.get("causationId"),
            )
            contracts.validate(envelope.to_dict())
            messages.append(OutgoingMessage(pub.exchange, pub.routing_key, envelope,
                                            message_id=envelope.event_id))
        return messages

    def run_once(self) -> int:
        """Publish one batch; returns how many notifications it covered."""
        position = max(self.app.published_position(self.outbox), self._scanned)
        # With a topic filter, remember how far the log was scanned, so events of other
        # topics (many, beside a high-volume service's own) are not read again.
        head = self.app.max_notification_id() if self.topics else None
        notifications = self.app.recorder.select_notifications(
            start=position, limit=self.batch, inclusive_of_start=False, topics=self.topics,
            stop=head)
        if not notifications:
            if head is not None:
                self._scanned = max(self._scanned, head)
            LAG.labels(self.name).set(0)
            return 0
        messages: list[OutgoingMessage] = []
        for n in notifications:
            messages.extend(self.to_messages(n))
        if messages:
            self.transport.publish(messages)
        self.app.record_published(notifications[-1].id, self.outbox)
        if head is not None and len(notifications) < self.batch:
            self._scanned = max(self._scanned, head)
        PUBLISHED.labels(self.service).inc(len(messages))
        LAG.labels(self.name).set(max(0, self.app.max_notification_id() - notifications[-1].id))
        return len(notifications)

    def run(self, stop: threading.Event, wake: bool = True) -> None:
        run_relays([self], stop, wake)


def run_relays(relays: Sequence[OutboxRelay], stop: threading.Event,
               wake: bool = True) -> None:
    """Run the relays of one service's logs in turn, in this thread, until ``stop``.

    One thread keeps one publisher connection whatever the number of logs, and the
    service's ``relay`` role stays one role. A relay that fails does not hold up the
    others: each keeps its ``last_error``, and the loop backs off only when one failed.

    With ``wake``, the loop sleeps until a log gets new events (its store's ``recorded``
    wakeup: a save in this process, or PostgreSQL's ``NOTIFY`` through a
    ``shared.wakeups.LogListener``) and runs the relays of the logs that did; each relay
    also runs at least every ``poll_interval`` seconds, so a lost wake-up delays a
    message by that much at most. Without, it polls every ``poll_interval``."""
    failures = 0
    poll_interval = min(r.poll_interval for r in relays)
    woken = threading.Event()
    marks = [Mark(woken) for _ in relays]
    if wake:
        for relay, mark in zip(relays, marks, strict=True):
            relay.app.recorded.add(mark)
    last_run = [float("-inf")] * len(relays)
    backlog = [True] * len(relays)
    try:
        while not stop.is_set():
            woken.clear()
            busy, failed = False, False
            for i, relay in enumerate(relays):
                now = time.monotonic()
                if not (marks[i].take() or backlog[i] or not wake or
                        now - last_run[i] >= relay.poll_interval):
                    continue
                last_run[i] = now
                try:
                    backlog[i] = relay.run_once() >= relay.batch
                    relay.last_error = None
                except Exception as exc:  # noqa: BLE001 - keep relaying after any failure
                    failed = backlog[i] = True
                    relay.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("outbox relay of %s failed (%s); retrying", relay.name, exc)
                busy |= backlog[i]
            if failed:
                failures += 1
                stop.wait(backoff(failures, base=0.2, cap=5.0))
                continue
            failures = 0
            if busy:
                continue
            if not wake:
                stop.wait(poll_interval)
                continue
            now = time.monotonic()
            due = min(last + r.poll_interval for last, r in zip(last_run, relays, strict=True))
            sleep(woken, stop, max(0.0, due - now))
    finally:
        if wake:
            for relay, mark in zip(relays, marks, strict=True):
                relay.app.recorded.remove(mark)
        for transport in {id(r.transport): r.transport for r in relays}.values():
            transport.close()  # the publisher connection belongs to this thread
