"""Known-answer semantics of the monitoring service (docs/sla-figures.md).

Pure functions (and two small mutable records) that turn the samples of one window into a
measured value, compare it with threshold levels, run the crossing state machine, and keep
error budgets with multi-window multi-burn-rate alerts.

Conventions the callers must know:

* Times are float epoch seconds (UTC). :func:`to_epoch` / :func:`from_epoch` convert from/to
  timezone-aware datetimes; naive datetimes are refused.
* Everything is deterministic: inputs are put in a canonical order before any floating point
  accumulation (and plain sums use :func:`math.fsum`), so the arrival order of samples never
  changes a result.
* Units (the convention on the wire, see docs/sla-figures.md): a SHARE — the up fraction of
  an availability sample, a ``ratio`` sample, a remaining budget, an error ratio — is a
  fraction 0..1 here; a measured VALUE that is compared with a standard's levels is in the
  unit the standard's parameter states. :func:`measure` returns availability in PERCENT
  (0..100) and ``ratio`` as a fraction; :func:`to_unit` converts a fraction to the unit a
  parameter states.
* Conformance periods are calendar periods in the SLA type's time zone
  (:func:`conformance_period`); burn-rate windows are rolling.
"""

from __future__ import annotations

import base64
import math
import re
import sys
import zlib
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.durations import duration_parts, duration_seconds

__all__ = [
    "ACCOUNTINGS",
    "BUDGET_UNIT",
    "BURN_RULES_30D",
    "LEVELS",
    "Availability",
    "BudgetLedger",
    "LedgerFormatError",
    "MinuteLedger",
    "BurnAlert",
    "CrossingState",
    "Measurement",
    "Outage",
    "Period",
    "Sample",
    "Transition",
    "availability",
    "burn_alerts",
    "burn_rate",
    "burn_rules",
    "budget_denominator",
    "classify",
    "conformance_period",
    "error_budget",
    "from_epoch",
    "gaps",
    "in_outage",
    "is_planned",
    "overlaps",
    "longest_period_seconds",
    "measure",
    "nearest_rank",
    "normalise_comparator",
    "pooled_availability",
    "projected_exhaustion",
    "remaining_budget",
    "step",
    "to_epoch",
    "time_zone",
    "to_unit",
    "value_in_unit",
    "window_bounds",
]

LEVELS = ("ok", "warning", "breached")
#: The unit of every remaining budget and error ratio on the wire: a fraction (1 = untouched).
BUDGET_UNIT = "ratio"
ACCOUNTINGS = ("excluded", "counted-as-up", "counted-as-down")
PERIOD_30D = 30 * 86400
EQ_TOLERANCE = 1e-9
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


# --- time ----------------------------------------------------------------------------------
def to_epoch(moment: datetime) -> float:
    """A timezone-aware datetime as epoch seconds. Naive datetimes raise ``ValueError``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: monitoring times must be timezone-aware (UTC)")
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Epoch seconds as a UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def window_bounds(at: float, window_seconds: int) -> tuple[float, float]:
    """The tumbling window ``[start, end)`` holding ``at``; windows are aligned to the epoch."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    start = math.floor(at / window_seconds) * window_seconds
    return float(start), float(start + window_seconds)


# --- conformance periods -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Period:
    """One conformance period ``[start, end)`` in epoch seconds (its length varies: months,
    daylight-saving days)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


_EPOCH_DATE = date(1970, 1, 1)
_EPOCH_MONDAY = date(1969, 12, 29)  # the Monday of the ISO week holding 1 January 1970


def time_zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (None or empty: UTC); ``ValueError`` when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone such as Europe/Paris") from exc


@lru_cache(maxsize=256)
def _calendar(period: str) -> tuple[str, int]:
    """How a period duration is laid on the calendar: ("month", n) for years and months,
    ("week", n), ("day", n), or ("fixed", seconds) for anything with a time part or mixing
    months with weeks or days."""
    parts = duration_parts(period)
    if parts and set(parts) <= {"years", "months"}:
        return "month", parts.get("years", 0) * 12 + parts.get("months", 0)
    if set(parts) == {"weeks"}:
        return "week", parts["weeks"]
    if set(parts) == {"days"}:
        return "day", parts["days"]
    length = duration_seconds(period)
    if length <= 0:
        raise ValueError(f"{period!r} is not a positive duration")
    return "fixed", length


def _period_index(kind: str, n: int, moment: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(moment, zone)
    if kind == "month":
        return ((local.year - 1970) * 12 + local.month - 1) // n
    if kind == "week":
        return (local.date() - _EPOCH_MONDAY).days // (7 * n)
    return (local.date() - _EPOCH_DATE).days // n


def _period_start(kind: str, n: int, index: int, zone: ZoneInfo) -> float:
    if kind == "month":
        months = index * n
        first = date(1970 + months // 12, months % 12 + 1, 1)
    elif kind == "week":
        first = _EPOCH_MONDAY + timedelta(days=index * 7 * n)
    else:
        first = _EPOCH_DATE + timedelta(days=index * n)
    # Local midnight; where midnight falls in a daylight-saving gap, zoneinfo (fold=0) gives
    # the first instant of the local day.
    return datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()


def conformance_period(moment: float, period: str, zone_name: str | None = "UTC") -> Period:
    """The conformance period that a window ENDING at ``moment`` belongs to: the one with
    ``start < moment <= end`` — a window ending exactly on a boundary belongs to the period
    it ends, not to the next one.

    Calendar-aligned in the time zone ``zone_name`` (IANA name, default UTC), from local
    midnight: ``PnM`` blocks of n calendar months counted from January 1970 (``P1M`` the
    month, ``P3M`` the quarter, ``P6M`` the half-year, ``P1Y`` = ``P12M`` the year); ``PnW``
    blocks of n ISO weeks from Monday; ``PnD`` blocks of n days from 1 January 1970 (``P1D``
    the day; ``P30D`` is thirty-day blocks, not the month). Durations with a time part
    (``PT12H``) or mixing months with weeks or days (``P1M15D``) have a fixed length (months
    30 days) and are aligned to the Unix epoch. Months and days follow the zone's
    daylight-saving rules: a day may last 23 or 25 hours.
    """
    kind, n = _calendar(period)
    if kind == "fixed":
        index = math.ceil(moment / n) - 1
        return Period(float(index * n), float((index + 1) * n))
    zone = time_zone(zone_name)
    index = _period_index(kind, n, moment, zone)
    start = _period_start(kind, n, index, zone)
    while start >= moment:  # on a boundary: the period it ends
        index -= 1
        start = _period_start(kind, n, index, zone)
    end = _period_start(kind, n, index + 1, zone)
    while end < moment:  # defensive: never needed with zoneinfo's rules
        index += 1
        start, end = end, _period_start(kind, n, index + 1, zone)
    return Period(start, end)


def longest_period_seconds(period: str) -> float:
    """An upper bound of the length of any period of ``period`` (31-day months, 366-day
    years, an hour more for a daylight-saving change): what a budget must keep."""
    kind, n = _calendar(period)
    if kind == "fixed":
        return float(n)
    days = {"month": 31 * n, "week": 7 * n, "day": n}[kind]
    return float(days * 86400 + 3600)


# --- records -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement of one parameter of one purchased offering.

    ``value`` with ``interval_seconds``: the value covers ``[observed_at - interval,
    observed_at)`` (for availability: the UP FRACTION 0..1 of that interval).
    ``status`` ("up" | "down"): the state holds from ``observed_at`` until the next status
    sample of the offering (or the window end). Any other status string is "unknown": it ends
    the previous state and its own time counts neither up nor down.
    """

    offering_id: str
    parameter: str
    observed_at: float
    value: float | None
    interval_seconds: float | None = None
    status: str | None = None
    batch_id: str = ""


