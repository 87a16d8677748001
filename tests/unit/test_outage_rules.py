"""Known answers for the rules a planned outage's windows must pass (``rules.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.outage_negotiation import rules
from services.outage_negotiation.domain import OutageRuleBroken
from services.outage_negotiation.settings import OutageSettings, caps
from shared.config import ConfigError
from shared.errors import InvalidValue

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def w(start_h: float, end_h: float) -> dict[str, datetime]:
    return {"start": NOW + timedelta(hours=start_h), "end": NOW + timedelta(hours=end_h)}


def test_a_window_across_a_month_end_counts_its_minutes_in_each_month() -> None:
    window = {"start": datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
              "end": datetime(2026, 12, 1, 0, 30, tzinfo=UTC)}
    assert rules.month_minutes(window) == {"2026-11": 60.0, "2026-12": 30.0}


def test_windows_in_the_past_or_backwards_name_their_fields() -> None:
    with pytest.raises(InvalidValue) as refused:
        rules.check_windows([w(1, 2), w(-1, 1), w(5, 4)], NOW)
    assert set(refused.value.errors) == {"windows.1.startDateTime", "windows.2.endDateTime"}


def test_the_longest_notice_sets_the_earliest_start() -> None:
    resolution = [{"customerId": "a", "minimumNoticeDays": 3},
                  {"customerId": "b", "minimumNoticeDays": 10}]
    assert rules.earliest_start(resolution, NOW) == (NOW + timedelta(days=10), 10)
    rules.check_notice([w(240, 241)], resolution, NOW)
    with pytest.raises(OutageRuleBroken) as refused:
        rules.check_notice([w(240, 241), w(239, 241)], resolution, NOW)
    assert refused.value.rule == "MINIMUM_NOTICE"
    assert list(refused.value.details) == ["windows.1.startDateTime", "earliestStart",
                                           "customers"]
    assert refused.value.details["customers"] == ["b"]


def test_a_blackout_touching_a_window_refuses_it_and_one_beside_it_does_not() -> None:
    periods = {"c1": [{**w(10, 20), "reason": "trading"}]}
    rules.check_blackouts([w(20, 21), w(5, 10)], periods)  # touching ends do not overlap
    with pytest.raises(OutageRuleBroken) as refused:
        rules.check_blackouts([w(19, 21)], periods)
    assert refused.value.rule == "BLACKOUT" and "trading" in str(refused.value)


def test_overlaps_share_purchased_offerings_at_an_overlapping_time() -> None:
    others = [rules.Other("o1", "agreed", (w(0, 4),), frozenset({"p1", "p2"})),
              rules.Other("o2", "proposed", (w(10, 12),), frozenset({"p1"})),
              rules.Other("o3", "agreed", (w(2, 3),), frozenset({"p9"}))]
    found = rules.overlaps([w(3, 5)], {"p1", "p3"}, others)
    assert found == [{"plannedOutageId": "o1", "status": "agreed", "sharedCount": 1,
                      "purchasedOfferingIds": ["p1"]}]
    rules.check_overlaps(found, "flag")
    with pytest.raises(OutageRuleBroken):
        rules.check_overlaps(found, "refuse")


def test_the_cap_counts_the_month_of_each_purchased_offering() -> None:
    agreed = [rules.Other("o1", "agreed", (w(0, 4),), frozenset({"p1"}))]
    sla_of = {"p1": "gold", "p2": "gold", "p3": None}
    rules.check_cap(w(10, 16), sla_of, {"gold": 600}, agreed)  # 240 + 360 = 600: fits
    with pytest.raises(OutageRuleBroken) as refused:
        rules.check_cap(w(10, 16.5), sla_of, {"gold": 600}, agreed)
    assert refused.value.details["purchasedOfferingId"] == ["p1"]
    assert refused.value.details["minutesLeft"] == ["360"]
    rules.check_cap(w(10, 100), sla_of, {"gold": None}, agreed)  # no cap


def test_caps_are_read_by_sla_type_name_or_id_with_a_default() -> None:
    settings = OutageSettings(cap_minutes=caps("gold=240, *=720"))
    assert settings.cap_for("gold", "id-1") == 240
    assert settings.cap_for("silver", "id-2") == 720
    assert OutageSettings().cap_for("gold") is None
    with pytest.raises(ConfigError):
        caps("gold=lots")
    with pytest.raises(ConfigError):
        OutageSettings.from_env({"SLA_OUTAGE_OVERLAPS": "sometimes"})


RESOLVED = [{"customerId": "a", "purchasedOfferingIds": ["p1", "p2", "p3"]},
            {"customerId": "b", "purchasedOfferingIds": ["p4"]}]


def test_all_needs_every_customer_on_one_window() -> None:
    split = {"a": {"answer": "accept", "windowIndex": 0},
             "b": {"answer": "accept", "windowIndex": 1}}
    assert rules.decide("all", None, RESOLVED, split, 2)[0] is None
    same = {**split, "b": {"answer": "accept", "windowIndex": 0}}
    assert rules.decide("all", None, RESOLVED, same, 2)[0] == 0


def test_quorums_count_customers_or_their_purchased_offerings() -> None:
    only_a = {"a": {"answer": "accept", "windowIndex": 1}, "b": {"answer": "reject"}}
    assert rules.decide("quorumCustomers", 0.5, RESOLVED, only_a, 2)[0] == 1
    assert rules.decide("quorumCustomers", 0.6, RESOLVED, only_a, 2)[0] is None
    assert rules.decide("quorumPurchasedOfferings", 0.75, RESOLVED, only_a, 2)[0] == 1
    only_b = {"b": {"answer": "accept", "windowIndex": 0}}
    assert rules.decide("quorumPurchasedOfferings", 0.5, RESOLVED, only_b, 2)[0] is None


def test_silence_is_consent_only_at_the_deadline_and_never_over_a_rejection() -> None:
    answered = {"a": {"answer": "accept", "windowIndex": 1}}
    assert rules.decide("silenceIsConsent", None, RESOLVED, answered, 2)[0] is None
    index, summary = rules.decide("silenceIsConsent", None, RESOLVED, answered, 2,
                                  at_deadline=True)
    assert index == 1 and summary["consentedBySilence"] == 1
    rejected = {**answered, "b": {"answer": "reject"}}
    index, summary = rules.decide("silenceIsConsent", None, RESOLVED, rejected, 2,
                                  at_deadline=True)
    assert index is None and summary["rejected"] == ["b"] and summary["silent"] == 0


def test_a_response_link_is_refused_when_changed_expired_or_signed_elsewhere() -> None:
    from shared import outage_links as links

    link = links.Link("o-1", "acme", 2, NOW + timedelta(days=1))
    token = links.issue("k" * 48, link)
    assert links.check("k" * 48, token, NOW) == link
    body, _, signature = token.partition(".")
    forged = links.issue("k" * 48, links.Link("o-1", "globex", 2, link.expires_at))
    for bad in (forged.partition(".")[0] + "." + signature, token + "x", "nonsense", ""):
        with pytest.raises(links.InvalidLink):
            links.check("k" * 48, bad, NOW)
    with pytest.raises(links.InvalidLink):
        links.check("other" * 10, token, NOW)
    with pytest.raises(links.ExpiredLink):
        links.check("k" * 48, token, NOW + timedelta(days=2))
