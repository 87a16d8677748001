"""Offering-wide problems: the rules that turn customer-level SLA violations into one
problem of a product offering (docs/analysis.md, "Offering-wide problems"). Pure: no
store, no Flask, no bus; the application reads the counts from its read model and
records what these functions decide.

What counts as a violation, from what the suite hears:

- a ``SlaViolationCreateEvent`` of Customer QoS/SLA Management (its ``slaViolation``: one
  purchased offering, ``productId``, at ``violationDate`` or ``date``);
- a ``CustomerSlaAnalysisEvent`` with at least one violation (its ``slaAnalysis`` of one
  purchased offering over a period; counted at the period's end) — an analysis that
  found none is not a violation;
- monitoring's own ``ThresholdCrossingEvent`` of a purchased offering raised or escalated
  to ``breached`` (at the end of its window) — a warning, a clear, a silent series
  (``noData``), a pooled scope or a crossing due to an agreed planned outage is not.

Each is identified by what it says it is (its source and its id), so the same violation
heard twice, whatever carried it, is kept once.

The rule of an offering (or the default rule): ``count`` purchased offerings violated
within ``period`` (sliding, over the violations' own times), or a ``share`` of the
offering's active purchased offerings (at least two violated: one purchased offering's
violations are its customer's problem, not the offering's). Either threshold that is set
opens the problem. Open, every further violation updates it; it is resolved when no
violation arrived for ``quiet`` (the analysis clock), and reopened — the same problem,
its next episode — when violations heard after the resolution reach the rule again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import times
from shared.durations import duration_seconds, duration_text
from shared.scheduler import Due

#: The rule an offering without one of its own follows (``DEFAULT`` names it).
DEFAULT = "default"
#: Evidence refs, purchased offerings and customers a problem lists (the latest); its
#: counts cover all of them, so its state stays small however many violations it has.
KEPT = 20
OPEN, RESOLVED = "inProgress", "resolved"
STATUSES = (OPEN, RESOLVED)
#: The kinds of violation, as ``slaViolation[].@referredType`` names them.
SLA_VIOLATION, SLA_ANALYSIS, CROSSING = "SlaViolation", "CustomerSlaAnalysis", \
    "ThresholdCrossing"


class NotAViolation(ValueError):
    """A message that cannot be read as the violation it claims to be (refused, with
    this reason, to the dead-letter queue)."""


@dataclass(frozen=True)
class Rule:
    """When the violations of one offering make an offering-wide problem (seconds for the
    durations). At least one of ``count`` and ``share`` is set."""

    count: int | None = 3
    share: float | None = 0.5
    period: float = 86400.0
    quiet: float = 21600.0

    def __post_init__(self) -> None:
        if self.count is None and self.share is None:
            raise ValueError("a rule needs a count, a share or both")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.share is not None and not 0 < self.share <= 1:
            raise ValueError("share must be more than 0 and at most 1")
        if self.period <= 0 or self.quiet <= 0:
            raise ValueError("period and quiet time must be longer than zero")

    @classmethod
    def of(cls, wire: Mapping[str, Any]) -> Rule:
        """A rule from its resource's fields (durations as ISO 8601 text)."""
        return cls(count=wire.get("count"), share=wire.get("share"),
                   period=float(duration_seconds(str(wire["period"]))),
                   quiet=float(duration_seconds(str(wire["quietTime"]))))

    def wire(self) -> dict[str, Any]:
        return {"count": self.count, "share": self.share,
                "period": duration_text(self.period), "quietTime": duration_text(self.quiet)}


DEFAULT_RULE = Rule()


