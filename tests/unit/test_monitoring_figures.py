"""Known answers for the figures of issue 7: calendar conformance periods in the SLA type's
time zone, the period a boundary window belongs to, the budget's eligible-time denominator,
planned crossings, grace without a warning level, units.

Every expected value is worked out by hand in a comment next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.monitoring.budget_ledger import BudgetLedger
from services.monitoring.budgets import budget_denominator, projected_exhaustion, remaining_budget
from services.monitoring.crossing_state import CrossingState, is_planned, step
from services.monitoring.measurement import Outage, Sample, measure, value_in_unit
from services.monitoring.periods import (
    Period,
    conformance_period,
    longest_period_seconds,
    time_zone,
)
from shared.durations import duration_parts

H = 3600.0
DAY = 86400.0


def t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def span(moment: str, period: str, zone: str = "UTC") -> tuple[str, str]:
    found = conformance_period(t(moment), period, zone)
    return (datetime.fromtimestamp(found.start, UTC).isoformat(),
            datetime.fromtimestamp(found.end, UTC).isoformat())


# --- periods ---------------------------------------------------------------------------------
def test_a_monthly_period_is_the_calendar_month_not_thirty_epoch_days():
    # Before: P30D and P1M were 2_592_000-s blocks from the epoch (4 Sep -> 4 Oct 2026).
    assert span("2026-09-20T12:00:00+00:00", "P1M") == (
        "2026-09-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00")
    assert span("2026-02-10T00:00:00+00:00", "P1M") == (  # 28 days
        "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00")
    # P3M: the quarter; P6M the half; P1Y the year; P2M pairs of months from January 1970
    assert span("2026-11-20T00:00:00+00:00", "P3M") == (
        "2026-10-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert span("2026-05-20T00:00:00+00:00", "P6M") == (
        "2026-01-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00")
    assert span("2026-05-20T00:00:00+00:00", "P1Y") == (
        "2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert span("2026-04-20T00:00:00+00:00", "P2M") == (
        "2026-03-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00")


def test_days_and_weeks_are_calendar_days_and_iso_weeks():
    assert span("2026-11-25T10:00:00+00:00", "P1D") == (
        "2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00")
    # 2026-11-25 is a Wednesday: its ISO week runs Monday 23 to Monday 30 November
    assert span("2026-11-25T10:00:00+00:00", "P1W") == (
        "2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00")
    # P30D stays thirty-day blocks (from 1 January 1970, day 20_700 = 2026-09-04 is one
    # boundary: 20_700 = 690 x 30); use P1M for the month
    assert span("2026-09-20T00:00:00+00:00", "P30D") == (
        "2026-09-04T00:00:00+00:00", "2026-10-04T00:00:00+00:00")
    # a time part: fixed length from the epoch
    assert span("2026-11-25T13:00:00+00:00", "PT12H") == (
        "2026-11-25T12:00:00+00:00", "2026-11-26T00:00:00+00:00")


def test_a_window_ending_exactly_on_a_boundary_belongs_to_the_period_it_ends():
    # the window [23:00, 24:00) of 30 September ends at 1 October 00:00: September's
    assert span("2026-10-01T00:00:00+00:00", "P1M") == (
        "2026-09-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00")
    assert span("2026-10-01T00:00:01+00:00", "P1M") == (
        "2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    assert span("2026-11-26T00:00:00+00:00", "P1D") == (
        "2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00")
    assert span("2026-11-26T00:00:00+00:00", "PT12H") == (
        "2026-11-25T12:00:00+00:00", "2026-11-26T00:00:00+00:00")


def test_periods_follow_the_sla_types_time_zone_and_its_daylight_saving_rules():
    # Paris is UTC+2 until 25 October 2026 03:00 local, then UTC+1. October in Paris runs
    # 30 Sep 22:00Z -> 31 Oct 23:00Z: 31 days and one hour (2_682_000 s).
    october = conformance_period(t("2026-10-15T00:00:00+00:00"), "P1M", "Europe/Paris")
    assert october == Period(t("2026-09-30T22:00:00+00:00"), t("2026-10-31T23:00:00+00:00"))
    assert october.seconds == 31 * DAY + H
    # The day of the change lasts 25 hours; a window ending at local midnight is the day's.
    day = conformance_period(t("2026-10-25T23:00:00+00:00"), "P1D", "Europe/Paris")
    assert day == Period(t("2026-10-24T22:00:00+00:00"), t("2026-10-25T23:00:00+00:00"))
    assert day.seconds == 25 * H
    # March: the spring day lasts 23 hours
    spring = conformance_period(t("2026-03-29T12:00:00+00:00"), "P1D", "Europe/Paris")
    assert spring.seconds == 23 * H
    # New York's 1 November 2026 (the fall-back day) starts at 04:00Z
    assert span("2026-11-01T12:00:00+00:00", "P1D", "America/New_York") == (
        "2026-11-01T04:00:00+00:00", "2026-11-02T05:00:00+00:00")
    # a quarter east of UTC starts on the local 1 October
    assert span("2026-11-20T00:00:00+00:00", "P3M", "Asia/Kolkata") == (
        "2026-09-30T18:30:00+00:00", "2026-12-31T18:30:00+00:00")


def test_period_lengths_kept_and_time_zone_names():
    assert longest_period_seconds("P1M") == 31 * DAY + H  # at least every month's length
    assert longest_period_seconds("P3M") == 93 * DAY + H
    assert longest_period_seconds("P1D") == DAY + H
    assert longest_period_seconds("PT12H") == 12 * H
    assert duration_parts("P1Y6M") == {"years": 1, "months": 6}
    assert time_zone(None).key == "UTC" and time_zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("Mars/Olympus", "../etc/passwd"):
        with pytest.raises(ValueError):
            time_zone(bad)


# --- the budget's denominator ----------------------------------------------------------------
def feed(ledger, start, end, bad_per_window, window=H, eligible=None):
    moment = start
    while moment < end:
        ledger.add(moment, moment + window, window if eligible is None else eligible,
                   bad_per_window)
        moment += window


def test_the_last_window_of_a_period_is_counted_in_that_period():
    # P1D at 99 %: B = 0.01, allowed 864 s. 300 s down in the last hour (23:00-24:00).
    # Before: the window ending at midnight opened the next period, budget 1.0.
    # After: 1 - 300 / 864 = 0.652_777...
    day = t("2026-11-25T00:00:00+00:00")
    ledger = BudgetLedger(60, DAY + H)
    feed(ledger, day, day + 23 * H, 0.0)
    ledger.add(day + 23 * H, day + DAY, H, 300.0)
    period = conformance_period(day + DAY, "P1D")
    assert period == Period(day, day + DAY)
    assert remaining_budget(ledger, period.start, day + DAY, 0.99,
                            budget_denominator(period)) == pytest.approx(1 - 300 / 864)


def test_a_window_that_is_the_whole_period_shows_its_breach():
    # one P1D window over a P1D period, 1728 s down at 99 %: 1 - 1728 / 864 = -1.0
    day = t("2026-11-25T00:00:00+00:00")
    ledger = BudgetLedger(60, DAY + H)
    ledger.add(day, day + DAY, DAY, 1728.0)
    period = conformance_period(day + DAY, "P1D")
    assert remaining_budget(ledger, period.start, day + DAY, 0.99,
                            budget_denominator(period)) == pytest.approx(-1.0)


def test_with_excluded_maintenance_the_budget_is_a_share_of_the_eligible_time():
    # P1D at 99 %, 12 h of agreed outage excluded so far: E = 86_400 - 43_200 = 43_200 s,
    # budget B x E = 432 s; 300 s down -> 1 - 300/432 = 0.305_555... (before: 1 - 300/864)
    day = t("2026-11-25T00:00:00+00:00")
    period = Period(day, day + DAY)
    assert budget_denominator(period, 43_200.0) == 43_200.0
    ledger = BudgetLedger(60, DAY + H)
    feed(ledger, day + 12 * H, day + 14 * H, 150.0)
    eligible = budget_denominator(period, 43_200.0)
    assert remaining_budget(ledger, day, day + 14 * H, 0.99, eligible) == pytest.approx(
        1 - 300 / 432)
    # projected exhaustion: 150 bad s per hour -> 132 s left at 1/24 s/s -> 3168 s later;
    # still before the period's end (given explicitly: E is not the period's length)
    assert projected_exhaustion(ledger, day, day + 14 * H, 0.99, eligible,
                                period_end=period.end) == pytest.approx(day + 14 * H + 3168)
    # a group of 3 offerings pools offering-seconds: E = 3 x 86_400 - 43_200 = 216_000
    assert budget_denominator(period, 43_200.0, members=3) == 216_000.0
    assert budget_denominator(period, 2 * DAY) == 0.0  # never negative


# --- planned ---------------------------------------------------------------------------------
def test_a_crossing_is_planned_only_when_the_outage_made_the_window_bad():
    assert is_planned("breached", "ok") and is_planned("breached", "warning")
    assert is_planned("warning", "ok")
    assert not is_planned("breached", "breached")  # bad on its own: unplanned
    assert not is_planned("ok", "ok") and not is_planned("warning", "warning")


def test_unplanned_downtime_next_to_an_outage_is_measured_without_the_outage_as_bad():
    # Window [0, 3600): outage [0, 1800) agreed; the offering is down [1800, 3600) too.
    # counted-as-down: down 3600 of 3600 -> 0 %; without the outage: 1800 of 1800 -> 0 %.
    samples = [Sample("po", "av", 1800, 0.0, 1800.0), Sample("po", "av", 3600, 0.0, 1800.0)]
    outages = {"po": [Outage(0, 1800)]}
    m = measure("availability", samples, 0, 3600, outages, "counted-as-down")
    assert m.value == 0.0 and m.outage_overlap and m.value_without_outages == 0.0
    # down only inside the outage: 50 % counted as down, 100 % without it -> planned
    samples = [Sample("po", "av", 1800, 0.0, 1800.0), Sample("po", "av", 3600, 1.0, 1800.0)]
    m = measure("availability", samples, 0, 3600, outages, "counted-as-down")
    assert m.value == 50.0 and m.value_without_outages == 100.0
    # excluded: the outage's time is out already; the two values agree
    m = measure("availability", samples, 0, 3600, outages, "excluded")
    assert m.value == 100.0 and m.value_without_outages == 100.0 and m.excluded_seconds == 1800
    # values: latency samples inside the outage are left out of the value without it
    lat = [Sample("po", "lat", 600, 900.0), Sample("po", "lat", 2400, 20.0)]
    m = measure("max", lat, 0, 3600, outages, "excluded")
    assert m.value == 900.0 and m.value_without_outages == 20.0 and m.outage_overlap
    m = measure("max", lat, 0, 3600, {}, "excluded")
    assert not m.outage_overlap and m.value_without_outages == 900.0


# --- grace -----------------------------------------------------------------------------------
def run(seq, grace, has_warning):
    state = CrossingState()
    out = []
    for i, c in enumerate(seq):
        change = step(state, c, i * 300.0, grace, 1, has_warning)
        out.append(None if change is None else (change.change, change.from_level,
                                                change.to_level))
    return state, out


def test_without_a_warning_level_nothing_is_raised_until_the_grace_is_used_up():
    # graceTimes 2, no thresholdTarget: windows 1 and 2 raise nothing, the 3rd breaches.
    # Before: window 1 raised a warning crossing.
    state, out = run(["breached"] * 4, 2, has_warning=False)
    assert out == [None, None, ("raised", "ok", "breached"), None]
    assert state.since == 600.0
    # a good window within grace resets the streak, and nothing was ever raised
    _, out = run(["breached", "ok", "breached", "breached", "breached"], 2, has_warning=False)
    assert out == [None, None, None, None, ("raised", "ok", "breached")]
    # with a warning level a breaching window is beyond it too: a warning, then the breach
    _, out = run(["breached"] * 3, 2, has_warning=True)
    assert out == [("raised", "ok", "warning"), None, ("escalated", "warning", "breached")]


# --- units -----------------------------------------------------------------------------------
def test_a_ratio_is_expressed_in_the_unit_its_standard_states():
    # ratio samples are fractions: the mean 0.995 is 99.5 in a "%" standard
    assert value_in_unit("ratio", [0.99, 1.0], "%") == pytest.approx(99.5)
    assert value_in_unit("ratio", [0.99, 1.0], "ratio") == pytest.approx(0.995)
    assert value_in_unit("mean", [10.0, 20.0], "ms") == 15.0  # in the samples' unit
    assert value_in_unit("ratio", [], "%") is None
