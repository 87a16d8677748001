"""The monitoring-regime contract on both sides: monitoring publishes every change of a
regime from its main log in the shape of ``MonitoringRegimeChangeEvent``, and the
registry takes the contract's example and monitoring's own messages into its replica."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from shared import config
from shared.bus.contracts import CONTRACTS_DIR
from shared.bus.envelope import Envelope
from tests.conftest import base_env
from tests.service.conftest import Client

EXAMPLE = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())[
    "components"]["messages"]["MonitoringRegimeChangeEvent"]["examples"][0]["payload"]


@pytest.fixture
def suite(tmp_path: Any) -> Any:
    from services.catalogue import all_specs
    from shared.wsgi import Suite

    running = Suite(all_specs(), config.load(base_env(tmp_path / "var")), start_workers=False)
    yield running
    running.stop()


def _regime_messages(suite: Any) -> list[Any]:
    """What monitoring's relay of its main log makes of every notification (validated
    against the contract as it maps them)."""
    runtime = suite.runtime("monitoring")
    (relay,) = [r for r in runtime.relays if r.log == "regimes"]
    return [m for n in relay.app.notifications() for m in relay.to_messages(n)]


def test_every_change_of_a_regime_is_published_in_its_contract_shape(suite: Any) -> None:
    r = Client(suite.app("threshold-registry"), "/threshold-registry/v1")
    m = Client(suite.app("monitoring"), "/monitoring/v1")
    group = r.post("/offeringGroup", json={"name": "G"}).get_json()
    regime = m.post("/monitoringRegime", json={
        "name": "Watch", "offeringGroupId": group["id"], "window": "PT5M"}).get_json()
    url = f"/monitoringRegime/{regime['id']}"
    m.patch(url, json={"name": "Night watch"})
    for action in ("pause", "resume", "stop"):
        assert m.post(f"{url}/{action}", json={}).status_code == 200

    messages = _regime_messages(suite)
    assert [msg.routing_key for msg in messages] == [
        f"monitoring.monitoring-regime.{change}"
        for change in ("started", "changed", "paused", "resumed", "stopped")]
    bodies = [msg.envelope.to_dict() for msg in messages]
    assert all(b["eventType"] == "MonitoringRegimeChangeEvent" and b["source"] == "monitoring"
               and b["eventId"].startswith("monitoring.regimes:") for b in bodies)
    carried = [b["event"]["monitoringRegime"] for b in bodies]
    assert [(c["version"], c["status"], c["name"]) for c in carried] == [
        (1, "active", "Watch"), (2, "active", "Night watch"), (3, "paused", "Night watch"),
        (4, "active", "Night watch"), (5, "stopped", "Night watch")]
    assert {c["id"] for c in carried} == {regime["id"]}
    assert {c["offeringGroupId"] for c in carried} == {group["id"]}
    assert carried[0]["startedAt"] == carried[-1]["startedAt"] <= carried[-1]["changedAt"]
    # The crossings and alerts keep their own log, relay and ids.
    assert suite.runtime("monitoring").relay.log == ""


def test_the_registry_keeps_the_newest_state_of_each_regime_in_any_order(suite: Any) -> None:
    registry = suite.runtime("threshold-registry")
    handle = registry.spec.handlers(registry.app)["MonitoringRegimeChangeEvent"]
    started = copy.deepcopy(EXAMPLE)
    stopped = copy.deepcopy(EXAMPLE)
    stopped["event"]["change"] = "stopped"
    stopped["event"]["monitoringRegime"].update(status="stopped", version=3)
    regime_id = EXAMPLE["event"]["monitoringRegime"]["id"]
    group_id = EXAMPLE["event"]["monitoringRegime"]["offeringGroupId"]

    handle(Envelope.from_dict(started))
    replica = registry.app.regime_replica(regime_id)
    assert (replica.status, replica.offering_group_id, replica.name) == (
        "active", group_id, "Business broadband watch")
    handle(Envelope.from_dict(stopped))
    handle(Envelope.from_dict(started))  # late: an older version changes nothing
    replica = registry.app.regime_replica(regime_id)
    assert (replica.status, replica.source_version) == ("stopped", 3)
    assert registry.app.regimes_watching(group_id) == []


def test_the_registry_takes_what_monitoring_publishes(suite: Any) -> None:
    r = Client(suite.app("threshold-registry"), "/threshold-registry/v1")
    m = Client(suite.app("monitoring"), "/monitoring/v1")
    group = r.post("/offeringGroup", json={"name": "G"}).get_json()
    regime = m.post("/monitoringRegime", json={
        "name": "Watch", "offeringGroupId": group["id"], "window": "PT5M"}).get_json()
    m.post(f"/monitoringRegime/{regime['id']}/pause", json={})
    registry = suite.runtime("threshold-registry")
    handle = registry.spec.handlers(registry.app)["MonitoringRegimeChangeEvent"]
    for message in _regime_messages(suite):
        handle(Envelope.from_bytes(message.envelope.to_bytes()))
    (watching,) = registry.app.regimes_watching(group["id"])
    assert (watching.regime_id, watching.name, watching.status) == (
        regime["id"], "Watch", "paused")
