"""Resource representations of monitoring (TMF style, camelCase)."""

from __future__ import annotations

from typing import Any

from services.monitoring.budgets import BUDGET_UNIT
from services.monitoring.domain import (
    BurnAlert,
    Crossing,
    MeasurementBatch,
    Quarantine,
    QuarantineRelease,
    Regime,
    WindowEvaluation,
)
from shared.durations import duration_text
from shared.times import iso

ROOT = "/monitoring/v1"


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def regime(r: Regime) -> dict[str, Any]:
    return {
        "id": str(r.id), "href": f"{ROOT}/monitoringRegime/{r.id}", "@type": "MonitoringRegime",
        "name": r.name, "description": r.description,
        "offeringGroupId": _id(r.offering_group_id), "productOfferingId": _id(r.offering_id),
        "slaTypeId": _id(r.sla_type_id), "customerGroup": r.customer_group,
        "parameters": list(r.parameters), "window": r.window,
        "allowedLateness": r.allowed_lateness, "clearAfter": r.clear_after,
        "status": r.status, "statusReason": r.status_reason, "version": r.version,
    }


def evaluation(e: WindowEvaluation) -> dict[str, Any]:
    return {
        "id": str(e.id), "href": f"{ROOT}/windowEvaluation/{e.id}",
        "@type": "WindowEvaluation", "regimeId": str(e.regime_id), "parameter": e.parameter,
        "scopeType": e.scope_type, "scopeId": e.scope_id,
        "windowStart": iso(e.window_start), "windowEnd": iso(e.window_end), **e.result,
    }


def crossing(c: Crossing) -> dict[str, Any]:
    first, last = c.history[0], c.history[-1]
    return {
        "id": str(c.id), "href": f"{ROOT}/crossing/{c.id}", "@type": "ThresholdCrossing",
        "regimeId": str(c.regime_id), "parameter": c.parameter, "scopeType": c.scope_type,
        "scopeId": c.scope_id, "level": c.level if c.open else "cleared", "open": c.open,
        "raisedAt": iso(c.created_on.timestamp()),
        "since": first.get("silentSince") or first["windowStart"],  # noData: first empty one
        "measuredValue": last.get("measuredValue"), "unit": last.get("unit"),
        "standardId": last["standardId"],
        "standardVersion": last["standardVersion"], "planned": first["planned"],
        "history": c.history, "version": c.version,
    }


def burn_alert(a: BurnAlert) -> dict[str, Any]:
    """The alert with its evidence; rule windows as ISO-8601 durations (as on the bus) and
    in seconds (``…Seconds``)."""
    windows = {}
    for key in ("longWindow", "shortWindow"):
        if isinstance(a.evidence.get(key), int | float):
            windows[key] = duration_text(a.evidence[key])
            windows[f"{key}Seconds"] = a.evidence[key]
    return {
        "id": str(a.id), "href": f"{ROOT}/burnAlert/{a.id}", "@type": "BurnRateAlert",
        "regimeId": str(a.regime_id), "parameter": a.parameter, "scopeType": a.scope_type,
        "scopeId": a.scope_id, "severity": a.severity, "open": a.open,
        "raisedAt": iso(a.created_on.timestamp()), "budgetUnit": BUDGET_UNIT, **a.evidence,
        **windows, "version": a.version,
    }


def batch(b: MeasurementBatch) -> dict[str, Any]:
    return {
        "id": b.batch_id, "href": f"{ROOT}/measurementBatch/{b.batch_id}",
        "@type": "MeasurementBatch", "source": b.source, "accepted": len(b.samples),
        "rejected": b.rejected, "receivedAt": iso(b.created_on.timestamp()),
    }


def status_row(row: dict[str, Any]) -> dict[str, Any]:
    e: WindowEvaluation = row["evaluation"]
    c: Crossing | None = row["crossing"]
    a: BurnAlert | None = row["alert"]
    return {
        "id": f"{e.regime_id}:{e.parameter}:{e.scope_type}:{e.scope_id}",
        "href": f"{ROOT}/status?regimeId={e.regime_id}&scopeId={e.scope_id}",
        "@type": "SeriesStatus", "regimeId": str(e.regime_id), "parameter": e.parameter,
        "scopeType": e.scope_type, "scopeId": e.scope_id,
        "level": c.level if c else "ok", "since": c.history[0]["windowStart"] if c else None,
        "crossingId": str(c.id) if c else None,
        "value": e.result.get("value"), "unit": e.result.get("unit"),
        "classification": e.result.get("classification"),
        "lastWindowStart": iso(e.window_start), "lastWindowEnd": iso(e.window_end),
        "remainingBudget": e.result.get("remainingBudget"), "budgetUnit": BUDGET_UNIT,
        "projectedExhaustion": e.result.get("projectedExhaustion"),
        "burnAlert": a.severity if a else None,
        "standardId": e.result.get("standardId"),
        "standardVersion": e.result.get("standardVersion"),
    }


def quarantine(q: Quarantine, release: QuarantineRelease | None = None) -> dict[str, Any]:
    status = "released" if q.released else "releaseRequested" if release else "quarantined"
    released_at = None
    if q.released:
        released_at = iso(q.modified_on.timestamp())
    return {
        "id": str(q.id), "href": f"{ROOT}/quarantine/{q.id}", "@type": "EvaluationQuarantine",
        "kind": q.kind, "partition": q.partition, "regimeId": q.regime_id,
        "parameter": q.parameter, "batchId": q.batch_id, "position": q.position,
        "reason": q.reason, "status": status, "quarantinedAt": iso(q.created_on.timestamp()),
        "releasedAt": released_at,
        "releaseReason": (q.release or {}).get("reason") if q.released else (
            release.reason if release else None),
        "version": q.version,
    }


def represent(aggregate: Any) -> dict[str, Any]:
    for kind, fn in ((Regime, regime), (WindowEvaluation, evaluation), (Crossing, crossing),
                     (BurnAlert, burn_alert), (MeasurementBatch, batch),
                     (Quarantine, quarantine)):
        if isinstance(aggregate, kind):
            return fn(aggregate)
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
