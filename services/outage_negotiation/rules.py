"""The rules a planned outage's windows must pass, as pure functions: no store, no clock of
their own (the caller gives ``now``), so each has known answers in unit tests.

Each refusal says why and what would pass, because a change manager refused without a
way forward only tries again at random:

- **windows**: a start in the past or an end not after its start is bad input (400,
  naming ``windows.<n>.startDateTime`` / ``endDateTime``);
- **minimum notice**: no window may start before the longest minimum notice of the SLA
  types it touches has run (409 ``MINIMUM_NOTICE``, the earliest allowed start given);
- **blackouts**: no window may overlap a period an affected customer declared free of
  maintenance (409 ``BLACKOUT``, the customer, the period and where a window would fit);
- **overlaps**: another open outage on the same purchased offering at an overlapping
  time is flagged on the outage, or refused by policy (409 ``OVERLAP``);
- **cap**: the planned minutes a purchased offering gets in a calendar month (UTC), this
  window included, may not exceed its SLA type's cap (409 ``CAP``, what is left).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.outage_negotiation.domain import OutageRuleBroken, Window
from shared.errors import ErrorCollector
from shared.times import iso


def check_windows(windows: Sequence[Window], now: datetime, field: str = "windows") -> None:
    """Every window starts in the future and ends after it starts."""
    errors = ErrorCollector()
    if not windows:
        errors.add(field, "at least one window is needed")
    for n, window in enumerate(windows):
        if window["start"] <= now:
            errors.add(f"{field}.{n}.startDateTime",
                       f"{iso(window['start'])} is in the past (now {iso(now)})")
        if window["end"] <= window["start"]:
            errors.add(f"{field}.{n}.endDateTime",
                       f"{iso(window['end'])} is not after the start {iso(window['start'])}")
    errors.raise_if_any()


def overlapping(a: Window, b: Mapping[str, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def earliest_start(resolution: Iterable[Mapping[str, Any]], now: datetime
                   ) -> tuple[datetime, int]:
    """The earliest start the affected customers' SLA types allow, and the notice (days)
    that sets it: the longest of them."""
    days = max((int(c.get("minimumNoticeDays") or 0) for c in resolution), default=0)
    return now + timedelta(days=days), days


def check_notice(windows: Sequence[Window], resolution: Sequence[Mapping[str, Any]],
                 now: datetime, field: str = "windows") -> None:
    earliest, days = earliest_start(resolution, now)
    late = [n for n, w in enumerate(windows) if w["start"] < earliest]
    if not late:
        return
    who = [c["customerId"] for c in resolution if int(c.get("minimumNoticeDays") or 0) == days]
    details = {f"{field}.{n}.startDateTime": [
        f"starts before {iso(earliest)}, the earliest start {days} days' notice allows"]
        for n in late}
    details["earliestStart"] = [iso(earliest)]
    details["customers"] = who[:20]
    raise OutageRuleBroken(
        "MINIMUM_NOTICE",
        f"the minimum notice of {days} days (SLA type of {len(who)} affected customer(s), "
        f"e.g. {who[0]}) is not given: a window may start at {iso(earliest)} at the "
        f"earliest", details)


def check_blackouts(windows: Sequence[Window],
                    blackouts: Mapping[str, Sequence[Mapping[str, Any]]],
                    field: str = "windows") -> None:
    """``blackouts``: customer id → the periods it declared (``start``, ``end``,
    ``reason``), for the affected customers only."""
    details: dict[str, list[str]] = {}
    first: str | None = None
    for n, window in enumerate(windows):
        for customer, periods in sorted(blackouts.items()):
            for period in periods:
                if not overlapping(window, period):
                    continue
                why = (f"overlaps customer {customer}'s blackout {iso(period['start'])} - "
                       f"{iso(period['end'])}"
                       + (f" ({period['reason']})" if period.get("reason") else "")
                       + f": end by {iso(period['start'])} or start at "
                         f"{iso(period['end'])} or later")
                details.setdefault(f"{field}.{n}", []).append(why)
                first = first or why
    if first is not None:
        raise OutageRuleBroken("BLACKOUT", f"a window falls in a declared blackout period: "
                                           f"{first}", details)


@dataclass(frozen=True)
class Other:
    """Another outage as overlaps and caps see it: its id, status, the windows it holds
    (the agreed one once agreed, else those proposed) and its purchased offerings."""

    outage_id: str
    status: str
    windows: tuple[Window, ...]
    purchased: frozenset[str]


def overlaps(windows: Sequence[Window], purchased: set[str], others: Iterable[Other],
             shown: int = 20) -> list[dict[str, Any]]:
    """The other open outages that hold some of these purchased offerings at a time
    overlapping one of these windows: each with how many it shares and the first few."""
    found = []
    for other in others:
        if not any(overlapping(w, o) for w in windows for o in other.windows):
            continue
        shared = purchased & other.purchased
        if shared:
            found.append({"plannedOutageId": other.outage_id, "status": other.status,
                          "sharedCount": len(shared),
                          "purchasedOfferingIds": sorted(shared)[:shown]})
    return found


def check_overlaps(found: Sequence[Mapping[str, Any]], policy: str) -> None:
    if policy != "refuse" or not found:
        return
    first = found[0]
    raise OutageRuleBroken(
        "OVERLAP",
        f"planned outage {first['plannedOutageId']} ({first['status']}) holds "
        f"{first['sharedCount']} of the same purchased offerings at an overlapping time, "
        f"e.g. {first['purchasedOfferingIds'][0]}; overlaps are refused here: choose a "
        f"window outside it, or cancel or reschedule it first",
        {"overlaps": [f"{o['plannedOutageId']}: {o['sharedCount']} purchased offerings"
                      for o in found]})


def month_minutes(window: Mapping[str, Any]) -> dict[str, float]:
    """A window's minutes in each calendar month (UTC) it touches, by ``YYYY-MM``."""
    found: dict[str, float] = {}
    start, end = window["start"].astimezone(UTC), window["end"].astimezone(UTC)
    while start < end:
        following = (datetime(start.year + 1, 1, 1, tzinfo=UTC) if start.month == 12
                     else datetime(start.year, start.month + 1, 1, tzinfo=UTC))
        upto = min(end, following)
        key = f"{start.year:04d}-{start.month:02d}"
        found[key] = found.get(key, 0.0) + (upto - start).total_seconds() / 60
        start = upto
    return found


