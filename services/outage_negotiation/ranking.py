"""The planner's ranking of candidate windows, as pure functions: no store, no clock of
their own (the caller gives ``now`` and the facts it read), so each has known answers in
unit tests.

When the customers' answers did not agree a window, the planner chooses one and asks
again: this says which to choose. The candidates are the round's proposed windows and
every window a customer counter-proposed (the same window proposed twice is one
candidate). Each is scored, in this order of importance:

1. **acceptable to the most customers**. A customer finds a candidate acceptable when a
   window it accepted, or one it counter-proposed, *contains* it (starts no later and
   ends no earlier): a customer that can live with 01:00-05:00 can live with
   02:00-04:00; a window equal to the one it named is the plain case. A rejection or no
   answer makes nothing acceptable.
2. **inside the fewest blackout periods**: the affected customers' declared periods it
   overlaps (each customer's period counted once).
3. **the least SLA exposure**: over the affected purchased offerings whose SLA type counts
   planned maintenance as downtime (``maintenanceAccounting`` ``counted-as-down``), the
   service credit the window puts at risk: ``creditPercentPerBreachedPeriod`` for each
   calendar month (in the SLA type's time zone) the window touches, at most the type's
   ``creditCapPercent``. An SLA type that excludes planned outages from the eligible
   time (``excluded``) or counts them as up (``counted-as-up``) exposes nothing: the
   window cannot breach it. A purchased offering without known terms exposes nothing
   this service could weigh, and is counted as such.
4. **the earliest start** (then the earliest end), so the order is total.

Whether each passes the rules is shown beside its scores, not mixed into the order (the
planner sees a window most customers want that a cap refuses, and why): the rules as
``agree`` checks them — the window still in the future, blackouts, overlaps (listed, or
refused by policy), caps — and, for a counter-proposed window that none of the proposed
ones equals, the minimum notice counted from now for the customers who would hear of it
now (those who have not accepted it): the proposed windows' notice was given when the
outage was proposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.outage_negotiation import rules
from services.outage_negotiation.domain import OutageRuleBroken, Window
from shared.errors import InvalidValue
from shared.times import iso

#: The one maintenance accounting under which a planned outage can breach an SLA.
COUNTED_AS_DOWN = "counted-as-down"


@dataclass(frozen=True)
class Candidate:
    """A window the planner may choose: one of the round's proposed windows (its index)
    and/or the window some customers counter-proposed."""

    window: Window
    proposed_index: int | None = None
    counter_proposed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What the rules and the exposure are judged against, read once for every
    candidate: the affected customers (as resolved when proposed), the declared blackout
    periods of the customers affected now, each affected purchased offering's SLA type
    and the SLA types' terms (the replica's camelCase names), the caps, the other open
    outages (overlaps) and the agreed ones (caps), the overlap policy, and now."""

    now: datetime
    resolution: Sequence[Mapping[str, Any]]
    blackouts: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    sla_of: Mapping[str, str | None] = field(default_factory=dict)
    terms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    caps: Mapping[str, int | None] = field(default_factory=dict)
    open_others: Sequence[rules.Other] = ()
    counted: Sequence[rules.Other] = ()
    overlap_policy: str = "flag"


