"""Stories of customers told of a planned outage through notification, in one process
(in-process bus) on SQLite and PostgreSQL: each affected customer's lists and hub
subscribers get the notice with the windows, the affected services and a signed response
link the customer answers by; the agreement, the reminders before the start (each once,
the nearest only after a pause of the clock), the start, the extension, the completion and
a cancellation follow; lists that serve everyone or another customer hear nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from services.notification.sending import Outgoing
from shared.scheduler import SettableClock
from tests.drivers.http import FlaskHttp
from tests.drivers.notification import NotificationDriver
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_notification_story import Outbox

NOW = datetime(2026, 11, 1, tzinfo=UTC)
pytestmark = pytest.mark.services("threshold-registry", "outage-negotiation", "notification")
RESPOND = re.compile(r"http://outages\.example/outage-negotiation/v1/respond\?token=([\w.\-]+)")


def at(days: float, hours: float = 0) -> str:
    return (NOW + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Any]:
    return {"outage-negotiation": clock}


@pytest.fixture
def service_senders(outbox: Outbox) -> dict[str, dict[str, Any]]:
    return {"notification": {"email": outbox, "webhook": outbox}}


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SLA_OUTAGE_TICK": "0.05", "SLA_NOTIFICATION_TICK": "0.05",
            "SLA_OUTAGE_PUBLIC_URL": "http://outages.example",
            "SLA_OUTAGE_REMINDERS": "gold=P7D/PT24H/PT1H",
            "SLA_WEBHOOK_ALLOW": "127.0.0.1/32"}


@pytest.fixture
def outages(suite: Any) -> OutageDriver:
    return OutageDriver(FlaskHttp(Client(suite.app("outage-negotiation"),
                                         "/outage-negotiation/v1")))


@pytest.fixture
def notification(suite: Any) -> NotificationDriver:
    return NotificationDriver(FlaskHttp(Client(suite.app("notification"), "/notification/v1")))


@pytest.fixture
def estate(registry: Client, suite: Any, notification: NotificationDriver) -> dict[str, Any]:
    """Two customers of a group's offering (gold: ten days' notice), each with a list of
    its own that asks for every event type; a NOC list serving everyone; a portal
    subscribed to the second customer's events."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    tag = uuid.uuid4().hex[:6]
    acme, globex = f"acme-{tag}", f"globex-{tag}"
    products = [f"fibre-{n}-{tag}" for n in range(3)]
    for product, customer in zip(products, [acme, acme, globex], strict=True):
        manager.add_purchased_offering(product, fibre.offering, customer, sla_type=fibre.gold)
    app = suite.runtime("outage-negotiation").app
    eventually(lambda: app._fact("purchasedOffering", products[-1]))
    topics = [{"eventTypes": ["*"], "minSeverity": "major"}]
    lists = {customer: notification.create_list(
        f"{customer} contacts", [{"name": "Ops", "channel": "email",
                                  "address": f"ops@{customer}.example"}],
        customerIds=[customer], topics=topics) for customer in (acme, globex)}
    noc = notification.create_list("NOC", [{"name": "NOC", "channel": "email",
                                            "address": "noc@operator.example"}],
                                   topics=topics)
    hub = notification.subscribe_hub("http://portal.localhost:9/tmf",
                                     f"eventType=PlannedOutageNoticeEvent&customerId={globex}")
    return {"group": fibre.group["id"], "acme": acme, "globex": globex,
            "products": products, "lists": lists, "noc": noc, "hub": hub}


def mails(outbox: Outbox, address: str, kind: str | None = None) -> list[Outgoing]:
    return [m for m in outbox.to(address) if m.event_type == "PlannedOutageNoticeEvent"
            and (kind is None or kind in m.content.get("subject", ""))]


def text(message: Outgoing) -> str:
    return message.text(message.content["text"])


