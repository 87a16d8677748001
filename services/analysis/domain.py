"""analysis's aggregates: the window summaries it heard from monitoring (one per series
per closed window, never changed once kept), its replicas of the registry's resources,
and the SLA credits of closed conformance periods, and the offering-wide problems with
the violations they count and their rules. No Flask, no pika."""

from __future__ import annotations

import copy
import functools
import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate, event

from services.analysis import credits, problems
from shared import replica, times
from shared.changes import Changeable
from shared.ids import stable_id


class Replica(replica.Replica):
    """A registry resource (purchased offering, offering, group, SLA type, standard) as
    its last event told it."""

    namespace = "analysis"


class WindowSummary(Aggregate):
    """One series' closed window as monitoring summarised it (``WindowSummaryEvent``):
    what was measured, against which target, how it was judged, and the customer,
    offering, group and SLA type it is about. Kept once, by the summary's id.

    The summary is kept as its JSON text (``figures``), as monitoring keeps a window's
    figures: one text value, so a rebuild of the read model stores a million of them
    straight off their stored events (``shared.bulkload``), and decoded when read."""

    @staticmethod
    def create_id(summary_id: str, figures: str) -> UUID:
        return stable_summary_id(summary_id)

    @event("Received")
    def __init__(self, summary_id: str, figures: str) -> None:
        self.summary_id = summary_id
        self.figures = figures

    @classmethod
    def of(cls, summary: dict[str, Any]) -> WindowSummary:
        """The aggregate keeping a summary (a ``WindowSummaryEvent``'s ``windowSummary``)."""
        return cls(summary_id=str(summary["id"]), figures=_encode(summary))

    @property
    def summary(self) -> dict[str, Any]:
        return _decoded(self.figures)

    def __getitem__(self, name: str) -> Any:
        return _decoded(self.figures).get(name)


