"""Bus entrypoint of the notification service: the alerts it consumes (crossings, burn
alerts, planned outages, analysis's offering-wide problems), the notices of planned
outages to hand to customers (``notices.py``), the registry facts it keeps to route them
(which offering group and customer a purchased offering belongs to), and what it
publishes (delivery outcomes, escalations and acknowledgements)."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.notification import schemas
from services.notification.application import NotificationService
from services.notification.domain import Delivery, Incident, Replica, severity_of
from shared.bus.envelope import Envelope
from shared.bus.inbox import Handler
from shared.bus.outbox import Publication, aggregate_after
from shared.bus.topology import SLA_EVENTS, Binding
from shared.replica import Copy, Replicated, replica_handlers

SERVICE = "notification"

BINDINGS = (
    Binding(SLA_EVENTS, "monitoring.crossing.*"),
    Binding(SLA_EVENTS, "monitoring.burn-alert.*"),
    Binding(SLA_EVENTS, "outage-negotiation.planned-outage.*"),
    Binding(SLA_EVENTS, "outage-negotiation.notice.*"),
    Binding(SLA_EVENTS, "analysis.service-problem.*"),
    Binding(SLA_EVENTS, "threshold-registry.purchased-offering.*"),
    Binding(SLA_EVENTS, "threshold-registry.product-offering.*"),
)


# --- outbound -----------------------------------------------------------------------------
DELIVERY_CHANGES = {"Delivered": "delivered", "Failed": "failed", "Requeued": "requeued",
                    "Cancelled": "cancelled"}
INCIDENT_CHANGES = {"Escalated": "escalated", "Acknowledged": "acknowledged"}


def describer(app: NotificationService) -> Any:
    """Delivery outcomes and escalation changes; everything else stays inside."""

    def describe(event: DomainEventProtocol) -> Publication | None:
        name = type(event).__name__
        if isinstance(event, Delivery.Event) and name in DELIVERY_CHANGES:
            d = aggregate_after(app, event)
            change = DELIVERY_CHANGES[name]
            return Publication(f"{SERVICE}.delivery.{change}", "NotificationDeliveryChangeEvent",
                               {"change": change, "delivery": schemas.delivery_summary(d)})
        if isinstance(event, Incident.Event) and name in INCIDENT_CHANGES:
            incident = aggregate_after(app, event)
            change = INCIDENT_CHANGES[name]
            state = vars(event)
            body: dict[str, Any] = {"change": change,
                                    "incident": schemas.incident_summary(incident)}
            if change == "escalated":
                body["escalation"] = {"fromListId": state["from_list"],
                                      "toListId": state["to_list"], "tier": state["tier"]}
            return Publication(f"{SERVICE}.incident.{change}", "EscalationChangeEvent", body)
        return None

    return describe


# --- inbound ------------------------------------------------------------------------------
def _base(envelope: Envelope, alert: dict[str, Any]) -> dict[str, Any]:
    """The labels every alert has. ``since`` is the event time: the start of the window
    the event is about (not when monitoring or this service processed it); only an
    event that names no window falls back to the time it was raised."""
    scope = alert.get("scope") or {}
    window = alert.get("window") or {}
    return {
        "eventId": envelope.event_id,
        "eventType": envelope.event_type,
        "change": envelope.event.get("change"),
        "correlationId": envelope.correlation_id,
        "alertId": str(alert.get("id")),
        "regimeId": alert.get("regimeId"),
        "parameter": alert.get("parameter"),
        "scopeType": scope.get("type"),
        "scopeId": scope.get("id"),
        "standardId": alert.get("standardId"),
        "since": window.get("startDateTime") or alert.get("raisedAt") or envelope.event_time,
        "windowStart": window.get("startDateTime"), "windowEnd": window.get("endDateTime"),
        "raisedAt": alert.get("raisedAt"),
    }


def crossing_labels(envelope: Envelope) -> dict[str, Any]:
    crossing = envelope.event["crossing"]
    level = "cleared" if envelope.event.get("change") == "cleared" else crossing["level"]
    return {**_base(envelope, crossing), "level": level,
            "severity": severity_of(envelope.event_type, level),
            "measuredValue": crossing.get("measuredValue"),
            "conformanceTarget": crossing.get("conformanceTarget"),
            "thresholdTarget": crossing.get("thresholdTarget"),
            "comparator": crossing.get("comparator"),
            "planned": bool(crossing.get("planned"))}


def burn_labels(envelope: Envelope) -> dict[str, Any]:
    alert = envelope.event["burnAlert"]
    level = "resolved" if envelope.event.get("change") == "resolved" else alert["severity"]
    return {**_base(envelope, alert), "level": level,
            "severity": severity_of(envelope.event_type, level, alert.get("severity")),
            "burnRate": alert.get("burnRate"), "longWindow": alert.get("longWindow"),
            "shortWindow": alert.get("shortWindow"),
            "remainingBudget": alert.get("remainingBudget"),
            "projectedExhaustion": alert.get("projectedExhaustion")}


def handle_crossing(app: NotificationService, envelope: Envelope) -> None:
    app.route(crossing_labels(envelope), envelope.to_dict())


def handle_burn_alert(app: NotificationService, envelope: Envelope) -> None:
    app.route(burn_labels(envelope), envelope.to_dict())


def problem_labels(envelope: Envelope) -> dict[str, Any]:
    """An offering-wide problem as an alert of its offering: routed to the lists that
    serve the offering or its group (or whose topics name it), one incident per episode
    (opened or reopened: a new one; updates change it; the resolution clears it and
    reaches the lists its opening reached)."""
    problem = envelope.event["serviceProblem"]
    change = str(envelope.event.get("change"))
    resolved = change == "resolved"
    first = problem.get("firstAlert") or {}
    return {"eventId": envelope.event_id, "eventType": envelope.event_type,
            "change": change, "correlationId": envelope.correlation_id,
            "alertId": f"{problem['id']}:{problem.get('episode', 1)}",
            "level": "resolved" if resolved else change,
            "severity": severity_of(envelope.event_type, "resolved" if resolved else change),
            "scopeType": "productOffering", "scopeId": problem.get("productOfferingId"),
            "offeringId": problem.get("productOfferingId"),
            "offeringGroupId": problem.get("offeringGroupId"),
            "parameter": None, "summary": problem.get("description"),
            "affectedCount": problem.get("affectedNumberOfServices"),
            "since": first.get("dateTime") or envelope.event_time,
            "raisedAt": problem.get("timeRaised"), "detailsUrl": problem.get("href")}


def handle_service_problem(app: NotificationService, envelope: Envelope) -> None:
    app.route(problem_labels(envelope), envelope.to_dict())


# --- inbound: replicas -------------------------------------------------------------------
def _outage_facts(outage: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    """What suppression reads of a planned outage: its window, scope and status (a
    cancellation cancels it, whatever status it carries)."""
    change = str(envelope.event.get("change"))
    window = outage.get("window") or {}
    return {"status": "cancelled" if change == "cancelled" else str(outage.get("status")),
            "start": window.get("startDateTime"), "end": window.get("endDateTime"),
            "offeringGroupId": outage.get("offeringGroupId"),
            "affectedPurchasedOfferingIds": list(outage.get("affectedPurchasedOfferingIds")
                                                 or []),
            "reason": outage.get("reason"), "version": outage.get("version")}


def _purchased_facts(item: dict[str, Any], _: Envelope) -> dict[str, Any]:
    """What routing reads of a purchased offering: its group, offering and customer."""
    return {"offeringGroupId": item.get("offeringGroupId"),
            "offeringId": item.get("productOfferingId"), "customerId": item.get("customerId")}


def _offering_facts(offering: dict[str, Any], _: Envelope) -> dict[str, Any]:
    return {"offeringGroupId": offering.get("offeringGroupId"),
            "offeringId": str(offering["id"])}


REPLICATED = {
    "PurchasedOfferingChangeEvent": Replicated("purchasedOffering", "purchasedOffering",
                                               facts=_purchased_facts),
    "ProductOfferingChangeEvent": Replicated("productOffering", "productOffering",
                                             facts=_offering_facts),
    # Kept and routed as a notice to the lists (which read more than the replica):
    # handled alone, not in a group.
    "PlannedOutageChangeEvent": Replicated("plannedOutage", "plannedOutage",
                                           facts=_outage_facts, grouped=False),
}


def keep_replica(app: NotificationService, copy: Copy) -> None:
    """A registry fact is kept; a planned outage is kept and its notice routed, in one
    save."""
    record = app.receive_replica(copy)
    if copy.kind == "plannedOutage" and copy.envelope is not None:
        route_outage_notice(app, copy.envelope, record)
    else:
        app.save(record)


def route_outage_notice(app: NotificationService, envelope: Envelope, record: Any) -> None:
    """A planned outage's change is also a notice to the lists whose topics ask for it,
    routed like an alert and saved with the outage's replica (``record``)."""
    outage = envelope.event["plannedOutage"]
    change = str(envelope.event.get("change"))
    window = outage.get("window") or {}
    labels = {"eventId": envelope.event_id, "eventType": envelope.event_type,
              "change": change, "correlationId": envelope.correlation_id,
              "alertId": f"{outage['id']}:{outage.get('version')}:{change}",
              "level": change, "severity": "info", "scopeType": "offeringGroup",
              "scopeId": outage.get("offeringGroupId"),
              "offeringGroupId": outage.get("offeringGroupId"),
              "summary": outage.get("reason"), "windowStart": window.get("startDateTime"),
              "windowEnd": window.get("endDateTime"), "since": envelope.event_time,
              "detailsUrl": outage.get("href")}
    app.route(labels, envelope.to_dict(), extra=[record])


def handlers(app: NotificationService) -> dict[str, Handler]:
    return {
        "ThresholdCrossingEvent": lambda e: handle_crossing(app, e),
        "BurnRateAlertEvent": lambda e: handle_burn_alert(app, e),
        "ServiceProblemChangeEvent": lambda e: handle_service_problem(app, e),
        "PlannedOutageNoticeEvent": app.notices.handle,
        **replica_handlers(REPLICATED, lambda copy: keep_replica(app, copy), Replica),
    }
