"""The threshold registry's domain model, walked through as its users meet it.

No store: aggregates are created, commanded, and rebuilt from their own events.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from services.threshold_registry.domain import (
    OfferingGroup,
    ProductOffering,
    PurchasedOffering,
    SlaType,
    ThresholdStandard,
    UnknownVersion,
    duration_seconds,
    normalise_comparator,
    parse_percentile,
    validate_parameters,
)
from shared.errors import DomainError, InvalidTransition, InvalidValue

JAN = datetime(2025, 1, 1, tzinfo=UTC)
JUL = datetime(2025, 7, 1, tzinfo=UTC)


def availability(**overrides: Any) -> dict[str, Any]:
    param = {
        "name": "availability",
        "unit": "%",
        "kind": "technical",
        "aggregation": "availability",
        "comparator": ".ge",
        "conformanceTarget": 99.9,
        "thresholdTarget": 99.95,
        "conformancePeriod": "P1M",
        "evaluationWindow": "PT5M",
    }
    param.update(overrides)
    return param


def latency(**overrides: Any) -> dict[str, Any]:
    param = {
        "name": "latency",
        "unit": "ms",
        "kind": "technical",
        "aggregation": "p95",
        "comparator": "LE",
        "conformanceTarget": 50,
        "thresholdTarget": 40,
        "evaluationWindow": "PT5M",
        "graceTimes": 2,
    }
    param.update(overrides)
    return param


def new_standard(**overrides: Any) -> ThresholdStandard:
    fields: dict[str, Any] = {
        "name": "Gold availability",
        "basis": "commerciallyAgreed",
        "offering_id": uuid4(),
        "parameters": [availability(), latency()],
        "valid_for": {"startDateTime": JAN, "endDateTime": None},
    }
    fields.update(overrides)
    return ThresholdStandard(**fields)


def errors_of(exc_info: pytest.ExceptionInfo[InvalidValue]) -> dict[str, list[str]]:
    return exc_info.value.errors


def replay(aggregate: Any) -> Any:
    """Rebuild an aggregate from the events it has pending (collecting them)."""
    copy = None
    for domain_event in aggregate.collect_events():
        copy = domain_event.mutate(copy)
    return copy


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def event_names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.pending_events]


# --- a user's story -----------------------------------------------------------------------


def test_service_manager_sets_up_an_offering_and_its_standard() -> None:
    # A service manager groups the business broadband offerings together.
    group = OfferingGroup(name="Business broadband", description="all business lines")
    assert group.lifecycle_status == "active"

    # Registers an offering in design, puts it in the group, then launches it.
    offering = ProductOffering(name="Fibre 1G", description=None)
    assert offering.lifecycle_status == "inDesign" and offering.group_id is None
    offering.move_to_group(group.id, reason="launch portfolio")
    offering.change_lifecycle("active")
    assert offering.group_id == group.id

    # Agrees commercial SLA terms.
    gold = SlaType(name="Gold", maintenance_accounting="excluded", minimum_notice_days=10,
                   credit_percent_per_breached_period=5, credit_cap_percent=25)

    # Drafts a threshold standard for the offering, and approves it.
    standard = new_standard(offering_id=offering.id, sla_type_id=gold.id)
    assert standard.latest["lifecycleStatus"] == "draft"
    assert standard.in_force(JUL) is None  # drafts are never in force
    standard.approve(1, approved_by="alice")
    assert standard.in_force(JUL)["version"] == 1
    assert standard.in_force(JUL)["parameters"][0]["comparator"] == "GE"

    # Tightens latency from July: a new version, approved; v1 still rules before July.
    standard.revise({"parameters": [availability(), latency(conformanceTarget=45)],
                     "validFor": {"startDateTime": JUL}}, reason="new backbone")
    standard.approve(2, approved_by="alice")
    assert standard.in_force(JUL - timedelta(seconds=1))["version"] == 1
    assert standard.in_force(JUL)["version"] == 2
    assert standard.get_version(1)["parameters"][1]["conformanceTarget"] == 50

    # A customer buys the offering.
    item = PurchasedOffering(product_id="PRD-1", customer_id="CUST-9", offering_id=offering.id,
                             sla_type_id=gold.id, monthly_charge="49.90", currency="eur",
                             start_date=JAN)
    assert item.id == PurchasedOffering.create_id("PRD-1")
    assert item.currency == "EUR" and item.monthly_charge == "49.90"

    # Every aggregate is rebuilt from its own events.
    for aggregate in (group, offering, gold, standard, item):
        assert state(replay(aggregate)) == state(aggregate)


# --- offering groups and offerings --------------------------------------------------------


def test_offering_group_update_and_retire() -> None:
    group = OfferingGroup(name="Mobile")
    group.update(name="Mobile")  # no change
    group.update(description="phones")
    group.update(description=None)
    group.retire()
    group.retire()  # already retired: nothing
    assert event_names(group) == ["Registered", "Updated", "Updated", "Retired"]
    with pytest.raises(InvalidTransition):
        group.update(name="Again")
    assert state(replay(group)) == state(group)


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 201])
def test_offering_group_name_is_required_and_short(name: Any) -> None:
    with pytest.raises(InvalidValue) as exc_info:
        OfferingGroup(name=name)
    assert "name" in errors_of(exc_info)


def test_offering_lifecycle_moves_only_forward() -> None:
    offering = ProductOffering(name="DSL")
    offering.change_lifecycle("inDesign")  # same: no event
    offering.change_lifecycle("retired")
    with pytest.raises(InvalidTransition, match="retired to active"):
        offering.change_lifecycle("active")
    with pytest.raises(InvalidValue):
        offering.change_lifecycle("launched")
    active = ProductOffering(name="Fibre", lifecycle_status="active")
    with pytest.raises(InvalidTransition):
        active.change_lifecycle("inDesign")
    assert event_names(offering) == ["Registered", "LifecycleChanged"]


def test_offering_moves_between_groups_with_a_record_of_each_move() -> None:
    first, second = uuid4(), uuid4()
    offering = ProductOffering(name="Fibre", group_id=first)
    offering.move_to_group(first, reason="same")  # no-op
    offering.move_to_group(second, reason="re-organisation")
    offering.move_to_group(None)
    moves = [e for e in offering.collect_events() if type(e).__name__ == "MovedToGroup"]
    assert [(m.from_group_id, m.to_group_id, m.reason) for m in moves] == [
        (first, second, "re-organisation"), (second, None, None)]
    assert offering.group_id is None
    with pytest.raises(InvalidValue):
        offering.move_to_group("not-a-uuid")  # type: ignore[arg-type]


def test_analysis_results_are_logged_once_per_id() -> None:
    offering = ProductOffering(name="Fibre")
    result = {"id": "r-1", "kind": "trend", "details": {"slope": -0.1}}
    offering.log_analysis_result(result)
    offering.log_analysis_result(dict(result))
    result["details"]["slope"] = 9  # the caller's later mutation does not leak in
    assert len(offering.analysis_log) == 1
    assert offering.analysis_log[0]["details"]["slope"] == -0.1
    with pytest.raises(InvalidValue):
        offering.log_analysis_result({"kind": "no id"})
    assert state(replay(offering)) == state(offering)


# --- SLA types ----------------------------------------------------------------------------


def sla_type(**overrides: Any) -> SlaType:
    terms: dict[str, Any] = {
        "name": "Silver", "maintenance_accounting": "counted-as-up", "minimum_notice_days": 5,
        "credit_percent_per_breached_period": 2.5, "credit_cap_percent": 10,
    }
    terms.update(overrides)
    return SlaType(**terms)


def test_sla_type_terms_are_validated_together() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        sla_type(maintenance_accounting="ignored", minimum_notice_days=400,
                 credit_percent_per_breached_period=20, credit_cap_percent=10)
    assert set(errors_of(exc_info)) == {"maintenanceAccounting", "minimumNoticeDays",
                                         "creditCapPercent"}
    silver = sla_type()
    with pytest.raises(InvalidValue) as exc_info:
        silver.change_terms(credit_percent_per_breached_period=50)  # above the cap of 10
    assert "creditCapPercent" in errors_of(exc_info)
    silver.change_terms(credit_cap_percent=10, minimum_notice_days=5)  # nothing changes
    silver.change_terms(credit_percent_per_breached_period=50, credit_cap_percent=60)
    silver.retire()
    with pytest.raises(InvalidTransition):
        silver.change_terms(name="Bronze")
    assert event_names(silver) == ["Registered", "TermsChanged", "Retired"]
    assert silver.credit_cap_percent == 60.0
    assert state(replay(silver)) == state(silver)


def test_an_sla_type_lays_its_periods_in_a_validated_time_zone() -> None:
    assert sla_type().time_zone == "UTC"  # the default
    paris = sla_type(time_zone="Europe/Paris")
    assert paris.terms["time_zone"] == "Europe/Paris"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", 5, "x" * 65):
        with pytest.raises(InvalidValue) as exc_info:
            sla_type(time_zone=bad)
        assert set(errors_of(exc_info)) == {"timeZone"}
    with pytest.raises(InvalidValue):
        paris.change_terms(time_zone="Europe/Atlantis")
    paris.change_terms(time_zone="America/New_York")
    assert paris.time_zone == "America/New_York"
    assert state(replay(paris)) == state(paris)


def test_an_sla_type_registered_before_time_zones_loads_with_utc() -> None:
    """The stored Registered event of version 1 has no time zone: it is upcast to UTC."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(sla_type(time_zone="Europe/Paris"))
    [stored] = [s for s in app.recorder.select_notifications(start=1, limit=10)
                if s.topic.endswith("SlaType.Registered")]
    old = json.loads(stored.state)
    assert old.pop("class_version") == 3 and old.pop("time_zone") == "Europe/Paris"
    del old["missing_data"], old["no_data_after"]  # as version 1 stored it
    legacy_id = uuid4()
    app.recorder.insert_events([StoredEvent(originator_id=legacy_id, originator_version=1,
                                            topic=stored.topic,
                                            state=json.dumps(old).encode())])
    legacy = app.repository.get(legacy_id)
    assert legacy.time_zone == "UTC" and legacy.name == "Silver"


