"""Resource representations (TMF style, camelCase) of the registry's aggregates.

One function per resource, used by the HTTP API, the published events and the audit
"as of" queries, so all three always show the same shape.
"""

from __future__ import annotations

from typing import Any

from services.threshold_registry.domain import (
    OfferingGroup,
    ProductOffering,
    PurchasedOffering,
    SlaType,
    ThresholdStandard,
)
from services.threshold_registry.replicas import MonitoringRegimeReplica

ROOT = "/threshold-registry/v1"


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def offering_group(g: OfferingGroup) -> dict[str, Any]:
    return {
        "id": str(g.id),
        "href": f"{ROOT}/offeringGroup/{g.id}",
        "@type": "OfferingGroup",
        "name": g.name,
        "description": g.description,
        "lifecycleStatus": g.lifecycle_status,
        "version": g.version,
    }


def product_offering(o: ProductOffering) -> dict[str, Any]:
    return {
        "id": str(o.id),
        "href": f"{ROOT}/productOffering/{o.id}",
        "@type": "ProductOffering",
        "name": o.name,
        "description": o.description,
        "lifecycleStatus": o.lifecycle_status,
        "offeringGroupId": _id(o.group_id),
        "version": o.version,
    }


def sla_type(s: SlaType) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "href": f"{ROOT}/slaType/{s.id}",
        "@type": "SlaType",
        "name": s.name,
        "description": s.description,
        "maintenanceAccounting": s.maintenance_accounting,
        "minimumNoticeDays": s.minimum_notice_days,
        "creditPercentPerBreachedPeriod": s.credit_percent_per_breached_period,
        "creditCapPercent": s.credit_cap_percent,
        "timeZone": s.time_zone,
        "missingData": s.missing_data,
        "noDataAfter": s.no_data_after,
        "lifecycleStatus": s.lifecycle_status,
        "version": s.version,
    }


def standard_version(v: dict[str, Any]) -> dict[str, Any]:
    """One version of a threshold standard, as stored (already camelCase)."""
    out = {k: _plain(v.get(k)) for k in (
        "version", "lifecycleStatus", "name", "description", "basis", "parameters",
        "validFor", "slaTypeId", "createdAt", "approvedAt", "approvedBy", "supersededAt",
        "supersededBy", "retiredAt", "changeReason")}
    return out


def threshold_standard(t: ThresholdStandard) -> dict[str, Any]:
    """The standard as its latest version shows it."""
    v = t.latest
    return {
        "id": str(t.id),
        "href": f"{ROOT}/thresholdStandard/{t.id}",
        "@type": "ThresholdStandard",
        "productOfferingId": _id(t.offering_id),
        "offeringGroupId": _id(t.offering_group_id),
        "slaTypeId": _id(v.get("slaTypeId")),
        "name": v["name"],
        "description": v.get("description"),
        "basis": v["basis"],
        "lifecycleStatus": v["lifecycleStatus"],
        "currentVersion": t.latest["version"],
        "validFor": _plain(v["validFor"]),
        "parameters": _plain(v["parameters"]),
        "version": t.version,
    }


def purchased_offering(p: PurchasedOffering, group_id: Any = None) -> dict[str, Any]:
    return {
        "id": p.product_id,
        "href": f"{ROOT}/purchasedOffering/{p.product_id}",
        "@type": "PurchasedOffering",
        "customerId": p.customer_id,
        "customerGroup": p.customer_group,
        "productOfferingId": _id(p.offering_id),
        "offeringGroupId": _id(group_id),
        "slaTypeId": _id(p.sla_type_id),
        "site": p.site,
        "monthlyCharge": None if p.monthly_charge is None else str(p.monthly_charge),
        "currency": p.currency,
        "status": p.status,
        "startDate": _plain(p.start_date),
        "endDate": _plain(p.end_date),
        "version": p.version,
    }


def analysis_log(item: ProductOffering | PurchasedOffering) -> list[dict[str, Any]]:
    return [_plain(r) for r in item.analysis_log]


def _plain(value: Any) -> Any:
    """JSON-ready copies: datetimes as ISO 8601 with Z, UUIDs as strings."""
    from datetime import datetime
    from uuid import UUID

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, UUID):
        return str(value)
    return value


def regime_replica(r: MonitoringRegimeReplica) -> dict[str, Any]:
    """What the registry knew of a monitoring regime (audit queries only: the regime's
    own resource is monitoring's)."""
    return {"id": r.regime_id, "@type": "MonitoringRegimeReplica", "name": r.name,
            "offeringGroupId": r.offering_group_id, "productOfferingId": r.offering_id,
            "status": r.status, "sourceVersion": r.source_version}


def represent(aggregate: Any) -> dict[str, Any]:
    """Any registry aggregate as its resource (for audit queries)."""
    if isinstance(aggregate, MonitoringRegimeReplica):
        return regime_replica(aggregate)
    for kind, fn in ((OfferingGroup, offering_group), (ProductOffering, product_offering),
                     (SlaType, sla_type), (ThresholdStandard, threshold_standard),
                     (PurchasedOffering, purchased_offering)):
        if isinstance(aggregate, kind):
            body = fn(aggregate)
            if kind is ThresholdStandard:
                body["versions"] = [standard_version(v) for v in aggregate.versions]
            return body
    raise TypeError(f"not a registry aggregate: {type(aggregate).__name__}")
