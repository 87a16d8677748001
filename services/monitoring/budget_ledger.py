"""The budget ledgers (docs/error-budgets.md, "The bounded budget state"): good and
bad seconds of one series over its conformance period and burn-rate windows. The
``BudgetLedger`` the evaluator keeps is bounded (tiers of coarser buckets for older data)
and exact for the windows it serves; the ``MinuteLedger`` is its executable
specification."""

from __future__ import annotations

import base64
import math
import sys
import zlib
from array import array
from typing import Any

from services.monitoring.burn_rates import PERIOD_30D, burn_rules


def bucket_span(start: float, end: float, size: int) -> tuple[int, int]:
    """The first and last bucket of ``size`` seconds that ``[start, end)`` overlaps (an
    empty or reversed span: the bucket of ``start``); both ledgers spread what they are
    fed over these."""
    first = math.floor(start / size)
    return first, (math.ceil(end / size) - 1 if end > start else first)


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
        first, last = bucket_span(start, end, size)
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
        first, last = bucket_span(start, end, size)
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
        return {
            "format": LEDGER_FORMAT,
            "bucketSeconds": self.bucket_seconds,
            "keepSeconds": self.keep_seconds,
            "periodSeconds": self.period_seconds,
            "newest": self._newest,
            "first": self._first,
            "anchors": list(self._anchors),
            "cells": _pack(self._e + self._b),
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
        cells = _unpack(d["cells"])
        rows = len(ledger._e)
        if len(cells) != 2 * rows:
            raise LedgerFormatError("ledger cells do not match the layout")
        ledger._e, ledger._b = cells[:rows], cells[rows:]
        return ledger


def _pack(cells: array) -> str:
    """Cells (a fresh array: it is reordered in place) as text: base64 of the
    zlib-compressed little-endian float64s, whatever the machine's byte order."""
    if sys.byteorder != "little":
        cells.byteswap()
    return base64.b64encode(zlib.compress(cells.tobytes(), 1)).decode()


def _unpack(text: str) -> array:
    """The cells :func:`_pack` wrote, in the machine's byte order."""
    cells = array("d")
    cells.frombytes(zlib.decompress(base64.b64decode(text)))
    if sys.byteorder != "little":
        cells.byteswap()
    return cells


class LedgerFormatError(ValueError):
    """A checkpointed ledger in a format this version does not read (the old minute
    buckets): the evaluator rebuilds its state by replaying the log instead."""
