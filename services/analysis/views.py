"""analysis's stored read model (``shared/readmodel.py``): every window summary as a row
with the columns aggregate analysis filters, groups and sums on, and the replicas of the
registry's resources.

What grows here is the summaries (a row per series per closed window: a year of hourly
windows of 100 purchased offerings is 876,000 rows). Aggregates are computed in SQL over
these columns (``aggregates.py``), never by loading the summaries: the period is a range
on ``windowEnd`` read from its index together with the scope type and parameter
(``orders``), the filters are indexed equality columns, and the figures (seconds, counts,
values, targets) are plain columns the statements sum.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING

from services.analysis import problems
from services.analysis.domain import (
    CreditPeriod,
    ProblemRule,
    ProblemViolation,
    Replica,
    ServiceProblem,
    SlaCredit,
    WindowSummary,
)
from services.analysis.scheduling import KINDS, credit_period_due, trend_schedule_due
from services.analysis.trend_runs import TrendRun, TrendSchedule
from shared.bulkload import Creation
from shared.readmodel import Column, ColumnKind, StoredIndex, Table, due_columns

if TYPE_CHECKING:
    from services.analysis.application import Analysis

NAME = "analysis"


def _field(name: str, kind: ColumnKind = "text", indexed: bool = False,
           wire: str | None = None) -> Column:
    return Column(name, lambda summary: summary[wire or name], kind, indexed=indexed)


#: The dimensions a query filters and groups by (wire name → column).
DIMENSIONS = {
    name: _field(name, indexed=True)
    for name in ("customerId", "customerGroup", "offeringGroupId", "productOfferingId",
                 "slaTypeId", "purchasedOfferingId")
}
PARAMETER = _field("parameter")
SCOPE_TYPE = Column("scopeType", lambda s: (s["scope"] or {}).get("type"))
SCOPE_ID = Column("scopeId", lambda s: (s["scope"] or {}).get("id"), indexed=False)
WINDOW_START = _field("windowStart", "time")
WINDOW_END = _field("windowEnd", "time", indexed=True)
PERIOD_START = _field("periodStart", "time")
#: With the start, the period a credit is computed for (a month and a quarter may start
#: together); and the crossing a window raised, the evidence behind a credit.
PERIOD_END = _field("periodEnd", "time", indexed=False)
CROSSING = _field("crossingId", indexed=False)
VALUE = _field("value", "number")
TARGET = _field("conformanceTarget", "number")
COMPARATOR = _field("comparator")
AGGREGATION = _field("aggregation")
UNIT = _field("unit")
SAMPLES = _field("sampleCount", "number")
ELIGIBLE = _field("eligibleSeconds", "number")
BAD = _field("badSeconds", "number")
EXCLUDED = _field("excludedSeconds", "number")
BREACHED = _field("breached", "bool")
WARNED = _field("warned", "bool")
PLANNED = _field("planned", "bool")
REGIME = _field("regimeId")

SUMMARY_COLUMNS = (PARAMETER, SCOPE_TYPE, SCOPE_ID, REGIME, *DIMENSIONS.values(),
                   WINDOW_START, WINDOW_END, PERIOD_START, VALUE, TARGET, COMPARATOR,
                   AGGREGATION, UNIT, SAMPLES, ELIGIBLE, BAD, EXCLUDED, BREACHED, WARNED,
                   PLANNED, PERIOD_END, CROSSING)
REPLICA_KIND = Column("replicaKind", attrgetter("kind"))
#: A purchased offering's offering and status: the active purchased offerings of an
#: offering (what a problem's share is of) are counted in SQL.
REPLICA_OFFERING = Column("productOfferingId", lambda r: r.resource.get("productOfferingId"))
REPLICA_STATUS = Column("status", lambda r: r.resource.get("status"), indexed=False)

# --- offering-wide problems: the violations counted, by offering and time (a problem's
# counts are one indexed range of them), and the problems by offering and status.
VIOLATION_OFFERING = Column("productOfferingId", attrgetter("product_offering_id"))
VIOLATION_AT = Column("at", attrgetter("at"), "time")
VIOLATION_RECEIVED = Column("receivedAt", attrgetter("received_at"), "time", indexed=False)
VIOLATION_PURCHASED = Column("purchasedOfferingId", attrgetter("purchased_offering_id"),
                             indexed=False)
VIOLATION_CUSTOMER = Column("customerId", attrgetter("customer_id"))
PROBLEM_OFFERING = Column("productOfferingId", attrgetter("product_offering_id"))
PROBLEM_STATUS = Column("status", attrgetter("status"))
PROBLEM_CHANGED = Column("timeChanged", attrgetter("changed_at"), "time")
(PROBLEM_DUE,) = due_columns(problems.problem_due, KINDS[ServiceProblem])
#: The columns the aggregate statements read, as one composite index: the equality
#: columns, the period's range, then the rest (PostgreSQL allows 32 columns an index).
AGGREGATED = ("scopeType", "parameter", "windowEnd", "windowStart", "periodStart",
              *DIMENSIONS, "value", "conformanceTarget", "comparator", "aggregation", "unit",
              "sampleCount", "eligibleSeconds", "badSeconds", "excludedSeconds", "breached",
              "warned", "planned")

# A summary is one event, never changed, of two texts: a rebuild (or the first catch-up
# after a backfill) stores it straight off its stored event, without replaying it.
RECEIVED = Creation(WindowSummary.Received, ("summary_id", "figures"))


def tables() -> tuple[Table, ...]:
    return (
        # A period of one parameter over purchased offerings: the question every
        # aggregate asks, answered from one index that holds every column the statements
        # read (an index-only scan: a few hundred bytes a row instead of the row with
        # its state).
        Table(WindowSummary, SUMMARY_COLUMNS, orders=(AGGREGATED,)),
        Table(Replica, (REPLICA_KIND, REPLICA_OFFERING, REPLICA_STATUS)),
        Table(ProblemViolation, (VIOLATION_OFFERING, VIOLATION_AT, VIOLATION_RECEIVED,
                                 VIOLATION_PURCHASED, VIOLATION_CUSTOMER),
              orders=(("productOfferingId", "at"),)),
        Table(ServiceProblem, (PROBLEM_OFFERING, PROBLEM_STATUS, PROBLEM_CHANGED,
                               PROBLEM_DUE)),
        Table(ProblemRule, (Column("ruleId", attrgetter("rule_id")),)),
        # Trend runs, newest first in lists, by when they ran, how they were asked and
        # whether they found something; the schedule, by its next due time.
        Table(TrendRun, (Column("analysedAt", attrgetter("analysed_at"), "time"),
                         Column("trigger", attrgetter("trigger")),
                         Column("actor", attrgetter("actor")),
                         Column("deterioratingCount", attrgetter("deteriorating_count"),
                                "number"))),
        Table(TrendSchedule, due_columns(trend_schedule_due, KINDS[TrendSchedule])),
        *credit_tables(),
    )


# --- SLA credits ------------------------------------------------------------------------
def _attr(name: str, kind: ColumnKind = "text", indexed: bool = True) -> Column:
    return Column(name, attrgetter(_snake(name)), kind, indexed=indexed)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def credit_tables() -> tuple[Table, ...]:
    """The periods the clock closes (found by their due-time column) and the credits,
    listed by purchased offering, customer, SLA type, period and status."""
    return (
        Table(CreditPeriod, (Column("end", attrgetter("end"), "time"),
                             *due_columns(credit_period_due, KINDS[CreditPeriod]))),
        Table(SlaCredit, (_attr("purchasedOfferingId"), _attr("customerId"),
                          _attr("slaTypeId"), _attr("periodStart", "time"),
                          _attr("periodEnd", "time"), _attr("status"),
                          _attr("computedAt", "time", indexed=False)),
              orders=(("customerId", "periodStart"), ("purchasedOfferingId", "periodStart"))),
    )


class AnalysisIndex(StoredIndex):
    """Every aggregate of the analysis log, stored (``slactl readmodel rebuild analysis``
    rebuilds it)."""

    def __init__(self, app: Analysis) -> None:
        super().__init__(app, NAME, tables(), creations=(RECEIVED,))
