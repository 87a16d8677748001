"""The purchased-offering inventory (after TMF637 Product): what a customer bought, under
which SLA type, at what monthly charge, its status, and the analysis results logged on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from services.threshold_registry.domain.analysis_log import AnalysisLog
from services.threshold_registry.domain.validation import (
    ValidatedCreation,
    as_utc,
    check_choice,
    check_optional_uuid,
    now,
)
from shared.changes import Changeable
from shared.errors import ErrorCollector, InvalidTransition, InvalidValue
from shared.ids import client_id_problem, stable_id
from shared.inflection import camel
from shared.money import normalise_currency, normalise_money

INVENTORY_STATUSES = ("active", "suspended", "terminated")


#: A purchased offering's fields besides its product id and status (its attributes); the
#: API names each in camelCase, ``offering_id`` as ``productOfferingId``.
FIELDS = ("customer_id", "customer_group", "offering_id", "sla_type_id", "site",
          "monthly_charge", "currency", "start_date", "end_date")


def _validate_inventory(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A purchased offering's fields (snake_case), checked together and normalised."""
    errors = ErrorCollector()
    out: dict[str, Any] = {}
    for key in fields:
        if key not in FIELDS:
            errors.add(key, f"unknown field; known fields: {', '.join(FIELDS)}")
    customer = fields.get("customer_id")
    if not isinstance(customer, str) or not customer.strip():
        errors.add("customerId", "customerId is required and must be non-empty text")
    out["customer_id"] = customer.strip() if isinstance(customer, str) else customer
    for key in ("customer_group", "site"):
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            errors.add(camel(key), f"{camel(key)} must be text or null")
        out[key] = value
    if fields.get("offering_id") is None:
        errors.add("productOfferingId", "productOfferingId is required")
        out["offering_id"] = None
    else:
        out["offering_id"] = check_optional_uuid(
            errors, "productOfferingId", fields.get("offering_id"))
    out["sla_type_id"] = check_optional_uuid(errors, "slaTypeId", fields.get("sla_type_id"))
    out["monthly_charge"] = out["currency"] = None
    if fields.get("monthly_charge") is not None:
        try:
            out["monthly_charge"] = normalise_money(fields["monthly_charge"])
        except ValueError as exc:
            errors.add("monthlyCharge", str(exc))
    if fields.get("currency") is not None:
        try:
            out["currency"] = normalise_currency(fields["currency"])
        except ValueError as exc:
            errors.add("currency", str(exc))
    elif fields.get("monthly_charge") is not None:
        errors.add("currency", "currency is required with a monthlyCharge")
    for key in ("start_date", "end_date"):
        out[key] = None
        if fields.get(key) is not None:
            try:
                out[key] = as_utc(fields[key])
            except ValueError as exc:
                errors.add(camel(key), str(exc))
    if out["start_date"] and out["end_date"] and out["end_date"] <= out["start_date"]:
        errors.add("endDate", f"endDate {out['end_date'].isoformat()} must be after "
                              f"startDate {out['start_date'].isoformat()}")
    errors.raise_if_any()
    return out


class PurchasedOffering(ValidatedCreation, AnalysisLog, Changeable):
    """One purchased product offering in the inventory (after TMF637 Product).

    Its id derives from the outside ``product_id``, so registering the same product twice
    collides in the event store instead of creating a duplicate.
    """

    @staticmethod
    def create_id(product_id: str) -> UUID:
        return stable_id("purchased-offering", product_id)

    @event("Registered")
    def __init__(
        self,
        product_id: str,
        customer_id: str,
        offering_id: UUID,
        customer_group: str | None = None,
        sla_type_id: UUID | None = None,
        site: str | None = None,
        monthly_charge: str | None = None,
        currency: str | None = None,
        status: str = "active",
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> None:
        self.product_id = product_id
        self.customer_id = customer_id
        self.customer_group = customer_group
        self.offering_id = offering_id
        self.sla_type_id = sla_type_id
        self.site = site
        self.monthly_charge = monthly_charge
        self.currency = currency
        self.status = status
        self.start_date = start_date
        self.end_date = end_date
        self.status_changed_at: datetime | None = None
        self.status_reason: str | None = None
        self.analysis_log: list[dict[str, Any]] = []

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        product_id = kwargs.pop("product_id", None)
        status = kwargs.pop("status", None) or "active"
        errors = ErrorCollector()
        problem = client_id_problem(product_id)
        if problem is not None:
            errors.add("id", f"the product id: {problem}")
        check_choice(errors, "status", status, INVENTORY_STATUSES)
        try:
            fields = _validate_inventory(kwargs)
        except InvalidValue as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    errors.add(field, message)
        errors.raise_if_any()
        if fields["start_date"] is None:
            fields["start_date"] = now()
        return {"product_id": product_id, "status": status, **fields}

    @property
    def fields(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in FIELDS}

    def update(self, **changes: Any) -> None:
        """Change some fields (snake_case); only changed fields are recorded."""
        for key in ("product_id", "status"):
            if key in changes:
                raise InvalidValue({"id" if key == "product_id" else key: [
                    "the product id cannot change" if key == "product_id"
                    else "use change_status to change the status"]})
        merged = _validate_inventory({**self.fields, **changes})
        self._record_changes({k: merged[k] for k in changes if merged[k] != getattr(self, k)})

    def change_status(self, status: str, reason: str | None = None,
                      at: datetime | None = None) -> None:
        """active <-> suspended, either -> terminated; terminated is final."""
        errors = ErrorCollector()
        check_choice(errors, "status", status, INVENTORY_STATUSES)
        if reason is not None and not isinstance(reason, str):
            errors.add("statusReason", "statusReason must be text or null")
        when = now()
        if at is not None:
            try:
                when = as_utc(at)
            except ValueError as exc:
                errors.add("at", str(exc))
        errors.raise_if_any()
        if status == self.status:
            return
        if self.status == "terminated":
            raise InvalidTransition(
                f"purchased offering {self.product_id} is terminated; "
                f"it cannot become {status} (termination is final)"
            )
        self._status_changed(from_status=self.status, to_status=status, reason=reason, at=when)

    @event("StatusChanged")
    def _status_changed(self, from_status: str, to_status: str, reason: str | None,
                        at: datetime) -> None:
        self.status = to_status
        self.status_reason = reason
        self.status_changed_at = at



@dataclass(frozen=True)
class Placed:
    """A purchased offering with the offering group its offering is in now (None: in
    none, or not known here): what the inventory answers, so that a list can be filtered by
    group. Every other attribute is the purchased offering's."""

    item: PurchasedOffering
    offering_group_id: UUID | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.item, name)
