"""The outbox relay: publishes a service's notification log to the bus.

Nothing is published in the request path. The relay reads the notifications after the
last published position, publishes them (the broker acknowledges each batch), then records
the new position in the service's own store. A crash anywhere in between re-sends a batch;
the consumers' inbox makes the re-send harmless. Nothing is ever lost (docs/architecture.md,
"Outbox and inbox").

A page of notifications is described together (:class:`Page`): a describer asks for the
aggregate as it was after its event (:func:`aggregate_after`) and gets it folded from the
page's own events, the states before the page read in one query for all of them, instead
of one reconstruction from the store per event (a migration's page of new purchased
offerings reads nothing at all); what a describer looks up besides (an offering's group)
is looked up once a page (:func:`remember`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification
from prometheus_client import Counter, Gauge

from shared import context
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


class Page(context.UnitOfWork):
    """The events of one relay batch, described together.

    It keeps the state of each aggregate the page touches, so the state after one of its
    events is the page's earlier events of that aggregate applied in order. The states
    before the page (of aggregates whose first event here is not their creation) are read
    in one query for every aggregate of the asked one's kind, when a describer first asks
    for one of that kind (a describer that publishes only some kinds reads nothing for
    the others). An event that cannot be reached so (an event of its aggregate before it
    is not in the page, as with a topic filter) is reconstructed from the store, as
    without a page."""

    def __init__(self, app: ServiceApplication, events: Sequence[DomainEventProtocol]) -> None:
        super().__init__()
        self.app = app
        self._pending: dict[UUID, collections.deque[DomainEventProtocol]] = {}
        for event in events:
            self._pending.setdefault(event.originator_id, collections.deque()).append(event)
        self._first = {i: q[0].originator_version for i, q in self._pending.items()}
        self._kinds = {i: _kind(q[0]) for i, q in self._pending.items()}
        self._states: dict[UUID, Any] = {}
        self._loaded: set[str] = set()  # kinds whose states before the page were read

    @classmethod
    def current(cls, app: ServiceApplication) -> Page | None:
        page = cls.active()
        return page if page is not None and page.app is app else None

    def _load_before(self, kind: str) -> None:
        self._loaded.add(kind)
        wanted = {i: v - 1 for i, v in self._first.items()
                  if v > 1 and self._kinds[i] == kind and i not in self._states}
        self._states.update(self.app.load_many_at(wanted))

    def after(self, event: DomainEventProtocol) -> Any:
        aggregate_id, version = event.originator_id, event.originator_version
        kind = self._kinds.get(aggregate_id)
        if kind is not None and kind not in self._loaded and aggregate_id not in self._states \
                and self._first[aggregate_id] > 1:
            self._load_before(kind)
        state = self._states.get(aggregate_id)
        pending = self._pending.get(aggregate_id) or collections.deque()
        while pending and pending[0].originator_version <= version and \
                pending[0].originator_version == (state.version if state is not None else 0) + 1:
            state = pending.popleft().mutate(state)
        if state is None or state.version != version:
            state = self.app.repository.get(aggregate_id, version=version)
            while pending and pending[0].originator_version <= version:
                pending.popleft()
        self._states[aggregate_id] = state
        return state



def _kind(event: DomainEventProtocol) -> str:
    """The aggregate class an event class is defined on (``Delivery.Sent`` → ``Delivery``)."""
    cls = type(event)
    return f"{cls.__module__}:{cls.__qualname__.rpartition('.')[0]}"


def aggregate_after(app: ServiceApplication, event: DomainEventProtocol) -> Any:
    """The aggregate of ``event`` as it was just after it: from the page being described
    (see :class:`Page`), else reconstructed from ``app``'s store at that version.

    Inside a page the object is the page's own and moves on with the page's later events:
    describe it at once (the relay encodes each message as soon as it is described)."""
    page = Page.current(app)
    if page is None:
        return app.repository.get(event.originator_id, version=event.originator_version)
    return page.after(event)


def remember(app: ServiceApplication, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``, once for the page being described (every event of the page sees the
    same answer, as one moment's), or each time outside a relay's page."""
    page = Page.current(app)
    return compute() if page is None else page.memo(key, compute)


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
        # A full page handed to the broker and not yet confirmed: (wait, its last
        # notification id, its message count); and how far pages were handed over.
        self._pending: tuple[Callable[[], None], int, int] | None = None
        self._sent = 0
        self.batch, self.poll_interval = batch, poll_interval
        self.last_error: str | None = None

    def to_messages(self, notification: Notification) -> list[OutgoingMessage]:
        event, meta = self.app.decode(notification)
        return self._messages(notification, event, meta)

    def page_messages(self, notifications: Sequence[Notification]) -> list[OutgoingMessage]:
        """The messages of a page of notifications, in their order, described together
        (:class:`Page`)."""
        decoded = [self.app.decode(n) for n in notifications]
        messages: list[OutgoingMessage] = []
        with Page(self.app, [event for event, _ in decoded]).bound():
            for notification, (event, meta) in zip(notifications, decoded, strict=True):
                messages.extend(self._messages(notification, event, meta))
        return messages

    def _messages(self, notification: Notification, event: DomainEventProtocol,
                  meta: dict[str, Any]) -> list[OutgoingMessage]:
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
            body = envelope.to_dict()
            contracts.validate(body)
            # Encoded now: inside a page the described aggregate moves on with the page.
            messages.append(OutgoingMessage(pub.exchange, pub.routing_key, envelope,
                                            message_id=envelope.event_id,
                                            body=orjson.dumps(body, default=str)))
        return messages

    def settle(self) -> None:
        """Wait for the page in flight, if any, and record its position once the broker
        has confirmed it; if it has not, the position stays, and the page is read and
        published again."""
        if self._pending is None:
            return
        wait, last, count = self._pending
        self._pending = None
        try:
            wait()
        except Exception:
            self._sent = 0
            raise
        self.app.record_published(last, self.outbox)
        PUBLISHED.labels(self.service).inc(count)

    def run_once(self) -> int:
        """Publish one batch; returns how many notifications it covered.

        A full page (a backlog: more follows) is left in flight: the next call describes
        the next page while the broker commits this one, and records this one's position
        only once it is confirmed, before it hands the next one over (one page in flight
        at a time). A page that is not full is confirmed and recorded before returning."""
        position = max(self.app.published_position(self.outbox), self._scanned, self._sent)
        # With a topic filter, remember how far the log was scanned, so events of other
        # topics (many, beside a high-volume service's own) are not read again.
        head = self.app.max_notification_id() if self.topics else None
        notifications = self.app.recorder.select_notifications(
            start=position, limit=self.batch, inclusive_of_start=False, topics=self.topics,
            stop=head)
        if not notifications:
            self.settle()
            if head is not None:
                self._scanned = max(self._scanned, head)
            LAG.labels(self.name).set(0)
            return 0
        try:
            messages = self.page_messages(notifications)
        finally:
            self.settle()  # the page before, committed by the broker meanwhile
        last = notifications[-1].id
        if messages:
            self._pending = (self.transport.publish_started(messages), last, len(messages))
            self._sent = last
            if len(notifications) < self.batch:
                self.settle()
        else:
            self.app.record_published(last, self.outbox)
        if head is not None and len(notifications) < self.batch:
            self._scanned = max(self._scanned, head)
        LAG.labels(self.name).set(max(0, self.app.max_notification_id() - last))
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
        for relay in relays:  # a page still in flight: recorded if confirmed
            try:
                relay.settle()
            except Exception as exc:  # noqa: BLE001 - published again on the next start
                log.warning("outbox relay of %s stopped before the broker confirmed its "
                            "last page (%s); it is published again", relay.name, exc)
        for transport in {id(r.transport): r.transport for r in relays}.values():
            transport.close()  # the publisher connection belongs to this thread
