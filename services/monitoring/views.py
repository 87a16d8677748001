"""Monitoring's stored read models (``shared/readmodel.py``): its aggregates as rows of
its own database, with the columns its lists filter and sort by.

Two indexes, one per log:

- ``monitoring`` over the main (intake) log: the regimes, and the replicas of the
  registry's resources and of planned outages. The working set holds these in memory for
  intake (a :class:`~shared.readmodel.Resident`: bounded by the estate), loaded from here
  at start instead of replayed from the log;
- ``outcomes`` over the outcomes log: crossings, burn alerts and quarantines — what grows
  with history, answered from the tables, page by page, never held by an HTTP worker.

Window evaluations are not kept here: ``RecentEvaluations`` keeps the recent ones of each
series (``services/monitoring/application.py``).

Each column is the attribute as the resource's schema shows it on the wire
(``services/monitoring/schemas.py``), so a filter or sort answered in SQL means what it
meant over the dumped list: times as instants, figures as numbers, flags as booleans.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from services.monitoring.domain import BurnAlert, Crossing, Quarantine, Regime, Replica
from shared.readmodel import Column, StoredIndex, Table
from shared.store import ServiceApplication
from shared.times import epoch_of


def _text(name: str) -> Callable[[Any], Any]:
    read = attrgetter(name)
    return lambda aggregate: None if (value := read(aggregate)) is None else str(value)


def _member(mapping: str, key: str) -> Callable[[Any], Any]:
    """A member of one of the aggregate's dicts (its evidence, a step of its history)."""
    read = attrgetter(mapping)
    return lambda aggregate: (read(aggregate) or {}).get(key)


def _figure(mapping: str, key: str) -> Callable[[Any], Any]:
    member = _member(mapping, key)

    def read(aggregate: Any) -> Any:
        value = member(aggregate)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    return read


def _flag(mapping: str, key: str) -> Callable[[Any], Any]:
    member = _member(mapping, key)
    return lambda aggregate: v if isinstance(v := member(aggregate), bool) else None


def _plain(column: Column) -> Column:
    """A column lists filter and sort by in SQL, without an index of its own to keep up
    (a figure, a small table's attribute): the indexed columns narrow first."""
    return Column(column.name, column.read, column.kind, indexed=False)


def _instant(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Recorded ISO-8601 text as a time column (text that is not a time: none)."""
    def moment(aggregate: Any) -> datetime | None:
        seconds = epoch_of(str(text)) if (text := read(aggregate)) is not None else None
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    return moment


ID = Column("id", _text("id"))
VERSION = _plain(Column("version", attrgetter("version"), "number"))
CREATED = attrgetter("created_on")
SERIES = (Column("regimeId", _text("regime_id")), Column("parameter", _text("parameter")),
          Column("scopeType", _text("scope_type")), Column("scopeId", _text("scope_id")))

# Regimes are few (one per watched group or offering): no column needs an index.
MAIN_TABLES = (
    Table(Regime, tuple(_plain(c) for c in (
        ID, VERSION, Column("name", _text("name")),
        Column("offeringGroupId", _text("offering_group_id")),
        Column("productOfferingId", _text("offering_id")),
        Column("slaTypeId", _text("sla_type_id")),
        Column("customerGroup", _text("customer_group")),
        Column("window", _text("window")),
        Column("allowedLateness", _text("allowed_lateness")),
        Column("clearAfter", attrgetter("clear_after"), "number"),
        Column("status", _text("status")),
    ))),
    Table(Replica),
)

# What an operator lists, newest first or by when the level was reached: one series'
# (its scope), a level (on one kind of scope) or open ones since a time, a regime's by
# either time. Each is read
# in order from an index (then seq) and counted from it.
CROSSING_ORDERS = (
    ("scopeId", "raisedAt"),
    ("level", "raisedAt"),
    ("level", "scopeType", "raisedAt"),
    ("open", "raisedAt"),
    ("regimeId", "raisedAt"),
    ("regimeId", "since"),
)
BURN_ALERT_ORDERS = (
    ("scopeId", "raisedAt"),
    ("severity", "raisedAt"),
    ("open", "raisedAt"),
    ("regimeId", "raisedAt"),
)

OUTCOME_TABLES = (
    Table(Crossing, (
        ID, VERSION, *SERIES,
        Column("level", attrgetter("shown_level")),
        Column("open", attrgetter("open"), "bool"),
        Column("raisedAt", CREATED, "time"),
        Column("since", _instant(attrgetter("since")), "time"),
        _plain(Column("measuredValue", _figure("last", "measuredValue"), "number")),
        _plain(Column("unit", _member("last", "unit"))),
        _plain(Column("standardId", _member("last", "standardId"))),
        _plain(Column("standardVersion", _figure("last", "standardVersion"), "number")),
        _plain(Column("planned", _flag("first", "planned"), "bool")),
    ), orders=CROSSING_ORDERS),
    Table(BurnAlert, (
        ID, VERSION, *SERIES,
        Column("severity", _text("severity")),
        Column("open", attrgetter("open"), "bool"),
        Column("raisedAt", CREATED, "time"),
        _plain(Column("resolution", _member("evidence", "resolution"))),
        _plain(Column("factor", _figure("evidence", "factor"), "number")),
        _plain(Column("burnRate", _figure("evidence", "burnRate"), "number")),
        _plain(Column("standardId", _member("evidence", "standardId"))),
        Column("windowStart", _instant(_member("evidence", "windowStart")), "time"),
        _plain(Column("planned", _flag("evidence", "planned"), "bool")),
    ), orders=BURN_ALERT_ORDERS),
    # Quarantines are few (what failed to evaluate): no column needs an index.
    Table(Quarantine, tuple(_plain(c) for c in (
        ID, VERSION,
        Column("kind", _text("kind")),
        Column("partition", _text("partition")),
        Column("regimeId", _text("regime_id")),
        Column("parameter", _text("parameter")),
        Column("batchId", _text("batch_id")),
        Column("position", attrgetter("position"), "number"),
        Column("quarantinedAt", CREATED, "time"),
    ))),
)


class MonitoringIndex(StoredIndex):
    """The main log's regimes and replicas, stored."""

    def __init__(self, app: ServiceApplication) -> None:
        super().__init__(app, "monitoring", MAIN_TABLES)


class OutcomesIndex(StoredIndex):
    """The outcomes log's crossings, burn alerts and quarantines, stored."""

    def __init__(self, app: ServiceApplication) -> None:
        super().__init__(app, "outcomes", OUTCOME_TABLES)
