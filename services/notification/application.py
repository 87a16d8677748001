"""The notification application: the commands over lists, members and hub subscriptions,
acknowledgement, and the queries the API serves; what arrives from other services is
recorded and routed here (``routing.py`` decides who gets what), scheduled work is due in
``scheduling.py``, and messages are composed in ``messages.py`` and handed over through a
``Sender`` per channel in ``sending.py``.

Built with everything it uses (docs/architecture.md, "Adding a service"): its store's
environment, its settings, the suite's key, a clock (``shared.scheduler``; tests give a
settable one) and, optionally, the senders (tests give fakes). All state is in events;
queries and due work are answered by the stored read model kept from them (``views.py``),
so a restarted worker finds due work where it was, without replaying the log.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.notification import delivery as transport
from services.notification.domain import (
    CHANNELS,
    DELIVERY_ACTIVE,
    ESCALATING,
    AlertGroup,
    Decision,
    Delivery,
    HubSubscription,
    Incident,
    NotificationList,
    OutageWindow,
    Replica,
    ScopeEntry,
)
from services.notification.messages import Messages
from services.notification.notices import Notices
from services.notification.routing import Router, parse_hub_query
from services.notification.scheduling import Scheduling, due_items
from services.notification.sending import Dispatch, Sender, delivery_due, senders_for
from services.notification.sending import lease_seconds as _lease_seconds
from services.notification.views import (
    ALERT_ID,
    ALERT_IDS,
    CORRELATION_IDS,
    EVENT_IDS,
    SEVERITY,
    STATUS,
    NotificationIndex,
)
from shared import replica as replicas
from shared.errors import (
    InvalidValue,
    MissingReference,
    NotFound,
    RefusedAddress,
)
from shared.readmodel import Listing, StoredTimetable, tagged
from shared.replica import Copy
from shared.scheduler import Clock, DueLoop, SystemClock, Wakeup
from shared.store import ServiceApplication

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 10


KINDS: dict[type, str] = {
    NotificationList: "notification list",
    HubSubscription: "hub subscription",
    Incident: "incident",
    Delivery: "delivery",
    Decision: "decision",
}


class NotificationService(ServiceApplication):
    """Notification lists, hub subscriptions, incidents, decisions and deliveries."""

    name = "Notification"
    # Replicas too: one that changes often still loads in bounded time.
    snapshotting_intervals = {AlertGroup: 50, NotificationList: 50,  # noqa: RUF012
                              Replica: 50}

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 config: transport.NotificationConfig | None = None, server_key: str = "",
                 clock: Clock | None = None,
                 senders: Mapping[str, Sender] | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.config = config or transport.NotificationConfig()
        self.index = NotificationIndex(self, delivery_due(self))
        self.server_key = server_key
        self.senders: dict[str, Sender] = dict(senders or senders_for(self.config))
        self.wake = Wakeup()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.router = Router(self)
        self.messages = Messages(self)
        self.notices = Notices(self)
        self.scheduling = Scheduling(self)
        self.dispatch = Dispatch(self)
        self.timetable = StoredTimetable(self.index,
                                         {**due_items(), Delivery: delivery_due(self)})

    def read_models(self) -> list[NotificationIndex]:
        return [self.index]

    def close(self) -> None:
        self.index.close()
        super().close()

    def scheduler(self) -> DueLoop:
        """The loop that runs group flushes, repeats and escalations when they are due."""
        return DueLoop(self.timetable, self.clock, self.scheduling.work(), self.wake,
                       idle=self.config.tick)

    # --- reading one -------------------------------------------------------------------
    def get_one(self, kind: type, aggregate_id: UUID, expected_version: int | None = None
                ) -> Any:
        return self.get(kind, aggregate_id, expected_version,
                        label=KINDS.get(kind, kind.__name__))

    def find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def notification_list(self, list_id: UUID) -> NotificationList:
        nlist = self.get_one(NotificationList, list_id)
        if nlist.status != "active":
            raise NotFound(f"no notification list with id {list_id}")
        return nlist

    def subscription(self, subscription_id: UUID) -> HubSubscription:
        sub = self.get_one(HubSubscription, subscription_id)
        if sub.status != "active":
            raise NotFound(f"no hub subscription with id {subscription_id}")
        return sub

    def incident(self, incident_id: UUID) -> Incident:
        return self.get_one(Incident, incident_id)

    def delivery(self, delivery_id: UUID) -> Delivery:
        return self.get_one(Delivery, delivery_id)

    # --- lists (paged by the blueprint in the database) ------------------------------
    def lists(self) -> Listing:
        """The lists not deleted."""
        return self.index.listing(NotificationList, status="active")

    def subscriptions(self) -> Listing:
        return self.index.listing(HubSubscription, status="active")

    def incidents(self) -> Listing:
        return self.index.listing(Incident)

    def deliveries(self) -> Listing:
        return self.index.listing(Delivery)

    def history(self, event_id: str | None = None, correlation_id: str | None = None,
                alert_id: str | None = None) -> Listing:
        """The deliveries carrying an event, a correlation and an alert (those given)."""
        wanted = ((EVENT_IDS, event_id), (CORRELATION_IDS, correlation_id),
                  (ALERT_IDS, alert_id))
        return Listing(self.index, Delivery, conditions=[
            tagged(column, value) for column, value in wanted if value])

    def dead_letters(self) -> Listing:
        """Deliveries that failed for good."""
        return self.index.listing(Delivery, status="failed")

    def decisions(self) -> Listing:
        return self.index.listing(Decision)

    def open_breaches(self) -> list[Incident]:
        """The incidents still open at an escalating severity."""
        marks = ",".join("?" * len(ESCALATING))
        return [i for i, _ in self.index.select(
            Incident, {"open": True}, [(f"{SEVERITY.sql} IN ({marks})", ESCALATING)])
            if i.breached]

    def acknowledged_alerts(self, alert_ids: Iterable[str]) -> list[str]:
        """Which of these alerts' incidents are acknowledged."""
        wanted = sorted({str(a) for a in alert_ids if a})
        found: list[str] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found += [incident.alert_id for incident, _ in self.index.select(
                Incident, {"acknowledged": True},
                [(f"{ALERT_ID.sql} IN ({','.join('?' * len(chunk))})", chunk)])
                if incident.acknowledged_by]
        return found

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

    def create_list(self, name: str, topics: list[dict[str, Any]], *,
                    purpose: str | None = None, owner: str | None = None,
                    kind: str = "internal", customer_ids: Iterable[str] = (),
                    offering_group_ids: Iterable[str] = (),
                    settings: Mapping[str, Any] | None = None,
                    members: Iterable[Mapping[str, Any]] = ()
                    ) -> tuple[NotificationList, dict[str, str]]:
        """A list with its topics and members as stored (``schemas.NotificationListCreate``
        loads a request into these); webhook members' secrets, by member id, shown once."""
        settings = dict(settings or {})
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
                                 customer_ids=list(customer_ids),
                                 offering_group_ids=list(offering_group_ids), topics=topics,
                                 settings=settings, members=records)
        self.save(nlist)
        return nlist, secrets_once

    def update_list(self, list_id: UUID, changes: Mapping[str, Any],
                    expected_version: int | None = None) -> NotificationList:
        nlist = self.get_one(NotificationList, list_id, expected_version)
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
            nlist = self.get_one(NotificationList, list_id, expected_version)
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
        marks = ",".join("?" * len(DELIVERY_ACTIVE))
        for known, _ in self.index.select(
                Delivery, {"targetKind": target_kind, "targetId": target_id},
                [(f"{STATUS.sql} IN ({marks})", DELIVERY_ACTIVE)]):
            d: Delivery = self.repository.get(known.id)
            if d.active:
                d.cancel(now, reason)
                cancelled.append(d)
        return cancelled

    def add_member(self, list_id: UUID, member: Mapping[str, Any],
                   expected_version: int | None = None
                   ) -> tuple[NotificationList, dict[str, Any], str | None]:
        nlist = self.get_one(NotificationList, list_id, expected_version)
        if nlist.status != "active":
            raise NotFound(f"no notification list with id {list_id}")
        record, secret = self._new_member(member)
        nlist.add_member(record)
        self.save(nlist)
        return nlist, record, secret

    def remove_member(self, list_id: UUID, member_id: str,
                      expected_version: int | None = None) -> None:
        nlist = self.get_one(NotificationList, list_id, expected_version)
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
            parse_hub_query(query)
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
    def receive_replica(self, copy: Copy) -> Replica:
        """Keep another service's resource as its event told it (a newer version only);
        saved here unless the caller saves it with what it implies (a planned outage's
        notice: ``route``'s ``extra``)."""
        return replicas.receive(self.repository, Replica, copy)

    def _copy(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """The facts kept of a resource: its replica's, else what an earlier release kept
        (``ScopeEntry``)."""
        copy = self.index.get(Replica.create_id(kind, resource_id), Replica)
        if isinstance(copy, Replica):
            return copy.resource
        entry = self.index.get(ScopeEntry.create_id(kind, resource_id), ScopeEntry)
        return entry.facts if entry is not None else None

    def scope_facts(self, scope_type: str | None, scope_id: str | None) -> dict[str, Any]:
        """Offering group, offering and customer of a scope, from the registry's events."""
        facts: dict[str, Any] = {}
        if scope_type == "offeringGroup":
            facts["offeringGroupId"] = scope_id
        elif scope_type == "productOffering":
            facts["offeringId"] = scope_id
        if scope_type and scope_id:
            kept = self._copy(scope_type, scope_id) or {}
            facts.update({k: v for k, v in kept.items() if v is not None})
        if facts.get("offeringId") and not facts.get("offeringGroupId"):
            offering = self._copy("productOffering", str(facts["offeringId"])) or {}
            if offering.get("offeringGroupId"):
                facts["offeringGroupId"] = offering["offeringGroupId"]
        return facts

    def outages(self) -> list[dict[str, Any]]:
        """The planned outages heard of (their replicas; those an earlier release kept
        that no replica replaced)."""
        kept = {r.resource_id: r.resource
                for r in self.index.all(Replica, replicaKind="plannedOutage")}
        earlier = {o.outage_id: o.facts for o in self.index.all(OutageWindow)
                   if o.outage_id not in kept}
        return [{"id": i, **facts} for i, facts in {**earlier, **kept}.items()]

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
        d = self.find(UUID(delivery_id))
        link = d.ack_link(link_id) if isinstance(d, Delivery) else None
        if link is None or not transport.digest_matches(token, link["digest"]):
            raise ValueError("the acknowledgement link is not valid")
        now = self.clock()
        if link["expiresAt"] <= now:
            raise ValueError("the acknowledgement link has expired")
        if d.target_kind == "list":
            nlist = self.find(UUID(d.target_id))
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

    # --- routing an alert ------------------------------------------------------------
    def route(self, labels: dict[str, Any], envelope: dict[str, Any],
              extra: Iterable[Any] = ()) -> list[Any]:
        """Decide, for every list and hub subscription, what this alert becomes
        (``routing.py``); save it all in one save (inside an inbox handler: with the
        message's tracking record). Returns the saved aggregates."""
        with self.index.reading():  # one catch-up for the dozen reads of a routing
            to_save = self.router.route(labels, envelope, self.clock(), extra)
        self.save(*to_save)
        self.wake.set()
        return to_save

    # --- scheduled work and deliveries ------------------------------------------------
    def tick(self) -> int:
        """Run the flushes, repeats and escalations due now; how many were run."""
        return self.scheduler().run_due()

    def lease_seconds(self) -> float:
        return _lease_seconds(self.config)

    def due_deliveries(self, resume_all_sending: bool = False) -> list[Delivery]:
        return self.dispatch.due(resume_all_sending)

    def attempt(self, delivery_id: UUID, resume: bool = False) -> str | None:
        return self.dispatch.attempt(delivery_id, resume)

    def retry_delivery(self, delivery_id: UUID, by: str) -> Delivery:
        d = self.delivery(delivery_id)
        d.retry(by, self.clock())
        self.save(d)
        self.wake.set()
        return d