@dataclass(frozen=True)
class Violation:
    """One violation of one purchased offering, as the problem counts it."""

    kind: str
    source_id: str
    purchased_offering_id: str
    customer_id: str | None
    product_offering_id: str | None
    at: datetime
    parameter: str | None = None
    href: str | None = None

    @property
    def key(self) -> str:
        """What identifies it whatever message carried it."""
        return f"{self.kind}:{self.source_id}"

    def ref(self) -> dict[str, Any]:
        """Its evidence ref on a problem (``slaViolation[]``)."""
        return {"id": self.source_id, "href": self.href, "@referredType": self.kind,
                "purchasedOfferingId": self.purchased_offering_id,
                "customerId": self.customer_id, "parameter": self.parameter,
                "dateTime": times.iso(self.at)}


def _time(value: Any, what: str) -> datetime:
    try:
        return times.parse(str(value))
    except ValueError as exc:
        raise NotAViolation(f"{what}: {exc}") from None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _customer(parties: Any) -> str | None:
    for party in parties if isinstance(parties, list) else ():
        if isinstance(party, dict) and str(party.get("role", "")).lower() == "customer":
            return _text(party.get("id"))
    return None


def from_sla_violation(body: Mapping[str, Any]) -> Violation:
    """A ``SlaViolationCreateEvent``'s ``slaViolation``."""
    if not isinstance(body, Mapping) or not body.get("id") or not body.get("productId"):
        raise NotAViolation("the SlaViolationCreateEvent carries no slaViolation with an "
                            "id and a productId")
    when = body.get("violationDate") or body.get("date")
    if not when:
        raise NotAViolation(f"SLA violation {body['id']} has no violationDate")
    return Violation(SLA_VIOLATION, str(body["id"]), str(body["productId"]),
                     _customer(body.get("relatedParty")),
                     _text(body.get("productOfferingId")),
                     _time(when, f"SLA violation {body['id']}"),
                     _text(body.get("parameter")), _text(body.get("href")))


def from_sla_analysis(body: Mapping[str, Any]) -> Violation | None:
    """A ``CustomerSlaAnalysisEvent``'s ``slaAnalysis``; None when it found no violation."""
    if not isinstance(body, Mapping) or not body.get("id") or not body.get("productId"):
        raise NotAViolation("the CustomerSlaAnalysisEvent carries no slaAnalysis with an "
                            "id and a productId")
    if not int(body.get("violations") or 0) > 0:
        return None
    period = body.get("period") or {}
    if not isinstance(period, Mapping) or not period.get("endDateTime"):
        raise NotAViolation(f"SLA analysis {body['id']} has no period end")
    return Violation(SLA_ANALYSIS, str(body["id"]), str(body["productId"]),
                     _text(body.get("customerId")), _text(body.get("productOfferingId")),
                     _time(period["endDateTime"], f"SLA analysis {body['id']}"),
                     _text(body.get("parameter")))


def from_crossing(change: Any, crossing: Mapping[str, Any]) -> Violation | None:
    """A ``ThresholdCrossingEvent``'s ``crossing``: a violation when a purchased
    offering's series was raised or escalated to breached, not because of an agreed
    planned outage; None otherwise."""
    if not isinstance(crossing, Mapping) or not crossing.get("id"):
        raise NotAViolation("the ThresholdCrossingEvent carries no crossing with an id")
    scope = crossing.get("scope") or {}
    if change not in ("raised", "escalated") or crossing.get("level") != "breached" \
            or crossing.get("planned") or scope.get("type") != "purchasedOffering":
        return None
    window = crossing.get("window") or {}
    when = window.get("endDateTime") or crossing.get("raisedAt")
    if not when:
        raise NotAViolation(f"crossing {crossing['id']} names no window")
    return Violation(CROSSING, str(crossing["id"]), str(scope["id"]), None, None,
                     _time(when, f"crossing {crossing['id']}"),
                     _text(crossing.get("parameter")))


# --- the rule -----------------------------------------------------------------------------

def reached(rule: Rule, affected: int, active: int) -> bool:
    """Whether ``affected`` violated purchased offerings of an offering with ``active``
    active ones reach the rule."""
    if rule.count is not None and affected >= rule.count:
        return True
    return rule.share is not None and affected >= 2 and active > 0 and \
        affected / active >= rule.share


