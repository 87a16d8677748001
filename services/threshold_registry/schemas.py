"""The registry's resources, each described once: a ``*Create`` / ``*Patch`` schema loads a
request body into the application's arguments (snake_case), a ``Resource`` schema dumps
the aggregate for the HTTP API, the bus payloads (``messaging``) and the audit record
(``represent``). camelCase exists only on the wire (``shared.http.schemas.CamelSchema``);
the OpenAPI document is built from these schemas.

A threshold standard's versioned content (its ``parameters`` and ``validFor``, and each
version's record) is the exception: it is recorded in the standard's events as the API
shows it, so its schemas name the recorded keys (renaming them would rewrite history).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.threshold_registry.domain import (
    BASES,
    INVENTORY_STATUSES,
    KINDS,
    MAINTENANCE_ACCOUNTING,
    MISSING_DATA,
    OFFERING_LIFECYCLE,
    UNITS,
    Placed,
    replicas,
)
from services.threshold_registry.domain import (
    OfferingGroup as OfferingGroupAggregate,
)
from services.threshold_registry.domain import (
    ProductOffering as ProductOfferingAggregate,
)
from services.threshold_registry.domain import (
    PurchasedOffering as PurchasedOfferingAggregate,
)
from services.threshold_registry.domain import (
    SlaType as SlaTypeAggregate,
)
from services.threshold_registry.domain import (
    ThresholdStandard as ThresholdStandardAggregate,
)
from services.threshold_registry.domain.analysis_log import LoggedResult
from shared.durations import POSITIVE_DURATION
from shared.http.schemas import (
    NAME,
    VERSION,
    CamelSchema,
    Computed,
    Pattern,
    Resource,
    client_id,
    exactly_one_of,
)
from shared.money import ISO_CURRENCIES
from shared.times import iso

ROOT = "/threshold-registry/v1"

MISSING_DATA_HELP = ("what a window without data from a purchased offering (or the whole "
                     "scope) means: unknown (left out of eligible time, the default), "
                     "counted-as-down, or noData (a noData crossing after noDataAfter "
                     "consecutive empty windows)")
NO_DATA_AFTER_HELP = ("with missingData noData: consecutive windows without data before a "
                      "noData crossing is raised (default 1)")
AGGREGATION = Pattern(
    r"^(mean|min|max|sum|ratio|availability|p(100(\.0+)?|[1-9][0-9]?(\.[0-9]+)?"
    r"|0\.[0-9]*[1-9][0-9]*))$",
    error="mean, min, max, sum, ratio, availability or a percentile pNN (above 0, at most "
          "100) such as p95 or p99.9")
#: The comparators as the API takes them (the domain normalises ``.ge`` to ``GE``).
COMPARATORS = ("GE", "GT", "LE", "LT", "EQ", ".ge", ".gt", ".le", ".lt", ".eq")
DURATION = Pattern(POSITIVE_DURATION, error="an ISO-8601 duration longer than zero, "
                                            "such as PT5M, PT1H, P30D or P1M")
DESCRIPTION = validate.Length(max=2000)


class Instant(fields.String):
    """A time dumped as ISO-8601 UTC text with ``Z`` (documented as a string, as before)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else iso(value)


# --- offering groups ----------------------------------------------------------------------
class OfferingGroupCreate(CamelSchema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)


class OfferingGroupPatch(CamelSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)


class OfferingGroup(Resource):
    PATH, TYPE = f"{ROOT}/offeringGroup", "OfferingGroup"

    name = fields.String()
    description = fields.String(allow_none=True)
    lifecycle_status = fields.String()


