"""Stories of the threshold-registry's users, through its HTTP API and the bus, in one
process. Every test runs on SQLite and on PostgreSQL. The SLA manager's steps go through
the registry's test driver (``tests/drivers/registry.py``); a test of how the API answers
a request sends that request itself."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.bus.envelope import Envelope, OutgoingMessage
from shared.bus.topology import FULFILMENT_EVENTS, SLA_EVENTS, Binding, QueueSpec
from shared.bus.transport import REASON_HEADER
from shared.times import iso
from tests.drivers.http import FlaskHttp
from tests.drivers.registry import RegistryDriver, availability
from tests.helpers import eventually


@pytest.fixture
def manager(registry: Any) -> RegistryDriver:
    """The SLA manager (and fulfilment, when it adds to the inventory by hand)."""
    return RegistryDriver(FlaskHttp(registry))


def catalogue(manager: RegistryDriver) -> dict[str, str]:
    return manager.catalogue().ids


def standard_body(manager: RegistryDriver, ids: dict[str, str], **overrides: Any
                  ) -> dict[str, Any]:
    return manager.standard_body(group=ids["group"], sla_type=ids["gold"], **overrides)


def test_sla_manager_agrees_approves_and_revises_a_threshold_standard(
        registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    created = manager.call("POST", "/thresholdStandard", 201,
                           json=standard_body(manager, ids))
    standard = created.body
    assert created.headers["Location"] == standard["href"]
    assert standard["lifecycleStatus"] == "draft" and standard["currentVersion"] == 1

    # A draft is not in force.
    assert manager.in_force(ids["offering"], ids["gold"]) == []

    before_revision = manager.approve_standard(standard)["version"]

    revised = manager.revise_standard(
        standard, parameters=[availability(conformanceTarget=99.95, thresholdTarget=99.99)],
        validFor={"startDateTime": "2027-01-01T00:00:00Z"},
        changeReason="customer renegotiated")
    assert revised["currentVersion"] == 2
    assert revised["lifecycleStatus"] == "draft"

    v1 = manager.standard_version(standard, 1)
    v2 = manager.standard_version(standard, 2)
    assert v1["lifecycleStatus"] == "approved" and v1["approvedBy"] == "tester"
    assert v1["parameters"][0]["conformanceTarget"] == 99.9
    assert v2["parameters"][0]["conformanceTarget"] == 99.95
    assert v2["changeReason"] == "customer renegotiated"
    versions = registry.get(f"/thresholdStandard/{standard['id']}/version")
    assert versions.headers["X-Total-Count"] == "2"

    manager.approve_standard(standard, 2)
    assert manager.versions_in_force(ids["offering"], ids["gold"],
                                     at="2026-06-01T00:00:00Z") == [1]
    assert manager.versions_in_force(ids["offering"], ids["gold"],
                                     at="2027-06-01T00:00:00Z") == [2]
    assert manager.in_force(ids["offering"], uuid.uuid4()) == []

    # The standard as it was before the revision, and its whole history, for an auditor.
    as_was = registry.get(f"/audit/aggregates/{standard['id']}/state?version={before_revision}")
    assert as_was.status_code == 200, as_was.get_json()
    assert [v["version"] for v in as_was.get_json()["resource"]["versions"]] == [1]
    history = registry.get(f"/audit/aggregates/{standard['id']}/history").get_json()
    assert [e["eventType"].rsplit(".", 1)[1] for e in history][:2] == ["Registered", "Approved"]
    assert all(e["actor"] == "tester" for e in history)


def test_without_an_offering_every_standard_in_force_is_listed(
        manager: RegistryDriver) -> None:
    """An SLA manager asks what is in force today for an SLA type across the catalogue,
    not only for one offering: the offering is optional, never a 400. The SLA type rule
    is the offering query's: a standard naming an SLA type applies to that type only."""
    fibre, dsl = manager.catalogue(), manager.catalogue("Business DSL", "DSL 100M", "silver")
    on_fibre = manager.agree_standard(group=fibre.group, sla_type=fibre.gold)
    on_dsl = manager.agree_standard(offering=dsl.offering, sla_type=dsl.gold)
    manager.draft_standard(group=fibre.group, sla_type=fibre.gold)  # a draft is not in force

    assert {found["id"] for found in manager.in_force(None, fibre.gold)} == {on_fibre["id"]}
    assert manager.in_force(None) == []  # both name an SLA type
    assert {found["id"] for found in manager.in_force(None, dsl.gold)} == {on_dsl["id"]}
    assert {found["id"] for found in manager.in_force(dsl.offering, dsl.gold)} == {
        on_dsl["id"]}