def test_an_sla_type_says_what_missing_data_means_and_older_ones_load_as_unknown() -> None:
    assert (sla_type().missing_data, sla_type().no_data_after) == ("unknown", 1)
    strict = sla_type(missing_data="noData", no_data_after=3)
    assert strict.terms["missing_data"] == "noData" and strict.terms["no_data_after"] == 3
    with pytest.raises(InvalidValue) as exc_info:
        sla_type(missing_data="ignored", no_data_after=0)
    assert set(errors_of(exc_info)) == {"missingData", "noDataAfter"}
    strict.change_terms(missing_data="counted-as-down")
    assert state(replay(strict)) == state(strict)
    # A Registered event of version 2 (time zones, no missing data) is upcast to unknown.
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(sla_type(missing_data="noData"))
    [stored] = [s for s in app.recorder.select_notifications(start=1, limit=10)
                if s.topic.endswith("SlaType.Registered")]
    old = json.loads(stored.state)
    old["class_version"] = 2
    del old["missing_data"], old["no_data_after"]
    legacy_id = uuid4()
    app.recorder.insert_events([StoredEvent(originator_id=legacy_id, originator_version=1,
                                            topic=stored.topic,
                                            state=json.dumps(old).encode())])
    legacy = app.repository.get(legacy_id)
    assert (legacy.missing_data, legacy.no_data_after) == ("unknown", 1)


