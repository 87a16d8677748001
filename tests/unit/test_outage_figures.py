"""The negotiation's figures an outage gives the capability report, and their sum over a
period: read off the outage's own moves and answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.outage_negotiation.domain import CLOCK, PlannedOutage
from services.outage_negotiation.figures import negotiation_figures, summary

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def outage(policy: str = "all") -> PlannedOutage:
    windows = [{"start": T0 + timedelta(days=10), "end": T0 + timedelta(days=10, hours=2)},
               {"start": T0 + timedelta(days=12), "end": T0 + timedelta(days=12, hours=2)}]
    made = PlannedOutage(affects={"offeringGroupId": "g"}, windows=windows, reason="r",
                         impact="fullOutage", planner="p", change_link=None, name=None,
                         at=T0)
    resolution = [{"customerId": c, "purchasedOfferingIds": [f"{c}-po"], "slaTypes": [],
                   "minimumNoticeDays": 0} for c in ("a", "b", "c", "d")]
    made.propose(resolution, [f"{c}-po" for c in "abcd"], "g", [], T0, "p", None)
    made.open_negotiation(T0 + timedelta(hours=1), "p", None,
                          deadline=T0 + timedelta(days=5), policy=policy)
    return made


def answer(customer: str, kind: str, index: int | None = None) -> dict:
    return {"customerId": customer, "answer": kind, "windowIndex": index, "reason": None,
            "windows": [], "at": T0 + timedelta(days=1), "round": 1}


def test_an_outage_not_yet_agreed_has_no_figures() -> None:
    assert negotiation_figures(outage()) is None


def test_an_agreed_outage_gives_its_notice_cycle_rounds_and_acceptance() -> None:
    made = outage()
    made.take_answers([answer("a", "accept", 1), answer("b", "accept", 1),
                       answer("c", "accept", 0), answer("d", "reject")], T0 + timedelta(days=1))
    made.agree(made.windows[1], T0 + timedelta(days=2), "p", "the planner chose")
    figures = negotiation_figures(made)
    assert figures is not None
    assert figures["noticeGivenSeconds"] == (timedelta(days=12) - timedelta(hours=1)) \
        .total_seconds()
    assert figures["cycleTimeSeconds"] == (timedelta(days=2) - timedelta(hours=1)) \
        .total_seconds()
    assert (figures["rounds"], figures["customers"], figures["accepted"]) == (1, 4, 2)
    assert figures["acceptanceRate"] == 0.5
    assert figures["silent"] == 0 and figures["agreedBySilence"] is False


def test_agreed_by_silence_at_the_deadline_is_told_apart() -> None:
    made = outage("silenceIsConsent")
    made.take_answers([answer("a", "accept", 0)], T0 + timedelta(days=1))
    made.agree(made.windows[0], T0 + timedelta(days=5), CLOCK, "at the deadline")
    figures = negotiation_figures(made)
    assert figures["agreedBySilence"] is True and figures["silent"] == 3


def test_a_period_pools_acceptance_over_customers_not_the_mean_of_rates() -> None:
    one = {"noticeGivenSeconds": 100, "cycleTimeSeconds": 10, "rounds": 1, "customers": 1,
           "accepted": 1, "agreedBySilence": False}
    many = {"noticeGivenSeconds": 300, "cycleTimeSeconds": 30, "rounds": 3,
            "customers": 99, "accepted": 0, "agreedBySilence": True}
    found = summary([one, many])
    assert found["acceptanceRate"] == pytest.approx(1 / 100)  # not (1 + 0) / 2
    assert found["outagesAgreed"] == 2 and found["agreedBySilenceShare"] == 0.5
    assert found["noticeGivenSeconds"] == {"median": 200, "least": 100}
    assert found["rounds"] == {"mean": 2, "most": 3}
    assert summary([]) == {"outagesAgreed": 0}
