"""Bus entrypoint of outage-negotiation: the registry's groups, offerings, SLA types and
inventory in (replicas, what an outage's impact is resolved from); out, its planned
outages' changes (``PlannedOutageChangeEvent``, which monitoring and notification
consume: monitoring excludes or counts the window per the SLA type, notification
suppresses the alerts inside it) and the notices to their customers
(``PlannedOutageNoticeEvent``, which notification hands to each customer's lists and hub
subscribers).

A notice is published from the outage's own event (the outbox's exactly-once), to the
customers that event concerns, in parts of at most ``NOTICE_PART`` customers (an outage
over a large group reaches thousands). A notice that opens a round carries the facts of
each customer's response link (round, expiry) and where the response page is, never a
token: notification makes the link when it hands the message over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.outage_negotiation import ROOT, schemas
from services.outage_negotiation.application import OutageNegotiation
from services.outage_negotiation.domain import PlannedOutage, Replica
from shared import times
from shared.bus.inbox import Handler
from shared.bus.outbox import Publication, aggregate_after
from shared.bus.topology import SLA_EVENTS, Binding
from shared.durations import duration_text
from shared.ids import stable_id
from shared.replica import Replicated, replica_handlers

SERVICE = "outage-negotiation"

BINDINGS = (
    Binding(SLA_EVENTS, "threshold-registry.offering-group.*"),
    Binding(SLA_EVENTS, "threshold-registry.product-offering.*"),
    Binding(SLA_EVENTS, "threshold-registry.sla-type.*"),
    Binding(SLA_EVENTS, "threshold-registry.purchased-offering.*"),
)

# What each move is called on the bus (routing key and ``change``); a cancellation only
# once the outage had been agreed (before, no consumer heard of it).
CHANGES = {"Agreed": "agreed", "Rescheduled": "rescheduled", "Cancelled": "cancelled",
           "Started": "started", "Completed": "completed", "Extended": "extended"}


# The notice each move sends the customers (``kind``, the routing key's last segment).
NOTICES = {"NegotiationOpened": "negotiation", "Rescheduled": "rescheduled",
           "Agreed": "agreed", "Reminded": "reminder", "Started": "started",
           "Completed": "completed", "Extended": "extended", "Cancelled": "cancelled",
           "Rejected": "rejected", "WindowChosen": "negotiation"}
#: Kinds whose notice asks for an answer (a round opened): they carry response links.
ANSWERED = ("negotiation", "rescheduled")
NOTICE_PART = 500


def describer(app: OutageNegotiation) -> Any:
    """Each published move with the outage as it was after it, and the notice it sends
    the customers concerned."""

    def describe(event: DomainEventProtocol) -> list[Publication] | None:
        name = type(event).__name__
        if not isinstance(event, PlannedOutage.Event) or (
                name not in CHANGES and name not in NOTICES):
            return None
        # From the relay's page (its own events folded), not rebuilt from the store: an
        # outage over a large group is megabytes of state.
        outage = aggregate_after(app, event)
        published: list[Publication] = []
        change = CHANGES.get(name)
        if change is not None and (change != "cancelled" or outage.was_agreed):
            published.append(Publication(
                f"{SERVICE}.planned-outage.{change}", "PlannedOutageChangeEvent",
                {"change": change, "plannedOutage": schemas.MESSAGE.dump(outage)}))
        kind = NOTICES.get(name)
        if kind is not None:
            published += notices(app, outage, kind, vars(event))
        return published or None

    return describe


def recipients(outage: PlannedOutage, kind: str, state: dict[str, Any]
               ) -> list[dict[str, Any]]:
    """The customers a notice is for: every affected customer, but a reminder only those
    whose SLA types have its lead, and nothing for a move before any customer heard of
    the outage (a draft or a proposal cancelled or rejected)."""
    if outage.round == 0:
        return []
    if kind in ANSWERED:
        # A round on the planner's chosen window asks only the customers who had not
        # accepted it: the others' acceptance is carried into it (``WindowChosen``).
        return [c for c in outage.resolution if c["customerId"] not in outage.responses]
    if kind != "reminder":
        return list(outage.resolution)
    plan = next((r for r in getattr(outage, "reminders", ())
                 if r["lead"] == state["lead"]), None)
    if plan is None:
        return []
    wanted = set(plan["slaTypeIds"])
    return [c for c in outage.resolution
            if wanted & {t["id"] for t in c["slaTypes"]}
            or (plan["untyped"] and not c["slaTypes"])]


def notices(app: OutageNegotiation, outage: PlannedOutage, kind: str,
            state: dict[str, Any]) -> list[Publication]:
    """The notice of one move, in parts of at most ``NOTICE_PART`` customers."""
    customers = recipients(outage, kind, state)
    if not customers:
        return []
    notice_id = str(stable_id(SERVICE, "notice", outage.id, outage.version, kind))
    body: dict[str, Any] = {"id": notice_id, "kind": kind,
                            "plannedOutage": schemas.NOTICE_OUTAGE.dump(outage)}
    if kind in ANSWERED:
        body["respondUrl"] = f"{app.settings.public_url}{ROOT}/respond"
        body["responseLink"] = {"round": outage.round, "expiresAt": times.iso(
            outage.deadline or min(w["start"] for w in outage.windows))}
    if kind == "reminder":
        body["lead"] = duration_text(state["lead"])
    if kind == "extended":
        body["extension"] = schemas.ExtensionRecord().dump(outage.extensions[-1])
    parts = [customers[i:i + NOTICE_PART] for i in range(0, len(customers), NOTICE_PART)]
    return [Publication(f"{SERVICE}.notice.{kind}", "PlannedOutageNoticeEvent",
                        {"notice": {**body, "part": n + 1, "parts": len(parts),
                                    "recipients": recipients_of(part)}})
            for n, part in enumerate(parts)]


def recipients_of(customers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The recipients of a notice part as ``schemas.NoticeRecipient`` dumps them, made
    directly: the schema dumping each of 20,000 customers was most of describing an
    outage's notices (a unit test holds the two equal)."""
    return [{"customerId": str(c["customerId"]),
             "purchasedOfferingIds": [str(p) for p in c["purchasedOfferingIds"]],
             "slaTypeNames": sorted({t.get("name") or t["id"] for t in c["slaTypes"]})}
            for c in customers]


REPLICATED = {
    "OfferingGroupChangeEvent": Replicated("offeringGroup", "offeringGroup"),
    "ProductOfferingChangeEvent": Replicated("productOffering", "productOffering"),
    "SlaTypeChangeEvent": Replicated("slaType", "slaType"),
    "PurchasedOfferingChangeEvent": Replicated("purchasedOffering", "purchasedOffering"),
}


def handlers(app: OutageNegotiation) -> dict[str, Handler]:
    return replica_handlers(REPLICATED, app.receive_replica, Replica)