@dataclass(frozen=True, slots=True)
class Outage:
    """An agreed planned outage of one purchased offering, ``[start, end)`` epoch seconds."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Availability:
    """Seconds of one window: up, down, excluded (planned, accounting "excluded").

    ``planned_down`` is the down time as measured that fell inside agreed outages, whatever
    the accounting (it is already included in ``down`` only under "counted-as-down" — and
    then as the whole outage time, see :func:`availability`).
    """

    up: float
    down: float
    excluded: float
    planned_down: float

    @property
    def eligible(self) -> float:
        return self.up + self.down

    @property
    def ratio(self) -> float | None:
        eligible = self.up + self.down
        return self.up / eligible if eligible > 0 else None


@dataclass(frozen=True, slots=True)
class Measurement:
    """The measured value of one window.

    ``value`` is None when nothing was measurable. ``eligible_seconds`` / ``bad_seconds`` /
    ``excluded_seconds`` are set for availability only (0 otherwise); ``planned`` is the FACT
    that the window had downtime inside an agreed outage (availability only) — whether a
    crossing is planned is decided by :func:`is_planned` on ``value_without_outages``: when
    an agreed outage overlaps the window (``outage_overlap``), the value the window would
    have had without the outages' time (availability as if the outages were excluded; other
    aggregations without the samples observed in them; None when nothing is left).
    """

    value: float | None
    count: int
    eligible_seconds: float
    bad_seconds: float
    planned: bool
    excluded_seconds: float = 0.0
    outage_overlap: bool = False
    value_without_outages: float | None = None


# --- percentiles and units -----------------------------------------------------------------
def nearest_rank(values: list[float], percentile: float) -> float:
    """NIST nearest-rank percentile: sort, rank = ceil(p/100 * n) (1-based), p in (0, 100].

    The rank is computed in decimal arithmetic on the shortest repr of ``percentile``, so
    ``p99.9`` of 1000 values is rank 999 exactly (no binary floating point drift).
    """
    if not values:
        raise ValueError("nearest_rank of no values")
    if not (0 < percentile <= 100):  # also refuses NaN
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    ordered = sorted(values)
    n = len(ordered)
    rank = math.ceil(Decimal(repr(float(percentile))) * n / 100)
    return ordered[min(max(rank, 1), n) - 1]


def to_unit(ratio: float | None, unit: str) -> float | None:
    """A 0..1 ratio in the unit a parameter states: ``%``/``percent`` → ×100; ``ratio``,
    ``1`` or empty → as is. None passes through; other units raise ``ValueError``."""
    if ratio is None:
        return None
    key = (unit or "").strip().lower()
    if key in ("%", "percent", "pct"):
        return ratio * 100.0
    if key in ("", "1", "ratio", "fraction"):
        return ratio
    raise ValueError(f"cannot express a ratio in unit {unit!r}")


# --- availability --------------------------------------------------------------------------
def _normalise_accounting(accounting: str) -> str:
    key = (accounting or "").strip().lower().replace("_", "-")
    if key not in ACCOUNTINGS:
        raise ValueError(f"accounting must be one of {ACCOUNTINGS}, got {accounting!r}")
    return key


def _merged_outages(outages: list[Outage], start: float, end: float) -> tuple[list, list]:
    """Outages clipped to the window, sorted and merged: (starts, ends), disjoint."""
    clipped = sorted(
        (max(o.start, start), min(o.end, end)) for o in outages if o.end > start and o.start < end
    )
    starts: list[float] = []
    ends: list[float] = []
    for a, b in clipped:
        if b <= a:
            continue
        if ends and a <= ends[-1]:
            if b > ends[-1]:
                ends[-1] = b
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


_STATUS_ORDER = {"up": 0, "down": 2}  # anything else ("unknown") sorts as 1


def _availability(
    samples: list[Sample], start: float, end: float, outages: list[Outage], accounting: str
) -> tuple[Availability, int]:
    """Availability of one offering's samples plus the number of samples that covered time."""
    mode = _normalise_accounting(accounting)
    o_starts, o_ends = _merged_outages(outages, start, end) if outages else ([], [])
    n_out = len(o_starts)

    # Covered segments (a, b, up_fraction) in a canonical order: determinism of float sums.
    segments: list[tuple[float, float, float]] = []
    statuses: list[Sample] = []
    used = 0
    for s in samples:
        if s.status is not None:
            statuses.append(s)
            continue
        v, iv = s.value, s.interval_seconds
        if v is None or iv is None or iv <= 0 or v != v:  # instantaneous, empty or NaN
            continue
        a = max(s.observed_at - iv, start)
        b = min(s.observed_at, end)
        if b > a:
            segments.append((a, b, 0.0 if v < 0 else 1.0 if v > 1 else float(v)))
            used += 1

    if statuses:
        statuses.sort(key=lambda s: (s.observed_at, _STATUS_ORDER.get(s.status, 1)))
        last = len(statuses) - 1
        for i, s in enumerate(statuses):
            a = max(s.observed_at, start)
            b = min(statuses[i + 1].observed_at, end) if i < last else end
            if b > a and s.status in _STATUS_ORDER:
                segments.append((a, b, 1.0 if s.status == "up" else 0.0))
                used += 1
    segments.sort()

    up = down = excluded = planned_down = 0.0
    for a, b, u in segments:
        inside = 0.0
        if n_out:
            i = bisect_right(o_ends, a)
            while i < n_out and o_starts[i] < b:
                inside += min(b, o_ends[i]) - max(a, o_starts[i])
                i += 1
        outside = (b - a) - inside
        up += u * outside
        down += (1.0 - u) * outside
        if inside > 0:
            planned_down += (1.0 - u) * inside
            if mode == "excluded":
                excluded += inside
            elif mode == "counted-as-up":
                up += inside
            else:
                down += inside
    return Availability(up, down, excluded, planned_down), used


