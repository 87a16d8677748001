"""The monitoring application as a story, in memory (no HTTP, no broker, no database
server): the registry's facts arrive as replicas, an SLA manager starts a regime over an
offering group, a probe sends an hour of good latency, then two hours of bad; the
evaluator judges each window and raises a crossing with its evidence; the latency
recovers and the crossing clears. Read top to bottom, it is how the application is used
(``Monitoring`` and ``Evaluator``), in the manner of the eventsourcing library's
examples."""

from __future__ import annotations

import uuid
from typing import Any

from services.monitoring.application import Monitoring
from services.monitoring.evaluator import Evaluator
from shared.times import iso, to_epoch

START = to_epoch("2026-11-25T00:00:00Z")


def at(hours: float) -> str:
    return iso(START + hours * 3600)


def evaluate(app: Monitoring) -> None:
    """Let the evaluator read everything recorded so far (as its role does in a loop)."""
    evaluator = Evaluator(app)
    evaluator.recover()
    while evaluator.run_once():
        pass


def test_a_regime_sees_a_crossing_raised_escalated_and_cleared() -> None:
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.popo"})

    # The registry's facts, as its bus events leave them: an offering group, an offering
    # in it, an SLA type, an approved latency standard and one purchased offering.
    group, offering, gold, standard = (str(uuid.uuid4()) for _ in range(4))
    facts: list[tuple[str, str, dict[str, Any]]] = [
        ("offeringGroup", group, {"id": group, "name": "Business fibre",
                                  "lifecycleStatus": "active", "version": 1}),
        ("productOffering", offering, {"id": offering, "offeringGroupId": group,
                                       "lifecycleStatus": "active", "version": 1}),
        ("slaType", gold, {"id": gold, "name": "gold", "maintenanceAccounting": "excluded",
                           "lifecycleStatus": "active", "version": 1}),
        ("thresholdStandard", standard, {
            "id": standard, "offeringGroupId": group, "productOfferingId": None,
            "version": 1, "versions": [{
                "version": 1, "lifecycleStatus": "approved", "name": "Fibre latency",
                "basis": "commerciallyAgreed", "slaTypeId": None,
                "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
                "parameters": [{"name": "latency", "unit": "ms", "kind": "technical",
                                "aggregation": "max", "comparator": "LE",
                                "conformanceTarget": 100, "thresholdTarget": 80,
                                "evaluationWindow": "PT1H", "graceTimes": 0}]}]}),
        ("purchasedOffering", "fibre-1", {
            "id": "fibre-1", "customerId": "acme", "productOfferingId": offering,
            "slaTypeId": gold, "customerGroup": None, "status": "active", "version": 1}),
    ]
    for kind, resource_id, resource in facts:
        app.receive_replica(kind, resource_id, resource, resource["version"])

    # An SLA manager starts watching the group: hourly windows, cleared after one good one.
    regime = app.start_regime(name="Fibre watch", offering_group_id=uuid.UUID(group),
                              window="PT1H", allowed_lateness="PT0S", clear_after=1)
    assert (regime.status, regime.version) == ("active", 1)

    # A probe sends latency: fine at first, beyond the warning level, then breaching,
    # then fine again. Each sample closes the window before it (no lateness allowed).
    for hour, latency in ((0, 50), (1, 90), (2, 150), (3, 40), (4, 40)):
        outcome = app.ingest(f"probe-{hour}", "probe", [
            {"purchasedOfferingId": "fibre-1", "parameter": "latency", "value": latency,
             "observedAt": at(hour + 0.5)}])
        assert (outcome.accepted, outcome.rejected, outcome.duplicate) == (1, [], False)
    # A batch sent again is not counted twice.
    assert app.ingest("probe-4", "probe", [
        {"purchasedOfferingId": "fibre-1", "parameter": "latency", "value": 40,
         "observedAt": at(4.5)}]).duplicate
    evaluate(app)

    # Each window was judged against the standard in force.
    judged = sorted((e.window_start, e.result["classification"]) for e in app.evaluations()
                    if e.scope_type == "purchasedOffering")
    assert judged == [(START, "ok"), (START + 3600, "warning"), (START + 7200, "breached"),
                      (START + 10800, "ok")]

    # One crossing of the purchased offering: a warning at 1h, a breach at 2h, cleared
    # at 3h, each step with the evidence behind it.
    [crossing] = [c for c in app.crossings() if c.scope_type == "purchasedOffering"]
    assert [step["change"] for step in crossing.history] == ["raised", "escalated", "cleared"]
    assert crossing.first["windowStart"] == at(1) and crossing.first["level"] == "warning"
    assert crossing.history[1]["measuredValue"] == 150
    assert crossing.history[1]["batchIds"] == ["probe-2"]
    assert (crossing.open, crossing.shown_level, crossing.since) == (False, "cleared", at(1))

    # The group's series crossed and cleared with it; the status now says ok.
    [status] = [row for row in app.status() if row.scope_type == "offeringGroup"]
    assert (status.level, status.crossing_id, status.burn_alert) == ("ok", None, None)

    # A paused regime takes no samples until it resumes.
    app.set_regime_status(regime.id, "pause", "maintenance")
    refused = app.check_batch([{"purchasedOfferingId": "fibre-1", "parameter": "latency",
                                "value": 40, "observedAt": at(5.5)}])
    assert refused.accepted == [] and "no active monitoring regime" in refused.rejected[0][
        "reason"]
    assert app.set_regime_status(regime.id, "resume").status == "active"
