"""The rules of offering-wide problems (services/analysis/problems.py): what counts as a
violation, when an offering's violations reach its rule, what a violation does to its
problem, and what the problem keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.analysis import problems
from services.analysis.problems import Counts, NotAViolation, Rule

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_a_rule_opens_on_its_count_or_its_share_of_at_least_two() -> None:
    rule = Rule(count=3, share=0.5)
    assert not problems.reached(rule, 2, 10)
    assert problems.reached(rule, 3, 10)  # the count
    assert problems.reached(rule, 2, 4)  # half the active ones
    # One purchased offering is its customer's problem, not the offering's.
    assert not problems.reached(rule, 1, 1)
    assert not problems.reached(Rule(count=None, share=0.1), 1, 5)
    assert problems.reached(Rule(count=None, share=0.1), 2, 20)
    # No active purchased offering known: only the count can open it.
    assert not problems.reached(Rule(count=None, share=0.1), 5, 0)
    assert problems.reached(Rule(count=5, share=None), 5, 0)


@pytest.mark.parametrize("fields", [
    {"count": None, "share": None}, {"count": 0}, {"share": 0}, {"share": 1.5},
    {"period": 0}, {"quiet": -1},
])
def test_a_rule_that_could_never_open_or_close_is_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        Rule(**fields)


def test_a_rule_reads_and_writes_its_durations_as_iso_8601() -> None:
    rule = Rule.of({"count": 2, "share": None, "period": "PT12H", "quietTime": "PT30M"})
    assert (rule.period, rule.quiet) == (43200, 1800)
    assert rule.wire() == {"count": 2, "share": None, "period": "PT12H",
                           "quietTime": "PT30M"}


def test_what_a_violation_does_to_its_offerings_problem() -> None:
    decide = problems.decide
    assert decide(None, False, False, False) is None  # below the rule: nothing
    assert decide(None, True, False, False) == problems.OPENS
    assert decide(problems.RESOLVED, False, False, False) is None
    assert decide(problems.RESOLVED, True, True, True) == problems.REOPENS
    # Open: every violation changes it; "updated" when its reach grew.
    assert decide(problems.OPEN, False, False, True) == problems.GROWS
    assert decide(problems.OPEN, False, True, False) == problems.GROWS
    assert decide(problems.OPEN, False, True, True) == problems.ADDS


def test_counts_take_a_new_violation_once_per_purchased_offering_and_customer() -> None:
    counts = Counts(4, 2, 1, AT)
    earlier = problems.Violation("SlaViolation", "v9", "po-1", "acme", "o", AT - timedelta(1))
    assert counts.plus(earlier, offering_seen=True, customer_seen=True) == Counts(
        5, 2, 1, AT - timedelta(1))
    other = problems.Violation("SlaViolation", "v10", "po-3", "globex", "o", AT)
    assert counts.plus(other, False, False) == Counts(5, 3, 2, AT)
    nobody = problems.Violation("ThresholdCrossing", "c1", "po-4", None, "o", AT)
    assert counts.plus(nobody, False, False) == Counts(5, 3, 1, AT)


def test_a_problem_keeps_the_latest_few_without_repeats() -> None:
    kept = list(range(problems.KEPT))
    assert problems.latest(kept, 3) == [*(i for i in kept if i != 3), 3]
    assert problems.latest(kept, "new")[-1] == "new"
    assert len(problems.latest(kept, "new")) == problems.KEPT


def test_an_sla_violation_is_read_from_its_tmf_shape() -> None:
    v = problems.from_sla_violation({
        "id": "v-1", "sla": {"id": "s"}, "productId": "po-1", "parameter": "availability",
        "relatedParty": [{"id": "acc-1", "role": "BillingAccount"},
                         {"id": "acme", "role": "Customer"}],
        "date": "2026-11-20T10:00:00+01:00", "actualValue": 0.9,
        "href": "https://qos.example/v-1"})
    assert (v.key, v.purchased_offering_id, v.customer_id, v.product_offering_id) == (
        "SlaViolation:v-1", "po-1", "acme", None)
    assert v.at == AT - timedelta(hours=1)
    assert v.ref()["href"] == "https://qos.example/v-1"
    with pytest.raises(NotAViolation, match="violationDate"):
        problems.from_sla_violation({"id": "v-2", "productId": "po-1"})
    with pytest.raises(NotAViolation, match="not an ISO-8601"):
        problems.from_sla_violation({"id": "v-3", "productId": "po-1", "date": "soon"})


def test_an_analysis_counts_only_when_it_found_a_violation() -> None:
    body = {"id": "an-1", "productId": "po-1", "customerId": "acme", "parameter": "x",
            "compliance": 99.0, "violations": 2, "productOfferingId": "o-1",
            "period": {"startDateTime": "2026-11-01T00:00:00Z",
                       "endDateTime": "2026-11-20T10:00:00Z"}}
    v = problems.from_sla_analysis(body)
    assert v is not None and (v.key, v.at, v.product_offering_id) == (
        "CustomerSlaAnalysis:an-1", AT, "o-1")
    assert problems.from_sla_analysis({**body, "violations": 0}) is None


@pytest.mark.parametrize(("change", "crossing", "counted"), [
    ("raised", {}, True),
    ("escalated", {}, True),
    ("cleared", {}, False),
    ("raised", {"level": "warning"}, False),
    ("raised", {"level": "noData"}, False),
    ("raised", {"planned": True}, False),
    ("raised", {"scope": {"type": "productOffering", "id": "o-1"}}, False),
])
def test_a_crossing_counts_when_a_purchased_offering_breached_unplanned(
        change: str, crossing: dict, counted: bool) -> None:
    body = {"id": "cr-1", "level": "breached", "planned": False, "parameter": "latency",
            "scope": {"type": "purchasedOffering", "id": "po-1"},
            "window": {"startDateTime": "2026-11-20T09:00:00Z",
                       "endDateTime": "2026-11-20T10:00:00Z"}, **crossing}
    found = problems.from_crossing(change, body)
    assert (found is not None) == counted
    if found is not None:
        assert (found.key, found.at, found.purchased_offering_id) == (
            "ThresholdCrossing:cr-1", AT, "po-1")


def test_an_open_problem_is_due_its_quiet_time_after_the_last_violation_arrived() -> None:
    problem = SimpleNamespace(id="p", status=problems.OPEN, last_received_at=AT,
                              rule=Rule(quiet=3600).wire())
    (due,) = problems.problem_due(problem)
    assert (due.at, due.kind) == (AT + timedelta(hours=1), problems.RESOLVE)
    problem.status = problems.RESOLVED
    assert problems.problem_due(problem) == []


def test_the_summary_says_how_far_the_problem_reaches() -> None:
    text = problems.summary("o-1", Counts(7, 3, 2), 6, Rule(), problems.OPENS)
    assert text == ("offering-wide problem opened on offering o-1: 3 of 6 active purchased "
                    "offerings (50 %) of 2 customers violated their SLA (7 violations)")
    assert "resolved after PT6H" in problems.summary("o-1", Counts(7, 3, 2), 0, Rule(),
                                                     problems.RESOLVED)


def test_a_period_or_quiet_time_beyond_the_calendar_reaches_its_edge() -> None:
    endless = Rule.of({"count": 2, "period": "P999999Y", "quietTime": "P999999Y"})
    assert problems.window_start(endless, AT) == problems.EARLIEST
    assert problems.resolution_due(AT, endless.quiet) == problems.LATEST
