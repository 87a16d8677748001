"""The registry's validation rules, pure helpers every aggregate's commands use: names and
descriptions, ids, choices, numbers, times and time zones, what missing data means, and a
threshold standard's parameters (units, kinds, aggregations and percentiles, comparators,
breach and warning levels, periods and windows) and validity.

Each ``check_*`` adds its problems to an ``ErrorCollector`` under the field path the API
shows (camelCase, e.g. ``parameters.0.thresholdTarget``), so one command reports all of
them at once; ``ValidatedCreation`` runs an aggregate's creation checks before its first
event exists.
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

from shared.durations import duration_seconds
from shared.errors import ErrorCollector, InvalidValue

NAME_MAX = 200

# What a window without data means: left out as unknown (the default), counted as down,
# or a noData crossing after ``noDataAfter`` consecutive empty windows.
MISSING_DATA = ("unknown", "counted-as-down", "noData")
UNITS = (
    "%", "ratio", "ms", "s", "min", "h", "bit/s", "kbit/s", "Mbit/s", "Gbit/s",
    "count", "packets", "EUR", "USD", "GBP", "days",
)
KINDS = ("technical", "time", "economic", "process")
AGGREGATIONS = ("mean", "min", "max", "sum", "ratio", "availability")
COMPARATORS = ("GE", "GT", "LE", "LT", "EQ")

UNSET: Any = object()  # "argument not given", distinct from an explicit None

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


def now() -> datetime:
    return datetime.now(UTC)


def finite_number(value: Any) -> float | int:
    """A finite int or float (Decimal converted); ``ValueError`` otherwise (bool too)."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def check_name(errors: ErrorCollector, field: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.add(field, f"{field} is required and must be non-empty text")
        return None
    value = value.strip()
    if len(value) > NAME_MAX:
        errors.add(field, f"{field} has {len(value)} characters; at most {NAME_MAX} allowed")
        return None
    return value


def check_description(errors: ErrorCollector, field: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        errors.add(field, f"{field} must be text or null")
        return None
    return value


def check_optional_uuid(errors: ErrorCollector, field: str, value: Any) -> UUID | None:
    if value is None:
        return None
    try:
        return as_uuid(value)
    except ValueError as exc:
        errors.add(field, str(exc))
        return None


def check_choice(errors: ErrorCollector, field: str, value: Any, choices: Iterable[str]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        errors.add(field, f"{value!r} is not one of {', '.join(choices)}")
    return value


def check_named(errors: ErrorCollector, kwargs: dict[str, Any]) -> None:
    """A new named aggregate's ``name`` and ``description`` checked and normalised in
    ``kwargs`` (problems added to ``errors``)."""
    kwargs["name"] = check_name(errors, "name", kwargs.get("name"))
    kwargs["description"] = check_description(errors, "description",
                                              kwargs.get("description"))


def name_changes(aggregate: Any, name: str | None, description: Any) -> dict[str, Any]:
    """The validated changes of a rename or re-description (empty when nothing changes)."""
    errors = ErrorCollector()
    changes: dict[str, Any] = {}
    if name is not None:
        name = check_name(errors, "name", name)
        if name is not None and name != aggregate.name:
            changes["name"] = name
    if description is not UNSET:
        description = check_description(errors, "description", description)
        if description != aggregate.description:
            changes["description"] = description
    errors.raise_if_any()
    return changes


def copied_result(result: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(result, Mapping) or result.get("id") in (None, ""):
        raise InvalidValue({"id": ["an analysis result needs an id"]})
    return copy.deepcopy(dict(result))


# --- parameters ---------------------------------------------------------------------------

_PARAMETER_FIELDS = (
    "name", "description", "unit", "kind", "aggregation", "comparator", "conformanceTarget",
    "thresholdTarget", "conformancePeriod", "evaluationWindow", "graceTimes", "missingData",
    "noDataAfter",
)


def _read_field(errors: ErrorCollector, p: Mapping[str, Any], path: str, field: str,
                read: Any, if_absent: str | None) -> Any:
    """A parameter's field as ``read`` reads it; None when it is absent (``if_absent``, if
    given, is then the problem added) or unreadable (``read``'s problem added)."""
    raw = p.get(field)
    if raw is None:
        if if_absent is not None:
            errors.add(f"{path}.{field}", if_absent)
        return None
    try:
        return read(raw)
    except ValueError as exc:
        errors.add(f"{path}.{field}", str(exc))
        return None


def _validate_parameter(p: Any, path: str, errors: ErrorCollector) -> dict[str, Any]:
    """One parameter, normalised; problems are added to ``errors`` under ``path.field``."""
    if not isinstance(p, Mapping):
        errors.add(path, "a parameter must be an object")
        return {}
    for key in p:
        if key not in _PARAMETER_FIELDS:
            errors.add(f"{path}.{key}",
                       f"unknown field; known fields: {', '.join(_PARAMETER_FIELDS)}")

    name = check_name(errors, f"{path}.name", p.get("name"))
    description = check_description(errors, f"{path}.description", p.get("description"))

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
        levels[field] = None
        value = _read_field(errors, p, path, field, finite_number,
                            f"{field} (the breach level) is required" if required else None)
        if value is None:
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
        durations[field] = None
        seconds = _read_field(errors, p, path, field, duration_seconds,
                              f"{field} is required, e.g. PT5M" if required else None)
        if seconds is None:
            continue
        if seconds <= 0:
            errors.add(f"{path}.{field}", f"{field} {p[field]} must be longer than zero")
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
    missing, after = check_missing_data(errors, f"{path}.", p.get("missingData"),
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


def check_missing_data(errors: ErrorCollector, prefix: str, missing: Any, after: Any
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


def collect_parameters(params: Any, errors: ErrorCollector,
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
    out = collect_parameters(params, errors)
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


TIME_ZONE_MAX = 64


def check_time_zone(errors: ErrorCollector, field: str, value: Any) -> str:
    """An IANA time zone name (``Europe/Paris``, ``UTC``) that zoneinfo can read."""
    if not isinstance(value, str) or not 0 < len(value) <= TIME_ZONE_MAX:
        errors.add(field, f"{value!r} must be an IANA time zone name such as Europe/Paris")
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(field, f"{value!r} is not an IANA time zone name such as Europe/Paris")
    return value



class ValidatedCreation:
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
