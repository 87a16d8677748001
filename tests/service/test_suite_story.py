"""The whole chain in one process: the registry's standard and inventory reach monitoring,
measurements breach it, and notification delivers the crossing — once, signed — to the
webhook of the list that serves the offering group."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.monitoring.clock import read_clocks
from services.notification.signature import verify_signature
from shared.scheduler import SettableClock
from shared.times import iso
from tests.drivers.http import FlaskHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.notification import NotificationDriver
from tests.drivers.registry import RegistryDriver, availability
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_monitoring import (  # noqa: F401 - fixtures
    estate,
    hour_batch,
    monitoring,
)
from tests.service.test_notification import (  # noqa: F401 - fixtures
    Receiver,
    clock,
    mailbox,
    notification,
    notifier,
    receiver,
    service_env,
    tick,
)


class ProcessingTime:
    """monitoring's clock: the wall clock until a test holds it, then moved by the test."""

    def __init__(self) -> None:
        self.held: float | None = None

    def __call__(self) -> float:
        return time.time() if self.held is None else self.held


@pytest.fixture
def processing_time() -> ProcessingTime:
    return ProcessingTime()


@pytest.fixture
def service_clocks(clock: SettableClock, processing_time: ProcessingTime  # noqa: F811
                   ) -> dict[str, Callable[[], Any]]:
    """Both clocks the stories move: notification's, and monitoring's processing time."""
    return {"notification": clock, "monitoring": processing_time}


def test_a_breach_measured_by_monitoring_reaches_the_groups_webhook_once(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver,  # noqa: F811
        notification: NotificationDriver, receiver: Receiver,  # noqa: F811
        clock: SettableClock) -> None:  # noqa: F811
    group = estate["group"]["id"]
    noc = notification.create_list("NOC", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/hooks/noc"}],
        offeringGroupIds=[group], groupWait=0, groupInterval=300,
        topics=[{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major",
                 "offeringGroupIds": [group]}])
    secret = noc["members"][0]["secret"]
    # Two hours of breaching latency (graceTimes 1: the second window breaches).
    for hour in range(4):
        response = monitoring.send_batch(
            hour_batch(estate["products"], hour, 150 if hour >= 1 else 50),
            f"{estate['regime']['id']}-story-{hour}")
        assert response.status_code == 201, response.get_json()
    group_crossing = monitoring.wait_for_crossing(scopeType="offeringGroup", scopeId=group,
                                                  level="breached", timeout=15)

    advanced: list[float] = []

    def delivered() -> list[dict[str, Any]]:
        # Per-offering crossings may go out first; the group's then waits for the next
        # group interval, so let the list's clock move on (less than a repeat interval in
        # all) — at most twice a second, so that a slow machine still sees it move after
        # the group's crossing arrived.
        if len(advanced) < 30 and (not advanced or time.monotonic() - advanced[-1] > 0.5):
            clock.advance(301)
            advanced.append(time.monotonic())
            tick(suite)
        alerts = []
        for request in receiver.at("/hooks/noc"):
            assert verify_signature(secret, request["headers"],
                                    request["body"])
            alerts.extend(json.loads(request["body"])["alerts"])
        return [a for a in alerts if a["alertId"] == group_crossing["id"]]

    alerts = eventually(delivered, timeout=15)
    assert len(alerts) == 1 and alerts[0]["severity"] == "major"
    # since is the event time (the window that breached), not when it was processed.
    assert alerts[0]["since"] == alerts[0]["window"]["startDateTime"]
    assert alerts[0]["since"] in {h["windowStart"] for h in group_crossing["history"]}
    assert alerts[0]["since"] < alerts[0]["raisedAt"]
    history = notification.deliveries(listId=noc["id"])
    assert history and all(d["status"] in ("delivered", "sending", "pending") for d in history)


def test_a_regime_whose_feeds_all_stop_raises_no_data_that_reaches_the_groups_webhook(
        suite: Any, registry: Client, monitoring: MonitoringDriver,  # noqa: F811
        notification: NotificationDriver, receiver: Receiver,  # noqa: F811
        clock: SettableClock, processing_time: ProcessingTime) -> None:  # noqa: F811
    """The devices of a group go dark: nothing more arrives, yet the windows close on the
    clock, the standard says silence is a noData crossing, and the NOC's webhook gets it."""
    app = suite.runtime("monitoring").app
    start = float(int(time.time()))
    processing_time.held = start  # monitoring's time from here on: as the test moves it
    manager = RegistryDriver(FlaskHttp(registry))
    group = manager.create_group("Dark fibre")["id"]
    offering = manager.create_offering("Fibre 10G", group=group)["id"]
    standard = manager.draft_standard(group=group, name="Fibre up", parameters=[
        availability(conformanceTarget=99.0, thresholdTarget=None, conformancePeriod=None,
                     evaluationWindow="PT1M", missingData="noData", noDataAfter=2)])
    assert standard["parameters"][0]["missingData"] == "noData"
    manager.approve_standard(standard)
    products = [f"dark-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    for product in products:
        manager.add_purchased_offering(product, offering, "acme",
                                       startDate=iso(start - 86400))
    noc = notification.create_list("NOC", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/hooks/dark"}],
        offeringGroupIds=[group], groupWait=0,
        topics=[{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major",
                 "offeringGroupIds": [group]}])
    regime = monitoring.start_regime(name="Dark watch", offeringGroupId=group, window="PT1M",
                                     allowedLateness="PT0S", clearAfter=1)
    monitoring.wait_until_watched(
        {"purchasedOfferingId": products[-1], "parameter": "availability", "value": 1,
         "intervalSeconds": 60, "observedAt": iso(start - 172800)}, timeout=15)
    origin = eventually(lambda: read_clocks(app.cache, [regime["id"]]))[regime["id"]][0]
    for minute in range(3):  # three good minutes, then nothing
        assert monitoring.send_batch([
            {"purchasedOfferingId": p, "parameter": "availability", "value": 1,
             "intervalSeconds": 60, "observedAt": iso(origin + 60 * (minute + 1))}
            for p in products]).status_code == 201
    processing_time.held = origin + 60 * 7 + 1  # four silent minutes pass

    crossing = monitoring.wait_for_crossing(scopeType="offeringGroup", scopeId=group,
                                            level="noData", timeout=15)
    assert crossing["history"][0]["windowStart"] == iso(origin + 60 * 4)  # 2nd empty one
    assert crossing["since"] == iso(origin + 60 * 3)  # silent since the first empty window

    def delivered() -> list[dict[str, Any]]:
        clock.advance(301)
        tick(suite)
        return [a for r in receiver.at("/hooks/dark")
                for a in json.loads(r["body"])["alerts"] if a["alertId"] == crossing["id"]]

    alerts = eventually(delivered, timeout=15)
    assert alerts[0]["level"] == "noData" and alerts[0]["severity"] == "major"
    assert "sent no data" in alerts[0]["headline"] and alerts[0]["measuredValue"] is None
    assert noc["id"]