def availability(
    samples: list[Sample], start: float, end: float, outages: list[Outage], accounting: str
) -> Availability:
    """Up/down/excluded seconds of ONE purchased offering and one parameter in ``[start, end)``.

    * Interval samples (value + interval_seconds) cover ``[observed_at - interval,
      observed_at)`` clipped to the window: up = value × covered, down = (1 − value) ×
      covered, value clamped to 0..1. A value without interval (instantaneous) is skipped.
    * Status samples are sorted by time (at equal times "down" wins over "up"); each holds
      until the next status sample or ``end``. Time before the first status sample is unknown
      unless the caller passes the last status before the window (``observed_at < start``),
      which then holds from ``start``.
    * Time covered by no sample is unknown (neither up nor down). Overlapping samples are not
      de-duplicated: the caller passes samples that tile time (one kind per parameter).
    * Covered time inside agreed outages (the down part goes to ``planned_down``, as measured)
      is removed from eligible time (``"excluded"``), counted up (``"counted-as-up"``) or
      counted down (``"counted-as-down"``). Uncovered outage time counts nowhere.
    """
    return _availability(samples, start, end, outages, accounting)[0]


def pooled_availability(parts: list[Availability]) -> Availability:
    """Time-weighted pooling across offerings: sums of seconds, never a mean of percentages."""
    return Availability(
        math.fsum(p.up for p in parts),
        math.fsum(p.down for p in parts),
        math.fsum(p.excluded for p in parts),
        math.fsum(p.planned_down for p in parts),
    )


# --- measurement ---------------------------------------------------------------------------
def measure(
    aggregation: str,
    samples: list[Sample],
    start: float,
    end: float,
    outages_by_offering: dict[str, list[Outage]],
    accounting: str,
) -> Measurement:
    """The measured value of the window ``[start, end)``.

    * ``availability``: pooled over every offering present in ``samples`` (group level when
      several are passed), value in PERCENT; eligible/bad seconds = pooled up+down / down;
      count = samples that covered time. Samples outside the window may be passed (interval
      samples overlapping it, the last status before it) and are clipped.
    * Other aggregations use the sample values observed in ``[start, end)``; values None
      (status-only) and NaN are ignored. ``mean``/``sum`` use exact summation (fsum);
      ``ratio`` = sum(values) / count, i.e. the sample-weighted mean of 0..1 ratios, returned
      as a ratio (not a percent); ``min``/``max``; ``pNN`` / ``pNN.N`` nearest-rank over all
      values pooled.
    """
    agg = (aggregation or "").strip().lower()
    if agg == "availability":
        by_offering: dict[str, list[Sample]] = {}
        for s in samples:
            by_offering.setdefault(s.offering_id, []).append(s)
        parts: list[Availability] = []
        without: list[Availability] = []
        count = 0
        for offering_id in sorted(by_offering):
            outages = outages_by_offering.get(offering_id) or []
            part, used = _availability(by_offering[offering_id], start, end, outages,
                                       accounting)
            parts.append(part)
            without.append(part if not outages else _availability(
                by_offering[offering_id], start, end, outages, "excluded")[0])
            count += used
        pooled = pooled_availability(parts)
        ratio = pooled.ratio
        ratio_without = pooled_availability(without).ratio
        return Measurement(
            None if ratio is None else ratio * 100.0,
            count,
            pooled.eligible,
            pooled.down,
            pooled.planned_down > 0,
            pooled.excluded,
            any(overlaps(outages_by_offering.get(o), start, end) for o in by_offering),
            None if ratio_without is None else ratio_without * 100.0,
        )

    kept = [s for s in samples
            if s.value is not None and s.value == s.value and start <= s.observed_at < end]
    value = aggregate_values(agg, [s.value for s in kept])
    outside = [s.value for s in kept
               if not in_outage(s.observed_at, outages_by_offering.get(s.offering_id))]
    value_without = value if len(outside) == len(kept) else aggregate_values(agg, outside)
    return Measurement(value, len(kept), 0.0, 0.0, False, 0.0,
                       any(overlaps(outages_by_offering.get(o), start, end)
                           for o in {s.offering_id for s in kept}), value_without)


def overlaps(outages: list[Outage] | None, start: float, end: float) -> bool:
    """Whether one of ``outages`` overlaps the window ``[start, end)``."""
    return bool(outages) and any(o.start < end and o.end > start for o in outages)


def in_outage(moment: float, outages: list[Outage] | None) -> bool:
    """Whether ``moment`` falls in one of ``outages`` (``[start, end)``)."""
    return bool(outages) and any(o.start <= moment < o.end for o in outages)


def aggregate_values(aggregation: str, values: list[float]) -> float | None:
    """A non-availability aggregation of the values of one window (None when empty):
    ``mean``/``sum`` by exact summation, ``ratio`` the mean of 0..1 ratios, ``min``,
    ``max``, ``pNN`` nearest-rank."""
    agg = aggregation.strip().lower()
    n = len(values)
    if agg in ("mean", "ratio"):
        value = math.fsum(values) / n if n else None
    elif agg == "sum":
        value = math.fsum(values) if n else None
    elif agg == "min":
        value = min(values) if n else None
    elif agg == "max":
        value = max(values) if n else None
    else:
        match = _PERCENTILE.match(agg)
        if not match:
            raise ValueError(f"unknown aggregation {aggregation!r}")
        percentile = float(match.group(1))
        if not (0 < percentile <= 100):
            raise ValueError(f"percentile must be in (0, 100], got {aggregation!r}")
        value = nearest_rank(values, percentile) if n else None
    return None if value is None else float(value)


