"""The offering-wide problems, as an SLA manager and a NOC live them, in one process
(in-process bus), on SQLite and PostgreSQL: Customer QoS/SLA Management's violations and
analyses and monitoring's breaches of several purchased offerings of one offering open
one problem, more update it, the same violation heard again changes nothing, quiet
resolves it, recurrence reopens it; each change is logged into the inventory (the
registry's analysis log of the offering) and delivered to the offering's notification
list. Time is the test's clock."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.bus.envelope import Envelope
from shared.bus.inbox import tracking_for
from shared.bus.topology import CUSTOMER_SLA_EVENTS, SLA_EVENTS
from shared.bus.transport import REASON_HEADER, Delivery
from shared.scheduler import SettableClock
from shared.times import iso
from tests.drivers.http import FlaskHttp
from tests.drivers.notification import NotificationDriver
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client
from tests.service.test_notification import (  # noqa: F401 - fixtures
    Receiver,
    mailbox,
    receiver,
    service_env,
)

pytestmark = pytest.mark.services("threshold-registry", "analysis", "notification")
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Callable[[], Any]]:
    return {"analysis": clock, "notification": clock}


@pytest.fixture
def analyst(suite: Any) -> Client:
    return Client(suite.app("analysis"), "/analysis/v1")


@pytest.fixture
def estate(suite: Any, registry: Client, analyst: Client, receiver: Receiver  # noqa: F811
           ) -> dict[str, Any]:
    """An offering of four active purchased offerings of three customers (and a
    suspended one), its rule (three purchased offerings within a day, resolved after two
    quiet hours) and the NOC's list of its group, on a webhook."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    tag = uuid.uuid4().hex[:6]
    products = [f"fibre-{n}-{tag}" for n in range(4)]
    for product, customer in zip(products, ["acme", "acme", "globex", "initech"], strict=True):
        manager.add_purchased_offering(product, fibre.offering, customer, sla_type=fibre.gold)
    manager.add_purchased_offering(f"fibre-old-{tag}", fibre.offering, "acme",
                                   sla_type=fibre.gold, status="suspended")
    offering = fibre.offering["id"]
    app = suite.runtime("analysis").app
    eventually(lambda: app.active_count(offering) == 4)
    rule = analyst.request("PUT", f"/serviceProblemRule/{offering}", json={
        "count": 3, "period": "PT24H", "quietTime": "PT2H"})
    assert rule.status_code == 200, rule.get_json()
    assert rule.headers["ETag"] == '"1"'
    noc = NotificationDriver(FlaskHttp(Client(suite.app("notification"),
                                              "/notification/v1")))
    nlist = noc.create_list("NOC fibre", [{"name": "NOC", "channel": "webhook",
                                           "address": f"{receiver.url}/hooks/noc"}],
                            topics=[{"eventTypes": ["ServiceProblem*"]}],
                            offeringGroupIds=[fibre.group["id"]], groupWait=0,
                            groupInterval=1)
    return {"offering": offering, "products": products, "list": nlist, "noc": noc,
            "group": fibre.group["id"]}


def _envelope(event_type: str, event: dict[str, Any], source: str | None = None
              ) -> Envelope:
    return Envelope(event_id=str(uuid.uuid4()), event_time=iso(), event_type=event_type,
                    event=event, correlation_id=f"qos-{uuid.uuid4().hex[:8]}",
                    source=source)


def sla_violation(violation_id: str, product: str, customer: str, at: datetime,
                  offering: str | None = None) -> Envelope:
    body: dict[str, Any] = {
        "id": violation_id, "href": f"https://qos.example/slaViolation/{violation_id}",
        "sla": {"id": f"sla-{customer}"}, "relatedParty": [{"id": customer,
                                                             "role": "Customer"}],
        "productId": product, "parameter": "availability", "actualValue": "0.97",
        "violationDate": iso(at)}
    if offering:
        body["productOfferingId"] = offering
    return _envelope("SlaViolationCreateEvent", {"slaViolation": body})


def sla_analysis(analysis_id: str, product: str, customer: str, at: datetime) -> Envelope:
    return _envelope("CustomerSlaAnalysisEvent", {"slaAnalysis": {
        "id": analysis_id, "productId": product, "customerId": customer,
        "period": {"startDateTime": iso(at - timedelta(hours=1)), "endDateTime": iso(at)},
        "parameter": "availability", "compliance": 97.0, "violations": 2}})


def breach(crossing_id: str, product: str, at: datetime) -> Envelope:
    return _envelope("ThresholdCrossingEvent", {"change": "raised", "crossing": {
        "id": crossing_id, "regimeId": "rg-1", "parameter": "availability",
        "scope": {"type": "purchasedOffering", "id": product}, "level": "breached",
        "measuredValue": 97.0, "unit": "%", "aggregation": "availability",
        "conformanceTarget": 99.9, "thresholdTarget": 99.95, "comparator": "GE",
        "standardId": "std-1", "standardVersion": 1,
        "window": {"startDateTime": iso(at - timedelta(hours=1)), "endDateTime": iso(at)},
        "planned": False, "batchIds": ["b-1"], "raisedAt": iso(at)}}, "monitoring")


