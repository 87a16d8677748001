"""analysis's aggregates: the window summaries it heard from monitoring (one per series
per closed window, never changed once kept), its replicas of the registry's resources,
and the SLA credits of closed conformance periods. No Flask, no pika."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate, event

from services.analysis import credits
from shared import replica, times
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
