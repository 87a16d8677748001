"""The notification application: commands over lists and hub subscriptions, the routing
of upstream alerts into decisions, groups and deliveries, and the scheduled work
(group flushes, repeats, escalations, delivery attempts) the worker's loops run.

Time comes from ``self.clock`` (injectable), so tests move it instead of sleeping. All
state is in events: a restarted worker picks up due work from the read model.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.notification import delivery as transport
from services.notification import rendering
from services.notification.domain import (
    CHANNELS,
    AlertGroup,
    Decision,
    Delivery,
    HubSubscription,
    Incident,
    NotificationList,
    OutageWindow,
    ScopeEntry,
    backoff_delay,
    group_key,
    hub_matches,
    inhibiting,
    list_matches,
    lower_camel,
    next_flush,
    suppressing,
)
from shared import context
from shared.errors import (
    InvalidTransition,
    InvalidValue,
    MissingReference,
    NotFound,
    RefusedAddress,
)
from shared.ids import stable_id
from shared.store import AggregateIndex, ServiceApplication

log = logging.getLogger(__name__)

ROOT = "/notification/v1"
MAX_TIER = 5
CONFLICT_RETRIES = 10


KINDS: dict[type, str] = {
    NotificationList: "notification list",
    HubSubscription: "hub subscription",
    Incident: "incident",
    Delivery: "delivery",
    Decision: "decision",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _with_links(text: str, links: Mapping[str, str]) -> str:
    for placeholder, url in links.items():
        text = text.replace(placeholder, url)
    return text


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _message_id(key: str) -> str:
    return str(stable_id("notification", "message", key))


class NotificationService(ServiceApplication):
    """Notification lists, hub subscriptions, incidents, decisions and deliveries."""

    name = "Notification"
    snapshotting_intervals = {AlertGroup: 50, NotificationList: 50}  # noqa: RUF012

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.index = AggregateIndex(self)
        self.clock: Callable[[], datetime] = _now
        self.config = transport.NotificationConfig()
        self.server_key = ""
        self.configured = False
        self.wake = threading.Event()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = _now()

    def configure(self, config: transport.NotificationConfig, server_key: str) -> None:
        self.config, self.server_key, self.configured = config, server_key, True

    # --- reading one -------------------------------------------------------------------
    def _get(self, kind: type, aggregate_id: UUID, expected_version: int | None = None) -> Any:
        return self.get(kind, aggregate_id, expected_version,
                        label=KINDS.get(kind, kind.__name__))

    def _find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def notification_list(self, list_id: UUID) -> NotificationList:
        nlist = self._get(NotificationList, list_id)
        if nlist.status != "active":
            raise NotFound(f"no notification list with id {list_id}")
        return nlist

    def subscription(self, subscription_id: UUID) -> HubSubscription:
        sub = self._get(HubSubscription, subscription_id)
        if sub.status != "active":
            raise NotFound(f"no hub subscription with id {subscription_id}")
        return sub

    def incident(self, incident_id: UUID) -> Incident:
        return self._get(Incident, incident_id)

    def delivery(self, delivery_id: UUID) -> Delivery:
        return self._get(Delivery, delivery_id)

    # --- lists -------------------------------------------------------------------------
    def lists(self) -> list[NotificationList]:
        return [n for n in self.index.all(NotificationList) if n.status == "active"]

    def subscriptions(self) -> list[HubSubscription]:
        return [s for s in self.index.all(HubSubscription) if s.status == "active"]

    def incidents(self) -> list[Incident]:
        return self.index.all(Incident)

    def deliveries(self) -> list[Delivery]:
        return self.index.all(Delivery)

    def decisions(self) -> list[Decision]:
        return self.index.all(Decision)

    def _check_escalation(self, settings: Mapping[str, Any], own_id: UUID | None) -> None:
        escalation = settings.get("escalation")
        if not escalation:
            return
        target = escalation.get("nextListId")
        try:
            target_id = UUID(str(target))
            nlist = self.notification_list(target_id)
        except (ValueError, NotFound):
            raise MissingReference({"escalation.nextListId": [
                f"{target} is not an active notification list"]}) from None
        if own_id is not None and nlist.id == own_id:
            raise InvalidValue({"escalation.nextListId": ["a list cannot escalate to itself"]})

    def _new_member(self, member: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """A member with its id and salt; for a webhook, its secret (shown once)."""
        if member["channel"] not in CHANNELS:
            raise InvalidValue({"channel": [f"one of {', '.join(CHANNELS)}"]})
        record = {"id": str(uuid.uuid4()), "name": member["name"],
                  "channel": member["channel"], "address": member["address"],
                  "locale": member.get("locale") or "en"}
        if member["channel"] == "webhook":
            try:
                transport.check_callback(member["address"], self.config)
            except transport.CallbackRefused as exc:
                raise RefusedAddress({"address": [str(exc)]}) from None
            record["salt"] = secrets.token_hex(8)
            return record, transport.derive_secret(self.server_key, "member", record["id"],
                                                   record["salt"])
        return record, None

    def create_list(self, name: str, purpose: str | None, owner: str | None, kind: str,
                    customer_ids: list[str], offering_group_ids: list[str],
                    topics: list[dict[str, Any]], settings: dict[str, Any],
                    members: list[dict[str, Any]]) -> tuple[NotificationList, dict[str, str]]:
        self._check_escalation(settings, None)
        records, secrets_once = [], {}
        for i, member in enumerate(members):
            try:
                record, secret = self._new_member(member)
            except InvalidValue as exc:
                raise type(exc)({f"members.{i}.{k}": v for k, v in exc.errors.items()}
                                ) from None
            records.append(record)
            if secret:
                secrets_once[record["id"]] = secret
        nlist = NotificationList(name=name, purpose=purpose, owner=owner, kind=kind,
                                 customer_ids=customer_ids,
                                 offering_group_ids=offering_group_ids, topics=topics,
                                 settings=settings, members=records)
        self.save(nlist)
        return nlist, secrets_once

    def update_list(self, list_id: UUID, changes: Mapping[str, Any],
                    expected_version: int | None = None) -> NotificationList:
        nlist = self._get(NotificationList, list_id, expected_version)
        if nlist.status != "active":
            raise NotFound(f"no notification list with id {list_id}")
        changes = dict(changes)
        if "settings" in changes:
            merged = {**nlist.settings, **changes["settings"]}
            changes["settings"] = {k: v for k, v in merged.items() if v is not None}
            self._check_escalation(changes["settings"], nlist.id)
        nlist.update(**changes)
        self.save(nlist)
        return nlist

    def delete_list(self, list_id: UUID, expected_version: int | None = None) -> None:
        """Delete a list and cancel its deliveries still to be sent (one save)."""
        for _ in range(CONFLICT_RETRIES):
            nlist = self._get(NotificationList, list_id, expected_version)
            if nlist.status != "active":
                raise NotFound(f"no notification list with id {list_id}")
            nlist.delete()
            try:
                self.save(nlist, *self._cancelled("list", str(list_id),
                                                  "the notification list was deleted"))
                return
            except IntegrityError:
                continue
        raise IntegrityError(f"notification list {list_id} kept changing")

    def _cancelled(self, target_kind: str, target_id: str, reason: str) -> list[Delivery]:
        """The target's active deliveries, each with a cancellation recorded (not saved):
        no further attempt will be made. Saved together with the deletion, so an attempt
        that starts meanwhile makes the save conflict and it is tried again."""
        now = self.clock()
        cancelled = []
        for known in self.deliveries():
            if known.target_kind != target_kind or known.target_id != target_id or \
                    not known.active:
                continue
            d: Delivery = self.repository.get(known.id)
            if d.active:
                d.cancel(now, reason)
                cancelled.append(d)
        return cancelled

    def add_member(self, list_id: UUID, member: Mapping[str, Any],
                   expected_version: int | None = None
                   ) -> tuple[NotificationList, dict[str, Any], str | None]:
        nlist = self._get(NotificationList, list_id, expected_version)
        if nlist.status != "active":
            raise NotFound(f"no notification list with id {list_id}")
        record, secret = self._new_member(member)
        nlist.add_member(record)
        self.save(nlist)
        return nlist, record, secret

    def remove_member(self, list_id: UUID, member_id: str,
                      expected_version: int | None = None) -> None:
        nlist = self._get(NotificationList, list_id, expected_version)
        try:
            nlist.remove_member(member_id)
        except KeyError:
            raise NotFound(f"no member with id {member_id}") from None
        self.save(nlist)

    # --- hub ---------------------------------------------------------------------------
    def register_hub(self, callback: str, query: str | None) -> tuple[HubSubscription, str]:
        try:
            transport.check_callback(callback, self.config)
        except transport.CallbackRefused as exc:
            raise RefusedAddress({"callback": [str(exc)]}) from None
        sub = HubSubscription(callback=callback.rstrip("/"), query=query,
                              salt=secrets.token_hex(8))
        try:
            sub.filters  # noqa: B018 - validates the query
        except ValueError as exc:
            raise InvalidValue({"query": [str(exc)]}) from None
        self.save(sub)
        return sub, transport.derive_secret(self.server_key, "hub", str(sub.id), sub.salt)

    def remove_hub(self, subscription_id: UUID) -> None:
        """Unsubscribe, and cancel the subscription's deliveries still to be sent (their
        retries included), in one save."""
        for _ in range(CONFLICT_RETRIES):
            sub = self.subscription(subscription_id)
            sub.remove()
            try:
                self.save(sub, *self._cancelled("hub", str(sub.id),
                                                "the hub subscription was deleted"))
                return
            except IntegrityError:
                continue
        raise IntegrityError(f"hub subscription {subscription_id} kept changing")

    # --- facts from other services ------------------------------------------------------
    def record_scope(self, scope_type: str, scope_id: str, facts: dict[str, Any]) -> None:
        entry = self._find(ScopeEntry.create_id(scope_type, scope_id))
        if entry is None:
            entry = ScopeEntry(scope_type=scope_type, scope_id=scope_id, facts=facts)
        else:
            entry.record(facts)
        self.save(entry)

    def scope_facts(self, scope_type: str | None, scope_id: str | None) -> dict[str, Any]:
        """Offering group, offering and customer of a scope, from the registry's events."""
        facts: dict[str, Any] = {}
        if scope_type == "offeringGroup":
            facts["offeringGroupId"] = scope_id
        elif scope_type == "productOffering":
            facts["offeringId"] = scope_id
        if scope_type and scope_id:
            entry = self.index.get(ScopeEntry.create_id(scope_type, scope_id))
            if entry is not None:
                facts.update({k: v for k, v in entry.facts.items() if v is not None})
        if facts.get("offeringId") and not facts.get("offeringGroupId"):
            offering = self.index.get(ScopeEntry.create_id("productOffering",
                                                           facts["offeringId"]))
            if offering is not None and offering.facts.get("offeringGroupId"):
                facts["offeringGroupId"] = offering.facts["offeringGroupId"]
        return facts

    def outages(self) -> list[dict[str, Any]]:
        return [{"id": o.outage_id, **o.facts} for o in self.index.all(OutageWindow)]

    # --- routing an alert ------------------------------------------------------------
    def route(self, labels: dict[str, Any], envelope: dict[str, Any],
              extra: list[Any] | None = None) -> list[Any]:
        """Decide, for every list and hub subscription, what this alert becomes; save
        it all in one save (inside an inbox handler: with the message's tracking record).
        Returns the saved aggregates."""
        now = self.clock()
        labels = {**labels, **{k: v for k, v in self.scope_facts(
            labels.get("scopeType"), labels.get("scopeId")).items() if not labels.get(k)}}
        to_save: list[Any] = list(extra or [])
        incident: Incident | None = None
        alert_id = str(labels["alertId"])
        clearing = labels.get("level") in ("cleared", "resolved")
        if labels.get("eventType") in ("ThresholdCrossingEvent", "BurnRateAlertEvent"):
            incident_id = Incident.create_id(alert_id)
            incident = self._find(incident_id)
            labels["incidentId"] = str(incident_id)
            labels["detailsUrl"] = f"{self.config.public_url}{ROOT}/incident/{incident_id}"
            if incident is None:
                incident = Incident(alert_id=alert_id, labels=labels)
            else:
                incident.change(labels)
            to_save.append(incident)
        at = _when(labels.get("since")) or now
        suppressed = suppressing(labels, at, self.outages())
        if suppressed is None and labels.get("planned"):
            suppressed = "(window flagged as planned by monitoring)"
        open_breaches = [i.labels for i in self.incidents()
                         if i.breached and i.alert_id != alert_id]
        inhibited = inhibiting(labels, open_breaches)

        def decide(target_id: str, kind: str, decision: str, reason: str,
                   group: str | None = None) -> None:
            to_save.append(self._decision(labels, target_id, kind, decision, reason, now,
                                          group))

        for nlist in self.lists():
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
            group = self._find(group_id)
            if group is None:
                group = AlertGroup(list_id=str(nlist.id), key=key)
            flush_at, decision = next_flush(now, group.flush_at, group.last_flush_at,
                                            nlist.group_wait, nlist.group_interval)
            group.queue(labels, flush_at)
            to_save.append(group)
            decide(str(nlist.id), "list", decision,
                   f"group {key}: sent at {flush_at.isoformat()}", str(group_id))
        for sub in self.subscriptions():
            if not hub_matches(sub.filters, labels):
                continue
            if suppressed and not clearing:
                decide(str(sub.id), "hub", "suppressed",
                       f"during agreed planned outage {suppressed}")
                continue
            to_save.append(self._hub_delivery(sub, labels, envelope, now))
            decide(str(sub.id), "hub", "sent", "hub subscriptions are not grouped")
        self.save(*to_save)
        self.wake.set()
        return to_save

    def _decision(self, labels: Mapping[str, Any], target_id: str, kind: str, decision: str,
                  reason: str, now: datetime, group_id: str | None = None) -> Decision:
        event_id = str(labels.get("eventId"))
        record = Decision(event_id=event_id, target_id=target_id, target_kind=kind,
                          alert_id=labels.get("alertId"), decision=decision, reason=reason,
                          correlation_id=labels.get("correlationId"),
                          labels={k: labels.get(k) for k in (
                              "eventType", "level", "severity", "scopeType", "scopeId",
                              "offeringGroupId", "customerId", "parameter")},
                          at=now, group_id=group_id)
        return record

    def _hub_delivery(self, sub: HubSubscription, labels: Mapping[str, Any],
                      envelope: dict[str, Any], now: datetime) -> Delivery:
        event_type = str(labels["eventType"])
        url = f"{sub.callback}/listener/{lower_camel(event_type)}"
        body = {k: envelope.get(k) for k in ("eventId", "eventTime", "eventType",
                                             "correlationId", "source") if envelope.get(k)}
        body["event"] = envelope.get("event") or {}
        body["eventType"] = event_type
        return self._new_delivery(
            channel="webhook", address=url, recipient=sub.callback, target_kind="hub",
            target_id=str(sub.id), member_id=None, alerts=[dict(labels)], event_type=event_type,
            reason="hub", content={"body": body}, now=now,
            key=f"hub:{sub.id}:{labels.get('eventId')}")

    def _new_delivery(self, *, channel: str, address: str, recipient: str, target_kind: str,
                      target_id: str, member_id: str | None, alerts: list[dict[str, Any]],
                      event_type: str, reason: str, content: dict[str, Any], now: datetime,
                      key: str, ack_links: list[dict[str, Any]] | None = None) -> Delivery:
        d = Delivery(message_id=_message_id(key), channel=channel, address=address,
                     recipient=recipient, target_kind=target_kind, target_id=target_id,
                     member_id=member_id,
                     event_ids=[str(a.get("eventId")) for a in alerts],
                     alert_ids=[str(a.get("alertId")) for a in alerts],
                     correlation_ids=sorted({str(a["correlationId"]) for a in alerts
                                             if a.get("correlationId")}),
                     event_type=event_type, reason=reason, content=content,
                     max_attempts=self.config.max_attempts, due_at=now,
                     ack_links=ack_links or [])
        return d

    def _messages(self, nlist: NotificationList, alerts: list[dict[str, Any]], reason: str,
                  tier: int, now: datetime, key: str) -> list[Delivery]:
        """One delivery per member of a list for a message about ``alerts``.

        A breach gets an acknowledgement link per recipient: the stored content holds a
        placeholder, the delivery the link's facts and the digest of its token; the link
        itself is put in when the message is handed over (:meth:`_with_links`)."""
        deliveries = []
        summary = {"id": str(nlist.id), "name": nlist.name}
        expires_at = now + timedelta(seconds=self.config.ack_ttl)
        for member in nlist.members:
            message_key = f"{key}:{member['id']}"
            delivery_id = str(Delivery.create_id(_message_id(message_key), member["address"]))
            recipient = f"{member['name']} <{member['address']}>"
            alerts_for, links = [], []
            for alert in alerts:
                alert = dict(alert)
                if alert.get("incidentId") and alert.get("severity") in ("major", "critical") \
                        and alert.get("level") not in ("cleared", "resolved"):
                    link_id = secrets.token_hex(8)
                    token = transport.ack_link_token(self.server_key, delivery_id, link_id,
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
            deliveries.append(self._new_delivery(
                channel=member["channel"], address=member["address"],
                recipient=member["address"], target_kind="list", target_id=str(nlist.id),
                member_id=member["id"], alerts=alerts, event_type=str(event_type),
                reason=reason, content=content, now=now, key=message_key, ack_links=links))
        return deliveries

    # --- acknowledgement -----------------------------------------------------------------
    def acknowledge(self, incident_id: UUID, by: str) -> tuple[Incident, bool]:
        """Acknowledged through the API: ``by`` is the bearer token's subject."""
        incident = self.incident(incident_id)
        changed = incident.acknowledge(by, self.clock(), via="api")
        if changed:
            self.save(incident)
        return incident, changed

    def ack_link_incident(self, token: str) -> Incident:
        """The incident an acknowledgement link would acknowledge, checked as
        :meth:`acknowledge_link` checks it, without acting: what the confirmation page
        shows before its recipient confirms."""
        link_id, link = self._valid_ack_link(token)
        incident = self.incident(UUID(link["incidentId"]))
        if incident.acknowledged_link == link_id:
            raise ValueError("this acknowledgement link was already used")
        return incident

    def _valid_ack_link(self, token: str) -> tuple[str, dict[str, Any]]:
        """The link must be one this service sent (the digest its delivery recorded), not
        expired, and its recipient still a member of the list."""
        delivery_id, link_id = transport.parse_ack_link_token(token)
        d = self._find(UUID(delivery_id))
        link = d.ack_link(link_id) if isinstance(d, Delivery) else None
        if link is None or not transport.digest_matches(token, link["digest"]):
            raise ValueError("the acknowledgement link is not valid")
        now = self.clock()
        if link["expiresAt"] <= now:
            raise ValueError("the acknowledgement link has expired")
        if d.target_kind == "list":
            nlist = self._find(UUID(d.target_id))
            if nlist is None or nlist.status != "active" or nlist.member(
                    str(d.member_id)) is None:
                raise ValueError("the recipient of this link is no longer on the list")
        return link_id, link

    def acknowledge_link(self, token: str) -> tuple[Incident, bool]:
        """Acknowledged through the link in a message, by its recipient: a valid link
        (:meth:`_valid_ack_link`) not used before."""
        link_id, link = self._valid_ack_link(token)
        now = self.clock()
        for _ in range(CONFLICT_RETRIES):  # two clicks at once: one acknowledges
            incident = self.incident(UUID(link["incidentId"]))
            if incident.acknowledged_link == link_id:
                raise ValueError("this acknowledgement link was already used")
            changed = incident.acknowledge(str(link["recipient"]), now, via="link",
                                           link_id=link_id)
            try:
                if changed:
                    self.save(incident)
                return incident, changed
            except IntegrityError:
                continue
        raise IntegrityError(f"incident {link['incidentId']} kept changing")

    # --- scheduled work ------------------------------------------------------------------
    def tick(self) -> int:
        """Flush due groups, send due repeats, escalate overdue breaches. Returns how many
        things it did. Conflicts with a concurrent writer are retried at the next tick."""
        now = self.clock()
        done = 0
        for group in self.index.all(AlertGroup):
            try:
                if group.flush_at is not None and group.flush_at <= now:
                    done += self._flush(group.id, "first" if group.flushes == 0 else "update")
                elif group.repeat_at is not None and group.repeat_at <= now:
                    done += self._flush(group.id, "repeat")
            except IntegrityError:
                continue
        for incident in self.incidents():
            for from_list, pending in list(incident.escalations.items()):
                if pending["dueAt"] <= now:
                    try:
                        done += self._escalate(incident.id, from_list)
                    except IntegrityError:
                        continue
        if done:
            self.wake.set()
        return done

    def _flush(self, group_id: UUID, reason: str) -> int:
        now = self.clock()
        group: AlertGroup = self.repository.get(group_id)
        due = group.flush_at if reason != "repeat" else group.repeat_at
        if due is None or due > now:
            return 0
        nlist = self._find(UUID(group.list_id))
        active = nlist is not None and nlist.status == "active"
        acked = [i.alert_id for i in self.incidents() if i.acknowledged_by]
        if reason == "repeat":
            firing = [a for a in group.firing.values() if a.get("alertId") not in set(acked)]
            if not firing or not active:
                group.stop_repeating()
                self.save(group)
                return 1
        alerts = group.flush(now, reason, nlist.repeat_interval if active else 0, acked)
        to_save: list[Any] = [group]
        if active and alerts:
            to_save += self._messages(nlist, alerts, reason, 0, now,
                                      f"group:{group_id}:{group.flushes}")
            for alert in alerts:
                if not alert.get("incidentId"):
                    continue
                incident = self._find(UUID(alert["incidentId"]))
                if incident is None:
                    continue
                incident.mark_notified(str(nlist.id))
                escalation = nlist.escalation
                if escalation and incident.breached and reason != "repeat":
                    incident.schedule_escalation(
                        str(nlist.id), str(escalation["nextListId"]),
                        now + timedelta(seconds=float(escalation["delay"])), 1)
                to_save.append(incident)
        first = alerts[0] if alerts else {}
        with context.bound(correlation=first.get("correlationId"),
                           causation=first.get("eventId"), who="notification:scheduler"):
            self.save(*to_save)
        return 1

    def _escalate(self, incident_id: UUID, from_list: str) -> int:
        now = self.clock()
        incident: Incident = self.repository.get(incident_id)
        pending = incident.escalations.get(from_list)
        if pending is None or pending["dueAt"] > now:
            return 0
        incident.escalate(from_list, now)
        to_save: list[Any] = [incident]
        target = self._find(UUID(pending["toList"]))
        if target is not None and target.status == "active":
            tier = int(pending["tier"])
            to_save += self._messages(target, [incident.labels], "escalation", tier, now,
                                      f"escalation:{incident_id}:{from_list}:{tier}")
            incident.mark_notified(str(target.id))
            if target.escalation and tier < MAX_TIER:
                incident.schedule_escalation(
                    str(target.id), str(target.escalation["nextListId"]),
                    now + timedelta(seconds=float(target.escalation["delay"])), tier + 1)
        with context.bound(correlation=incident.labels.get("correlationId"),
                           causation=incident.labels.get("eventId"),
                           who="notification:scheduler"):
            self.save(*to_save)
        return 1

    # --- deliveries ------------------------------------------------------------------
    def lease_seconds(self) -> float:
        return max(self.config.webhook_timeout, self.config.smtp_timeout) * 2 + 30

    def due_deliveries(self, resume_all_sending: bool = False) -> list[Delivery]:
        """Pending or retrying deliveries that are due, and "sending" ones a crashed worker
        left behind (at start in a single process, or after the lease otherwise)."""
        now = self.clock()
        lease = timedelta(seconds=self.lease_seconds())
        due = []
        for d in self.deliveries():
            if d.status in ("pending", "retrying"):
                if d.next_attempt_at is None or d.next_attempt_at <= now:
                    due.append(d)
            elif d.status == "sending" and d.attempts:
                started = d.attempts[-1]["startedAt"]
                worker = d.attempts[-1].get("worker")
                if (resume_all_sending and worker != self.worker_id) or started + lease <= now:
                    due.append(d)
        return due

    def attempt(self, delivery_id: UUID, resume: bool = False,
                session: Any = None) -> str | None:
        """Claim one delivery (optimistic concurrency), hand it over, record the outcome.
        Returns the new status, or None when another worker had it."""
        d: Delivery = self.repository.get(delivery_id)
        if not d.active or (d.status == "sending" and not resume):
            return None
        with context.bound(correlation=(d.correlation_ids or [None])[0],
                           causation=f"delivery:{d.id}", who="notification:dispatcher"):
            return self._attempt(d, session)

    def _gone(self, d: Delivery) -> str | None:
        """Why a delivery's target no longer wants it (deleted subscription, list or
        member), if so."""
        target = self._find(UUID(d.target_id))
        if d.target_kind == "hub":
            return None if target is not None and target.status == "active" else \
                "the hub subscription was deleted"
        if target is None or target.status != "active":
            return "the notification list was deleted"
        if target.member(str(d.member_id)) is None:
            return "the member was removed from the list"
        return None

    def _attempt(self, d: Delivery, session: Any) -> str | None:
        gone = self._gone(d)
        try:
            if gone is not None:
                d.cancel(self.clock(), gone)
            else:
                d.start_attempt(self.clock(), self.worker_id)
            self.save(d)
        except (IntegrityError, InvalidTransition):
            return None
        if gone is not None:
            return d.status
        try:
            detail = self._send(d, session)
        except transport.SendError as exc:
            number = len(d.attempts)
            retry = None if exc.permanent else backoff_delay(
                number, self.config.backoff_base, self.config.backoff_cap)
            d.fail(self.clock(), str(exc)[:500], retry)
            log.warning("delivery %s attempt %d failed: %s", d.id, number, exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the delivery
            d.fail(self.clock(), f"{type(exc).__name__}: {exc}"[:500],
                   backoff_delay(len(d.attempts), self.config.backoff_base,
                                 self.config.backoff_cap))
            log.exception("delivery %s failed unexpectedly", d.id)
        else:
            d.succeed(self.clock(), detail)
        try:
            self.save(d)
        except IntegrityError:
            current: Delivery = self.repository.get(d.id)
            if current.status != "cancelled":
                raise
            log.info("delivery %s was cancelled during its attempt (%s)", d.id,
                     current.cancel_reason)
            return current.status
        return d.status

    def _send(self, d: Delivery, session: Any = None) -> str:
        links = self._links(d)
        if d.channel == "email":
            content = {k: _with_links(v, links) if isinstance(v, str) else v
                       for k, v in d.content.items()}
            return transport.send_email(self.config, str(d.id), d.address, content)
        body = _with_links(orjson.dumps(d.content.get("body") or {}).decode(), links)
        return transport.send_webhook(self.config, str(d.id), d.address, body.encode(),
                                      self._secret_for(d), d.event_type, session)

    def _links(self, d: Delivery) -> dict[str, str]:
        """Placeholder -> acknowledgement URL, derived now (never stored)."""
        links = {}
        for link in d.ack_links:
            token = transport.ack_link_token(self.server_key, str(d.id), link["linkId"],
                                             link["incidentId"], link["recipient"],
                                             link["expiresAt"])
            links[transport.ack_placeholder(link["linkId"])] = \
                f"{self.config.public_url}{ROOT}/acknowledge?token={token}"
        return links

    def _secret_for(self, d: Delivery) -> str:
        if d.target_kind == "hub":
            sub = self._get(HubSubscription, UUID(d.target_id))
            return transport.derive_secret(self.server_key, "hub", str(sub.id), sub.salt)
        nlist = self._get(NotificationList, UUID(d.target_id))
        member = nlist.member(str(d.member_id))
        if member is None:
            raise transport.SendError("the member was removed from the list", permanent=True)
        return transport.derive_secret(self.server_key, "member", member["id"],
                                       member.get("salt", ""))

    def retry_delivery(self, delivery_id: UUID, by: str) -> Delivery:
        d = self.delivery(delivery_id)
        d.retry(by, self.clock())
        self.save(d)
        self.wake.set()
        return d
