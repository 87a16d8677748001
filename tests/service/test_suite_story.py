"""The whole chain in one process: the registry's standard and inventory reach monitoring,
measurements breach it, and notification delivers the crossing — once, signed — to the
webhook of the list that serves the offering group."""

from __future__ import annotations

import json
from typing import Any

from services.notification.delivery import verify_signature
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_monitoring import (  # noqa: F401 - fixtures
    estate,
    hour_batch,
    monitoring,
)
from tests.service.test_notification import (  # noqa: F401 - fixtures
    Clock,
    Receiver,
    clock,
    mailbox,
    make_list,
    notifier,
    receiver,
    tick,
)


def test_a_breach_measured_by_monitoring_reaches_the_groups_webhook_once(
        suite: Any, estate: dict[str, Any], monitoring: Client,  # noqa: F811
        notifier: Client, receiver: Receiver, clock: Clock) -> None:  # noqa: F811
    group = estate["group"]["id"]
    noc = make_list(notifier, "NOC", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/hooks/noc"}],
        offeringGroupIds=[group], groupWait=0, groupInterval=300,
        topics=[{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major",
                 "offeringGroupIds": [group]}])
    secret = noc["members"][0]["secret"]
    # Two hours of breaching latency (graceTimes 1: the second window breaches).
    for hour in range(4):
        response = monitoring.post("/measurementBatch", json={
            "batchId": f"{estate['regime']['id']}-story-{hour}",
            "samples": hour_batch(estate["products"], hour, 150 if hour >= 1 else 50)})
        assert response.status_code == 201, response.get_json()
    group_crossing = eventually(lambda: [c for c in monitoring.get(
        f"/crossing?scopeType=offeringGroup&scopeId={group}&level=breached").get_json()])[0]

    advanced = []

    def delivered() -> list[dict[str, Any]]:
        # Per-offering crossings may go out first; the group's then waits for the next
        # group interval, so let the list's clock move on (less than a repeat interval).
        if len(advanced) < 10:
            clock.advance(301)
            advanced.append(301)
            tick(suite)
        alerts = []
        for request in receiver.at("/hooks/noc"):
            assert verify_signature(secret, request["headers"]["X-SLA-Signature"],
                                    request["body"])
            alerts.extend(json.loads(request["body"])["alerts"])
        return [a for a in alerts if a["alertId"] == group_crossing["id"]]

    alerts = eventually(delivered, timeout=15)
    assert len(alerts) == 1 and alerts[0]["severity"] == "major"
    history = notifier.get(f"/delivery?listId={noc['id']}").get_json()
    assert history and all(d["status"] in ("delivered", "sending", "pending") for d in history)
