"""SLA credits: the rules of when a conformance period closes and what each purchased
offering is owed for it (docs/analysis.md, "SLA credits"). Pure: no store, no bus.

A *period* is a conformance period as monitoring's window summaries carry it
(``periodStart``, ``periodEnd``: calendar-aligned in the SLA type's time zone — a month,
a quarter — per the standard's ``conformancePeriod``). It closes at its end plus a settle
time (late summaries still arrive: a window closes after its allowed lateness, and the
relay publishes it after that), and never before the settle time has passed since its
first summary reached analysis — so an installation that backfills its history closes a
past period only once the backfill has brought it, and gets the credits it would have had.

At the close, each purchased offering judged in the period is owed a credit when it
missed: every parameter its standards judge over the period is one conformance period
(``aggregates.period_met``: availability pooled over the period against the target,
other aggregations no breached window), and the SLA type's
``creditPercentPerBreachedPeriod`` is owed per one missed, at most ``creditCapPercent``,
of the purchased offering's ``monthlyCharge`` in its currency — the definitions (and the
functions) of aggregate analysis's credit exposure, so the two never disagree. Planned
outages count as the SLA type says because the summaries already do: monitoring leaves
agreed outage time out of the eligible time under ``excluded`` accounting and counts it
as up or down under the others (docs/sla-figures.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.analysis import aggregates
from shared import times

#: What became of a credit: ``due`` (published to billing), or kept but not published
#: because billing could not apply it — no monthly charge or currency known
#: (``unpriced``), no credit percentage in the SLA type's terms (``withoutTerms``), no
#: customer known (``withoutCustomer``).
DUE, UNPRICED, WITHOUT_TERMS, WITHOUT_CUSTOMER = "due", "unpriced", "withoutTerms", \
    "withoutCustomer"
STATUSES = (DUE, UNPRICED, WITHOUT_TERMS, WITHOUT_CUSTOMER)


def period_of(summary: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The conformance period a window summary counts in, when it is one a credit is
    owed for: a purchased offering's series with a period (a pooled series, or a
    standard without a conformance period, closes none)."""
    scope = summary.get("scope") or {}
    start, end = summary.get("periodStart"), summary.get("periodEnd")
    if scope.get("type") != "purchasedOffering" or not summary.get("purchasedOfferingId") \
            or not start or not end:
        return None
    return times.parse(str(start)), times.parse(str(end))


def close_at(end: datetime, first_seen: datetime, settle_seconds: float) -> datetime:
    """When a period closes: its end plus the settle time, and not before the settle time
    has passed since its first summary arrived (a backfill brings a past period's
    summaries after its end)."""
    return max(end, first_seen) + timedelta(seconds=settle_seconds)


@dataclass(frozen=True)
class Owed:
    """What one purchased offering is owed for one period."""

    purchased_offering_id: str
    customer_id: str | None
    sla_type_id: str | None
    breached_periods: int
    missed_parameters: tuple[str, ...]
    credit_percent: Decimal | None
    amount: Decimal | None
    currency: str | None
    status: str
    window_count: int


def owed(purchased_offering_id: str, rows: Iterable[Mapping[str, Any]],
         terms: Mapping[str, Any] | None, purchased: Mapping[str, Any] | None
         ) -> Owed | None:
    """The credit one purchased offering is owed for a period, from the ``offerings``
    statement's rows of that period (``aggregates.statements``: one a parameter), its SLA
    type's terms and its purchased offering (the replicas); None when nothing is owed
    (every parameter met its target, or the terms give 0 %)."""
    rows = list(rows)
    missed = sorted({str(r["parameter"]) for r in rows if not aggregates.period_met(r)})
    if not missed:
        return None
    windows = sum(int(r.get("windows") or 0) for r in rows)
    sla_type = next((str(r["sla_type"]) for r in rows if r.get("sla_type")), None)
    purchased = purchased or {}
    customer = purchased.get("customerId")
    percent = aggregates.credit_percent(len(missed), terms)
    amount = currency = None
    if percent is None:
        status = WITHOUT_TERMS
    elif percent <= 0:
        return None
    else:
        amount = aggregates.credit_amount(percent, purchased.get("monthlyCharge"))
        currency = str(purchased["currency"]) if purchased.get("currency") else None
        status = UNPRICED if amount is None or currency is None else \
            DUE if customer else WITHOUT_CUSTOMER
    return Owed(purchased_offering_id=purchased_offering_id,
                customer_id=str(customer) if customer else None, sla_type_id=sla_type,
                breached_periods=len(missed), missed_parameters=tuple(missed),
                credit_percent=percent, amount=amount,
                currency=currency if amount is not None else None, status=status,
                window_count=windows)


def with_customer(credit: Owed, customer_id: str | None) -> Owed:
    """A credit whose inventory replica names no customer, with the one its summaries
    name (due, when that was all it lacked)."""
    if credit.customer_id or not customer_id:
        return credit
    return replace(credit, customer_id=customer_id, status=DUE
                   if credit.status == WITHOUT_CUSTOMER else credit.status)


def percent_text(percent: Decimal | None) -> str | None:
    """A credit percentage as decimal text without trailing zeros (``5``, ``7.5``)."""
    return None if percent is None else format(percent.normalize(), "f")


def percent_number(percent: str | None) -> float | int | None:
    """A credit percentage as the message's number (an integer when it is whole)."""
    if percent is None:
        return None
    value = Decimal(percent)
    return int(value) if value == value.to_integral_value() else float(value)
