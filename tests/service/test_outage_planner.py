"""Stories of a planner choosing among the customers' answers, and of a customer's calendar,
in one process on SQLite and PostgreSQL: the ranking of candidate windows (acceptance,
blackouts, SLA exposure, rules), the chosen window's new round with only the customers
who had not accepted it, and each customer's iCalendar feed of its agreed outages, read
back with the icalendar library as a calendar client reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest

from services.outage_negotiation import messaging
from shared.scheduler import SettableClock
from tests.drivers.http import FlaskHttp
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ROOT = "/outage-negotiation/v1"
pytestmark = pytest.mark.services("threshold-registry", "outage-negotiation")


def at(days: float, hours: float = 0) -> str:
    return (NOW + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


def when(days: float, hours: float = 0) -> datetime:
    return NOW + timedelta(days=days, hours=hours)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Any]:
    return {"outage-negotiation": clock}


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SLA_OUTAGE_TICK": "0.05"}


@pytest.fixture
def outages(suite: Any) -> OutageDriver:
    return OutageDriver(FlaskHttp(Client(suite.app("outage-negotiation"), ROOT)))


@pytest.fixture
def estate(registry: Client, outages: OutageDriver, suite: Any) -> dict[str, Any]:
    """A group with one offering and three customers: acme (two purchased offerings,
    gold: planned time excluded), globex (one, bronze: planned time counted as down, 2 %
    a breached period) and initech (one, gold); all with ten days' notice."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    bronze = manager.create_sla_type("bronze", maintenanceAccounting="counted-as-down",
                                     creditPercentPerBreachedPeriod=2, creditCapPercent=10)
    tag = uuid.uuid4().hex[:6]
    acme, globex, initech = f"acme-{tag}", f"globex-{tag}", f"initech-{tag}"
    holdings = [(f"fibre-a1-{tag}", acme, fibre.gold), (f"fibre-a2-{tag}", acme, fibre.gold),
                (f"fibre-g1-{tag}", globex, bronze), (f"fibre-i1-{tag}", initech, fibre.gold)]
    for product, customer, sla in holdings:
        manager.add_purchased_offering(product, fibre.offering, customer, sla_type=sla)
    app = suite.runtime("outage-negotiation").app
    eventually(lambda: all(app._fact("purchasedOffering", p) for p, _, _ in holdings)
               and app._fact("slaType", bronze["id"]))
    return {"group": {"offeringGroupId": fibre.group["id"]}, "acme": acme,
            "globex": globex, "initech": initech, "products": [p for p, _, _ in holdings],
            "manager": manager, "offering": fibre.offering}


def respond(outages: OutageDriver, outage: dict[str, Any], customer: str, answer: str,
            **body: Any) -> Any:
    token = outages.move(outage, "responseLink", customerId=customer).body["token"]
    return outages.http.request("POST", "/plannedOutageResponse", anonymous=True,
                                json_body={"token": token, "answer": answer, **body})


