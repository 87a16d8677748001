"""The compact budget ledger: bounded state that gives the figures of the one-bucket-a-minute
reference ledger — exactly under the conditions its docstring states, within one start
bucket's share otherwise — and checkpoints compactly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.monitoring.budget_ledger import BudgetLedger, LedgerFormatError, MinuteLedger
from services.monitoring.budgets import projected_exhaustion, remaining_budget
from services.monitoring.burn_rates import burn_alerts, burn_rules

H = 3600.0
DAY = 86400.0
MONTH = 30 * DAY
T0 = datetime(2024, 6, 1, tzinfo=UTC).timestamp()  # day-aligned
# The start granule (seconds) of each sliding window of a 30-day ledger (see BudgetLedger).
GRANULE_30D = {300: 60, 1800: 60, 3600: 300, 7200: 300, 21600: 1800, 86400: 7200,
               259200: 21600}
SLIDING = sorted(GRANULE_30D)


def both(keep: float = MONTH) -> tuple[BudgetLedger, MinuteLedger]:
    return BudgetLedger(60, keep), MinuteLedger(60, keep)


def windows_strategy(max_windows: int = 400):
    """A series of evaluated windows: a length (whole minutes), then per window a skip
    (windows with no verdict), its eligible share and its bad share."""
    return st.tuples(
        st.sampled_from([60, 120, 300, 600, 900, 1800, 3600]),
        st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1), st.floats(0, 1)),
                 min_size=1, max_size=max_windows),
    )


def replay(w: int, spec, ledgers, on_window) -> None:
    t = T0
    for skip, eligible_share, bad_share in spec:
        t += skip * w
        eligible = w * eligible_share
        bad = eligible * bad_share
        for ledger in ledgers:
            ledger.add(t, t + w, eligible, bad)
        t += w
        on_window(t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows_strategy())
def test_sliding_windows_equal_the_minute_ledger_when_their_start_is_on_a_granule(case):
    w, spec = case
    compact, reference = both()

    def check(now: float) -> None:
        for width in SLIDING:
            got, want = compact.totals(now - width, now), reference.totals(now - width, now)
            granule = GRANULE_30D[width]
            if now % granule == 0:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6)
            else:  # at most the start bucket's share is misplaced
                assert abs(got[0] - want[0]) <= granule + 1e-6
                assert abs(got[1] - want[1]) <= granule + 1e-6

    replay(w, spec, (compact, reference), check)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows_strategy(), st.sampled_from([0.999, 0.99, 0.95]))
def test_budget_projection_and_alerts_equal_the_minute_ledger_when_windows_are_aligned(
        case, target):
    """Evaluated as the evaluator does — every window, the period start fixed (a midnight) —
    remaining budget and exhaustion are exact; burn rates and alerts at window ends on
    6-hour boundaries (where every rule window is exact)."""
    w, spec = case
    compact, reference = both()
    start = T0

    def check(now: float) -> None:
        assert remaining_budget(compact, start, now, target, MONTH) == pytest.approx(
            remaining_budget(reference, start, now, target, MONTH), rel=1e-9, abs=1e-9)
        got = projected_exhaustion(compact, start, now, target, MONTH)
        want = projected_exhaustion(reference, start, now, target, MONTH)
        if now % 300 == 0:  # the lookback hour is exact on 5 minutes
            assert (got is None) == (want is None)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-9)
        fired = burn_alerts(compact, now, target, MONTH)
        expected = burn_alerts(reference, now, target, MONTH)
        if now % 21600 == 0:
            assert [(a.severity, a.long_window) for a in fired] == [
                (a.severity, a.long_window) for a in expected]
            for a, b in zip(fired, expected, strict=True):
                assert a.long_burn == pytest.approx(b.long_burn, rel=1e-9)
                assert a.short_burn == pytest.approx(b.short_burn, rel=1e-9)

    replay(w, spec, (compact, reference), check)


def test_a_steady_burn_is_exact_at_any_minute():
    # 2x burn at minute windows for 4 days: every window's start bucket is uniform, so every
    # figure equals the reference even where a window starts inside a coarse bucket.
    compact, reference = both()
    t = T0
    while t < T0 + 4 * DAY:
        for ledger in (compact, reference):
            ledger.add(t, t + 60, 60, 60 * 0.002)
        t += 60
        if (t - T0) % 3700 == 0:  # not on any granule
            for width in SLIDING:
                assert compact.totals(t - width, t) == pytest.approx(
                    reference.totals(t - width, t), rel=1e-9)


def test_thirty_days_of_minutes_fit_in_under_two_kilobytes():
    ledger = BudgetLedger(60, MONTH)
    empty = ledger.nbytes()
    t = T0
    for n in range(30 * 24 * 60):
        ledger.add(t, t + 60, 60, 60.0 if n % 97 == 0 else 0.0)
        t += 60
        if n % 60 == 0:
            remaining_budget(ledger, T0, t, 0.999, MONTH)
    assert empty <= ledger.nbytes() <= empty + 128  # the running sums' list, at most three
    assert ledger.nbytes() < 2048
    # the period's bad time is exact after a month: 446 breaching minutes of 60 s
    _, bad = ledger.totals(T0, t)
    assert bad == 60.0 * len(range(0, 30 * 24 * 60, 97))
    assert len(ledger) < 100


def test_the_period_sum_survives_a_checkpoint_and_stays_exact():
    compact, reference = both()
    t = T0
    for n in range(5 * 24 * 12):  # five days of 5-minute windows, one bad hour on day 1
        bad = 300.0 if 24 * 12 <= n < 24 * 12 + 12 else 0.0
        for ledger in (compact, reference):
            ledger.add(t, t + 300, 300, bad)
        t += 300
        remaining_budget(compact, T0, t, 0.999, MONTH)
    again = BudgetLedger.from_dict(json.loads(json.dumps(compact.to_dict())))
    assert again.to_dict() == compact.to_dict()
    assert again.totals(T0, t) == reference.totals(T0, t) == (5 * DAY, 3600.0)
    for width in SLIDING:
        assert again.totals(t - width, t) == pytest.approx(reference.totals(t - width, t))
    # the ledger goes on from the checkpoint as it would have
    for ledger in (again, reference):
        ledger.add(t, t + 300, 300, 300)
    assert again.totals(T0, t + 300) == reference.totals(T0, t + 300)


def test_a_checkpointed_ledger_is_small_and_versioned():
    ledger = BudgetLedger(60, MONTH)
    t = T0
    for _ in range(10 * 24 * 60):
        ledger.add(t, t + 60, 60, 0.0)
        t += 60
    encoded = json.dumps(ledger.to_dict())
    assert json.loads(encoded)["format"] == 2
    assert len(encoded) < 1024
    old = MinuteLedger(60, MONTH)
    old.add(T0, T0 + 60, 60, 6)
    with pytest.raises(LedgerFormatError):
        BudgetLedger.from_dict(old.to_dict())


def test_late_data_older_than_the_tiers_counts_in_the_period_only():
    compact, reference = both()
    t = T0
    for _ in range(4 * 24):  # four days of hourly windows
        for ledger in (compact, reference):
            ledger.add(t, t + H, H, 0.0)
        t += H
        remaining_budget(compact, T0, t, 0.999, MONTH)
    for ledger in (compact, reference):
        ledger.add(T0 + H, T0 + 2 * H, 0.0, 60.0)  # a correction for the second hour
    assert compact.totals(T0, t) == reference.totals(T0, t)
    assert compact.totals(t - 3 * DAY, t) == reference.totals(t - 3 * DAY, t)


@pytest.mark.parametrize("period", [DAY, 7 * DAY, 92 * DAY])
def test_other_periods_scale_the_tiers_and_stay_bounded(period):
    compact, reference = both(period)
    rules = burn_rules(period)
    longest = max(r[1] for r in rules)
    w = 60 if period <= 7 * DAY else 3600
    t = T0
    for n in range(int(min(2 * longest, 20 * DAY) // w)):
        for ledger in (compact, reference):
            ledger.add(t, t + w, w, w if n % 13 == 0 else 0.0)
        t += w
    assert len(compact) < 200
    for _, long_w, short_w, _ in rules:
        for width in (long_w, short_w):
            got, want = compact.totals(t - width, t), reference.totals(t - width, t)
            assert abs(got[1] - want[1]) <= max(60.0, math.ceil(width / 12)) + w


def test_a_calendar_month_keeps_its_31_days_with_the_tiers_of_its_nominal_period():
    keep = 31 * DAY + H  # the longest month, a daylight-saving hour more
    compact, reference = BudgetLedger(60, keep, MONTH), MinuteLedger(60, keep)
    assert len(compact) == len(BudgetLedger(60, MONTH))
    t = T0
    for n in range(31 * 24 * 4):  # a 31-day month of 15-minute windows
        bad = 900.0 if n % 50 == 0 else 0.0
        for ledger in (compact, reference):
            ledger.add(t, t + 900, 900, bad)
        t += 900
        # Compared each of the first hours' windows, then every six hours and at the end
        # (every window, against a minute-by-minute reference, is minutes of CPU).
        if n < 8 or n % 24 == 23:
            assert remaining_budget(compact, T0, t, 0.999, 31 * DAY) == pytest.approx(
                remaining_budget(reference, T0, t, 0.999, 31 * DAY), abs=1e-12)
    again = BudgetLedger.from_dict(json.loads(json.dumps(compact.to_dict())))
    assert again.totals(T0, t) == reference.totals(T0, t)
    assert [a.severity for a in burn_alerts(again, t, 0.999, MONTH)] == [
        a.severity for a in burn_alerts(reference, t, 0.999, MONTH)]
