"""Customers told of a planned outage end to end, distributed: the registry,
outage-negotiation and notification as gunicorn processes plus their workers on RabbitMQ,
PostgreSQL and Redis, e-mail to a real SMTP server. Each customer's contacts get the
notice with a response link; both answer by it over HTTP and the window is agreed; the
outage-negotiation worker is killed (SIGKILL) and started again before the reminder and
right after it: each contact gets the reminder once, then the start notice once."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from shared import auth
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.notification import NotificationDriver
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver
from tests.e2e.processes import distributed_suite, wait_until
from tests.service.test_notification import Mailbox, smtp_server

pytestmark = pytest.mark.e2e
SERVICES = ("threshold-registry", "outage-negotiation", "notification")
TOKEN = re.compile(r"/outage-negotiation/v1/respond\?token=([\w.\-]+)")


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback (notification's e-mail goes there)."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def suite_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                    tmp_path: Path, unique: str, smtp: tuple[Mailbox, int]
                    ) -> Iterator[dict[str, Any]]:
    settings = {"SLA_RELAY_POLL_INTERVAL": "0.05", "SLA_SMTP_HOST": "127.0.0.1",
                "SLA_SMTP_PORT": str(smtp[1]), "SLA_OUTAGE_TICK": "0.2",
                "SLA_NOTIFICATION_TICK": "0.2", "SLA_OUTAGE_REMINDERS": "*=PT15S",
                "SLA_OUTAGE_PUBLIC_URL": "http://outages.example"}
    with distributed_suite(SERVICES, amqp_url=amqp_url, postgres=postgres,
                           redis_url=redis_url, logs=tmp_path, unique=unique, secret=SECRET,
                           settings=settings, http_workers=1) as suite:
        yield suite


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_customers_answer_their_notices_and_get_each_reminder_once_across_restarts(
        suite_processes: dict[str, Any], smtp: tuple[Mailbox, int]) -> None:
    box, _ = smtp
    bases, processes = suite_processes["bases"], suite_processes["processes"]
    admin = auth.issue(SECRET, ["admin"], "e2e")
    manager = RegistryDriver(NetworkHttp(bases["threshold-registry"], admin))
    planner = OutageDriver.at(bases["outage-negotiation"], admin)
    notifier = NotificationDriver(NetworkHttp(bases["notification"], admin))

    group = manager.create_group("Metro fibre")
    offering = manager.create_offering("Metro 10G", group=group)
    bronze = manager.create_sla_type("bronze", minimumNoticeDays=0)
    customers = ["cust-a", "cust-b"]
    for n, customer in enumerate(customers):
        manager.add_purchased_offering(f"metro-{n}", offering, customer, sla_type=bronze)
        notifier.create_list(f"{customer} contacts", [
            {"name": "Ops", "channel": "email", "address": f"ops@{customer}.example"}],
            customerIds=[customer], topics=[{"eventTypes": ["*"]}])

    start = (datetime.now(UTC) + timedelta(seconds=55)).replace(microsecond=0)
    drafted = wait_until(lambda: (a := planner.draft(
        {"offeringGroupId": group["id"]}, [window(iso(start), iso(start + timedelta(
            minutes=1)))], reason="metro ring upgrade", expect=None)).status == 201 and a,
        30, "outage-negotiation knows the group").body
    wait_until(lambda: planner.move(drafted, "propose", expect=None).status == 200, 30,
               "the inventory is known")
    planner.move(drafted, "negotiate", deadline=iso(start - timedelta(seconds=25)))

    def mails(customer: str, words: str) -> list[Any]:
        return [m for m in box.to(f"ops@{customer}.example") if words in m["Subject"]]

    for customer in customers:
        notice = wait_until(lambda customer=customer: mails(customer, "please answer"), 30,
                            f"{customer}'s notice")[0]
        token = TOKEN.findall(notice.get_body(("plain",)).get_content())[0]
        answer = requests.post(f"{bases['outage-negotiation']}/plannedOutageResponse",
                               json={"token": token, "answer": "accept", "windowIndex": 0},
                               timeout=10)
        assert answer.status_code == 200, answer.text
    assert wait_until(lambda: planner.outage(drafted)["status"] == "agreed", 20, "agreed")

    def kill_and_restart(name: str = "outage-negotiation-worker") -> None:
        processes[name].send(signal.SIGKILL)
        processes[name].stop()
        processes[name] = processes[name].restarted()

    # Killed before the reminder is due, and again right after it went out.
    kill_and_restart()
    for customer in customers:
        wait_until(lambda customer=customer: mails(customer, "Reminder"), 60,
                   f"{customer}'s reminder", processes.values())
    kill_and_restart()
    for customer in customers:
        wait_until(lambda customer=customer: mails(customer, "started"), 60,
                   f"{customer}'s start notice", processes.values())
    for customer in customers:
        subjects = [m["Subject"].split(" —")[0] for m in box.to(f"ops@{customer}.example")]
        assert subjects == ["Planned maintenance: please answer", "Planned maintenance agreed",
                            "Reminder: planned maintenance", "Planned maintenance started"]
    outage = planner.outage(drafted)
    assert [(r["lead"], r["state"]) for r in outage["reminders"]] == [("PT15S", "sent")]
