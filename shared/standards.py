"""Which version of a threshold standard is in force at a time: one rule, used by the
registry (``inForce``) and by monitoring's replica (the levels a window is judged by), so
both always name the same version.

A version counts from its approval: a later approval takes over from an earlier one only
from the moment it was approved (or its validity start, if later), so a window judged
against version 1 is still reported under version 1 after version 2 is approved. In
detail, at business time ``at``, among the versions whose validity contains ``at``:

- of those approved at or before ``at`` and not retired by then, the one approved last is
  in force (what was decided at that time stays decided: a later approval or retirement
  does not rewrite it);
- if there is none (a time before any approval), the one approved last of those approved
  and not retired is in force: an agreement applies back over its validity where no
  earlier agreement did.

Drafts are never in force. What the rule is given is what is known: given the versions as
recorded up to some time K, it answers "in force at ``at``, as known at K".

Versions are the registry's version records (camelCase keys: ``version``, ``validFor``,
``approvedAt``, ``retiredAt``), with times as datetimes or ISO 8601 text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def _seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def version_in_force(versions: Iterable[Mapping[str, Any]], at: datetime | float | str
                     ) -> Mapping[str, Any] | None:
    """The version in force at ``at`` under the rule above, or None."""
    when = _seconds(at)
    assert when is not None
    decided: list[tuple[float, int, Mapping[str, Any]]] = []
    retroactive: list[tuple[float, int, Mapping[str, Any]]] = []
    for v in versions:
        approved = _seconds(v.get("approvedAt"))
        if approved is None:
            if v.get("lifecycleStatus") not in ("approved", "superseded"):
                continue  # a draft, or a draft retired without ever being approved
            approved = -math.inf  # approved, when not said: count it as always approved
        valid = v.get("validFor") or {}
        start, end = _seconds(valid.get("startDateTime")), _seconds(valid.get("endDateTime"))
        if start is None or when < start or (end is not None and when >= end):
            continue
        retired = _seconds(v.get("retiredAt"))
        key = (approved, int(v.get("version") or 0), v)
        if approved <= when and (retired is None or when < retired):
            decided.append(key)
        elif retired is None:
            retroactive.append(key)
    chosen = decided or retroactive
    return max(chosen, key=lambda c: (c[0], c[1]))[2] if chosen else None
