"""Stories of a change manager planning outages, in one process (in-process bus) on SQLite
and PostgreSQL: the registry's catalogue and inventory reach outage-negotiation over the
bus; an outage over a group is drafted, proposed (its customers resolved and kept),
negotiated and agreed; the rules refuse with what would pass; the clock starts and
completes it; every published change reaches monitoring, which excludes its window."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.outage_negotiation.domain import CustomerAnswer
from shared.scheduler import SettableClock
from tests.drivers.http import FlaskHttp
from tests.drivers.outages import OutageDriver, window
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client

NOW = datetime(2026, 11, 1, tzinfo=UTC)
pytestmark = pytest.mark.services("threshold-registry", "outage-negotiation")


def at(days: float, hours: float = 0) -> str:
    return (NOW + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Any]:
    return {"outage-negotiation": clock}


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SLA_OUTAGE_CAP_MINUTES": "gold=600", "SLA_OUTAGE_TICK": "0.05"}


@pytest.fixture
def outages(suite: Any) -> OutageDriver:
    return OutageDriver(FlaskHttp(Client(suite.app("outage-negotiation"),
                                         "/outage-negotiation/v1")))


@pytest.fixture
def estate(registry: Client, outages: OutageDriver, suite: Any) -> dict[str, Any]:
    """A group with one offering, three purchased offerings of two customers (gold: ten
    days' notice), and one of another group; known to outage-negotiation."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    other = manager.create_offering("Other", group=manager.create_group("Other group"))
    tag = uuid.uuid4().hex[:6]
    products = [f"fibre-{n}-{tag}" for n in range(3)]
    customers = [f"acme-{tag}", f"acme-{tag}", f"globex-{tag}"]
    for product, customer in zip(products, customers, strict=True):
        manager.add_purchased_offering(product, fibre.offering, customer, sla_type=fibre.gold,
                                       site="london" if customer.startswith("acme") else "leeds")
    elsewhere = f"other-{tag}"
    manager.add_purchased_offering(elsewhere, other, customers[2], sla_type=fibre.gold)
    app = suite.runtime("outage-negotiation").app
    eventually(lambda: app._fact("purchasedOffering", elsewhere)
               and app._fact("purchasedOffering", products[-1]))
    return {"group": fibre.group, "offering": fibre.offering, "gold": fibre.gold,
            "products": products, "customers": customers, "elsewhere": elsewhere,
            "manager": manager}


def test_an_outage_over_a_group_is_resolved_agreed_started_and_completed_by_the_clock(
        suite: Any, estate: dict[str, Any], outages: OutageDriver, clock: SettableClock
) -> None:
    group = estate["group"]["id"]
    drafted = outages.draft({"offeringGroupId": group}, [window(at(12), at(12, 2)),
                                                          window(at(14), at(14, 2))],
                            changeLink="https://changes.example/CHG-1").body
    assert drafted["status"] == "draft" and drafted["planner"] == "tester"
    proposed = outages.move(drafted, "propose", reason="first round").body
    assert proposed["status"] == "proposed"
    assert proposed["affectedPurchasedOfferingCount"] == 3
    acme, _, globex = estate["customers"]
    by_customer = {c["customerId"]: c for c in proposed["affectedCustomers"]}
    assert sorted(by_customer[acme]["purchasedOfferingIds"]) == estate["products"][:2]
    assert by_customer[globex]["purchasedOfferingIds"] == [estate["products"][2]]
    assert by_customer[acme]["minimumNoticeDays"] == 10
    assert by_customer[acme]["slaTypes"][0]["name"] == "gold"

    # A later inventory change does not rewrite who was affected.
    estate["manager"].add_purchased_offering(f"late-{uuid.uuid4().hex[:4]}",
                                             estate["offering"], "initech")
    outages.move(proposed, "negotiate")
    # A second planner acting on a stale version is refused, nothing changes.
    stale = outages.move(proposed, "agree", expect=409, version=proposed["version"])
    assert stale.body["code"] == "STALE_VERSION"
    agreed = outages.move(proposed, "agree", windowIndex=1, reason="customers prefer it").body
    assert agreed["status"] == "agreed"
    assert agreed["window"] == window(at(14), at(14, 2))
    assert agreed["affectedPurchasedOfferingCount"] == 3
    assert [(m["to"], m["actor"]) for m in agreed["moves"]] == [
        ("draft", "tester"), ("proposed", "tester"), ("negotiating", "tester"),
        ("agreed", "tester")]

    clock.set(NOW + timedelta(days=14, minutes=1))
    started = eventually(lambda: (o := outages.outage(agreed))["status"] == "inProgress"
                         and o)
    assert started["moves"][-1]["actor"] == "outage-negotiation:clock"
    extended = outages.move(agreed, "extend", endDateTime=at(14, 3),
                            reason="the splice takes longer").body
    assert extended["window"]["endDateTime"] == at(14, 3)
    assert extended["extensions"][0]["reason"] == "the splice takes longer"
    clock.set(NOW + timedelta(days=14, hours=2, minutes=30))
    assert outages.outage(agreed)["status"] == "inProgress"  # extended: not over yet
    clock.set(NOW + timedelta(days=14, hours=3))
    done = eventually(lambda: (o := outages.outage(agreed))["status"] == "completed" and o)
    assert done["completedAt"] == at(14, 3)

    published = suite.runtime("outage-negotiation").app
    kinds = [type(e).__name__ for e in published.events.get(uuid.UUID(agreed["id"]))]
    assert kinds == ["Drafted", "Proposed", "NegotiationOpened", "Agreed", "Started",
                     "Extended", "Completed"]
    assert outages.outages(status="completed")[0]["id"] == agreed["id"]


def test_bad_windows_and_unknown_or_retired_offerings_are_refused_naming_the_field(
        estate: dict[str, Any], outages: OutageDriver) -> None:
    group = estate["group"]["id"]
    past = outages.draft({"offeringGroupId": group}, [window(at(-1), at(1))], expect=400)
    assert "windows.0.startDateTime" in past.body["details"]
    backwards = outages.draft({"offeringGroupId": group}, [window(at(20), at(19))],
                              expect=400)
    assert "windows.0.endDateTime" in backwards.body["details"]
    unknown = outages.draft({"productOfferingIds": [str(uuid.uuid4())]},
                            [window(at(20), at(20, 1))], expect=409)
    assert "affects.productOfferingIds.0" in unknown.body["details"]
    nothing = outages.draft({}, [window(at(20), at(20, 1))], expect=400)
    assert "affects" in str(nothing.body["details"])
    retired = estate["manager"].create_offering("Old", lifecycle_status="retired")
    # The retired offering reaches the service over the bus.
    found = eventually(lambda: "retired" in str(outages.draft(
        {"productOfferingIds": [retired["id"]]}, [window(at(20), at(20, 1))], expect=None
    ).body.get("details", {}).get("affects.productOfferingIds.0")))
    assert found


def test_the_rules_refuse_with_what_would_pass(estate: dict[str, Any],
                                               outages: OutageDriver) -> None:
    acme, _, globex = estate["customers"]
    products = estate["products"]
    # Minimum notice: gold asks ten days; the earliest allowed start is given.
    early = outages.draft({"purchasedOfferingIds": [products[0]]},
                          [window(at(3), at(3, 1))]).body
    refused = outages.move(early, "propose", expect=409).body
    assert refused["code"] == "MINIMUM_NOTICE"
    assert refused["details"]["earliestStart"] == [at(10)]
    # A customer's blackout, declared once, refuses every outage that touches it.
    outages.declare_blackouts(globex, [{"startDateTime": at(20), "endDateTime": at(22),
                                        "reason": "year-end trading"}])
    blacked = outages.draft({"customerSites": [{"customerId": globex, "site": "leeds"}]},
                            [window(at(21), at(21, 1))]).body
    refused = outages.move(blacked, "propose", expect=409).body
    assert refused["code"] == "BLACKOUT" and globex in refused["message"]
    assert at(22) in refused["details"]["windows.0"][0]
    # Overlaps are flagged (the policy here) on the outage proposed second.
    first = outages.agreed({"purchasedOfferingIds": [products[0]]},
                           [window(at(12), at(12, 4))])
    second = outages.draft({"purchasedOfferingIds": products[:2]},
                           [window(at(12, 3), at(12, 5))]).body
    flagged = outages.move(second, "propose").body
    assert flagged["overlaps"] == [{"plannedOutageId": first["id"], "status": "agreed",
                                    "sharedCount": 1, "purchasedOfferingIds": [products[0]]}]
    # The cap: gold may have 600 planned minutes a month; 240 are agreed, 400 more are not.
    capped = outages.draft({"purchasedOfferingIds": [products[0]]},
                           [window(at(25), at(25, 6 + 40 / 60))]).body
    refused = outages.move(capped, "propose", expect=409).body
    assert refused["code"] == "CAP" and refused["details"]["minutesLeft"] == ["360"]
    fits = outages.draft({"purchasedOfferingIds": [products[0]]},
                         [window(at(25), at(25, 6))]).body
    assert outages.move(fits, "propose").body["status"] == "proposed"
    # A cancellation of a draft is not published; of an agreed outage it is.
    cancelled = outages.move(first, "cancel", reason="change withdrawn").body
    assert cancelled["status"] == "cancelled"
    again = outages.move(first, "agree", expect=409).body
    assert again["code"] == "INVALID_TRANSITION" and "cancelled" in again["message"]


def test_a_rescheduled_outage_is_negotiated_again(estate: dict[str, Any],
                                                  outages: OutageDriver) -> None:
    agreed = outages.agreed({"offeringGroupId": estate["group"]["id"]},
                            [window(at(12), at(12, 1))])
    moved = outages.move(agreed, "reschedule", windows=[window(at(15), at(15, 1))],
                         reason="the vendor is late").body
    assert moved["status"] == "negotiating" and moved["window"] is None
    assert moved["windows"] == [window(at(15), at(15, 1))]
    assert outages.move(moved, "agree").body["window"] == window(at(15), at(15, 1))


def test_an_audit_page_past_any_stored_integer_is_empty_not_a_500(
        estate: dict[str, Any], outages: OutageDriver) -> None:
    outages.draft({"offeringGroupId": estate["group"]["id"]}, [window(at(20), at(20, 1))])
    beyond = outages.call("GET", "/audit/events?offset=52931093310730342846775069798769360896",
                          expect=200)
    assert beyond.body == []
    assert int(beyond.headers["X-Total-Count"]) >= 1


def respond(outages: OutageDriver, token: str, answer: str, expect: int | None = 200,
            **body: Any) -> Any:
    return outages.http.request("POST", "/plannedOutageResponse", anonymous=True,
                                json_body={"token": token, "answer": answer, **body})


def links_for(outages: OutageDriver, outage: dict[str, Any], *customers: str) -> list[str]:
    return [outages.move(outage, "responseLink", customerId=c).body["token"]
            for c in customers]


def test_customers_answer_by_their_links_and_all_accepting_agrees_the_window(
        estate: dict[str, Any], outages: OutageDriver) -> None:
    acme, _, globex = estate["customers"]
    drafted = outages.draft({"offeringGroupId": estate["group"]["id"]},
                            [window(at(12), at(12, 1)), window(at(13), at(13, 1))]).body
    outages.move(drafted, "propose")
    opened = outages.move(drafted, "negotiate", deadline=at(11), policy="all").body
    assert opened["round"] == 1 and opened["deadline"] == at(11)
    acme_link, globex_link = links_for(outages, drafted, acme, globex)
    # A link changed by a single character, or of a customer not affected, answers nothing.
    tampered = acme_link[:-2] + ("A" if acme_link[-2] != "A" else "B") + acme_link[-1]
    refused = respond(outages, tampered, "accept")
    assert refused.status == 403 and refused.body["code"] == "INVALID_LINK"
    assert outages.move(drafted, "responseLink", expect=400, customerId="initech"
                        ).body["details"]["customerId"]
    first = respond(outages, acme_link, "accept", windowIndex=1)
    assert first.status == 200, first.body
    assert first.body == {"plannedOutageId": drafted["id"], "customerId": acme, "round": 1,
                          "answer": "accept", "status": "negotiating"}
    twice = respond(outages, acme_link, "reject", reason="changed our mind")
    assert twice.status == 409 and twice.body["code"] == "ALREADY_ANSWERED"
    assert respond(outages, globex_link, "accept", windowIndex=1).status == 200
    # The clock takes the answers into the outage and applies its policy.
    outage = eventually(lambda: (o := outages.outage(drafted))["status"] == "agreed" and o)
    assert outage["window"] == window(at(13), at(13, 1))
    # The negotiation's figures, for the capability report.
    figures = outages.call("GET", "/negotiationFigures", expect=200).body
    assert figures["outagesAgreed"] == 1 and figures["acceptanceRate"] == 1.0
    assert figures["noticeGivenSeconds"]["least"] == 13 * 86400
    assert figures["rounds"] == {"mean": 1, "most": 1}
    assert outages.call("GET", f"/negotiationFigures?from={at(1)}", expect=200
                        ).body == {"from": at(1), "to": None, "outagesAgreed": 0}
    assert outages.call("GET", "/negotiationFigures?from=soon", expect=400).body["details"]
    assert [r["customerId"] for r in outage["responses"]] == [acme, globex]
    assert outage["moves"][-1]["actor"] == f"customer:{globex}"


def test_answers_given_at_once_are_each_kept_and_taken_together_into_the_outage(
        suite: Any, estate: dict[str, Any], outages: OutageDriver) -> None:
    """Customers answer at the same moment (answers do not wait for each other on the
    outage): every one is kept, none twice, and the clock takes them in together."""
    tag = uuid.uuid4().hex[:4]
    many = [f"crowd-{n}-{tag}" for n in range(24)]
    for n, customer in enumerate(many):
        estate["manager"].add_purchased_offering(f"crowd-po-{n}-{tag}", estate["offering"],
                                                 customer, sla_type=estate["gold"])
    app = suite.runtime("outage-negotiation").app
    eventually(lambda: app._fact("purchasedOffering", f"crowd-po-23-{tag}"))
    drafted = outages.draft({"offeringGroupId": estate["group"]["id"]},
                            [window(at(12), at(12, 1))]).body
    outages.move(drafted, "propose")
    outages.move(drafted, "negotiate", deadline=at(11), policy="all")
    everyone = [*estate["customers"][::2], *many]
    tokens = links_for(outages, drafted, *everyone)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: respond(outages, t, "accept"), tokens + tokens[:4]))
    assert sorted(a.status for a in answers) == [200] * len(tokens) + [409] * 4
    agreed = eventually(lambda: (o := outages.outage(drafted))["status"] == "agreed" and o)
    assert sorted(r["customerId"] for r in agreed["responses"]) == sorted(everyone)
    # Each answer records that it was taken in (so it is due no more).
    kept = app.repository.get(CustomerAnswer.create_id(drafted["id"], 1, many[0]))
    assert kept.outcome == "taken" and kept.taken_at is not None


