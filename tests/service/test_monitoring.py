"""Stories of monitoring's users, in one process (in-process bus): an SLA manager sets a
standard and a regime over an offering group; a day of measurements degrades; the NOC
reads crossings, status and budget; an auditor traces a breach to its batches; a change
manager's agreed outage is excluded. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.bus.envelope import Envelope
from shared.bus.topology import SLA_EVENTS
from shared.scheduler import SettableClock
from shared.times import iso
from tests.drivers.http import FlaskHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver
from tests.drivers.registry import availability as availability_parameter
from tests.drivers.registry import latency as latency_parameter
from tests.helpers import eventually
from tests.service.conftest import Client

DAY = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def service_clocks() -> dict[str, Any]:
    """outage-negotiation plans the outages of the measured day eleven days before it."""
    return {"outage-negotiation": SettableClock(DAY - timedelta(days=11))}


@pytest.fixture
def monitoring(suite: Any) -> MonitoringDriver:
    return MonitoringDriver(FlaskHttp(Client(suite.app("monitoring"), "/monitoring/v1")))


def at(hour: float) -> str:
    return (DAY + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def estate(registry: Client, monitoring: MonitoringDriver) -> dict[str, Any]:
    """A group of three purchased offerings with an approved standard, and a regime."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    group, offering, gold = fibre.group, fibre.offering, fibre.gold
    standard = manager.agree_standard(
        group=group, name="Fibre SLOs",
        parameters=[availability_parameter(conformanceTarget=99.0, thresholdTarget=99.5),
                    latency_parameter(graceTimes=1)])
    products = [f"fibre-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    for product in products:
        manager.add_purchased_offering(product, offering, f"cust-{product}", sla_type=gold,
                                       customerGroup="enterprise")
    regime = monitoring.start_regime(name="Fibre watch", offeringGroupId=group["id"],
                                     window="PT1H", allowedLateness="PT10M", clearAfter=2)
    # The registry's changes reach monitoring over the bus: wait until it knows them all.
    probe = {"purchasedOfferingId": products[-1], "parameter": "latency", "value": 1,
             "observedAt": at(-48)}
    monitoring.wait_until_watched(probe, timeout=15)
    return {"group": group, "offering": offering, "gold": gold, "standard": standard,
            "products": products, "regime": regime}


def hour_batch(products: list[str], hour: int, latency: float, down_minutes: float = 0,
               who: int | None = None) -> list[dict[str, Any]]:
    """One hour of samples: an availability reading per offering, and latency samples."""
    samples = []
    for n, product in enumerate(products):
        down = down_minutes if who in (None, n) else 0
        samples.append({"purchasedOfferingId": product, "parameter": "availability",
                        "value": 1 - down / 60, "intervalSeconds": 3600,
                        "observedAt": at(hour + 1)})
        for minute in range(0, 60, 10):
            samples.append({"purchasedOfferingId": product, "parameter": "latency",
                            "value": latency, "observedAt": at(hour + minute / 60)})
    return samples


def test_a_day_of_degrading_latency_raises_warning_then_breach_with_evidence(
        estate: dict[str, Any], monitoring: MonitoringDriver, registry: Client) -> None:
    products = estate["products"]
    for hour in range(24):
        latency = 50 if hour < 10 else 90 if hour < 14 else 150
        response = monitoring.send_batch(hour_batch(products, hour, latency),
                                         f"{estate['regime']['id']}-h{hour}")
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["rejected"] == []

    group_scope = {"scopeType": "offeringGroup", "scopeId": estate["group"]["id"]}
    crossing = monitoring.wait_for_crossing(group_scope, parameter="latency", timeout=15,
                                            where=lambda c: c["level"] == "breached")
    changes = [h["change"] for h in crossing["history"]]
    assert changes == ["raised", "escalated"]
    assert crossing["history"][0]["level"] == "warning"
    assert crossing["history"][0]["windowStart"] == at(10)
    # graceTimes 1: the first breaching window (14h) is tolerated, the second escalates.
    assert crossing["history"][1]["windowStart"] == at(15)
    assert crossing["standardVersion"] == 1 and crossing["standardId"] == estate["standard"]["id"]

    # Every purchased offering crossed too.
    per_offering = monitoring.crossings(parameter="latency", scopeType="purchasedOffering")
    assert per_offering.total == 3

    # Status of the group: breached since 10h, with the last value.
    status = monitoring.status(group_scope, parameter="latency")
    assert status[0]["level"] == "breached" and status[0]["value"] == 150
    availability = monitoring.status(group_scope, parameter="availability")
    assert availability[0]["level"] == "ok", availability
    assert availability[0]["remainingBudget"] == 1.0, str(availability)

    # The evaluations behind it, for a chart, and the batches behind the breach.
    evaluations = monitoring.evaluations({**group_scope, "windowStart.gte": at(0)},
                                         parameter="latency", sort="windowStart")
    assert [e["classification"] for e in evaluations[9:16]] == [
        "ok", "warning", "warning", "warning", "warning", "breached", "breached"]
    escalation = crossing["history"][1]
    assert escalation["batchIds"] == [f"{estate['regime']['id']}-h15"]
    batch = monitoring.batch(escalation["batchIds"][0]).get_json()
    assert batch["accepted"] == 21

    # The auditor traces the breach: the crossing's history in the audit log.
    auditor = monitoring.with_scopes("audit:read")
    history = auditor.aggregate_history(crossing["id"]).get_json()
    assert [e["eventType"] for e in history] == ["Crossing.Raised", "Crossing.Escalated"]
    assert history[1]["data"]["evidence"]["batchIds"] == escalation["batchIds"]
    # ... and from the batch, what it is behind: the batch itself, the escalation.
    traced = auditor.audit_events(batchId=escalation["batchIds"][0], limit=1000).get_json()
    assert {"MeasurementBatch.Accepted", "Crossing.Escalated"} <= {
        e["eventType"] for e in traced}
    assert [e for e in traced if e["eventType"] == "MeasurementBatch.Accepted"][0][
        "data"]["batch_id"] == escalation["batchIds"][0]
    assert all(e["log"] == "MonitoringOutcomes" for e in traced
               if e["eventType"] != "MeasurementBatch.Accepted")


def test_an_agreed_planned_outage_is_excluded_from_availability(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver) -> None:
    # The change manager agrees the outage with outage-negotiation (its clock eleven days
    # before, so gold's ten days' notice is given); the agreement reaches monitoring.
    products = estate["products"]
    outages = OutageDriver(FlaskHttp(Client(suite.app("outage-negotiation"),
                                            "/outage-negotiation/v1")))
    app = suite.runtime("monitoring").app
    eventually(lambda: outages.draft({"purchasedOfferingIds": [products[0]]},
                                     [window(at(2), at(3))], reason="fibre splice",
                                     expect=None).status == 201)
    outage = outages.outages()[0]
    outages.move(outage, "propose")
    outages.move(outage, "negotiate")
    outages.move(outage, "agree")
    eventually(lambda: app.working_set.outages(products[0]))  # applied by the inbox
    for hour in range(6):
        down = 30 if hour in (2, 4) else 0  # 30 minutes down at 2h (planned) and 4h (not)
        monitoring.send_batch(hour_batch(products, hour, 50, down_minutes=down, who=0),
                              f"{estate['regime']['id']}-o{hour}")
    scope = {"scopeType": "purchasedOffering", "scopeId": products[0]}
    group = {"scopeType": "offeringGroup", "scopeId": estate["group"]["id"]}

    def windows(query: dict[str, str]) -> list[dict[str, Any]]:
        found = monitoring.evaluations({**query, "windowStart.gte": at(0)},
                                       parameter="availability", sort="windowStart")
        assert len(found) >= 5
        return found

    mine, pooled = eventually(lambda: windows(scope)), eventually(lambda: windows(group))
    # 2h: the offering was down 30 minutes inside the agreed outage: excluded (gold's
    # accounting), so the window has no eligible time and nothing is raised (nor planned:
    # the window is not bad).
    assert mine[2]["planned"] is False and mine[2]["eligibleSeconds"] == 0
    assert mine[2]["excludedSeconds"] == 3600
    assert mine[2]["classification"] == "unknown"
    assert pooled[2]["value"] == 100.0 and pooled[2]["classification"] == "ok"
    # 4h: the same downtime without an outage breaches, for the offering (50%) and the
    # group (pooled by time: 150 of 180 minutes up, 83.3%).
    assert mine[4]["classification"] == "breached" and mine[4]["value"] == 50.0
    assert pooled[4]["planned"] is False and round(pooled[4]["value"], 2) == 83.33
    crossings = eventually(lambda: monitoring.crossings(scope, parameter="availability"))
    assert [c["since"] for c in crossings] == [at(4)]


def test_samples_are_checked_one_by_one_and_a_batch_counts_once(
        estate: dict[str, Any], monitoring: MonitoringDriver) -> None:
    products = estate["products"]
    good = {"purchasedOfferingId": products[0], "parameter": "latency", "value": 10,
            "observedAt": at(5)}
    samples = [
        good,
        {**good, "purchasedOfferingId": "nobody"},
        {**good, "parameter": "jitter"},
        {**good, "value": "fast"},
        {**good, "observedAt": "yesterday"},
        {**good, "observedAt": "2026-11-20T05:00:00"},
        {**good, "observedAt": "2999-01-01T00:00:00Z"}]
    first = monitoring.send_batch(samples, "mixed-1")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "purchasedOfferingId"), (2, "parameter"), (3, "value"), (4, "observedAt"),
        (5, "observedAt"), (6, "observedAt")]
    again = monitoring.send_batch(samples, "mixed-1")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["accepted"] == 1

    all_bad = monitoring.send_batch([{"value": 1}])
    assert all_bad.status_code == 400 and all_bad.get_json()["details"]
    # Well formed but nothing to take now (unknown series): 409, each sample's reason.
    unknown = monitoring.send_batch([{**good, "purchasedOfferingId": "nobody"}])
    assert unknown.status_code == 409, unknown.get_json()
    assert "not in the inventory" in unknown.get_json()["details"][
        "samples.0.purchasedOfferingId"][0]

    # Advance the watermark far beyond hour 5: an old sample is now late, with its reason.
    monitoring.send_batch([{**good, "observedAt": at(9)}])
    late = monitoring.send_batch([good, {**good, "observedAt": at(8.9)}]).get_json()
    assert late["rejected"][0]["index"] == 0 and "late" in late["rejected"][0]["reason"]
    assert late["accepted"] == 1  # 8.9h is within the 10-minute lateness of 9h


