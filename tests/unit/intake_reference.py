"""The intake's check as it was before it was tuned (one sample at a time, lookups once a
batch): the reference the tuned ``services.monitoring.ingestion.check`` must agree with,
sample for sample, over random batches (``test_intake_equivalence.py``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from services.monitoring.ingestion import (
    FUTURE_SKEW,
    MAX_SAMPLES,
    MAX_VALUE,
    Checked,
    _time_slow,
    content_digest,
    in_recorded_unit,
)
from services.monitoring.working_set import WorkingSet


def _time(raw: Any) -> float:
    if type(raw) is str:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return _time_slow(raw)
        if moment.tzinfo is not None and moment.utcoffset() is not None:
            return moment.timestamp()
    return _time_slow(raw)


def reference_check(samples: Any, ws: WorkingSet, watermarks: dict[str, float], now: float,
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
