"""notification's stored read model: its aggregates as rows of its own database
(``shared/readmodel.py``), with the columns its lists filter and sort by and the due
times its scheduler and dispatcher look for.

What grows here is the history — deliveries, decisions, incidents — so those are paged,
filtered and sorted in the database; a delivery's event, alert and correlation ids are
kept as tags (``shared.readmodel.tags``), so the history by event, alert or correlation
is found there too. Group flushes and repeats, escalations and delivery attempts are
found by their due-time columns (``shared.readmodel.due_columns``): what is due is an
indexed range, not a walk over every aggregate, and no process holds them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from services.notification.domain import (
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
from services.notification.scheduling import (
    ESCALATION,
    GROUP_FLUSH,
    GROUP_REPEAT,
    escalations_due,
    group_due,
)
from services.notification.sending import ATTEMPT, RECLAIM
from shared.readmodel import Column, StoredIndex, Table, due_columns, tags

if TYPE_CHECKING:
    from services.notification.application import NotificationService

NAME = "notification"


def _text(read: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    return lambda aggregate: None if (value := read(aggregate)) is None else str(value)


def _attr(name: str) -> Callable[[Any], str | None]:
    return _text(attrgetter(name))


def _label(name: str) -> Callable[[Any], str | None]:
    return _text(lambda aggregate: aggregate.labels.get(name))


def shown(*columns: Column) -> tuple[Column, ...]:
    """Columns lists may filter and sort by but seldom do: kept without an index (each
    index is work on every write of the row)."""
    return tuple(replace(column, indexed=False) for column in columns)


ID = Column("id", _text(attrgetter("id")), indexed=False)
VERSION = Column("version", attrgetter("version"), "number", indexed=False)
STATUS = Column("status", _attr("status"))
#: A delivery's target, whichever its kind (lists and hubs by one column).
TARGET = Column("targetId", _attr("target_id"))
# Tags are found with LIKE '%…%', which no index serves.
EVENT_IDS = Column("eventIdTags", tags(attrgetter("event_ids")), indexed=False)
ALERT_IDS = Column("alertIdTags", tags(attrgetter("alert_ids")), indexed=False)
CORRELATION_IDS = Column("correlationIdTags", tags(attrgetter("correlation_ids")),
                         indexed=False)
ALERT_ID = Column("alertId", _attr("alert_id"))
SEVERITY = Column("severity", _label("severity"), indexed=False)


def tables(delivery_due: Callable[[Delivery], Iterable[Any]]) -> tuple[Table, ...]:
    """The tables, with the delivery's due items as the application reckons them."""
    return (
        Table(NotificationList, (
            ID, VERSION, STATUS, Column("name", _attr("name")),
            Column("owner", _attr("owner")), Column("kind", _attr("kind")),
            *shown(Column("purpose", _attr("purpose")),
                   Column("groupWait", attrgetter("group_wait"), "number"),
                   Column("groupInterval", attrgetter("group_interval"), "number"),
                   Column("repeatInterval", attrgetter("repeat_interval"), "number")))),
        Table(HubSubscription, (ID, VERSION, STATUS, *shown(
            Column("callback", _attr("callback")), Column("query", _attr("query"))))),
        Table(Incident, (
            ID, VERSION, ALERT_ID, SEVERITY,
            Column("level", _label("level")),
            Column("offeringGroupId", _label("offeringGroupId")),
            Column("open", attrgetter("open"), "bool"),
            Column("acknowledged", attrgetter("acknowledged"), "bool"),
            *shown(Column("eventType", _label("eventType")),
                   Column("parameter", _label("parameter")),
                   Column("customerId", _label("customerId")),
                   Column("correlationId", _label("correlationId")),
                   Column("acknowledgedBy", _attr("acknowledged_by")),
                   Column("acknowledgedVia", _attr("acknowledged_via")),
                   Column("acknowledgedAt", attrgetter("acknowledged_at"), "time")),
            *due_columns(escalations_due, (ESCALATION,)))),
        Table(Delivery, (
            ID, VERSION, STATUS, TARGET, EVENT_IDS, ALERT_IDS, CORRELATION_IDS,
            Column("listId", _attr("list_id")), Column("hubId", _attr("hub_id")),
            Column("recipient", _attr("recipient")),
            Column("eventType", _attr("event_type")),
            Column("createdAt", attrgetter("created_at"), "time"),
            *shown(Column("messageId", _attr("message_id")),
                   Column("channel", _attr("channel")), Column("address", _attr("address")),
                   Column("targetKind", _attr("target_kind")),
                   Column("memberId", _attr("member_id")), Column("reason", _attr("reason")),
                   Column("attemptCount", attrgetter("attempt_count"), "number"),
                   Column("maxAttempts", attrgetter("max_attempts"), "number"),
                   Column("nextAttemptAt", attrgetter("next_attempt_at"), "time"),
                   Column("deliveredAt", attrgetter("delivered_at"), "time"),
                   Column("cancelledAt", attrgetter("cancelled_at"), "time"),
                   Column("lastError", _attr("last_error")),
                   Column("cancelReason", _attr("cancel_reason")),
                   Column("subject", _attr("subject"))),
            *due_columns(delivery_due, (ATTEMPT, RECLAIM)))),
        Table(Decision, (
            ID, VERSION, ALERT_ID, Column("eventId", _attr("event_id")),
            Column("listId", _attr("list_id")), Column("hubId", _attr("hub_id")),
            Column("decision", _attr("decision")), Column("at", attrgetter("at"), "time"),
            *shown(Column("targetKind", _attr("target_kind")),
                   Column("reason", _attr("reason")),
                   Column("correlationId", _attr("correlation_id")),
                   Column("groupId", _attr("group_id")),
                   Column("eventType", _label("eventType")), SEVERITY))),
        Table(AlertGroup, (*shown(Column("listId", _attr("list_id"))),
                           *due_columns(group_due, (GROUP_FLUSH, GROUP_REPEAT)))),
        Table(Replica, (Column("replicaKind", _attr("kind")),)),
        Table(ScopeEntry),
        Table(OutageWindow),
    )


class NotificationIndex(StoredIndex):
    """Every aggregate of the notification log, stored (``slactl readmodel rebuild
    notification`` rebuilds it)."""

    def __init__(self, app: NotificationService,
                 delivery_due: Callable[[Delivery], Iterable[Any]]) -> None:
        super().__init__(app, NAME, tables(delivery_due))
