"""The threshold registry's domain model: offerings, their groups, SLA types, threshold
standards (after TMF657) and the purchased-offering inventory (after TMF637).

Pure Python plus ``eventsourcing``: no web framework, no broker, nothing from ``shared``.

Every command validates (and normalises) its input *before* it triggers an event, so an
invalid command leaves no trace in the audit record, and replaying stored events never
re-runs validation (rules may tighten later; history must still replay). Creation is
validated the same way: calling an aggregate class validates its arguments first (see
``_ValidatedCreation``), while reconstruction from stored events skips that step.

Commands that would change nothing trigger no event. Validation problems are collected and
reported together in ``InvalidValue.errors``, keyed by the field path the API shows
(camelCase, e.g. ``parameters.0.thresholdTarget``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from shared.durations import duration_seconds
from shared.errors import (
    DomainError,
    ErrorCollector,
    InvalidTransition,
    InvalidValue,
    NotFound,
)
from shared.ids import client_id_problem, stable_id
from shared.money import normalise_currency, normalise_money
from shared.standards import version_in_force

# --- errors -------------------------------------------------------------------------------


class UnknownVersion(DomainError, NotFound, KeyError):
    """A threshold standard has no version with the given number (also a ``KeyError``)."""


# --- constants ----------------------------------------------------------------------------

NAME_MAX = 200

OFFERING_LIFECYCLE = ("inDesign", "active", "retired")
OFFERING_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "inDesign": ("active", "retired"),
    "active": ("retired",),
    "retired": (),
}
MAINTENANCE_ACCOUNTING = ("excluded", "counted-as-up", "counted-as-down")
# What a window without data means: left out as unknown (the default), counted as down,
# or a noData crossing after ``noDataAfter`` consecutive empty windows.
MISSING_DATA = ("unknown", "counted-as-down", "noData")
BASES = ("commerciallyAgreed", "internallyAcceptable")
VERSION_STATUSES = ("draft", "approved", "superseded", "retired")
INVENTORY_STATUSES = ("active", "suspended", "terminated")

UNITS = (
    "%", "ratio", "ms", "s", "min", "h", "bit/s", "kbit/s", "Mbit/s", "Gbit/s",
    "count", "packets", "EUR", "USD", "GBP", "days",
)
KINDS = ("technical", "time", "economic", "process")
AGGREGATIONS = ("mean", "min", "max", "sum", "ratio", "availability")
COMPARATORS = ("GE", "GT", "LE", "LT", "EQ")

_UNSET: Any = object()  # "argument not given", distinct from an explicit None

# --- pure helpers -------------------------------------------------------------------------

def parse_percentile(aggregation: str) -> float | None:
    """The percentile of ``pNN`` / ``pNN.N`` (``p95`` -> 95.0); None if not that shape.

    Raises ``ValueError`` for the right shape but a value outside (0, 100].
    """
    match = re.fullmatch(r"[pP](\d+(?:\.\d+)?)", aggregation)
    if match is None:
        return None
    value = float(match.group(1))
    if not 0 < value <= 100:
        raise ValueError(
            f"percentile {match.group(1)} in {aggregation!r} is outside 0-100 "
            "(must be above 0 and at most 100, e.g. p95 or p99.9)"
        )
    return value


def normalise_aggregation(value: str) -> str:
    """Lower-case name or ``pNN``; ``ValueError`` naming the accepted forms otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("aggregation is required")
    text = value.strip()
    if parse_percentile(text) is not None:
        return text.lower()
    if text.lower() in AGGREGATIONS:
        return text.lower()
    raise ValueError(
        f"unknown aggregation {value!r}; use one of {', '.join(AGGREGATIONS)} "
        "or a percentile pNN such as p95 or p99.9"
    )


def normalise_comparator(value: str) -> str:
    """``GE``/``.ge``/``ge`` (any case) -> ``GE``; ``ValueError`` for anything else."""
    text = value.strip().lstrip(".").upper() if isinstance(value, str) else ""
    if text not in COMPARATORS:
        raise ValueError(
            f"unknown comparator {value!r}; use one of GE, GT, LE, LT, EQ "
            "(or .ge, .gt, .le, .lt, .eq)"
        )
    return text


