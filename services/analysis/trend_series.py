"""Trend analysis as the service answers it: the series of a question read from the
stored window summaries — a point per day, week or month for each group and parameter —
each series tested for a monotonic trend (``trends.py``: Mann-Kendall with Sen's slope,
seasonal, autocorrelation-corrected) and, when it deteriorates, projected to the
standard's conformance target (docs/trend-analysis.md, "The service").

A point is the period's figure, as aggregate analysis defines it: availability **pooled by
time** over every window of the group ending in the period (Σ (eligible − down) /
Σ eligible, in the standard's unit), never a mean of percentages; other parameters, the
windows' measured values weighted by their samples (a window of 60 samples counts 60
times one of 1). A period with no window is a gap (NaN): the test skips it and keeps its
place, so a gap never shortens time. Periods are UTC calendar days, ISO weeks (Monday
first) and months; a window belongs to the period containing its end (end inclusive), as
conformance periods count it. The first and last points cover only their part inside the
asked period.

The statement (:func:`statement`) sums per group, parameter and **day** in SQL, so what
crosses to Python is a row per group, parameter and day; weeks and months are folded
from the days here (sums of sums), and the functions below are pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from services.analysis import aggregates, trends
from shared import times
from shared.readmodel import Column

DAY = 86400.0
GRANULARITIES = ("day", "week", "month")
#: Nominal length of a point, to turn a horizon's duration into points.
NOMINAL = {"day": DAY, "week": 7 * DAY, "month": 365.2425 / 12 * DAY}
#: The season of the seasonal test, by granularity, unless the question sets one: the
#: week of days, the year of weeks, the year of months.
SEASONS = {"day": 7, "week": 52, "month": 12}
TESTS = ("original", "seasonal", "hamed_rao", "yue_wang")
#: Points a series may have (a test is quadratic in them: 5,000 days is 13 years).
MAX_POINTS = 5000
#: How far a crossing may be projected (ten years).
MAX_HORIZON = 3660 * DAY
#: What a trend may be grouped by: the summaries' inventory facts.
DIMENSIONS = aggregates.DIMENSIONS
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class TrendQuery:
    """What a trend analysis is asked: the period ``(start, end]`` in epoch seconds
    (windows ending in it), the granularity of its points, the dimensions a series is
    per (one series per group and parameter), equality filters, one parameter or each,
    the scope of the summaries, the test with its significance level ``alpha``, the
    seasonal test's ``season`` (points a cycle), the corrected tests' ``lag``, and how
    far past the last point a crossing of the target is projected (``horizon``,
    seconds)."""

    start: float
    end: float
    granularity: str = "day"
    group_by: tuple[str, ...] = ("productOfferingId",)
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    parameter: str | None = None
    scope_type: str = "purchasedOffering"
    test: str = "original"
    alpha: float = trends.DEFAULT_ALPHA
    season: int | None = None
    lag: int | None = None
    horizon: float = 90 * DAY

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity: one of {', '.join(GRANULARITIES)}")
        if self.test not in TESTS:
            raise ValueError(f"test: one of {', '.join(TESTS)}")
        if not self.end > self.start:
            raise ValueError("the period must end after it starts")

    @property
    def period(self) -> int | None:
        """The seasonal test's period (None for the others)."""
        if self.test != "seasonal":
            return None
        return self.season or SEASONS[self.granularity]

    @property
    def horizon_points(self) -> float:
        return self.horizon / NOMINAL[self.granularity]

    def as_aggregate(self) -> aggregates.AggregateQuery:
        return aggregates.AggregateQuery(start=self.start, end=self.end,
                                         filters=self.filters, group_by=self.group_by,
                                         parameter=self.parameter,
                                         scope_type=self.scope_type)

    def to_dict(self) -> dict[str, Any]:
        """The question as recorded with its run (and shown on the wire)."""
        return {"start": self.start, "end": self.end, "granularity": self.granularity,
                "group_by": list(self.group_by),
                "filters": {k: list(v) for k, v in self.filters.items()},
                "parameter": self.parameter, "scope_type": self.scope_type,
                "test": self.test, "alpha": self.alpha, "season": self.season,
                "lag": self.lag, "horizon": self.horizon}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrendQuery:
        return cls(start=float(data["start"]), end=float(data["end"]),
                   granularity=data["granularity"], group_by=tuple(data["group_by"]),
                   filters={k: tuple(v) for k, v in (data.get("filters") or {}).items()},
                   parameter=data.get("parameter"), scope_type=data["scope_type"],
                   test=data["test"], alpha=float(data["alpha"]),
                   season=data.get("season"), lag=data.get("lag"),
                   horizon=float(data["horizon"]))