def test_the_planner_ranks_the_windows_and_the_chosen_one_asks_only_those_who_had_not(
        suite: Any, estate: dict[str, Any], outages: OutageDriver) -> None:
    acme, globex, initech = estate["acme"], estate["globex"], estate["initech"]
    outage = outages.draft(estate["group"], [window(at(12), at(12, 2)),
                                             window(at(13, 1), at(13, 3))]).body
    outages.move(outage, "propose")
    outages.move(outage, "negotiate", deadline=at(11), policy="all")
    # initech can do none of it before the 20th; globex could live with 00:00-04:00 on
    # the 13th (which holds the second window), or the 15th.
    outages.declare_blackouts(initech, [{"startDateTime": at(15), "endDateTime": at(16),
                                         "reason": "month-end close"}])
    assert respond(outages, outage, acme, "accept", windowIndex=1).status == 200
    assert respond(outages, outage, globex, "counterPropose", reason="nights only",
                   windows=[window(at(13), at(13, 4)), window(at(15, 1), at(15, 2))]
                   ).status == 200
    assert respond(outages, outage, initech, "reject", reason="busy").status == 200

    ranked = outages.call("GET", f"/plannedOutage/{outage['id']}/candidateWindow",
                          expect=200)
    assert ranked.headers["X-Total-Count"] == "4"
    best, *rest = ranked.body
    assert best["rank"] == 0 and best["window"] == window(at(13, 1), at(13, 3))
    assert best["proposedWindowIndex"] == 1
    assert best["acceptedBy"] == sorted([acme, globex]) and best["acceptingCustomers"] == 2
    assert best["customers"] == 3 and best["acceptingPurchasedOfferings"] == 3
    assert best["blackoutCount"] == 0 and best["passes"] is True
    # Only globex's bronze counts planned time as down: 2 % for its one offering.
    assert best["exposure"] == 2
    assert {p["name"]: p["weight"] for p in best["exposureBySlaType"]} == {
        "gold": 0, "bronze": 2}
    assert "acceptable to 2 of 3 customer(s)" in " ".join(best["why"])
    assert [c["window"] for c in rest] == [window(at(13), at(13, 4)),
                                           window(at(15, 1), at(15, 2)),
                                           window(at(12), at(12, 2))]
    by_window = {(c["window"]["startDateTime"], c["window"]["endDateTime"]): c
                 for c in ranked.body}
    blacked = by_window[(at(15, 1), at(15, 2))]
    assert blacked["counterProposedBy"] == [globex] and blacked["blackoutCount"] == 1
    assert blacked["passes"] is False and blacked["ruleBreaks"][0]["rule"] == "BLACKOUT"
    # The order: most accepting, then fewest blackouts, then exposure, then start.
    assert [(c["acceptingCustomers"], c["blackoutCount"]) for c in ranked.body] == [
        (2, 0), (1, 0), (1, 1), (0, 0)]
    passing = outages.call("GET", f"/plannedOutage/{outage['id']}/candidateWindow"
                                  "?passes=false", expect=200).body
    assert [c["window"] for c in passing] == [blacked["window"]]

    # Bad choices change nothing: no such rank, neither rank nor window, a window that
    # is no candidate, a stale version, a rule broken.
    current = outages.outage(outage)
    unknown = outages.move(outage, "chooseWindow", expect=400, candidate=9, reason="x")
    assert "candidate" in unknown.body["details"]
    neither = outages.move(outage, "chooseWindow", expect=400, reason="x")
    assert "candidate" in neither.body["details"]
    stranger = outages.move(outage, "chooseWindow", expect=400, reason="x",
                            window=window(at(18), at(18, 1)))
    assert "window" in stranger.body["details"]
    stale = outages.move(outage, "chooseWindow", expect=409, version=current["version"] - 1,
                         candidate=0, reason="x")
    assert stale.body["code"] == "STALE_VERSION"
    broken = outages.move(outage, "chooseWindow", expect=409, reason="x",
                          window=blacked["window"])
    assert broken.body["code"] == "BLACKOUT" and initech in broken.body["message"]
    assert outages.outage(outage)["version"] == current["version"]

    # The best one: a new round whose one window it is; acme and globex carry their
    # acceptance into it, initech alone is asked.
    chosen = outages.move(outage, "chooseWindow", candidate=0, deadline=at(12, 12),
                          reason="most customers can take it",
                          version=current["version"]).body
    assert chosen["status"] == "negotiating" and chosen["round"] == 2
    assert chosen["windows"] == [window(at(13, 1), at(13, 3))]
    assert chosen["deadline"] == at(12, 12) and chosen["policy"] == "all"
    assert {(r["customerId"], r["answer"], r["windowIndex"], r["round"])
            for r in chosen["responses"]} == {(acme, "accept", 0, 1), (globex, "accept", 0, 1)}
    assert chosen["moves"][-1]["reason"].endswith("most customers can take it")
    # The round's notice asks initech alone, with the one window and its round's link.
    app = suite.runtime("outage-negotiation").app
    picked = next(e for e in app.events.get(uuid.UUID(outage["id"]))
                  if type(e).__name__ == "WindowChosen")
    [notice] = [p.event["notice"] for p in messaging.describer(app)(picked)]
    assert notice["kind"] == "negotiation" and notice["responseLink"]["round"] == 2
    assert [r["customerId"] for r in notice["recipients"]] == [initech]
    assert notice["plannedOutage"]["windows"] == [window(at(13, 1), at(13, 3))]
    again = respond(outages, outage, acme, "accept")
    assert again.status == 409 and again.body["code"] == "ALREADY_ANSWERED"
    assert respond(outages, outage, initech, "accept").status == 200
    # all: two carried and initech's, taken in by the clock.
    agreed = eventually(lambda: (o := outages.outage(outage))["status"] == "agreed" and o)
    assert agreed["window"] == window(at(13, 1), at(13, 3))
    kinds = [type(e).__name__ for e in app.events.get(uuid.UUID(outage["id"]))]
    # The answers are taken in batches (as many as were waiting), before the choice and
    # after it.
    assert [k for k in kinds if k != "AnswersTaken"] == [
        "Drafted", "Proposed", "NegotiationOpened", "WindowChosen", "Agreed"]
    assert "AnswersTaken" in kinds[3:kinds.index("WindowChosen")]
    assert kinds[-2] == "AnswersTaken"
    # Not in negotiation any more: no ranking, no choice.
    late = outages.call("GET", f"/plannedOutage/{outage['id']}/candidateWindow", expect=409)
    assert late.body["code"] == "INVALID_TRANSITION"
    assert outages.move(outage, "chooseWindow", expect=409, candidate=0, reason="x"
                        ).body["code"] == "INVALID_TRANSITION"


