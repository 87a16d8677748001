"""SLA types: the commercial terms of an SLA (maintenance accounting, notice, service
credits), the time zone its conformance periods are laid in, and what missing data means
for the standards that do not say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsourcing.domain import Aggregate, event

from services.threshold_registry.domain.validation import (
    ValidatedCreation,
    check_choice,
    check_description,
    check_missing_data,
    check_name,
    check_time_zone,
    finite_number,
)
from shared.errors import ErrorCollector, InvalidTransition
from shared.inflection import camel

MAINTENANCE_ACCOUNTING = ("excluded", "counted-as-up", "counted-as-down")

#: An SLA type's terms (its attributes); the API names each in camelCase.
TERMS = ("name", "description", "maintenance_accounting", "minimum_notice_days",
         "credit_percent_per_breached_period", "credit_cap_percent", "time_zone",
         "missing_data", "no_data_after")


def _validate_sla_terms(terms: Mapping[str, Any]) -> dict[str, Any]:
    """All SLA-type terms checked together (the cap depends on the per-period credit)."""
    errors = ErrorCollector()
    out = dict(terms)
    for key in terms:
        if key not in TERMS:
            errors.add(key, f"unknown SLA type term; known terms: {', '.join(TERMS)}")
    out["name"] = check_name(errors, "name", terms.get("name"))
    out["description"] = check_description(errors, "description", terms.get("description"))
    check_choice(errors, "maintenanceAccounting", terms.get("maintenance_accounting"),
                  MAINTENANCE_ACCOUNTING)
    out["time_zone"] = check_time_zone(errors, "timeZone", terms.get("time_zone", "UTC"))
    out["missing_data"], out["no_data_after"] = check_missing_data(
        errors, "", terms.get("missing_data") or "unknown",
        1 if terms.get("no_data_after") is None else terms["no_data_after"])
    days = terms.get("minimum_notice_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
        errors.add("minimumNoticeDays", f"{days!r} must be a whole number of days, 0 to 365")
    percents: dict[str, float] = {}
    for key in ("credit_percent_per_breached_period", "credit_cap_percent"):
        try:
            value = float(finite_number(terms.get(key)))
        except ValueError as exc:
            errors.add(camel(key), str(exc))
            continue
        if not 0 <= value <= 100:
            errors.add(camel(key), f"{value} is outside 0-100 percent")
            continue
        out[key] = percents[key] = value
    if len(percents) == 2 and (
            percents["credit_cap_percent"] < percents["credit_percent_per_breached_period"]):
        errors.add(
            "creditCapPercent",
            f"creditCapPercent {percents['credit_cap_percent']} is below "
            f"creditPercentPerBreachedPeriod {percents['credit_percent_per_breached_period']}; "
            "the cap must be at least one period's credit",
        )
    errors.raise_if_any()
    return out


class SlaType(ValidatedCreation, Aggregate):
    """The commercial terms of an SLA: maintenance accounting, notice, service credits, and
    the time zone its conformance periods (calendar days, months, quarters) are laid in."""

    class Registered(Aggregate.Created):
        """Version 2 adds ``time_zone``; types registered before it have UTC periods.
        Version 3 adds what missing data means (``missing_data``, ``no_data_after``);
        types registered before it leave it unknown, as monitoring did then."""

        name: str
        maintenance_accounting: str
        minimum_notice_days: int
        credit_percent_per_breached_period: float
        credit_cap_percent: float
        description: str | None
        time_zone: str
        missing_data: str
        no_data_after: int

        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["time_zone"] = "UTC"

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["missing_data"] = "unknown"
            state["no_data_after"] = 1

    @event(Registered)
    def __init__(
        self,
        name: str,
        maintenance_accounting: str,
        minimum_notice_days: int,
        credit_percent_per_breached_period: float,
        credit_cap_percent: float,
        description: str | None = None,
        time_zone: str = "UTC",
        missing_data: str = "unknown",
        no_data_after: int = 1,
    ) -> None:
        self.name = name
        self.description = description
        self.time_zone = time_zone
        self.missing_data = missing_data
        self.no_data_after = no_data_after
        self.maintenance_accounting = maintenance_accounting
        self.minimum_notice_days = minimum_notice_days
        self.credit_percent_per_breached_period = credit_percent_per_breached_period
        self.credit_cap_percent = credit_cap_percent
        self.lifecycle_status = "active"

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        return _validate_sla_terms(kwargs)

    @property
    def terms(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in TERMS}

    def change_terms(self, **changes: Any) -> None:
        """Change some terms; the merged terms are validated as a whole."""
        if self.lifecycle_status == "retired":
            raise InvalidTransition(f"SLA type {self.name!r} is retired; its terms cannot change")
        merged = _validate_sla_terms({**self.terms, **changes})
        changed = {k: merged[k] for k in changes if merged[k] != getattr(self, k)}
        if changed:
            self._terms_changed(changes=changed)

    @event("TermsChanged")
    def _terms_changed(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def retire(self) -> None:
        if self.lifecycle_status != "retired":
            self._retired()

    @event("Retired")
    def _retired(self) -> None:
        self.lifecycle_status = "retired"
