"""Who gets what: the rules that match an alert to notification lists (topics, severity
floor, the customers and offering groups a list serves) and hub subscriptions (their
query), group it (Alertmanager-style groups and their flush times), silence it (a warning
inhibited by the open breach of its series, any alert suppressed during an agreed planned
outage), and the :class:`Router` that applies them to one alert and records what it
decided for every list and subscription.

The rules are plain functions, unit-tested without a store; the router reads the
application's lists, subscriptions, incidents and local copies, and returns what to save.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.notification import ROOT
from services.notification.domain import (
    FILTER_LABELS,
    SEVERITIES,
    AlertGroup,
    Decision,
    Delivery,
    HubSubscription,
    Incident,
    NotificationList,
    series_key,
    severity_rank,
)
from shared import times
from shared.outages import IN_FORCE

if TYPE_CHECKING:
    from services.notification.application import NotificationService

INCIDENT_EVENTS = ("ThresholdCrossingEvent", "BurnRateAlertEvent", "ServiceProblemChangeEvent")
CLEARING = ("cleared", "resolved")


# --- topics and filters -------------------------------------------------------------------

def _wanted(values: Iterable[str] | None, actual: Any) -> bool:
    values = [v for v in (values or []) if v]
    return not values or (actual is not None and str(actual) in values)


def topic_matches(topic: Mapping[str, Any], labels: Mapping[str, Any],
                  ignore_floor: bool = False) -> bool:
    """One topic of a list: event types (shell wildcards), a severity floor, and
    filters on offering group, offering and customer (empty filter: any)."""
    patterns = topic.get("eventTypes") or ["*"]
    if not any(fnmatch.fnmatchcase(str(labels.get("eventType", "")), p) for p in patterns):
        return False
    if not ignore_floor and severity_rank(str(labels.get("severity"))) < severity_rank(
            str(topic.get("minSeverity") or "info")):
        return False
    return (_wanted(topic.get("offeringGroupIds"), labels.get("offeringGroupId"))
            and _wanted(topic.get("offeringIds"), labels.get("offeringId"))
            and _wanted(topic.get("customerIds"), labels.get("customerId")))


def serves(customer_ids: Iterable[str], offering_group_ids: Iterable[str],
           labels: Mapping[str, Any]) -> bool:
    """Whether a list serves the customer or offering group an alert concerns (a list
    that names neither serves everything: an internal list such as the NOC)."""
    customers, groups = [c for c in customer_ids if c], [g for g in offering_group_ids if g]
    if not customers and not groups:
        return True
    return (bool(customers) and str(labels.get("customerId")) in customers) or (
        bool(groups) and str(labels.get("offeringGroupId")) in groups)


def list_matches(nlist: NotificationList, labels: Mapping[str, Any],
                 ignore_floor: bool = False) -> bool:
    if nlist.status != "active":
        return False
    if not serves(nlist.customer_ids, nlist.offering_group_ids, labels):
        return False
    return any(topic_matches(t, labels, ignore_floor) for t in nlist.topics)


def parse_hub_query(query: str | None) -> dict[str, list[str]]:
    """A TMF hub query ``eventType=A,B&offeringGroupId=G&severity=major`` as filters.

    ``severity`` is a floor; other labels match any of the listed values; ``eventType``
    values may use shell wildcards. Raises ``ValueError`` for a malformed query.
    """
    filters: dict[str, list[str]] = {}
    if not query:
        return filters
    for part in query.split("&"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if key.endswith(".eq"):
            key = key[:-3]
        if not sep or not value.strip():
            raise ValueError(f"{part!r} is not attribute=value")
        if key not in FILTER_LABELS:
            raise ValueError(f"cannot filter on {key!r}; use {', '.join(FILTER_LABELS)}")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if key == "severity" and any(v not in SEVERITIES for v in values):
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        filters.setdefault(key, []).extend(values)
    return filters


def hub_matches(filters: Mapping[str, list[str]], labels: Mapping[str, Any]) -> bool:
    for key, values in filters.items():
        actual = labels.get(key)
        if key == "severity":
            if severity_rank(str(actual)) < min(severity_rank(v) for v in values):
                return False
        elif key == "eventType":
            if not any(fnmatch.fnmatchcase(str(actual or ""), v) for v in values):
                return False
        elif actual is None or str(actual) not in values:
            return False
    return True


# --- grouping, inhibition, suppression, backoff ------------------------------------------

def group_key(group_by: Iterable[str], labels: Mapping[str, Any]) -> str:
    """The Alertmanager-style group an alert joins on one list."""
    return "|".join(f"{k}={labels.get(k) or ''}" for k in sorted(group_by)) or "all"


def next_flush(now: datetime, pending_flush_at: datetime | None,
               last_flush_at: datetime | None, group_wait: float,
               group_interval: float) -> tuple[datetime, str]:
    """When a group with a new alert is flushed, and the decision to record.

    - a flush is already planned: the alert rides along ("grouped");
    - the group never sent, or its last message is older than ``group_interval``: wait
      ``group_wait`` for companions ("queued");
    - otherwise it waits for the end of the group interval ("grouped").
    """
    if pending_flush_at is not None:
        return pending_flush_at, "grouped"
    if last_flush_at is None or now >= last_flush_at + timedelta(seconds=group_interval):
        return now + timedelta(seconds=group_wait), "queued"
    return last_flush_at + timedelta(seconds=group_interval), "grouped"


def inhibiting(labels: Mapping[str, Any], open_breaches: Iterable[Mapping[str, Any]]
               ) -> str | None:
    """The alert id of an open breach that silences this warning (same series), if any."""
    if labels.get("level") != "warning":
        return None
    key = series_key(labels)
    for breach in open_breaches:
        if series_key(breach) == key:
            return str(breach.get("alertId"))
    return None


def moment(value: Any) -> datetime | None:
    """A time another service sent (ISO-8601 text, zone-less read as UTC), or None."""
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return times.parse(str(value), assume_utc=True)
    except ValueError:
        return None


def suppressing(labels: Mapping[str, Any], at: datetime,
                outages: Iterable[Mapping[str, Any]]) -> str | None:
    """The agreed planned outage whose window and scope cover the alert, if any.

    An outage covers an alert when its window is in force (``shared.outages.IN_FORCE``:
    agreed, in progress or completed; ``rescheduled`` as an earlier release's messages
    said agreed), ``at`` falls in its window, and the alert's offering group is the
    outage's, or its purchased offering is affected.
    """
    for outage in outages:
        if outage.get("status") not in (*IN_FORCE, "rescheduled"):
            continue
        start, end = moment(outage.get("start")), moment(outage.get("end"))
        if start is None or end is None or not start <= at < end:
            continue
        group = outage.get("offeringGroupId")
        affected = outage.get("affectedPurchasedOfferingIds") or []
        if (group and str(labels.get("offeringGroupId")) == str(group)) or (
                labels.get("scopeType") == "purchasedOffering"
                and str(labels.get("scopeId")) in affected):
            return str(outage.get("id"))
    return None


def hub_filters(sub: HubSubscription) -> dict[str, list[str]]:
    """A subscription's query as filters (it was checked when it was registered)."""
    return parse_hub_query(sub.query)


