"""The notification service's aggregates and the vocabulary they share: notification
lists, hub subscriptions, the local copies of other services' facts (scopes, planned
outages), incidents (one upstream alert each), the decision taken about an event for a
list, alert groups, and one small aggregate per delivery.

Pure Python plus ``eventsourcing``: no web framework, no broker, no network. The rules
that decide who gets what are in ``routing.py``; when work is due, in ``scheduling.py``;
how a message is handed over and retried, in ``sending.py``.

Every aggregate stays small: a delivery is its own aggregate (a handful of events: created,
attempts, outcome), a decision about one event for one list is its own aggregate, an
incident (one upstream alert) ends when it clears. Only an alert group grows with the
alerts it batches; it is snapshotted (see the application).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared import ids, replica
from shared.changes import Changeable
from shared.errors import InvalidTransition

# --- constants ----------------------------------------------------------------------------

SEVERITIES = ("info", "warning", "minor", "major", "critical")
CHANNELS = ("email", "webhook")
LIST_KINDS = ("internal", "customer")
GROUP_LABELS = ("eventType", "parameter", "offeringGroupId", "offeringId", "customerId",
                "scopeId", "regimeId", "alertId")
FILTER_LABELS = ("eventType", "severity", "offeringGroupId", "offeringId", "customerId",
                 "scopeId", "parameter", "level", "change")
ESCALATING = ("major", "critical")
DELIVERY_ACTIVE = ("pending", "sending", "retrying")
DELIVERY_STATUSES = (*DELIVERY_ACTIVE, "delivered", "failed", "cancelled")
ACK_VIA = ("api", "link")

# What stands for an acknowledgement link in a delivery's stored content; the link
# itself is put in when the message is handed over, and never stored.
ACK_LINK_PLACEHOLDER = "urn:sla-suite:ack-link:"
WITHDRAWN_LINK = ACK_LINK_PLACEHOLDER + "withdrawn"
_STORED_LINK = re.compile(r"https?://[^\s\"'<>]*?/acknowledge\?token=[^\s\"'<>&]+")


def stable_id(kind: str, *parts: object) -> UUID:
    """A deterministic aggregate id, so the same fact always lands on the same aggregate."""
    return ids.stable_id("notification", kind, *parts)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


# --- alerts: what an upstream event means here -------------------------------------------

def severity_of(event_type: str, level: str | None, raw_severity: str | None = None) -> str:
    """One severity scale for every upstream event (pinned here, documented in README).

    crossing warning -> warning; breached -> major; noData (the series went silent: the
    most common outage sends nothing) -> major; cleared -> info;
    burn-rate page -> critical; ticket -> minor; planned outage notices -> info;
    an offering-wide problem opened, updated or reopened -> major, resolved -> info.
    """
    if event_type == "ThresholdCrossingEvent":
        return {"warning": "warning", "breached": "major", "noData": "major"}.get(
            level or "", "info")
    if event_type == "BurnRateAlertEvent":
        if level == "resolved":
            return "info"
        return {"page": "critical", "ticket": "minor"}.get(raw_severity or "", "minor")
    if event_type == "ServiceProblemChangeEvent":
        return "info" if level == "resolved" else "major"
    return "info"


def series_key(labels: Mapping[str, Any]) -> str:
    """What makes two alerts "the same thing": regime, parameter and scope."""
    return ":".join(str(labels.get(k) or "") for k in
                    ("eventType", "regimeId", "parameter", "scopeType", "scopeId"))


def redact_links(value: Any) -> Any:
    """``value`` with every acknowledgement link replaced by a withdrawn placeholder:
    what an old delivery record (that stored its links) shows when read."""
    if isinstance(value, str):
        return _STORED_LINK.sub(WITHDRAWN_LINK, value)
    if isinstance(value, dict):
        return {k: redact_links(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_links(v) for v in value]
    return value


# --- aggregates ---------------------------------------------------------------------------

class NotificationList(Changeable):
    """A notification list: who gets told about what, and how noisily."""

    @event("Created")
    def __init__(self, name: str, purpose: str | None, owner: str | None, kind: str,
                 customer_ids: list[str], offering_group_ids: list[str],
                 topics: list[dict[str, Any]], settings: dict[str, Any],
                 members: list[dict[str, Any]]) -> None:
        self.name, self.purpose, self.owner, self.kind = name, purpose, owner, kind
        self.customer_ids, self.offering_group_ids = list(customer_ids), list(offering_group_ids)
        self.topics = [dict(t) for t in topics]
        self.settings = dict(settings)
        self.members = [dict(m) for m in members]
        self.status = "active"

    @property
    def group_wait(self) -> float:
        return float(self.settings.get("groupWait", 30))

    @property
    def group_interval(self) -> float:
        return float(self.settings.get("groupInterval", 300))

    @property
    def repeat_interval(self) -> float:
        return float(self.settings.get("repeatInterval", 14400))

    @property
    def group_by(self) -> list[str]:
        return list(self.settings.get("groupBy") or ["offeringGroupId"])

    @property
    def escalation(self) -> dict[str, Any] | None:
        return self.settings.get("escalation")

    def member(self, member_id: str) -> dict[str, Any] | None:
        return next((m for m in self.members if m["id"] == member_id), None)

    def update(self, **changes: Any) -> None:
        if self.status != "active":
            raise InvalidTransition(f"notification list {self.id} is deleted")
        self._record_changes({k: v for k, v in changes.items() if getattr(self, k, None) != v})

    def add_member(self, member: dict[str, Any]) -> None:
        if self.status != "active":
            raise InvalidTransition(f"notification list {self.id} is deleted")
        self._member_added(member=dict(member))

    @event("MemberAdded")
    def _member_added(self, member: dict[str, Any]) -> None:
        self.members.append(member)

    def remove_member(self, member_id: str) -> None:
        if self.member(member_id) is None:
            raise KeyError(member_id)
        self._member_removed(member_id=member_id)

    @event("MemberRemoved")
    def _member_removed(self, member_id: str) -> None:
        self.members = [m for m in self.members if m["id"] != member_id]

    def delete(self) -> None:
        if self.status != "active":
            raise InvalidTransition(f"notification list {self.id} is already deleted")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.status = "deleted"


class HubSubscription(Aggregate):
    """A TMF hub registration: events matching ``query`` go to ``{callback}/listener/..``."""

    @event("Registered")
    def __init__(self, callback: str, query: str | None, salt: str) -> None:
        self.callback, self.query, self.salt = callback, query, salt
        self.status = "active"

    def remove(self) -> None:
        if self.status != "active":
            raise InvalidTransition(f"hub subscription {self.id} is already removed")
        self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.status = "removed"


class Replica(replica.Replica):
    """notification's copy of a resource another service owns — a purchased or product
    offering (its offering group, offering and customer, to route the alerts about it), a
    planned outage (to suppress the alerts it covers) — kept from their events by
    ``shared.replica`` (newer versions only, in any order)."""

    namespace = "notification"


class EarlierCopy(Aggregate):
    """Facts of another service's resource as an earlier release kept them, before the
    replica kit: read where no replica has replaced them yet, never written any more.

    Its change event is a class of its own (each subclass gets its copy, so stored
    ``ScopeEntry.Changed`` and ``OutageWindow.Changed`` events keep replaying)."""

    class Changed(Aggregate.Event):
        facts: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.facts = self.facts


class ScopeEntry(EarlierCopy):
    """What the registry told an earlier release about a purchased or product offering
    (``Replica`` keeps these facts now)."""

    @staticmethod
    def create_id(scope_type: str, scope_id: str) -> UUID:
        return stable_id("scope", scope_type, scope_id)

    @event("Recorded")
    def __init__(self, scope_type: str, scope_id: str, facts: dict[str, Any]) -> None:
        self.scope_type, self.scope_id, self.facts = scope_type, scope_id, dict(facts)


class OutageWindow(EarlierCopy):
    """A planned outage as an earlier release kept it (``Replica`` keeps planned outages
    now)."""

    @staticmethod
    def create_id(outage_id: str) -> UUID:
        return stable_id("outage", outage_id)

    @event("Recorded")
    def __init__(self, outage_id: str, facts: dict[str, Any]) -> None:
        self.outage_id, self.facts = outage_id, dict(facts)


class Incident(Aggregate):
    """One upstream alert (a crossing or a burn alert) while it lasts: its latest labels,
    acknowledgement, and the escalation clocks of the lists that were told about it."""

    @staticmethod
    def create_id(alert_id: str) -> UUID:
        return stable_id("incident", alert_id)

    @event("Opened")
    def __init__(self, alert_id: str, labels: dict[str, Any]) -> None:
        self.alert_id, self.labels = alert_id, dict(labels)
        self.open = labels.get("level") not in ("cleared", "resolved")
        self.acknowledged_by: str | None = None
        self.acknowledged_at: datetime | None = None
        self.acknowledged_via: str | None = None
        self.acknowledged_link: str | None = None
        self.escalations: dict[str, dict[str, Any]] = {}
        self.notified_lists: list[str] = []

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None

    @property
    def breached(self) -> bool:
        return self.open and self.labels.get("severity") in ESCALATING

    def change(self, labels: dict[str, Any]) -> None:
        self._changed(labels=dict(labels))

    @event("Changed")
    def _changed(self, labels: dict[str, Any]) -> None:
        self.labels = labels
        if labels.get("level") in ("cleared", "resolved"):
            self.open = False
            self.escalations = {}

    def acknowledge(self, by: str, at: datetime, via: str = "api",
                    link_id: str | None = None) -> bool:
        """False when already acknowledged (nothing recorded). ``by`` is the recipient of
        the link (``via="link"``, ``link_id`` its id) or the bearer token's subject."""
        if self.acknowledged_by is not None:
            return False
        self._acknowledged(by=by, at=at, via=via, link_id=link_id)
        return True

    class Acknowledged(Aggregate.Event):
        """Version 2 says how (``via``: api or link) and which link was used."""

        by: str
        at: datetime
        via: str
        link_id: str | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            by = str(state.get("by") or "")
            state["via"] = "link" if by.startswith("link:") else "api"
            state["link_id"] = None

    @event(Acknowledged)
    def _acknowledged(self, by: str, at: datetime, via: str, link_id: str | None) -> None:
        self.acknowledged_by, self.acknowledged_at = by, at
        self.acknowledged_via, self.acknowledged_link = via, link_id
        self.escalations = {}

    def mark_notified(self, list_id: str) -> None:
        if list_id not in self.notified_lists:
            self._notified(list_id=list_id)

    @event("Notified")
    def _notified(self, list_id: str) -> None:
        self.notified_lists = [*self.notified_lists, list_id]

    def schedule_escalation(self, from_list: str, to_list: str, due_at: datetime,
                            tier: int) -> None:
        if self.acknowledged_by is not None or not self.breached or from_list in self.escalations:
            return
        self._escalation_scheduled(from_list=from_list, to_list=to_list, due_at=due_at,
                                   tier=tier)

    @event("EscalationScheduled")
    def _escalation_scheduled(self, from_list: str, to_list: str, due_at: datetime,
                              tier: int) -> None:
        self.escalations = {**self.escalations, from_list: {
            "toList": to_list, "dueAt": due_at, "tier": tier}}

    def escalate(self, from_list: str, at: datetime) -> dict[str, Any]:
        pending = self.escalations.get(from_list)
        if pending is None:
            raise InvalidTransition(f"no escalation pending from list {from_list}")
        self._escalated(from_list=from_list, to_list=pending["toList"], tier=pending["tier"],
                        at=at)
        return pending

    @event("Escalated")
    def _escalated(self, from_list: str, to_list: str, tier: int, at: datetime) -> None:
        self.escalations = {k: v for k, v in self.escalations.items() if k != from_list}