def _encode(summary: dict[str, Any]) -> str:
    try:
        return orjson.dumps(summary).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(summary, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _decoded(figures: str) -> dict[str, Any]:
    """A summary's figures, decoded once while its row's columns are read (every column
    reads them). Not to be changed by callers."""
    try:
        return orjson.loads(figures)
    except orjson.JSONDecodeError:
        return json.loads(figures)


def stable_summary_id(monitoring_id: str) -> UUID:
    """The id analysis keeps a summary under, from the summary's own (monitoring's)."""
    return stable_id("analysis", "window-summary", monitoring_id)


# --- SLA credits (docs/analysis.md, "SLA credits") ------------------------------------------
#: Who the clock's saves are recorded as.
CLOCK = "analysis:clock"


class CreditPeriod(Aggregate):
    """A conformance period purchased offerings' summaries counted in, from the first of
    them to reach analysis until the clock closes it (``credits.close_at``: its end plus
    the settle time in force when it was opened, kept here so every clock and every
    restart agree on when). Named by its start and end: opened once, whichever summary
    came first; closed once, with the credits of its purchased offerings in the same
    save."""

    @staticmethod
    def create_id(start: datetime, end: datetime) -> UUID:
        return credit_period_id(start, end)

    @event("Opened")
    def __init__(self, start: datetime, end: datetime, first_seen: datetime,
                 settle_seconds: float) -> None:
        self.start, self.end = start, end
        self.first_seen, self.settle_seconds = first_seen, settle_seconds
        self.closed_at: datetime | None = None
        self.purchased_offering_count = 0
        self.window_count = 0
        self.credit_count = 0
        self.published_count = 0

    @property
    def close_at(self) -> datetime:
        """When the clock closes it (``credits.close_at``)."""
        return credits.close_at(self.end, self.first_seen, self.settle_seconds)

    @event("Closed")
    def close(self, at: datetime, purchased_offering_count: int, window_count: int,
              credit_count: int, published_count: int) -> None:
        self.closed_at = at
        self.purchased_offering_count = purchased_offering_count
        self.window_count = window_count
        self.credit_count = credit_count
        self.published_count = published_count


class SlaCredit(Aggregate):
    """What one purchased offering is owed for one period, computed once when the period
    closed: the breached periods (the parameters that missed), the percentage (capped),
    the amount of its monthly charge and the crossings behind it. Named by the purchased
    offering and the period, so the store refuses a second one (two clocks, a restart);
    never changed afterwards (a summary that arrives later is counted, not applied)."""

    @staticmethod
    def create_id(purchased_offering_id: str, period_start: datetime,
                  period_end: datetime) -> UUID:
        return sla_credit_id(purchased_offering_id, period_start, period_end)

    @event("Computed")
    def __init__(self, purchased_offering_id: str, customer_id: str | None,
                 sla_type_id: str | None, period_start: datetime, period_end: datetime,
                 breached_periods: int, missed_parameters: list[str],
                 credit_percent: str | None, amount: str | None, currency: str | None,
                 crossing_ids: list[str], status: str, window_count: int,
                 computed_at: datetime) -> None:
        self.purchased_offering_id = purchased_offering_id
        self.customer_id, self.sla_type_id = customer_id, sla_type_id
        self.period_start, self.period_end = period_start, period_end
        self.breached_periods = breached_periods
        self.missed_parameters = list(missed_parameters)
        self.credit_percent, self.amount, self.currency = credit_percent, amount, currency
        self.crossing_ids = list(crossing_ids)
        self.status = status
        self.window_count = window_count
        self.computed_at = computed_at

    @property
    def period(self) -> dict[str, datetime]:
        """The period it is for, as its representations nest it."""
        return {"period_start": self.period_start, "period_end": self.period_end}


def credit_period_id(start: datetime, end: datetime) -> UUID:
    return stable_id("analysis", "credit-period", times.iso(start), times.iso(end))


def sla_credit_id(purchased_offering_id: str, start: datetime, end: datetime) -> UUID:
    return stable_id("analysis", "sla-credit", purchased_offering_id, times.iso(start),
                     times.iso(end))


# --- offering-wide problems (``problems.py``) -----------------------------------------------

class ProblemViolation(Aggregate):
    """One customer-level violation as the offering-wide problems count it (an SLA
    violation or analysis of Customer QoS/SLA Management, or a breach monitoring raised):
    named by its source and id (``create_id``), so the same violation heard again — a
    redelivery, a replay, the same crossing raised then escalated — is refused by the
    store and changes nothing. Never changed once kept."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return stable_id("analysis", "violation", key)

    @event("Kept")
    def __init__(self, key: str, kind: str, source_id: str, purchased_offering_id: str,
                 customer_id: str | None, product_offering_id: str, at: datetime,
                 received_at: datetime, parameter: str | None, href: str | None) -> None:
        self.key, self.kind, self.source_id = key, kind, source_id
        self.purchased_offering_id, self.customer_id = purchased_offering_id, customer_id
        self.product_offering_id = product_offering_id
        self.at, self.received_at = at, received_at
        self.parameter, self.href = parameter, href

    @property
    def violation(self) -> problems.Violation:
        return problems.Violation(self.kind, self.source_id, self.purchased_offering_id,
                                  self.customer_id, self.product_offering_id, self.at,
                                  self.parameter, self.href)


class ServiceProblem(Aggregate):
    """The offering-wide problem of one product offering (TMF656 ServiceProblem): one per
    offering (``create_id``), opened when its violations reach its rule, updated by each
    further violation, resolved by the clock when quiet, and reopened — its next
    ``episode`` — when violations recur. What it keeps is bounded: counts, and the latest
    ``problems.KEPT`` evidence refs, purchased offerings and customers.

    ``facts`` (every event but the resolution) set what a violation changed: ``rule``,
    ``since`` and ``received_after`` (the episode counts the violations after both),
    ``first_alert``, ``last_alert``, ``last_received_at``, the counts
    (``violation_count``, ``affected_count``, ``customer_count``, ``active_count``) and
    the lists (``affected``, ``customers``, ``evidence``), ``changed_at``."""

    @staticmethod
    def create_id(product_offering_id: str) -> UUID:
        return stable_id("analysis", "service-problem", product_offering_id)

    @event("Opened")
    def __init__(self, product_offering_id: str, offering_group_id: str | None,
                 offering_name: str | None, facts: dict[str, Any]) -> None:
        self.product_offering_id = product_offering_id
        self.offering_group_id, self.offering_name = offering_group_id, offering_name
        self.episode = 1
        self.status = problems.OPEN
        self.raised_at = facts["changed_at"]
        self.resolved_at: datetime | None = None
        self.status_reason = "the offering's violations reached its rule"
        self._set(facts)

    def _set(self, facts: dict[str, Any]) -> None:
        for name, value in facts.items():
            setattr(self, name, copy.deepcopy(value))

    def update(self, facts: dict[str, Any], grew: bool) -> None:
        """A further violation while open (``grew``: it affects a purchased offering or
        customer not affected before)."""
        self._updated(facts=facts, grew=grew)

    @event("Updated")
    def _updated(self, facts: dict[str, Any], grew: bool) -> None:
        self._set(facts)

    def resolve(self, at: datetime, reason: str) -> None:
        if self.status == problems.OPEN:
            self._resolved(at=at, reason=reason)

    @event("Resolved")
    def _resolved(self, at: datetime, reason: str) -> None:
        self.status, self.resolved_at, self.changed_at = problems.RESOLVED, at, at
        self.status_reason = reason

    def reopen(self, facts: dict[str, Any]) -> None:
        """Violations heard after the resolution reached the rule again."""
        if self.status == problems.RESOLVED:
            self._reopened(facts=facts)

    @event("Reopened")
    def _reopened(self, facts: dict[str, Any]) -> None:
        self.episode += 1
        self.status, self.resolved_at = problems.OPEN, None
        self.raised_at = facts["changed_at"]
        self.status_reason = "violations recurred and reached the offering's rule again"
        self._set(facts)


class ProblemRule(Changeable):
    """When an offering's violations make an offering-wide problem
    (``problems.Rule``): the rule of one offering, or the default (``rule_id``
    ``default``). Configuration, changed over HTTP with ``If-Match``; each change is an
    event of the log (who, when)."""

    @staticmethod
    def create_id(rule_id: str) -> UUID:
        return stable_id("analysis", "problem-rule", rule_id)

    @event("Set")
    def __init__(self, rule_id: str, count: int | None, share: float | None, period: str,
                 quiet_time: str) -> None:
        self.rule_id = rule_id
        self.count, self.share, self.period, self.quiet_time = count, share, period, \
            quiet_time

    def change(self, **fields: Any) -> None:
        self._record_changes({k: v for k, v in fields.items() if getattr(self, k) != v})

    @property
    def rule(self) -> problems.Rule:
        return problems.Rule.of({"count": self.count, "share": self.share,
                                 "period": self.period, "quietTime": self.quiet_time})