def share_of(affected: int, active: int) -> float | None:
    return round(affected / active, 6) if active > 0 else None


@dataclass(frozen=True)
class Counts:
    """What a problem's episode (or a window) counts: violations, the purchased
    offerings and customers they are of, and the earliest violation's time."""

    violations: int
    purchased_offerings: int
    customers: int
    first_at: datetime | None = None

    def plus(self, violation: Violation, offering_seen: bool, customer_seen: bool) -> Counts:
        """With a violation not counted yet (``*_seen``: its purchased offering or
        customer already counted)."""
        first = violation.at if self.first_at is None else min(self.first_at, violation.at)
        return Counts(self.violations + 1,
                      self.purchased_offerings + (0 if offering_seen else 1),
                      self.customers + (0 if customer_seen or not violation.customer_id
                                        else 1), first)


#: The edges of time (a period or quiet time of a million years reaches them).
EARLIEST, LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def window_start(rule: Rule, at: datetime) -> datetime:
    """The start (exclusive) of the sliding period ending at a violation."""
    try:
        return at - timedelta(seconds=rule.period)
    except OverflowError:
        return EARLIEST


#: What a violation does to an offering's problem.
OPENS, REOPENS, GROWS, ADDS = "opened", "reopened", "updated", "recorded"


def decide(status: str | None, rule_reached: bool, offering_seen: bool,
           customer_seen: bool) -> str | None:
    """What a violation does: no problem or a resolved one — opens or reopens it when the
    rule is reached (else nothing); an open one — updates it (``updated`` when it affects
    a purchased offering or customer not affected before, else ``recorded``: the
    evidence and the last time only; a violation naming no customer has its customer
    ``seen``)."""
    if status != OPEN:
        if not rule_reached:
            return None
        return OPENS if status is None else REOPENS
    return ADDS if offering_seen and customer_seen else GROWS


def latest(items: Sequence[Any], new: Any, kept: int = KEPT) -> list[Any]:
    """The latest ``kept`` of ``items`` with ``new`` (moved last when already there)."""
    return [*(i for i in items if i != new), new][-kept:]


def resolution_due(last_received_at: datetime, quiet: float) -> datetime:
    """When an open problem is resolved if no violation arrives before."""
    try:
        return last_received_at + timedelta(seconds=quiet)
    except OverflowError:
        return LATEST


def summary(offering: str, counts: Counts, active: int, rule: Rule, change: str) -> str:
    """The result's one line (the inventory's log and the notices show it)."""
    share = share_of(counts.purchased_offerings, active)
    of = f" of {active} active" if active else ""
    pct = f" ({100 * share:.0f} %)" if share is not None else ""
    what = {OPENS: "opened", REOPENS: "reopened", GROWS: "updated", RESOLVED: "resolved",
            ADDS: "updated"}.get(change, change)
    tail = f"; resolved after {duration_text(rule.quiet)} without a violation" \
        if change == RESOLVED else ""
    return (f"offering-wide problem {what} on offering {offering}: "
            f"{counts.purchased_offerings}{of} purchased offerings{pct} of "
            f"{counts.customers} customers violated their SLA "
            f"({counts.violations} violations){tail}")


# --- the clock ----------------------------------------------------------------------------

#: The clock's kind of due item: an open problem resolved when quiet.
RESOLVE = "problem.resolve"


def problem_due(problem: Any) -> list[Due]:
    """An open problem is due for resolution ``quiet`` after the last violation arrived
    (read off its state: the rule it was last updated under)."""
    if getattr(problem, "status", None) != OPEN:
        return []
    quiet = float(duration_seconds(str(problem.rule["quietTime"])))
    return [Due(resolution_due(problem.last_received_at, quiet), RESOLVE, problem.id)]
