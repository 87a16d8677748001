"""Resource representations (TMF style, camelCase) of the notification aggregates, used by
the HTTP API, the published events and the audit "as of" queries alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.notification.domain import (
    AlertGroup,
    Decision,
    Delivery,
    HubSubscription,
    Incident,
    NotificationList,
)

ROOT = "/notification/v1"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def member(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "name": m["name"], "channel": m["channel"],
            "address": m["address"], "locale": m.get("locale") or "en"}


def notification_list(n: NotificationList) -> dict[str, Any]:
    s = n.settings
    escalation = s.get("escalation")
    return {
        "id": str(n.id),
        "href": f"{ROOT}/notificationList/{n.id}",
        "@type": "NotificationList",
        "name": n.name,
        "purpose": n.purpose,
        "owner": n.owner,
        "kind": n.kind,
        "customerIds": list(n.customer_ids),
        "offeringGroupIds": list(n.offering_group_ids),
        "topics": [dict(t) for t in n.topics],
        "groupBy": n.group_by,
        "groupWait": n.group_wait,
        "groupInterval": n.group_interval,
        "repeatInterval": n.repeat_interval,
        "escalation": dict(escalation) if escalation else None,
        "members": [member(m) for m in n.members],
        "status": n.status,
        "version": n.version,
    }


def hub(s: HubSubscription) -> dict[str, Any]:
    return {"id": str(s.id), "href": f"{ROOT}/hub/{s.id}", "@type": "Hub",
            "callback": s.callback, "query": s.query, "status": s.status,
            "version": s.version}


def incident(i: Incident) -> dict[str, Any]:
    labels = i.labels
    return {
        "id": str(i.id),
        "href": f"{ROOT}/incident/{i.id}",
        "@type": "Incident",
        "alertId": i.alert_id,
        "eventType": labels.get("eventType"),
        "level": labels.get("level"),
        "severity": labels.get("severity"),
        "parameter": labels.get("parameter"),
        "scope": {"type": labels.get("scopeType"), "id": labels.get("scopeId")},
        "offeringGroupId": labels.get("offeringGroupId"),
        "customerId": labels.get("customerId"),
        "since": labels.get("since"),
        "open": i.open,
        "acknowledged": i.acknowledged_by is not None,
        "acknowledgedBy": i.acknowledged_by,
        "acknowledgedVia": i.acknowledged_via,
        "acknowledgedAt": _iso(i.acknowledged_at),
        "notifiedListIds": list(i.notified_lists),
        "pendingEscalations": [{"fromListId": k, "toListId": v["toList"], "tier": v["tier"],
                                "dueAt": _iso(v["dueAt"])} for k, v in i.escalations.items()],
        "correlationId": labels.get("correlationId"),
        "version": i.version,
    }


def incident_summary(i: Incident) -> dict[str, Any]:
    body = incident(i)
    return {k: body[k] for k in ("id", "href", "@type", "alertId", "eventType", "level",
                                 "severity", "open", "acknowledged", "acknowledgedBy")}


def attempt(a: dict[str, Any]) -> dict[str, Any]:
    return {"number": a["number"], "startedAt": _iso(a.get("startedAt")),
            "finishedAt": _iso(a.get("finishedAt")), "outcome": a.get("outcome"),
            "detail": a.get("detail")}


def delivery(d: Delivery, with_content: bool = True) -> dict[str, Any]:
    body = {
        "id": str(d.id),
        "href": f"{ROOT}/delivery/{d.id}",
        "@type": "Delivery",
        "messageId": d.message_id,
        "channel": d.channel,
        "address": d.address,
        "recipient": d.recipient,
        "targetKind": d.target_kind,
        "listId": d.target_id if d.target_kind == "list" else None,
        "hubId": d.target_id if d.target_kind == "hub" else None,
        "memberId": d.member_id,
        "eventType": d.event_type,
        "eventIds": list(d.event_ids),
        "alertIds": list(d.alert_ids),
        "correlationIds": list(d.correlation_ids),
        "reason": d.reason,
        "status": d.status,
        "attemptCount": len(d.attempts),
        "maxAttempts": d.max_attempts,
        "attempts": [attempt(a) for a in d.attempts],
        "createdAt": _iso(d.created_at),
        "nextAttemptAt": _iso(d.next_attempt_at),
        "deliveredAt": _iso(d.delivered_at),
        "lastError": d.last_error,
        "cancelledAt": _iso(d.cancelled_at),
        "cancelReason": d.cancel_reason,
        "subject": d.content.get("subject"),
        "version": d.version,
    }
    if with_content:
        body["content"] = dict(d.content)
    return body


def delivery_summary(d: Delivery) -> dict[str, Any]:
    body = delivery(d, with_content=False)
    return {k: body[k] for k in ("id", "href", "@type", "messageId", "channel", "recipient",
                                 "targetKind", "listId", "hubId", "eventType", "eventIds",
                                 "alertIds", "reason", "status", "attemptCount", "lastError")}


def decision(d: Decision) -> dict[str, Any]:
    return {"id": str(d.id), "href": f"{ROOT}/decision/{d.id}", "@type": "Decision",
            "eventId": d.event_id, "targetKind": d.target_kind,
            "listId": d.target_id if d.target_kind == "list" else None,
            "hubId": d.target_id if d.target_kind == "hub" else None,
            "alertId": d.alert_id, "decision": d.decision, "reason": d.reason,
            "correlationId": d.correlation_id, "groupId": d.group_id,
            "eventType": d.labels.get("eventType"), "severity": d.labels.get("severity"),
            "at": _iso(d.at), "version": d.version}


def group(g: AlertGroup) -> dict[str, Any]:
    return {"id": str(g.id), "@type": "AlertGroup", "listId": g.list_id, "key": g.key,
            "pending": [a.get("alertId") for a in g.pending], "firing": list(g.firing),
            "flushAt": _iso(g.flush_at), "lastFlushAt": _iso(g.last_flush_at),
            "repeatAt": _iso(g.repeat_at), "flushes": g.flushes, "version": g.version}


def represent(aggregate: Any) -> dict[str, Any]:
    """Any notification aggregate as its resource (for audit queries)."""
    for kind, fn in ((NotificationList, notification_list), (HubSubscription, hub),
                     (Incident, incident), (Delivery, delivery), (Decision, decision),
                     (AlertGroup, group)):
        if isinstance(aggregate, kind):
            return fn(aggregate)
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
