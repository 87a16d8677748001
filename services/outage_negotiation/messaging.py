"""Bus entrypoint of outage-negotiation: the registry's groups, offerings, SLA types and
inventory in (replicas, what an outage's impact is resolved from), and its planned
outages' changes out (``PlannedOutageChangeEvent``, which monitoring and notification
consume: monitoring excludes or counts the window per the SLA type, notification
suppresses the alerts inside it)."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.outage_negotiation import schemas
from services.outage_negotiation.application import OutageNegotiation
from services.outage_negotiation.domain import PlannedOutage, Replica
from shared.bus.inbox import Handler
from shared.bus.outbox import Publication
from shared.bus.topology import SLA_EVENTS, Binding
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


def describer(app: OutageNegotiation) -> Any:
    """Each published move with the outage as it was after it."""

    def describe(event: DomainEventProtocol) -> Publication | None:
        change = CHANGES.get(type(event).__name__)
        if change is None or not isinstance(event, PlannedOutage.Event):
            return None
        outage = app.repository.get(event.originator_id, version=event.originator_version)
        if change == "cancelled" and not outage.was_agreed:
            return None
        return Publication(f"{SERVICE}.planned-outage.{change}", "PlannedOutageChangeEvent",
                           {"change": change, "plannedOutage": schemas.MESSAGE.dump(outage)})

    return describe


REPLICATED = {
    "OfferingGroupChangeEvent": Replicated("offeringGroup", "offeringGroup"),
    "ProductOfferingChangeEvent": Replicated("productOffering", "productOffering"),
    "SlaTypeChangeEvent": Replicated("slaType", "slaType"),
    "PurchasedOfferingChangeEvent": Replicated("purchasedOffering", "purchasedOffering"),
}


def handlers(app: OutageNegotiation) -> dict[str, Handler]:
    return replica_handlers(REPLICATED, app.receive_replica, Replica)