def test_a_batch_id_outside_the_safe_characters_is_refused_and_nothing_is_recorded(
        estate: dict[str, Any], monitoring: MonitoringDriver) -> None:
    good = {"purchasedOfferingId": estate["products"][0], "parameter": "latency",
            "value": 10, "observedAt": at(5)}
    recorded = monitoring.audit_events(eventType="MeasurementBatch.*")
    for bad in ("b\r\nSet-Cookie: x=1", "b\n", "with space", "a/b", "ü", "-lead"):
        response = monitoring.send_batch([good], bad)
        assert response.status_code == 400, (bad, response.status_code)
        assert "batchId" in response.get_json()["details"]
    assert monitoring.audit_events(eventType="MeasurementBatch.*").headers[
        "X-Total-Count"] == recorded.headers["X-Total-Count"]
    fine = monitoring.send_batch([good], "urn:probe:b-1.2_~")
    assert fine.status_code == 201 and fine.headers["Location"].endswith("urn:probe:b-1.2_~")


def test_a_bus_batch_whose_id_is_outside_the_safe_characters_is_dead_lettered(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver) -> None:
    from services.monitoring.messaging import MEASUREMENT_BINDINGS
    from shared.bus.topology import MEASUREMENTS, QueueSpec
    from shared.bus.transport import REASON_HEADER

    transport = suite.runtime("monitoring").transport
    queue = QueueSpec(name="monitoring.measurements", bindings=MEASUREMENT_BINDINGS)
    sample = {"purchasedOfferingId": estate["products"][0], "parameter": "latency",
              "value": 10, "observedAt": at(5)}
    for batch_id in ("bus\nbatch", "bus-batch\n"):  # CR/LF inside or at the end
        envelope = Envelope(event_id=str(uuid.uuid4()), event_time=iso(),
                            event_type="MeasurementBatchEvent", source="probe",
                            event={"batchId": batch_id, "samples": [sample]})
        transport.publish_raw(MEASUREMENTS, "measurement.probe", envelope.to_bytes())
    dead = eventually(lambda: len(transport.dead_letters(queue)) == 2
                      and transport.dead_letters(queue))
    assert all("batchId" in m.headers[REASON_HEADER] for m in dead)


