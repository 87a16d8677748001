"""The registry's stored read model: its aggregates as rows of its own database, with
the columns its lists filter and sort by (``shared/readmodel.py``).

The inventory is what grows: a million purchased offerings are paged, filtered by
customer, offering, group, SLA type or status, and sorted, in the database. A purchased
offering's group is its offering's, as it is now: a column of the row kept in step with
the offering's moves in the same transaction (:meth:`RegistryIndex.changed`).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any
from uuid import UUID

from services.threshold_registry.domain import (
    OfferingGroup,
    Placed,
    ProductOffering,
    PurchasedOffering,
    SlaType,
    ThresholdStandard,
)
from services.threshold_registry.domain.analysis_log import LoggedResult
from services.threshold_registry.domain.replicas import MonitoringRegimeReplica, Replica
from shared.bulkload import Creation
from shared.readmodel import Column, StoredIndex, Table
from shared.store import ServiceApplication


def _text(name: str) -> Any:
    read = attrgetter(name)
    return lambda aggregate: None if (value := read(aggregate)) is None else str(value)


VERSION = Column("version", attrgetter("version"), "number")
NAME = Column("name", attrgetter("name"))
GROUP_OF_OFFERING = Column("offeringGroupId", _text("group_id"))


# A purchased offering registered and never changed (most of a migrated inventory), as
# ``PurchasedOffering.__init__`` keeps it: what a rebuild stores without replaying it.
REGISTERED = Creation(PurchasedOffering.Registered, (
    "product_id", "customer_id", "customer_group", "offering_id", "sla_type_id", "site",
    "monthly_charge", "currency", "status", "start_date", "end_date",
    ("status_changed_at", None), ("status_reason", None), ("analysis_log", [])))

# The inventory's lists as users ask for them, read in order from an index each (and
# counted from it): a customer's or a customer group's items by start date, an
# offering's items by customer, a group's items of a status by start date (which also
# serves a group's items by status), the items of a status by start date.
INVENTORY_ORDERS = (
    ("customerId", "startDate"),
    ("customerGroup", "startDate"),
    ("productOfferingId", "customerId"),
    ("offeringGroupId", "status", "startDate"),
    ("status", "startDate"),
)


class RegistryIndex(StoredIndex):
    """Every aggregate of the registry, stored; purchased offerings placed in groups.

    A purchased offering's ``offeringGroupId`` column is its offering's group: looked up
    for each batch (:meth:`storing`), and moved with the offering (:meth:`changed`)."""

    def __init__(self, app: ServiceApplication) -> None:
        self._groups: dict[str, str | None] = {}
        self.placed_in = Column("offeringGroupId", self._group_of)
        super().__init__(app, "registry", (
            Table(OfferingGroup, (NAME, VERSION,
                                  Column("lifecycleStatus", _text("lifecycle_status")),
                                  Column("retired", attrgetter("is_retired"), "bool"))),
            Table(ProductOffering, (NAME, VERSION,
                                    Column("lifecycleStatus", _text("lifecycle_status")),
                                    GROUP_OF_OFFERING)),
            Table(SlaType, (NAME, VERSION)),
            Table(ThresholdStandard, (VERSION,
                                      Column("productOfferingId", _text("offering_id")),
                                      Column("offeringGroupId", _text("offering_group_id")))),
            Table(PurchasedOffering, (
                Column("version", attrgetter("version"), "number", indexed=False),
                Column("id", _text("product_id")),
                Column("customerId", _text("customer_id")),
                Column("customerGroup", _text("customer_group")),
                Column("productOfferingId", _text("offering_id")),
                self.placed_in,
                Column("slaTypeId", _text("sla_type_id")),
                Column("site", _text("site"), indexed=False),
                Column("monthlyCharge", _text("monthly_charge"), indexed=False),
                Column("currency", _text("currency"), indexed=False),
                Column("status", _text("status")),
                Column("startDate", attrgetter("start_date"), "time"),
                Column("endDate", attrgetter("end_date"), "time", indexed=False),
            ), orders=INVENTORY_ORDERS),
            # Analysis results, a row each, listed by what they are about in the order
            # they were logged (seq) and filtered by their own fields.
            Table(LoggedResult, (
                Column("targetType", attrgetter("target_type"), indexed=False),
                Column("targetId", attrgetter("target_id"), indexed=False),
                Column("kind", lambda r: r.result.get("kind"), indexed=False),
                Column("severity", lambda r: r.result.get("severity"), indexed=False),
                Column("parameter", lambda r: r.result.get("parameter"), indexed=False),
                Column("analysedAt", lambda r: r.result.get("analysedAt"), "time",
                       indexed=False),
            ), orders=(("targetType", "targetId"),)),
            Table(Replica, (Column("kind", attrgetter("kind")),)),
            Table(MonitoringRegimeReplica),  # as an earlier release kept regimes
        ), creations=(REGISTERED,))

    def _group_of(self, item: PurchasedOffering) -> str | None:
        return self._groups.get(str(item.offering_id))

    def storing(self, tx: Any, aggregates: list[Any]) -> None:
        """The groups of the offerings this batch's purchased offerings name: the
        batch's own offerings as they are now, the others as stored."""
        self._groups = {str(o.id): None if o.group_id is None else str(o.group_id)
                        for o in aggregates if isinstance(o, ProductOffering)}
        wanted = sorted({str(i.offering_id) for i in aggregates
                         if isinstance(i, PurchasedOffering)} - set(self._groups))
        offerings = self.sql_table(ProductOffering)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in tx.execute(f"SELECT id, {GROUP_OF_OFFERING.sql} AS g FROM {offerings} "
                                  f"WHERE id IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall():
                self._groups[row["id"]] = row["g"]

    def changed(self, tx: Any, aggregates: list[Any]) -> None:
        """An offering that moved takes its purchased offerings with it."""
        moved = [(None if o.group_id is None else str(o.group_id), str(o.id))
                 for o in aggregates if isinstance(o, ProductOffering) and o.version > 1]
        inventory = self.sql_table(PurchasedOffering)
        tx.executemany(f"UPDATE {inventory} SET {self.placed_in.sql} = ? "
                       "WHERE c_product_offering_id = ?", moved)

    def placed(self, item: PurchasedOffering, row: Any) -> Placed:
        group = row[self.placed_in.sql]
        return Placed(item, None if group is None else UUID(group))