def send(suite: Any, envelope: Envelope) -> None:
    exchange, key = {
        "SlaViolationCreateEvent": (CUSTOMER_SLA_EVENTS, "sla-violation.create"),
        "CustomerSlaAnalysisEvent": (CUSTOMER_SLA_EVENTS, "sla-analysis.create"),
        "ThresholdCrossingEvent": (SLA_EVENTS, "monitoring.crossing.raised"),
    }[envelope.event_type]
    suite.runtime("analysis").transport.publish_raw(exchange, key, envelope.to_bytes(),
                                                    message_id=envelope.event_id)


def problems_of(analyst: Client, **query: str) -> list[dict[str, Any]]:
    answer = analyst.get("/serviceProblem", query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def the_problem(analyst: Client, offering: str) -> dict[str, Any]:
    (problem,) = problems_of(analyst, productOfferingId=offering)
    answer = analyst.get(f"/serviceProblem/{problem['id']}")
    assert answer.status_code == 200 and answer.headers["ETag"] == f'"{problem["version"]}"'
    assert answer.get_json() == problem
    return problem


def handled(suite: Any, envelope: Envelope) -> None:
    """The message was handled (kept or found to change nothing): the inbox tracked it,
    and every message sent before it (one consumer, in order)."""
    app = suite.runtime("analysis").app
    exchange = SLA_EVENTS if envelope.event_type == "ThresholdCrossingEvent" \
        else CUSTOMER_SLA_EVENTS
    tracking = tracking_for(Delivery(b"", exchange, "", envelope.event_id), envelope)
    eventually(lambda: app.is_tracked(tracking))


def test_violations_of_one_offering_open_one_problem_updated_resolved_and_reopened(
        suite: Any, analyst: Client, registry: Client, estate: dict[str, Any],
        clock: SettableClock, receiver: Receiver) -> None:  # noqa: F811
    offering, po = estate["offering"], estate["products"]
    t = START - timedelta(hours=3)
    first = sla_violation("v-1", po[0], "acme", t)
    send(suite, first)
    second = sla_analysis("an-1", po[1], "acme", t + timedelta(minutes=30))
    send(suite, second)
    handled(suite, second)
    assert problems_of(analyst, productOfferingId=offering) == []  # two: not yet
    # The third purchased offering within the day reaches the rule: one problem opens.
    send(suite, breach("cr-1", po[2], t + timedelta(hours=1)))
    problem = eventually(lambda: problems_of(analyst, productOfferingId=offering))[0]
    problem = the_problem(analyst, offering)
    assert problem["@type"] == "ServiceProblem" and problem["status"] == "inProgress"
    assert problem["href"] == f"/analysis/v1/serviceProblem/{problem['id']}"
    assert problem["affectedProductOffering"]["id"] == offering
    assert (problem["affectedNumberOfServices"], problem["activeNumberOfServices"],
            problem["affectedCustomerCount"], problem["violationCount"]) == (3, 4, 2, 3)
    assert problem["impactImportanceFactor"] == 75.0
    assert sorted(s["id"] for s in problem["affectedService"]) == sorted(po[:3])
    assert sorted(p["id"] for p in problem["relatedParty"]) == ["acme", "globex"]
    assert [v["@referredType"] for v in problem["slaViolation"]] == [
        "SlaViolation", "CustomerSlaAnalysis", "ThresholdCrossing"]
    assert problem["firstAlert"]["id"] == "v-1" and problem["lastAlert"]["id"] == "cr-1"
    assert problem["firstAlert"]["href"] == "https://qos.example/slaViolation/v-1"
    assert problem["timeRaised"] == iso(START) and problem["episode"] == 1
    assert problem["resolutionDue"] == iso(START + timedelta(hours=2))
    assert problem["rule"] == {"count": 3, "share": None, "period": "P1D",
                               "quietTime": "PT2H"}

    # A fourth purchased offering, half an hour later: the same problem, updated.
    clock.advance(1800)
    send(suite, sla_violation("v-2", po[3], "initech", t + timedelta(hours=2)))
    problem = eventually(lambda: (p := the_problem(analyst, offering))[
        "affectedNumberOfServices"] == 4 and p)
    assert (problem["affectedCustomerCount"], problem["violationCount"]) == (3, 4)
    assert problem["resolutionDue"] == iso(START + timedelta(hours=2, minutes=30))
    assert len(problems_of(analyst)) == 1

    # The same violations again — a redelivery, a replay, the same id in a new message —
    # change nothing.
    send(suite, first)
    send(suite, sla_violation("v-2", po[3], "initech", t + timedelta(hours=2)))
    again = breach("cr-1", po[2], t + timedelta(hours=1))
    send(suite, again)
    handled(suite, again)
    assert the_problem(analyst, offering) == problem

    # Quiet for two hours: resolved by the clock.
    clock.advance(2 * 3600 + 1)
    app = suite.runtime("analysis").app
    eventually(lambda: app.tick() >= 0 and the_problem(analyst, offering)["status"]
               == "resolved")
    resolved = the_problem(analyst, offering)
    assert resolved["resolutionDate"] == iso(clock()) and resolved["resolutionDue"] is None
    assert problems_of(analyst, status="resolved")[0]["id"] == problem["id"]
    assert problems_of(analyst, status="inProgress") == []

    # Violations recur: one alone does not reopen it, three after the resolution do —
    # the same problem, its second episode.
    later = clock() - timedelta(minutes=10)
    alone = sla_violation("v-3", po[0], "acme", later)
    send(suite, alone)
    handled(suite, alone)
    assert the_problem(analyst, offering)["status"] == "resolved"
    send(suite, sla_violation("v-4", po[1], "acme", later + timedelta(minutes=1)))
    send(suite, breach("cr-2", po[2], later + timedelta(minutes=2)))
    reopened = eventually(lambda: (p := the_problem(analyst, offering))["status"]
                          == "inProgress" and p)
    assert reopened["id"] == problem["id"] and reopened["episode"] == 2
    assert (reopened["affectedNumberOfServices"], reopened["violationCount"]) == (3, 3)
    assert reopened["firstAlert"]["id"] == "v-3" and reopened["resolutionDate"] is None

    # A customer's view: the problems of offerings its purchased offerings violated.
    assert [p["id"] for p in problems_of(analyst, customerId="globex")] == [problem["id"]]
    assert problems_of(analyst, customerId="nobody") == []

    # Every change is logged on the offering in the inventory: opened, updated,
    # resolved, reopened (an update that only adds evidence is not).
    def logged() -> list[dict[str, Any]]:
        answer = registry.get(f"/productOffering/{offering}/analysisLog")
        return [r for r in answer.get_json() if r["kind"] == "offering-wide-problem"]

    log = eventually(lambda: len(logged()) == 4 and logged())
    assert [r["details"]["change"] for r in log] == ["opened", "updated", "resolved",
                                                     "reopened"]
    assert [r["severity"] for r in log] == ["major", "major", "info", "major"]
    assert log[0]["target"] == {"type": "productOffering", "id": offering}
    assert log[0]["details"]["serviceProblem"]["id"] == problem["id"]

    # And delivered to the offering group's list, with its webhook.
    def told() -> list[str]:
        return [alert["change"] for r in receiver.at("/hooks/noc")
                for alert in json.loads(r["body"])["alerts"]]

    def deliver() -> list[str]:
        clock.advance(2)
        suite.runtime("notification").app.wake.set()
        return told()

    changes = eventually(lambda: len(deliver()) >= 4 and told())
    assert changes == ["opened", "updated", "resolved", "reopened"]
    message = json.loads(receiver.at("/hooks/noc")[0]["body"])
    (alert,) = message["alerts"]
    assert alert["eventType"] == "ServiceProblemChangeEvent" and alert["severity"] == "major"
    assert alert["offeringId"] == offering and alert["offeringGroupId"] == estate["group"]
    assert "offering-wide problem opened" in alert["headline"]


def test_a_violation_of_an_offering_no_one_knows_is_dead_lettered_with_the_reason(
        suite: Any, analyst: Client, estate: dict[str, Any]) -> None:
    runtime = suite.runtime("analysis")
    send(suite, sla_violation("v-x", "not-in-the-inventory", "acme", START))
    fine = sla_violation("v-y", estate["products"][0], "acme", START)
    send(suite, fine)
    dead = eventually(lambda: runtime.transport.dead_letters(runtime.queue))
    assert len(dead) == 1
    assert "names no offering" in dead[0].headers[REASON_HEADER]
    handled(suite, fine)
    assert problems_of(analyst) == []


@pytest.mark.services("analysis")
def test_a_rule_is_audited_configuration_changed_with_if_match(
        analyst: Client) -> None:
    body = {"share": 0.25, "period": "PT12H", "quietTime": "PT1H"}
    made = analyst.request("PUT", "/serviceProblemRule/default", json=body)
    assert made.status_code == 200, made.get_json()
    assert made.get_json()["id"] == "default" and made.get_json()["share"] == 0.25
    stale = analyst.request("PUT", "/serviceProblemRule/default", json=body,
                            headers={"If-Match": '"7"'})
    assert stale.status_code == 409, stale.get_json()
    changed = analyst.request("PUT", "/serviceProblemRule/default",
                              json={**body, "count": 5}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    assert analyst.get("/serviceProblemRule/default").get_json()["count"] == 5
    neither = {"period": "PT12H", "quietTime": "PT1H"}
    for bad in (neither, {**body, "share": None}, {**body, "period": "soon"},
                {**body, "share": 0}, {**body, "share": 1.5}):
        refused = analyst.request("PUT", "/serviceProblemRule/default", json=bad)
        assert refused.status_code == 400, refused.get_json()
    unknown = analyst.request("PUT", f"/serviceProblemRule/{uuid.uuid4()}", json=body)
    assert unknown.status_code == 409 and unknown.get_json()["code"] == "UNKNOWN_REFERENCE"
    assert analyst.get("/serviceProblem/" + str(uuid.uuid4())).status_code == 404
