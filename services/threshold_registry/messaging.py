"""Bus entrypoint of the threshold-registry: what it publishes for each of its events,
and the handlers of what it consumes (fulfilment products, analysis results, and
monitoring's regimes, so it knows which regimes watch a group)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import DomainEventProtocol

from services.threshold_registry import schemas as s
from services.threshold_registry.application import ThresholdRegistry
from services.threshold_registry.domain import (
    OfferingGroup,
    Placed,
    ProductOffering,
    PurchasedOffering,
    SlaType,
    ThresholdStandard,
)
from services.threshold_registry.domain.analysis_log import LoggedResult
from services.threshold_registry.domain.replicas import REGIME, regime_facts
from shared.bus.envelope import Envelope
from shared.bus.inbox import Handler, Rejected, groupable
from shared.bus.outbox import Publication, aggregate_after, remember
from shared.bus.topology import FULFILMENT_EVENTS, SLA_EVENTS, Binding
from shared.errors import DomainError, NotFound
from shared.replica import Replicated, replica_handlers
from shared.store import InboxGroup

SERVICE = "threshold-registry"

BINDINGS = (
    Binding(FULFILMENT_EVENTS, "product.#"),
    Binding(SLA_EVENTS, "analysis.analysis-result.produced"),
    Binding(SLA_EVENTS, "monitoring.monitoring-regime.*"),
)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# --- outbound -----------------------------------------------------------------------------
# Each event travels with its resource as it was then, dumped by the resource's schema.
GROUP, OFFERING, SLA_TYPE = s.OfferingGroup(), s.ProductOffering(), s.SlaType()
STANDARD, VERSION, PURCHASED = s.ThresholdStandardRecord(), s.VersionRecord(), s.PurchasedOffering()


def describer(app: ThresholdRegistry) -> Any:
    """The outbox mapping: each event published with its resource as it was then (the
    relay folds a page's events: ``aggregate_after``), a purchased offering placed in the
    group its offering is in now (read once a page per offering)."""

    def group_now(offering_id: UUID | None) -> UUID | None:
        # From the log, not the inventory read model: the relay need not bring that up
        # to date first, and the log is never behind it.
        return remember(app, ("group", offering_id), lambda: _group_of(app, offering_id))

    def describe(event: DomainEventProtocol) -> Publication | list[Publication] | None:
        if isinstance(event, LoggedResult.Logged):
            return Publication(f"{SERVICE}.analysis-log.logged", "AnalysisResultLoggedEvent",
                               {"target": {"type": event.target_type, "id": event.target_id},
                                "analysisResult": copy.deepcopy(event.result)})
        aggregate = aggregate_after(app, event)
        change = _kebab(type(event).__name__)
        kind = type(aggregate)
        if kind is OfferingGroup:
            return _pub("offering-group", change, "OfferingGroupChangeEvent",
                        {"offeringGroup": GROUP.dump(aggregate)})
        if kind is SlaType:
            return _pub("sla-type", change, "SlaTypeChangeEvent",
                        {"slaType": SLA_TYPE.dump(aggregate)})
        if kind is ThresholdStandard:
            number = getattr(event, "number", None)
            affected = next((v for v in aggregate.versions if v["version"] == number),
                            aggregate.latest)
            # Every version travels along, so replicas can answer "in force at T" alone.
            return _pub("threshold-standard", change, "ThresholdStandardChangeEvent",
                        {"thresholdStandard": STANDARD.dump(aggregate),
                         "standardVersion": VERSION.dump(affected)})
        if kind in (ProductOffering, PurchasedOffering):
            if change == "analysis-result-logged":
                return _analysis_logged(aggregate)
            if kind is ProductOffering:
                return _pub("product-offering", change, "ProductOfferingChangeEvent",
                            {"productOffering": OFFERING.dump(aggregate)})
            return _pub("purchased-offering", change, "PurchasedOfferingChangeEvent",
                        {"purchasedOffering": PURCHASED.dump(
                            Placed(aggregate, group_now(aggregate.offering_id)))})
        return None

    return describe


def _group_of(app: ThresholdRegistry, offering_id: UUID | None) -> UUID | None:
    if offering_id is None:
        return None
    try:
        offering = app.repository.get(offering_id)
    except AggregateNotFoundError:
        return None
    return offering.group_id if isinstance(offering, ProductOffering) else None


def _pub(resource: str, change: str, event_type: str, body: dict[str, Any]) -> Publication:
    return Publication(f"{SERVICE}.{resource}.{change}", event_type, {"change": change, **body})


def _analysis_logged(item: ProductOffering | PurchasedOffering) -> Publication:
    """The result as analysis sent it (kept whole), and what it was logged on, as an
    earlier release logged it on the item itself (its events are still relayed)."""
    result = copy.deepcopy(item.analysis_log[-1])
    target_type = "productOffering" if isinstance(item, ProductOffering) else "purchasedOffering"
    target_id = str(item.id) if isinstance(item, ProductOffering) else item.product_id
    return Publication(f"{SERVICE}.analysis-log.logged", "AnalysisResultLoggedEvent",
                       {"target": {"type": target_type, "id": target_id},
                        "analysisResult": result})


# --- inbound ------------------------------------------------------------------------------
TMF637_STATUS = {
    "active": "active",
    "suspended": "suspended",
    "terminated": "terminated",
    "cancelled": "terminated",
    "aborted": "terminated",
}


def _characteristic(product: dict[str, Any], name: str) -> Any:
    for c in product.get("productCharacteristic") or []:
        if isinstance(c, dict) and c.get("name") == name:
            return c.get("value")
    return None


def _customer(product: dict[str, Any]) -> str | None:
    for party in product.get("relatedParty") or []:
        if isinstance(party, dict) and str(party.get("role", "")).lower() == "customer":
            return str(party.get("id"))
    return None


def _monthly_charge(product: dict[str, Any]) -> tuple[str | None, str | None]:
    for price in product.get("productPrice") or []:
        if not isinstance(price, dict) or price.get("priceType") not in (None, "recurring"):
            continue
        period = str(price.get("recurringChargePeriod") or "month").lower()
        if not period.startswith("month"):
            continue
        amounts = price.get("price") or {}
        amount = amounts.get("taxIncludedAmount") or amounts.get("dutyFreeAmount") or {}
        if "value" in amount:
            try:
                value = Decimal(str(amount["value"]))
            except InvalidOperation:
                raise Rejected(f"productPrice value {amount['value']!r} is not a number") from None
            return str(value), (str(amount.get("unit") or "").upper() or None)
    return None, None


def _when(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"product.{field} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise Rejected(f"product.{field} {value!r} has no time zone")
    return parsed


def product_fields(app: ThresholdRegistry, product: dict[str, Any]) -> dict[str, Any]:
    """A TMF637 product as inventory fields; anything unusable is rejected with why."""
    fields: dict[str, Any] = {}
    offering_ref = product.get("productOffering") or {}
    if offering_ref.get("id") is not None:
        try:
            offering_id = UUID(str(offering_ref["id"]))
            InboxGroup.once(("offering", offering_id), lambda: app.offering(offering_id))
        except (ValueError, NotFound):
            raise Rejected(f"productOffering {offering_ref['id']!r} is not an offering "
                           "of the registry") from None
        fields["offering_id"] = offering_id
    customer = _customer(product)
    if customer is not None:
        fields["customer_id"] = customer
    sla = _characteristic(product, "slaType")
    if sla is not None:
        sla_type = InboxGroup.once(("sla-type", str(sla)), lambda: app.sla_type_named(str(sla)))
        if sla_type is None:
            raise Rejected(f"slaType {sla!r} is neither the id nor the name of an SLA type")
        fields["sla_type_id"] = sla_type.id
    for characteristic, field in (("customerGroup", "customer_group"), ("site", "site")):
        value = _characteristic(product, characteristic)
        if value is not None:
            fields[field] = str(value)
    charge, currency = _monthly_charge(product)
    if charge is not None:
        fields["monthly_charge"], fields["currency"] = charge, currency
    start, end = _when(product.get("startDate"), "startDate"), _when(
        product.get("terminationDate"), "terminationDate")
    if start is not None:
        fields["start_date"] = start
    if end is not None:
        fields["end_date"] = end
    return fields


def handle_product_event(app: ThresholdRegistry, envelope: Envelope) -> None:
    product = envelope.event.get("product")
    if not isinstance(product, dict) or not product.get("id"):
        raise Rejected("the event carries no product with an id")
    product_id = str(product["id"])
    status = TMF637_STATUS.get(str(product.get("status") or ""))
    fields = product_fields(app, product)
    if app.inventory_item(product_id) is None:
        if status is None:
            return  # not yet active (created, pendingActive): inventory starts at activation
        missing = [f for f in ("offering_id", "customer_id") if f not in fields]
        if missing:
            raise Rejected(f"product {product_id} cannot enter the inventory without "
                           + " and ".join({"offering_id": "productOffering.id",
                                           "customer_id": "a relatedParty with role Customer"}[m]
                                          for m in missing))
        for key in ("customer_group", "sla_type_id", "site", "monthly_charge", "currency",
                    "start_date", "end_date"):
            fields.setdefault(key, None)
    try:
        app.upsert_purchased_offering(product_id, fields, status)
    except DomainError as exc:
        raise Rejected(f"product {product_id}: {exc}") from None


def handle_analysis_result(app: ThresholdRegistry, envelope: Envelope) -> None:
    result = envelope.event.get("analysisResult") or {}
    try:
        app.log_analysis_result(result)
    except NotFound as exc:
        raise Rejected(f"analysis result {result.get('id')}: {exc}") from None


#: What the registry keeps of other services' resources (``shared.replica``): which group
#: or offering each monitoring regime watches, and its status.
REPLICATED = {
    "MonitoringRegimeChangeEvent": Replicated(REGIME, "monitoringRegime", facts=regime_facts),
}


def product_handler(app: ThresholdRegistry) -> Handler:
    """Fulfilment's product events, handled many to a transaction (a migration's million
    activations in minutes): a group's purchased offerings are read in one query, its
    offerings and SLA types once each (``InboxGroup.once``; product events change
    neither), and two events of one product in a group build on each other. A refused
    product fails its group, which is then handled one message at a time, so it alone is
    dead-lettered."""

    def handle(envelope: Envelope) -> None:
        handle_product_event(app, envelope)

    def prepare(envelopes: Sequence[Envelope]) -> None:
        group = InboxGroup.current()
        if group is None:
            return
        ids = []
        for envelope in envelopes:
            product = envelope.event.get("product")
            if isinstance(product, dict) and product.get("id"):
                ids.append(PurchasedOffering.create_id(str(product["id"])))
        group.preload(ids)

    return groupable(handle, prepare)


def handlers(app: ThresholdRegistry) -> dict[str, Handler]:
    product = product_handler(app)
    return {
        "ProductCreateEvent": product,
        "ProductStateChangeEvent": product,
        "ProductAttributeValueChangeEvent": product,
        "AnalysisResultEvent": lambda envelope: handle_analysis_result(app, envelope),
        **replica_handlers(REPLICATED, app.receive_replica),
    }
