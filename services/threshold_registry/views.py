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
from services.threshold_registry.replicas import MonitoringRegimeReplica
from shared.readmodel import Column, StoredIndex, Table
from shared.store import ServiceApplication


def _text(name: str) -> Any:
    read = attrgetter(name)
    return lambda aggregate: None if (value := read(aggregate)) is None else str(value)


VERSION = Column("version", attrgetter("version"), "number")
# A purchased offering's group is its offering's: kept by RegistryIndex.changed.
PLACED_IN = Column("offeringGroupId", lambda item: None)
NAME = Column("name", attrgetter("name"))

TABLES = (
    Table(OfferingGroup, (NAME, VERSION, Column("lifecycleStatus", _text("lifecycle_status")),
                          Column("retired", attrgetter("is_retired"), "bool"))),
    Table(ProductOffering, (NAME, VERSION,
                            Column("lifecycleStatus", _text("lifecycle_status")),
                            Column("offeringGroupId", _text("group_id")))),
    Table(SlaType, (NAME, VERSION)),
    Table(ThresholdStandard, (VERSION, Column("productOfferingId", _text("offering_id")),
                              Column("offeringGroupId", _text("offering_group_id")))),
    Table(PurchasedOffering, (
        VERSION,
        Column("id", _text("product_id")),
        Column("customerId", _text("customer_id")),
        Column("customerGroup", _text("customer_group")),
        Column("productOfferingId", _text("offering_id")),
        PLACED_IN,
        Column("slaTypeId", _text("sla_type_id")),
        Column("site", _text("site")),
        Column("monthlyCharge", _text("monthly_charge")),
        Column("currency", _text("currency")),
        Column("status", _text("status")),
        Column("startDate", attrgetter("start_date"), "time"),
        Column("endDate", attrgetter("end_date"), "time"),
    )),
    Table(MonitoringRegimeReplica),
)


class RegistryIndex(StoredIndex):
    """Every aggregate of the registry, stored; purchased offerings placed in groups."""

    def __init__(self, app: ServiceApplication) -> None:
        super().__init__(app, "registry", TABLES)

    def changed(self, tx: Any, aggregates: list[Any]) -> None:
        inventory = self.sql_table(PurchasedOffering)
        offerings = self.sql_table(ProductOffering)
        moved = [(None if o.group_id is None else str(o.group_id), str(o.id))
                 for o in aggregates if isinstance(o, ProductOffering)]
        tx.executemany(f"UPDATE {inventory} SET {PLACED_IN.sql} = ? "
                       "WHERE c_product_offering_id = ?", moved)
        items = [str(i.id) for i in aggregates if isinstance(i, PurchasedOffering)]
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            tx.execute(
                f"UPDATE {inventory} SET {PLACED_IN.sql} = (SELECT o.c_offering_group_id "
                f"FROM {offerings} o WHERE o.id = {inventory}.c_product_offering_id) "
                f"WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def placed(self, item: PurchasedOffering, row: Any) -> Placed:
        group = row[PLACED_IN.sql]
        return Placed(item, None if group is None else UUID(group))
