"""The inbox: consumes a service's queue with exactly-once effect.

Each handler's events are saved together with a tracking record (upstream, message id)
in one transaction, so a redelivered message is recognised and acknowledged without a
second effect. A message that cannot be parsed or breaks its contract goes straight to
the dead-letter queue with the reason; one whose handler keeps failing goes there after
a bounded number of attempts. The consumer always carries on (docs/architecture.md,
"Outbox and inbox").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from eventsourcing.persistence import IntegrityError, Tracking
from prometheus_client import Counter

from shared import context
from shared.bus import contracts
from shared.bus.envelope import Envelope, EnvelopeError
from shared.bus.topology import QueueSpec
from shared.bus.transport import Delivery, Settle, Transport, backoff
from shared.store import (
    DuplicateMessage,
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
                 prefetch: int = 50, backoff_cap: float = 2.0) -> None:
        self.app, self.service, self.transport, self.queue = app, service, transport, queue
        self.handlers, self.max_deliveries, self.prefetch = handlers, max_deliveries, prefetch
        self.backoff_cap = backoff_cap

    def run(self, stop: threading.Event) -> None:
        self.transport.consume(self.queue, self.receive, stop, prefetch=self.prefetch)

    def receive(self, delivery: Delivery, settle: Settle) -> None:
        """Handle one delivery and settle it: ack, retry later, or dead-letter."""
        try:
            envelope = Envelope.from_bytes(delivery.body)
            contracts.validate(envelope.to_dict())
            handler = self.handlers.get(envelope.event_type)
            if handler is None:
                raise Rejected(f"{self.service} has no handler for {envelope.event_type}")
        except (EnvelopeError, contracts.ContractViolation, Rejected) as exc:
            self._dead_letter(settle, str(exc))
            return
        tracking = tracking_for(delivery, envelope)
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