def test_each_window_is_judged_by_the_version_in_force_for_it_superseded_ones_too(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver, registry: Client) -> None:
    # Latency is tightened from 12h: version 2 is approved, version 1 becomes superseded
    # but stays the standard for the windows before 12h.
    standard_id = estate["standard"]["id"]
    current = registry.get(f"/thresholdStandard/{standard_id}").get_json()
    tighter = [dict(p) for p in current["parameters"]]
    tighter[1].update(conformanceTarget=50, thresholdTarget=40)
    assert registry.patch(f"/thresholdStandard/{standard_id}", json={
        "parameters": tighter, "validFor": {"startDateTime": at(12)},
        "changeReason": "new backbone"}).status_code == 200
    assert registry.post(f"/thresholdStandard/{standard_id}/approve",
                         json={"version": 2}).status_code == 200
    assert registry.get(f"/thresholdStandard/{standard_id}/version/1").get_json()[
        "lifecycleStatus"] == "superseded"
    ws_owner = suite.runtime("monitoring").app
    product = ws_owner.working_set.purchased_offering(estate["products"][0])
    noon = datetime.fromisoformat(at(13)).timestamp()
    eventually(lambda: (level := ws_owner.working_set.level_for(product, "latency", noon))
               is not None and level.standard_version == 2)

    products = estate["products"]
    for hour in range(10, 15):
        assert monitoring.send_batch(hour_batch(products, hour, latency=70)
                                     ).status_code == 201
    group_scope = {"scopeType": "offeringGroup", "scopeId": estate["group"]["id"]}

    def judged() -> list[tuple[str, int, str]]:
        rows = monitoring.evaluations({**group_scope, "windowStart.gte": at(10)},
                                      parameter="latency", sort="windowStart")
        return [(e["windowStart"], e["standardVersion"], e["classification"]) for e in rows]

    eventually(lambda: len(judged()) >= 4)
    assert judged()[:4] == [(at(10), 1, "ok"), (at(11), 1, "ok"),
                            (at(12), 2, "breached"), (at(13), 2, "breached")]