# --- the statements ---------------------------------------------------------------------
def _day(end_column: str, postgres: bool) -> str:
    """The UTC day containing a window's end, end inclusive (a window ending at midnight
    is the day before's), as days since 1970-01-01."""
    shifted = f"(({end_column}) - 0.000001) / 86400"
    return f"FLOOR({shifted})" if postgres else f"CAST({shifted} AS INTEGER)"


def statements(query: TrendQuery, table: str, columns: Mapping[str, Column],
               postgres: bool = False) -> dict[str, tuple[str, list[Any]]]:
    """The read-only statements of a question, each one pass over the period's rows:

    - ``days``: a row per group, parameter and day with the sums a point is made of;
    - ``offerings``: the product offerings each series covers (what its result is
      logged on in the inventory).

    Group keys come out as ``k0``, ``k1`` …, the parameter as ``parameter``."""
    c = {name: col.sql for name, col in columns.items()}
    keys = [c[name] for name in query.group_by] + [c["parameter"]]
    selected = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys[:-1]))
    selected = (selected + ", " if selected else "") + f"{c['parameter']} AS parameter"
    where, params = aggregates.rows_where(query.as_aggregate(), columns)
    day = _day(c["windowEnd"], postgres)
    weight = (f"CASE WHEN {c['value']} IS NULL THEN 0 "
              f"ELSE COALESCE({c['sampleCount']}, 1) END")
    days = (
        f"SELECT {selected}, {day} AS day, COUNT(*) AS windows, "
        f"SUM({c['eligibleSeconds']}) AS eligible, SUM({c['badSeconds']}) AS bad, "
        f"SUM({c['value']} * ({weight})) AS weighted, SUM({weight}) AS weight, "
        f"MIN({c['conformanceTarget']}) AS target_min, "
        f"MAX({c['conformanceTarget']}) AS target_max, MIN({c['comparator']}) AS comparator, "
        f"MIN({c['unit']}) AS unit, MIN({c['aggregation']}) AS aggregation "
        f"FROM {table}{where} GROUP BY {', '.join(keys)}, {day}")
    offerings = (
        f"SELECT DISTINCT {selected}, {c['productOfferingId']} AS offering "
        f"FROM {table}{where} AND {c['productOfferingId']} IS NOT NULL")
    return {"days": (days, params), "offerings": (offerings, list(params))}


# --- the calendar of points -------------------------------------------------------------
def _day_of(moment: float) -> int:
    """The day containing ``moment``, end inclusive (as the statement computes it)."""
    return math.floor((moment - 0.000001) / DAY)


def bucket_of_day(day: int, granularity: str) -> int:
    """The point a day falls in, numbered from 1970's: its day, its ISO week (1970-01-01
    was a Thursday: week 0 runs from Monday 1969-12-29), or its month."""
    if granularity == "day":
        return day
    if granularity == "week":
        return (day + 3) // 7
    moment = _EPOCH_DAY + timedelta(days=day)
    return (moment.year - 1970) * 12 + moment.month - 1