def _key(window: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return window["start"], window["end"]


def candidates(windows: Sequence[Window], responses: Mapping[str, Mapping[str, Any]]
               ) -> list[Candidate]:
    """The round's proposed windows and every counter-proposed one, each window once."""
    found: dict[tuple[datetime, datetime], dict[str, Any]] = {}
    for n, window in enumerate(windows):
        found.setdefault(_key(window), {"window": dict(window), "index": n, "by": []})
    for customer, answer in sorted(responses.items()):
        if answer.get("answer") != "counterPropose":
            continue
        for window in answer.get("windows") or ():
            entry = found.setdefault(_key(window), {"window": dict(window), "index": None,
                                                    "by": []})
            if customer not in entry["by"]:
                entry["by"].append(customer)
    return [Candidate(e["window"], e["index"], tuple(e["by"])) for e in found.values()]


def contains(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    return outer["start"] <= inner["start"] and inner["end"] <= outer["end"]


def acceptable(window: Mapping[str, Any], answer: Mapping[str, Any],
               proposed: Sequence[Window]) -> bool:
    """Whether a customer's answer makes ``window`` acceptable to it: a window it
    accepted or counter-proposed contains it."""
    if answer.get("answer") == "accept":
        index = int(answer.get("windowIndex") or 0)
        return 0 <= index < len(proposed) and contains(proposed[index], window)
    if answer.get("answer") == "counterPropose":
        return any(contains(w, window) for w in answer.get("windows") or ())
    return False


def accepting(window: Mapping[str, Any], responses: Mapping[str, Mapping[str, Any]],
              proposed: Sequence[Window]) -> list[str]:
    """The customers to whom ``window`` is acceptable, by their answers this round."""
    return sorted(c for c, a in responses.items() if acceptable(window, a, proposed))


def blackouts_hit(window: Mapping[str, Any],
                  blackouts: Mapping[str, Sequence[Mapping[str, Any]]]
                  ) -> list[dict[str, Any]]:
    """The declared blackout periods the window overlaps, by customer."""
    return [{"customer_id": customer, "start": period["start"], "end": period["end"],
             "reason": period.get("reason")}
            for customer, periods in sorted(blackouts.items()) for period in periods
            if rules.overlapping(window, period)]


def months_touched(window: Mapping[str, Any], time_zone: str | None) -> int:
    """How many calendar months (in ``time_zone``; UTC when none or unknown) the window
    has time in: the conformance periods it could breach."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ValueError, KeyError, OSError):
        zone = ZoneInfo("UTC")
    first = window["start"].astimezone(zone)
    last = window["end"].astimezone(zone)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if last.day == 1 and last.timetz().replace(tzinfo=None) == last.min.time() \
            and months > 1:
        months -= 1  # ending exactly at a month's start has no time in that month
    return max(1, months)


def exposure(window: Mapping[str, Any], sla_of: Mapping[str, str | None],
             terms: Mapping[str, Mapping[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    """The SLA exposure of a window and its parts, one per SLA type: how many affected
    purchased offerings it has, its accounting and credit terms, the months touched and
    the credit each offering puts at risk (0 unless planned time counts as down)."""
    return exposure_by_type(window, counts_by_type(sla_of), terms)


def counts_by_type(sla_of: Mapping[str, str | None]) -> dict[str | None, int]:
    """How many of the affected purchased offerings each SLA type (None: none) has."""
    by_type: dict[str | None, int] = {}
    for sla in sla_of.values():
        by_type[sla] = by_type.get(sla, 0) + 1
    return by_type


def exposure_by_type(window: Mapping[str, Any], by_type: Mapping[str | None, int],
                     terms: Mapping[str, Mapping[str, Any]]
                     ) -> tuple[float, list[dict[str, Any]]]:
    """:func:`exposure` from the purchased offerings counted by SLA type once (the same
    for every candidate of an outage)."""
    parts, total = [], 0.0
    for sla, count in sorted(by_type.items(), key=lambda item: str(item[0] or "")):
        known = terms.get(sla) if sla else None
        accounting = (known or {}).get("maintenanceAccounting")
        per = float((known or {}).get("creditPercentPerBreachedPeriod") or 0)
        cap = (known or {}).get("creditCapPercent")
        months = months_touched(window, (known or {}).get("timeZone"))
        weight = 0.0
        if known is not None and accounting == COUNTED_AS_DOWN:
            weight = per * months
            if cap is not None:
                weight = min(weight, float(cap))
        total += weight * count
        parts.append({"sla_type_id": sla, "name": (known or {}).get("name"),
                      "maintenance_accounting": accounting, "purchased_offerings": count,
                      "credit_percent_per_breached_period": per if known else None,
                      "credit_cap_percent": float(cap) if cap is not None else None,
                      "months": months, "weight": weight, "exposure": weight * count})
    return total, parts


def rule_breaks(candidate: Candidate, accepted_by: Sequence[str], facts: Facts,
                purchased: set[str] | None = None
                ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The rules a candidate breaks (each ``rule`` and ``message``, as the 409 would
    say) and the overlaps it has with other open outages (flagged, or a break under the
    ``refuse`` policy)."""
    window = candidate.window
    breaks: list[dict[str, str]] = []

    def check(rule: str, run: Any) -> None:
        try:
            run()
        except OutageRuleBroken as exc:
            breaks.append({"rule": exc.rule, "message": str(exc)})
        except InvalidValue as exc:
            breaks.append({"rule": rule, "message": "; ".join(
                f"{k}: {' '.join(v)}" for k, v in exc.errors.items())})

    check("WINDOWS", lambda: rules.check_windows([window], facts.now, "window"))
    if candidate.proposed_index is None:
        told_now = [c for c in facts.resolution if c["customerId"] not in set(accepted_by)]
        if told_now:
            check("MINIMUM_NOTICE",
                  lambda: rules.check_notice([window], told_now, facts.now, "window"))
    check("BLACKOUT", lambda: rules.check_blackouts([window], facts.blackouts, "window"))
    found = rules.overlaps([window], set(facts.sla_of) if purchased is None else purchased,
                           facts.open_others)
    check("OVERLAP", lambda: rules.check_overlaps(found, facts.overlap_policy))
    check("CAP", lambda: rules.check_cap(window, facts.sla_of, facts.caps, facts.counted,
                                         "window"))
    return breaks, found


def _why(accepted: Sequence[str], customers: int, hit: Sequence[Mapping[str, Any]],
         total: float, parts: Sequence[Mapping[str, Any]],
         breaks: Sequence[Mapping[str, str]], candidate: Candidate) -> list[str]:
    said = []
    if candidate.proposed_index is not None:
        said.append(f"proposed window {candidate.proposed_index}")
    if candidate.counter_proposed_by:
        said.append("counter-proposed by " + ", ".join(candidate.counter_proposed_by[:5])
                    + (" …" if len(candidate.counter_proposed_by) > 5 else ""))
    said.append(f"acceptable to {len(accepted)} of {customers} customer(s)"
                + (": " + ", ".join(accepted[:5]) + (" …" if len(accepted) > 5 else "")
                   if accepted else ""))
    said.append(f"in {len(hit)} blackout period(s)" + (": " + "; ".join(
        f"{b['customer_id']} {iso(b['start'])} - {iso(b['end'])}"
        + (f" ({b['reason']})" if b.get("reason") else "") for b in hit[:3])
        + (" …" if len(hit) > 3 else "") if hit else ""))
    exposed = [p for p in parts if p["exposure"]]
    said.append(f"SLA exposure {total:g}" + (": " + "; ".join(
        f"{p['purchased_offerings']} purchased offering(s) of {p['name'] or p['sla_type_id']}"
        f" ({COUNTED_AS_DOWN}) at {p['weight']:g} % each over {p['months']} month(s)"
        for p in exposed) if exposed else ": no affected SLA type counts planned time as "
                                          "down"))
    said.append("passes the rules" if not breaks else
                "breaks " + ", ".join(b["rule"] for b in breaks))
    return said


def rank(windows: Sequence[Window], responses: Mapping[str, Mapping[str, Any]],
         facts: Facts) -> list[dict[str, Any]]:
    """The candidates, best first, each with its rank, scores, rule verdict and why."""
    customers = [c["customerId"] for c in facts.resolution]
    weights = {c["customerId"]: len(c.get("purchasedOfferingIds") or ())
               for c in facts.resolution}
    by_type, purchased = counts_by_type(facts.sla_of), set(facts.sla_of)
    scored = []
    for candidate in candidates(windows, responses):
        accepted = [c for c in accepting(candidate.window, responses, windows)
                    if c in weights]
        hit = blackouts_hit(candidate.window, facts.blackouts)
        total, parts = exposure_by_type(candidate.window, by_type, facts.terms)
        breaks, found = rule_breaks(candidate, accepted, facts, purchased)
        scored.append({
            "window": candidate.window, "proposed_window_index": candidate.proposed_index,
            "counter_proposed_by": list(candidate.counter_proposed_by),
            "accepted_by": accepted, "accepting_customers": len(accepted),
            "customers": len(customers),
            "accepting_purchased_offerings": sum(weights[c] for c in accepted),
            "blackout_count": len(hit), "blackouts": hit,
            "exposure": round(total, 6), "exposure_by_sla_type": parts,
            "passes": not breaks, "rule_breaks": breaks, "overlaps": found,
            "why": _why(accepted, len(customers), hit, total, parts, breaks, candidate)})
    scored.sort(key=lambda c: (-c["accepting_customers"], c["blackout_count"],
                               c["exposure"], c["window"]["start"], c["window"]["end"]))
    for n, item in enumerate(scored):
        item["rank"] = n
    return scored