def test_at_the_deadline_silence_is_consent_or_the_planner_gets_a_summary(
        estate: dict[str, Any], outages: OutageDriver, clock: SettableClock) -> None:
    acme, _, globex = estate["customers"]
    group = {"offeringGroupId": estate["group"]["id"]}
    silent = outages.draft(group, [window(at(12), at(12, 1))]).body
    outages.move(silent, "propose")
    outages.move(silent, "negotiate", deadline=at(11), policy="silenceIsConsent")
    [acme_link] = links_for(outages, silent, acme)
    assert respond(outages, acme_link, "accept").status == 200
    refused = outages.draft(group, [window(at(15), at(15, 1))]).body
    outages.move(refused, "propose")
    outages.move(refused, "negotiate", deadline=at(11), policy="all")
    [globex_link] = links_for(outages, refused, globex)
    assert respond(outages, globex_link, "counterPropose", reason="not that week",
                   windows=[window(at(20), at(20, 1))]).status == 200

    clock.set(NOW + timedelta(days=11, seconds=1))
    agreed = eventually(lambda: (o := outages.outage(silent))["status"] == "agreed" and o)
    assert agreed["moves"][-1]["actor"] == "outage-negotiation:clock"
    left = eventually(lambda: (o := outages.outage(refused))["deadlineSummary"] and o)
    assert left["status"] == "negotiating"
    assert left["deadlineSummary"]["counterProposed"] == [globex]
    assert left["deadlineSummary"]["silent"] == 1
    assert left["responses"][0]["windows"] == [window(at(20), at(20, 1))]
    late = respond(outages, links_for(outages, refused, acme)[0], "accept")
    assert late.status in (403, 409)  # the link expired with the deadline
    assert late.body["code"] in ("LINK_EXPIRED", "DEADLINE_PASSED")
