"""Known answers for the planner's ranking of candidate windows (``ranking.py``): which
windows are candidates, who finds each acceptable, the blackouts it falls in, its SLA
exposure under each maintenance accounting, the rules it breaks, and the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.outage_negotiation import ranking, rules

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def w(start_h: float, end_h: float) -> dict[str, datetime]:
    return {"start": NOW + timedelta(days=20, hours=start_h),
            "end": NOW + timedelta(days=20, hours=end_h)}


def accept(index: int) -> dict[str, Any]:
    return {"answer": "accept", "windowIndex": index}


def counter(*windows: dict[str, datetime]) -> dict[str, Any]:
    return {"answer": "counterPropose", "windows": list(windows), "reason": "not then"}


REJECT = {"answer": "reject", "reason": "no"}
GOLD = {"name": "gold", "maintenanceAccounting": "counted-as-down",
        "creditPercentPerBreachedPeriod": 5, "creditCapPercent": 8, "timeZone": "UTC"}
SILVER = {"name": "silver", "maintenanceAccounting": "excluded",
          "creditPercentPerBreachedPeriod": 10, "creditCapPercent": 30}
RESOLUTION = [{"customerId": c, "purchasedOfferingIds": pos, "minimumNoticeDays": 10}
              for c, pos in (("a", ["a1", "a2"]), ("b", ["b1"]), ("c", ["c1"]))]


def facts(**changes: Any) -> ranking.Facts:
    base: dict[str, Any] = {
        "now": NOW, "resolution": RESOLUTION,
        "sla_of": {"a1": "gold", "a2": "gold", "b1": "silver", "c1": "gold"},
        "terms": {"gold": GOLD, "silver": SILVER}}
    return ranking.Facts(**{**base, **changes})


def test_candidates_are_the_proposed_windows_and_each_counter_proposal_once() -> None:
    proposed = [w(1, 3), w(5, 7)]
    found = ranking.candidates(proposed, {"a": counter(w(5, 7), w(9, 10)),
                                          "b": counter(w(9, 10)), "c": accept(0)})
    assert [(c.window, c.proposed_index, c.counter_proposed_by) for c in found] == [
        (w(1, 3), 0, ()), (w(5, 7), 1, ("a",)), (w(9, 10), None, ("a", "b"))]


def test_a_window_is_acceptable_inside_a_window_accepted_or_counter_proposed() -> None:
    proposed = [w(0, 6), w(8, 9)]
    assert ranking.acceptable(w(1, 3), accept(0), proposed)  # inside the one accepted
    assert ranking.acceptable(w(0, 6), accept(0), proposed)  # the one itself
    assert not ranking.acceptable(w(5, 7), accept(0), proposed)  # runs past its end
    assert not ranking.acceptable(w(8, 9), accept(0), proposed)  # another one
    assert ranking.acceptable(w(10, 11), counter(w(9, 12)), proposed)
    assert not ranking.acceptable(w(10, 13), counter(w(9, 12)), proposed)
    assert not ranking.acceptable(w(1, 3), REJECT, proposed)


def test_only_planned_time_counted_as_down_exposes_credit_up_to_the_cap() -> None:
    one_month = w(1, 3)
    total, parts = ranking.exposure(one_month, facts().sla_of, facts().terms)
    by_name = {p["name"]: p for p in parts}
    assert by_name["gold"]["weight"] == 5 and by_name["gold"]["purchased_offerings"] == 3
    assert by_name["silver"]["weight"] == 0  # excluded: the outage cannot breach it
    assert total == 15
    # Across a month end the window may breach two periods: 10 %, capped at 8 %.
    across = {"start": datetime(2026, 11, 30, 23, tzinfo=UTC),
              "end": datetime(2026, 12, 1, 1, tzinfo=UTC)}
    total, parts = ranking.exposure(across, facts().sla_of, facts().terms)
    assert {p["name"]: (p["months"], p["weight"]) for p in parts}["gold"] == (2, 8)
    assert total == 24
    # Ending exactly at a month's start touches one month only.
    upto = {"start": datetime(2026, 11, 30, 23, tzinfo=UTC),
            "end": datetime(2026, 12, 1, tzinfo=UTC)}
    assert ranking.months_touched(upto, "UTC") == 1
    # In its own time zone: 23:30 UTC on 30 November is already December in Paris.
    paris = {"start": datetime(2026, 11, 30, 22, 30, tzinfo=UTC),
             "end": datetime(2026, 11, 30, 23, 30, tzinfo=UTC)}
    assert ranking.months_touched(paris, "UTC") == 1
    assert ranking.months_touched(paris, "Europe/Paris") == 2
    # Unknown terms, counted as up: nothing this service could weigh.
    total, parts = ranking.exposure(one_month, {"x1": None, "y1": "up"},
                                    {"up": {**GOLD, "maintenanceAccounting": "counted-as-up"}})
    assert total == 0 and sorted(p["purchased_offerings"] for p in parts) == [1, 1]


def test_the_order_is_acceptance_then_blackouts_then_exposure_then_start() -> None:
    proposed = [w(1, 2), w(3, 4), w(5, 6), w(7, 8)]
    responses = {"a": accept(3), "b": counter(w(2.5, 6.5)), "c": counter(w(7, 8))}
    # w(3,4) and w(5,6) are acceptable to b; w(7,8) to a and c; w(1,2) to none.
    blackouts = {"b": [{"start": w(3, 4)["start"], "end": w(3, 4)["end"],
                        "reason": "trading"}]}
    ranked = ranking.rank(proposed, responses, facts(blackouts=blackouts))
    # b's own window and w(3, 4) are both in b's blackout: the earlier start first.
    assert [r["window"] for r in ranked] == [w(7, 8), w(5, 6), w(2.5, 6.5), w(3, 4),
                                             w(1, 2)]
    best = ranked[0]
    assert best["rank"] == 0 and best["accepted_by"] == ["a", "c"]
    assert best["accepting_customers"] == 2 and best["accepting_purchased_offerings"] == 3
    assert best["proposed_window_index"] == 3 and best["counter_proposed_by"] == ["c"]
    assert best["passes"] and best["rule_breaks"] == []
    blacked = ranked[3]
    assert blacked["blackout_count"] == 1 and blacked["blackouts"][0]["customer_id"] == "b"
    assert [b["rule"] for b in blacked["rule_breaks"]] == ["BLACKOUT"]
    assert "in 1 blackout period(s): b" in " ".join(blacked["why"])
    # b's counter-proposal itself: acceptable to b alone (a's window is elsewhere).
    own = ranked[2]
    assert own["accepted_by"] == ["b"] and own["proposed_window_index"] is None
    assert own["exposure"] == 15 and own["blackout_count"] == 1
    assert "acceptable to 2 of 3 customer(s): a, c" in best["why"]


def test_a_less_exposed_window_wins_a_tie_and_an_earlier_one_the_last_tie() -> None:
    proposed = [w(1, 2), w(3, 4)]
    across = {"start": datetime(2026, 11, 30, 23, tzinfo=UTC),
              "end": datetime(2026, 12, 1, 1, tzinfo=UTC)}
    ranked = ranking.rank([across, *proposed], {}, facts())
    assert [r["window"] for r in ranked] == [w(1, 2), w(3, 4), across]
    assert [r["exposure"] for r in ranked] == [15, 15, 24]


def test_a_candidate_shows_the_rules_it_breaks_without_leaving_the_ranking() -> None:
    proposed = [w(1, 2)]
    soon = {"start": NOW + timedelta(days=2), "end": NOW + timedelta(days=2, hours=1)}
    past = {"start": NOW - timedelta(hours=2), "end": NOW - timedelta(hours=1)}
    other = rules.Other("o-1", "agreed", (w(0, 10),), frozenset({"a1"}))
    ranked = ranking.rank(proposed, {"b": counter(soon, past)}, facts(
        open_others=[other], counted=[other], caps={"gold": 600}, overlap_policy="refuse"))
    by_window = {(r["window"]["start"], r["window"]["end"]): r for r in ranked}
    mine = by_window[(w(1, 2)["start"], w(1, 2)["end"])]
    assert [b["rule"] for b in mine["rule_breaks"]] == ["OVERLAP", "CAP"]
    assert mine["overlaps"][0]["plannedOutageId"] == "o-1"
    early = by_window[(soon["start"], soon["end"])]
    # Counter-proposed by b: the others (a, c) would hear of it now, ten days too late.
    assert "MINIMUM_NOTICE" in [b["rule"] for b in early["rule_breaks"]]
    gone = by_window[(past["start"], past["end"])]
    assert gone["rule_breaks"][0]["rule"] == "WINDOWS" and not gone["passes"]
    # Flagged, not refused, under the flag policy.
    flagged = ranking.rank(proposed, {}, facts(open_others=[other]))[0]
    assert flagged["passes"] and flagged["overlaps"]
