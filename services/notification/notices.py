"""Customers' notices of planned outages (``PlannedOutageNoticeEvent`` from
outage-negotiation): each recipient customer's notice goes to the lists that serve that
customer by name and whose topics ask for the notice's event type, one message per
member, and to the hub subscriptions whose query matches it — never to a list that serves
everyone (the NOC's) or a whole offering group, which would get one message per customer.

A notice is not an alert: it is not grouped, inhibited or suppressed, and a topic's
severity floor does not hold it back (every customer notice is ``info``). Each message
names the notice, the customer and the list member, so a redelivered notice makes the same
messages, and a decision per list and subscription records what was done.

A notice that asks for an answer carries the facts of the customer's response link, not a
token: the message stores a placeholder and the facts (``links`` of the delivery), and the
link is signed when the message is handed over (``sending.py``, ``shared.outage_links``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.notification import delivery as transport
from services.notification import rendering
from services.notification.domain import Delivery, HubSubscription, NotificationList
from services.notification.routing import Router, hub_filters, hub_matches, topic_matches
from shared import times
from shared.bus.envelope import Envelope
from shared.store import topics_of

if TYPE_CHECKING:
    from services.notification.application import NotificationService

EVENT_TYPE = "PlannedOutageNoticeEvent"
#: What a delivery's link facts are called when they stand for a customer's response link.
RESPONSE_LINK = "outageResponse"


def labels_of(envelope: Envelope, notice: Mapping[str, Any],
              recipient: Mapping[str, Any]) -> dict[str, Any]:
    """What lists' topics and hub queries match one customer's notice on."""
    outage = notice["plannedOutage"]
    customer = str(recipient["customerId"])
    return {"eventId": f"{envelope.event_id}:{customer}", "eventType": EVENT_TYPE,
            "alertId": f"{notice['id']}:{customer}", "level": notice["kind"],
            "change": notice["kind"], "severity": "info", "customerId": customer,
            "offeringGroupId": outage.get("offeringGroupId"),
            "scopeType": "plannedOutage", "scopeId": outage.get("id"),
            "correlationId": envelope.correlation_id, "summary": outage.get("reason")}


def by_customer(lists: Iterable[NotificationList]) -> dict[str, list[NotificationList]]:
    """The active lists naming each customer."""
    found: dict[str, list[NotificationList]] = {}
    for nlist in lists:
        if nlist.status == "active":
            for customer in nlist.customer_ids:
                found.setdefault(customer, []).append(nlist)
    return found


class Notices:
    """Turns one notice (one part of it) into messages, saved together."""

    def __init__(self, app: NotificationService) -> None:
        self.app = app
        # (the log position they were made at, the lists by customer, the subscriptions)
        self._targets: tuple[int, dict[str, list[NotificationList]],
                             list[tuple[HubSubscription, Any]]] | None = None
        self._topics = topics_of([NotificationList, HubSubscription])

    def handle(self, envelope: Envelope) -> None:
        app = self.app
        notice = envelope.event["notice"]
        now = app.clock()
        lists, subscriptions = self.targets()
        to_save: list[Any] = []
        for recipient in notice["recipients"]:
            labels = labels_of(envelope, notice, recipient)
            for nlist in lists.get(labels["customerId"], ()):
                if not any(topic_matches(t, labels, ignore_floor=True) for t in nlist.topics):
                    continue
                to_save += self.to_list(nlist, notice, recipient, labels, now)
                to_save.append(Router.decision(labels, str(nlist.id), "list", "sent",
                                               f"notice {notice['kind']} to the customer's "
                                               f"list", now))
            for sub, filters in subscriptions:
                if hub_matches(filters, labels):
                    to_save.append(self.to_hub(sub, envelope, notice, recipient, labels, now))
                    to_save.append(Router.decision(labels, str(sub.id), "hub", "sent",
                                                   "hub subscriptions are not grouped", now))
        if to_save:
            app.save(*to_save)

    def targets(self) -> tuple[dict[str, list[NotificationList]],
                               list[tuple[HubSubscription, Any]]]:
        """The active lists naming each customer, and the active hub subscriptions with
        their filters: made from the read model once, and again only when a list or a
        subscription changed since — not for each notice part (an outage over 20,000
        customers comes in forty).

        Whether one changed is asked of the log itself (an event of a list or a
        subscription after the position they were made at: one indexed read of the few
        events since), not of the read model, which would first have to take in every
        message the parts before made (a hundred rows a part, re-stored before each
        part's own work). The log commits in order, so a change at or below the
        position read first is in the read model made after it, and one above it is
        seen at the next part."""
        app = self.app
        head = app.max_notification_id()
        known = self._targets
        if known is not None and (known[0] == head or not app.recorder.select_notifications(
                start=known[0], limit=1, inclusive_of_start=False, topics=self._topics,
                stop=head)):
            self._targets = (head, known[1], known[2])
            return known[1], known[2]
        lists = by_customer(app.lists())
        subscriptions = [(sub, hub_filters(sub)) for sub in app.subscriptions()]
        self._targets = (head, lists, subscriptions)
        return lists, subscriptions

    def to_list(self, nlist: NotificationList, notice: Mapping[str, Any],
                recipient: Mapping[str, Any], labels: Mapping[str, Any],
                now: datetime) -> list[Delivery]:
        """One message per member of the list, each with its own response link."""
        summary = {"id": str(nlist.id), "name": nlist.name}
        deliveries = []
        for member in nlist.members:
            links = self.response_links(notice, recipient)
            content = rendering.render_notice(
                member["channel"], summary, dict(notice), dict(recipient),
                transport.ack_placeholder(links[0]["linkId"]) if links else None,
                member.get("locale"))
            deliveries.append(self.app.messages.delivery(
                channel=member["channel"], address=member["address"],
                recipient=member["address"], target_kind="list", target_id=str(nlist.id),
                member_id=member["id"], alerts=[dict(labels)], event_type=EVENT_TYPE,
                reason="notice", content=content, now=now,
                key=f"notice:{notice['id']}:{recipient['customerId']}:{nlist.id}:"
                    f"{member['id']}", ack_links=links))
        return deliveries

    def to_hub(self, sub: HubSubscription, envelope: Envelope, notice: Mapping[str, Any],
               recipient: Mapping[str, Any], labels: Mapping[str, Any],
               now: datetime) -> Delivery:
        """The TMF688 envelope of the customer's part of the notice, to the listener."""
        links = self.response_links(notice, recipient)
        event = {"notice": {**{k: v for k, v in notice.items()
                               if k not in ("recipients", "part", "parts")},
                            "recipient": dict(recipient)}}
        if links:
            event["notice"]["respondUrl"] = transport.ack_placeholder(links[0]["linkId"])
        body = {"eventId": labels["eventId"], "eventTime": envelope.event_time,
                "eventType": EVENT_TYPE, "correlationId": envelope.correlation_id,
                "source": envelope.source, "event": event}
        return self.app.messages.delivery(
            channel="webhook", address=f"{sub.callback}/listener/plannedOutageNoticeEvent",
            recipient=sub.callback, target_kind="hub", target_id=str(sub.id),
            member_id=None, alerts=[dict(labels)], event_type=EVENT_TYPE, reason="hub",
            content={"body": {k: v for k, v in body.items() if v is not None}}, now=now,
            key=f"hub:{sub.id}:{labels['eventId']}", ack_links=links)

    @staticmethod
    def response_links(notice: Mapping[str, Any], recipient: Mapping[str, Any]
                       ) -> list[dict[str, Any]]:
        """The facts of the customer's response link, when the notice asks for an answer
        (its placeholder names a fresh link id; the token is made at hand-over)."""
        link = notice.get("responseLink")
        if not link or not notice.get("respondUrl"):
            return []
        return [{"linkId": secrets.token_hex(8), "kind": RESPONSE_LINK,
                 "plannedOutageId": str(notice["plannedOutage"]["id"]),
                 "customerId": str(recipient["customerId"]), "round": int(link["round"]),
                 "expiresAt": times.parse(str(link["expiresAt"]), assume_utc=True),
                 "respondUrl": str(notice["respondUrl"])}]

