"""Stories of the notification service's users, through its HTTP API and the bus, in one
process, with a real SMTP server (aiosmtpd) and a real webhook receiver on loopback.
Every test runs on SQLite and on PostgreSQL. Time is a controllable clock: tests move it
and poll for the outcome, they never sleep to assert."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller

from services.notification.delivery import NotificationConfig
from services.notification.domain import Delivery
from services.notification.sending import EmailSender, WebhookSender
from services.notification.signature import verify_signature
from shared.bus.envelope import Envelope
from shared.bus.topology import SLA_EVENTS
from shared.scheduler import SettableClock
from shared.times import iso
from tests.drivers.http import Answer, FlaskHttp
from tests.drivers.notification import NotificationDriver
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client

ROOT = "/notification/v1"


# --- real servers on loopback -----------------------------------------------------------
class Mailbox:
    """aiosmtpd handler: every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free loopback port, and what it accepted."""
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


class Receiver:
    """A webhook receiver (threaded http.server) that can be stopped and started again."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 204  # what it answers (e.g. 503: a failing listener)
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "body": body,
                                              "headers": dict(self.headers)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def at(self, path_prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    try:
        r.stop()
    except Exception:  # noqa: BLE001 - already stopped by the test
        pass


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def service_env(mailbox: tuple[Mailbox, int]) -> dict[str, str]:
    """notification's own settings: this test's SMTP server, webhooks to loopback allowed,
    short retries."""
    return {"SLA_SMTP_HOST": "127.0.0.1", "SLA_SMTP_PORT": str(mailbox[1]),
            "SLA_SMTP_FROM": "noc@sla.example", "SLA_WEBHOOK_ALLOW": "127.0.0.1/32",
            "SLA_PUBLIC_URL": "https://sla.example", "SLA_DELIVERY_BACKOFF_BASE": "10",
            "SLA_DELIVERY_BACKOFF_CAP": "60", "SLA_DELIVERY_MAX_ATTEMPTS": "3",
            "SLA_WEBHOOK_TIMEOUT": "2", "SLA_SMTP_TIMEOUT": "2"}


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Callable[[], Any]]:
    """notification runs on the test's clock (tests move it instead of sleeping)."""
    return {"notification": clock}


@pytest.fixture
def notifier(suite: Any) -> Client:
    """The API itself, for what a test says about HTTP (status codes, headers, scopes)."""
    return Client(suite.app("notification"), ROOT)


@pytest.fixture
def notification(notifier: Client) -> NotificationDriver:
    """The service as its users speak of it (tests/drivers/notification.py)."""
    return NotificationDriver(FlaskHttp(notifier))


# --- messages as monitoring would publish them ------------------------------------------
def crossing(crossing_id: str, group: str, level: str = "breached", change: str = "raised",
             scope: dict[str, str] | None = None, correlation: str | None = None) -> Envelope:
    return Envelope(
        event_id=f"monitoring:{uuid.uuid4().int % 10**9}", event_time=iso(),
        event_type="ThresholdCrossingEvent", source="monitoring",
        correlation_id=correlation or str(uuid.uuid4()),
        event={"change": change, "crossing": {
            "id": crossing_id, "regimeId": "rg-1", "parameter": "availability",
            "scope": scope or {"type": "offeringGroup", "id": group},
            "level": level, "measuredValue": 99.1, "conformanceTarget": 99.9,
            "thresholdTarget": 99.95, "comparator": "GE",
            "standardId": "std-1", "standardVersion": 1,
            "window": {"startDateTime": "2026-03-02T08:00:00Z",
                       "endDateTime": "2026-03-02T09:00:00Z"},
            "planned": False, "batchIds": ["b-1"], "raisedAt": "2026-03-02T09:00:01Z"}})


def publish(suite: Any, envelope: Envelope, routing_key: str | None = None) -> None:
    key = routing_key or f"monitoring.crossing.{envelope.event['change']}"
    suite.runtime("notification").transport.publish_raw(
        SLA_EVENTS, key, envelope.to_bytes(), message_id=envelope.event_id)


def tick(suite: Any) -> None:
    """Let the scheduler see the new time at once (it also runs every 100 ms)."""
    suite.runtime("notification").app.wake.set()