def as_utc(value: Any) -> datetime:
    """A timezone-aware datetime (or ISO-8601 text) converted to UTC.

    Naive times are refused: a threshold that starts "at midnight" must say where.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO-8601 date-time such as 2025-01-01T00:00:00Z"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"{value!r} is not a date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no time zone; add one, e.g. Z")
    return value.astimezone(UTC)


def as_uuid(value: Any) -> UUID:
    """A UUID, or the UUID its text spells; ``ValueError`` otherwise."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _number(value: Any) -> float | int:
    """A finite int or float (Decimal converted); ``ValueError`` otherwise (bool too)."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def _check_name(errors: ErrorCollector, field: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.add(field, f"{field} is required and must be non-empty text")
        return None
    value = value.strip()
    if len(value) > NAME_MAX:
        errors.add(field, f"{field} has {len(value)} characters; at most {NAME_MAX} allowed")
        return None
    return value


def _check_description(errors: ErrorCollector, field: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        errors.add(field, f"{field} must be text or null")
        return None
    return value


def _check_optional_uuid(errors: ErrorCollector, field: str, value: Any) -> UUID | None:
    if value is None:
        return None
    try:
        return as_uuid(value)
    except ValueError as exc:
        errors.add(field, str(exc))
        return None


def _check_choice(errors: ErrorCollector, field: str, value: Any, choices: Iterable[str]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        errors.add(field, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _name_changes(aggregate: Any, name: str | None, description: Any) -> dict[str, Any]:
    """The validated changes of a rename or re-description (empty when nothing changes)."""
    errors = ErrorCollector()
    changes: dict[str, Any] = {}
    if name is not None:
        name = _check_name(errors, "name", name)
        if name is not None and name != aggregate.name:
            changes["name"] = name
    if description is not _UNSET:
        description = _check_description(errors, "description", description)
        if description != aggregate.description:
            changes["description"] = description
    errors.raise_if_any()
    return changes


def _copy_result(result: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(result, Mapping) or result.get("id") in (None, ""):
        raise InvalidValue({"id": ["an analysis result needs an id"]})
    return copy.deepcopy(dict(result))


# --- parameters ---------------------------------------------------------------------------

_PARAMETER_FIELDS = (
    "name", "description", "unit", "kind", "aggregation", "comparator", "conformanceTarget",
    "thresholdTarget", "conformancePeriod", "evaluationWindow", "graceTimes", "missingData",
    "noDataAfter",
)


def _validate_parameter(p: Any, path: str, errors: ErrorCollector) -> dict[str, Any]:
    """One parameter, normalised; problems are added to ``errors`` under ``path.field``."""
    if not isinstance(p, Mapping):
        errors.add(path, "a parameter must be an object")
        return {}
    for key in p:
        if key not in _PARAMETER_FIELDS:
            errors.add(f"{path}.{key}",
                       f"unknown field; known fields: {', '.join(_PARAMETER_FIELDS)}")

    name = _check_name(errors, f"{path}.name", p.get("name"))
    description = _check_description(errors, f"{path}.description", p.get("description"))

    unit = p.get("unit")
    if unit is None:
        errors.add(f"{path}.unit", "unit is required")
    elif unit not in UNITS:
        errors.add(f"{path}.unit", f"unknown unit {unit!r}; known units: {', '.join(UNITS)}")
        unit = None

    kind = p.get("kind")
    if kind not in KINDS:
        errors.add(f"{path}.kind", f"kind {kind!r} is not one of {', '.join(KINDS)}")

    aggregation = None
    try:
        aggregation = normalise_aggregation(p.get("aggregation"))  # type: ignore[arg-type]
    except ValueError as exc:
        errors.add(f"{path}.aggregation", str(exc))
    if aggregation == "availability" and unit is not None and unit not in ("%", "ratio"):
        errors.add(f"{path}.unit", f"availability is measured in % or ratio, not {unit!r}")

    comparator = None
    try:
        comparator = normalise_comparator(p.get("comparator"))  # type: ignore[arg-type]
    except ValueError as exc:
        errors.add(f"{path}.comparator", str(exc))

    levels: dict[str, float | int | None] = {}
    for field, required in (("conformanceTarget", True), ("thresholdTarget", False)):
        raw = p.get(field)
        levels[field] = None
        if raw is None:
            if required:
                errors.add(f"{path}.{field}", f"{field} (the breach level) is required")
            continue
        try:
            value = _number(raw)
        except ValueError as exc:
            errors.add(f"{path}.{field}", str(exc))
            continue
        if unit == "%" and not 0 <= value <= 100:
            errors.add(f"{path}.{field}", f"{value} is outside 0-100 for unit %")
        elif unit == "ratio" and not 0 <= value <= 1:
            errors.add(f"{path}.{field}", f"{value} is outside 0-1 for unit ratio")
        else:
            levels[field] = value
    breach, warning = levels["conformanceTarget"], levels["thresholdTarget"]
    if comparator == "EQ" and p.get("thresholdTarget") is not None:
        errors.add(
            f"{path}.thresholdTarget",
            "thresholdTarget is not allowed for comparator EQ "
            "(an exact target has no warning side)",
        )
    elif breach is not None and warning is not None and comparator in COMPARATORS:
        if comparator in ("GE", "GT") and warning < breach:
            errors.add(
                f"{path}.thresholdTarget",
                f"thresholdTarget {warning} is on the wrong side of conformanceTarget {breach} "
                f"for comparator {comparator} (warning must be at or above the breach level)",
            )
        elif comparator in ("LE", "LT") and warning > breach:
            errors.add(
                f"{path}.thresholdTarget",
                f"thresholdTarget {warning} is on the wrong side of conformanceTarget {breach} "
                f"for comparator {comparator} (warning must be at or below the breach level)",
            )

    durations: dict[str, int | None] = {}
    for field, required in (("conformancePeriod", False), ("evaluationWindow", True)):
        raw = p.get(field)
        durations[field] = None
        if raw is None:
            if required:
                errors.add(f"{path}.{field}", f"{field} is required, e.g. PT5M")
            continue
        try:
            seconds = duration_seconds(raw)
        except ValueError as exc:
            errors.add(f"{path}.{field}", str(exc))
            continue
        if seconds <= 0:
            errors.add(f"{path}.{field}", f"{field} {raw} must be longer than zero")
        else:
            durations[field] = seconds
    period, window = durations["conformancePeriod"], durations["evaluationWindow"]
    if period is not None and window is not None and window > period:
        errors.add(
            f"{path}.evaluationWindow",
            f"evaluationWindow {p.get('evaluationWindow')} is longer than conformancePeriod "
            f"{p.get('conformancePeriod')}",
        )

    grace = p.get("graceTimes", 0)
    if grace is None:
        grace = 0
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        errors.add(f"{path}.graceTimes", f"graceTimes {grace!r} must be a whole number, 0 or more")

    # Absent: as the SLA type of the offering (or group) says, else unknown.
    missing, after = _check_missing_data(errors, f"{path}.", p.get("missingData"),
                                         p.get("noDataAfter"))

    out: dict[str, Any] = {
        "name": name,
        "unit": unit,
        "kind": kind,
        "aggregation": aggregation,
        "comparator": comparator,
        "conformanceTarget": breach,
        "thresholdTarget": warning,
        "conformancePeriod": p.get("conformancePeriod"),
        "evaluationWindow": p.get("evaluationWindow"),
        "graceTimes": grace,
        "missingData": missing,
        "noDataAfter": after,
    }
    if description is not None:
        out["description"] = description
    return out


def _check_missing_data(errors: ErrorCollector, prefix: str, missing: Any, after: Any
                        ) -> tuple[Any, Any]:
    """What a window without data means (``missingData``) and, for ``noData``, after how
    many consecutive empty windows the crossing is raised (``noDataAfter``)."""
    if missing is not None and missing not in MISSING_DATA:
        errors.add(f"{prefix}missingData",
                   f"missingData {missing!r} is not one of {', '.join(MISSING_DATA)}")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int)
                              or not 1 <= after <= 1000):
        errors.add(f"{prefix}noDataAfter",
                   f"noDataAfter {after!r} must be a whole number of windows, 1 to 1000")
    return missing, after


def _collect_parameters(params: Any, errors: ErrorCollector,
                        path: str = "parameters") -> list[dict]:
    if not isinstance(params, list | tuple) or not params:
        errors.add(path, "at least one parameter is required")
        return []
    out = [_validate_parameter(p, f"{path}.{i}", errors) for i, p in enumerate(params)]
    seen: dict[str, int] = {}
    for i, p in enumerate(out):
        name = p.get("name")
        if name is None:
            continue
        if name in seen:
            errors.add(
                f"{path}.{i}.name",
                f"parameter name {name!r} is already used by parameter {seen[name]}; "
                "names must be unique within a standard",
            )
        else:
            seen[name] = i
    return out


def validate_parameters(params: Any) -> list[dict[str, Any]]:
    """Normalised copies of a standard's parameters, or ``InvalidValue`` with every problem.

    Comparators become ``GE``/``GT``/``LE``/``LT``/``EQ``, aggregations lower case, absent
    optional fields explicit (``thresholdTarget``/``conformancePeriod`` None, ``graceTimes``
    0). Keys of ``InvalidValue.errors`` look like ``parameters.0.unit``.
    """
    errors = ErrorCollector()
    out = _collect_parameters(params, errors)
    errors.raise_if_any()
    return out


def validate_valid_for(value: Any, errors: ErrorCollector | None = None,
                       path: str = "validFor") -> dict[str, datetime | None]:
    """``{"startDateTime": datetime, "endDateTime": datetime | None}`` in UTC, end > start."""
    own = errors is None
    errors = errors or ErrorCollector()
    out: dict[str, datetime | None] = {"startDateTime": None, "endDateTime": None}
    if not isinstance(value, Mapping):
        errors.add(path, "validFor must be an object with startDateTime (and endDateTime)")
    else:
        for key in value:
            if key not in out:
                errors.add(f"{path}.{key}", "unknown field; use startDateTime and endDateTime")
        for key in out:
            raw = value.get(key)
            if raw is None:
                if key == "startDateTime":
                    errors.add(f"{path}.{key}", "startDateTime is required")
                continue
            try:
                out[key] = as_utc(raw)
            except ValueError as exc:
                errors.add(f"{path}.{key}", str(exc))
        start, end = out["startDateTime"], out["endDateTime"]
        if start is not None and end is not None and end <= start:
            errors.add(
                f"{path}.endDateTime",
                f"endDateTime {end.isoformat()} must be after startDateTime {start.isoformat()}",
            )
    if own:
        errors.raise_if_any()
    return out


# --- aggregates ---------------------------------------------------------------------------


class _ValidatedCreation:
    """Validates and normalises creation arguments before the creation event exists.

    Calling an aggregate class goes through ``_create``; replaying stored events does
    not, so old events replay even if the rules have since become stricter.
    """

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        return kwargs

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        kwargs = cls._validate_creation(dict(kwargs))
        return super()._create(event_class, id=id, **kwargs)  # type: ignore[misc]


class OfferingGroup(_ValidatedCreation, Aggregate):
    """A named group of product offerings, watched and standardised together."""

    @event("Registered")
    def __init__(self, name: str, description: str | None = None) -> None:
        self.name = name
        self.description = description
        self.lifecycle_status = "active"

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        kwargs["name"] = _check_name(errors, "name", kwargs.get("name"))
        kwargs["description"] = _check_description(
            errors, "description", kwargs.get("description"))
        errors.raise_if_any()
        return kwargs

    @property
    def is_retired(self) -> bool:
        return self.lifecycle_status == "retired"

    def update(self, name: str | None = None, description: str | None = _UNSET) -> None:
        """Rename or re-describe; ``description=None`` clears it, omitted leaves it."""
        if self.is_retired:
            raise InvalidTransition(f"offering group {self.name!r} is retired; it cannot change")
        changes = _name_changes(self, name, description)
        if changes:
            self._updated(changes=changes)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def retire(self) -> None:
        """Retire the group (once); its offerings keep their history."""
        if not self.is_retired:
            self._retired()

    @event("Retired")
    def _retired(self) -> None:
        self.lifecycle_status = "retired"


class ProductOffering(_ValidatedCreation, Aggregate):
    """A product offering (TMF620 lifecycle), in at most one offering group at a time."""

    @event("Registered")
    def __init__(
        self,
        name: str,
        description: str | None = None,
        lifecycle_status: str = "inDesign",
        group_id: UUID | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.lifecycle_status = lifecycle_status
        self.group_id = group_id
        self.analysis_log: list[dict[str, Any]] = []

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        kwargs["name"] = _check_name(errors, "name", kwargs.get("name"))
        kwargs["description"] = _check_description(
            errors, "description", kwargs.get("description"))
        kwargs.setdefault("lifecycle_status", "inDesign")
        _check_choice(errors, "lifecycleStatus", kwargs["lifecycle_status"], OFFERING_LIFECYCLE)
        kwargs["group_id"] = _check_optional_uuid(
            errors, "offeringGroupId", kwargs.get("group_id"))
        errors.raise_if_any()
        return kwargs

    def update(self, name: str | None = None, description: str | None = _UNSET) -> None:
        """Rename or re-describe; ``description=None`` clears it, omitted leaves it."""
        changes = _name_changes(self, name, description)
        if changes:
            self._updated(changes=changes)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def change_lifecycle(self, status: str) -> None:
        """inDesign -> active -> retired, or inDesign -> retired; nothing else."""
        if status not in OFFERING_LIFECYCLE:
            raise InvalidValue({"lifecycleStatus": [
                f"{status!r} is not one of {', '.join(OFFERING_LIFECYCLE)}"]})
        if status == self.lifecycle_status:
            return
        if status not in OFFERING_TRANSITIONS[self.lifecycle_status]:
            raise InvalidTransition(
                f"offering {self.name!r} cannot go from {self.lifecycle_status} to {status}: "
                "the lifecycle only moves forward (inDesign -> active -> retired)"
            )
        self._lifecycle_changed(from_status=self.lifecycle_status, to_status=status)

    @event("LifecycleChanged")
    def _lifecycle_changed(self, from_status: str, to_status: str) -> None:
        self.lifecycle_status = to_status

    def move_to_group(self, group_id: UUID | None, reason: str | None = None) -> None:
        """Move into ``group_id`` (None: out of any group); the move and reason are recorded."""
        errors = ErrorCollector()
        target = _check_optional_uuid(errors, "offeringGroupId", group_id)
        if reason is not None and not isinstance(reason, str):
            errors.add("moveReason", "moveReason must be text or null")
        errors.raise_if_any()
        if target == self.group_id:
            return
        self._moved_to_group(from_group_id=self.group_id, to_group_id=target, reason=reason)

    @event("MovedToGroup")
    def _moved_to_group(
        self, from_group_id: UUID | None, to_group_id: UUID | None, reason: str | None
    ) -> None:
        self.group_id = to_group_id

    def log_analysis_result(self, result: Mapping[str, Any]) -> None:
        """Keep an analysis result about this offering; the same result id is kept once."""
        result = _copy_result(result)
        if any(str(r.get("id")) == str(result["id"]) for r in self.analysis_log):
            return
        self._analysis_result_logged(result=result)

    @event("AnalysisResultLogged")
    def _analysis_result_logged(self, result: dict[str, Any]) -> None:
        self.analysis_log.append(copy.deepcopy(result))


_SLA_TERMS = {
    "name": "name",
    "description": "description",
    "maintenance_accounting": "maintenanceAccounting",
    "minimum_notice_days": "minimumNoticeDays",
    "credit_percent_per_breached_period": "creditPercentPerBreachedPeriod",
    "credit_cap_percent": "creditCapPercent",
    "time_zone": "timeZone",
    "missing_data": "missingData",
    "no_data_after": "noDataAfter",
}
TIME_ZONE_MAX = 64


def _check_time_zone(errors: ErrorCollector, field: str, value: Any) -> str:
    """An IANA time zone name (``Europe/Paris``, ``UTC``) that zoneinfo can read."""
    if not isinstance(value, str) or not 0 < len(value) <= TIME_ZONE_MAX:
        errors.add(field, f"{value!r} must be an IANA time zone name such as Europe/Paris")
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(field, f"{value!r} is not an IANA time zone name such as Europe/Paris")
    return value


def _validate_sla_terms(terms: Mapping[str, Any]) -> dict[str, Any]:
    """All SLA-type terms checked together (the cap depends on the per-period credit)."""
    errors = ErrorCollector()
    out = dict(terms)
    for key in terms:
        if key not in _SLA_TERMS:
            errors.add(key, f"unknown SLA type term; known terms: {', '.join(_SLA_TERMS)}")
    out["name"] = _check_name(errors, "name", terms.get("name"))
    out["description"] = _check_description(errors, "description", terms.get("description"))
    _check_choice(errors, "maintenanceAccounting", terms.get("maintenance_accounting"),
                  MAINTENANCE_ACCOUNTING)
    out["time_zone"] = _check_time_zone(errors, "timeZone", terms.get("time_zone", "UTC"))
    out["missing_data"], out["no_data_after"] = _check_missing_data(
        errors, "", terms.get("missing_data") or "unknown",
        1 if terms.get("no_data_after") is None else terms["no_data_after"])
    days = terms.get("minimum_notice_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
        errors.add("minimumNoticeDays", f"{days!r} must be a whole number of days, 0 to 365")
    percents: dict[str, float] = {}
    for key in ("credit_percent_per_breached_period", "credit_cap_percent"):
        try:
            value = float(_number(terms.get(key)))
        except ValueError as exc:
            errors.add(_SLA_TERMS[key], str(exc))
            continue
        if not 0 <= value <= 100:
            errors.add(_SLA_TERMS[key], f"{value} is outside 0-100 percent")
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


class SlaType(_ValidatedCreation, Aggregate):
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
        return {key: getattr(self, key) for key in _SLA_TERMS}

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


_STANDARD_CONTENT = ("name", "description", "basis", "parameters", "validFor", "slaTypeId")


def _validate_standard_content(content: Mapping[str, Any]) -> dict[str, Any]:
    """The versioned content of a threshold standard (camelCase keys), normalised."""
    errors = ErrorCollector()
    out = {
        "name": _check_name(errors, "name", content.get("name")),
        "description": _check_description(errors, "description", content.get("description")),
        "basis": _check_choice(errors, "basis", content.get("basis"), BASES),
        "parameters": _collect_parameters(content.get("parameters"), errors),
        "validFor": validate_valid_for(content.get("validFor"), errors),
        "slaTypeId": _check_optional_uuid(errors, "slaTypeId", content.get("slaTypeId")),
    }
    errors.raise_if_any()
    return out


class ThresholdStandard(_ValidatedCreation, Aggregate):
    """Agreed or internal levels for an offering's (or group's) parameters, after TMF657.

    Every change is a new version; old versions stay readable and unchanged. Only approved
    versions are ever in force, each from its approval on (``shared.standards`` has the
    rule); approving a version marks the versions approved before it ``superseded`` (they
    stay in force where the new one is not: before its approval or its validity).
    The scope (offering or group) is fixed at registration.
    """

    class Approved(Aggregate.Event):
        """A version was approved; ``superseded``: the versions it replaces (recorded since
        class version 2; None in older events, which derive them as the approval did)."""

        class_version = 2
        number: int
        approved_by: str
        at: datetime
        superseded: list[int] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["superseded"] = None

    @event("Registered")
    def __init__(
        self,
        name: str,
        basis: str,
        parameters: list[dict[str, Any]],
        valid_for: dict[str, Any],
        offering_id: UUID | None = None,
        offering_group_id: UUID | None = None,
        sla_type_id: UUID | None = None,
        description: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.offering_id = offering_id
        self.offering_group_id = offering_group_id
        self.versions: list[dict[str, Any]] = []
        self._add_version(
            {
                "name": name,
                "description": description,
                "basis": basis,
                "parameters": parameters,
                "validFor": valid_for,
                "slaTypeId": sla_type_id,
            },
            reason,
            self.created_on,
        )

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        unknown = set(kwargs) - {
            "name", "basis", "parameters", "valid_for", "offering_id", "offering_group_id",
            "sla_type_id", "description", "reason"}
        for key in sorted(unknown):
            errors.add(key, "unknown field")
        offering_id = _check_optional_uuid(errors, "productOfferingId", kwargs.get("offering_id"))
        group_id = _check_optional_uuid(
            errors, "offeringGroupId", kwargs.get("offering_group_id"))
        if (kwargs.get("offering_id") is None) == (kwargs.get("offering_group_id") is None):
            errors.add("productOfferingId",
                       "give exactly one of productOfferingId and offeringGroupId")
        try:
            content = _validate_standard_content({
                "name": kwargs.get("name"),
                "description": kwargs.get("description"),
                "basis": kwargs.get("basis"),
                "parameters": kwargs.get("parameters"),
                "validFor": kwargs.get("valid_for"),
                "slaTypeId": kwargs.get("sla_type_id"),
            })
        except InvalidValue as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    errors.add(field, message)
        errors.raise_if_any()
        return {
            "name": content["name"],
            "description": content["description"],
            "basis": content["basis"],
            "parameters": content["parameters"],
            "valid_for": content["validFor"],
            "offering_id": offering_id,
            "offering_group_id": group_id,
            "sla_type_id": content["slaTypeId"],
            "reason": kwargs.get("reason"),
        }

    def _add_version(self, content: dict[str, Any], reason: str | None, at: datetime) -> None:
        self.versions.append({
            "version": len(self.versions) + 1,
            "lifecycleStatus": "draft",
            **copy.deepcopy(content),
            "createdAt": at,
            "approvedAt": None,
            "approvedBy": None,
            "supersededAt": None,
            "supersededBy": None,
            "retiredAt": None,
            "changeReason": reason,
        })

    # queries
    def get_version(self, number: int) -> dict[str, Any]:
        """A copy of version ``number``; ``UnknownVersion`` (a KeyError) if there is none.

        (Named ``get_version`` because ``version`` is the aggregate's event count.)
        """
        return copy.deepcopy(self._version_ref(number))

    def _version_ref(self, number: int) -> dict[str, Any]:
        if isinstance(number, bool) or not isinstance(number, int) or not (
                1 <= number <= len(self.versions)):
            raise UnknownVersion(
                f"threshold standard {self.id} has no version {number!r} "
                f"(versions 1 to {len(self.versions)})"
            )
        return self.versions[number - 1]

    @property
    def latest(self) -> dict[str, Any]:
        """A copy of the newest version, whatever its status."""
        return copy.deepcopy(self.versions[-1])

    @property
    def is_retired(self) -> bool:
        return all(v["lifecycleStatus"] == "retired" for v in self.versions)

    def in_force(self, at: datetime) -> dict[str, Any] | None:
        """The version in force at ``at`` as this state knows it (``shared.standards``:
        each approved version from its approval on, within its validity)."""
        found = version_in_force(self.versions, as_utc(at))
        return copy.deepcopy(dict(found)) if found is not None else None

    # commands
    def revise(self, changes: Mapping[str, Any], reason: str | None = None) -> dict | None:
        """Add a draft version: the latest merged with ``changes`` (camelCase keys).

        Returns the new version, or None when the changes change nothing.
        """
        changes = dict(changes)
        if reason is None:
            reason = changes.get("changeReason")
        changes.pop("changeReason", None)
        errors = ErrorCollector()
        for key in changes:
            if key in ("productOfferingId", "offeringGroupId", "offeringId"):
                errors.add(key, "the scope of a standard cannot change; register a new standard")
            elif key not in _STANDARD_CONTENT:
                errors.add(key, f"unknown field; revisable: {', '.join(_STANDARD_CONTENT)}")
        if reason is not None and not isinstance(reason, str):
            errors.add("changeReason", "changeReason must be text or null")
        errors.raise_if_any()
        latest = self.versions[-1]
        merged = {key: changes.get(key, latest[key]) for key in _STANDARD_CONTENT}
        content = _validate_standard_content(merged)
        if all(content[key] == latest[key] for key in _STANDARD_CONTENT):
            return None
        self._revised(number=len(self.versions) + 1, content=content, reason=reason, at=_now())
        return self.latest

    @event("Revised")
    def _revised(self, number: int, content: dict[str, Any], reason: str | None,
                 at: datetime) -> None:
        self._add_version(content, reason, at)

    def approve(self, version: int, approved_by: str) -> None:
        """Approve a draft version; only approved versions can come into force."""
        v = self._version_ref(version)
        if not isinstance(approved_by, str) or not approved_by.strip():
            raise InvalidValue({"approvedBy": ["approvedBy must name who approves"]})
        if v["lifecycleStatus"] != "draft":
            raise InvalidTransition(
                f"version {version} is {v['lifecycleStatus']}; only a draft can be approved"
                + (" (a retired version stays retired)" if v["lifecycleStatus"] == "retired"
                   else "")
            )
        self._approved(number=version, approved_by=approved_by.strip(), at=_now(),
                       superseded=self._approved_others(version))

    def _approved_others(self, number: int) -> list[int]:
        return [v["version"] for v in self.versions
                if v["lifecycleStatus"] == "approved" and v["version"] != number]

    @event(Approved)
    def _approved(self, number: int, approved_by: str, at: datetime,
                  superseded: list[int] | None) -> None:
        if superseded is None:  # recorded before supersession was: derive it the same way
            superseded = self._approved_others(number)
        v = self.versions[number - 1]
        v.update(lifecycleStatus="approved", approvedAt=at, approvedBy=approved_by)
        for older in superseded:
            self.versions[older - 1].update(lifecycleStatus="superseded", supersededAt=at,
                                            supersededBy=number)

    def retire(self, version: int | None = None) -> None:
        """Retire one version (draft, approved or superseded) or, with None, every one not
        yet retired; a retired version is no longer in force from then on."""
        if version is None:
            numbers = [v["version"] for v in self.versions if v["lifecycleStatus"] != "retired"]
        else:
            v = self._version_ref(version)
            numbers = [version] if v["lifecycleStatus"] != "retired" else []
        if numbers:
            self._retired(numbers=numbers, at=_now())

    @event("Retired")
    def _retired(self, numbers: list[int], at: datetime) -> None:
        for number in numbers:
            self.versions[number - 1].update(lifecycleStatus="retired", retiredAt=at)


_INVENTORY_FIELDS = {
    "customer_id": "customerId",
    "customer_group": "customerGroup",
    "offering_id": "productOfferingId",
    "sla_type_id": "slaTypeId",
    "site": "site",
    "monthly_charge": "monthlyCharge",
    "currency": "currency",
    "start_date": "startDate",
    "end_date": "endDate",
}


def _validate_inventory(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A purchased offering's fields (snake_case), checked together and normalised."""
    errors = ErrorCollector()
    out: dict[str, Any] = {}
    for key in fields:
        if key not in _INVENTORY_FIELDS:
            errors.add(key, f"unknown field; known fields: {', '.join(_INVENTORY_FIELDS)}")
    customer = fields.get("customer_id")
    if not isinstance(customer, str) or not customer.strip():
        errors.add("customerId", "customerId is required and must be non-empty text")
    out["customer_id"] = customer.strip() if isinstance(customer, str) else customer
    for key in ("customer_group", "site"):
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            errors.add(_INVENTORY_FIELDS[key], f"{_INVENTORY_FIELDS[key]} must be text or null")
        out[key] = value
    if fields.get("offering_id") is None:
        errors.add("productOfferingId", "productOfferingId is required")
        out["offering_id"] = None
    else:
        out["offering_id"] = _check_optional_uuid(
            errors, "productOfferingId", fields.get("offering_id"))
    out["sla_type_id"] = _check_optional_uuid(errors, "slaTypeId", fields.get("sla_type_id"))
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
                errors.add(_INVENTORY_FIELDS[key], str(exc))
    if out["start_date"] and out["end_date"] and out["end_date"] <= out["start_date"]:
        errors.add("endDate", f"endDate {out['end_date'].isoformat()} must be after "
                              f"startDate {out['start_date'].isoformat()}")
    errors.raise_if_any()
    return out


class PurchasedOffering(_ValidatedCreation, Aggregate):
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
        _check_choice(errors, "status", status, INVENTORY_STATUSES)
        try:
            fields = _validate_inventory(kwargs)
        except InvalidValue as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    errors.add(field, message)
        errors.raise_if_any()
        if fields["start_date"] is None:
            fields["start_date"] = _now()
        return {"product_id": product_id, "status": status, **fields}

    @property
    def fields(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _INVENTORY_FIELDS}

    def update(self, **changes: Any) -> None:
        """Change some fields (snake_case); only changed fields are recorded."""
        for key in ("product_id", "status"):
            if key in changes:
                raise InvalidValue({"id" if key == "product_id" else key: [
                    "the product id cannot change" if key == "product_id"
                    else "use change_status to change the status"]})
        merged = _validate_inventory({**self.fields, **changes})
        changed = {k: merged[k] for k in changes if merged[k] != getattr(self, k)}
        if changed:
            self._updated(changes=changed)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def change_status(self, status: str, reason: str | None = None,
                      at: datetime | None = None) -> None:
        """active <-> suspended, either -> terminated; terminated is final."""
        errors = ErrorCollector()
        _check_choice(errors, "status", status, INVENTORY_STATUSES)
        if reason is not None and not isinstance(reason, str):
            errors.add("statusReason", "statusReason must be text or null")
        when = _now()
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

    def log_analysis_result(self, result: Mapping[str, Any]) -> None:
        """Keep an analysis result about this item; the same result id is kept once."""
        result = _copy_result(result)
        if any(str(r.get("id")) == str(result["id"]) for r in self.analysis_log):
            return
        self._analysis_result_logged(result=result)

    @event("AnalysisResultLogged")
    def _analysis_result_logged(self, result: dict[str, Any]) -> None:
        self.analysis_log.append(copy.deepcopy(result))