def test_sla_type_refuses_unknown_terms() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        sla_type().change_terms(colour="gold")
    assert "colour" in errors_of(exc_info)


# --- parameter validation -----------------------------------------------------------------


def test_parameters_are_normalised() -> None:
    [param] = validate_parameters([latency(comparator=".Le", aggregation="P99.9")])
    assert param["comparator"] == "LE" and param["aggregation"] == "p99.9"
    [param] = validate_parameters([availability(thresholdTarget=None)])
    assert param["thresholdTarget"] is None and param["graceTimes"] == 0


@pytest.mark.parametrize(("raw", "normal"), [("GE", "GE"), (".ge", "GE"), ("lt", "LT"),
                                             (" .EQ ", "EQ"), (".Gt", "GT")])
def test_comparators_in_either_form(raw: str, normal: str) -> None:
    assert normalise_comparator(raw) == normal


def test_unknown_comparator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown comparator"):
        normalise_comparator("NE")


def test_warning_on_the_wrong_side_for_ge() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([availability(thresholdTarget=99.5)])
    [message] = errors_of(exc_info)["parameters.0.thresholdTarget"]
    assert message == ("thresholdTarget 99.5 is on the wrong side of conformanceTarget 99.9 "
                       "for comparator GE (warning must be at or above the breach level)")


def test_warning_on_the_wrong_side_for_le() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([latency(thresholdTarget=60)])
    [message] = errors_of(exc_info)["parameters.0.thresholdTarget"]
    assert "wrong side" in message and "at or below" in message