def test_an_offering_group_watched_by_a_regime_cannot_be_deleted_until_it_stops(
        suite: Any, registry: Client, monitoring: MonitoringDriver) -> None:
    group = RegistryDriver(FlaskHttp(registry)).create_group("Legacy DSL")
    group_url = f"/offeringGroup/{group['id']}"
    watch = monitoring.start_regime(name="DSL watch", offeringGroupId=group["id"],
                                    window="PT1H")
    night = monitoring.start_regime(name="DSL night watch", offeringGroupId=group["id"],
                                    window="PT1H")
    monitoring.pause(night["id"])
    # The regimes reach the registry over the bus: wait until it has heard of both, the
    # pause included, before asking it to delete the group.
    registry_app = suite.runtime("threshold-registry").app
    eventually(lambda: [(r.regime_id, r.status) for r in registry_app.regimes_watching(
        group["id"])] == [(watch["id"], "active"), (night["id"], "paused")])

    refused = registry.delete(group_url)
    assert refused.status_code == 409, refused.get_json()
    body = refused.get_json()
    assert body["code"] == "IN_USE"
    assert body["details"] == {"monitoringRegime": [watch["id"], night["id"]]}
    assert "'DSL watch'" in body["message"] and watch["id"] in body["message"]
    assert "'DSL night watch'" in body["message"] and "Stop the regimes" in body["message"]
    assert registry.get(group_url).get_json()["lifecycleStatus"] == "active"

    # A stopped regime no longer holds the group: once both are stopped, it goes.
    for regime in (watch, night):
        assert monitoring.stop(regime["id"]).status_code == 200
    eventually(lambda: registry_app.regimes_watching(group["id"]) == [])
    assert registry.delete(group_url).status_code == 204


