"""Availability of a window (docs/sla-figures.md, "Availability"): up, down and
excluded seconds of one purchased offering from its interval and status samples, agreed
outages accounted as the SLA type says (excluded, counted as up, counted as down), and
pooled over offerings by time (never a mean of percentages)."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.monitoring.measurement import Outage, Sample


ACCOUNTINGS = ("excluded", "counted-as-up", "counted-as-down")

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


def availability_and_count(
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
    return availability_and_count(samples, start, end, outages, accounting)[0]


def pooled_availability(parts: list[Availability]) -> Availability:
    """Time-weighted pooling across offerings: sums of seconds, never a mean of percentages."""
    return Availability(
        math.fsum(p.up for p in parts),
        math.fsum(p.down for p in parts),
        math.fsum(p.excluded for p in parts),
        math.fsum(p.planned_down for p in parts),
    )
