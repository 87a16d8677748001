"""Handing a delivery over, and trying again: a :class:`Sender` per channel (e-mail over
SMTP, signed webhooks; a test gives its own) behind one interface, and the
:class:`Dispatch` that claims a due delivery, has it sent, and records the outcome —
delivered, a retry after an exponential backoff with jitter, or failed for good (a
permanent refusal, or the attempts used up), or cancelled when its list, member or
subscription went away.

A delivery is due when it is pending or retrying and its time has come, or when it was
left ``sending`` by a worker that stopped (its lease ran out, or — embedded, where this
process is the only sender — at start). The due times are read off the deliveries' own
events by :func:`delivery_due`, for the due-time columns of the stored read model
(``views.py``) that the timetable queries (``shared.readmodel.StoredTimetable``).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError

from services.notification import ROOT
from services.notification import delivery as transport
from services.notification.delivery import NotificationConfig, SendError
from services.notification.domain import Delivery, HubSubscription, NotificationList
from services.notification.notices import RESPONSE_LINK
from shared import context, outage_links
from shared.errors import InvalidTransition
from shared.scheduler import Due

if TYPE_CHECKING:
    from services.notification.application import NotificationService

log = logging.getLogger(__name__)

ATTEMPT, RECLAIM = "delivery.attempt", "delivery.reclaim"


# --- the edge -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """One message as it is handed over: the delivery's stored content, and the
    acknowledgement links that replace its placeholders (derived now, never stored)."""

    delivery_id: str
    channel: str
    address: str
    event_type: str
    content: Mapping[str, Any]
    links: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None  # a webhook's signing secret

    def text(self, value: str) -> str:
        for placeholder, url in self.links.items():
            value = value.replace(placeholder, url)
        return value


class Sender(Protocol):
    """Hands one message over on its channel: returns what the other side answered, or
    raises ``SendError`` (``permanent`` when trying again cannot help)."""

    channel: str

    def send(self, message: Outgoing) -> str: ...


class EmailSender:
    channel = "email"

    def __init__(self, config: NotificationConfig) -> None:
        self.config = config

    def send(self, message: Outgoing) -> str:
        content = {k: message.text(v) if isinstance(v, str) else v
                   for k, v in message.content.items()}
        return transport.send_email(self.config, message.delivery_id, message.address,
                                    content)


class WebhookSender:
    """Signed POSTs, over a session per sending thread whose connections go to the
    addresses the callback policy checked."""

    channel = "webhook"

    def __init__(self, config: NotificationConfig) -> None:
        self.config = config
        self._local = threading.local()

    def send(self, message: Outgoing) -> str:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = transport.webhook_session()
        body = message.text(orjson.dumps(message.content.get("body") or {}).decode())
        return transport.send_webhook(self.config, message.delivery_id, message.address,
                                      body.encode(), message.secret or "", message.event_type,
                                      session)


def senders_for(config: NotificationConfig) -> dict[str, Sender]:
    return {"email": EmailSender(config), "webhook": WebhookSender(config)}


def backoff_delay(attempt: int, base: float, cap: float,
                  rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): exponential with full jitter
    in its upper half, never above ``cap``: ``uniform(d/2, d)`` with ``d = min(cap,
    base * 2**(attempt-1))``."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def lease_seconds(config: NotificationConfig) -> float:
    """How long an attempt may stay ``sending`` before another worker takes it over."""
    return max(config.webhook_timeout, config.smtp_timeout) * 2 + 30


def delivery_due(app: NotificationService) -> Any:
    def due(d: Delivery) -> Iterator[Due]:
        if d.status in ("pending", "retrying"):
            yield Due(d.next_attempt_at or d.created_at, ATTEMPT, d.id)
        elif d.status == "sending" and d.attempts:
            last = d.attempts[-1]
            yield Due(last["startedAt"] + timedelta(seconds=lease_seconds(app.config)),
                      RECLAIM, d.id, str(last.get("worker") or ""))

    return due


# --- attempts -----------------------------------------------------------------------------

class Dispatch:
    """Claims due deliveries and records what became of each attempt."""

    def __init__(self, app: NotificationService) -> None:
        self.app = app

    def due(self, resume_all_sending: bool = False) -> list[Delivery]:
        """Pending or retrying deliveries that are due, and "sending" ones a stopped
        worker left behind (after the lease, or all of them when ``resume_all_sending``:
        at start in a single process)."""
        app = self.app
        items = app.timetable.due(app.clock(), (ATTEMPT, RECLAIM))
        if resume_all_sending:
            seen = {item.identity for item in items}
            items += [item for item in app.timetable.items(RECLAIM)
                      if item.key != app.worker_id and item.identity not in seen]
        ids = list(dict.fromkeys(str(item.subject) for item in items))
        found: dict[str, Delivery] = {}
        for start in range(0, len(ids), 500):  # the rows of the due ones, in one query
            chunk = ids[start:start + 500]
            found.update((str(d.id), d) for d, _ in app.index.select(
                Delivery, conditions=[(f"id IN ({','.join('?' * len(chunk))})", chunk)]))
        return [found[i] for i in ids if i in found]

    def seconds_to_next(self, at_most: float) -> float:
        """Until the next attempt (or reclaim) falls due, at most ``at_most``; that much
        too when one is due already (it is in flight: its end wakes the dispatcher)."""
        app = self.app
        upcoming = app.timetable.next_at((ATTEMPT, RECLAIM), catch_up=False)
        if upcoming is None:
            return at_most
        wait = (upcoming - app.clock()).total_seconds()
        return at_most if wait <= 0 else min(at_most, wait)

    def attempt(self, delivery_id: UUID, resume: bool = False) -> str | None:
        """Claim one delivery (optimistic concurrency), hand it over, record the outcome.
        Returns the new status, or None when another worker had it."""
        d: Delivery = self.app.repository.get(delivery_id)
        if not d.active or (d.status == "sending" and not resume):
            return None
        if d.status != "sending" and (d.next_attempt_at or d.created_at) > self.app.clock():
            return None  # found due before an attempt that was recorded since: not due now
        with context.bound(correlation=(d.correlation_ids or [None])[0],
                           causation=f"delivery:{d.id}", who="notification:dispatcher"):
            return self._attempt(d)

    def _gone(self, d: Delivery) -> str | None:
        """Why a delivery's target no longer wants it (deleted subscription, list or
        member), if so."""
        target = self.app.find(UUID(d.target_id))
        if d.target_kind == "hub":
            return None if target is not None and target.status == "active" else \
                "the hub subscription was deleted"
        if target is None or target.status != "active":
            return "the notification list was deleted"
        if target.member(str(d.member_id)) is None:
            return "the member was removed from the list"
        return None

    def _attempt(self, d: Delivery) -> str | None:
        app, config = self.app, self.app.config
        gone = self._gone(d)
        try:
            if gone is not None:
                d.cancel(app.clock(), gone)
            else:
                d.start_attempt(app.clock(), app.worker_id)
            app.save(d)
        except (IntegrityError, InvalidTransition):
            return None
        if gone is not None:
            return d.status
        try:
            detail = self._sender(d).send(self.outgoing(d))
        except SendError as exc:
            number = len(d.attempts)
            retry = None if exc.permanent else backoff_delay(
                number, config.backoff_base, config.backoff_cap)
            d.fail(app.clock(), str(exc)[:500], retry)
            log.warning("delivery %s attempt %d failed: %s", d.id, number, exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the delivery
            d.fail(app.clock(), f"{type(exc).__name__}: {exc}"[:500],
                   backoff_delay(len(d.attempts), config.backoff_base, config.backoff_cap))
            log.exception("delivery %s failed unexpectedly", d.id)
        else:
            d.succeed(app.clock(), detail)
        try:
            app.save(d)
        except IntegrityError:
            current: Delivery = app.repository.get(d.id)
            if current.status != "cancelled":
                raise
            log.info("delivery %s was cancelled during its attempt (%s)", d.id,
                     current.cancel_reason)
            return current.status
        return d.status

    def _sender(self, d: Delivery) -> Sender:
        sender = self.app.senders.get(d.channel)
        if sender is None:
            raise SendError(f"no sender for the {d.channel} channel", permanent=True)
        return sender

    def outgoing(self, d: Delivery) -> Outgoing:
        return Outgoing(delivery_id=str(d.id), channel=d.channel, address=d.address,
                        event_type=d.event_type, content=d.content, links=self._links(d),
                        secret=self._secret_for(d) if d.channel == "webhook" else None)

    def _links(self, d: Delivery) -> dict[str, str]:
        """Placeholder -> acknowledgement URL (or a customer's response link to a planned
        outage notice), derived now (never stored)."""
        app = self.app
        links = {}
        for link in d.ack_links:
            if link.get("kind") == RESPONSE_LINK:
                token = outage_links.issue(app.server_key, outage_links.Link(
                    link["plannedOutageId"], link["customerId"], int(link["round"]),
                    link["expiresAt"]))
                links[transport.ack_placeholder(link["linkId"])] = outage_links.url(
                    link["respondUrl"], token)
                continue
            token = transport.ack_link_token(app.server_key, str(d.id), link["linkId"],
                                             link["incidentId"], link["recipient"],
                                             link["expiresAt"])
            links[transport.ack_placeholder(link["linkId"])] = \
                f"{app.config.public_url}{ROOT}/acknowledge?token={token}"
        return links

    def _secret_for(self, d: Delivery) -> str:
        app = self.app
        if d.target_kind == "hub":
            sub = app.get_one(HubSubscription, UUID(d.target_id))
            return transport.derive_secret(app.server_key, "hub", str(sub.id), sub.salt)
        nlist = app.get_one(NotificationList, UUID(d.target_id))
        member = nlist.member(str(d.member_id))
        if member is None:
            raise SendError("the member was removed from the list", permanent=True)
        return transport.derive_secret(app.server_key, "member", member["id"],
                                       member.get("salt", ""))
