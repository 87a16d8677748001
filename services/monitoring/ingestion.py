"""Checking measurement samples on the way in: every sample is accepted or refused
with its reason — nothing is dropped silently."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.monitoring.working_set import WorkingSet
from shared.times import to_epoch

FUTURE_SKEW = 300.0  # seconds a sample may be ahead of this clock
MAX_SAMPLES = 10_000
# The largest magnitude a sample's value may have. Every aggregation of a window must be
# able to hold what it is given: with |value| <= 1e15, a sum or mean overflows only past
# 1e293 samples in one window (MAX_SAMPLES a batch, any number of batches), which no
# store holds; and 1e15 keeps whole numbers exact (below 2**53), so counters stay exact.
MAX_VALUE = 1e15


@dataclass
class Checked:
    accepted: list[list[Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # per regime: the newest observed time among the accepted samples
    newest: dict[str, float] = field(default_factory=dict)
    # a digest of the samples as sent: a batch id sent again with other samples is refused
    digest: str = ""
    # some sample is malformed (not only refused for what the service knows now)
    malformed: bool = False

    def refuse(self, index: int, field_name: str, reason: str, for_now: bool = False) -> None:
        """``for_now``: the sample is well formed, and refused for the current state (an
        unknown or unwatched series, a closed window, a clock ahead of this one)."""
        self.rejected.append({"index": index, "field": field_name, "reason": reason})
        self.malformed = self.malformed or not for_now


def _time(raw: Any) -> float:
    """An ISO 8601 time with a zone as epoch seconds. Python reads the usual form
    (``…Z`` or ``…+00:00``) directly, which gives what ``shared.times.to_epoch`` gives at a
    quarter of its cost; anything else (or nothing) goes the general way, which also
    words the refusal."""
    if type(raw) is str:
        try:
            moment = _fromisoformat(raw)
        except ValueError:
            return _time_slow(raw)
        if moment.tzinfo is not None and moment.utcoffset() is not None:
            return moment.timestamp()
    return _time_slow(raw)


_fromisoformat = datetime.fromisoformat


def _time_slow(raw: Any) -> float:
    if not isinstance(raw, str):
        raise ValueError("an ISO 8601 time with a time zone, e.g. 2026-11-25T10:00:00Z")
    return to_epoch(raw)  # refuses a time without a zone


PERCENT_UNITS = ("%", "percent")
FRACTION_UNITS = ("ratio", "fraction", "1")
SHARES = ("availability", "ratio")  # aggregations whose samples are fractions 0..1


def in_recorded_unit(value: float, unit: Any, ws: WorkingSet, po: dict[str, Any],
                     parameter: str, observed: float) -> float:
    """A sample's value in the unit monitoring records it in: a fraction 0..1 for the
    shares (availability, ratio; a sample may state ``%``), the standard's unit for every
    other parameter (a stated unit must be that one). ``ValueError`` says why not."""
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError("a unit name, e.g. % or ratio")
    level = ws.level_for(po, parameter, observed)
    if level is None:
        raise ValueError(f"no standard in force names the unit of {parameter}; send the "
                         "value without a unit")
    key = unit.strip().lower()
    if level.parameter.get("aggregation") in SHARES:
        if key in PERCENT_UNITS and 0 <= value <= 100:
            return value / 100.0
        if key in FRACTION_UNITS and 0 <= value <= 1:
            return value
        raise ValueError(f"{parameter} is a share: a fraction 0..1 (unit ratio) or 0..100 "
                         f"with unit %, not {value!r} {unit}")
    expected = level.parameter.get("unit")
    if unit.strip() != expected:
        raise ValueError(f"the standard measures {parameter} in {expected}; send it in "
                         f"{expected}, not {unit}")
    return value


def content_digest(samples: Any) -> str:
    """A digest of a batch's samples as sent (key order aside): equal for a repeat of the
    batch, different as soon as one sample differs. About a microsecond a sample (orjson);
    what orjson cannot encode (lone surrogates, integers beyond 64 bits) goes the slow way."""
    try:
        data = orjson.dumps(samples, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        data = json.dumps(samples, sort_keys=True, separators=(",", ":"),
                          default=repr).encode()
    return hashlib.sha256(data).hexdigest()


def same_samples(recorded: list[list[Any]], rejected: list[dict[str, Any]],
                 samples: Any) -> bool:
    """For a batch recorded before digests were kept: do these samples (as sent) give the
    rows it recorded? The samples it refused are skipped by index (their content was not
    kept), but their number must match."""
    refused = {r.get("index") for r in rejected}
    if not isinstance(samples, list) or len(samples) != len(recorded) + len(refused):
        return False
    kept = iter(recorded)
    try:
        for i, s in enumerate(samples):
            if i in refused:
                continue
            row = next(kept)
            value, interval = s.get("value"), s.get("intervalSeconds")
            if [s["purchasedOfferingId"], s["parameter"], _time(s["observedAt"]),
                    None if interval is None else float(interval), s.get("status")] != [
                    row[0], row[1], row[2], row[4], row[5]]:
                return False
            # A value sent in % may have been recorded as a fraction.
            if value is None or row[3] is None:
                if value is not row[3]:
                    return False
            elif row[3] != float(value) and not (s.get("unit") and row[3] == value / 100):
                return False
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, StopIteration):
        return False
    return True


def check(samples: Any, ws: WorkingSet, watermarks: dict[str, float], now: float,
          clocks: dict[str, tuple[float, float]] | None = None) -> Checked:
    """Validate samples against the working set and the regimes' watermarks.

    ``watermarks``: per regime id, the newest observed time accepted so far; a sample
    whose window closed more than the regime's allowed lateness ago is refused.
    ``clocks``: per regime id, ``(origin, until)`` of its clock: windows ending in
    ``(origin, until]`` were closed by processing time, so their samples are late too.
    """
    clocks = clocks or {}
    out = Checked(digest=content_digest(samples))
    if not isinstance(samples, list):
        out.refuse(-1, "samples", "a list of samples is required")
        return out
    if len(samples) > MAX_SAMPLES:
        out.refuse(-1, "samples", f"at most {MAX_SAMPLES} samples a batch")
        return out
    accepted, newest = out.accepted, out.newest
    # Per batch: each (purchased offering, parameter) is looked up once, and each regime's
    # bounds once: a window ending at or before ``closed`` closed on event time, one
    # ending in ``(origin, until]`` on the clock.
    seen: dict[tuple[str, str], tuple[dict[str, Any] | None, list[Any]]] = {}
    bounds: dict[str, tuple[float, float, float]] = {}
    future = now + FUTURE_SKEW
    for i, s in enumerate(samples):
        if type(s) is not dict and not isinstance(s, dict):
            out.refuse(i, "", "a sample is an object")
            continue
        po_id, parameter = s.get("purchasedOfferingId"), s.get("parameter")
        if not isinstance(po_id, str) or not po_id:
            out.refuse(i, "purchasedOfferingId", "required")
            continue
        if not isinstance(parameter, str) or not parameter:
            out.refuse(i, "parameter", "required")
            continue
        try:
            observed = _time(s.get("observedAt"))
        except (ValueError, TypeError) as exc:
            out.refuse(i, "observedAt", str(exc))
            continue
        if observed > future:
            out.refuse(i, "observedAt", "in the future (more than 5 minutes ahead)",
                       for_now=True)
            continue
        value, status, interval = s.get("value"), s.get("status"), s.get("intervalSeconds")
        if status is not None and status not in ("up", "down"):
            out.refuse(i, "status", "up or down")
            continue
        if value is None:
            if status is None:
                out.refuse(i, "value", "a value (or an up/down status) is required")
                continue
        elif type(value) is float:
            if not math.isfinite(value):
                out.refuse(i, "value", "a finite number")
                continue
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out.refuse(i, "value", "a finite number")
            continue
        if value is not None and abs(value) > MAX_VALUE:  # exact for huge JSON integers too
            out.refuse(i, "value", "at most 1e15 in magnitude (a window's sum or mean must "
                                   "be able to hold it)")
            continue
        if interval is not None and (isinstance(interval, bool)
                                     or not isinstance(interval, int | float)
                                     or not (0 < interval <= 31 * 86400)):
            out.refuse(i, "intervalSeconds", "a number of seconds, more than 0")
            continue
        key = (po_id, parameter)
        found = seen.get(key)
        if found is None:
            po = ws.purchased_offering(po_id)
            found = seen[key] = (po, ws.routes_for(po_id, parameter) if po is not None else [])
        po, routes = found
        if po is None:
            out.refuse(i, "purchasedOfferingId", f"{po_id} is not in the inventory",
                       for_now=True)
            continue
        if not routes:
            out.refuse(i, "parameter", f"no active monitoring regime watches {parameter} "
                                       f"of {po_id}", for_now=True)
            continue
        late = None
        for route in routes:
            w = route.window_seconds
            last_end = (((observed - 1e-6) // w) * w if interval else (observed // w) * w) + w
            bound = bounds.get(route.regime_id)
            if bound is None:
                mark = watermarks.get(route.regime_id)
                clock = clocks.get(route.regime_id)
                bound = bounds[route.regime_id] = (
                    -math.inf if mark is None else mark - route.lateness_seconds,
                    *(clock if clock is not None else (math.inf, -math.inf)))
            if last_end <= bound[0]:
                late = (f"late: its {route.window} window of regime {route.name!r} closed "
                        f"(allowed lateness {route.allowed_lateness})")
                break
            if bound[1] < last_end <= bound[2]:
                late = (f"late: its {route.window} window of regime {route.name!r} closed on "
                        f"the clock (processing time passed its end plus the allowed "
                        f"lateness {route.allowed_lateness})")
                break
        if late:
            out.refuse(i, "observedAt", late, for_now=True)
            continue
        if value is not None and s.get("unit") is not None:
            try:
                value = in_recorded_unit(value, s["unit"], ws, po, parameter, observed)
            except ValueError as exc:
                out.refuse(i, "unit", str(exc))
                continue
        accepted.append([po_id, parameter, observed,
                         None if value is None else float(value),
                         None if interval is None else float(interval), status])
        for route in routes:
            key_ = route.regime_id
            if observed > newest.get(key_, -math.inf):
                newest[key_] = observed
    return out
