"""The threshold registry's domain model, one module per topic:

- ``validation``: the rules every command checks — names, ids, times and time zones,
  missing data, a standard's parameters (units, aggregations, comparators, levels,
  windows) and validity;
- ``offerings``: product offerings and their offering groups;
- ``sla_types``: SLA types and their commercial terms;
- ``standards``: threshold standards and their versions (after TMF657);
- ``inventory``: the purchased-offering inventory (after TMF637);
- ``replicas``: what the registry keeps of other services' resources (monitoring's
  regimes), with the replica kit.

Plain Python plus ``eventsourcing`` and the suite's plain helpers (``shared.errors``,
``shared.durations`` …): no web framework, no broker.

Every command validates (and normalises) its input *before* it triggers an event, so an
invalid command leaves no trace in the audit record, and replaying stored events never
re-runs validation (rules may tighten later; history must still replay). Creation is
validated the same way: calling an aggregate class validates its arguments first (see
``validation.ValidatedCreation``), while reconstruction from stored events skips that step.
Commands that would change nothing trigger no event. Validation problems are collected and
reported together in ``InvalidValue.errors``, keyed by the field path the API shows
(camelCase, e.g. ``parameters.0.thresholdTarget``).

The aggregates were first defined in one module, ``services.threshold_registry.domain``,
and the event store records each event by its class's topic (``module:Class.Event``);
``LEGACY_TOPICS`` registers those first topics, so logs written then still load (and
``replicas`` registers the topic of the regime replica an earlier release kept).
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

from services.threshold_registry.domain import replicas
from services.threshold_registry.domain.inventory import (
    INVENTORY_STATUSES,
    Placed,
    PurchasedOffering,
)
from services.threshold_registry.domain.offerings import (
    OFFERING_LIFECYCLE,
    OFFERING_TRANSITIONS,
    OfferingGroup,
    ProductOffering,
)
from services.threshold_registry.domain.sla_types import MAINTENANCE_ACCOUNTING, SlaType
from services.threshold_registry.domain.standards import (
    BASES,
    VERSION_STATUSES,
    ThresholdStandard,
    UnknownVersion,
)
from services.threshold_registry.domain.validation import (
    AGGREGATIONS,
    COMPARATORS,
    KINDS,
    MISSING_DATA,
    UNITS,
    as_utc,
    as_uuid,
    duration_seconds,
    normalise_aggregation,
    normalise_comparator,
    parse_percentile,
    validate_parameters,
    validate_valid_for,
)

AGGREGATES = (OfferingGroup, ProductOffering, SlaType, ThresholdStandard, PurchasedOffering)

#: The module every aggregate's events were recorded under before the domain was split.
LEGACY_MODULE = "services.threshold_registry.domain"

#: Old topic → aggregate class. An event topic (``module:Class.Event``) and a snapshot's or
#: a creation event's ``originator_topic`` (``module:Class``) resolve through these.
LEGACY_TOPICS = {f"{LEGACY_MODULE}:{kind.__qualname__}": kind for kind in AGGREGATES}

for _topic, _kind in LEGACY_TOPICS.items():
    if get_topic(_kind) != _topic:
        register_topic(_topic, _kind)

__all__ = [
    "AGGREGATES", "AGGREGATIONS", "BASES", "COMPARATORS", "INVENTORY_STATUSES", "KINDS",
    "LEGACY_TOPICS", "MAINTENANCE_ACCOUNTING", "MISSING_DATA", "OFFERING_LIFECYCLE",
    "OFFERING_TRANSITIONS", "UNITS", "VERSION_STATUSES", "OfferingGroup", "Placed",
    "ProductOffering",
    "PurchasedOffering", "SlaType", "ThresholdStandard", "UnknownVersion", "as_utc",
    "as_uuid", "duration_seconds", "normalise_aggregation", "normalise_comparator",
    "parse_percentile", "replicas", "validate_parameters", "validate_valid_for",
]