def test_warning_at_the_breach_level_is_allowed() -> None:
    validate_parameters([latency(thresholdTarget=50), availability(thresholdTarget=99.9)])


def test_eq_takes_no_warning_level() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([latency(comparator="EQ", thresholdTarget=40)])
    assert "parameters.0.thresholdTarget" in errors_of(exc_info)
    validate_parameters([latency(comparator="EQ", thresholdTarget=None)])


@pytest.mark.parametrize("aggregation", ["p150", "p0", "p100.1"])
def test_percentile_outside_0_to_100_is_refused(aggregation: str) -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([latency(aggregation=aggregation)])
    [message] = errors_of(exc_info)["parameters.0.aggregation"]
    assert "outside 0-100" in message


def test_percentiles_parse() -> None:
    assert parse_percentile("p95") == 95.0
    assert parse_percentile("p99.9") == 99.9
    assert parse_percentile("p100") == 100.0
    assert parse_percentile("mean") is None


def test_unknown_unit_lists_the_known_ones() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([latency(unit="furlongs")])
    [message] = errors_of(exc_info)["parameters.0.unit"]
    assert message.startswith("unknown unit 'furlongs'; known units: %, ratio, ms")


def test_units_bound_their_values() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([availability(conformanceTarget=120, thresholdTarget=None),
                             availability(name="a2", unit="ratio", conformanceTarget=1.5,
                                          thresholdTarget=None)])
    assert set(errors_of(exc_info)) == {"parameters.0.conformanceTarget",
                                         "parameters.1.conformanceTarget"}


def test_availability_needs_percent_or_ratio() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([availability(unit="ms")])
    assert "parameters.0.unit" in errors_of(exc_info)


def test_duplicate_parameter_names_are_refused() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([latency(), latency(conformanceTarget=60, thresholdTarget=None)])
    assert "must be unique" in errors_of(exc_info)["parameters.1.name"][0]


def test_every_problem_is_reported_together() -> None:
    bad = {"name": "x", "unit": "furlongs", "kind": "magic", "aggregation": "median",
           "comparator": "NE", "conformancePeriod": "30 days", "graceTimes": -1}
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([bad])
    assert set(errors_of(exc_info)) == {
        f"parameters.0.{f}" for f in ("unit", "kind", "aggregation", "comparator",
                                      "conformanceTarget", "conformancePeriod",
                                      "evaluationWindow", "graceTimes")}


def test_no_parameters_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        validate_parameters([])
    assert "parameters" in errors_of(exc_info)


@pytest.mark.parametrize(("text", "seconds"), [
    ("P30D", 30 * 86400), ("PT1H", 3600), ("PT5M", 300), ("PT45S", 45), ("P1W", 604800),
    ("P1M", 30 * 86400), ("P1Y", 365 * 86400), ("P1DT2H", 93600),
])
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "30D", "P1DT", "PT1.5H", "P-1D", "pt5m"])
def test_malformed_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


# --- threshold standards ------------------------------------------------------------------


def test_standard_needs_exactly_one_scope() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        new_standard(offering_id=None)
    assert "productOfferingId" in errors_of(exc_info)
    with pytest.raises(InvalidValue):
        new_standard(offering_group_id=uuid4())
    assert new_standard(offering_id=None, offering_group_id=uuid4()).offering_id is None


def test_validity_must_end_after_it_starts() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        new_standard(valid_for={"startDateTime": JUL, "endDateTime": JAN})
    assert "validFor.endDateTime" in errors_of(exc_info)
    with pytest.raises(InvalidValue) as exc_info:
        new_standard(valid_for={"startDateTime": "2025-01-01T00:00:00"})  # no time zone
    assert "validFor.startDateTime" in errors_of(exc_info)


def test_invalid_standard_produces_no_event() -> None:
    standard = new_standard()
    standard.collect_events()
    with pytest.raises(InvalidValue):
        standard.revise({"parameters": [latency(unit="furlongs")]})
    with pytest.raises(InvalidValue):
        standard.revise({"offeringGroupId": str(uuid4())})
    assert standard.pending_events == [] and len(standard.versions) == 1


