"""Checking measurement samples on the way in: every sample is accepted or refused
with its reason — nothing is dropped silently."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
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
_TOO_LARGE = "at most 1e15 in magnitude (a window's sum or mean must be able to hold it)"


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
    quarter of its cost (and a time in UTC, the form senders use, skips asking the zone
    for its offset); anything else (or nothing) goes the general way, which also words
    the refusal."""
    if type(raw) is str:
        try:
            moment = _fromisoformat(raw)
        except ValueError:
            return _time_slow(raw)
        zone = moment.tzinfo
        if zone is _UTC or (zone is not None and moment.utcoffset() is not None):
            return moment.timestamp()
    return _time_slow(raw)


_fromisoformat = datetime.fromisoformat
_UTC = UTC


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


_get = dict.get
_tzinfo = operator.attrgetter("tzinfo")
_second = operator.itemgetter(1)
_timestamp = datetime.timestamp
_isfinite = math.isfinite
_NUMBERS = ({float}, {int}, {float, int})


def _check_columns(samples: list[Any], ws: WorkingSet, watermarks: dict[str, float],
                   now: float, clocks: dict[str, tuple[float, float]], out: Checked) -> bool:
    """The usual batch in one pass a field: every sample an object with a purchased
    offering and parameter the working set routes, a value that is a plain number within
    bounds, a time in UTC, no status, interval or unit, none late or ahead of the clock.
    Each test runs over a whole column at C speed (``map``, ``set``, ``min``/``max``)
    instead of field by field in Python, about a third of the cost a sample.

    True: ``out`` holds what :func:`check` would have found — every sample accepted, the
    same rows, the same newest times. False: some sample is not of that shape (or might
    be late); nothing was changed, and the batch goes sample by sample, which also words
    each refusal. The tests here only ever pass a batch the sample-by-sample check would
    accept whole: where a column test cannot tell (a time near a closed window), it says
    False (tests/unit/test_intake_equivalence.py holds the two to the same answers)."""
    n = len(samples)
    if set(map(type, samples)) != {dict}:
        return False
    pos = list(map(_get, samples, repeat("purchasedOfferingId", n)))
    parameters = list(map(_get, samples, repeat("parameter", n)))
    if (set(map(type, pos)) != {str} or set(map(type, parameters)) != {str}
            or not all(pos) or not all(parameters)):
        return False
    values = list(map(_get, samples, repeat("value", n)))
    kinds = set(map(type, values))
    if kinds not in _NUMBERS:
        return False
    try:
        if float in kinds and not all(map(_isfinite, values)):
            return False
    except OverflowError:  # an integer beyond any float: refused sample by sample
        return False
    if not (min(values) >= -MAX_VALUE and max(values) <= MAX_VALUE):
        return False
    for name in ("status", "intervalSeconds", "unit"):
        if list(map(_get, samples, repeat(name, n))).count(None) != n:
            return False
    times = list(map(_get, samples, repeat("observedAt", n)))
    if set(map(type, times)) != {str}:
        return False
    try:
        moments = list(map(_fromisoformat, times))
    except ValueError:
        return False
    if set(map(_tzinfo, moments)) != {_UTC}:
        return False
    observed = list(map(_timestamp, moments))
    earliest, latest = min(observed), max(observed)
    if latest > now + FUTURE_SKEW:
        return False
    lookups = ws.sample_lookups()
    keys = list(zip(pos, parameters, strict=True))
    found = list(map(lookups.get, keys))
    if None in found:
        found = [f if f is not None else ws.lookup(*k) for f, k in zip(found, keys, strict=True)]
    lists = list(map(_second, found))
    route_lists = dict(zip(map(id, lists), lists, strict=True))
    if [] in route_lists.values():  # an unknown offering (no routes) or an unwatched one
        return False
    # Late? A window's end grows with the observed time, so the earliest and latest
    # samples bound every sample's last window end, for every regime of the batch.
    seen: set[str] = set()
    for routes in route_lists.values():
        for route in routes:
            if route.regime_id in seen:
                continue
            seen.add(route.regime_id)
            w = route.window_seconds
            first_end = (earliest // w) * w + w
            last_end = (latest // w) * w + w
            mark = watermarks.get(route.regime_id)
            if mark is not None and first_end <= mark - route.lateness_seconds:
                return False
            clock = clocks.get(route.regime_id)
            if clock is not None and clock[0] < last_end and first_end <= clock[1]:
                return False
    if kinds != {float}:
        values = list(map(float, values))
    out.accepted.extend(map(list, zip(pos, parameters, observed, values, repeat(None, n),
                                      repeat(None, n), strict=True)))
    newest = out.newest
    if len(route_lists) == 1:
        for route in found[0][1]:
            newest.setdefault(route.regime_id, latest)
    else:
        for routes, t in zip(lists, observed, strict=True):
            for route in routes:
                if t > newest.get(route.regime_id, -math.inf):
                    newest[route.regime_id] = t
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
    if samples and _check_columns(samples, ws, watermarks, now, clocks, out):
        return out
    accepted, newest = out.accepted, out.newest
    # Each (purchased offering, parameter) is looked up once a working-set generation,
    # and each regime's bounds once a batch: a window ending at or before ``closed``
    # closed on event time, one ending in ``(origin, until]`` on the clock.
    lookups = ws.sample_lookups()
    lookup = ws.lookup
    bounds: dict[str, tuple[float, float, float]] = {}
    future = now + FUTURE_SKEW
    refuse = out.refuse
    for i, s in enumerate(samples):
        if type(s) is not dict and not isinstance(s, dict):
            refuse(i, "", "a sample is an object")
            continue
        get = s.get
        po_id, parameter = get("purchasedOfferingId"), get("parameter")
        if type(po_id) is not str and not isinstance(po_id, str) or not po_id:
            refuse(i, "purchasedOfferingId", "required")
            continue
        if type(parameter) is not str and not isinstance(parameter, str) or not parameter:
            refuse(i, "parameter", "required")
            continue
        try:
            observed = _time(get("observedAt"))
        except (ValueError, TypeError) as exc:
            refuse(i, "observedAt", str(exc))
            continue
        if observed > future:
            refuse(i, "observedAt", "in the future (more than 5 minutes ahead)", for_now=True)
            continue
        value, status, interval = get("value"), get("status"), get("intervalSeconds")
        if status is not None and status != "up" and status != "down":
            refuse(i, "status", "up or down")
            continue
        if type(value) is float:
            # NaN and the infinities fail the range too: one comparison for the usual case
            if not -MAX_VALUE <= value <= MAX_VALUE:
                if math.isfinite(value):
                    refuse(i, "value", _TOO_LARGE)
                else:
                    refuse(i, "value", "a finite number")
                continue
        elif value is None:
            if status is None:
                refuse(i, "value", "a value (or an up/down status) is required")
                continue
        elif isinstance(value, bool) or not isinstance(value, int | float):
            refuse(i, "value", "a finite number")
            continue
        elif abs(value) > MAX_VALUE:  # exact for huge JSON integers too
            refuse(i, "value", _TOO_LARGE)
            continue
        if interval is not None and (isinstance(interval, bool)
                                     or not isinstance(interval, int | float)
                                     or not (0 < interval <= 31 * 86400)):
            refuse(i, "intervalSeconds", "a number of seconds, more than 0")
            continue
        found = lookups.get((po_id, parameter))
        if found is None:
            found = lookup(po_id, parameter)
        po, routes = found
        if po is None:
            refuse(i, "purchasedOfferingId", f"{po_id} is not in the inventory", for_now=True)
            continue
        if not routes:
            refuse(i, "parameter", f"no active monitoring regime watches {parameter} "
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
            refuse(i, "observedAt", late, for_now=True)
            continue
        if value is not None:
            if get("unit") is not None:
                try:
                    value = in_recorded_unit(value, s["unit"], ws, po, parameter, observed)
                except ValueError as exc:
                    refuse(i, "unit", str(exc))
                    continue
            if type(value) is not float:
                value = float(value)
        accepted.append([po_id, parameter, observed, value,
                         None if interval is None else float(interval), status])
        for route in routes:
            key_ = route.regime_id
            if observed > newest.get(key_, -math.inf):
                newest[key_] = observed
    return out
