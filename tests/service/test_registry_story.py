"""The threshold-registry's application as its users meet it, in memory: no HTTP, no
broker, the event store in plain Python objects. The story an SLA manager and fulfilment
tell, step by step, in the manner of the ``eventsourcing`` library's examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.threshold_registry.application import ThresholdRegistry
from shared.errors import InUse, InvalidTransition, InvalidValue, MissingReference

JAN_2026 = datetime(2026, 1, 1, tzinfo=UTC)
JUN_2026 = datetime(2026, 6, 1, tzinfo=UTC)
JUN_2027 = datetime(2027, 6, 1, tzinfo=UTC)

AVAILABILITY = {"name": "availability", "unit": "%", "kind": "technical",
                "aggregation": "availability", "comparator": "GE",
                "conformanceTarget": 99.9, "thresholdTarget": 99.95,
                "conformancePeriod": "P30D", "evaluationWindow": "PT1H"}


def test_an_sla_manager_agrees_a_standard_that_fulfilment_s_products_fall_under() -> None:
    registry = ThresholdRegistry({"PERSISTENCE_MODULE": "eventsourcing.popo"})

    # The SLA manager groups similar offerings, and puts an offering in the group.
    fibre = registry.register_offering_group("Business fibre", "fibre for companies")
    offering = registry.register_offering("Fibre 1G", lifecycle_status="active",
                                          group_id=fibre.id)
    assert registry.group_of(offering.id) == fibre.id

    # The commercial terms: gold, with its credits and the time zone of its periods.
    gold = registry.register_sla_type(
        name="gold", maintenance_accounting="excluded", minimum_notice_days=10,
        credit_percent_per_breached_period=5, credit_cap_percent=30,
        time_zone="Europe/Paris")
    assert registry.sla_type_named("GOLD") is not None and gold.time_zone == "Europe/Paris"

    # Terms that contradict each other are refused, every problem at once, and leave no
    # trace.
    with pytest.raises(InvalidValue) as refused:
        registry.register_sla_type(name="", maintenance_accounting="sometimes",
                                   minimum_notice_days=10,
                                   credit_percent_per_breached_period=50,
                                   credit_cap_percent=10)
    assert set(refused.value.errors) == {"name", "maintenanceAccounting", "creditCapPercent"}
    assert len(registry.sla_types()) == 1

    # A standard for the group is drafted: a draft is never in force.
    standard = registry.register_standard(
        name="Fibre availability", basis="commerciallyAgreed", offering_group_id=fibre.id,
        sla_type_id=gold.id, valid_for={"startDateTime": JAN_2026},
        parameters=[AVAILABILITY])
    assert standard.latest["lifecycleStatus"] == "draft"
    assert registry.standards_in_force(offering.id, gold.id, JUN_2026) == []

    # Approved, version 1 is in force for the offering under gold, not under another type.
    registry.approve_standard(standard.id, 1, "sla-manager")
    [(found, version)] = registry.standards_in_force(offering.id, gold.id, JUN_2026)
    assert found.id == standard.id and version["version"] == 1
    assert version["approvedBy"] == "sla-manager"
    assert registry.standards_in_force(offering.id, None, JUN_2026) == []
    approved_at = datetime.now(UTC)

    # The customer renegotiates: a revision is a new draft; version 1 stays as it was.
    registry.revise_standard(standard.id, {
        "parameters": [{**AVAILABILITY, "conformanceTarget": 99.95, "thresholdTarget": 99.99}],
        "valid_for": {"startDateTime": datetime(2027, 1, 1, tzinfo=UTC)}},
        "customer renegotiated")
    revised = registry.standard(standard.id)
    assert [v["lifecycleStatus"] for v in revised.versions] == ["approved", "draft"]
    assert revised.get_version(1)["parameters"][0]["conformanceTarget"] == 99.9
    assert revised.latest["changeReason"] == "customer renegotiated"
    # A revision that changes nothing makes no version.
    registry.revise_standard(standard.id, {"name": "Fibre availability"})
    assert len(registry.standard(standard.id).versions) == 2

    # Approving version 2 supersedes version 1, which stays in force where 2 is not.
    registry.approve_standard(standard.id, 2, "sla-manager")
    assert [v["version"] for _, v in registry.standards_in_force(
        offering.id, gold.id, JUN_2026)] == [1]
    assert [v["version"] for _, v in registry.standards_in_force(
        offering.id, gold.id, JUN_2027)] == [2]
    # As the registry knew it before the second approval: version 1, even in 2027.
    assert [v["version"] for _, v in registry.standards_in_force(
        offering.id, gold.id, JUN_2027, as_known_at=approved_at)] == [1]
    with pytest.raises(InvalidTransition):
        registry.approve_standard(standard.id, 1, "sla-manager")  # superseded, not a draft

    # Fulfilment activates a product of the offering: it enters the inventory once.
    item = registry.upsert_purchased_offering(
        "fibre-0001", {"customer_id": "acme", "offering_id": offering.id,
                       "sla_type_id": gold.id, "monthly_charge": "99.0", "currency": "eur"},
        "active")
    assert (item.status, item.currency) == ("active", "EUR")
    registry.upsert_purchased_offering("fibre-0001", {"site": "Paris-1"}, "suspended")
    again = registry.purchased_offering("fibre-0001")
    assert (again.site, again.status, again.customer_id) == ("Paris-1", "suspended", "acme")
    assert [p.product_id for p in registry.purchased_offerings()] == ["fibre-0001"]
    # A product of an offering the registry does not know is refused, naming the field.
    with pytest.raises(MissingReference) as unknown:
        registry.create_purchased_offering(product_id="fibre-0002", customer_id="acme",
                                           offering_id=standard.id)
    assert set(unknown.value.errors) == {"productOfferingId"}

    # Analysis logs a result on the purchased offering; the same result is kept once.
    result = {"id": "trend-1", "kind": "trend", "summary": "latency deteriorating",
              "target": {"type": "purchasedOffering", "id": "fibre-0001"}}
    registry.log_analysis_result(result)
    registry.log_analysis_result(result)
    assert [r["id"] for r in registry.analysis_log(registry.purchased_offering(
        "fibre-0001"))] == ["trend-1"]

    # The group cannot go while the offering and the standard use it; then it can.
    with pytest.raises(InUse) as in_use:
        registry.retire_offering_group(fibre.id)
    assert in_use.value.users == {"productOffering": [str(offering.id)],
                                  "thresholdStandard": [str(standard.id)]}
    registry.retire_standard(standard.id)
    registry.update_offering(offering.id, {"group_id": None, "move_reason": "re-tiered"})
    assert registry.retire_offering_group(fibre.id).is_retired
    assert registry.standards_in_force(offering.id, gold.id, JUN_2027) == []

    # Every step is in the log, so the story replays to the same state.
    fresh = ThresholdRegistry({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert list(fresh.standards()) == []  # (another store: nothing shared)
    replayed = registry.repository.get(standard.id)
    assert replayed.versions == registry.standard(standard.id).versions