def test_revise_makes_a_new_version_and_keeps_the_old_one() -> None:
    standard = new_standard()
    v1 = standard.get_version(1)
    assert standard.revise({"name": "Gold availability"}) is None  # nothing changes
    v2 = standard.revise({"name": "Gold+", "slaTypeId": str(uuid4())}, reason="rename")
    assert v2 is not None and v2["version"] == 2 and v2["lifecycleStatus"] == "draft"
    assert v2["changeReason"] == "rename" and isinstance(v2["slaTypeId"], UUID)
    assert standard.get_version(1) == v1
    assert standard.latest["name"] == "Gold+"
    assert event_names(standard) == ["Registered", "Revised"]
    with pytest.raises(UnknownVersion):
        standard.get_version(3)
    with pytest.raises(KeyError):
        standard.approve(7, approved_by="x")


def test_only_drafts_are_approved() -> None:
    standard = new_standard()
    standard.approve(1, approved_by="alice")
    with pytest.raises(InvalidTransition, match="only a draft"):
        standard.approve(1, approved_by="bob")
    standard.revise({"name": "v2"})
    standard.retire(2)
    with pytest.raises(InvalidTransition, match="retired"):
        standard.approve(2, approved_by="bob")
    standard.revise({"name": "v3"})
    with pytest.raises(InvalidValue):
        standard.approve(3, approved_by=" ")


def test_in_force_is_the_highest_approved_version_valid_at_the_time() -> None:
    standard = new_standard()
    standard.approve(1, approved_by="alice")
    standard.revise({"validFor": {"startDateTime": JUL}})
    assert standard.in_force(JUL)["version"] == 1  # v2 is only a draft
    standard.approve(2, approved_by="alice")
    assert standard.in_force(JUL)["version"] == 2
    assert standard.in_force(JUL - timedelta(days=1))["version"] == 1
    assert standard.in_force(JAN - timedelta(seconds=1)) is None
    standard.retire(2)
    assert standard.in_force(JUL)["version"] == 1  # retired is not in force
    standard.retire()
    assert standard.in_force(JUL) is None and standard.is_retired
    standard.retire()  # nothing left to retire: no event
    assert event_names(standard) == ["Registered", "Approved", "Revised", "Approved",
                                     "Retired", "Retired"]


def test_approving_a_new_version_supersedes_the_approved_one() -> None:
    standard = new_standard()
    standard.approve(1, approved_by="alice")
    standard.revise({"parameters": [availability(conformanceTarget=99.95, thresholdTarget=None),
                                    latency()]}, reason="renegotiated")
    standard.approve(2, approved_by="bob")
    v1, v2 = standard.get_version(1), standard.get_version(2)
    assert v1["lifecycleStatus"] == "superseded" and v2["lifecycleStatus"] == "approved"
    assert v1["supersededBy"] == 2 and v1["supersededAt"] == v2["approvedAt"]
    assert v1["approvedBy"] == "alice"  # what it was stays readable
    assert state(replay(standard)) == state(standard)


def test_a_later_approval_does_not_rewrite_what_was_in_force_before_it() -> None:
    # v1 is approved and judged against; later v2 (same validity) is approved. A time
    # between the two approvals was, and stays, under v1; from v2's approval on, v2.
    standard = new_standard()
    standard.approve(1, approved_by="alice")
    standard.revise({"name": "Gold availability v2"})
    standard.approve(2, approved_by="alice")
    first, second = (standard.get_version(n)["approvedAt"] for n in (1, 2))
    assert first < second
    assert standard.in_force(first)["version"] == 1
    assert standard.in_force(second - timedelta(microseconds=1))["version"] == 1
    assert standard.in_force(second)["version"] == 2
    # Before any approval, the agreement approved last applies back over its validity.
    assert standard.in_force(JUL)["version"] == 2
    # Retiring v2 now ends it from now on; what was in force before stays so.
    standard.retire(2)
    retired = standard.get_version(2)["retiredAt"]
    assert standard.in_force(second)["version"] == 2
    assert standard.in_force(retired)["version"] == 1
    assert standard.in_force(JUL)["version"] == 1  # a retired version is not applied back


