"""Logs the registry wrote before its domain was split into modules still load: the
event store names each event by its class's topic, and those topics named the one
module ``services.threshold_registry.domain`` then."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from services.threshold_registry.application import ThresholdRegistry
from services.threshold_registry.domain import LEGACY_TOPICS
from services.threshold_registry.domain.replicas import MonitoringRegimeReplica
from services.threshold_registry.messaging import handlers
from services.threshold_registry.schemas import represent
from shared.bus.envelope import Envelope
from shared.times import iso

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
MODULE = re.compile(rb"services\.threshold_registry\.domain\.\w+:")
FIRST = b"services.threshold_registry.domain:"


def as_first_written(stored: StoredEvent) -> StoredEvent:
    """The record as the registry wrote it before the split: its topic, and the
    ``originator_topic`` of a creation event or snapshot, under the first module."""
    return StoredEvent(originator_id=stored.originator_id,
                       originator_version=stored.originator_version,
                       topic=MODULE.sub(FIRST, stored.topic.encode()).decode(),
                       state=MODULE.sub(FIRST, stored.state))


def test_every_aggregate_of_the_registry_has_its_first_topic_registered() -> None:
    assert sorted(LEGACY_TOPICS) == sorted(
        f"services.threshold_registry.domain:{name}" for name in (
            "OfferingGroup", "ProductOffering", "SlaType", "ThresholdStandard",
            "PurchasedOffering"))


def test_a_log_written_under_the_first_module_path_still_loads() -> None:
    then = ThresholdRegistry(POPO)
    group = then.register_offering_group("Business fibre")
    offering = then.register_offering("Fibre 1G", lifecycle_status="active",
                                      group_id=group.id)
    gold = then.register_sla_type(name="gold", maintenance_accounting="excluded",
                                  minimum_notice_days=10,
                                  credit_percent_per_breached_period=5, credit_cap_percent=30)
    standard = then.register_standard(
        name="Fibre availability", basis="commerciallyAgreed", offering_group_id=group.id,
        sla_type_id=gold.id, valid_for={"startDateTime": "2026-01-01T00:00:00Z"},
        parameters=[{"name": "availability", "unit": "%", "kind": "technical",
                     "aggregation": "availability", "comparator": "GE",
                     "conformanceTarget": 99.9, "evaluationWindow": "PT1H"}])
    then.approve_standard(standard.id, 1, "sla-manager")
    then.create_purchased_offering(product_id="fibre-0001", customer_id="acme",
                                   offering_id=offering.id, sla_type_id=gold.id)
    then.take_snapshot(standard.id)

    records = then.recorder.select_notifications(start=1, limit=100)
    assert then.snapshots is not None
    snapshots = then.snapshots.recorder.select_events(standard.id)
    assert snapshots
    now = ThresholdRegistry(POPO)
    now.recorder.insert_events([as_first_written(r) for r in records])
    assert now.snapshots is not None
    now.snapshots.recorder.insert_events([as_first_written(s) for s in snapshots])
    written = now.recorder.select_notifications(start=1, limit=100)
    assert written and all(r.topic.startswith("services.threshold_registry.domain:")
                           for r in written)
    assert all(b"services.threshold_registry.domain." not in r.state for r in written)

    # Every aggregate loads, through the repository and through the read model.
    assert now.offering_group(group.id).name == "Business fibre"
    assert now.offering(offering.id).group_id == group.id
    assert now.sla_type(gold.id).credit_cap_percent == 30
    assert now.purchased_offering("fibre-0001").customer_id == "acme"
    assert [s.id for s in now.standards()] == [standard.id]
    [(found, version)] = now.standards_in_force(offering.id, gold.id,
                                                datetime(2026, 6, 1, tzinfo=UTC))
    assert found.id == standard.id and version["version"] == 1
    # And it goes on: new events are recorded beside the old ones.
    now.revise_standard(standard.id, {"name": "Fibre availability v2"}, "rename")
    assert now.standard(standard.id).latest["version"] == 2


EARLIER_REPLICA = b"services.threshold_registry.replicas:MonitoringRegimeReplica"
MOVED_REPLICA = b"services.threshold_registry.domain.replicas:MonitoringRegimeReplica"


def regime_change(regime_id: str, group_id: str, status: str, version: int) -> Envelope:
    return Envelope(event_id=f"monitoring.regimes:{version}", event_time=iso(),
                    event_type="MonitoringRegimeChangeEvent", source="monitoring",
                    correlation_id="c", event={"change": "changed", "monitoringRegime": {
                        "id": regime_id, "name": regime_id.title(), "status": status,
                        "offeringGroupId": group_id, "version": version}})


def test_the_regimes_an_earlier_release_kept_still_load_and_newer_states_replace_them(
        ) -> None:
    """Before the replica kit, the registry kept each regime in a ``MonitoringRegimeReplica``
    recorded under ``services.threshold_registry.replicas``: such a log still loads, its
    regimes still hold their groups, and a newer state heard since replaces them (an
    older one does not)."""
    then = ThresholdRegistry(POPO)
    group_id = str(uuid4())
    watch = MonitoringRegimeReplica(regime_id="watch", name="Watch", offering_group_id=group_id,
                                    offering_id=None, status="active", source_version=2)
    night = MonitoringRegimeReplica(regime_id="night", name="Night", offering_group_id=group_id,
                                    offering_id=None, status="active", source_version=1)
    night._updated(name="Night", offering_group_id=group_id, offering_id=None,
                   status="stopped", source_version=4)
    then.save(watch, night)
    records = then.recorder.select_notifications(start=1, limit=100)

    now = ThresholdRegistry(POPO)
    now.recorder.insert_events([StoredEvent(
        originator_id=r.originator_id, originator_version=r.originator_version,
        topic=r.topic.encode().replace(MOVED_REPLICA, EARLIER_REPLICA).decode(),
        state=r.state.replace(MOVED_REPLICA, EARLIER_REPLICA)) for r in records])
    written = now.recorder.select_notifications(start=1, limit=100)
    assert [r.topic for r in written] == [
        "services.threshold_registry.replicas:MonitoringRegimeReplica.Received",
        "services.threshold_registry.replicas:MonitoringRegimeReplica.Received",
        "services.threshold_registry.replicas:MonitoringRegimeReplica.Updated"]

    assert [(r.regime_id, r.name, r.status) for r in now.regimes_watching(UUID(group_id))] == [
        ("watch", "Watch", "active")]
    assert now.regime_replica("night").status == "stopped"
    assert represent(now.repository.get(MonitoringRegimeReplica.create_id("watch"))) == {
        "id": "watch", "@type": "MonitoringRegimeReplica", "name": "Watch",
        "offeringGroupId": group_id, "productOfferingId": None, "status": "active",
        "sourceVersion": 2}

    handle = handlers(now)["MonitoringRegimeChangeEvent"]
    handle(regime_change("night", group_id, "active", 3))  # older than what was kept
    assert now.regimes_watching(UUID(group_id))[0].regime_id == "watch"
    assert now.regime_replica("night").status == "stopped"
    handle(regime_change("watch", group_id, "stopped", 3))  # newer: the kit's replica
    assert now.regimes_watching(UUID(group_id)) == []
    assert now.regime_replica("watch").source_version == 3


def test_what_aggregates_share_is_recorded_under_each_ones_own_topics() -> None:
    """Offerings and purchased offerings share how they log analysis results, and groups,
    offerings and purchased offerings how they record changed fields; each one's events
    keep the topics they were recorded under before (``<Class>.AnalysisResultLogged``,
    ``<Class>.Updated`` of its own module), so logs written then and now read alike."""
    app = ThresholdRegistry(POPO)
    group = app.register_offering_group("Business fibre")
    app.update_offering_group(group.id, {"description": "fibre for businesses"})
    offering = app.register_offering("Fibre 1G")
    app.update_offering(offering.id, {"name": "Fibre 1 Gbit/s"})
    app.create_purchased_offering(product_id="fibre-0001", customer_id="acme",
                                  offering_id=offering.id)
    app.update_purchased_offering("fibre-0001", {"site": "Paris"})
    updated = [r.topic for r in app.recorder.select_notifications(start=1, limit=10)
               if r.topic.endswith(".Updated")]
    assert updated == [
        "services.threshold_registry.domain.offerings:OfferingGroup.Updated",
        "services.threshold_registry.domain.offerings:ProductOffering.Updated",
        "services.threshold_registry.domain.inventory:PurchasedOffering.Updated"]
    assert (app.offering_group(group.id).description, app.offering(offering.id).name,
            app.purchased_offering("fibre-0001").site) == (
        "fibre for businesses", "Fibre 1 Gbit/s", "Paris")
    for target in ({"type": "productOffering", "id": str(offering.id)},
                   {"type": "purchasedOffering", "id": "fibre-0001"}):
        for _ in range(2):  # the same result id is kept once
            app.log_analysis_result({"id": "a1", "kind": "trend", "target": target})
    logged = [r.topic for r in app.recorder.select_notifications(start=1, limit=20)
              if r.topic.endswith("Logged")]
    # A result is a record of its own, named by its id: logged once, on the first target.
    assert logged == ["services.threshold_registry.domain.analysis_log:LoggedResult.Logged"]
    assert [r["id"] for r in app.analysis_log(app.offering(offering.id))] == ["a1"]
    assert app.offering(offering.id).analysis_log == []