def value_in_unit(aggregation: str, values: list[float], unit: str | None) -> float | None:
    """A non-availability aggregation of one window's values, in the parameter's unit: a
    ``ratio`` is a mean of fractions (0..1) expressed in the unit its standard states
    (``%``: ×100; ``ratio``: as is; any other unit: as is); other aggregations are in the
    unit their samples were sent in, which is the standard's."""
    value = aggregate_values(aggregation, values)
    if value is not None and aggregation.strip().lower() == "ratio":
        try:
            return to_unit(value, unit or "ratio")
        except ValueError:
            return value
    return value


# --- threshold levels ----------------------------------------------------------------------
def normalise_comparator(comparator: str) -> str:
    """``GE``, ``ge``, ``.ge`` → ``GE``; unknown comparators raise ``ValueError``."""
    key = (comparator or "").strip().lstrip(".").upper()
    if key not in ("GE", "GT", "LE", "LT", "EQ"):
        raise ValueError(f"unknown comparator {comparator!r}")
    return key


def classify(value: float, comparator: str, breach: float, warning: float | None) -> str:
    """"ok" | "warning" | "breached"; good values compare with the level as the comparator says.

    GE: breached if value < breach, warning if value < warning. GT: breached if value <=
    breach, warning if value <= warning. LE / LT mirror. EQ: breached unless value equals
    breach within 1e-9 (absolute or relative); EQ has no warning band. NaN raises.
    """
    if value != value:
        raise ValueError("cannot classify NaN")
    op = normalise_comparator(comparator)
    if op == "EQ":
        close = math.isclose(value, breach, rel_tol=EQ_TOLERANCE, abs_tol=EQ_TOLERANCE)
        return "ok" if close else "breached"
    if op == "GE":
        bad, warn = value < breach, warning is not None and value < warning
    elif op == "GT":
        bad, warn = value <= breach, warning is not None and value <= warning
    elif op == "LE":
        bad, warn = value > breach, warning is not None and value > warning
    else:  # LT
        bad, warn = value >= breach, warning is not None and value >= warning
    return "breached" if bad else "warning" if warn else "ok"


# --- crossing state machine ----------------------------------------------------------------
@dataclass
class CrossingState:
    """Crossing state per (regime, parameter, scope); serialisable with ``asdict``."""

    level: str = "ok"
    bad_streak: int = 0
    good_streak: int = 0
    since: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """``raised`` (ok → warning/breached), ``escalated`` (warning → breached), ``cleared``
    (warning/breached → ok). ``de-escalated`` is never emitted by :func:`step`."""

    change: str
    from_level: str
    to_level: str


def step(
    state: CrossingState,
    classification: str,
    window_start: float,
    grace_times: int,
    clear_after: int,
    has_warning: bool = True,
) -> Transition | None:
    """Feed one evaluated window (in window order) to ``state``; mutate it; return the change.

    * A breaching window adds to ``bad_streak``; the breach is raised on the
      ``grace_times + 1``-th consecutive breaching window and nothing is raised for it before
      that. A warning is raised only where the standard has a warning level
      (``has_warning``): then a breaching window within grace — beyond the warning level too —
      raises (or keeps) "warning" as any warning window does; without one it raises nothing.
      A warning window raises/keeps "warning" at once (no grace) and resets ``bad_streak``.
    * No de-escalation: a breached state stays breached through warning windows (and through
      breaching windows within grace) until it clears.
    * Clearing: after ``clear_after`` (at least 1) consecutive ok windows, warning/breached →
      ok ("cleared"). Any warning or breaching window resets ``good_streak``.
    * ``since`` is set to ``window_start`` whenever the level changes.
    """
    if classification not in LEVELS:
        raise ValueError(f"classification must be one of {LEVELS}, got {classification!r}")
    grace = max(0, grace_times)
    needed = max(1, clear_after)
    level = state.level

    if classification == "breached":
        state.bad_streak += 1
        state.good_streak = 0
        if state.bad_streak > grace:
            target = "breached"
        elif level == "ok" and has_warning:
            target = "warning"  # within grace: beyond the warning level, so a warning
        else:
            target = level  # within grace: nothing raised (or kept as it is)
    elif classification == "warning":
        state.bad_streak = 0
        state.good_streak = 0
        target = "warning" if level == "ok" else level
    else:
        state.bad_streak = 0
        state.good_streak += 1
        target = "ok" if level != "ok" and state.good_streak >= needed else level

    if target == level:
        return None
    state.level = target
    state.since = window_start
    if target == "ok":
        change = "cleared"
    elif level == "ok":
        change = "raised"
    else:
        change = "escalated"  # warning -> breached; breached -> warning cannot happen
    return Transition(change, level, target)


SEVERITY = {"ok": 0, "warning": 1, "breached": 2}


def is_planned(classification: str, without_outages: str) -> bool:
    """A window's crossing is planned when the agreed outage is what made it bad: its level
    without the outages' time (``without_outages``, see ``Measurement``) is less severe than
    its level. Unplanned downtime that breaches on its own is never planned, whatever the
    window overlaps."""
    return SEVERITY.get(classification, 0) > SEVERITY.get(without_outages, 0)


# --- error budget and burn rate ------------------------------------------------------------
BURN_RULES_30D: list[tuple[str, float, float, float]] = [
    ("page", 3600, 300, 14.4),
    ("page", 6 * 3600, 1800, 6.0),
    ("ticket", 86400, 7200, 3.0),
    ("ticket", 3 * 86400, 6 * 3600, 1.0),
]


def error_budget(target_ratio: float) -> float:
    """B = 1 − target (target as a ratio, 0..1). Rounded to 12 decimals so that 0.999 gives
    exactly 0.001 rather than 0.0010000000000000009."""
    if not (0.0 <= target_ratio <= 1.0):
        raise ValueError(f"target must be a ratio in [0, 1], got {target_ratio!r}")
    return round(1.0 - target_ratio, 12)


def burn_rate(error_ratio: float, target_ratio: float) -> float:
    """error_ratio / B. With a 100 % target (B = 0) any error burns at infinite rate."""
    budget = error_budget(target_ratio)
    if budget == 0:
        return math.inf if error_ratio > 0 else 0.0
    return error_ratio / budget


def burn_rules(period_seconds: float) -> list[tuple[str, float, float, float]]:
    """The 30-day rules with both windows scaled by period / 30 days (factors unchanged)."""
    if period_seconds <= 0:
        raise ValueError("period_seconds must be positive")
    scale = period_seconds / PERIOD_30D
    return [(sev, long * scale, short * scale, f) for sev, long, short, f in BURN_RULES_30D]