# --- product offerings --------------------------------------------------------------------
class ProductOfferingCreate(CamelSchema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    lifecycle_status = fields.String(load_default="inDesign",
                                     validate=validate.OneOf(OFFERING_LIFECYCLE))
    group_id = fields.UUID(data_key="offeringGroupId", allow_none=True)


class ProductOfferingPatch(CamelSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    lifecycle_status = fields.String(validate=validate.OneOf(OFFERING_LIFECYCLE))
    group_id = fields.UUID(data_key="offeringGroupId", allow_none=True, metadata={
        "description": "move the offering to this group (the move is recorded)"})
    move_reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class ProductOffering(Resource):
    PATH, TYPE = f"{ROOT}/productOffering", "ProductOffering"

    name = fields.String()
    description = fields.String(allow_none=True)
    lifecycle_status = fields.String()
    group_id = fields.String(data_key="offeringGroupId", allow_none=True)


# --- SLA types ----------------------------------------------------------------------------
# The IANA time zone names this machine's zoneinfo reads (each one a name it accepts).
TIME_ZONE = validate.OneOf(sorted(zoneinfo.available_timezones()),
                           error="an IANA time zone name such as Europe/Paris")
TIME_ZONE_HELP = {"description": "IANA time zone of the conformance periods (calendar days, "
                                 "months, quarters); default UTC", "example": "Europe/Paris"}


class SlaTypeCreate(CamelSchema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    maintenance_accounting = fields.String(required=True,
                                           validate=validate.OneOf(MAINTENANCE_ACCOUNTING))
    minimum_notice_days = fields.Integer(required=True, validate=validate.Range(0, 365))
    credit_percent_per_breached_period = fields.Float(required=True,
                                                      validate=validate.Range(0, 100))
    credit_cap_percent = fields.Float(required=True, validate=validate.Range(0, 100))
    time_zone = fields.String(validate=TIME_ZONE, metadata=TIME_ZONE_HELP)
    missing_data = fields.String(validate=validate.OneOf(MISSING_DATA), metadata={
        "description": MISSING_DATA_HELP + "; for the parameters of standards that do not "
                       "say (default unknown)"})
    no_data_after = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": NO_DATA_AFTER_HELP})


class SlaTypePatch(CamelSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    maintenance_accounting = fields.String(validate=validate.OneOf(MAINTENANCE_ACCOUNTING))
    minimum_notice_days = fields.Integer(validate=validate.Range(0, 365))
    credit_percent_per_breached_period = fields.Float(validate=validate.Range(0, 100))
    credit_cap_percent = fields.Float(validate=validate.Range(0, 100))
    time_zone = fields.String(validate=TIME_ZONE, metadata=TIME_ZONE_HELP)
    missing_data = fields.String(validate=validate.OneOf(MISSING_DATA), metadata={
        "description": MISSING_DATA_HELP + "; for the parameters of standards that do not "
                       "say"})
    no_data_after = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": NO_DATA_AFTER_HELP})


class SlaType(Resource):
    PATH, TYPE = f"{ROOT}/slaType", "SlaType"

    name = fields.String()
    description = fields.String(allow_none=True)
    maintenance_accounting = fields.String()
    minimum_notice_days = fields.Integer()
    credit_percent_per_breached_period = fields.Float()
    credit_cap_percent = fields.Float()
    time_zone = fields.String()
    missing_data = fields.String(metadata={"description": MISSING_DATA_HELP})
    no_data_after = fields.Integer()
    lifecycle_status = fields.String()


# --- threshold standards: the recorded content ---------------------------------------------
class Parameter(CamelSchema):
    """A parameter as it is taken and recorded (the recorded keys are the API's)."""

    name = fields.String(required=True, validate=NAME)
    unit = fields.String(required=True, validate=validate.OneOf(UNITS),
                         metadata={"example": "%"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    aggregation = fields.String(required=True, validate=AGGREGATION, metadata={
        "description": "mean, min, max, sum, ratio, availability or a nearest-rank "
                       "percentile pNN (p95, p99.9)"})
    comparator = fields.String(required=True, validate=validate.OneOf(COMPARATORS), metadata={
        "description": "GE, GT, LE, LT, EQ (or .ge, .gt, ...): how a good value compares "
                       "with the levels"})
    conformanceTarget = fields.Float(required=True, metadata={"description": "breach level"})
    thresholdTarget = fields.Float(allow_none=True, metadata={"description": "warning level"})
    conformancePeriod = fields.String(allow_none=True, validate=DURATION,
                                      metadata={"example": "P30D"})
    evaluationWindow = fields.String(required=True, validate=DURATION,
                                     metadata={"example": "PT5M"})
    graceTimes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))
    missingData = fields.String(allow_none=True, validate=validate.OneOf(MISSING_DATA),
                                metadata={"description": MISSING_DATA_HELP + "; absent or "
                                          "null: as the SLA type says"})
    noDataAfter = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=1000),
                                 metadata={"description": NO_DATA_AFTER_HELP})


class ValidFor(CamelSchema):
    startDateTime = fields.AwareDateTime(required=True)
    endDateTime = fields.AwareDateTime(allow_none=True)


class ParameterOut(Schema):
    """A recorded parameter; a field recorded before it existed is left out."""

    name = fields.String()
    unit = fields.String()
    kind = fields.String()
    aggregation = fields.String()
    comparator = fields.String()
    conformanceTarget = fields.Float()
    thresholdTarget = fields.Float(allow_none=True)
    conformancePeriod = fields.String(allow_none=True)
    evaluationWindow = fields.String()
    graceTimes = fields.Integer()
    missingData = fields.String(allow_none=True, metadata={"description": MISSING_DATA_HELP})
    noDataAfter = fields.Integer(allow_none=True)


class ValidForOut(Schema):
    startDateTime = Instant()
    endDateTime = Instant(allow_none=True)


class VersionRecord(Schema):
    """One version of a standard as recorded; a field recorded before it existed
    (``supersededAt`` …) is null."""

    version = fields.Integer()
    lifecycleStatus = fields.String(metadata={
        "description": "draft, approved, superseded (a later version was approved) or retired"})
    name = fields.String()
    description = fields.String(allow_none=True)
    basis = fields.String()
    parameters = fields.List(fields.Nested(ParameterOut))
    validFor = fields.Nested(ValidForOut)
    slaTypeId = fields.String(allow_none=True)
    createdAt = Instant()
    approvedAt = Instant(allow_none=True)
    approvedBy = fields.String(allow_none=True)
    supersededAt = Instant(allow_none=True, metadata={
        "description": "when a later approval replaced this version (still in force where "
                       "that one is not: before its approval or outside its validity)"})
    supersededBy = fields.Integer(allow_none=True, metadata={
        "description": "the version whose approval superseded this one"})
    retiredAt = Instant(allow_none=True)
    changeReason = fields.String(allow_none=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        record = obj.record if isinstance(obj, VersionOf) else obj
        return record.get(attr)


# --- threshold standards ------------------------------------------------------------------
class ThresholdStandardCreate(CamelSchema):
    class Meta:
        openapi = exactly_one_of("productOfferingId", "offeringGroupId")

    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    offering_id = fields.UUID(data_key="productOfferingId", allow_none=True)
    offering_group_id = fields.UUID(allow_none=True)
    sla_type_id = fields.UUID(allow_none=True)
    basis = fields.String(required=True, validate=validate.OneOf(BASES))
    valid_for = fields.Nested(ValidFor, required=True)
    parameters = fields.List(fields.Nested(Parameter), required=True,
                             validate=validate.Length(min=1, max=50))

    @validates_schema
    def _one_scope(self, data: dict, **_: object) -> None:
        if bool(data.get("offering_id")) == bool(data.get("offering_group_id")):
            raise ValidationError("give exactly one of productOfferingId and offeringGroupId",
                                  "productOfferingId")


class ThresholdStandardPatch(CamelSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    sla_type_id = fields.UUID(allow_none=True)
    basis = fields.String(validate=validate.OneOf(BASES))
    valid_for = fields.Nested(ValidFor)
    parameters = fields.List(fields.Nested(Parameter), validate=validate.Length(min=1, max=50))
    change_reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ThresholdStandard(Resource):
    """The standard as its latest version shows it."""

    PATH, TYPE = f"{ROOT}/thresholdStandard", "ThresholdStandard"

    offering_id = fields.String(data_key="productOfferingId", allow_none=True)
    offering_group_id = fields.String(allow_none=True)
    sla_type_id = fields.String(allow_none=True)
    name = fields.String()
    description = fields.String(allow_none=True)
    basis = fields.String()
    lifecycle_status = fields.String(metadata={
        "description": "of the latest version: draft, approved, superseded or retired"})
    current_version = fields.Integer()
    valid_for = fields.Nested(ValidForOut)
    parameters = fields.List(fields.Nested(ParameterOut))


class ThresholdStandardRecord(ThresholdStandard):
    """The standard with every version, as the bus and the audit record carry it (a
    replica answers "in force at T" from it alone)."""

    versions = fields.List(fields.Nested(VersionRecord))


@dataclass(frozen=True)
class VersionOf:
    """One version of a standard, as a resource of its own."""

    standard_id: Any
    record: Mapping[str, Any]


def versions_of(standard: ThresholdStandardAggregate) -> list[VersionOf]:
    return [VersionOf(standard.id, v) for v in standard.versions]


class StandardVersion(VersionRecord, Resource):
    PATH, TYPE = ThresholdStandard.PATH, "ThresholdStandardVersion"

    id = Computed(lambda schema, obj: str(obj.record["version"]))
    href = Computed(lambda schema, obj:
                    f"{schema.PATH}/{obj.standard_id}/version/{obj.record['version']}")


class Approval(CamelSchema):
    version = fields.Integer(required=True, validate=VERSION)


class Retirement(CamelSchema):
    version = fields.Integer(allow_none=True, validate=VERSION, metadata={
        "description": "the version to retire; without it every version is retired"})


class InForceQuery(CamelSchema):
    offering_id = fields.UUID(data_key="productOfferingId", metadata={
        "description": "the offering whose standards are asked for (its own and its "
                       "group's); without it, those of every offering"})
    sla_type_id = fields.UUID()
    at = fields.AwareDateTime(metadata={
        "description": "business time: in force at this moment (default: now)"})
    as_known_at = fields.AwareDateTime(metadata={
        "description": "record time: answer as the registry knew it at this moment, from "
                       "its log (default: what it knows now)"})


@dataclass(frozen=True)
class InForceAnswer:
    """A standard in force, and its version in force."""

    threshold_standard: ThresholdStandardAggregate
    in_force_version: VersionOf

    @property
    def id(self) -> Any:
        return self.threshold_standard.id


class InForce(Resource):
    PATH, TYPE = ThresholdStandard.PATH, "ThresholdStandardInForce"

    threshold_standard = fields.Nested(ThresholdStandard)
    in_force_version = fields.Nested(StandardVersion)


# --- product offering inventory -----------------------------------------------------------
CURRENCY = validate.OneOf(sorted(ISO_CURRENCIES | {c.lower() for c in ISO_CURRENCIES}))
MONEY = Pattern(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$",
                error="a decimal amount as text, such as \"49.90\"")
MONEY_HELP = {"description": "a decimal amount as text, e.g. \"49.90\""}


class PurchasedOfferingCreate(CamelSchema):
    class Meta:  # a monthly charge is in a currency
        openapi = {"anyOf": [
            {"not": {"required": ["monthlyCharge"]}},
            {"properties": {"monthlyCharge": {"enum": [None]}}},
            {"required": ["currency"], "properties": {"currency": {"not": {"enum": [None]}}}}]}

    product_id = client_id(data_key="id", description="the product id known to fulfilment; "
                                                      "generated when absent")
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    customer_group = fields.String(allow_none=True, validate=validate.Length(max=200))
    offering_id = fields.UUID(data_key="productOfferingId", required=True)
    sla_type_id = fields.UUID(allow_none=True)
    site = fields.String(allow_none=True, validate=validate.Length(max=200))
    monthly_charge = fields.String(allow_none=True, validate=MONEY, metadata=MONEY_HELP)
    currency = fields.String(allow_none=True, validate=CURRENCY)
    status = fields.String(load_default="active", validate=validate.OneOf(INVENTORY_STATUSES))
    start_date = fields.AwareDateTime(allow_none=True)
    end_date = fields.AwareDateTime(allow_none=True)


class PurchasedOfferingPatch(CamelSchema):
    customer_id = fields.String(validate=validate.Length(min=1, max=200))
    customer_group = fields.String(allow_none=True, validate=validate.Length(max=200))
    offering_id = fields.UUID(data_key="productOfferingId")
    sla_type_id = fields.UUID(allow_none=True)
    site = fields.String(allow_none=True, validate=validate.Length(max=200))
    monthly_charge = fields.String(allow_none=True, validate=MONEY, metadata=MONEY_HELP)
    currency = fields.String(allow_none=True, validate=CURRENCY)
    status = fields.String(validate=validate.OneOf(INVENTORY_STATUSES))
    status_reason = fields.String(allow_none=True, validate=validate.Length(max=500))
    start_date = fields.AwareDateTime(allow_none=True)
    end_date = fields.AwareDateTime(allow_none=True)


class PurchasedOffering(Resource):
    """A purchased offering, named by its product id, with the group its offering is in
    now (``Placed``)."""

    PATH, TYPE = f"{ROOT}/purchasedOffering", "PurchasedOffering"

    id = fields.String(attribute="product_id", dump_only=True)
    href = Computed(lambda schema, obj: f"{schema.PATH}/{obj.product_id}")
    customer_id = fields.String()
    customer_group = fields.String(allow_none=True)
    offering_id = fields.String(data_key="productOfferingId")
    offering_group_id = fields.String(allow_none=True)
    sla_type_id = fields.String(allow_none=True)
    site = fields.String(allow_none=True)
    monthly_charge = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    status = fields.String()
    start_date = Instant(allow_none=True)
    end_date = Instant(allow_none=True)


class AnalysisResult(Schema):
    """An analysis result, kept as analysis sent it (its fields are analysis's)."""

    id = fields.String()
    kind = fields.String()
    target = fields.Dict()
    summary = fields.String()
    severity = fields.String()
    parameter = fields.String(allow_none=True)
    analysedAt = fields.String()
    details = fields.Dict()


# --- what the registry knows of monitoring's regimes -----------------------------------------
class MonitoringRegimeReplica(CamelSchema):
    """What the registry knew of a monitoring regime (``replicas.KnownRegime``; audit
    queries only: the regime's own resource is monitoring's)."""

    id = fields.String(attribute="regime_id")
    type_ = Computed(lambda schema, obj: "MonitoringRegimeReplica", data_key="@type")
    name = fields.String()
    offering_group_id = fields.String(allow_none=True)
    offering_id = fields.String(data_key="productOfferingId", allow_none=True)
    status = fields.String()
    source_version = fields.Integer()


# --- one representation per aggregate, for the audit record --------------------------------
RECORDS: dict[type, type[Schema]] = {
    replicas.Replica: MonitoringRegimeReplica,
    replicas.MonitoringRegimeReplica: MonitoringRegimeReplica,
    OfferingGroupAggregate: OfferingGroup,
    ProductOfferingAggregate: ProductOffering,
    SlaTypeAggregate: SlaType,
    ThresholdStandardAggregate: ThresholdStandardRecord,
    PurchasedOfferingAggregate: PurchasedOffering,
}


def represent(aggregate: Any) -> dict[str, Any]:
    """Any registry aggregate as its resource, for the audit record's past states (a
    purchased offering alone: which group its offering was in then is the offering's
    own record; an analysis result as analysis sent it, with what it was logged on)."""
    if isinstance(aggregate, LoggedResult):
        return {"target": {"type": aggregate.target_type, "id": aggregate.target_id},
                "analysisResult": AnalysisResult().dump(aggregate.result)}
    schema = RECORDS.get(type(aggregate))
    if schema is None:
        raise TypeError(f"not a registry aggregate: {type(aggregate).__name__}")
    if isinstance(aggregate, PurchasedOfferingAggregate):
        aggregate = Placed(aggregate, None)
    elif isinstance(aggregate, replicas.Replica | replicas.MonitoringRegimeReplica):
        aggregate = replicas.known(aggregate)
    return schema().dump(aggregate)
