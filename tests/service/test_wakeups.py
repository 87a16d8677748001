"""The loops on an alert's way wake on new events (shared/wakeups.py): with every fallback
poll set to a minute, a breach measured over HTTP still reaches the group's webhook within
seconds — the registry's relay, monitoring's evaluator and relay, notification's
scheduler and dispatcher each woke for it; none of them waited for its poll. And with the
wake-ups off, the polls alone still deliver it: a lost wake-up loses nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.notification.signature import verify_signature
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.notification import NotificationDriver
from tests.helpers import eventually
from tests.service.test_monitoring import (  # noqa: F401 - fixtures
    estate,
    hour_batch,
    monitoring,
)
from tests.service.test_notification import (  # noqa: F401 - fixtures
    Receiver,
    notification,
    notifier,
    receiver,
)

# No wait below comes near this: what arrives came by a wake-up, not by a poll.
POLL_MINUTE = {"SLA_RELAY_POLL_INTERVAL": "60", "SLA_EVALUATOR_POLL_INTERVAL": "60",
               "SLA_NOTIFICATION_TICK": "60"}
# Wake-ups off: only the polls (short ones) find the work.
POLLS_ONLY = {"SLA_WAKE_ON_EVENTS": "false", "SLA_RELAY_POLL_INTERVAL": "0.05",
              "SLA_EVALUATOR_POLL_INTERVAL": "0.05", "SLA_NOTIFICATION_TICK": "0.05"}


@pytest.fixture(params=["woken", "polled"])
def service_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Webhooks to loopback allowed; the fallback polls a minute long (wake-ups on), or
    wake-ups off and short polls."""
    own = {"SLA_WEBHOOK_ALLOW": "127.0.0.1/32", "SLA_PUBLIC_URL": "https://sla.example",
           "SLA_WEBHOOK_TIMEOUT": "2"}
    return {**own, **(POLL_MINUTE if request.param == "woken" else POLLS_ONLY)}


def test_a_breach_reaches_the_webhook_without_any_loop_waiting_for_its_poll(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver,  # noqa: F811
        notification: NotificationDriver, receiver: Receiver) -> None:  # noqa: F811
    # The estate fixture already waited (15 s at most) for the registry's inventory to
    # reach monitoring: the registry's relay woke for it.
    group = estate["group"]["id"]
    noc = notification.create_list("NOC", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/hooks/noc"}],
        offeringGroupIds=[group], groupWait=0, groupInterval=0, groupBy=["alertId"],
        topics=[{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major"}])
    secret = noc["members"][0]["secret"]
    for hour in range(4):  # graceTimes 1: the second breaching window raises it
        response = monitoring.send_batch(hour_batch(estate["products"], hour, 150),
                                         f"{estate['regime']['id']}-wake-{hour}")
        assert response.status_code == 201, response.get_json()

    def breached() -> list[dict[str, Any]]:
        alerts = []
        for request in receiver.at("/hooks/noc"):
            assert verify_signature(secret, request["headers"], request["body"])
            alerts.extend(json.loads(request["body"])["alerts"])
        return [a for a in alerts if a["level"] == "breached"
                and a["offeringGroupId"] == group]

    alerts = eventually(breached, timeout=20)
    assert alerts[0]["severity"] == "major"