class Decision(Aggregate):
    """Why one upstream event did or did not become a message on one list or hub
    subscription: queued, grouped, inhibited, suppressed, sent (hub), escalated."""

    @staticmethod
    def create_id(event_id: str, target_id: str) -> UUID:
        return stable_id("decision", event_id, target_id)

    @event("Taken")
    def __init__(self, event_id: str, target_id: str, target_kind: str, alert_id: str | None,
                 decision: str, reason: str, correlation_id: str | None,
                 labels: dict[str, Any], at: datetime, group_id: str | None = None) -> None:
        self.event_id, self.target_id, self.target_kind = event_id, target_id, target_kind
        self.alert_id, self.decision, self.reason = alert_id, decision, reason
        self.correlation_id, self.labels, self.at = correlation_id, dict(labels), at
        self.group_id = group_id

    @property
    def list_id(self) -> str | None:
        return self.target_id if self.target_kind == "list" else None

    @property
    def hub_id(self) -> str | None:
        return self.target_id if self.target_kind == "hub" else None


class AlertGroup(Aggregate):
    """Alertmanager-style batching on one list: alerts wait for the group's next flush."""

    @staticmethod
    def create_id(list_id: str, key: str) -> UUID:
        return stable_id("group", list_id, key)

    @event("Started")
    def __init__(self, list_id: str, key: str) -> None:
        self.list_id, self.key = list_id, key
        self.pending: list[dict[str, Any]] = []
        self.firing: dict[str, dict[str, Any]] = {}
        self.flush_at: datetime | None = None
        self.last_flush_at: datetime | None = None
        self.repeat_at: datetime | None = None
        self.flushes = 0

    def queue(self, alert: dict[str, Any], flush_at: datetime) -> None:
        self._queued(alert=dict(alert), flush_at=flush_at)

    @event("Queued")
    def _queued(self, alert: dict[str, Any], flush_at: datetime) -> None:
        inhibited = alert.get("level") == "breached"
        pending = [a for a in self.pending if not (
            a.get("alertId") == alert.get("alertId")
            or (inhibited and a.get("level") == "warning"
                and series_key(a) == series_key(alert)))]
        self.pending = [*pending, alert]
        self.flush_at = flush_at

    def flush(self, at: datetime, reason: str, repeat_interval: float,
              acknowledged: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The alerts of this message, and the group's state after it."""
        if reason == "repeat":
            acked = set(acknowledged)
            alerts = [a for a in self.firing.values() if a.get("alertId") not in acked]
        else:
            alerts = list(self.pending)
        self._flushed(at=at, reason=reason, alert_ids=[a.get("alertId") for a in alerts],
                      repeat_interval=repeat_interval)
        return alerts

    @event("Flushed")
    def _flushed(self, at: datetime, reason: str, alert_ids: list[str],
                 repeat_interval: float) -> None:
        firing = dict(self.firing)
        for alert in self.pending:
            if alert.get("level") in ("cleared", "resolved"):
                firing.pop(alert.get("alertId"), None)
            elif alert.get("severity") != "info":
                firing[alert.get("alertId")] = alert
        self.firing = firing
        self.pending = [] if reason != "repeat" else self.pending
        self.flush_at = None if reason != "repeat" else self.flush_at
        self.last_flush_at = at
        self.repeat_at = at + timedelta(seconds=repeat_interval) if firing else None
        self.flushes += 1

    def stop_repeating(self) -> None:
        if self.repeat_at is not None:
            self._repeat_stopped()

    @event("RepeatStopped")
    def _repeat_stopped(self) -> None:
        self.repeat_at = None


class Delivery(Aggregate):
    """One message to one recipient, and every attempt to hand it over."""

    @staticmethod
    def create_id(message_id: str, recipient: str) -> UUID:
        return stable_id("delivery", message_id, recipient)

    class Created(Aggregate.Created):
        """Version 2 keeps acknowledgement links out of ``content`` (placeholders) and
        lists them in ``ack_links`` (link id, incident, recipient, expiry, digest of the
        token); version 1 records, which held the links, are read redacted."""

        message_id: str
        channel: str
        address: str
        recipient: str
        target_kind: str
        target_id: str
        member_id: str | None
        event_ids: list[str]
        alert_ids: list[str]
        correlation_ids: list[str]
        event_type: str
        reason: str
        content: dict[str, Any]
        max_attempts: int
        due_at: datetime
        ack_links: list[dict[str, Any]]
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["content"] = redact_links(state.get("content") or {})
            state["ack_links"] = []

    @event(Created)
    def __init__(self, message_id: str, channel: str, address: str, recipient: str,
                 target_kind: str, target_id: str, member_id: str | None,
                 event_ids: list[str], alert_ids: list[str], correlation_ids: list[str],
                 event_type: str, reason: str, content: dict[str, Any], max_attempts: int,
                 due_at: datetime, ack_links: list[dict[str, Any]]) -> None:
        self.message_id, self.channel, self.address = message_id, channel, address
        self.recipient, self.target_kind, self.target_id = recipient, target_kind, target_id
        self.member_id = member_id
        self.event_ids, self.alert_ids = list(event_ids), list(alert_ids)
        self.correlation_ids = list(correlation_ids)
        self.event_type, self.reason, self.content = event_type, reason, dict(content)
        self.ack_links = [dict(link) for link in ack_links]
        self.max_attempts = max_attempts
        self.status = "pending"
        self.attempts: list[dict[str, Any]] = []
        self.next_attempt_at: datetime | None = due_at
        self.delivered_at: datetime | None = None
        self.last_error: str | None = None
        self.cancelled_at: datetime | None = None
        self.cancel_reason: str | None = None
        self.created_at = due_at

    def ack_link(self, link_id: str) -> dict[str, Any] | None:
        """An acknowledgement link of this delivery (not another kind of link it carries,
        such as a customer's response link to a planned outage notice)."""
        return next((link for link in self.ack_links if link.get("linkId") == link_id
                     and "incidentId" in link), None)

    @property
    def active(self) -> bool:
        return self.status in DELIVERY_ACTIVE

    @property
    def list_id(self) -> str | None:
        return self.target_id if self.target_kind == "list" else None

    @property
    def hub_id(self) -> str | None:
        return self.target_id if self.target_kind == "hub" else None

    @property
    def attempt_count(self) -> int:
        return len(self.attempts)

    @property
    def subject(self) -> str | None:
        return self.content.get("subject")

    def start_attempt(self, at: datetime, worker: str) -> int:
        if not self.active:
            raise InvalidTransition(f"delivery {self.id} is {self.status}")
        number = len(self.attempts) + 1
        self._attempt_started(number=number, at=at, worker=worker)
        return number

    @event("AttemptStarted")
    def _attempt_started(self, number: int, at: datetime, worker: str) -> None:
        self.attempts = [*self.attempts, {"number": number, "startedAt": at,
                                          "worker": worker, "outcome": None}]
        self.status = "sending"

    def _finish(self, outcome: str, at: datetime, detail: str | None) -> list[dict[str, Any]]:
        attempts = [dict(a) for a in self.attempts]
        if attempts:
            attempts[-1].update({"outcome": outcome, "finishedAt": at, "detail": detail})
        return attempts

    def succeed(self, at: datetime, detail: str | None) -> None:
        self._succeeded(at=at, detail=detail)

    @event("Delivered")
    def _succeeded(self, at: datetime, detail: str | None) -> None:
        self.attempts = self._finish("delivered", at, detail)
        self.status, self.delivered_at, self.next_attempt_at = "delivered", at, None

    def fail(self, at: datetime, error: str, retry_in: float | None) -> None:
        """A failed attempt: retried after ``retry_in`` seconds, or given up (dead letter)
        when the attempts are used up or ``retry_in`` is None (permanent failure)."""
        if retry_in is None or len(self.attempts) >= self.max_attempts:
            self._failed(at=at, error=error)
        else:
            self._attempt_failed(at=at, error=error,
                                 retry_at=at + timedelta(seconds=retry_in))

    @event("AttemptFailed")
    def _attempt_failed(self, at: datetime, error: str, retry_at: datetime) -> None:
        self.attempts = self._finish("failed", at, error)
        self.status, self.next_attempt_at, self.last_error = "retrying", retry_at, error

    @event("Failed")
    def _failed(self, at: datetime, error: str) -> None:
        self.attempts = self._finish("failed", at, error)
        self.status, self.next_attempt_at, self.last_error = "failed", None, error

    def cancel(self, at: datetime, reason: str) -> None:
        """No further attempts (its target was deleted); an attempt under way when this
        is recorded is marked cancelled, its outcome unknown to the history."""
        if not self.active:
            raise InvalidTransition(f"delivery {self.id} is {self.status}")
        self._cancelled(at=at, reason=reason)

    @event("Cancelled")
    def _cancelled(self, at: datetime, reason: str) -> None:
        if self.status == "sending":
            self.attempts = self._finish("cancelled", at, reason)
        self.status, self.next_attempt_at = "cancelled", None
        self.cancelled_at, self.cancel_reason = at, reason

    def retry(self, by: str, at: datetime) -> None:
        if self.status != "failed":
            raise InvalidTransition(f"only a failed delivery can be retried; this one is "
                                    f"{self.status}")
        self._requeued(by=by, at=at)

    @event("Requeued")
    def _requeued(self, by: str, at: datetime) -> None:
        self.status, self.next_attempt_at = "pending", at
        self.max_attempts = len(self.attempts) + max(1, self.max_attempts)