def test_a_regime_of_a_group_retired_before_the_registry_heard_of_it_is_stopped(
        suite: Any, registry: Client, monitoring: MonitoringDriver) -> None:
    """The registry retired the group before a regime just started reached it (the
    retirement and the regime crossed on the bus): monitoring stops the regime when the
    retirement arrives, and refuses new ones."""
    group = RegistryDriver(FlaskHttp(registry)).create_group("Legacy ADSL")
    regime = monitoring.start_regime(name="ADSL watch", offeringGroupId=group["id"],
                                     window="PT1H")
    retired = {**group, "lifecycleStatus": "retired", "version": group["version"] + 1}
    envelope = Envelope(event_id=str(uuid.uuid4()), event_time=iso(),
                        event_type="OfferingGroupChangeEvent", source="threshold-registry",
                        event={"change": "retired", "offeringGroup": retired})
    suite.runtime("monitoring").transport.publish_raw(
        SLA_EVENTS, "threshold-registry.offering-group.retired", envelope.to_bytes())
    stopped = eventually(lambda: (r := monitoring.regime(regime["id"]).get_json())[
        "status"] == "stopped" and r)
    assert "Legacy ADSL" in stopped["statusReason"] and "retired" in stopped["statusReason"]
    refused = monitoring.try_start_regime(name="ADSL again", offeringGroupId=group["id"],
                                          window="PT1H")
    assert refused.status_code == 400
    assert "retired" in refused.get_json()["details"]["offeringGroupId"][0]


def test_regimes_have_a_lifecycle_and_refuse_bad_definitions(
        estate: dict[str, Any], monitoring: MonitoringDriver) -> None:
    regime = estate["regime"]["id"]
    assert monitoring.pause(regime, "migration").get_json()["status"] == "paused"
    paused = monitoring.send_batch([{
        "purchasedOfferingId": estate["products"][0], "parameter": "latency", "value": 1,
        "observedAt": at(1)}])
    assert paused.status_code == 409  # well formed, but no active regime watches it now
    assert "no active monitoring regime" in paused.get_json()["details"][
        "samples.0.parameter"][0]
    assert monitoring.pause(regime).status_code == 409
    assert monitoring.resume(regime).get_json()["status"] == "active"
    assert monitoring.stop(regime).get_json()["status"] == "stopped"
    assert monitoring.resume(regime).status_code == 409
    bad = monitoring.try_start_regime(
        name="x", window="five minutes", offeringGroupId=estate["group"]["id"],
        productOfferingId=estate["offering"]["id"])
    assert bad.status_code == 400
    assert {"window", "offeringGroupId"} <= set(bad.get_json()["details"])
    auditor = monitoring.with_scopes("audit:read")
    history = auditor.aggregate_history(regime).get_json()
    assert [e["eventType"] for e in history] == [
        "Regime.Started", "Regime.StatusChanged", "Regime.StatusChanged",
        "Regime.StatusChanged"]


def test_a_group_is_held_to_the_standard_of_the_sla_type_its_members_share(
        registry: Client, monitoring: MonitoringDriver) -> None:
    manager = RegistryDriver(FlaskHttp(registry))
    group = manager.create_group("Gold fibre")
    offering = manager.create_offering("Fibre 10G", group=group)
    gold = manager.create_sla_type("gold", maintenanceAccounting="counted-as-down",
                                   minimumNoticeDays=5)
    standard = manager.agree_standard(
        group=group, sla_type=gold, name="Gold latency",
        parameters=[latency_parameter(aggregation="max", thresholdTarget=None)])
    products = [f"gold-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    for product in products:
        manager.add_purchased_offering(product, offering, "c", sla_type=gold)
    monitoring.start_regime(name="Gold watch", offeringGroupId=group["id"],  # no SLA type
                            window="PT1H", allowedLateness="PT0S")

    def send(hour: int, value: float) -> int:
        return monitoring.send_batch([
            {"purchasedOfferingId": p, "parameter": "latency", "value": value,
             "observedAt": at(hour)} for p in products]).status_code

    eventually(lambda: send(0, 150) == 201)
    send(1, 10)
    status = eventually(lambda: monitoring.status(scopeType="offeringGroup",
                                                  scopeId=group["id"]))
    assert status[0]["level"] == "breached" and status[0]["value"] == 150
    assert status[0]["standardId"] == standard["id"]
