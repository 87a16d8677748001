"""When work is due, and the work: an alert group is flushed when its wait or interval
ends (the first message, then updates), repeats its firing alerts every repeat interval
until they clear or are acknowledged, and an unacknowledged breach escalates to the next
list after that list's delay, tier by tier (at most ``MAX_TIER``).

The due times are in the aggregates' own events (a group's ``flush_at`` and
``repeat_at``, an incident's pending escalations); :func:`due_items` reads them off the
current state, for the due-time columns of the stored read model (``views.py``) and the
timetable that queries them (``shared.readmodel.StoredTimetable``), which a restarted
worker finds where it was. Each piece of work reloads its aggregate, checks that it is still
due and saves its outcome in one save, so two schedulers never both do it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from services.notification.domain import AlertGroup, Incident
from shared import context
from shared.scheduler import Due, DueOf

if TYPE_CHECKING:
    from services.notification.application import NotificationService

MAX_TIER = 5
GROUP_FLUSH, GROUP_REPEAT, ESCALATION = "group.flush", "group.repeat", "escalation"
KINDS = (GROUP_FLUSH, GROUP_REPEAT, ESCALATION)


def group_due(group: AlertGroup) -> Iterator[Due]:
    if group.flush_at is not None:
        yield Due(group.flush_at, GROUP_FLUSH, group.id)
    if group.repeat_at is not None:
        yield Due(group.repeat_at, GROUP_REPEAT, group.id)


def escalations_due(incident: Incident) -> Iterator[Due]:
    for from_list, pending in incident.escalations.items():
        yield Due(pending["dueAt"], ESCALATION, incident.id, from_list)


def due_items() -> dict[type, DueOf]:
    return {AlertGroup: group_due, Incident: escalations_due}


class Scheduling:
    """The scheduled work of the notification application, by kind of due item."""

    def __init__(self, app: NotificationService) -> None:
        self.app = app

    def work(self) -> dict[str, Any]:
        return {GROUP_FLUSH: self.group, GROUP_REPEAT: self.group,
                ESCALATION: lambda item: self.escalate(item.subject, item.key)}

    def group(self, item: Due) -> int:
        """A due flush first (the first message or an update), else a due repeat."""
        group = self.app.index.get(item.subject, AlertGroup)
        if group is None:
            return 0
        now = self.app.clock()
        if group.flush_at is not None and group.flush_at <= now:
            return self.flush(group.id, "first" if group.flushes == 0 else "update")
        if group.repeat_at is not None and group.repeat_at <= now:
            return self.flush(group.id, "repeat")
        return 0

    def flush(self, group_id: UUID, reason: str) -> int:
        app = self.app
        now = app.clock()
        group: AlertGroup = app.repository.get(group_id)
        due = group.flush_at if reason != "repeat" else group.repeat_at
        if due is None or due > now:
            return 0
        to_save, first = self.flushed(group, app.find(UUID(group.list_id)), reason, now,
                                      app.find)
        with context.bound(correlation=first.get("correlationId"),
                           causation=first.get("eventId"), who="notification:scheduler"):
            app.save(*to_save)
        app.wake.set()
        return 1

    def flushed(self, group: AlertGroup, nlist: Any, reason: str, now: Any,
                incident_of: Callable[[UUID], Incident | None]
                ) -> tuple[list[Any], dict[str, Any]]:
        """A group's due flush, as what to save — the group, a delivery per member of its
        list, the incidents it notified (``incident_of`` finds them: routing hands over
        the incident it is saving) — and the first alert of the message. Used by the
        scheduler when a flush falls due, and by routing when it is due at once (a list
        with no group wait: no hop through the timetable)."""
        app = self.app
        active = nlist is not None and nlist.status == "active"
        acked = app.acknowledged_alerts([*group.firing, *(a.get("alertId") for a in
                                                          group.pending)])
        if reason == "repeat":
            firing = [a for a in group.firing.values() if a.get("alertId") not in set(acked)]
            if not firing or not active:
                group.stop_repeating()
                return [group], {}
        alerts = group.flush(now, reason, nlist.repeat_interval if active else 0, acked)
        to_save: list[Any] = [group]
        if active and alerts:
            to_save += app.messages.to_list(nlist, alerts, reason, 0, now,
                                            f"group:{group.id}:{group.flushes}")
            for alert in alerts:
                if not alert.get("incidentId"):
                    continue
                incident = incident_of(UUID(alert["incidentId"]))
                if incident is None:
                    continue
                incident.mark_notified(str(nlist.id))
                escalation = nlist.escalation
                if escalation and incident.breached and reason != "repeat":
                    incident.schedule_escalation(
                        str(nlist.id), str(escalation["nextListId"]),
                        now + timedelta(seconds=float(escalation["delay"])), 1)
                to_save.append(incident)
        return to_save, (alerts[0] if alerts else {})

    def escalate(self, incident_id: UUID, from_list: str) -> int:
        app = self.app
        now = app.clock()
        incident: Incident = app.repository.get(incident_id)
        pending = incident.escalations.get(from_list)
        if pending is None or pending["dueAt"] > now:
            return 0
        incident.escalate(from_list, now)
        to_save: list[Any] = [incident]
        target = app.find(UUID(pending["toList"]))
        if target is not None and target.status == "active":
            tier = int(pending["tier"])
            to_save += app.messages.to_list(target, [incident.labels], "escalation", tier,
                                            now, f"escalation:{incident_id}:{from_list}:{tier}")
            incident.mark_notified(str(target.id))
            if target.escalation and tier < MAX_TIER:
                incident.schedule_escalation(
                    str(target.id), str(target.escalation["nextListId"]),
                    now + timedelta(seconds=float(target.escalation["delay"])), tier + 1)
        with context.bound(correlation=incident.labels.get("correlationId"),
                           causation=incident.labels.get("eventId"),
                           who="notification:scheduler"):
            app.save(*to_save)
        app.wake.set()
        return 1