def listener_name(event_type: str) -> str:
    """``ThresholdCrossingEvent`` -> ``thresholdCrossingEvent``: the TMF688 listener path
    segment a hub subscription's events are POSTed to."""
    return event_type[:1].lower() + event_type[1:]


# --- the router ---------------------------------------------------------------------------

class Router:
    """Applies the rules to one alert: the incident it opens or changes, a decision for
    every list and hub subscription it concerns, the groups it joins, the hub deliveries
    it causes."""

    def __init__(self, app: NotificationService) -> None:
        self.app = app

    def route(self, labels: dict[str, Any], envelope: dict[str, Any], now: datetime,
              extra: Iterable[Any] = ()) -> list[Any]:
        """Everything to save, in one save, for an alert (``extra``: what the caller
        records with it, such as the planned outage the alert announces)."""
        app = self.app
        labels = {**labels, **{k: v for k, v in app.scope_facts(
            labels.get("scopeType"), labels.get("scopeId")).items() if not labels.get(k)}}
        to_save: list[Any] = list(extra)
        incident: Incident | None = None
        alert_id = str(labels["alertId"])
        clearing = labels.get("level") in CLEARING
        if labels.get("eventType") in INCIDENT_EVENTS:
            incident_id = Incident.create_id(alert_id)
            incident = app.find(incident_id)
            labels["incidentId"] = str(incident_id)
            labels["detailsUrl"] = f"{app.config.public_url}{ROOT}/incident/{incident_id}"
            if incident is None:
                incident = Incident(alert_id=alert_id, labels=labels)
            else:
                incident.change(labels)
            to_save.append(incident)
        at = moment(labels.get("since")) or now
        suppressed = suppressing(labels, at, app.outages())
        if suppressed is None and labels.get("planned"):
            suppressed = "(window flagged as planned by monitoring)"
        open_breaches = [i.labels for i in app.open_breaches() if i.alert_id != alert_id]
        inhibited = inhibiting(labels, open_breaches)

        def decide(target_id: str, kind: str, decision: str, reason: str,
                   group: str | None = None) -> None:
            to_save.append(self.decision(labels, target_id, kind, decision, reason, now,
                                         group))

        for nlist in app.lists():
            if clearing:
                if incident is None or str(nlist.id) not in incident.notified_lists or \
                        not list_matches(nlist, labels, ignore_floor=True):
                    continue
            elif not list_matches(nlist, labels):
                continue
            if suppressed and not clearing:
                decide(str(nlist.id), "list", "suppressed",
                       f"during agreed planned outage {suppressed}")
                continue
            if inhibited and not clearing:
                decide(str(nlist.id), "list", "inhibited",
                       f"open breach {inhibited} of the same series silences this warning")
                continue
            key = group_key(nlist.group_by, labels)
            group_id = AlertGroup.create_id(str(nlist.id), key)
            group = app.find(group_id)
            if group is None:
                group = AlertGroup(list_id=str(nlist.id), key=key)
            flush_at, decision = next_flush(now, group.flush_at, group.last_flush_at,
                                            nlist.group_wait, nlist.group_interval)
            group.queue(labels, flush_at)
            to_save.append(group)
            decide(str(nlist.id), "list", decision,
                   f"group {key}: sent at {flush_at.isoformat()}", str(group_id))
            if flush_at <= now:  # no group wait: flushed now, in this save
                flushed, _ = app.scheduling.flushed(
                    group, nlist, "first" if group.flushes == 0 else "update", now,
                    lambda found: incident if incident is not None and
                    found == incident.id else app.find(found))
                to_save += [o for o in flushed if o is not group and o is not incident]
        for sub in app.subscriptions():
            if not hub_matches(hub_filters(sub), labels):
                continue
            if suppressed and not clearing:
                decide(str(sub.id), "hub", "suppressed",
                       f"during agreed planned outage {suppressed}")
                continue
            to_save.append(self.hub_delivery(sub, labels, envelope, now))
            decide(str(sub.id), "hub", "sent", "hub subscriptions are not grouped")
        return to_save

    @staticmethod
    def decision(labels: Mapping[str, Any], target_id: str, kind: str, decision: str,
                 reason: str, now: datetime, group_id: str | None = None) -> Decision:
        return Decision(event_id=str(labels.get("eventId")), target_id=target_id,
                        target_kind=kind, alert_id=labels.get("alertId"), decision=decision,
                        reason=reason, correlation_id=labels.get("correlationId"),
                        labels={k: labels.get(k) for k in (
                            "eventType", "level", "severity", "scopeType", "scopeId",
                            "offeringGroupId", "customerId", "parameter")},
                        at=now, group_id=group_id)

    def hub_delivery(self, sub: HubSubscription, labels: Mapping[str, Any],
                     envelope: dict[str, Any], now: datetime) -> Delivery:
        """The TMF688 envelope of the event, to the subscription's listener."""
        event_type = str(labels["eventType"])
        body = {k: envelope.get(k) for k in ("eventId", "eventTime", "eventType",
                                             "correlationId", "source") if envelope.get(k)}
        body["event"] = envelope.get("event") or {}
        body["eventType"] = event_type
        return self.app.messages.delivery(
            channel="webhook", address=f"{sub.callback}/listener/{listener_name(event_type)}",
            recipient=sub.callback, target_kind="hub", target_id=str(sub.id), member_id=None,
            alerts=[dict(labels)], event_type=event_type, reason="hub",
            content={"body": body}, now=now, key=f"hub:{sub.id}:{labels.get('eventId')}")