def check_cap(window: Window, sla_of: Mapping[str, str | None],
              caps: Mapping[str, int | None], others: Iterable[Other],
              field: str = "window") -> None:
    """``sla_of``: each affected purchased offering's SLA type id; ``caps``: each SLA
    type id's cap in minutes a month (None: none); ``others``: the outages whose agreed
    minutes count (their one window each)."""
    capped = {po: caps.get(sla) for po, sla in sla_of.items()
              if sla is not None and caps.get(sla) is not None}
    if not capped:
        return
    mine = month_minutes(window)
    used: dict[tuple[str, str], float] = {}
    for other in others:
        shared = other.purchased & capped.keys()
        if not shared:
            continue
        for held in other.windows:
            for month, minutes in month_minutes(held).items():
                if month in mine:
                    for po in shared:
                        used[(po, month)] = used.get((po, month), 0.0) + minutes
    worst: tuple[float, str, str, float, int] | None = None
    for po, cap in capped.items():
        for month, minutes in mine.items():
            before = used.get((po, month), 0.0)
            over = before + minutes - int(cap or 0)
            if over > 0 and (worst is None or over > worst[0]):
                worst = (over, po, month, before, int(cap or 0))
    if worst is None:
        return
    over, po, month, before, cap = worst
    left = max(0.0, cap - before)
    raise OutageRuleBroken(
        "CAP",
        f"purchased offering {po} (SLA type {sla_of[po]}) would have "
        f"{before + mine[month]:.0f} planned-outage minutes in {month}, over its cap of "
        f"{cap}: {left:.0f} minutes are left that month",
        {field: [f"{mine[month]:.0f} minutes in {month}; at most {left:.0f} fit"],
         "purchasedOfferingId": [po], "minutesLeft": [f"{left:.0f}"]})


def decide(policy: str, quorum: float | None, resolution: Sequence[Mapping[str, Any]],
           responses: Mapping[str, Mapping[str, Any]], windows: int,
           at_deadline: bool = False) -> tuple[int | None, dict[str, Any]]:
    """Which proposed window the customers' answers agree (None: none yet), and the
    summary of the round: who accepted which window, rejected, counter-proposed, or has
    not answered.

    - ``all``: every customer accepted that window;
    - ``quorumCustomers`` / ``quorumPurchasedOfferings``: at least ``quorum`` of the
      customers, or of the affected purchased offerings (each customer weighing its
      own), accepted it;
    - ``silenceIsConsent``: as ``all`` before the deadline; at the deadline a customer
      that did not answer consents to the window most accepted (the first, if none was).
    """
    weights = {c["customerId"]: len(c.get("purchasedOfferingIds") or ()) or 1
               for c in resolution}
    accepted: dict[int, list[str]] = {}
    silent = [c for c in weights if c not in responses]
    for customer, answer in responses.items():
        if answer.get("answer") == "accept":
            accepted.setdefault(int(answer.get("windowIndex") or 0), []).append(customer)
    summary = {
        "customers": len(weights), "silent": len(silent),
        "rejected": sorted(c for c, a in responses.items() if a.get("answer") == "reject"),
        "counterProposed": sorted(c for c, a in responses.items()
                                  if a.get("answer") == "counterPropose"),
        "acceptedByWindow": {str(i): len(who) for i, who in sorted(accepted.items())},
    }
    if silent and policy == "silenceIsConsent" and at_deadline:
        best = max(sorted(accepted), key=lambda i: len(accepted[i]), default=0)
        accepted.setdefault(best, []).extend(silent)
        summary["consentedBySilence"] = len(silent)
    total_customers, total_weight = len(weights), sum(weights.values())
    for index in sorted(accepted, key=lambda i: (-len(accepted[i]), i)):
        if not 0 <= index < windows:
            continue
        who = accepted[index]
        if policy in ("all", "silenceIsConsent"):
            done = len(who) == total_customers
        elif policy == "quorumCustomers":
            done = total_customers > 0 and len(who) / total_customers >= float(quorum or 1)
        else:
            done = total_weight > 0 and sum(weights.get(c, 0) for c in who) / total_weight \
                >= float(quorum or 1)
        if done:
            return index, summary
    return None, summary
