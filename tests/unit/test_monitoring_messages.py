"""Monitoring's crossing and burn-alert payloads, dumped by their message schemas, with
known answers: what an outcome recorded becomes on the bus, including an alert recorded
with figures missing (the contract still gets every member it requires) and the members
left out when nothing was kept. Every payload is checked against its contract too."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.monitoring.domain import BurnAlert, Crossing
from services.monitoring.messaging import BURN_ALERT, CROSSING
from shared.bus import contracts
from shared.times import iso

REGIME = UUID("00000000-0000-4000-8000-000000000001")
STANDARD = "00000000-0000-4000-8000-000000000002"
WINDOW = {"windowStart": "2026-11-25T10:00:00Z", "windowEnd": "2026-11-25T11:00:00Z"}
EVIDENCE = {"measuredValue": 97.0, "unit": "%", "aggregation": "availability",
            "conformanceTarget": 99.9, "thresholdTarget": 99.95, "comparator": "GE",
            "standardId": STANDARD, "standardVersion": 1, **WINDOW, "planned": False,
            "batchIds": ["b10"], "evaluationId": "e1"}


def valid(event_type: str, change: str, member: str, resource: dict[str, Any]) -> None:
    contracts.validate({
        "eventId": "00000000-0000-4000-8000-000000000009", "eventTime": resource["raisedAt"],
        "eventType": event_type, "correlationId": "c", "source": "monitoring",
        "schemaVersion": "1", "event": {"change": change, member: resource}})


def test_a_crossing_carries_the_evidence_of_its_latest_change() -> None:
    crossing = Crossing(id=UUID(int=7), regime_id=REGIME, parameter="availability",
                        scope_type="purchasedOffering", scope_id="fibre-1", level="warning",
                        evidence=EVIDENCE)
    crossing.escalate({**EVIDENCE, "measuredValue": 95, "batchIds": ["b11"]})
    sent = CROSSING.dump(crossing)
    assert sent == {
        "id": str(UUID(int=7)), "regimeId": str(REGIME), "parameter": "availability",
        "scope": {"type": "purchasedOffering", "id": "fibre-1"}, "level": "breached",
        "measuredValue": 95, "unit": "%", "aggregation": "availability",
        "conformanceTarget": 99.9, "thresholdTarget": 99.95, "comparator": "GE",
        "standardId": STANDARD, "standardVersion": 1,
        "window": {"startDateTime": WINDOW["windowStart"],
                   "endDateTime": WINDOW["windowEnd"]},
        "planned": False, "batchIds": ["b11"],
        "raisedAt": iso(crossing.modified_on.timestamp()), "evaluationId": "e1"}
    valid("ThresholdCrossingEvent", "escalated", "crossing", sent)
    crossing.clear({k: v for k, v in EVIDENCE.items()
                    if k not in ("measuredValue", "unit", "aggregation", "evaluationId")})
    cleared = CROSSING.dump(crossing)
    # What the clearing window did not record is sent as null, never left out.
    assert (cleared["level"], cleared["measuredValue"], cleared["unit"],
            cleared["aggregation"], cleared["evaluationId"]) == ("cleared", None, None,
                                                                 None, None)
    valid("ThresholdCrossingEvent", "cleared", "crossing", cleared)


def test_a_burn_alert_carries_its_rule_and_fills_what_it_did_not_record() -> None:
    alert = BurnAlert(id=UUID(int=8), regime_id=REGIME, parameter="availability",
                      scope_type="offeringGroup", scope_id=STANDARD, severity="page",
                      evidence={**EVIDENCE, "burnRate": 20.5, "shortBurnRate": 30,
                                "longWindow": 3600, "shortWindow": 300, "factor": 14.4,
                                "remainingBudget": 0.25, "budgetUnit": "ratio",
                                "projectedExhaustion": "2026-11-26T00:00:00Z"})
    raised = BURN_ALERT.dump(alert)
    assert raised == {
        "id": str(UUID(int=8)), "regimeId": str(REGIME), "parameter": "availability",
        "scope": {"type": "offeringGroup", "id": STANDARD}, "severity": "page",
        "burnRate": 20.5, "longWindow": "PT1H", "shortWindow": "PT5M",
        "remainingBudget": 0.25, "budgetUnit": "ratio",
        "projectedExhaustion": "2026-11-26T00:00:00Z", "standardId": STANDARD,
        "standardVersion": 1, "window": {"startDateTime": WINDOW["windowStart"],
                                         "endDateTime": WINDOW["windowEnd"]},
        "raisedAt": iso(alert.modified_on.timestamp()), "factor": 14.4,
        "shortBurnRate": 30}
    valid("BurnRateAlertEvent", "raised", "burnAlert", raised)

    # Resolved with hardly any figures (as an early release recorded some): burn rate 0
    # (never below), the default rule windows, a budget of 0.0, no window, and the
    # optional members left out rather than sent as null.
    alert.resolve({"standardId": STANDARD, "standardVersion": 1, "burnRate": -0.5,
                   "remainingBudget": 0, "factor": None, "resolution": "subsided",
                   "windowStart": WINDOW["windowStart"]})
    resolved = BURN_ALERT.dump(alert)
    assert {k: resolved[k] for k in ("burnRate", "longWindow", "shortWindow",
                                     "remainingBudget", "budgetUnit", "projectedExhaustion",
                                     "resolution")} == {
        "burnRate": 0.0, "longWindow": "PT1H", "shortWindow": "PT5M",
        "remainingBudget": 0.0, "budgetUnit": "ratio", "projectedExhaustion": None,
        "resolution": "subsided"}
    assert not {"window", "factor", "shortBurnRate"} & set(resolved)
    valid("BurnRateAlertEvent", "resolved", "burnAlert", resolved)