def test_each_customer_is_told_answers_by_its_link_and_hears_every_move_once(
        suite: Any, estate: dict[str, Any], outages: OutageDriver, outbox: Outbox,
        notification: NotificationDriver, clock: SettableClock) -> None:
    acme, globex = estate["acme"], estate["globex"]
    drafted = outages.draft({"offeringGroupId": estate["group"]},
                            [window(at(12), at(12, 2)), window(at(14), at(14, 2))],
                            name="Core router upgrade").body
    outages.move(drafted, "propose")
    outages.move(drafted, "negotiate", deadline=at(10), policy="all")

    # acme's contacts get the notice: the windows, its services and its response link.
    notice = eventually(lambda: mails(outbox, f"ops@{acme}.example"), timeout=15)[0]
    assert "please answer" in notice.content["subject"]
    body = text(notice)
    assert f"Dear customer {acme}" in body
    assert "1. " + at(12) in body and "2. " + at(14) in body
    assert estate["products"][0] in body and estate["products"][1] in body
    assert estate["products"][2] not in body  # globex's, not acme's
    assert "full outage" in body
    token = RESPOND.findall(body)[0]
    assert token in notice.text(notice.content["html"])
    # ... never stored: the delivery keeps a placeholder.
    stored = notification.deliveries(eventType="PlannedOutageNoticeEvent")
    assert stored and all(token not in str(d) for d in stored)

    # globex's portal gets the TMF688 event, its link inside.
    hook = eventually(lambda: [m for m in outbox.to(
        "http://portal.localhost:9/tmf/listener/plannedOutageNoticeEvent")], timeout=15)[0]
    event = hook.content["body"]["event"]["notice"]
    assert event["recipient"]["customerId"] == globex
    assert event["kind"] == "negotiation"
    portal_link = hook.text(event["respondUrl"])
    portal_token = parse_qs(urlparse(portal_link).query)["token"][0]

    # The link opens the response page, and answers for that customer only.
    page = outages.call("GET", f"/respond?token={token}")
    assert page.status == 200
    outages.call("POST", "/plannedOutageResponse",
                 {"token": token, "answer": "accept", "windowIndex": 1}, expect=200)
    outages.call("POST", "/plannedOutageResponse",
                 {"token": portal_token, "answer": "accept", "windowIndex": 1}, expect=200)
    agreed = eventually(lambda: (o := outages.outage(drafted))["status"] == "agreed" and o)
    assert agreed["window"] == window(at(14), at(14, 2))
    assert [(r["lead"], r["state"]) for r in agreed["reminders"]] == [
        ("P7D", "planned"), ("P1D", "planned"), ("PT1H", "planned")]
    eventually(lambda: mails(outbox, f"ops@{acme}.example", "agreed"), timeout=15)
    assert "Window:   " + at(14) in text(mails(outbox, f"ops@{acme}.example", "agreed")[0])

    # The clock was stopped past two reminders' times: only the nearest goes out.
    clock.set(NOW + timedelta(days=13, hours=1))
    reminded = eventually(lambda: [m for m in mails(outbox, f"ops@{acme}.example",
                                                    "Reminder")], timeout=15)
    assert "(in 1 day)" in text(reminded[0])
    states = eventually(lambda: [r["state"] for r in outages.outage(drafted)["reminders"]]
                        if outages.outage(drafted)["reminders"][1]["state"] == "sent"
                        else None)
    assert states == ["passedOver", "sent", "planned"]
    clock.set(NOW + timedelta(days=13, hours=23, minutes=30))
    eventually(lambda: len(mails(outbox, f"ops@{acme}.example", "Reminder")) == 2,
               timeout=15)
    assert "(in 1 hour)" in text(mails(outbox, f"ops@{acme}.example", "Reminder")[1])

    clock.set(NOW + timedelta(days=14, minutes=1))
    eventually(lambda: mails(outbox, f"ops@{acme}.example", "started"), timeout=15)
    outages.move(drafted, "extend", endDateTime=at(14, 3), reason="the splice takes longer")
    extended = eventually(lambda: mails(outbox, f"ops@{acme}.example", "extended"),
                          timeout=15)[0]
    assert "now ends at " + at(14, 3) in text(extended)
    clock.set(NOW + timedelta(days=14, hours=3))
    eventually(lambda: mails(outbox, f"ops@{acme}.example", "completed"), timeout=15)

    # One of each, to each customer's contacts; nothing to the NOC list or the wrong one.
    subjects = [m.content["subject"].split(" —")[0]
                for m in mails(outbox, f"ops@{acme}.example")]
    assert subjects == ["Planned maintenance: please answer", "Planned maintenance agreed",
                        "Reminder: planned maintenance", "Reminder: planned maintenance",
                        "Planned maintenance started", "Planned maintenance extended",
                        "Planned maintenance completed"]
    eventually(lambda: len(mails(outbox, f"ops@{globex}.example")) == len(subjects),
               timeout=15)
    assert mails(outbox, "noc@operator.example") == []
    assert all(estate["products"][2] not in text(m)
               for m in mails(outbox, f"ops@{acme}.example"))
    decisions = notification.decisions(eventType="PlannedOutageNoticeEvent")
    assert {d["listId"] or d["hubId"] for d in decisions} == {
        estate["lists"][acme]["id"], estate["lists"][globex]["id"], estate["hub"]["id"]}


