"""The window-summary contract on both sides: monitoring publishes each closed window as
one ``WindowSummaryEvent`` per series in its contract's shape (with the purchased
offering's customer, offering, group and SLA type), and analysis keeps the contract's
example and monitoring's own messages once each, whatever repeats them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
import yaml

from services.monitoring.domain import EvaluatedWindow, window_figures
from shared import config
from shared.bus.contracts import CONTRACTS_DIR
from shared.bus.envelope import Envelope
from tests.conftest import base_env

EXAMPLE = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())[
    "components"]["messages"]["WindowSummaryEvent"]["examples"][0]["payload"]
START, END = 1_764_547_200.0, 1_764_550_800.0  # 2025-12-01 00:00 to 01:00 UTC


@pytest.fixture
def suite(tmp_path: Any) -> Any:
    from services.catalogue import all_specs
    from shared.wsgi import Suite

    running = Suite(all_specs(), config.load(base_env(tmp_path / "var")), start_workers=False)
    yield running
    running.stop()


def _result(value: float, classification: str, eligible: float, bad: float) -> dict[str, Any]:
    return {"value": value, "unit": "%", "aggregation": "availability", "count": 1,
            "eligibleSeconds": eligible, "badSeconds": bad, "excludedSeconds": 0.0,
            "classification": classification, "planned": False,
            "standardId": str(uuid.uuid4()), "standardVersion": 1, "comparator": "GE",
            "conformanceTarget": 99.9, "thresholdTarget": 99.95, "graceTimes": 0,
            "batchIds": ["b1"], "lateSamples": 0, "remainingBudget": None,
            "budgetUnit": "ratio", "projectedExhaustion": None, "crossingId": None}


def _closed_window(suite: Any) -> tuple[dict[str, Any], Any]:
    """A regime over a group, a purchased offering monitoring knows, and one closed
    window of it: the offering's series and the group's pooled one."""
    monitoring = suite.runtime("monitoring").app
    group, offering, gold = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    monitoring.receive_replica("offeringGroup", group, {"id": group, "version": 1,
                                                        "lifecycleStatus": "active"}, 1)
    monitoring.receive_replica("productOffering", offering, {
        "id": offering, "version": 1, "offeringGroupId": group,
        "lifecycleStatus": "active"}, 1)
    monitoring.receive_replica("purchasedOffering", "fibre-1", {
        "id": "fibre-1", "version": 1, "customerId": "acme", "customerGroup": "enterprise",
        "productOfferingId": offering, "slaTypeId": gold, "status": "active"}, 1)
    regime = monitoring.start_regime(name="Watch", window="PT1H",
                                     offering_group_id=uuid.UUID(group))
    window = EvaluatedWindow(
        regime_id=regime.id, parameter="availability", window_start=START, window_end=END,
        batch_ids=["b1"], figures=window_figures([
            ("purchasedOffering", "fibre-1", _result(97.5, "breached", 3600.0, 90.0)),
            ("offeringGroup", group, _result(97.5, "breached", 3600.0, 90.0))], ["b1"]))
    monitoring.outcomes.save(window)
    return {"group": group, "offering": offering, "gold": gold, "regime": regime}, window


def _summaries(suite: Any) -> list[Any]:
    relay = suite.runtime("monitoring").relay  # the outcomes log's (validates each)
    return [m for n in relay.app.notifications() for m in relay.to_messages(n)
            if m.envelope.event_type == "WindowSummaryEvent"]


def test_each_series_of_a_closed_window_is_published_in_its_contract_shape(suite: Any) -> None:
    known, window = _closed_window(suite)
    messages = _summaries(suite)
    assert [m.routing_key for m in messages] == ["monitoring.window-summary.closed"] * 2
    first, second = (m.envelope.to_dict() for m in messages)
    assert second["eventId"] == first["eventId"] + "/1"  # one stored window, two series
    offering_summary, group_summary = (b["event"]["windowSummary"] for b in (first, second))
    assert offering_summary["id"] == str(window.series()[0].id)
    assert offering_summary["scope"] == {"type": "purchasedOffering", "id": "fibre-1"}
    assert {k: offering_summary[k] for k in (
        "purchasedOfferingId", "customerId", "customerGroup", "productOfferingId",
        "offeringGroupId", "slaTypeId")} == {
        "purchasedOfferingId": "fibre-1", "customerId": "acme", "customerGroup": "enterprise",
        "productOfferingId": known["offering"], "offeringGroupId": known["group"],
        "slaTypeId": known["gold"]}
    assert (offering_summary["windowStart"], offering_summary["windowEnd"]) == (
        "2025-12-01T00:00:00Z", "2025-12-01T01:00:00Z")
    assert (offering_summary["breached"], offering_summary["warned"],
            offering_summary["eligibleSeconds"], offering_summary["badSeconds"]) == (
        True, False, 3600.0, 90.0)
    assert group_summary["scope"] == {"type": "offeringGroup", "id": known["group"]}
    assert (group_summary["purchasedOfferingId"], group_summary["customerId"],
            group_summary["offeringGroupId"]) == (None, None, known["group"])


def test_analysis_keeps_each_summary_once_in_any_repetition(suite: Any) -> None:
    _closed_window(suite)
    analysis = suite.runtime("analysis")
    handle = analysis.spec.handlers(analysis.app)["WindowSummaryEvent"]
    handle(Envelope.from_dict(copy.deepcopy(EXAMPLE)))
    for message in _summaries(suite) * 2:  # redelivered, or sent again by a backfill
        handle(Envelope.from_bytes(message.envelope.to_bytes()))
    handle(Envelope.from_dict(copy.deepcopy(EXAMPLE)))
    assert analysis.app.summary_count() == 3