def test_approvals_recorded_before_supersession_still_supersede_when_replayed() -> None:
    import json

    from eventsourcing.persistence import StoredEvent

    standard = new_standard()
    standard.approve(1, approved_by="alice")
    standard.revise({"name": "v2"})
    standard.approve(2, approved_by="alice")
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(standard)
    old_style = []
    for stored in app.recorder.select_events(standard.id):
        if stored.topic.endswith("ThresholdStandard.Approved"):
            state_ = json.loads(stored.state)
            del state_["superseded"]
            state_.pop("class_version", None)
            stored = StoredEvent(stored.originator_id, stored.originator_version,
                                 stored.topic, json.dumps(state_).encode())
        old_style.append(stored)
    older = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    older.recorder.insert_events(old_style)
    replayed = older.repository.get(standard.id)
    assert [v["lifecycleStatus"] for v in replayed.versions] == ["superseded", "approved"]
    assert replayed.versions == standard.versions


def test_validity_end_is_exclusive() -> None:
    standard = new_standard(valid_for={"startDateTime": JAN, "endDateTime": JUL})
    standard.approve(1, approved_by="alice")
    assert standard.in_force(JUL - timedelta(microseconds=1)) is not None
    assert standard.in_force(JUL) is None


def test_standard_queries_return_copies() -> None:
    standard = new_standard()
    standard.latest["name"] = "changed"
    standard.get_version(1)["parameters"].clear()
    assert standard.latest["name"] == "Gold availability"
    assert len(standard.latest["parameters"]) == 2


def test_standard_rebuilds_from_its_events_and_from_a_store() -> None:
    standard = new_standard(description="gold")
    standard.approve(1, approved_by="alice")
    standard.revise({"parameters": [availability()]}, reason="drop latency")
    standard.retire(1)
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(standard)
    stored = app.repository.get(standard.id)
    assert stored.versions == standard.versions
    again = new_standard()
    again.revise({"name": "x"})
    assert state(replay(again)) == state(again)


# --- purchased offerings ------------------------------------------------------------------


def purchase(**overrides: Any) -> PurchasedOffering:
    fields: dict[str, Any] = {"product_id": "PRD-7", "customer_id": "C-1",
                              "offering_id": uuid4(), "start_date": JAN}
    fields.update(overrides)
    return PurchasedOffering(**fields)


def test_purchased_offering_ids_derive_from_the_product_id() -> None:
    assert purchase().id == purchase().id == PurchasedOffering.create_id("PRD-7")
    assert purchase(product_id="PRD-8").id != purchase().id
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(purchase())
    with pytest.raises(IntegrityError):
        app.save(purchase())  # creating the same product twice collides


def test_purchased_offering_validation() -> None:
    with pytest.raises(InvalidValue) as exc_info:
        purchase(customer_id="", monthly_charge="-1", currency="euros", status="gone",
                 end_date=JAN - timedelta(days=1))
    assert set(errors_of(exc_info)) == {"customerId", "monthlyCharge", "currency", "status",
                                         "endDate"}
    with pytest.raises(InvalidValue) as exc_info:
        purchase(monthly_charge=Decimal("10"))
    assert "currency" in errors_of(exc_info)


def test_purchased_offering_update_records_only_changes() -> None:
    item = purchase(site="Leeds", monthly_charge="10.00", currency="GBP")
    item.update(site="Leeds", currency="gbp")  # nothing changes
    item.update(site="York", monthly_charge=12)
    [updated] = [e for e in item.pending_events if type(e).__name__ == "Updated"]
    assert updated.changes == {"site": "York", "monthly_charge": "12"}
    with pytest.raises(InvalidValue):
        item.update(end_date=JAN)  # not after the start
    with pytest.raises(InvalidValue):
        item.update(status="terminated")
    assert state(replay(item)) == state(item)


def test_terminated_is_final() -> None:
    item = purchase()
    item.change_status("active")  # same: no event
    item.change_status("suspended", reason="unpaid")
    item.change_status("active")
    item.change_status("terminated", reason="cancelled", at=JUL)
    assert item.status_changed_at == JUL
    with pytest.raises(InvalidTransition, match="termination is final"):
        item.change_status("active")
    item.change_status("terminated")  # same: no event
    with pytest.raises(InvalidValue):
        item.change_status("paused")
    assert event_names(item) == ["Registered"] + ["StatusChanged"] * 3
    item.log_analysis_result({"id": "a-1"})
    item.log_analysis_result({"id": "a-1"})
    assert len(item.analysis_log) == 1
    assert state(replay(item)) == state(item)


def test_errors_share_a_base_class() -> None:
    assert issubclass(InvalidValue, DomainError) and issubclass(InvalidTransition, DomainError)
    assert issubclass(UnknownVersion, KeyError)
