"""Wake-ups between processes (shared/wakeups.py), for real: the distributed wiring —
registry, monitoring and notification, each gunicorn plus its worker processes as
``slactl run --distributed`` starts them — with every fallback poll a minute long. A
breach posted over HTTP still reaches the list's webhook within seconds: each process's
loop woke on PostgreSQL's NOTIFY of the process before it (the HTTP process records the
batch, the evaluator evaluates it, the intake worker's relay publishes the crossing,
notification's worker routes and delivers it)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from services.notification.signature import verify_signature
from shared import auth
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.registry import RegistryDriver, latency
from tests.e2e.processes import distributed_suite, wait_until

pytestmark = pytest.mark.e2e

SERVICES = ("threshold-registry", "monitoring", "notification")
MINUTE_POLLS = {"SLA_RELAY_POLL_INTERVAL": "60", "SLA_EVALUATOR_POLL_INTERVAL": "60",
                "SLA_NOTIFICATION_TICK": "60"}


class Hook:
    """The list's webhook: every request, with its headers, as received."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.requests.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def suite_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                    tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    with distributed_suite(SERVICES, amqp_url=amqp_url, postgres=postgres,
                           redis_url=redis_url, logs=tmp_path, unique=unique, secret=SECRET,
                           settings={"SLA_WEBHOOK_ALLOW": "127.0.0.1/32", **MINUTE_POLLS},
                           http_workers=1) as suite:
        yield suite


def test_a_breach_crosses_every_process_without_any_loop_waiting_for_its_poll(
        suite_processes: dict[str, Any]) -> None:
    bases, running = suite_processes["bases"], suite_processes["processes"].values()
    admin = auth.issue(SECRET, ["admin"], "e2e")
    manager = RegistryDriver(NetworkHttp(bases["threshold-registry"], admin))
    watcher = MonitoringDriver.at(bases["monitoring"], admin)
    probe = MonitoringDriver.at(bases["monitoring"], auth.issue(SECRET, ["ingest"], "probe"))
    group = manager.create_group("DSL")
    offering = manager.create_offering("DSL 100", group=group)
    manager.agree_standard(group=group, name="DSL latency", basis="internallyAcceptable",
                           parameters=[latency(aggregation="mean", conformanceTarget=40,
                                               thresholdTarget=None, evaluationWindow="PT5M")])
    product = f"dsl-{uuid.uuid4().hex[:6]}"
    manager.add_purchased_offering(product, offering, "c1")
    watcher.start_regime(name="DSL watch", offeringGroupId=group["id"], window="PT5M",
                         allowedLateness="PT0S")
    hook = Hook()
    headers = {"Authorization": f"Bearer {admin}"}

    def listed() -> dict[str, Any] | None:  # once the group reached notification's replica
        response = requests.post(f"{bases['notification']}/notificationList", headers=headers,
                                 timeout=10, json={
                                     "name": "NOC", "offeringGroupIds": [group["id"]],
                                     "topics": [{"eventTypes": ["ThresholdCrossingEvent"]}],
                                     "groupBy": ["alertId"], "groupWait": 0,
                                     "groupInterval": 0,
                                     "members": [{"name": "NOC", "channel": "webhook",
                                                  "address": hook.url}]})
        return response.json() if response.status_code == 201 else None

    secret = wait_until(listed, 20, "the list", running)["members"][0]["secret"]

    def sample(minute: int, value: float) -> dict[str, Any]:
        return {"purchasedOfferingId": product, "parameter": "latency", "value": value,
                "observedAt": f"2026-11-25T10:{minute:02d}:00Z"}

    # Every step below crosses processes and would wait a minute for a poll: each wait
    # is far shorter. The inventory reaches monitoring (registry HTTP -> its worker's
    # relay -> monitoring's inbox); a breach, then a sample of the next window closes it.
    wait_until(lambda: probe.send_batch([sample(0, 90), sample(2, 70)], "b1").status_code
               in (200, 201), 20, "monitoring knows the purchased offering", running)
    assert probe.send_batch([sample(5, 10)], "b2").status_code == 201

    def breached() -> list[dict[str, Any]]:
        alerts = []
        for request_headers, body in list(hook.requests):
            assert verify_signature(secret, request_headers, body)
            alerts.extend(a for a in json.loads(body)["alerts"] if a["level"] == "breached")
        return alerts

    alerts = wait_until(breached, 20, "the breach at the webhook", running)
    assert alerts[0]["measuredValue"] == 80 and alerts[0]["offeringGroupId"] == group["id"]
    hook.server.shutdown()