def bucket_start(bucket: int, granularity: str) -> float:
    """When point number ``bucket`` starts, epoch seconds (any number, past or future)."""
    if granularity == "day":
        return bucket * DAY
    if granularity == "week":
        return (bucket * 7 - 3) * DAY
    year, month = divmod(bucket, 12)
    return datetime(1970 + year, month + 1, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Calendar:
    """The points of a question: the first point's number and how many there are."""

    first: int
    count: int
    granularity: str

    @classmethod
    def of(cls, query: TrendQuery) -> Calendar:
        # The first window ending after the start ends on the start's own day.
        first = bucket_of_day(math.floor(query.start / DAY), query.granularity)
        last = bucket_of_day(_day_of(query.end), query.granularity)
        return cls(first, max(0, last - first + 1), query.granularity)

    def position(self, day: int) -> int:
        return bucket_of_day(day, self.granularity) - self.first

    def start_of(self, position: int) -> float:
        return bucket_start(self.first + position, self.granularity)

    def time_at(self, position: float) -> float:
        """The moment a (fractional) position on the series' axis stands for: point k
        is its period's start, and a fraction is that share of the period."""
        whole = math.floor(position)
        start = self.start_of(whole)
        return start + (position - whole) * (self.start_of(whole + 1) - start)


# --- series ----------------------------------------------------------------------------------
@dataclass
class Series:
    """One group's parameter as points, with what it is judged against: the strictest
    target its windows carried, the comparator (GE/GT: higher is better) and unit."""

    key: tuple[Any, ...]
    parameter: str
    values: np.ndarray
    windows: int = 0
    unit: str | None = None
    aggregation: str | None = None
    comparator: str | None = None
    target: float | None = None
    offerings: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool | None:
        """Whether the parameter's good direction is up (a floor: availability,
        throughput), down (a ceiling: latency, loss), or neither (EQ, or unknown)."""
        op = (self.comparator or "").lstrip(".").upper()
        if op in ("GE", "GT"):
            return True
        if op in ("LE", "LT"):
            return False
        return None


@dataclass
class _Sums:
    eligible: float = 0.0
    bad: float = 0.0
    weighted: float = 0.0
    weight: float = 0.0

    def add(self, row: Mapping[str, Any]) -> None:
        self.eligible += row.get("eligible") or 0.0
        self.bad += row.get("bad") or 0.0
        self.weighted += row.get("weighted") or 0.0
        self.weight += row.get("weight") or 0.0

    def point(self, unit: str | None) -> float:
        pooled = aggregates.pooled_availability(self.eligible, self.bad)
        if pooled is not None:
            value = aggregates.in_unit(pooled, unit)
            return math.nan if value is None else value
        return self.weighted / self.weight if self.weight else math.nan


def series_of(query: TrendQuery, days: Iterable[Mapping[str, Any]],
              offerings: Iterable[Mapping[str, Any]]) -> list[Series]:
    """The series of a question from the statements' rows, ordered by group and
    parameter (the answer's order, the same every time)."""
    calendar = Calendar.of(query)
    width = len(query.group_by)
    sums: dict[tuple[Any, ...], dict[int, _Sums]] = {}
    found: dict[tuple[Any, ...], Series] = {}
    targets: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
    for row in days:
        key = tuple(row[f"k{i}"] for i in range(width)) + (row["parameter"],)
        position = calendar.position(int(row["day"]))
        if not 0 <= position < calendar.count:
            continue
        series = found.get(key)
        if series is None:
            series = found[key] = Series(key[:-1], str(key[-1]),
                                         np.full(calendar.count, np.nan),
                                         unit=row.get("unit"),
                                         aggregation=row.get("aggregation"),
                                         comparator=row.get("comparator"))
            sums[key] = {}
        series.windows += int(row.get("windows") or 0)
        sums[key].setdefault(position, _Sums()).add(row)
        low, high = targets.get(key, (None, None))
        targets[key] = (_lower(low, row.get("target_min")),
                        _higher(high, row.get("target_max")))
    for key, series in found.items():
        for position, period in sums[key].items():
            series.values[position] = period.point(series.unit)
        series.target = aggregates.strictest_target(series.comparator, *targets[key])
    for row in offerings:
        key = tuple(row[f"k{i}"] for i in range(width)) + (row["parameter"],)
        if key in found:
            found[key].offerings.append(str(row["offering"]))
    for series in found.values():
        series.offerings.sort()
    return [found[k] for k in sorted(found, key=lambda k: tuple(
        "" if v is None else str(v) for v in k))]


def _lower(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


# --- the result of a series -------------------------------------------------------------
def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _iso(moment: float | None) -> str | None:
    return times.iso_or_none(moment)


def analyse(query: TrendQuery, series: Series) -> dict[str, Any]:
    """One series' result as its run records it: the test's figures (pymannkendall's,
    NaN as null), whether it deteriorates for its parameter, and for a deteriorating one
    with a target the projected crossing — its date, the dates of the slope's confidence
    limits (earliest, latest; null where that line does not cross), or "not within the
    horizon" — and the points it was computed from."""
    calendar = Calendar.of(query)
    values = series.values
    result = trends.mann_kendall(values, query.test, alpha=query.alpha,
                                 period=query.period, lag=query.lag)
    direction = series.higher_is_better
    deteriorating = direction is not None and bool(trends.deteriorating(result, direction))
    projection: dict[str, Any] | None = None
    if deteriorating and series.target is not None:
        projected = trends.project_crossing(
            values, series.target, higher_is_better=bool(direction),
            horizon=query.horizon_points, test=query.test, alpha=query.alpha,
            period=query.period, lag=query.lag)

        def when(position: float | None) -> str | None:
            return None if position is None else _iso(calendar.time_at(position))

        projection = {
            "status": projected.status,
            "crossing_date_time": when(projected.crossing),
            "earliest_date_time": when(projected.earliest),
            "latest_date_time": when(projected.latest),
            "slope_low": _finite(projected.slope_low),
            "slope_high": _finite(projected.slope_high),
            "horizon_end_date_time": when(projected.horizon_end),
        }
    return {
        "group": dict(zip(query.group_by, series.key, strict=True)),
        "parameter": series.parameter,
        "unit": series.unit,
        "aggregation": series.aggregation,
        "comparator": series.comparator,
        "conformance_target": series.target,
        "higher_is_better": direction,
        "window_count": series.windows,
        "point_count": calendar.count,
        "n": result.n,
        "trend": result.trend,
        "h": bool(result.h),
        "p": _finite(result.p),
        "z": _finite(result.z),
        "tau": _finite(result.tau),
        "s": _finite(result.s),
        "var_s": _finite(result.var_s),
        "slope": _finite(result.slope),
        "intercept": _finite(result.intercept),
        "deteriorating": deteriorating,
        "projection": projection,
        "product_offering_ids": list(series.offerings),
        "points": [{"start_date_time": _iso(calendar.start_of(i)), "value": _finite(v)}
                   for i, v in enumerate(values.tolist())],
    }


def severity(result: Mapping[str, Any]) -> str:
    """How an SLA manager should read a result: a deteriorating series already past its
    target is major, one projected to cross within the horizon minor; anything else is
    information."""
    projection = result.get("projection") or {}
    if not result.get("deteriorating"):
        return "info"
    if projection.get("status") == "already crossed":
        return "major"
    if projection.get("status") == "crossing":
        return "minor"
    return "info"


def summary(result: Mapping[str, Any], granularity: str) -> str:
    """One line saying what was found, for the inventory's log and a reader's list."""
    group = ", ".join(f"{k} {v}" for k, v in result["group"].items()) or "everything asked"
    head = f"{result['parameter']} of {group}: "
    if result["trend"] == "no trend":
        n = result["n"]
        return head + f"no trend over {n} {granularity}{'' if n == 1 else 's'}"
    unit = f" {result['unit']}" if result.get("unit") else ""
    slope = result.get("slope")
    line = head + f"{result['trend']} (Sen slope {slope:.4g}{unit} a {granularity}, " \
        f"p {result['p']:.3g})" if slope is not None and result.get("p") is not None \
        else head + result["trend"]
    projection = result.get("projection")
    if projection is None:
        return line
    status = projection["status"]
    if status == "crossing":
        return line + f"; projected to cross {result['conformance_target']}{unit} on " \
                      f"{projection['crossing_date_time'][:10]}"
    if status == "already crossed":
        return line + f"; already past {result['conformance_target']}{unit}"
    return line + "; not projected to cross its target within the horizon"
