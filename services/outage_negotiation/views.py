"""outage-negotiation's stored read model: its aggregates as rows of its own database
(``shared/readmodel.py``), with the columns its lists filter and sort by, the due times
its clock looks for, and the columns an outage's impact is resolved by.

What grows here is the inventory replica (every purchased offering of the estate): an
outage over a group finds its offerings, then their purchased offerings, by indexed
columns (``productOfferingId``, ``offeringGroupId``, ``customerId``), never by walking
every replica. Outages themselves are few by comparison; their starts and ends are found
by their due-time columns (``shared.readmodel.due_columns``).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from services.outage_negotiation.domain import (
    CustomerAnswer,
    CustomerBlackouts,
    PlannedOutage,
    Replica,
)
from services.outage_negotiation.scheduling import ANSWER_KINDS, KINDS, answer_due, outage_due
from shared.readmodel import Column, StoredIndex, Table, due_columns, tags

if TYPE_CHECKING:
    from services.outage_negotiation.application import OutageNegotiation

NAME = "outage-negotiation"


def _text(read: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    return lambda aggregate: None if (value := read(aggregate)) is None else str(value)


def _fact(name: str) -> Callable[[Any], str | None]:
    return _text(lambda replica: replica.resource.get(name))


def _window(edge: str) -> Callable[[PlannedOutage], Any]:
    def read(outage: PlannedOutage) -> Any:
        window = outage.agreed_window or (outage.windows[0] if outage.windows else None)
        return None if window is None else window[edge]

    return read


STATUS = Column("status", _text(attrgetter("status")))
REPLICA_KIND = Column("replicaKind", _text(attrgetter("kind")))
OFFERING = Column("productOfferingId", _fact("productOfferingId"))
GROUP = Column("offeringGroupId", _fact("offeringGroupId"))
CUSTOMER = Column("customerId", _fact("customerId"))
#: The customers an outage affects (as resolved), so a customer's calendar feed finds its
#: outages in SQL (``shared.readmodel.tagged``) instead of reading every outage.
CUSTOMERS = Column("customerIdTags", tags(lambda outage: [
    c["customerId"] for c in getattr(outage, "resolution", None) or ()]), indexed=False)
#: What an outage's impact reads of each purchased offering, without its whole state.
PURCHASED_FACTS = ("resourceId", "customerId", "productOfferingId", "offeringGroupId",
                   "slaTypeId", "status", "site")
ANSWER_OUTAGE = Column("plannedOutageId", _text(attrgetter("outage_id")))
(TAKE_DUE,) = due_columns(answer_due, ANSWER_KINDS)


def tables() -> tuple[Table, ...]:
    return (
        Table(PlannedOutage, (
            Column("version", attrgetter("version"), "number", indexed=False), STATUS,
            Column("impact", _text(attrgetter("impact"))),
            Column("planner", _text(attrgetter("planner"))),
            Column("offeringGroupId", _text(attrgetter("offering_group_id"))),
            Column("createdAt", attrgetter("created_at"), "time"),
            Column("startDateTime", _window("start"), "time"),
            Column("endDateTime", _window("end"), "time", indexed=False),
            Column("name", _text(attrgetter("name")), indexed=False),
            Column("reason", _text(attrgetter("reason")), indexed=False),
            CUSTOMERS,
            *due_columns(outage_due, KINDS))),
        Table(CustomerBlackouts, (Column("customerId", _text(attrgetter("customer_id"))),)),
        Table(CustomerAnswer, (ANSWER_OUTAGE,
                               Column("round", attrgetter("round"), "number", indexed=False),
                               TAKE_DUE)),
        Table(Replica, (REPLICA_KIND, OFFERING, GROUP, CUSTOMER,
                        Column("resourceId", _text(attrgetter("resource_id")), indexed=False),
                        Column("slaTypeId", _fact("slaTypeId"), indexed=False),
                        Column("status", _fact("status"), indexed=False),
                        Column("site", _fact("site"), indexed=False))),
    )


class OutageIndex(StoredIndex):
    """Every aggregate of the outage-negotiation log, stored (``slactl readmodel rebuild
    outage-negotiation`` rebuilds it)."""

    def __init__(self, app: OutageNegotiation) -> None:
        super().__init__(app, NAME, tables())