def test_a_breach_judged_under_version_1_is_still_reported_under_it_after_version_2(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    standard = manager.draft_standard(group=ids["group"], sla_type=ids["gold"])
    registered = datetime.now(UTC).isoformat()
    manager.approve_standard(standard)
    judged = datetime.now(UTC).isoformat()  # monitoring judges a window against v1 now

    runtime = suite.runtime("threshold-registry")
    watcher = QueueSpec(name="test-standard-watcher", bindings=(
        Binding(SLA_EVENTS, "threshold-registry.threshold-standard.approved"),))
    runtime.transport.declare([watcher])
    manager.revise_standard(standard, parameters=[availability(conformanceTarget=99.95,
                                                               thresholdTarget=99.99)],
                            changeReason="renegotiated")
    manager.approve_standard(standard, 2)

    def in_force(**query: str) -> list[int]:
        return manager.versions_in_force(ids["offering"], ids["gold"], **query)

    # Business time: at the time of the judgement v1 was in force, and still is reported so.
    assert in_force(at=judged) == [1]
    assert in_force() == [2]
    # v1 is marked superseded, in the version list and in the published event.
    versions = manager.standard_versions(standard)
    assert [(v["lifecycleStatus"], v["supersededBy"]) for v in versions] == [
        ("superseded", 2), ("approved", None)]
    assert versions[0]["supersededAt"] == versions[1]["approvedAt"]
    def approval_of_v2() -> dict[str, Any] | None:
        for message in list(runtime.transport._queues["test-standard-watcher"].items):
            event = json.loads(message.body)["event"]
            if event["standardVersion"]["version"] == 2:
                return event
        return None

    event = eventually(approval_of_v2)
    assert [v["lifecycleStatus"] for v in event["thresholdStandard"]["versions"]] == [
        "superseded", "approved"]

    # Record time: what the registry would have answered then, from its log.
    assert in_force(at="2027-06-01T00:00:00Z", as_known_at=judged) == [1]
    assert in_force(at="2027-06-01T00:00:00Z") == [2]
    assert in_force(as_known_at=registered) == []  # known, but only as a draft
    manager.in_force(ids["offering"], as_known_at="2000-01-01T00:00:00Z", expect=404)


@pytest.mark.parametrize(("parameter", "field"), [
    (availability(thresholdTarget=99.5), "parameters.0.thresholdTarget"),
    (availability(aggregation="p150", unit="ms", comparator="LE", conformanceTarget=100,
                  thresholdTarget=80), "parameters.0.aggregation"),
    (availability(unit="furlongs"), "parameters.0.unit"),
    ({**availability(), "comparator": "LE", "conformanceTarget": 50, "thresholdTarget": 60,
      "unit": "ms", "aggregation": "p99"}, "parameters.0.thresholdTarget"),
])
def test_inconsistent_levels_are_refused_with_the_field_and_why(
        registry: Any, manager: RegistryDriver, parameter: dict[str, Any], field: str) -> None:
    ids = catalogue(manager)
    response = registry.post("/thresholdStandard",
                             json=standard_body(manager, ids, parameters=[parameter]))
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "400" and field in body["details"], body
    assert registry.get("/thresholdStandard").headers["X-Total-Count"] == "0"


def test_bad_requests_get_clear_errors_never_a_500(registry: Any,
                                                   manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    both = registry.post("/thresholdStandard",
                         json=standard_body(manager, ids, productOfferingId=ids["offering"]))
    assert both.status_code == 400 and "productOfferingId" in both.get_json()["details"]
    unknown_field = registry.post("/offeringGroup", json={"name": "x", "colour": "red"})
    assert unknown_field.status_code == 400
    assert "colour" in unknown_field.get_json()["details"]
    not_json = registry.post("/offeringGroup", data="{nope",
                             headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    wrong_type = registry.post("/offeringGroup", data="name=x",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415
    patch_as_json = registry.request("PATCH", f"/offeringGroup/{ids['group']}",
                                     data=json.dumps({"name": "y"}),
                                     headers={"Content-Type": "application/json"})
    assert patch_as_json.status_code == 415
    too_big = registry.post("/offeringGroup", data=json.dumps({"name": "x" * 2_000_000}),
                            headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert registry.get(f"/productOffering/{uuid.uuid4()}").status_code == 404
    assert registry.get("/productOffering/not-a-uuid").status_code == 404
    assert registry.get("/productOffering?limit=-1").status_code == 400
    assert registry.get("/productOffering?nosuch=1").status_code == 400
    for junk in ([], "text", 12, {"name": None}, {"name": ""}, {"name": ["a"]}):
        response = registry.post("/productOffering", json=junk)
        assert response.status_code == 400, (junk, response.get_json())
        assert set(response.get_json()) >= {"code", "reason", "message", "status"}
    approve_missing = registry.post(f"/thresholdStandard/{uuid.uuid4()}/approve",
                                    json={"version": 1})
    assert approve_missing.status_code == 404


def test_a_filtered_list_too_large_to_count_says_how_many_at_least(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    """Past the count's cap a filtered list carries no ``X-Total-Count`` (it would not be
    exact) but a lower bound; unfiltered and narrow lists stay exact."""
    group = manager.create_group("Mobile")
    for i in range(5):
        manager.create_offering(f"Offer {i}", group=group, lifecycle_status="active")
    suite.runtime("threshold-registry").app.index.count_cap = 3
    broad = registry.get("/productOffering?lifecycleStatus=active&limit=2")
    assert broad.status_code == 200 and "X-Total-Count" not in broad.headers
    assert broad.headers["X-Total-Count-At-Least"] == "4"
    assert broad.headers["X-Result-Count"] == "2"
    everything = registry.get("/productOffering")
    assert everything.headers["X-Total-Count"] == "5"
    assert "X-Total-Count-At-Least" not in everything.headers
    narrow = registry.get("/productOffering?name=Offer 1")
    assert narrow.headers["X-Total-Count"] == "1"


def test_lists_filter_sort_page_and_select_fields(registry: Any,
                                                   manager: RegistryDriver) -> None:
    group = manager.create_group("Mobile")
    for i, status in enumerate(["active", "active", "inDesign", "active"]):
        manager.create_offering(f"Offer {i}", group=group if i % 2 == 0 else None,
                                lifecycle_status=status)
    active = registry.get("/productOffering?lifecycleStatus=active&sort=-name")
    assert active.headers["X-Total-Count"] == "3"
    assert [o["name"] for o in active.get_json()] == ["Offer 3", "Offer 1", "Offer 0"]
    page = registry.get("/productOffering?offset=1&limit=2&fields=name")
    assert page.headers["X-Total-Count"] == "4" and page.headers["X-Result-Count"] == "2"
    assert set(page.get_json()[0]) == {"id", "href", "@type", "name"}
    in_group = registry.get(f"/productOffering?offeringGroupId={group['id']}")
    assert in_group.headers["X-Total-Count"] == "2"
    newer = registry.get("/productOffering?version.gte=1&version.lt=2")
    assert newer.headers["X-Total-Count"] == "4"


def test_standards_in_force_are_paged_and_projected_and_a_version_has_no_etag(
        registry: Any, manager: RegistryDriver) -> None:
    """The in-force list's query names what is asked: it is paged and projected like any
    list, never filtered or sorted by attribute. A version is named by its number, not by
    its state (it can still be superseded or retired): it is answered without an ETag."""
    ids = catalogue(manager)
    standard = manager.agree_standard(group=ids["group"], sla_type=ids["gold"])
    asked = f"/thresholdStandard/inForce?productOfferingId={ids['offering']}" \
            f"&slaTypeId={ids['gold']}"
    found = registry.get(f"{asked}&fields=inForceVersion")
    assert found.status_code == 200
    assert (found.headers["X-Total-Count"], found.headers["X-Result-Count"]) == ("1", "1")
    assert [set(f) for f in found.get_json()] == [{"id", "href", "@type", "inForceVersion"}]
    assert found.get_json()[0]["inForceVersion"]["version"] == 1
    assert registry.get(f"{asked}&offset=1").get_json() == []
    for refused in ("name=Fibre", "sort=id"):
        assert registry.get(f"{asked}&{refused}").status_code == 400, refused

    version = registry.get(f"/thresholdStandard/{standard['id']}/version/1?fields=version")
    assert version.status_code == 200 and "ETag" not in version.headers
    assert version.get_json() == {
        "id": "1", "href": f"{standard['href']}/version/1",
        "@type": "ThresholdStandardVersion", "version": 1}


def test_a_stale_if_match_is_refused_with_409(registry: Any) -> None:
    group = registry.post("/offeringGroup", json={"name": "Voice"})
    etag = group.headers["ETag"]
    url = f"/offeringGroup/{group.get_json()['id']}"
    assert registry.patch(url, json={"description": "first"},
                          headers={"If-Match": etag}).status_code == 200
    stale = registry.patch(url, json={"description": "second"}, headers={"If-Match": etag})
    assert stale.status_code == 409
    assert "ETag" in stale.get_json()["details"]["If-Match"][0]
    current = registry.get(url)
    assert current.get_json()["description"] == "first"
    assert registry.patch(url, json={"description": "second"},
                          headers={"If-Match": current.headers["ETag"]}).status_code == 200


def test_moving_an_offering_between_groups_is_recorded(registry: Any,
                                                        manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    other = manager.create_group("Wholesale")
    moved = manager.move_offering(ids["offering"], other, reason="re-tiered")
    assert moved["offeringGroupId"] == other["id"]
    history = registry.get(f"/audit/aggregates/{ids['offering']}/history").get_json()
    move = [e for e in history if e["eventType"].endswith("MovedToGroup")]
    assert len(move) == 1
    assert move[0]["data"]["from_group_id"] == ids["group"]
    assert move[0]["data"]["to_group_id"] == other["id"]


def test_an_offering_group_still_used_by_an_offering_or_a_standard_cannot_be_deleted(
        registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    group_url = f"/offeringGroup/{ids['group']}"
    standard = manager.draft_standard(group=ids["group"], sla_type=ids["gold"])

    refused = registry.delete(group_url)
    assert refused.status_code == 409, refused.get_json()
    body = refused.get_json()
    assert body["code"] == "IN_USE"
    assert "Fibre 1G" in body["message"] and "Fibre availability" in body["message"]
    assert body["details"] == {"productOffering": [ids["offering"]],
                               "thresholdStandard": [standard["id"]]}
    assert registry.get(group_url).get_json()["lifecycleStatus"] == "active"

    # The standard is retired: only the offering uses the group now.
    manager.retire_standard(standard)
    still = manager.delete_group(ids["group"], expect=409).body
    assert still["details"] == {"productOffering": [ids["offering"]]}
    # The offering moves out: nothing uses the group, it goes.
    manager.move_offering(ids["offering"], None)
    manager.delete_group(ids["group"])
    manager.delete_group(ids["group"])  # already retired: idempotent

    # A retired group takes no new users.
    new_offering = registry.post("/productOffering", json={
        "name": "Fibre 2G", "offeringGroupId": ids["group"]})
    assert new_offering.status_code == 409
    assert "retired" in new_offering.get_json()["details"]["offeringGroupId"][0]
    moved = registry.patch(f"/productOffering/{ids['offering']}",
                           json={"offeringGroupId": ids["group"]})
    assert moved.status_code == 409 and "offeringGroupId" in moved.get_json()["details"]
    new_standard = registry.post("/thresholdStandard", json=standard_body(manager, ids))
    assert new_standard.status_code == 409
    assert "offeringGroupId" in new_standard.get_json()["details"]


def test_inventory_over_http_filters_and_status_changes(registry: Any,
                                                        manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    for n, (customer, group) in enumerate([("c1", "enterprise"), ("c2", "smb"),
                                           ("c3", "enterprise")]):
        manager.add_purchased_offering(
            f"prod-{n}", ids["offering"], customer, sla_type=ids["gold"],
            customerGroup=group, site="Lyon", monthlyCharge="120.50", currency="eur",
            startDate="2026-01-01T00:00:00Z")
    manager.add_purchased_offering("prod-0", ids["offering"], "c1", expect=409)
    enterprise = registry.get("/purchasedOffering?customerGroup=enterprise")
    assert enterprise.headers["X-Total-Count"] == "2"
    by_group = registry.get(f"/purchasedOffering?offeringGroupId={ids['group']}"
                            f"&slaTypeId={ids['gold']}&status=active")
    assert by_group.headers["X-Total-Count"] == "3"
    item = manager.purchased_offering("prod-1").body
    assert item["currency"] == "EUR" and item["monthlyCharge"] == "120.50"
    suspended = manager.change_purchased_offering("prod-1", status="suspended",
                                                  statusReason="unpaid")
    assert suspended["status"] == "suspended"
    manager.change_purchased_offering("prod-1", status="terminated")
    manager.change_purchased_offering("prod-1", status="active", expect=409)
    unknown = registry.post("/purchasedOffering", json={
        "customerId": "c9", "productOfferingId": str(uuid.uuid4())})
    assert unknown.status_code == 409 and "productOfferingId" in unknown.get_json()["details"]


def test_a_purchased_offering_id_outside_the_safe_characters_is_refused_before_storing(
        registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    for bad in ("evil\r\nSet-Cookie: x=1", "trailing\n", "with space", "a/b", "../up",
                "\u00e9t\u00e9", "x" * 201):
        response = registry.post("/purchasedOffering", json={
            "id": bad, "customerId": "c1", "productOfferingId": ids["offering"]})
        assert response.status_code == 400, (bad, response.status_code)
        assert "id" in response.get_json()["details"]
    assert registry.get("/purchasedOffering").headers["X-Total-Count"] == "0"
    assert registry.get("/audit/events?eventType=PurchasedOffering.*").get_json() == []
    fine = registry.post("/purchasedOffering", json={
        "id": "urn:acme:dsl.7_a~b", "customerId": "c1", "productOfferingId": ids["offering"]})
    assert fine.status_code == 201 and fine.headers["Location"].endswith("urn:acme:dsl.7_a~b")


# --- the bus ------------------------------------------------------------------------------
def product_event(product_id: str, offering_id: str, status: str = "active",
                  event_type: str = "ProductCreateEvent", **extra: Any) -> Envelope:
    product = {
        "id": product_id, "status": status,
        "productOffering": {"id": offering_id, "name": "Fibre 1G"},
        "relatedParty": [{"id": "cust-42", "role": "Customer", "name": "ACME"}],
        "productCharacteristic": [{"name": "slaType", "value": "gold"},
                                  {"name": "customerGroup", "value": "enterprise"},
                                  {"name": "site", "value": "Paris-1"}],
        "productPrice": [{"priceType": "recurring", "recurringChargePeriod": "month",
                          "price": {"taxIncludedAmount": {"unit": "EUR", "value": 99.0}}}],
        "startDate": "2026-11-01T00:00:00Z",
        **extra,
    }
    return Envelope(event_id=str(uuid.uuid4()), event_time=iso(), event_type=event_type,
                    event={"product": product}, correlation_id="fulfilment-corr-1")


def send(suite: Any, exchange: str, key: str, envelope: Envelope | bytes) -> None:
    transport = suite.runtime("threshold-registry").transport
    body = envelope if isinstance(envelope, bytes) else envelope.to_bytes()
    transport.publish_raw(exchange, key, body, message_id=None)


def test_fulfilment_activation_puts_the_product_in_the_inventory_once(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    envelope = product_event("fibre-0001", ids["offering"])
    send(suite, FULFILMENT_EVENTS, "product.create", envelope)
    send(suite, FULFILMENT_EVENTS, "product.create", envelope)  # redelivered
    item = eventually(lambda: registry.get("/purchasedOffering/fibre-0001").status_code == 200
                      and registry.get("/purchasedOffering/fibre-0001").get_json())
    assert item["customerId"] == "cust-42" and item["slaTypeId"] == ids["gold"]
    assert item["customerGroup"] == "enterprise" and item["monthlyCharge"] == "99.0"
    changed = product_event("fibre-0001", ids["offering"], status="suspended",
                            event_type="ProductStateChangeEvent")
    send(suite, FULFILMENT_EVENTS, "product.state-change", changed)
    eventually(lambda: registry.get("/purchasedOffering/fibre-0001").get_json()["status"]
               == "suspended")
    time.sleep(0.2)  # let a duplicate, if any, be processed before counting effects
    history = registry.get(f"/audit/aggregates/{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:sla-suite:purchased-offering:fibre-0001')}/history").get_json()  # noqa: E501
    assert len(history) == 2
    assert history[0]["correlationId"] == "fulfilment-corr-1"


def test_bad_fulfilment_messages_are_dead_lettered_with_the_reason(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    runtime = suite.runtime("threshold-registry")
    send(suite, FULFILMENT_EVENTS, "product.create", b"not json at all")
    send(suite, FULFILMENT_EVENTS, "product.create",
         product_event("p-x", str(uuid.uuid4())))  # unknown offering
    send(suite, FULFILMENT_EVENTS, "product.create", product_event("p-ok", ids["offering"]))
    eventually(lambda: registry.get("/purchasedOffering/p-ok").status_code == 200)
    dead = eventually(lambda: len(runtime.transport.dead_letters(runtime.queue)) == 2
                      and runtime.transport.dead_letters(runtime.queue))
    reasons = [m.headers[REASON_HEADER] for m in dead]
    assert "not JSON" in reasons[0]
    assert "is not an offering of the registry" in reasons[1]


def test_a_fulfilment_product_id_outside_the_safe_characters_is_dead_lettered(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    runtime = suite.runtime("threshold-registry")
    send(suite, FULFILMENT_EVENTS, "product.create", product_event("bad\r\nid", ids["offering"]))
    send(suite, FULFILMENT_EVENTS, "product.create", product_event("p-fine", ids["offering"]))
    eventually(lambda: registry.get("/purchasedOffering/p-fine").status_code == 200)
    dead = eventually(lambda: runtime.transport.dead_letters(runtime.queue))
    assert "is not a valid id" in dead[0].headers[REASON_HEADER]
    assert registry.get("/purchasedOffering").headers["X-Total-Count"] == "1"


def test_analysis_results_are_logged_into_the_inventory(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    ids = catalogue(manager)
    manager.add_purchased_offering("dsl-7", ids["offering"], "c7")
    for target in ({"type": "productOffering", "id": ids["offering"]},
                   {"type": "purchasedOffering", "id": "dsl-7"}):
        result = {"id": f"trend-{target['type']}", "kind": "trend", "target": target,
                  "summary": "latency deteriorating", "severity": "major",
                  "parameter": "latency", "analysedAt": "2026-11-20T00:00:00Z",
                  "details": {"slope": 0.4}}
        envelope = Envelope(event_id=str(uuid.uuid4()), event_time=iso(),
                            event_type="AnalysisResultEvent", source="analysis",
                            event={"analysisResult": result})
        send(suite, SLA_EVENTS, "analysis.analysis-result.produced", envelope)
    eventually(lambda: registry.get(f"/productOffering/{ids['offering']}/analysisLog")
               .headers["X-Total-Count"] == "1")
    log = eventually(lambda: registry.get("/purchasedOffering/dsl-7/analysisLog").get_json())
    assert log[0]["summary"] == "latency deteriorating" and log[0]["details"] == {"slope": 0.4}


def test_daily_analysis_results_leave_the_offering_as_it_was_and_are_paged(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    """Regression: each result was appended to the offering's own state, so an offering
    analysed every day grew without end (every change, replay and snapshot carrying its
    whole history). A result is now a record of its own, listed a page at a time."""
    ids = catalogue(manager)
    app = suite.runtime("threshold-registry").app
    offering_id = uuid.UUID(ids["offering"])
    legacy = app.offering(offering_id)  # as an earlier release logged results
    target = {"type": "productOffering", "id": ids["offering"]}
    legacy.log_analysis_result({"id": "old-1", "kind": "trend", "target": target,
                                "summary": "kept before", "severity": "info",
                                "parameter": None, "analysedAt": "2026-10-01T01:00:00Z",
                                "details": {}})
    app.save(legacy)
    version = app.offering(offering_id).version
    for day in range(30):
        for repeat in range(2):  # a redelivery changes nothing
            app.log_analysis_result({
                "id": f"trend-{day}", "kind": "trend", "target": target,
                "summary": f"day {day}", "severity": "major" if day % 10 == 0 else "info",
                "parameter": "availability", "analysedAt": f"2026-11-{day + 1:02d}T01:00:00Z",
                "details": {"day": day, "repeat": repeat}})
    app.log_analysis_result({"id": "old-1", "kind": "trend", "target": target,
                             "summary": "again", "severity": "info", "parameter": None,
                             "analysedAt": "2026-10-01T01:00:00Z", "details": {}})
    assert app.offering(offering_id).version == version
    assert len(app.offering(offering_id).analysis_log) == 1

    log = registry.get(f"/productOffering/{ids['offering']}/analysisLog?limit=5&offset=3")
    assert log.headers["X-Total-Count"] == "31"
    assert [r["id"] for r in log.get_json()] == ["trend-2", "trend-3", "trend-4", "trend-5",
                                                  "trend-6"]
    assert log.get_json()[0]["details"] == {"day": 2, "repeat": 0}
    first = registry.get(f"/productOffering/{ids['offering']}/analysisLog?limit=1")
    assert first.get_json()[0]["summary"] == "kept before"
    # Without an earlier release's results, a page is read from the database, filtered.
    manager.add_purchased_offering("dsl-9", ids["offering"], "c9")
    for day in range(12):
        app.log_analysis_result({"id": f"po-{day}", "kind": "trend", "summary": "s",
                                 "target": {"type": "purchasedOffering", "id": "dsl-9"},
                                 "severity": "major" if day % 4 == 0 else "info",
                                 "parameter": "latency", "details": {},
                                 "analysedAt": f"2026-11-{day + 1:02d}T01:00:00Z"})
    major = registry.get("/purchasedOffering/dsl-9/analysisLog?severity=major")
    assert [r["id"] for r in major.get_json()] == ["po-0", "po-4", "po-8"]
    assert major.headers["X-Total-Count"] == "3"
    recent = registry.get("/purchasedOffering/dsl-9/analysisLog?analysedAt.gte="
                          "2026-11-11T00:00:00Z").get_json()
    assert [r["id"] for r in recent] == ["po-10", "po-11"]


def test_every_change_is_published_on_the_bus_with_its_correlation_id(
        suite: Any, registry: Any) -> None:
    runtime = suite.runtime("threshold-registry")
    watcher = QueueSpec(name="test-watcher",
                        bindings=(Binding(SLA_EVENTS, "threshold-registry.#"),))
    runtime.transport.declare([watcher])
    registry.post("/offeringGroup", json={"name": "IoT"},
                  headers={"X-Correlation-ID": "corr-iot"})
    received: list[OutgoingMessage] = []

    def arrived() -> bool:
        received.extend(runtime.transport._queues["test-watcher"].items)
        return bool(received)

    eventually(arrived)
    body = json.loads(received[0].body)
    assert received[0].routing_key == "threshold-registry.offering-group.registered"
    assert body["eventType"] == "OfferingGroupChangeEvent"
    assert body["correlationId"] == "corr-iot"
    assert body["event"]["offeringGroup"]["name"] == "IoT"


def test_audit_queries_and_export_need_audit_read(registry: Any) -> None:
    registry.post("/offeringGroup", json={"name": "Audit me"},
                  headers={"X-Correlation-ID": "corr-audit"})
    reader = registry.with_scopes("sla:read")
    assert reader.get("/audit/events").status_code == 403
    auditor = registry.with_scopes("audit:read")
    events = auditor.get("/audit/events?correlationId=corr-audit").get_json()
    assert len(events) == 1 and events[0]["eventType"] == "OfferingGroup.Registered"
    by_type = auditor.get("/audit/events?eventType=OfferingGroup.*")
    assert by_type.headers["X-Total-Count"] == "1"
    future = auditor.get("/audit/events?from=2999-01-01T00:00:00Z")
    assert future.get_json() == []
    export = auditor.get("/audit/events/export")
    lines = [json.loads(line) for line in export.get_data(as_text=True).splitlines()]
    assert export.mimetype == "application/x-ndjson" and len(lines) == 1
    assert auditor.post("/offeringGroup", json={"name": "x"}).status_code == 403


def test_a_resource_as_it_was_at_a_past_time(registry: Any, manager: RegistryDriver) -> None:
    group = manager.create_group("Before")
    auditor = registry.with_scopes("audit:read")
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    registry.patch(f"/offeringGroup/{group['id']}", json={"name": "After"})
    then = auditor.get(f"/audit/aggregates/{group['id']}/state",
                       query_string={"asOf": moment}).get_json()
    assert then["resource"]["name"] == "Before" and then["aggregateVersion"] == 1
    now = auditor.get(f"/audit/aggregates/{group['id']}/state").get_json()
    assert now["resource"]["name"] == "After"
    before_it_existed = auditor.get(f"/audit/aggregates/{group['id']}/state",
                                    query_string={"asOf": "2000-01-01T00:00:00Z"})
    assert before_it_existed.status_code == 404


def test_readiness_names_what_is_down(tmp_path: Any) -> None:
    from services.catalogue import all_specs
    from shared import config
    from shared.wsgi import Suite
    from tests.conftest import base_env

    settings = config.load(base_env(tmp_path / "var", REDIS_URL="redis://127.0.0.1:1/0"))
    running = Suite(all_specs(), settings, start_workers=False)
    try:
        client = running.app("threshold-registry").test_client()
        response = client.get("/threshold-registry/v1/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["down"] == ["cache"] and body["checks"]["store"] == "ok"
        assert client.get("/threshold-registry/v1/healthz").status_code == 200
    finally:
        running.stop()


def test_an_sla_manager_sets_the_time_zone_of_the_sla_periods_and_monitoring_learns_it(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    terms = {"name": "paris gold", "maintenanceAccounting": "excluded", "minimumNoticeDays": 10,
             "creditPercentPerBreachedPeriod": 5, "creditCapPercent": 30}
    plain = manager.create_sla_type("paris gold")
    assert plain["timeZone"] == "UTC"
    bad = registry.post("/slaType", json={**terms, "timeZone": "Europe/Atlantis"})
    assert bad.status_code == 400 and "timeZone" in bad.get_json()["details"], bad.get_json()
    paris = registry.post("/slaType", json={**terms, "timeZone": "Europe/Paris"})
    assert paris.status_code == 201 and paris.get_json()["timeZone"] == "Europe/Paris"
    sla_id = paris.get_json()["id"]
    moved = registry.patch(f"/slaType/{sla_id}", json={"timeZone": "America/New_York"},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert moved.status_code == 200 and moved.get_json()["timeZone"] == "America/New_York"
    refused = registry.patch(f"/slaType/{sla_id}", json={"timeZone": "nowhere"},
                             headers={"Content-Type": "application/merge-patch+json"})
    assert refused.status_code == 400 and "timeZone" in refused.get_json()["details"]
    monitoring = suite.runtime("monitoring").app

    def learnt() -> bool:
        monitoring.working_set.refresh()
        return monitoring.working_set.time_zone(sla_id) == "America/New_York"

    eventually(learnt)
    assert monitoring.working_set.time_zone(plain["id"]) == "UTC"


def test_an_sla_manager_says_what_missing_data_means_on_the_sla_type_or_the_standard(
        suite: Any, registry: Any, manager: RegistryDriver) -> None:
    terms = {"name": "strict gold", "maintenanceAccounting": "excluded",
             "minimumNoticeDays": 10, "creditPercentPerBreachedPeriod": 5,
             "creditCapPercent": 30}
    plain = manager.create_sla_type("strict gold")
    assert (plain["missingData"], plain["noDataAfter"]) == ("unknown", 1)
    bad = registry.post("/slaType", json={**terms, "missingData": "ignored"})
    assert bad.status_code == 400 and "missingData" in bad.get_json()["details"]
    strict = manager.create_sla_type("strict gold", missingData="noData", noDataAfter=3)
    assert strict["noDataAfter"] == 3
    moved = registry.patch(f"/slaType/{strict['id']}",
                           json={"missingData": "counted-as-down"},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert moved.status_code == 200 and moved.get_json()["missingData"] == "counted-as-down"
    ids = catalogue(manager)
    body = standard_body(manager, ids, parameters=[availability(), availability(
        name="latency", unit="ms", aggregation="p99", comparator="LE", conformanceTarget=80,
        thresholdTarget=None, conformancePeriod=None, missingData="noData", noDataAfter=2)])
    created = registry.post("/thresholdStandard", json=body)
    assert created.status_code == 201, created.get_json()
    first, second = created.get_json()["parameters"]
    assert first["missingData"] is None  # as the SLA type says
    assert (second["missingData"], second["noDataAfter"]) == ("noData", 2)
    refused = registry.post("/thresholdStandard", json=standard_body(manager, ids, parameters=[
        availability(missingData="sometimes")]))
    assert refused.status_code == 400
    assert "parameters.0.missingData" in refused.get_json()["details"], refused.get_json()


def test_readiness_tells_anonymous_callers_what_is_down_but_not_why(tmp_path: Any) -> None:
    from services.catalogue import all_specs
    from shared import config
    from shared.wsgi import Suite
    from tests.conftest import base_env

    settings = config.load(base_env(tmp_path / "var", REDIS_URL="redis://127.0.0.1:1/0"))
    running = Suite(all_specs(), settings, start_workers=False)
    try:
        client = running.app("threshold-registry").test_client()
        response = client.get("/threshold-registry/v1/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["cache"] == "down"
        text = response.get_data(as_text=True)
        assert "127.0.0.1" not in text and "Error" not in text and "refused" not in text
    finally:
        running.stop()


def test_metrics_stay_small_whatever_methods_and_paths_callers_invent(registry: Any) -> None:
    def metrics() -> str:
        return registry.get("/metrics").get_data(as_text=True)

    for n in range(5):  # every label value the probes below can reach, once
        registry.request(f"INVENTED{n}", "/offeringGroup")
        registry.get(f"/no/such/path/{n}")
        registry.get(f"/productOffering/{uuid.uuid4()}")
    metrics()
    before = len(metrics())
    for n in range(300):
        registry.request(f"INVENTED{n}", "/offeringGroup")
        registry.request(f"X{n}", f"/made-up-{n}")
        registry.get(f"/no/such/path/{n}")
        registry.get(f"/productOffering/{uuid.uuid4()}")
    text = metrics()
    assert "INVENTED" not in text and "made-up" not in text and "/no/such" not in text
    assert 'method="other"' in text and 'route="unmatched"' in text
    assert 'route="/threshold-registry/v1/productOffering/<uuid:offering_id>"' in text
    assert len(text) - before < 2_000, "metrics grew with the requests' methods or paths"
