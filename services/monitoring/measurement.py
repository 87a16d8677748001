"""The measured value of one window (docs/sla-figures.md): the samples of a window
turned into the value compared with a standard's levels — availability pooled over the
offerings (``availability``), the other aggregations (mean, sum, ratio, min, max,
nearest-rank percentiles), units, agreed outages' share, and the parts of a window no
sample covers (missing data).

Conventions the callers must know:

* Times are float epoch seconds (UTC); ``shared.times`` converts to and from text and
  datetimes.
* Everything is deterministic: inputs are put in a canonical order before any floating point
  accumulation (and plain sums use :func:`math.fsum`), so the arrival order of samples never
  changes a result.
* Units (the convention on the wire, see docs/sla-figures.md): a SHARE — the up fraction of
  an availability sample, a ``ratio`` sample — is a fraction 0..1 here; a measured VALUE
  that is compared with a standard's levels is in the unit the standard's parameter states.
  :func:`measure` returns availability in PERCENT (0..100) and ``ratio`` as a fraction;
  :func:`to_unit` converts a fraction to the unit a parameter states."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from services.monitoring.availability import (
    Availability,
    availability_and_count,
    pooled_availability,
)

_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")

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
            part, used = availability_and_count(by_offering[offering_id], start, end, outages,
                                       accounting)
            parts.append(part)
            without.append(part if not outages else availability_and_count(
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