def test_after_the_deadline_a_window_every_customer_accepted_is_agreed_when_chosen(
        estate: dict[str, Any], outages: OutageDriver, clock: SettableClock) -> None:
    acme, globex, initech = estate["acme"], estate["globex"], estate["initech"]
    outage = outages.draft(estate["group"], [window(at(12), at(12, 2))]).body
    outages.move(outage, "propose")
    outages.move(outage, "negotiate", deadline=at(11), policy="all")
    for customer in (acme, globex):
        assert respond(outages, outage, customer, "counterPropose", reason="later",
                       windows=[window(at(14), at(14, 6))]).status == 200
    assert respond(outages, outage, initech, "counterPropose", reason="later",
                   windows=[window(at(14, 1), at(14, 3))]).status == 200
    clock.set(NOW + timedelta(days=11, seconds=1))
    left = eventually(lambda: (o := outages.outage(outage))["deadlineSummary"] and o)
    ranked = outages.call("GET", f"/plannedOutage/{outage['id']}/candidateWindow",
                          expect=200).body
    # initech's window lies inside the one acme and globex asked for: all three can.
    assert ranked[0]["window"] == window(at(14, 1), at(14, 3))
    assert ranked[0]["acceptingCustomers"] == 3 and ranked[0]["proposedWindowIndex"] is None
    agreed = outages.move(left, "chooseWindow", window=window(at(14, 1), at(14, 3)),
                          reason="inside every counter-proposal").body
    assert agreed["status"] == "agreed" and agreed["window"] == window(at(14, 1), at(14, 3))
    assert [m["to"] for m in agreed["moves"][-2:]] == ["negotiating", "agreed"]


def feed_of(outages: OutageDriver, customer: str) -> tuple[str, icalendar.Calendar]:
    link = outages.call("POST", "/customerCalendarLink", {"customerId": customer},
                        expect=200).body
    assert link["customerId"] == customer and link["url"].endswith(".ics")
    path = link["url"].split(ROOT, 1)[1]
    answer = outages.http.request("GET", path, anonymous=True)
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("text/calendar")
    return path, icalendar.Calendar.from_ical(answer.text)


def events(calendar: icalendar.Calendar) -> dict[str, Any]:
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_a_customer_subscribes_to_its_agreed_outages_as_an_icalendar_feed(
        estate: dict[str, Any], outages: OutageDriver, clock: SettableClock) -> None:
    acme, globex = estate["acme"], estate["globex"]
    agreed = outages.agreed(estate["group"], [window(at(12), at(12, 2))],
                            reason="core router upgrade", impact="degraded")
    elsewhere = outages.agreed({"purchasedOfferingIds": [estate["products"][2]]},
                               [window(at(20), at(20, 1))])  # globex's alone
    pending = outages.plan(estate["group"], [window(at(25), at(25, 1))])
    doomed = outages.agreed(estate["group"], [window(at(30), at(30, 1))])

    path, calendar = feed_of(outages, acme)
    assert str(calendar["PRODID"]).startswith("-//SLA Support Suite")
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    shown = events(calendar)
    assert set(shown) == {agreed["id"], doomed["id"]}  # not globex's, nor the one pending
    event = shown[agreed["id"]]
    assert event.decoded("DTSTART") == when(12) and event.decoded("DTEND") == when(12, 2)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert int(event["SEQUENCE"]) == outages.outage(agreed)["version"]
    assert str(event["SUMMARY"]) == "Planned outage: core router upgrade"
    description = str(event["DESCRIPTION"])
    assert "degraded" in description and estate["products"][0] in description
    assert estate["products"][2] not in description  # globex's services are its own
    assert str(event["URL"]).endswith(f"{ROOT}/plannedOutage/{agreed['id']}")
    assert set(events(feed_of(outages, globex)[1])) == {agreed["id"], elsewhere["id"],
                                                        doomed["id"]}
    assert pending["id"] not in shown

    # Cancelled after being agreed: still in the feed, CANCELLED, so calendars drop it;
    # started and extended: the new end, a higher SEQUENCE.
    outages.move(doomed, "cancel", reason="change withdrawn")
    clock.set(NOW + timedelta(days=12, minutes=1))
    eventually(lambda: outages.outage(agreed)["status"] == "inProgress")
    outages.move(agreed, "extend", endDateTime=at(12, 3), reason="the splice takes longer")
    later = events(icalendar.Calendar.from_ical(
        outages.http.request("GET", path, anonymous=True).text))
    assert str(later[doomed["id"]]["STATUS"]) == "CANCELLED"
    assert int(later[doomed["id"]]["SEQUENCE"]) > int(shown[doomed["id"]]["SEQUENCE"])
    assert later[agreed["id"]].decoded("DTEND") == when(12, 3)
    assert str(later[agreed["id"]]["STATUS"]) == "CONFIRMED"
    assert "the splice takes longer" in str(later[agreed["id"]]["DESCRIPTION"])
    assert int(later[agreed["id"]]["SEQUENCE"]) > int(event["SEQUENCE"])

    # A link changed by one character, or made with another key, shows nothing.
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    refused = outages.http.request("GET", f"/calendar/{tampered}.ics", anonymous=True)
    assert refused.status == 403 and refused.body["code"] == "INVALID_LINK"
    unknown = outages.call("POST", "/customerCalendarLink", {"customerId": "nobody-here"},
                           expect=409)
    assert unknown.body["code"] == "UNKNOWN_REFERENCE" and "customerId" in unknown.body["details"]