# --- stories -------------------------------------------------------------------------------
def test_breach_is_delivered_grouped_escalated_acknowledged_and_recorded(
        suite: Any, notifier: Client, notification: NotificationDriver, mailbox: tuple[Mailbox,
        int], receiver: Receiver, clock: SettableClock) -> None:
    n, box = notifier, mailbox[0]
    group = str(uuid.uuid4())
    managers = notification.create_list("Duty managers", [
        {"name": "Ann", "channel": "email", "address": "ann@sla.example"}],
        topics=[{"eventTypes": ["NothingDirect"]}])
    noc = notification.create_list("NOC webhook", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/hooks/noc"}],
        offeringGroupIds=[group], groupWait=0, groupInterval=300, repeatInterval=3600,
        escalation={"nextListId": managers["id"], "delay": 600})
    mail = notification.create_list("SLA managers mail", [
        {"name": "Sam", "channel": "email", "address": "sam@sla.example", "locale": "en"}],
        offeringGroupIds=[group], groupWait=0, groupInterval=300)
    secret = noc["members"][0]["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in notification.notification_list(noc["id"])["members"][0]  # shown once

    first = crossing("cr-1", group)
    publish(suite, first)
    hook = eventually(lambda: receiver.at("/hooks/noc"), timeout=10)
    mails = eventually(lambda: box.to("sam@sla.example"), timeout=10)
    assert len(hook) == 1 and len(mails) == 1
    request = hook[0]
    assert verify_signature(secret, request["headers"], request["body"])
    assert not verify_signature("whsec_wrong", request["headers"],
                                request["body"])
    payload = json.loads(request["body"])
    assert payload["reason"] == "first" and payload["alerts"][0]["alertId"] == "cr-1"
    assert payload["alerts"][0]["severity"] == "major"
    assert payload["alerts"][0]["detailsUrl"].startswith("https://sla.example/notification/v1/")
    delivery_id = request["headers"]["X-SLA-Delivery-Id"]
    text = mails[0].get_body(("plain",)).get_content()
    assert "availability breached on offeringGroup" in mails[0]["Subject"]
    assert "measured 99.1" in text and "Since:" in text and "Acknowledge" in text
    assert mails[0].get_body(("html",)) is not None

    # The same bus message delivered twice has one effect.
    publish(suite, first)
    # A second breach inside the group interval is grouped, not sent now.
    second = crossing("cr-2", group)
    publish(suite, second)
    decision = notification.wait_for_decision(eventId=second.event_id, listId=noc["id"])
    assert decision["decision"] == "grouped"
    assert len(receiver.at("/hooks/noc")) == 1
    assert len(notification.deliveries(listId=noc["id"])) == 1
    notification.wait_until_delivered(delivery_id)

    clock.advance(301)
    tick(suite)
    hook = eventually(lambda: len(receiver.at("/hooks/noc")) == 2 and receiver.at("/hooks/noc"),
                      timeout=10)
    update = json.loads(hook[1]["body"])
    assert update["reason"] == "update" and [a["alertId"] for a in update["alerts"]] == ["cr-2"]
    eventually(lambda: len(box.to("sam@sla.example")) == 2, timeout=10)  # grouped alike

    # cr-2 is acknowledged through the signed link in the message (no bearer token).
    ack_url = update["alerts"][0]["ackUrl"]
    parsed = urlparse(ack_url)
    assert notification.open_ack_link(f"tampered{parse_qs(parsed.query)['token'][0]}"
                                      ).status == 403
    assert parsed.path.removeprefix(ROOT) == "/acknowledge"
    acked = acknowledge_by_link(notification, parse_qs(parsed.query)["token"][0])
    assert acked.status == 200, acked.text
    assert "Acknowledged" in acked.text

    # cr-1 was not acknowledged: after its delay it escalates to the duty managers.
    clock.advance(300)
    tick(suite)
    escalated = eventually(lambda: box.to("ann@sla.example"), timeout=10)
    assert len(escalated) == 1 and "ESCALATION" in escalated[0]["Subject"]
    assert "cr-1" not in escalated[0]["Subject"]
    incidents = notification.incidents(alertId="cr-1")
    assert incidents[0]["notifiedListIds"] == [noc["id"], mail["id"], managers["id"]] or \
        set(incidents[0]["notifiedListIds"]) == {noc["id"], mail["id"], managers["id"]}
    # ... cr-2's escalation was stopped by the acknowledgement.
    clock.advance(600)
    tick(suite)
    cr2 = notification.incidents(alertId="cr-2")[0]
    assert cr2["acknowledged"] and cr2["acknowledgedBy"] == f"NOC <{receiver.url}/hooks/noc>"
    assert cr2["acknowledgedVia"] == "link"
    assert cr2["pendingEscalations"] == []
    eventually(lambda: all(d["status"] == "delivered" for d in notification.deliveries()))
    assert len(box.to("ann@sla.example")) == 1

    # History by list, recipient, event and correlation id; CSV export; audit trail.
    assert len(notification.deliveries(listId=noc["id"])) == 2
    assert len(notification.deliveries(recipient="sam@sla.example")) == 2
    by_event = notification.deliveries(eventId=first.event_id)
    assert {d["listId"] for d in by_event} == {noc["id"], mail["id"], managers["id"]}
    assert len(notification.deliveries(correlationId=str(second.correlation_id))) == 2
    rows = notification.export(listId=noc["id"])
    assert len(rows) == 2 and rows[0]["status"] == "delivered"
    history = n.get(f"/audit/aggregates/{delivery_id}/history").get_json()
    assert [e["eventType"].rsplit(".", 1)[1] for e in history] == [
        "Created", "AttemptStarted", "Delivered"]
    assert history[0]["correlationId"] == first.correlation_id


def test_a_stopped_receiver_is_retried_with_backoff_then_dead_lettered_and_retried_by_hand(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver, clock:
        SettableClock) -> None:
    group = str(uuid.uuid4())
    notification.create_list("NOC", [{"name": "NOC", "channel": "webhook",
                                      "address": f"{receiver.url}/hooks"}],
                             offeringGroupIds=[group], groupWait=0)
    receiver.stop()
    publish(suite, crossing("cr-r", group))
    first = notification.wait_for_delivery("retrying")
    assert first["attemptCount"] == 1 and "ConnectionError" in first["lastError"]
    retry_at = datetime.fromisoformat(first["nextAttemptAt"].replace("Z", "+00:00"))
    assert timedelta(seconds=5) <= retry_at - clock() <= timedelta(seconds=10)

    receiver.start()  # back on the same port
    clock.advance(10)
    tick(suite)
    done = notification.wait_until_delivered(first["id"])
    assert done["attemptCount"] == 2
    assert len(receiver.at("/hooks")) == 1

    # Attempts used up: failed, visible as a dead letter, and retried by hand.
    receiver.stop()
    publish(suite, crossing("cr-s", str(uuid.uuid4())))  # another group: not this list
    publish(suite, crossing("cr-t", group))
    eventually(lambda: notification.decisions(alertId="cr-t"))
    clock.advance(300)  # grouped: sent at the end of the group interval
    tick(suite)
    other = notification.wait_for_delivery("retrying")
    for attempts in (2, 3):
        clock.advance(60)
        tick(suite)
        eventually(lambda a=attempts: (lambda now: now["attemptCount"] == a and now["status"]
                                       in ("retrying", "failed"))(
                                           notification.delivery(other["id"])), timeout=10)
    dead = eventually(lambda: notification.dead_letters(), timeout=10)
    assert [d["id"] for d in dead] == [other["id"]] and dead[0]["attemptCount"] == 3
    receiver.start()
    assert notification.retry(other["id"])["status"] == "pending"
    tick(suite)
    notification.wait_until_delivered(other["id"])
    notification.retry(other["id"], expect=409)


def test_hub_listener_gets_the_tmf688_event_filtered_by_its_query(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver) -> None:
    n = notifier
    group = str(uuid.uuid4())
    hub = n.post("/hub", json={"callback": f"{receiver.url}/tmf",
                               "query": f"eventType=ThresholdCrossingEvent&severity=major"
                                        f"&offeringGroupId={group}"})
    assert hub.status_code == 201, hub.get_json()
    assert hub.headers["Location"] == hub.get_json()["href"]  # TMF630: where it is
    secret, hub_id = hub.get_json()["secret"], hub.get_json()["id"]
    publish(suite, crossing("cr-w", group, level="warning"))  # below the floor
    publish(suite, crossing("cr-o", str(uuid.uuid4())))      # another group
    breach = crossing("cr-h", group)
    publish(suite, breach)
    got = eventually(lambda: receiver.at("/tmf/listener/"), timeout=10)
    assert len(got) == 1 and got[0]["path"] == "/tmf/listener/thresholdCrossingEvent"
    body = json.loads(got[0]["body"])
    assert body["eventType"] == "ThresholdCrossingEvent" and body["eventId"] == breach.event_id
    assert body["event"]["crossing"]["id"] == "cr-h"
    assert verify_signature(secret, got[0]["headers"], got[0]["body"])
    assert got[0]["headers"]["X-SLA-Delivery-Id"]
    assert n.get("/hub").headers["X-Total-Count"] == "1"
    assert "secret" not in notification.hub(hub_id)
    notification.unsubscribe_hub(hub_id)
    notification.hub(hub_id, expect=404)
    notification.unsubscribe_hub(hub_id, expect=404)


def test_warnings_are_inhibited_by_their_breach_and_outages_suppress_alerts(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver) -> None:
    group, quiet = str(uuid.uuid4()), str(uuid.uuid4())
    nlist = notification.create_list("NOC", [{"name": "NOC", "channel": "webhook",
                                              "address": f"{receiver.url}/hooks"}],
                                     topics=[{"eventTypes": ["ThresholdCrossingEvent"],
                                              "minSeverity": "warning"}], groupWait=0)
    publish(suite, crossing("cr-b", group))
    eventually(lambda: receiver.at("/hooks"), timeout=10)
    warning = crossing("cr-w2", group, level="warning")
    publish(suite, warning)
    decided = eventually(lambda: notification.decisions(eventId=warning.event_id))
    assert decided[0]["decision"] == "inhibited" and "cr-b" in decided[0]["reason"]

    # The consumer's side of PlannedOutageChangeEvent (outages enter the suite through
    # outage-negotiation: tests/service/test_outage_negotiation.py): an agreed outage
    # over the group, as that service publishes it.
    outage = Envelope(
        event_id="outage-negotiation:1", event_time=iso(), event_type="PlannedOutageChangeEvent",
        source="outage-negotiation", event={"change": "agreed", "plannedOutage": {
            "id": "po-1", "href": "https://sla.example/outage-negotiation/v1/plannedOutage/po-1",
            "@type": "PlannedOutage", "status": "agreed",
            "window": {"startDateTime": "2026-03-02T08:00:00Z",
                       "endDateTime": "2026-03-02T12:00:00Z"},
            "reason": "core upgrade", "offeringGroupId": quiet,
            "affectedPurchasedOfferingIds": [], "version": 1}})
    publish(suite, outage, "outage-negotiation.planned-outage.agreed")
    during = crossing("cr-q", quiet)
    eventually(lambda: notification.decisions(eventId="outage-negotiation:1") or True)
    eventually(lambda: suite.runtime("notification").app.outages())
    publish(suite, during)
    decided = eventually(lambda: notification.decisions(eventId=during.event_id))
    assert decided[0]["decision"] == "suppressed" and "po-1" in decided[0]["reason"]
    assert len(receiver.at("/hooks")) == 1
    assert nlist["id"] == decided[0]["listId"]


def test_crossings_on_a_purchased_offering_are_routed_by_the_registry_facts(
        suite: Any, notifier: Client, notification: NotificationDriver, registry: Client, mailbox:
        tuple[Mailbox, int]) -> None:
    manager = RegistryDriver(FlaskHttp(registry))
    group = manager.create_group("Fibre")
    offering = manager.create_offering("Fibre 1G", group=group, lifecycle_status="inDesign")
    manager.add_purchased_offering("prod-7", offering, "acme")
    notification.create_list("ACME contacts", [
        {"name": "Ops", "channel": "email", "address": "ops@acme.example"}],
        kind="customer", customerIds=["acme"], groupWait=0)
    app = suite.runtime("notification").app
    eventually(lambda: app.scope_facts("purchasedOffering", "prod-7").get("customerId"),
               timeout=10)
    publish(suite, crossing("cr-p", "unused", scope={"type": "purchasedOffering",
                                                       "id": "prod-7"}))
    mails = eventually(lambda: mailbox[0].to("ops@acme.example"), timeout=10)
    assert "customer acme" in mails[0].get_body(("plain",)).get_content()
    assert group["id"] in mails[0].get_body(("plain",)).get_content()


def test_a_delivery_left_sending_by_a_crash_is_resumed_with_the_same_id(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver, clock:
        SettableClock) -> None:
    app = suite.runtime("notification").app
    group = str(uuid.uuid4())
    notification.create_list("NOC", [{"name": "NOC", "channel": "webhook",
                                      "address": f"{receiver.url}/hooks"}],
                             offeringGroupIds=[group], groupWait=5)
    publish(suite, crossing("cr-c", group))
    pending = eventually(lambda: notification.decisions())
    assert pending[0]["decision"] == "queued"
    # Flush by hand and claim the delivery as a worker that then "crashes".
    clock.advance(5)
    eventually(lambda: notification.deliveries(), timeout=10)
    d_id = notification.deliveries()[0]["id"]
    # The real dispatcher may already have sent it; if not, simulate the crash.
    d: Delivery = app.repository.get(uuid.UUID(d_id))
    if d.status == "pending":
        d.start_attempt(clock(), "crashed-worker")
        try:
            app.save(d)
        except Exception:  # noqa: BLE001 - the live dispatcher won the race
            pass
        clock.advance(app.lease_seconds() + 1)
        tick(suite)
    done = notification.wait_until_delivered(d_id)
    got = receiver.at("/hooks")
    assert {r["headers"]["X-SLA-Delivery-Id"] for r in got} == {d_id}
    assert done["attemptCount"] in (1, 2)


def test_list_management_follows_tmf630_and_never_answers_500(
        notifier: Client, notification: NotificationDriver, receiver: Receiver) -> None:
    n = notifier
    created = notification.create_list("NOC", [{"name": "A", "channel": "email",
                                                "address": "a@sla.example"}])
    assert n.get("/notificationList?name=NOC").headers["X-Total-Count"] == "1"
    assert n.get("/notificationList?fields=name").get_json()[0].keys() == {
        "id", "href", "@type", "name"}
    stale = n.patch(created["href"], json={"groupWait": 5}, headers={"If-Match": '"99"'})
    assert stale.status_code == 409
    patched = n.patch(created["href"], json={"groupWait": 5, "purpose": None},
                      headers={"If-Match": f'"{created["version"]}"'})
    assert patched.status_code == 200 and patched.get_json()["groupWait"] == 5
    assert patched.get_json()["purpose"] is None and patched.get_json()["groupInterval"] == 300
    member = n.post(f"{created['href']}/member", json={
        "name": "Hook", "channel": "webhook", "address": f"{receiver.url}/x"})
    assert member.status_code == 201 and member.get_json()["secret"]
    assert n.delete(f"{created['href']}/member/{member.get_json()['id']}").status_code == 204

    bad = [  # (body, field, status): malformed 400, refused by policy 403, unknown list 404
        ({"name": "x", "topics": []}, "topics", 400),
        ({"name": "x", "topics": [{"minSeverity": "apocalyptic"}]}, "topics.0.minSeverity",
         400),
        ({"name": "x", "topics": [{}], "colour": "red"}, "colour", 400),
        ({"name": "x", "topics": [{}], "members": [{"name": "a", "channel": "email",
                                                     "address": "nope"}]}, "members.0.address",
         400),
        ({"name": "x", "topics": [{}], "members": [{"name": "a", "channel": "webhook",
                                                     "address": "http://10.1.2.3/h"}]},
         "members.0.address", 403),
        ({"name": "x", "topics": [{}], "escalation": {"nextListId": str(uuid.uuid4()),
                                                        "delay": 5}}, "escalation.nextListId",
         409),
        ({"name": "x", "topics": [{}], "kind": "customer"}, "customerIds", 400),
    ]
    for body, field, status in bad:
        response = n.post("/notificationList", json=body)
        assert response.status_code == status, (body, response.get_json())
        assert field in response.get_json()["details"], response.get_json()
    refused = n.post("/hub", json={"callback": "http://169.254.169.254/latest"})
    assert refused.status_code == 403 and "callback" in refused.get_json()["details"]
    assert n.post("/hub", json={"callback": "http://hooks.example:99999/"}).status_code == 400
    bad_literal = n.post("/hub", json={"callback": "http://[CE0d]/"})  # not an IPv6 address
    assert bad_literal.status_code == 403 and "not a valid URL" in json.dumps(
        bad_literal.get_json()["details"])
    assert n.post("/hub", json={"callback": f"{receiver.url}/t", "query": "colour=red"}
                  ).status_code == 400
    assert n.get(f"/notificationList/{uuid.uuid4()}").status_code == 404
    assert n.post(f"/incident/{uuid.uuid4()}/acknowledge", json={}).status_code == 404
    assert n.with_scopes("sla:read").post("/notificationList", json={}).status_code == 403
    assert n.get("/acknowledge").status_code == 200
    assert n.get("/acknowledge?token=abc").status_code == 403
    assert n.delete(created["href"]).status_code == 204
    assert n.get(created["href"]).status_code == 404


# --- event time, callbacks, signatures, acknowledgement links, cancelled retries ---------
def burn_alert(alert_id: str, group: str, change: str = "raised") -> Envelope:
    return Envelope(
        event_id=f"monitoring:{uuid.uuid4().int % 10**9}", event_time=iso(),
        event_type="BurnRateAlertEvent", source="monitoring", correlation_id=str(uuid.uuid4()),
        event={"change": change, "burnAlert": {
            "id": alert_id, "regimeId": "rg-1", "parameter": "availability",
            "scope": {"type": "offeringGroup", "id": group}, "severity": "page",
            "burnRate": 14.4, "longWindow": "PT1H", "shortWindow": "PT5M",
            "remainingBudget": 0.5, "projectedExhaustion": None, "standardId": "std-1",
            "standardVersion": 1, "window": {"startDateTime": "2026-03-02T06:00:00Z",
                                             "endDateTime": "2026-03-02T07:00:00Z"},
            "raisedAt": "2026-03-02T09:00:02Z"}})


def test_incidents_and_webhooks_carry_the_event_time_not_the_processing_time(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver) -> None:
    group = str(uuid.uuid4())
    notification.create_list("NOC", [
        {"name": "NOC", "channel": "webhook", "address": f"{receiver.url}/h"}],
        offeringGroupIds=[group], groupWait=0, groupBy=["alertId"],
        topics=[{"eventTypes": ["*"], "minSeverity": "minor"}])
    publish(suite, crossing("cr-time", group))  # window 08:00-09:00, raised 09:00:01
    publish(suite, burn_alert("ba-time", group), "monitoring.burn-alert.raised")
    got = eventually(lambda: len(receiver.at("/h")) == 2 and receiver.at("/h"), timeout=10)
    alerts = {a["alertId"]: a for r in got for a in json.loads(r["body"])["alerts"]}
    assert alerts["cr-time"]["since"] == "2026-03-02T08:00:00Z"
    assert alerts["cr-time"]["window"] == {"startDateTime": "2026-03-02T08:00:00Z",
                                           "endDateTime": "2026-03-02T09:00:00Z"}
    assert alerts["cr-time"]["raisedAt"] == "2026-03-02T09:00:01Z"
    assert alerts["ba-time"]["since"] == "2026-03-02T06:00:00Z"
    assert notification.incidents(alertId="cr-time")[0]["since"] == "2026-03-02T08:00:00Z"
    assert notification.incidents(alertId="ba-time")[0]["since"] == "2026-03-02T06:00:00Z"


REFUSED_CALLBACKS = [
    ("http://127.0.0.1:99999/hooks", "port"),
    ("http://hooks.example:0/x", "port"),
    ("http://100.100.100.200/latest/meta-data", "CGNAT"),
    ("http://[2002:7f00:1::]:8080/x", "6to4 form of 127.0.0.1"),  # though 127.0.0.1 is allowed
    ("http://[64:ff9b::a9fe:a9fe]/latest", "NAT64 form of 169.254.169.254"),
]


def test_callbacks_that_are_not_allowed_are_refused_naming_the_field(
        notifier: Client, notification: NotificationDriver) -> None:
    """Malformed (a port out of range) 400; well formed but refused by the policy 403."""
    n = notifier
    nlist = notification.create_list("NOC", [])
    for callback, why in REFUSED_CALLBACKS:
        hub = n.post("/hub", json={"callback": callback})
        assert hub.status_code in (400, 403), (callback, hub.get_json())
        assert why in " ".join(hub.get_json()["details"]["callback"])
        member = {"name": "hook", "channel": "webhook", "address": callback}
        created = n.post("/notificationList", json={"name": "x", "topics": [{}],
                                                    "members": [member]})
        assert created.status_code in (400, 403), callback
        assert why in " ".join(created.get_json()["details"]["members.0.address"])
        added = n.post(f"{nlist['href']}/member", json=member)
        assert added.status_code in (400, 403), callback
        assert why in " ".join(added.get_json()["details"]["address"])
    assert n.get("/hub").get_json() == []
    assert notification.notification_list(nlist["id"])["members"] == []


def test_a_webhook_goes_to_the_address_its_callback_was_checked_against_signed_whole(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver) -> None:
    from services.notification.signature import check_signature

    group = str(uuid.uuid4())
    # The policy maps *.localhost to loopback (allowed here); the system resolver does
    # not know the name, so only a connection to the checked address gets through.
    callback = f"http://sla-hook.localhost:{receiver.port}/tmf"
    secret = notification.subscribe_hub(callback, f"offeringGroupId={group}")["secret"]
    publish(suite, crossing("cr-pin", group))
    got = eventually(lambda: receiver.at("/tmf/listener/"), timeout=10)[0]
    assert got["headers"]["Host"] == f"sla-hook.localhost:{receiver.port}"
    delivery_id, event_type = check_signature(secret, got["headers"], got["body"])
    assert (delivery_id, event_type) == (got["headers"]["X-SLA-Delivery-Id"],
                                         "ThresholdCrossingEvent")
    for name, value in (("X-SLA-Event-Type", "BurnRateAlertEvent"),
                        ("X-SLA-Delivery-Id", str(uuid.uuid4()))):
        assert not verify_signature(secret, {**got["headers"], name: value}, got["body"])


class TestTheCallbackIsCheckedAgainWhenSent:
    """The policy is checked when a webhook is sent, not only when its callback was
    accepted: here the API (``SLA_WEBHOOK_ALLOW``) takes a loopback callback, while the
    webhook sender the service is wired with allows no private address."""

    @pytest.fixture
    def service_senders(self, service_env: dict[str, str]) -> dict[str, dict[str, Any]]:
        settings = NotificationConfig.from_env(service_env)
        strict = dataclasses.replace(settings, allow_networks=())
        return {"notification": {"email": EmailSender(settings),
                                 "webhook": WebhookSender(strict)}}

    def test_a_callback_the_policy_no_longer_allows_is_refused_and_never_called(
            self, suite: Any, notification: NotificationDriver, receiver: Receiver) -> None:
        group = str(uuid.uuid4())
        notification.subscribe_hub(f"http://sla-hook.localhost:{receiver.port}/tmf",
                                   f"offeringGroupId={group}")
        publish(suite, crossing("cr-refused", group))
        failed = eventually(lambda: [d for d in notification.deliveries(status="failed")
                                     if "cr-refused" in d["alertIds"]], timeout=10)[0]
        assert "loopback" in failed["lastError"] and failed["attemptCount"] == 1
        assert receiver.at("/tmf/listener/") == []


ACK_LINK = re.compile(r"https://sla\.example/notification/v1/acknowledge\?token=([^\s\"<>]+)")


def _link(mail: Message) -> str:
    found = ACK_LINK.findall(mail.get_body(("plain",)).get_content())
    assert len(found) == 1, found
    html = mail.get_body(("html",)).get_content()
    assert found[0] in html
    return found[0]


def acknowledge_by_link(notification: NotificationDriver, token: str) -> Answer:
    """What a recipient does: open the link (a page that asks, acknowledging nothing),
    then press its button (a form POST of the token)."""
    page = notification.open_ack_link(token)
    assert page.status == 200, page.text
    assert "Acknowledge this SLA alert?" in page.text and "method='post'" in page.text
    return notification.confirm_ack_link(token)


def test_opening_an_acknowledgement_link_acknowledges_nothing_until_its_recipient_confirms(
        suite: Any, notifier: Client, notification: NotificationDriver, mailbox: tuple[Mailbox,
        int]) -> None:
    """A mail scanner or link preview fetches every link in a message: that fetch must
    neither acknowledge the incident in the recipient's name nor use the link up."""
    box = mailbox[0]
    group = str(uuid.uuid4())
    notification.create_list("NOC", [
        {"name": "Sam", "channel": "email", "address": "sam@sla.example"}],
        offeringGroupIds=[group], groupWait=0)
    publish(suite, crossing("cr-prefetch", group))
    token = _link(eventually(lambda: box.to("sam@sla.example"), timeout=10)[0])
    for _ in range(3):  # scanners, previews, the recipient's own first click
        page = notification.open_ack_link(token)
        assert page.status == 200 and "Acknowledge this SLA alert?" in page.text
        assert page.headers["Cache-Control"] == "no-store"
    incident = notification.incidents(alertId="cr-prefetch")[0]
    assert not incident["acknowledged"]
    confirmed = notification.confirm_ack_link(token)
    assert confirmed.status == 200 and "Acknowledged" in confirmed.text
    incident = notification.incidents(alertId="cr-prefetch")[0]
    assert incident["acknowledged"] and incident["acknowledgedBy"] == "Sam <sam@sla.example>"
    anonymous = Client(suite.app("notification"), ROOT).with_scopes()
    assert anonymous.post("/acknowledge", data={}).status_code == 400  # no token: no form


def test_acknowledgement_links_stay_with_their_recipient_and_work_once(
        suite: Any, notifier: Client, notification: NotificationDriver, mailbox: tuple[Mailbox,
        int], clock: SettableClock, caplog: pytest.LogCaptureFixture) -> None:
    n, box = notifier, mailbox[0]
    group = str(uuid.uuid4())
    nlist = notification.create_list("NOC", [
        {"name": "Sam", "channel": "email", "address": "sam@sla.example"},
        {"name": "Kim", "channel": "email", "address": "kim@sla.example"}],
        offeringGroupIds=[group], groupWait=0)
    publish(suite, crossing("cr-ack", group))
    sam = _link(eventually(lambda: box.to("sam@sla.example"), timeout=10)[0])
    kim = _link(eventually(lambda: box.to("kim@sla.example"), timeout=10)[0])
    assert sam != kim
    eventually(lambda: all(d["status"] == "delivered" for d in notification.deliveries()),
               timeout=10)

    # Whoever may read deliveries or the audit log sees neither link nor a way to make one.
    reader = n.with_scopes("sla:read", "audit:read")
    ids = [d["id"] for d in notification.deliveries()]
    seen = [reader.get(path).get_data(as_text=True) for path in (
        "/delivery", "/delivery/export", "/audit/events?limit=1000", "/audit/events/export",
        *[f"/delivery/{i}" for i in ids], *[f"/audit/aggregates/{i}/history" for i in ids],
        *[f"/audit/aggregates/{i}/state" for i in ids])]
    for token in (sam, kim):
        mac = token.rsplit(".", 1)[1]
        assert not any(mac in text for text in seen)
        assert mac not in caplog.text
    assert not any("acknowledge?token=" in text for text in seen)
    stored = reader.get(f"/delivery/{ids[0]}").get_json()["content"]["text"]
    assert "urn:sla-suite:ack-link:" in stored

    assert notification.open_ack_link(f"{sam[:-2]}xx").status == 403  # altered
    acked = acknowledge_by_link(notification, sam)
    assert acked.status == 200 and "Acknowledged" in acked.text
    incident = notification.incidents(alertId="cr-ack")[0]
    assert incident["acknowledgedBy"] == "Sam <sam@sla.example>"
    assert incident["acknowledgedVia"] == "link"
    again = notification.open_ack_link(sam)
    assert again.status == 403 and "already used" in again.text
    assert notification.confirm_ack_link(sam).status == 403
    other = acknowledge_by_link(notification, kim)
    assert other.status == 200 and "Already acknowledged" in other.text
    assert notification.incidents(alertId="cr-ack")[0]["acknowledgedBy"] == \
        "Sam <sam@sla.example>"

    # A link stops working when its recipient leaves the list, and when it expires.
    publish(suite, crossing("cr-ack-2", group))
    eventually(lambda: notification.decisions(alertId="cr-ack-2"))
    clock.advance(301)
    tick(suite)
    sam2 = _link(eventually(lambda: len(box.to("sam@sla.example")) == 2
                            and box.to("sam@sla.example")[1], timeout=10))
    kim2 = _link(eventually(lambda: len(box.to("kim@sla.example")) == 2
                            and box.to("kim@sla.example")[1], timeout=10))
    kim_id = next(m["id"] for m in nlist["members"] if m["name"] == "Kim")
    notification.remove_member(nlist["id"], kim_id)
    left = notification.open_ack_link(kim2)
    assert left.status == 403 and "no longer on the list" in left.text
    clock.advance(suite.runtime("notification").app.config.ack_ttl + 1)
    expired = notification.open_ack_link(sam2)
    assert expired.status == 403 and "expired" in expired.text

    # Acknowledged through the API, the bearer token's subject is recorded.
    second = notification.incidents(alertId="cr-ack-2")[0]
    by_api = notification.acknowledge(second["id"])
    assert (by_api["acknowledgedBy"], by_api["acknowledgedVia"]) == ("tester", "api")


def test_delivery_records_that_earlier_versions_stored_with_links_show_them_redacted(
        suite: Any, notifier: Client) -> None:
    app = suite.runtime("notification").app
    link = ("https://sla.example/notification/v1/acknowledge?token=eyJhbGciOiJIUzI1NiJ9."
            "eyJzdWIiOiJpbmNpZGVudCJ9.b2xkLXNpZ25hdHVyZQ")
    d = Delivery(message_id=str(uuid.uuid4()), channel="email", address="sam@sla.example",
                 recipient="sam@sla.example", target_kind="list", target_id=str(uuid.uuid4()),
                 member_id="m-1", event_ids=["e-1"], alert_ids=["cr-old"], correlation_ids=[],
                 event_type="ThresholdCrossingEvent", reason="first",
                 content={"subject": "old", "text": f"Acknowledge: {link}\n",
                          "html": f'<a href="{link}">acknowledge</a>'},
                 max_attempts=3, due_at=datetime(2026, 3, 1, tzinfo=UTC), ack_links=[])
    stored = app.mapper.to_stored_event(d.collect_events()[0])
    state = app.mapper.transcoder.decode(stored.state)
    for key in ("class_version", "ack_links"):  # as version 1 wrote it
        state.pop(key)
    app.recorder.insert_events([dataclasses.replace(
        stored, state=app.mapper.transcoder.encode(state))])

    reader = notifier.with_scopes("sla:read", "audit:read")
    shown = [reader.get(path).get_data(as_text=True) for path in (
        f"/delivery/{d.id}", f"/audit/aggregates/{d.id}/history",
        f"/audit/aggregates/{d.id}/state", f"/audit/events?aggregateId={d.id}",
        f"/audit/events/export?aggregateId={d.id}")]
    assert all("b2xkLXNpZ25hdHVyZQ" not in text and "token=" not in text for text in shown)
    content = reader.get(f"/delivery/{d.id}").get_json()["content"]
    assert content["text"] == "Acknowledge: urn:sla-suite:ack-link:withdrawn\n"


def test_deleting_a_hub_subscription_or_list_cancels_its_pending_retries(
        suite: Any, notifier: Client, notification: NotificationDriver, receiver: Receiver, clock:
        SettableClock) -> None:
    n = notifier
    app = suite.runtime("notification").app
    group = str(uuid.uuid4())
    receiver.status = 503  # a real listener that fails
    hubs = {name: notification.subscribe_hub(f"{receiver.url}/{name}",
                                             f"offeringGroupId={group}")
            for name in ("kept", "gone")}
    nlist = notification.create_list("NOC", [{"name": "hook", "channel": "webhook",
                                              "address": f"{receiver.url}/list"}],
                                     offeringGroupIds=[group], groupWait=0)
    publish(suite, crossing("cr-del", group))

    def retrying() -> dict[str, dict[str, Any]]:
        by_target = {d["hubId"] or d["listId"]: d
                     for d in notification.deliveries(status="retrying")}
        return len(by_target) == 3 and by_target

    pending = eventually(retrying, timeout=10)
    gone = pending[hubs["gone"]["id"]]
    of_list = pending[nlist["id"]]
    notification.unsubscribe_hub(hubs["gone"]["id"])
    notification.delete_list(nlist["id"])
    for d, reason in ((gone, "the hub subscription was deleted"),
                      (of_list, "the notification list was deleted")):
        now = notification.delivery(d["id"])
        assert (now["status"], now["cancelReason"], now["nextAttemptAt"]) == (
            "cancelled", reason, None)
        history = n.get(f"/audit/aggregates/{d['id']}/history").get_json()
        assert history[-1]["eventType"].endswith("Delivery.Cancelled")
        assert history[-1]["data"]["reason"] == reason

    # The listener recovers; the kept subscription's retry goes out, the others never.
    receiver.status = 204
    clock.advance(60)
    tick(suite)
    kept = pending[hubs["kept"]["id"]]
    notification.wait_until_delivered(kept["id"])
    assert {d.id for d in app.due_deliveries()}.isdisjoint({uuid.UUID(gone["id"]),
                                                            uuid.UUID(of_list["id"])})
    assert len(receiver.at("/gone")) == 1 and len(receiver.at("/list")) == 1
    assert len(receiver.at("/kept")) == 2
    for d in (gone, of_list):
        assert notification.delivery(d["id"])["attemptCount"] == 1


def test_a_burn_alert_monitoring_publishes_reports_its_window_as_the_event_time(
        tmp_path: Any, notification: NotificationDriver) -> None:
    from services.monitoring import messaging as published
    from services.notification.messaging import burn_labels, crossing_labels
    from tests.service.test_monitoring_figures import AVAILABILITY, Deployment, at

    # Two hours fully down against 99.9 % over P30D: a breach and a page, both about
    # the first hour (00:00-01:00), recorded whenever the evaluator got to them.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.9,
                                       "conformancePeriod": "P30D"})
    d.up("po-0", at(1), 0.0)
    d.up("po-0", at(2), 0.0)
    d.evaluate()
    describe = published.describer(d.app)
    labels = {}
    for aggregate in (*d.app.burn_alerts(), *d.app.crossings()):
        if aggregate.scope_id != "po-0":
            continue
        stored = d.app.outcomes.recorder.select_events(aggregate.id)[0]
        publication = describe(d.app.outcomes.mapper.to_domain_event(stored))
        envelope = Envelope(event_id=f"monitoring:{aggregate.id}", event_time=iso(),
                            event_type=publication.event_type, source="monitoring",
                            event=publication.event)
        read = burn_labels if publication.event_type == "BurnRateAlertEvent" \
            else crossing_labels
        labels[publication.event_type] = read(envelope)
    assert labels["BurnRateAlertEvent"]["since"] == at(0)
    assert labels["BurnRateAlertEvent"]["windowEnd"] == at(1)
    assert labels["ThresholdCrossingEvent"]["since"] == at(0)
