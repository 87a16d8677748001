"""Known answers for the monitoring semantics (docs/sla-figures.md).

Every expected value is worked out by hand in a comment next to it.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from datetime import UTC, datetime

import pytest

from services.monitoring.availability import Availability, availability, pooled_availability
from services.monitoring.budget_ledger import BudgetLedger
from services.monitoring.budgets import error_budget, projected_exhaustion, remaining_budget
from services.monitoring.burn_rates import burn_alerts, burn_rate, burn_rules
from services.monitoring.crossing_state import CrossingState, step
from services.monitoring.levels import classify
from services.monitoring.measurement import Outage, Sample, measure, nearest_rank, to_unit
from services.monitoring.periods import window_bounds
from shared.times import iso, parse, to_epoch

H = 3600.0
DAY = 86400.0
MONTH = 30 * DAY  # 2_592_000 s
T0 = datetime(2024, 6, 1, tzinfo=UTC).timestamp()  # 1_717_200_000, day-aligned


def hourly(values_by_hour: dict[int, float], hours: int = 720, offering: str = "po-1"):
    """Hourly up-fraction samples over [T0, T0 + hours h); hours not listed are fully up."""
    return [
        Sample(offering, "availability", T0 + (h + 1) * H, values_by_hour.get(h, 1.0), H)
        for h in range(hours)
    ]


# --- time ------------------------------------------------------------------------------------
def test_window_bounds_are_epoch_aligned():
    # floor(1_717_200_123 / 300) * 300 = 1_717_200_000
    assert window_bounds(T0 + 123, 300) == (T0, T0 + 300)
    assert window_bounds(T0 + 300, 300) == (T0 + 300, T0 + 600)  # end is exclusive
    with pytest.raises(ValueError):
        window_bounds(T0, 0)


def test_epoch_conversion_requires_aware_datetimes():
    assert to_epoch(datetime(2024, 6, 1, tzinfo=UTC)) == T0
    assert parse(iso(T0)) == datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        to_epoch(datetime(2024, 6, 1))


# --- availability ----------------------------------------------------------------------------
def test_month_of_hourly_samples_with_43_minutes_down():
    # hour 100 is up 17 of 60 minutes: down = 43 min = 2580 s.
    # ratio = (2_592_000 - 2580) / 2_592_000 = 2_589_420 / 2_592_000 = 0.99900463 -> 99.9005 %
    samples = hourly({100: 17 / 60})
    a = availability(samples, T0, T0 + MONTH, [], "excluded")
    assert a.eligible == pytest.approx(MONTH)
    assert a.down == pytest.approx(2580)
    assert a.excluded == 0 and a.planned_down == 0
    m = measure("availability", samples, T0, T0 + MONTH, {}, "excluded")
    assert round(m.value, 4) == 99.9005
    assert m.value == pytest.approx(2_589_420 / 2_592_000 * 100)
    assert m.count == 720 and m.bad_seconds == pytest.approx(2580) and m.planned is False


@pytest.fixture
def split_downtime():
    # 43 min down split: hour 200 is half down (30 min), hour 300 is 13 min down.
    # An agreed 2-hour outage covers hours 200 and 201: it contains 30 of the 43 minutes.
    samples = hourly({200: 0.5, 300: 47 / 60})
    outage = Outage(T0 + 200 * H, T0 + 202 * H)
    return samples, [outage]


def test_planned_outage_excluded(split_downtime):
    samples, outages = split_downtime
    a = availability(samples, T0, T0 + MONTH, outages, "excluded")
    # eligible = 2_592_000 - 7200 = 2_584_800; down = 13 min = 780 s; up = 2_584_020
    assert a.excluded == pytest.approx(7200)
    assert a.eligible == pytest.approx(2_584_800)
    assert a.down == pytest.approx(780)
    assert a.planned_down == pytest.approx(1800)  # the 30 min measured inside the outage
    assert a.ratio == pytest.approx(2_584_020 / 2_584_800)  # 0.99969824 -> 99.9698 %
    m = measure("availability", samples, T0, T0 + MONTH, {"po-1": outages}, "excluded")
    assert round(m.value, 4) == 99.9698
    assert m.planned is True and m.eligible_seconds == pytest.approx(2_584_800)


def test_planned_outage_counted_as_up(split_downtime):
    samples, outages = split_downtime
    a = availability(samples, T0, T0 + MONTH, outages, "counted-as-up")
    # the 2 h count as up: eligible 2_592_000, down 780 -> 2_591_220 / 2_592_000 = 99.9699 %
    assert a.excluded == 0 and a.eligible == pytest.approx(MONTH)
    assert a.down == pytest.approx(780) and a.planned_down == pytest.approx(1800)
    assert a.ratio == pytest.approx(2_591_220 / 2_592_000)


def test_planned_outage_counted_as_down(split_downtime):
    samples, outages = split_downtime
    a = availability(samples, T0, T0 + MONTH, outages, "counted-as-down")
    # the whole 2 h count as down: down = 780 + 7200 = 7980 -> 2_584_020 / 2_592_000 = 99.6921 %
    assert a.down == pytest.approx(7980) and a.eligible == pytest.approx(MONTH)
    assert a.planned_down == pytest.approx(1800)
    assert a.ratio == pytest.approx(2_584_020 / 2_592_000)


def test_outage_overlapping_part_of_an_interval_sample():
    # one hourly sample, up fraction 0.5; outage covers its last 30 min (and runs past the window)
    # outside: 1800 s -> up 900, down 900; inside: 1800 s, of which 900 measured down
    s = [Sample("po", "av", T0 + H, 0.5, H)]
    a = availability(s, T0, T0 + H, [Outage(T0 + 1800, T0 + 2 * H)], "excluded")
    assert (a.up, a.down, a.excluded, a.planned_down) == (900, 900, 1800, 900)
    # overlapping outages are merged: [0,1200) + [600,1800) = [0,1800) -> same answer mirrored
    a = availability(s, T0, T0 + H, [Outage(T0, T0 + 1200), Outage(T0 + 600, T0 + 1800)],
                     "excluded")
    assert (a.up, a.down, a.excluded) == (900, 900, 1800)


def test_interval_samples_clip_to_window_and_clamp_values():
    # sample ending 30 min into the window covers [T0 - 30 min, T0 + 30 min): 1800 s counted
    # value 1.2 clamps to 1.0; a value without interval (instantaneous) is skipped
    s = [
        Sample("po", "av", T0 + 1800, 1.2, H),
        Sample("po", "av", T0 + 2000, 0.0),
    ]
    a = availability(s, T0, T0 + H, [], "excluded")
    assert (a.up, a.down) == (1800, 0)
    # uncovered time [T0 + 1800, T0 + H) is unknown: not eligible
    assert a.eligible == 1800


def test_status_samples_within_window():
    # window [0, 600): up@100, down@300, up@450
    # [0,100) unknown; up [100,300)=200; down [300,450)=150; up [450,600)=150
    # up 350, down 150 -> 0.7
    s = [
        Sample("po", "av", T0 + 300, None, status="down"),
        Sample("po", "av", T0 + 100, None, status="up"),
        Sample("po", "av", T0 + 450, None, status="up"),
    ]
    a = availability(s, T0, T0 + 600, [], "excluded")
    assert (a.up, a.down, a.excluded) == (350, 150, 0)
    assert a.ratio == pytest.approx(0.7)


def test_status_carried_in_from_before_the_window():
    # down@-50 (before the window) holds from 0 until up@100: adds down [0,100) = 100
    # an older status (up@-500) is superseded by the later one before the window
    s = [
        Sample("po", "av", T0 + 300, None, status="down"),
        Sample("po", "av", T0 + 100, None, status="up"),
        Sample("po", "av", T0 + 450, None, status="up"),
        Sample("po", "av", T0 - 50, None, status="down"),
        Sample("po", "av", T0 - 500, None, status="up"),
    ]
    a = availability(s, T0, T0 + 600, [], "excluded")
    assert (a.up, a.down) == (350, 250)  # 350 / 600


def test_status_ties_and_unknown_status():
    # up and down at the same instant: down wins (pessimistic), holds [0,300) -> down 300
    # "unknown" at 300 ends it: [300,600) not counted
    s = [
        Sample("po", "av", T0, None, status="up"),
        Sample("po", "av", T0, None, status="down"),
        Sample("po", "av", T0 + 300, None, status="unknown"),
    ]
    a = availability(s, T0, T0 + 600, [], "excluded")
    assert (a.up, a.down) == (0, 300)


def test_status_inside_outage_with_each_accounting():
    # down [0,600) by status; outage [0,200): planned_down 200 in every accounting
    s = [Sample("po", "av", T0 - 1, None, status="down")]
    out = [Outage(T0, T0 + 200)]
    ex = availability(s, T0, T0 + 600, out, "excluded")
    up = availability(s, T0, T0 + 600, out, "counted_as_up")  # underscore spelling accepted
    dn = availability(s, T0, T0 + 600, out, "counted-as-down")
    assert (ex.up, ex.down, ex.excluded, ex.planned_down) == (0, 400, 200, 200)
    assert (up.up, up.down, up.planned_down) == (200, 400, 200)
    assert (dn.up, dn.down, dn.planned_down) == (0, 600, 200)
    with pytest.raises(ValueError):
        availability(s, T0, T0 + 600, out, "ignored")


def test_pooled_availability_is_time_weighted():
    # A: 3600 s eligible, all up (100 %); B: 600 s eligible, 300 up (50 %)
    # pooled = 3900 / 4200 = 92.857 %; the mean of percentages would be 75 %
    a = Availability(3600, 0, 0, 0)
    b = Availability(300, 300, 0, 0)
    pooled = pooled_availability([a, b])
    assert pooled.ratio == pytest.approx(3900 / 4200)
    mean_of_percentages = (a.ratio + b.ratio) / 2
    assert mean_of_percentages == pytest.approx(0.75)
    assert pooled.ratio - mean_of_percentages == pytest.approx(3900 / 4200 - 0.75)  # +0.1786
    # measure() pools the same way across offerings at group level
    samples = [
        Sample("A", "av", T0 + H, 1.0, H),
        Sample("B", "av", T0 + 600, 0.5, 600),
    ]
    m = measure("availability", samples, T0, T0 + H, {}, "excluded")
    assert m.value == pytest.approx(3900 / 4200 * 100)
    assert m.eligible_seconds == 4200 and m.bad_seconds == 300 and m.count == 2


def test_availability_of_nothing_is_none():
    assert Availability(0, 0, 0, 0).ratio is None
    m = measure("availability", [], T0, T0 + H, {}, "excluded")
    assert m.value is None and m.count == 0 and m.eligible_seconds == 0


def test_to_unit():
    assert to_unit(0.999, "%") == pytest.approx(99.9)
    assert to_unit(0.999, "percent") == pytest.approx(99.9)
    assert to_unit(0.999, "ratio") == 0.999
    assert to_unit(None, "%") is None
    with pytest.raises(ValueError):
        to_unit(0.5, "ms")


# --- percentiles and other aggregations ------------------------------------------------------
def test_nearest_rank_known_answers():
    # rank = ceil(p/100 * n)
    assert nearest_rank([float(i) for i in range(1, 101)], 99) == 99  # ceil(99) = 99
    assert nearest_rank([float(i) for i in range(1, 1001)], 99) == 990  # ceil(990) = 990
    assert nearest_rank([15, 20, 35, 40, 50], 95) == 50  # ceil(4.75) = 5 -> 50
    assert nearest_rank([15, 20, 35, 40, 50], 30) == 20  # ceil(1.5) = 2 -> 20
    assert nearest_rank([15, 20, 35, 40, 50], 40) == 20  # ceil(2.0) = 2 -> 20
    assert nearest_rank([50, 15, 40, 20, 35], 100) == 50  # p100 = max
    assert nearest_rank([float(i) for i in range(1, 1001)], 99.9) == 999  # ceil(999.0), no drift
    for bad in (0, -1, 100.5, float("nan")):
        with pytest.raises(ValueError):
            nearest_rank([1.0, 2.0], bad)
    with pytest.raises(ValueError):
        nearest_rank([], 50)


def test_measure_value_aggregations():
    vals = [120.0, 80.0, 100.0, 300.0]
    samples = [Sample("po", "latency", T0 + i, v) for i, v in enumerate(vals)]
    samples += [
        Sample("po", "latency", T0 + 10, None, status="up"),  # status-only: ignored
        Sample("po", "latency", T0 + 300, 9999.0),  # observed at the window end: next window
        Sample("po", "latency", T0 - 1, 9999.0),  # before the window
    ]

    def m(agg):
        return measure(agg, samples, T0, T0 + 300, {}, "excluded")

    assert m("mean").value == 150.0 and m("mean").count == 4  # 600 / 4
    assert m("sum").value == 600.0
    assert m("min").value == 80.0 and m("max").value == 300.0
    assert m("p50").value == 100.0  # sorted 80,100,120,300; ceil(2.0) = 2 -> 100
    assert m("p99").value == 300.0  # ceil(3.96) = 4
    assert m("p62.5").value == 120.0  # ceil(2.5) = 3
    assert m("mean").eligible_seconds == 0 and m("mean").planned is False
    ratios = [Sample("po", "success", T0 + i, v) for i, v in enumerate([1.0, 0.5, 0.9, 1.0])]
    r = measure("ratio", ratios, T0, T0 + 300, {}, "excluded")
    assert r.value == pytest.approx(0.85)  # (1 + 0.5 + 0.9 + 1) / 4, stays a ratio
    assert measure("p95", [], T0, T0 + 300, {}, "excluded").value is None
    with pytest.raises(ValueError):
        m("median")
    with pytest.raises(ValueError):
        m("p0")


# --- classification --------------------------------------------------------------------------
def test_classify_ge_with_warning_band():
    # availability GE 99.5 (breach), warning 99.9
    assert classify(99.95, "GE", 99.5, 99.9) == "ok"
    assert classify(99.9, "GE", 99.5, 99.9) == "ok"  # not below the warning level
    assert classify(99.7, ".ge", 99.5, 99.9) == "warning"
    assert classify(99.5, "ge", 99.5, 99.9) == "warning"  # at the breach level is not a breach
    assert classify(99.4, "GE", 99.5, 99.9) == "breached"
    assert classify(99.7, "GE", 99.5, None) == "ok"  # no warning band
    assert classify(99.5, "GT", 99.5, 99.9) == "breached"
    assert classify(99.9, "GT", 99.5, 99.9) == "warning"


def test_classify_le_with_warning_band():
    # latency LE 500 ms (breach), warning 300
    assert classify(200, "LE", 500, 300) == "ok"
    assert classify(300, "LE", 500, 300) == "ok"
    assert classify(400, ".le", 500, 300) == "warning"
    assert classify(500, "LE", 500, 300) == "warning"
    assert classify(600, "LE", 500, 300) == "breached"
    assert classify(500, "LT", 500, 300) == "breached"
    assert classify(300, "LT", 500, 300) == "warning"


def test_classify_eq_and_refusals():
    assert classify(1.0, "EQ", 1.0, None) == "ok"
    assert classify(1.0 + 1e-12, ".eq", 1.0, None) == "ok"  # within 1e-9
    assert classify(1.001, "EQ", 1.0, None) == "breached"
    with pytest.raises(ValueError):
        classify(1.0, "NE", 1.0, None)
    with pytest.raises(ValueError):
        classify(float("nan"), "GE", 1.0, None)


# --- crossing state machine ------------------------------------------------------------------
def run(seq, grace, clear_after=1):
    state = CrossingState()
    out = []
    for i, c in enumerate(seq):
        t = step(state, c, T0 + i * 300, grace, clear_after)
        out.append(None if t is None else (t.change, t.from_level, t.to_level))
    return state, out


def test_grace_zero_breaches_at_first_bad_window():
    state, out = run(["breached"], 0)
    assert out == [("raised", "ok", "breached")]
    assert state.level == "breached" and state.bad_streak == 1 and state.since == T0


def test_grace_two_warns_then_escalates_at_third():
    state, out = run(["breached", "breached", "breached", "breached"], 2)
    assert out == [
        ("raised", "ok", "warning"),  # streak 1 <= 2
        None,  # streak 2 <= 2: stays warning
        ("escalated", "warning", "breached"),  # streak 3 = grace + 1
        None,
    ]
    assert state.since == T0 + 600  # entered breached at the third window


def test_warning_window_raises_at_once_and_breached_does_not_de_escalate():
    state, out = run(["warning", "breached", "warning", "breached"], 0)
    assert out == [("raised", "ok", "warning"), ("escalated", "warning", "breached"), None, None]
    assert state.level == "breached"


def test_grace_streak_resets_on_a_non_breaching_window():
    # grace 1: B (warn), W (streak reset), B (streak 1 again: still warning), B (escalates)
    _, out = run(["breached", "warning", "breached", "breached"], 1)
    assert out == [("raised", "ok", "warning"), None, None, ("escalated", "warning", "breached")]


def test_clearing_needs_consecutive_ok_windows():
    # clear_after = 2: B, O (1), B (resets), O (1), O (2 -> cleared)
    state, out = run(["breached", "ok", "breached", "ok", "ok"], 0, clear_after=2)
    assert out == [("raised", "ok", "breached"), None, None, None, ("cleared", "breached", "ok")]
    assert state.level == "ok" and state.good_streak == 2 and state.since == T0 + 1200
    # a warning window also resets the count
    _, out = run(["warning", "ok", "warning", "ok", "ok"], 0, clear_after=2)
    assert out[-1] == ("cleared", "warning", "ok") and out[1:4] == [None, None, None]
    # ok windows on an ok state change nothing; the state serialises with asdict
    state, out = run(["ok", "ok"], 0)
    assert out == [None, None]
    assert asdict(state) == {"level": "ok", "bad_streak": 0, "good_streak": 2, "since": None}


# --- error budget and burn rate --------------------------------------------------------------
def feed(ledger, start, end, error_ratio, window=300.0):
    """Evaluated windows of `window` s over [start, end) at a constant error ratio."""
    t = start
    while t < end:
        ledger.add(t, t + window, window, window * error_ratio)
        t += window


def test_error_budget_and_burn_rate():
    assert error_budget(0.999) == 0.001  # rounded: not 0.0010000000000000009
    assert burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    assert burn_rate(0.0, 1.0) == 0.0 and burn_rate(0.1, 1.0) == float("inf")


def test_fast_burn_pages():
    # 99.9 % over 30 days: B = 0.001. A day of clean history, then 1 h at error ratio 0.015:
    # 1 h burn = 0.015 / 0.001 = 15 > 14.4 and 5 m burn = 15 > 14.4 -> page (1h & 5m).
    # 6 h: 0.015 * 1/6 = 0.0025 -> 2.5 < 6; 1 d: 0.015/24 -> 0.625 < 3; 3 d: < 1 -> nothing else
    now = T0 + 2 * DAY
    ledger = BudgetLedger(60, MONTH)
    feed(ledger, T0 + DAY, now - H, 0.0)
    feed(ledger, now - H, now, 0.015)
    alerts = burn_alerts(ledger, now, 0.999, MONTH)
    assert [(a.severity, a.long_window, a.short_window, a.factor) for a in alerts] == [
        ("page", 3600, 300, 14.4)
    ]
    assert alerts[0].long_burn == pytest.approx(15) and alerts[0].short_burn == pytest.approx(15)


def test_short_spike_alone_does_not_page():
    # 55 min clean then 5 min at error ratio 0.1: 5 m burn = 100, but
    # 1 h burn = 0.1 * 300 / 3600 / 0.001 = 8.33 < 14.4 -> no page; 6 h: 1.39 < 6 -> no page
    now = T0 + 2 * DAY
    ledger = BudgetLedger(60, MONTH)
    feed(ledger, T0 + DAY, now - 300, 0.0)
    feed(ledger, now - 300, now, 0.1)
    assert ledger.error_ratio(now - 300, now) == pytest.approx(0.1)
    assert ledger.error_ratio(now - H, now) == pytest.approx(0.1 / 12)
    assert burn_alerts(ledger, now, 0.999, MONTH) == []


def test_slow_burn_tickets_but_does_not_page():
    # 3 days at error ratio 0.0011 = 1.1x: 3 d & 6 h burns 1.1 > 1 -> ticket;
    # 1 d & 2 h: 1.1 < 3; 6 h & 30 m: 1.1 < 6; 1 h & 5 m: 1.1 < 14.4
    now = T0 + 5 * DAY
    ledger = BudgetLedger(60, MONTH)
    feed(ledger, now - 3 * DAY, now, 0.0011)
    alerts = burn_alerts(ledger, now, 0.999, MONTH)
    assert [(a.severity, a.factor) for a in alerts] == [("ticket", 1.0)]
    assert alerts[0].long_burn == pytest.approx(1.1) and alerts[0].short_burn == pytest.approx(1.1)


def test_rules_scale_with_the_period():
    # 7-day period: every window x 7/30; factors unchanged
    # 3600 -> 840, 300 -> 70, 21600 -> 5040, 1800 -> 420, 86400 -> 20160, 7200 -> 1680,
    # 259200 -> 60480, 21600 -> 5040
    rules = burn_rules(7 * DAY)
    expected = [
        ("page", 840, 70, 14.4), ("page", 5040, 420, 6.0),
        ("ticket", 20160, 1680, 3.0), ("ticket", 60480, 5040, 1.0),
    ]
    for (sev, lw, sw, f), (esev, elw, esw, ef) in zip(rules, expected, strict=True):
        assert (sev, f) == (esev, ef)
        assert lw == pytest.approx(elw) and sw == pytest.approx(esw)
    assert burn_rules(MONTH) == [tuple(r) for r in burn_rules(MONTH)]  # 30 d: unchanged
    assert [r[1:3] for r in burn_rules(MONTH)] == [(3600, 300), (21600, 1800), (86400, 7200),
                                                  (259200, 21600)]


def test_remaining_budget_and_projected_exhaustion_for_a_steady_burn():
    # 30-day period, 99.9 %: allowed bad = 0.001 * 2_592_000 = 2592 s.
    # 10 days at 2x (error ratio 0.002): bad = 864_000 * 0.002 = 1728 s
    # remaining = 1 - 1728 / 2592 = 1/3
    # burn = 0.002 bad s per s; left = 864 s -> 432_000 s = 5 days -> exhausted at day 15
    start, now = T0, T0 + 10 * DAY
    ledger = BudgetLedger(60, MONTH)
    feed(ledger, start, now, 0.002)
    assert remaining_budget(ledger, start, now, 0.999, MONTH) == pytest.approx(1 / 3)
    assert projected_exhaustion(ledger, start, now, 0.999, MONTH) == pytest.approx(
        start + 15 * DAY)


def test_projected_exhaustion_edges():
    start, now = T0, T0 + 10 * DAY
    # not burning -> None, full budget left
    clean = BudgetLedger(60, MONTH)
    feed(clean, start, now, 0.0)
    assert projected_exhaustion(clean, start, now, 0.999, MONTH) is None
    assert remaining_budget(clean, start, now, 0.999, MONTH) == 1.0
    # 0.5x: bad 432, left 2160, rate 0.0005 -> 4_320_000 s = 50 days: beyond the period -> None
    slow = BudgetLedger(60, MONTH)
    feed(slow, start, now, 0.0005)
    assert projected_exhaustion(slow, start, now, 0.999, MONTH) is None
    # 4x: bad 3456 > 2592 -> remaining 1 - 3456/2592 = -1/3 (reported as is); already out -> now
    fast = BudgetLedger(60, MONTH)
    feed(fast, start, now, 0.004)
    assert remaining_budget(fast, start, now, 0.999, MONTH) == pytest.approx(-1 / 3)
    assert projected_exhaustion(fast, start, now, 0.999, MONTH) == now


def test_ledger_spreads_bounds_memory_and_round_trips():
    ledger = BudgetLedger(60, 3600)
    # [T0+30, T0+150): 120 s over buckets T0 (30 s), T0+60 (60 s), T0+120 (30 s)
    ledger.add(T0 + 30, T0 + 150, 120, 12)
    assert ledger.totals(T0, T0 + 60) == pytest.approx((30, 3))
    assert ledger.totals(T0 + 60, T0 + 120) == pytest.approx((60, 6))
    assert ledger.error_ratio(T0, T0 + 180) == pytest.approx(0.1)
    assert ledger.error_ratio(T0 + 600, T0 + 900) is None
    # 10 hours of minutes: only about the last hour of buckets is kept
    feed(ledger, T0, T0 + 10 * H, 0.01, window=60)
    assert len(ledger) <= 60 + 60 // 8 + 16
    assert ledger.totals(T0, T0 + 9 * H) == (0.0, 0.0)  # older than keep_seconds: gone
    assert ledger.totals(T0 + 9 * H, T0 + 10 * H) == pytest.approx((3600, 36))
    ledger.add(T0, T0 + 60, 60, 60)  # late data older than keep_seconds is ignored
    assert ledger.totals(T0, T0 + 10 * H) == pytest.approx((3600, 36))
    again = BudgetLedger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert again.to_dict() == ledger.to_dict()
    assert again.totals(T0 + 9 * H, T0 + 10 * H) == ledger.totals(T0 + 9 * H, T0 + 10 * H)


# --- determinism -----------------------------------------------------------------------------
def test_shuffled_samples_give_identical_measurements():
    rng = random.Random(20240601)
    samples = []
    for offering in ("po-a", "po-b", "po-c"):
        for i in range(60):
            samples.append(Sample(offering, "av", T0 + (i + 1) * 60, rng.random() ** 0.1, 60.0))
            samples.append(Sample(offering, "lat", T0 + i * 60 + rng.random(), rng.random() * 1e3))
    samples.append(Sample("po-c", "av", T0 - 10, None, status="down"))
    outages = {"po-a": [Outage(T0 + 600, T0 + 1500)], "po-b": [Outage(T0 + 3000, T0 + 4000)]}
    aggs = ["availability", "mean", "sum", "min", "max", "ratio", "p99", "p50", "p99.9"]

    def measure_all(items):
        return [measure(a, items, T0, T0 + H, outages, acc)
                for a in aggs for acc in ("excluded", "counted-as-up", "counted-as-down")]

    expected = measure_all(samples)
    assert expected[0].value is not None and expected[0].planned is True
    for _ in range(5):
        shuffled = samples[:]
        rng.shuffle(shuffled)
        assert measure_all(shuffled) == expected  # exact equality, not approx
