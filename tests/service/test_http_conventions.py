"""What every service's HTTP layer does the same way, as its OpenAPI document says:
405 names the allowed methods, JSON values have the documented types, a PATCH needs a
body, sorts name attributes, and a deleted resource is gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared import config
from tests.conftest import base_env
from tests.service.conftest import Client

REGISTRY = "/threshold-registry/v1"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    from services.catalogue import all_specs
    from shared.wsgi import Suite

    data = Path(tmp_path_factory.mktemp("conventions")) / "var"
    running = Suite(all_specs(), config.load(base_env(data)))
    try:
        yield Client(running.app("threshold-registry"), REGISTRY)
    finally:
        running.stop()


def sla_type(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"name": "gold", "maintenanceAccounting": "excluded",
                               "minimumNoticeDays": 10, "creditPercentPerBreachedPeriod": 5,
                               "creditCapPercent": 30}
    body.update(overrides)
    return body


def test_an_undeclared_method_gets_405_with_allow(registry: Client) -> None:
    for path in ("/healthz", "/offeringGroup"):
        response = registry.request("TRACE", path)
        assert response.status_code == 405
        assert "GET" in response.headers["Allow"], path
        assert response.get_json()["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(("field", "value"), [
    ("minimumNoticeDays", 2.5), ("minimumNoticeDays", "5"), ("minimumNoticeDays", True),
    ("creditCapPercent", "30"), ("creditCapPercent", False), ("name", 7)])
def test_json_values_must_have_the_documented_type(
        registry: Client, field: str, value: object) -> None:
    response = registry.post("/slaType", json=sla_type(**{field: value}))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["details"]


def test_integral_numbers_are_not_truncated_but_whole_ones_are_taken(registry: Client) -> None:
    created = registry.post("/slaType", json=sla_type(minimumNoticeDays=3))
    assert created.status_code == 201 and created.get_json()["minimumNoticeDays"] == 3


def test_a_patch_without_a_body_is_refused(registry: Client) -> None:
    group = registry.post("/offeringGroup", json={"name": "Patched"}).get_json()
    response = registry._client.open(group["href"], method="PATCH", headers={
        "Authorization": f"Bearer {registry.token}"})
    assert response.status_code == 400
    assert "merge-patch body is required" in response.get_json()["message"]
    assert registry.patch(group["href"], json={}).status_code == 200


def test_sorting_by_an_unknown_attribute_is_refused_naming_the_sortable_ones(
        registry: Client) -> None:
    response = registry.get("/offeringGroup?sort=colour")
    assert response.status_code == 400
    assert "lifecycleStatus" in json.dumps(response.get_json()["details"])
    assert registry.get("/offeringGroup?sort=-name,lifecycleStatus").status_code == 200


def test_money_is_decimal_text(registry: Client) -> None:
    offering = registry.post("/productOffering", json={"name": "Fibre"}).get_json()
    base = {"customerId": "c1", "productOfferingId": offering["id"], "currency": "EUR"}
    as_number = registry.post("/purchasedOffering", json={**base, "monthlyCharge": 10})
    assert as_number.status_code == 400 and "monthlyCharge" in as_number.get_json()["details"]
    negative = registry.post("/purchasedOffering", json={**base, "monthlyCharge": "-1"})
    assert negative.status_code == 400
    # a pattern is matched whole: Python's $ alone would take a final newline
    trailing = registry.post("/purchasedOffering", json={**base, "monthlyCharge": "10\n"})
    assert trailing.status_code == 400 and "monthlyCharge" in trailing.get_json()["details"]
    created = registry.post("/purchasedOffering", json={**base, "monthlyCharge": "10.50"})
    assert created.status_code == 201 and created.get_json()["monthlyCharge"] == "10.50"


@pytest.mark.parametrize("window", ["PT0S", "P", "5 minutes", "P1DT"])
def test_a_window_must_be_an_iso_duration_longer_than_zero(
        registry: Client, window: str) -> None:
    group = registry.post("/offeringGroup", json={"name": "Windows"}).get_json()
    response = registry.post("/thresholdStandard", json={
        "name": "s", "offeringGroupId": group["id"], "basis": "commerciallyAgreed",
        "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
        "parameters": [{"name": "availability", "unit": "%", "kind": "technical",
                        "aggregation": "availability", "comparator": "GE",
                        "conformanceTarget": 99.9, "evaluationWindow": window}]})
    assert response.status_code == 400
    assert "parameters.0.evaluationWindow" in response.get_json()["details"]


def test_a_deleted_offering_group_is_gone(registry: Client) -> None:
    group = registry.post("/offeringGroup", json={"name": "Short-lived"}).get_json()
    assert registry.delete(group["href"]).status_code == 204
    gone = registry.get(group["href"])
    assert gone.status_code == 404
    assert group["id"] not in {g["id"] for g in registry.get("/offeringGroup").get_json()}
    assert f"audit/aggregates/{group['id']}/history" in gone.get_json()["message"]
    history = registry.get(f"/audit/aggregates/{group['id']}/history")
    assert [e["eventType"] for e in history.get_json()][-1] == "OfferingGroup.Retired"


def test_a_past_state_with_both_version_and_time_is_the_earlier(registry: Client) -> None:
    group = registry.post("/offeringGroup", json={"name": "v1"}).get_json()
    between = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    registry.patch(group["href"], json={"name": "v2"})
    registry.patch(group["href"], json={"name": "v3"})
    state = f"/audit/aggregates/{group['id']}/state"
    both = registry.get(state, query_string={"version": 3, "asOf": between})
    assert both.status_code == 200, both.get_json()
    assert both.get_json()["aggregateVersion"] == 1
    assert registry.get(state, query_string={"version": 2}).get_json()["resource"][
        "name"] == "v2"


def test_a_body_naming_what_does_not_exist_gets_409_with_the_field(registry: Client) -> None:
    """404 speaks of the resource the URL names; a body that names what does not exist (or
    no longer takes part) conflicts with the registry's state: 409 ``UNKNOWN_REFERENCE``
    with the field named. A 404 here would tell a client (and schemathesis' resource
    availability check) that the offering it is changing has gone."""
    missing = "0b7e6a2c-6f0e-4a8e-9d8c-9f1d2a3b4c5d"
    group = registry.post("/offeringGroup", json={"name": "Refs"}).get_json()
    standard = registry.post("/thresholdStandard", json={
        "name": "s", "offeringGroupId": group["id"], "slaTypeId": missing,
        "basis": "commerciallyAgreed", "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
        "parameters": [{"name": "availability", "unit": "%", "kind": "technical",
                        "aggregation": "availability", "comparator": "GE",
                        "conformanceTarget": 99.9, "evaluationWindow": "PT1H"}]})
    assert standard.status_code == 409 and "slaTypeId" in standard.get_json()["details"]
    item = registry.post("/purchasedOffering", json={"customerId": "c",
                                                      "productOfferingId": missing})
    assert item.status_code == 409
    assert item.get_json()["details"]["productOfferingId"] == [
        f"no product offering with id {missing}"]
    offering = registry.post("/productOffering", json={"name": "o"}).get_json()
    moved = registry.patch(f"/productOffering/{offering['id']}",
                           json={"offeringGroupId": missing})
    assert moved.status_code == 409 and moved.get_json()["details"]["offeringGroupId"] == [
        f"no offering group with id {missing}"]


@pytest.mark.parametrize("blank", [" ", "\x1c", "\u3000\t"])
def test_a_name_of_only_white_space_is_refused_at_the_door(registry: Client,
                                                           blank: str) -> None:
    response = registry.post("/offeringGroup", json={"name": blank})
    assert response.status_code == 400
    assert response.get_json()["details"]["name"] == ["must contain more than white space"]
