"""The inbox: consumes a service's queue with exactly-once effect.

Each handler's events are saved together with a tracking record (upstream, message id)
in one transaction, so a redelivered message is recognised and acknowledged without a
second effect. A message that cannot be parsed or breaks its contract goes straight to
the dead-letter queue with the reason; one whose handler keeps failing goes there after
a bounded number of attempts. The consumer always carries on (docs/architecture.md,
"Outbox and inbox").

Messages whose handlers are :func:`groupable` (the replica kit's) are handled in groups
of what has arrived, up to ``group`` at a time: one query tells which were handled
before, one transaction saves every message's events with every message's tracking
record, and the acks follow the commit. A group that fails in any way is handled again
one message at a time, so a poison message is retried and dead-lettered alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from prometheus_client import Counter

from shared import context
from shared.bus import contracts
from shared.bus.envelope import Envelope, EnvelopeError
from shared.bus.topology import QueueSpec
from shared.bus.transport import Delivery, Settle, Transport, backoff
from shared.store import (
    DuplicateMessage,
    InboxGroup,
    InboxTracking,
    ServiceApplication,
    external_tracking,
)

log = logging.getLogger(__name__)

CONSUMED = Counter("sla_inbox_messages_total", "Messages consumed by outcome",
                   ["service", "outcome"])


class Rejected(Exception):
    """Raised by a handler for a message that can never succeed (dead-lettered at once)."""


Handler = Callable[[Envelope], None]


def groupable(handler: Handler, prepare: Callable[[Sequence[Envelope]], None] | None = None
              ) -> Handler:
    """Mark a handler as one the inbox may run with others in one transaction.

    Only for handlers whose decisions read nothing a handler of the same group may have
    changed, other than through the group (``InboxGroup.find``: the replica kit reads
    its replicas so). ``prepare``, if given, runs once per group with the envelopes of
    that handler's messages, before any of them (e.g. to load their aggregates in one
    read: ``InboxGroup.preload``)."""
    handler.groupable = True  # type: ignore[attr-defined]
    handler.prepare = prepare  # type: ignore[attr-defined]
    return handler


def is_groupable(handler: Handler) -> bool:
    return bool(getattr(handler, "groupable", False))


@dataclass
class _Item:
    delivery: Delivery
    settle: Settle
    envelope: Envelope
    handler: Handler
    tracking: Tracking


def tracking_for(delivery: Delivery, envelope: Envelope) -> Tracking:
    """Our own messages carry ``<service>:<notification id>`` (or ``<service>.<log>:<n>``
    from a service's further log: a position of its own); others are digested."""
    message_id = delivery.message_id or envelope.event_id
    upstream, _, number = message_id.partition(":")
    source = envelope.source or ""
    if number.isdigit() and source and (upstream == source or upstream.startswith(source + ".")):
        return Tracking(application_name=upstream, notification_id=int(number))
    return external_tracking(f"{delivery.origin_exchange}:{envelope.source or ''}", message_id)


class Inbox:
    def __init__(self, app: ServiceApplication, service: str, transport: Transport,
                 queue: QueueSpec, handlers: dict[str, Handler], max_deliveries: int = 5,
                 prefetch: int = 50, backoff_cap: float = 2.0, group: int = 100) -> None:
        self.app, self.service, self.transport, self.queue = app, service, transport, queue
        self.handlers, self.max_deliveries, self.prefetch = handlers, max_deliveries, prefetch
        self.backoff_cap = backoff_cap
        # At most what the broker lets us hold unacknowledged.
        self.group = max(1, min(group, prefetch)) if app.takes_groups else 1

    def run(self, stop: threading.Event) -> None:
        if self.group > 1:
            self.transport.consume_many(self.queue, self.receive_many, stop,
                                        prefetch=self.prefetch, max_batch=self.group)
        else:
            self.transport.consume(self.queue, self.receive, stop, prefetch=self.prefetch)

    def _parse(self, delivery: Delivery, settle: Settle) -> _Item | None:
        """The delivery read and checked, or None once it was dead-lettered."""
        try:
            envelope = Envelope.from_bytes(delivery.body)
            contracts.validate(envelope.to_dict())
            handler = self.handlers.get(envelope.event_type)
            if handler is None:
                raise Rejected(f"{self.service} has no handler for {envelope.event_type}")
        except (EnvelopeError, contracts.ContractViolation, Rejected) as exc:
            self._dead_letter(settle, str(exc))
            return None
        return _Item(delivery, settle, envelope, handler, tracking_for(delivery, envelope))

    def receive(self, delivery: Delivery, settle: Settle) -> None:
        """Handle one delivery and settle it: ack, retry later, or dead-letter."""
        item = self._parse(delivery, settle)
        if item is not None:
            self._receive_one(item)

    def receive_many(self, deliveries: list[tuple[Delivery, Settle]]) -> None:
        """Handle deliveries in their order: runs of groupable ones together (one
        transaction each), the others one by one."""
        run: list[_Item] = []
        for delivery, settle in deliveries:
            item = self._parse(delivery, settle)
            if item is None:
                continue
            if is_groupable(item.handler):
                run.append(item)
                continue
            self._receive_group(run)
            run = []
            self._receive_one(item)
        self._receive_group(run)

    def _receive_group(self, items: list[_Item]) -> None:
        if len(items) <= 1:
            for item in items:
                self._receive_one(item)
            return
        try:
            outcomes = self._handle_group(items)
        except Exception as exc:  # noqa: BLE001 - any failure: each message on its own
            log.info("handling %d messages together failed (%s: %s); handling them one "
                     "by one", len(items), type(exc).__name__, exc)
            CONSUMED.labels(self.service, "regrouped").inc(len(items))
            for item in items:
                self.receive(item.delivery, item.settle)
            return
        # Every earlier delivery is settled (handled in order): one acknowledgement.
        for item in items[:-1]:
            item.settle.ack_deferred()
        items[-1].settle.ack_through()
        for outcome in ("processed", "duplicate"):
            if count := outcomes.count(outcome):
                CONSUMED.labels(self.service, outcome).inc(count)

    def _handle_group(self, items: list[_Item]) -> list[str]:
        """Every message's effect and tracking record in one transaction; the outcome of
        each (``processed`` or ``duplicate``). Raises, having committed nothing, when
        any handler fails or the commit does."""
        tracked = self.app.tracked([i.tracking for i in items])
        outcomes: list[str] = []
        work: list[_Item] = []
        for item in items:
            key = (item.tracking.application_name, item.tracking.notification_id)
            if key in tracked:
                outcomes.append("duplicate")  # handled before, or twice in this group
                continue
            tracked.add(key)
            outcomes.append("processed")
            work.append(item)
        if not work:
            return outcomes
        group = InboxGroup(self.app)
        with group.bound():
            by_handler: dict[int, tuple[Handler, list[Envelope]]] = {}
            for item in work:
                by_handler.setdefault(id(item.handler), (item.handler, []))[1].append(
                    item.envelope)
            for handler, envelopes in by_handler.values():
                prepare: Any = getattr(handler, "prepare", None)
                if prepare is not None:
                    prepare(envelopes)
            for item in work:
                pending = InboxTracking(item.tracking, group=group)
                token = pending.bind()
                try:
                    with context.bound(correlation=item.envelope.correlation_id,
                                       causation=item.envelope.event_id,
                                       who=f"bus:{item.envelope.source or 'external'}"):
                        item.handler(item.envelope)
                    if not pending.saved:
                        group.add(item.tracking, ())
                finally:
                    pending.unbind(token)
        self.app.save_group(group)
        return outcomes

    def _receive_one(self, item: _Item) -> None:
        delivery, settle, envelope = item.delivery, item.settle, item.envelope
        handler, tracking = item.handler, item.tracking
        try:
            outcome = self._handle(handler, envelope, tracking)
        except Rejected as exc:
            self._dead_letter(settle, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
            reason = f"{type(exc).__name__}: {exc}"
            if delivery.attempt + 1 >= self.max_deliveries:
                self._dead_letter(settle, f"failed {delivery.attempt + 1} times; last: {reason}")
            else:
                log.warning("handler failed for %s (attempt %d): %s", envelope.event_id,
                            delivery.attempt + 1, reason)
                CONSUMED.labels(self.service, "retried").inc()
                # Back off before the next attempt: a store that is down gets time to
                # come back before the message's attempts are used up.
                threading.Event().wait(backoff(delivery.attempt, base=0.1, cap=self.backoff_cap))
                settle.retry_later(reason)
            return
        CONSUMED.labels(self.service, outcome).inc()
        settle.ack()

    def _handle(self, handler: Handler, envelope: Envelope, tracking: Tracking) -> str:
        if self.app.is_tracked(tracking):
            return "duplicate"
        for attempt in range(5):
            pending = InboxTracking(tracking)
            token = pending.bind()
            try:
                with context.bound(correlation=envelope.correlation_id,
                                   causation=envelope.event_id,
                                   who=f"bus:{envelope.source or 'external'}"):
                    handler(envelope)
                if not pending.saved:
                    self.app.save_tracked(tracking)
                return "processed"
            except DuplicateMessage:
                return "duplicate"
            except IntegrityError:
                # Optimistic-concurrency conflict (not a duplicate): reload and try again.
                if attempt == 4:
                    raise
                threading.Event().wait(backoff(attempt, base=0.01, cap=0.2))
            finally:
                pending.unbind(token)
        return "processed"

    def _dead_letter(self, settle: Settle, reason: str) -> None:
        log.error("dead-lettering a message on %s: %s", self.queue.name, reason)
        CONSUMED.labels(self.service, "dead-lettered").inc()
        settle.dead_letter(reason)
