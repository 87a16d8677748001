"""Windows and conformance periods (docs/sla-figures.md, "Windows" and "Calendar
conformance periods"): the tumbling evaluation windows, aligned to the epoch, and the
calendar periods (months, weeks, days in the SLA type's time zone) that budgets are kept
over. Times are float epoch seconds (UTC)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.durations import duration_parts, duration_seconds


def window_bounds(at: float, window_seconds: int) -> tuple[float, float]:
    """The tumbling window ``[start, end)`` holding ``at``; windows are aligned to the epoch."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    start = math.floor(at / window_seconds) * window_seconds
    return float(start), float(start + window_seconds)

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