class MinuteLedger:
    """The reference ledger: good/bad seconds of one series in one bucket a minute, for
    burn-rate windows and the conformance period. Unbounded in practice (43,200 buckets for a
    30-day period, megabytes a series), so the evaluator keeps a :class:`BudgetLedger`; this
    one stays as the executable specification the compact ledger is checked against and as
    the baseline of ``bench/evaluator_state.py``.

    Convention: availability feeds eligible = up + down seconds and bad = down seconds of each
    window. Other parameters feed one entry per evaluated window with eligible = window length
    and bad = window length if the window breached else 0 — the error ratio is then the share
    of time spent in breaching windows.

    A query window ``[since, until)`` sums the buckets whose START lies in it, so windows are
    effectively rounded to bucket boundaries (exact when times are bucket-aligned; choose a
    bucket that divides the short rule windows — 60 s does for all default 30-day rules).

    Memory is bounded: buckets older than ``keep_seconds`` before the newest bucket are
    dropped (pass max(period, longest rule window)); late data older than that is ignored.
    """

    __slots__ = ("bucket_seconds", "keep_seconds", "_keep", "_buckets", "_newest")

    def __init__(self, bucket_seconds: int, keep_seconds: float) -> None:
        if bucket_seconds <= 0 or keep_seconds <= 0:
            raise ValueError("bucket_seconds and keep_seconds must be positive")
        self.bucket_seconds = bucket_seconds
        self.keep_seconds = keep_seconds
        self._keep = max(1, math.ceil(keep_seconds / bucket_seconds))
        self._buckets: dict[int, list[float]] = {}  # index -> [eligible, bad]
        self._newest: int | None = None

    def __len__(self) -> int:
        return len(self._buckets)

    def _cutoff(self) -> int | None:
        return None if self._newest is None else self._newest + 1 - self._keep

    def _put(self, index: int, eligible: float, bad: float) -> None:
        cell = self._buckets.get(index)
        if cell is None:
            self._buckets[index] = [eligible, bad]
        else:
            cell[0] += eligible
            cell[1] += bad

    def add(self, start: float, end: float, eligible: float, bad: float) -> None:
        """Spread ``eligible``/``bad`` seconds of ``[start, end)`` over the buckets it overlaps,
        proportionally to the overlap (``end <= start``: all into the bucket of ``start``)."""
        if eligible == 0 and bad == 0:
            return
        size = self.bucket_seconds
        first = math.floor(start / size)
        last = math.ceil(end / size) - 1 if end > start else first
        if self._newest is None or last > self._newest:
            self._newest = last
        cutoff = self._cutoff()
        if last < cutoff:
            return
        if last == first:
            self._put(first, eligible, bad)
        else:
            span = end - start
            for k in range(max(first, cutoff), last + 1):
                lo = k * size
                share = (min(end, lo + size) - max(start, lo)) / span
                if share > 0:
                    self._put(k, eligible * share, bad * share)
        if len(self._buckets) > self._keep + self._keep // 8 + 16:
            self._buckets = {k: v for k, v in self._buckets.items() if k >= cutoff}

    def totals(self, since: float, until: float) -> tuple[float, float]:
        """(eligible, bad) seconds of the buckets starting in ``[since, until)``."""
        size = self.bucket_seconds
        lo = math.ceil(since / size)
        hi = math.ceil(until / size)  # exclusive
        cutoff = self._cutoff()
        if cutoff is not None and lo < cutoff:
            lo = cutoff
        eligible = bad = 0.0
        if hi <= lo:
            return eligible, bad
        buckets = self._buckets
        if hi - lo <= len(buckets):
            for k in range(lo, hi):
                cell = buckets.get(k)
                if cell is not None:
                    eligible += cell[0]
                    bad += cell[1]
        else:
            for k in sorted(buckets):
                if lo <= k < hi:
                    cell = buckets[k]
                    eligible += cell[0]
                    bad += cell[1]
        return eligible, bad

    def error_ratio(self, since: float, until: float) -> float | None:
        """bad / eligible over ``[since, until)``; None when nothing eligible."""
        eligible, bad = self.totals(since, until)
        return bad / eligible if eligible > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket_seconds": self.bucket_seconds,
            "keep_seconds": self.keep_seconds,
            "newest": self._newest,
            "buckets": [[k, v[0], v[1]] for k, v in sorted(self._buckets.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MinuteLedger:
        ledger = cls(d["bucket_seconds"], d["keep_seconds"])
        ledger._newest = d.get("newest")
        ledger._buckets = {int(k): [float(e), float(b)] for k, e, b in d.get("buckets", [])}
        return ledger


# The tiers of a 30-day ledger, in one-minute buckets: every later tier's granule is a
# multiple of the one before. Other periods scale them (see _Layout).
_GRANULES_30D = (1, 5, 30, 120, 360)
# Each sliding window's start is resolved to at most 1/_RESOLUTION of the window.
_RESOLUTION = 12
# The lookback of projected_exhaustion, a sliding window like the rule windows.
LOOKBACK_SECONDS = 3600
_ANCHORS = 3
LEDGER_FORMAT = 2


class _Layout:
    """The tiers of every ledger of one shape (bucket and period): shared, not per series.

    Tier 0 keeps one-minute buckets for the youngest data; each older tier keeps coarser
    buckets. Each sliding window — the rule windows of :func:`burn_rules` and the projection
    lookback — is given to the coarsest tier whose granule is at most 1/12 of the window, and
    the tiers are just long enough to hold the bucket where each of their windows starts."""

    __slots__ = ("bucket", "granules", "counts", "offsets", "rows", "widths", "reach", "_coarse",
                 "_recent")

    _cache: dict[tuple[int, float], _Layout] = {}  # noqa: RUF012 - a cache of immutable shapes

    def __init__(self, bucket: int, period: float) -> None:
        self.bucket = bucket
        windows = [w for rule in burn_rules(period) for w in rule[1:3]] + [LOOKBACK_SECONDS]
        edges = sorted({max(1, math.ceil(w / bucket)) for w in windows})
        self.widths = frozenset(n for w in windows
                                for n in (math.floor(w / bucket), math.ceil(w / bucket)))
        scale = period / PERIOD_30D * 60 / bucket
        chain: list[int] = [1]
        for g in _GRANULES_30D[1:]:
            granule = max(chain[-1], int(g * scale) // chain[-1] * chain[-1])
            if granule > chain[-1]:
                chain.append(granule)
        deepest: dict[int, int] = {}  # tier -> the oldest window start it must hold
        for edge in edges:
            tier = max(t for t, g in enumerate(chain) if t == 0 or g * _RESOLUTION <= edge)
            deepest[tier] = max(deepest.get(tier, 0), edge)
        granules, counts = [], []
        reached = 0  # the youngest age (in buckets) a tier may start at, at worst
        for tier, granule in enumerate(chain):
            if tier not in deepest:
                continue
            need = deepest[tier] - reached
            # tier 0 starts at age `count`; a later tier reaches at least 1 + (count - 1) ×
            # granule beyond where it starts (its newest bucket may be partly younger)
            count = need if tier == 0 else math.ceil(max(0, need - 1) / granule) + 1
            granules.append(granule)
            counts.append(count)
            reached += 1 + (count - 1) * granule if tier else count
        self.granules, self.counts = tuple(granules), tuple(counts)
        self.offsets = tuple(sum(counts[:t]) for t in range(len(counts)))
        self.rows = sum(counts)
        self.reach = reached
        self._coarse = tuple(zip(granules[1:], counts[1:], strict=True))
        self._recent: tuple[tuple[int | None, list[int]], ...] = ((None, []), (None, []))

    @classmethod
    def of(cls, bucket: int, period: float) -> _Layout:
        key = (bucket, float(period))
        layout = cls._cache.get(key)
        if layout is None:
            layout = cls._cache[key] = cls(bucket, period)
        return layout

    def bounds(self, newest: int) -> list[int]:
        """Tier t holds buckets [b[t+1], b[t]); b[0] is one past the newest bucket.

        The series of a regime share their window ends, so the last two answers are kept."""
        recent = self._recent
        if recent[0][0] == newest:
            return recent[0][1]
        if recent[1][0] == newest:
            return recent[1][1]
        top = newest + 1 - self.counts[0]
        bounds = [newest + 1, top]
        for g, n in self._coarse:
            top = ((top - 1) // g - n + 1) * g
            bounds.append(top)
        self._recent = ((newest, bounds), recent[0])
        return bounds


class BudgetLedger:
    """Good/bad seconds of one series, for the burn-rate windows and the conformance period,
    in bounded, compact state (about 1.6 KB for a 30-day period, whatever the history).

    Convention: availability feeds eligible = up + down seconds and bad = down seconds of each
    window. Other parameters feed one entry per evaluated window with eligible = window length
    and bad = window length if the window breached else 0 — the error ratio is then the share
    of time spent in breaching windows.

    Figures are those of :class:`MinuteLedger` (one bucket a minute, a query ``[since,
    until)`` summing the buckets whose start lies in it), kept compactly:

    * **Tiers** (:class:`_Layout`): one-minute buckets for the last half hour, then coarser
      buckets for older time, as deep as the longest burn-rate window. A sliding window whose
      start falls inside a coarse bucket takes the bucket's share by time. For a 30-day period
      the granules are 1 min up to 31 min of age, 5 min up to 2 h 11 min, 30 min up to 7 h 11
      min, 2 h up to 29 h 11 min and 6 h up to 3 days 5 h, so a window ending at ``now`` is
      EXACT when: 5 m and 30 m windows — always (``now`` on a minute); 1 h (and the projection
      lookback) and 2 h — ``now`` on 5 minutes; 6 h — on 30 minutes; 1 d — on 2 hours; 3 d —
      on 6 hours. Otherwise it is exact when the bad time inside that one start bucket is
      spread evenly (a steady burn), and in any case off by at most that bucket's share, at
      most 1/12 of the window (often much less). Other periods scale the granules.
    * **Running sums** for window starts that stay fixed while ``now`` moves — the period
      start: the first query from a start that is not a sliding window's opens a running sum
      from it (the three most recently used are kept). The period's bad and eligible time are
      therefore exact whenever that first query was: the period start was then within the
      one-minute tier, on a granule boundary, or older than the series' first data.
    * Data older than ``keep_seconds`` before the newest bucket is ignored, as before.
    """

    __slots__ = ("bucket_seconds", "keep_seconds", "period_seconds", "_layout", "_e", "_b",
                 "_newest", "_first", "_anchors")

    def __init__(self, bucket_seconds: int, keep_seconds: float,
                 period_seconds: float | None = None) -> None:
        """``keep_seconds``: how far back data counts (the longest conformance period, at
        least the longest rule window); ``period_seconds``: the nominal period the burn rules
        are scaled by (default ``keep_seconds``), which shapes the tiers."""
        if bucket_seconds <= 0 or keep_seconds <= 0:
            raise ValueError("bucket_seconds and keep_seconds must be positive")
        self.bucket_seconds = bucket_seconds
        self.keep_seconds = keep_seconds
        self.period_seconds = keep_seconds if period_seconds is None else period_seconds
        if self.period_seconds <= 0:
            raise ValueError("period_seconds must be positive")
        self._layout = _Layout.of(bucket_seconds, self.period_seconds)
        # eligible and bad seconds: the tier rows, then the running sum of everything, then
        # one row a running sum from a fixed start (8 bytes a value)
        rows = self._layout.rows + 1 + _ANCHORS
        self._e = array("d", (0.0,)) * rows
        self._b = array("d", (0.0,)) * rows
        self._newest: int | None = None
        self._first: int | None = None  # the oldest bucket ever fed
        self._anchors: list[int] = []  # bucket index of each running sum, most recent first

    def __len__(self) -> int:
        return len(self._e)

    def nbytes(self) -> int:
        """Bytes this ledger holds (the shared layout not counted)."""
        return (sys.getsizeof(self) + sys.getsizeof(self._e) + sys.getsizeof(self._b)
                + sys.getsizeof(self._anchors) + 32 * len(self._anchors))

    # --- writing --------------------------------------------------------------------------
    def _row(self, index: int, bounds: list[int]) -> int | None:
        layout = self._layout
        for t in range(len(layout.counts)):
            if bounds[t + 1] <= index < bounds[t]:
                return layout.offsets[t] + (index // layout.granules[t]) % layout.counts[t]
        return None

    def _advance(self, newest: int) -> None:
        """Move to a new newest bucket: data leaving a tier goes into the next (or away)."""
        layout, e, b = self._layout, self._e, self._b
        old = layout.bounds(self._newest)
        new = layout.bounds(newest)
        self._newest = newest
        for t in range(len(layout.counts) - 1, -1, -1):
            g, n, off = layout.granules[t], layout.counts[t], layout.offsets[t]
            first, stop = old[t + 1] // g, min(-(-old[t] // g), new[t + 1] // g)
            for c in range(first, stop):
                row = off + c % n
                value_e, value_b = e[row], b[row]
                if value_e or value_b:
                    e[row] = b[row] = 0.0
                    target = self._row(c * g, new)
                    if target is not None:
                        e[target] += value_e
                        b[target] += value_b

    def _drop_anchors_before(self, cutoff: int) -> None:
        """A running sum from before the kept time no longer says what the ledger holds."""
        base = self._layout.rows + 1
        kept = [(at, self._e[base + i], self._b[base + i])
                for i, at in enumerate(self._anchors) if at >= cutoff]
        self._anchors = [at for at, _, _ in kept]
        for i in range(_ANCHORS):
            self._e[base + i], self._b[base + i] = kept[i][1:] if i < len(kept) else (0.0, 0.0)

    def add(self, start: float, end: float, eligible: float, bad: float) -> None:
        """Spread ``eligible``/``bad`` seconds of ``[start, end)`` over the buckets it overlaps,
        proportionally to the overlap (``end <= start``: all into the bucket of ``start``)."""
        if eligible == 0 and bad == 0:
            return
        size = self.bucket_seconds
        first = math.floor(start / size)
        last = math.ceil(end / size) - 1 if end > start else first
        if self._newest is None:
            self._newest = self._first = last
        elif last > self._newest:
            self._advance(last)
        cutoff = self._newest + 1 - max(1, math.ceil(self.keep_seconds / size))
        if self._anchors and min(self._anchors) < cutoff:
            self._drop_anchors_before(cutoff)
        if last < cutoff:
            return
        e, b, layout = self._e, self._b, self._layout
        bounds = layout.bounds(self._newest)
        self._first = min(self._first, max(first, cutoff))
        base = layout.rows
        if last == first:
            row = self._row(first, bounds)
            if row is not None:
                e[row] += eligible
                b[row] += bad
            e[base] += eligible
            b[base] += bad
            for i, at in enumerate(self._anchors):
                if first >= at:
                    e[base + 1 + i] += eligible
                    b[base + 1 + i] += bad
            return
        span = end - start
        for t in range(len(layout.counts)):
            lo, hi = max(first, cutoff, bounds[t + 1]), min(last + 1, bounds[t])
            if lo >= hi:
                continue
            g, n, off = layout.granules[t], layout.counts[t], layout.offsets[t]
            for c in range(lo // g, (hi - 1) // g + 1):
                share = (min(end, min((c + 1) * g, hi) * size)
                         - max(start, max(c * g, lo) * size)) / span
                if share > 0:
                    e[off + c % n] += eligible * share
                    b[off + c % n] += bad * share
        for i, at in enumerate((cutoff, *self._anchors)):
            if last >= at:
                share = (end - max(start, max(at, cutoff) * size)) / span
                e[base + i] += eligible * share
                b[base + i] += bad * share

    # --- reading --------------------------------------------------------------------------
    def _range(self, lo: int, hi: int) -> tuple[float, float]:
        """Tier sums over buckets [lo, hi), a coarse bucket cut by an end taken by share."""
        layout, e, b = self._layout, self._e, self._b
        bounds = layout.bounds(self._newest)
        eligible = bad = 0.0
        for t in range(len(layout.counts)):
            a, z = max(lo, bounds[t + 1]), min(hi, bounds[t])
            if a >= z:
                continue
            g, n, off = layout.granules[t], layout.counts[t], layout.offsets[t]
            c_first, c_last = a // g, (z - 1) // g
            for c in (c_first, c_last) if c_last > c_first else (c_first,):
                e0, e1 = max(c * g, bounds[t + 1]), min((c + 1) * g, bounds[t])
                share = (min(e1, z) - max(e0, a)) / (e1 - e0)
                eligible += e[off + c % n] * share
                bad += b[off + c % n] * share
            if c_last - c_first > 1:  # whole buckets between: a slice of the ring (or two)
                i, j = (c_first + 1) % n, c_last % n
                if i < j:
                    eligible += sum(e[off + i:off + j])
                    bad += sum(b[off + i:off + j])
                else:
                    eligible += sum(e[off + i:off + n]) + sum(e[off:off + j])
                    bad += sum(b[off + i:off + n]) + sum(b[off:off + j])
        return eligible, bad

    def totals(self, since: float, until: float) -> tuple[float, float]:
        """(eligible, bad) seconds of the buckets starting in ``[since, until)``."""
        newest = self._newest
        if newest is None:
            return 0.0, 0.0
        size = self.bucket_seconds
        lo, hi = math.ceil(since / size), math.ceil(until / size)
        if hi <= lo:
            return 0.0, 0.0
        anchors, e, b = self._anchors, self._e, self._b
        base = self._layout.rows + 1
        if lo in anchors:
            i = anchors.index(lo)
            if i:  # most recently used first
                anchors.insert(0, anchors.pop(i))
                e[base:base + i + 1] = array("d", [e[base + i], *e[base:base + i]])
                b[base:base + i + 1] = array("d", [b[base + i], *b[base:base + i]])
            eligible, bad = e[base], b[base]
            if hi <= newest:
                later = self._range(hi, newest + 1)
                eligible, bad = eligible - later[0], bad - later[1]
            return eligible, bad
        eligible, bad = self._range(lo, hi)
        if hi - lo not in self._layout.widths and lo <= newest:
            # a start that stays put while windows pass: keep a running sum from it, when
            # everything fed since is known — within the tiers, or all the ledger ever had
            keep = max(1, math.ceil(self.keep_seconds / size))
            if lo <= self._first and self._first > newest - keep:
                whole = (e[base - 1], b[base - 1])
                if hi > newest:
                    eligible, bad = whole
            elif lo >= self._layout.bounds(newest)[-1]:
                whole = (eligible, bad) if hi > newest else self._range(lo, newest + 1)
            else:
                return eligible, bad
            if len(anchors) == _ANCHORS:
                anchors.pop()
            anchors.insert(0, lo)
            n = len(anchors)
            e[base + 1:base + n] = e[base:base + n - 1]
            b[base + 1:base + n] = b[base:base + n - 1]
            e[base], b[base] = whole
        return eligible, bad

    def error_ratio(self, since: float, until: float) -> float | None:
        """bad / eligible over ``[since, until)``; None when nothing eligible."""
        eligible, bad = self.totals(since, until)
        return bad / eligible if eligible > 0 else None

    # --- checkpoints ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Compact and versioned: the cells as base64 of zlib-compressed little-endian
        float64s (eligible seconds, then bad seconds)."""
        cells = self._e + self._b
        if sys.byteorder != "little":
            cells.byteswap()
        return {
            "format": LEDGER_FORMAT,
            "bucketSeconds": self.bucket_seconds,
            "keepSeconds": self.keep_seconds,
            "periodSeconds": self.period_seconds,
            "newest": self._newest,
            "first": self._first,
            "anchors": list(self._anchors),
            "cells": base64.b64encode(zlib.compress(cells.tobytes(), 1)).decode(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BudgetLedger:
        """Raises :class:`LedgerFormatError` for a ledger of the old minute format."""
        if d.get("format") != LEDGER_FORMAT:
            raise LedgerFormatError(f"ledger format {d.get('format', 1)!r} is not "
                                    f"{LEDGER_FORMAT}")
        ledger = cls(int(d["bucketSeconds"]), float(d["keepSeconds"]),
                     float(d.get("periodSeconds", d["keepSeconds"])))
        ledger._newest = d["newest"]
        ledger._first = d["first"]
        ledger._anchors = [int(a) for a in d["anchors"]]
        cells = array("d")
        cells.frombytes(zlib.decompress(base64.b64decode(d["cells"])))
        if sys.byteorder != "little":
            cells.byteswap()
        rows = len(ledger._e)
        if len(cells) != 2 * rows:
            raise LedgerFormatError("ledger cells do not match the layout")
        ledger._e, ledger._b = cells[:rows], cells[rows:]
        return ledger


class LedgerFormatError(ValueError):
    """A checkpointed ledger in a format this version does not read (the old minute
    buckets): the evaluator rebuilds its state by replaying the log instead."""

@dataclass(frozen=True, slots=True)
class BurnAlert:
    severity: str
    long_window: float
    short_window: float
    factor: float
    long_burn: float
    short_burn: float


def burn_alerts(
    ledger: BudgetLedger, now: float, target_ratio: float, period_seconds: float
) -> list[BurnAlert]:
    """Every rule whose long AND short window burn rates both strictly exceed its factor
    (windows end at ``now``), in rule order (pages first). A window with no eligible time does
    not fire. The caller keeps the most severe."""
    fired = []
    for severity, long_w, short_w, factor in burn_rules(period_seconds):
        long_ratio = ledger.error_ratio(now - long_w, now)
        if long_ratio is None:
            continue
        long_burn = burn_rate(long_ratio, target_ratio)
        if not long_burn > factor:
            continue
        short_ratio = ledger.error_ratio(now - short_w, now)
        if short_ratio is None:
            continue
        short_burn = burn_rate(short_ratio, target_ratio)
        if short_burn > factor:
            fired.append(BurnAlert(severity, long_w, short_w, factor, long_burn, short_burn))
    return fired


def budget_denominator(period: Period, excluded_so_far: float = 0.0, members: int = 1
                       ) -> float:
    """The eligible seconds E of a conformance period, the denominator of its budget
    B × E: the period's length (times the offerings pooled in the series: a group's budget
    is in offering-seconds, as its availability is) minus the agreed-outage time excluded so
    far in the period (SLA types whose maintenance accounting is "excluded"; 0 otherwise).
    Never negative."""
    return max(0.0, period.seconds * max(1, members) - max(0.0, excluded_so_far))


def remaining_budget(
    ledger: BudgetLedger, period_start: float, now: float, target_ratio: float,
    eligible_seconds: float,
) -> float:
    """Fraction (0..1) of the period's error budget left: 1 − bad_so_far / (B × E), E the
    period's eligible seconds (:func:`budget_denominator`; the period's length when nothing
    is excluded). Bad seconds count from ``period_start`` (the period's start) to ``now``.
    Time-based SLO; may be negative, reported as is. With B × E = 0: 1.0 if nothing bad yet,
    else −inf."""
    _, bad = ledger.totals(period_start, now)
    allowed = error_budget(target_ratio) * eligible_seconds
    if allowed <= 0:
        return 1.0 if bad <= 0 else -math.inf
    return 1.0 - bad / allowed


def projected_exhaustion(
    ledger: BudgetLedger, period_start: float, now: float, target_ratio: float,
    eligible_seconds: float, lookback: float = 3600, period_end: float | None = None,
) -> float | None:
    """Epoch seconds when the budget B × E runs out at the current burn (bad seconds per
    second over ``[now - lookback, now)``). None when not burning or when the projection falls
    after ``period_end`` (default ``period_start + eligible_seconds``). When the budget is
    already exhausted (and still burning) returns ``now``."""
    if lookback <= 0:
        raise ValueError("lookback must be positive")
    _, recent_bad = ledger.totals(now - lookback, now)
    rate = recent_bad / lookback
    if rate <= 0:
        return None
    _, bad = ledger.totals(period_start, now)
    left = error_budget(target_ratio) * eligible_seconds - bad
    when = now + left / rate if left > 0 else now
    end = period_start + eligible_seconds if period_end is None else period_end
    return when if when <= end else None


# --- missing data --------------------------------------------------------------------------
def gaps(samples: list[Sample], start: float, end: float) -> list[tuple[float, float]]:
    """The parts of ``[start, end)`` that no sample covers, in order.

    Interval samples cover ``[observed_at - interval, observed_at)``; a status sample covers
    from its time to ``end`` (it holds until the next one). Instantaneous values cover no
    time. Under the ``counted-as-down`` treatment of missing data, these parts count as down.
    """
    covered: list[tuple[float, float]] = []
    first_status = None
    for s in samples:
        if s.status is not None:
            t = max(s.observed_at, start)
            first_status = t if first_status is None else min(first_status, t)
            continue
        iv = s.interval_seconds
        if s.value is None or iv is None or iv <= 0 or s.value != s.value:
            continue
        a, b = max(s.observed_at - iv, start), min(s.observed_at, end)
        if b > a:
            covered.append((a, b))
    if first_status is not None and first_status < end:
        covered.append((first_status, end))
    covered.sort()
    found: list[tuple[float, float]] = []
    at = start
    for a, b in covered:
        if a > at:
            found.append((at, a))
        at = max(at, b)
    if at < end:
        found.append((at, end))
    return found
