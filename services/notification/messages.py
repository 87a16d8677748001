"""What a message becomes: one delivery per recipient, its content rendered for the
recipient's channel and locale, and — for a breach — an acknowledgement link per
recipient whose facts (and the digest of its token) the delivery records while the stored
content holds a placeholder; the link itself is put in when the message is handed over
(``sending.py``)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.notification import delivery as transport
from services.notification import rendering
from services.notification.domain import ESCALATING, Delivery, NotificationList
from shared.ids import stable_id

if TYPE_CHECKING:
    from services.notification.application import NotificationService


def message_id(key: str) -> str:
    """The same message id for the same message (a group's n-th flush, an escalation
    tier, a hub event), however often the work that makes it runs."""
    return str(stable_id("notification", "message", key))


class Messages:
    """Composes deliveries with the application's settings (attempts, link lifetime) and
    key (link tokens)."""

    def __init__(self, app: NotificationService) -> None:
        self.app = app

    def delivery(self, *, channel: str, address: str, recipient: str, target_kind: str,
                 target_id: str, member_id: str | None, alerts: list[dict[str, Any]],
                 event_type: str, reason: str, content: dict[str, Any], now: datetime,
                 key: str, ack_links: list[dict[str, Any]] | None = None) -> Delivery:
        return Delivery(message_id=message_id(key), channel=channel, address=address,
                        recipient=recipient, target_kind=target_kind, target_id=target_id,
                        member_id=member_id,
                        event_ids=[str(a.get("eventId")) for a in alerts],
                        alert_ids=[str(a.get("alertId")) for a in alerts],
                        correlation_ids=sorted({str(a["correlationId"]) for a in alerts
                                                if a.get("correlationId")}),
                        event_type=event_type, reason=reason, content=content,
                        max_attempts=self.app.config.max_attempts, due_at=now,
                        ack_links=ack_links or [])

    def to_list(self, nlist: NotificationList, alerts: list[dict[str, Any]], reason: str,
                tier: int, now: datetime, key: str) -> list[Delivery]:
        """One delivery per member of a list for a message about ``alerts``."""
        config, server_key = self.app.config, self.app.server_key
        deliveries = []
        summary = {"id": str(nlist.id), "name": nlist.name}
        expires_at = now + timedelta(seconds=config.ack_ttl)
        for member in nlist.members:
            message_key = f"{key}:{member['id']}"
            delivery_id = str(Delivery.create_id(message_id(message_key), member["address"]))
            recipient = f"{member['name']} <{member['address']}>"
            alerts_for, links = [], []
            for alert in alerts:
                alert = dict(alert)
                if alert.get("incidentId") and alert.get("severity") in ESCALATING \
                        and alert.get("level") not in ("cleared", "resolved"):
                    link_id = secrets.token_hex(8)
                    token = transport.ack_link_token(server_key, delivery_id, link_id,
                                                     alert["incidentId"], recipient,
                                                     expires_at)
                    links.append({"linkId": link_id, "incidentId": alert["incidentId"],
                                  "recipient": recipient, "expiresAt": expires_at,
                                  "digest": transport.token_digest(token)})
                    alert["ackUrl"] = transport.ack_placeholder(link_id)
                alerts_for.append(alert)
            content = rendering.render(member["channel"], summary, alerts_for, reason, tier,
                                       member.get("locale"))
            event_type = alerts[0].get("eventType") if len(
                {a.get("eventType") for a in alerts}) == 1 else "Mixed"
            deliveries.append(self.delivery(
                channel=member["channel"], address=member["address"],
                recipient=member["address"], target_kind="list", target_id=str(nlist.id),
                member_id=member["id"], alerts=alerts, event_type=str(event_type),
                reason=reason, content=content, now=now, key=message_key, ack_links=links))
        return deliveries
