"""Every message the registry publishes matches its contract: a scenario that produces
every kind of registry event, each notification mapped by the outbox and validated."""

from __future__ import annotations

from typing import Any

import pytest

from shared import config
from tests.conftest import base_env
from tests.service.conftest import Client


@pytest.fixture
def suite(tmp_path: Any) -> Any:
    from services.catalogue import all_specs
    from shared.wsgi import Suite

    running = Suite(all_specs(), config.load(base_env(tmp_path / "var")), start_workers=False)
    yield running
    running.stop()


def test_every_registry_event_is_published_in_its_contract_shape(suite: Any) -> None:
    r = Client(suite.app("threshold-registry"), "/threshold-registry/v1")
    group = r.post("/offeringGroup", json={"name": "G"}).get_json()
    other = r.post("/offeringGroup", json={"name": "H"}).get_json()
    r.patch(f"/offeringGroup/{other['id']}", json={"description": "spare"})
    r.delete(f"/offeringGroup/{other['id']}")
    offering = r.post("/productOffering", json={"name": "O", "offeringGroupId": group["id"]}
                      ).get_json()
    r.patch(f"/productOffering/{offering['id']}", json={"lifecycleStatus": "active",
                                                         "name": "O2", "offeringGroupId": None})
    gold = r.post("/slaType", json={"name": "gold", "maintenanceAccounting": "counted-as-up",
                                    "minimumNoticeDays": 5, "creditPercentPerBreachedPeriod": 2,
                                    "creditCapPercent": 20}).get_json()
    r.patch(f"/slaType/{gold['id']}", json={"creditCapPercent": 25})
    standard = r.post("/thresholdStandard", json={
        "name": "Latency", "productOfferingId": offering["id"], "basis": "internallyAcceptable",
        "validFor": {"startDateTime": "2026-01-01T00:00:00Z",
                     "endDateTime": "2027-01-01T00:00:00Z"},
        "parameters": [{"name": "latency", "unit": "ms", "kind": "technical",
                        "aggregation": "p99", "comparator": ".le", "conformanceTarget": 50,
                        "thresholdTarget": 40, "evaluationWindow": "PT5M"}]}).get_json()
    r.post(f"/thresholdStandard/{standard['id']}/approve", json={"version": 1})
    r.patch(f"/thresholdStandard/{standard['id']}", json={"slaTypeId": gold["id"]})
    r.post(f"/thresholdStandard/{standard['id']}/retire", json={})
    r.post("/purchasedOffering", json={"id": "p1", "customerId": "c", "monthlyCharge": "10",
                                       "currency": "EUR", "productOfferingId": offering["id"]})
    r.post("/purchasedOffering", json={"id": "p2", "customerId": "c",
                                       "productOfferingId": offering["id"]})  # no charge
    r.patch("/purchasedOffering/p1", json={"site": "Paris", "status": "suspended"})
    runtime = suite.runtime("threshold-registry")
    runtime.app.log_analysis_result({
        "id": "a1", "kind": "aggregate", "target": {"type": "purchasedOffering", "id": "p1"},
        "summary": "ok", "severity": "info", "parameter": None,
        "analysedAt": "2026-11-01T00:00:00Z", "details": {}})

    seen: set[str] = set()
    for notification in runtime.app.notifications():
        for message in runtime.relay.to_messages(notification):  # validates each
            seen.add(message.routing_key)
    assert seen >= {
        "threshold-registry.offering-group.registered",
        "threshold-registry.offering-group.updated",
        "threshold-registry.offering-group.retired",
        "threshold-registry.product-offering.lifecycle-changed",
        "threshold-registry.product-offering.moved-to-group",
        "threshold-registry.sla-type.terms-changed",
        "threshold-registry.threshold-standard.approved",
        "threshold-registry.threshold-standard.revised",
        "threshold-registry.threshold-standard.retired",
        "threshold-registry.purchased-offering.status-changed",
        "threshold-registry.analysis-log.logged",
    }, seen