def test_customers_who_heard_of_an_outage_hear_of_its_cancellation_and_others_do_not(
        suite: Any, estate: dict[str, Any], outages: OutageDriver, outbox: Outbox,
        notification: NotificationDriver) -> None:
    acme = estate["acme"]
    quiet = outages.draft({"offeringGroupId": estate["group"]},
                          [window(at(12), at(12, 2))]).body
    outages.move(quiet, "propose")
    outages.move(quiet, "cancel", reason="not needed after all")  # nobody was told yet
    told = outages.plan({"offeringGroupId": estate["group"]}, [window(at(15), at(15, 2))])
    eventually(lambda: mails(outbox, f"ops@{acme}.example", "please answer"), timeout=15)
    outages.move(told, "cancel", reason="the vendor withdrew the release")
    cancelled = eventually(lambda: mails(outbox, f"ops@{acme}.example", "cancelled"),
                           timeout=15)
    assert len(cancelled) == 1 and "will not take place" in text(cancelled[0])
    assert len(mails(outbox, f"ops@{acme}.example")) == 2


def test_a_notice_reaches_the_lists_and_subscribers_as_they_are_when_it_comes(
        suite: Any, estate: dict[str, Any], outages: OutageDriver, outbox: Outbox,
        notification: NotificationDriver) -> None:
    """Notification keeps the lists naming each customer and the hub subscriptions
    between notices; a list made or deleted, or a portal subscribing, in between is
    what the next notice goes by."""
    acme, globex = estate["acme"], estate["globex"]
    told = outages.plan({"offeringGroupId": estate["group"]}, [window(at(15), at(15, 2))])
    eventually(lambda: mails(outbox, f"ops@{acme}.example", "please answer"), timeout=15)
    eventually(lambda: mails(outbox, f"ops@{globex}.example", "please answer"), timeout=15)

    notification.create_list(f"{acme} escalation", [{"name": "Duty", "channel": "email",
                                                     "address": f"duty@{acme}.example"}],
                             customerIds=[acme], topics=[{"eventTypes": ["*"]}])
    notification.delete_list(estate["lists"][globex]["id"])
    notification.subscribe_hub("http://acme-portal.localhost:9/tmf",
                               f"eventType=PlannedOutageNoticeEvent&customerId={acme}")
    outages.move(told, "cancel", reason="the vendor withdrew the release")

    eventually(lambda: mails(outbox, f"duty@{acme}.example", "cancelled"), timeout=15)
    eventually(lambda: outbox.to(
        "http://acme-portal.localhost:9/tmf/listener/plannedOutageNoticeEvent"), timeout=15)
    # Each list's deliveries go out on their own: acme's own list hears of it too, once.
    eventually(lambda: len(mails(outbox, f"ops@{acme}.example", "cancelled")) == 1,
               timeout=15)
    assert mails(outbox, f"ops@{globex}.example", "cancelled") == []
    assert mails(outbox, f"duty@{acme}.example", "please answer") == []
