"""marshmallow schemas of the registry's HTTP API (the OpenAPI document is built from them)."""

from __future__ import annotations

import zoneinfo

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.threshold_registry.domain import UNITS
from shared.durations import POSITIVE_DURATION
from shared.http.schemas import (
    NAME,
    VERSION,
    Pattern,
    Resource,
    Strict,
    client_id,
    exactly_one_of,
)
from shared.money import ISO_CURRENCIES

LIFECYCLE = ("inDesign", "active", "retired")
ACCOUNTING = ("excluded", "counted-as-up", "counted-as-down")
BASIS = ("commerciallyAgreed", "internallyAcceptable")
KINDS = ("technical", "time", "economic", "process")
MISSING_DATA = ("unknown", "counted-as-down", "noData")
MISSING_DATA_HELP = ("what a window without data from a purchased offering (or the whole "
                     "scope) means: unknown (left out of eligible time, the default), "
                     "counted-as-down, or noData (a noData crossing after noDataAfter "
                     "consecutive empty windows)")
NO_DATA_AFTER_HELP = ("with missingData noData: consecutive windows without data before a "
                      "noData crossing is raised (default 1)")
INVENTORY_STATUS = ("active", "suspended", "terminated")
AGGREGATION = Pattern(
    r"^(mean|min|max|sum|ratio|availability|p(100(\.0+)?|[1-9][0-9]?(\.[0-9]+)?"
    r"|0\.[0-9]*[1-9][0-9]*))$",
    error="mean, min, max, sum, ratio, availability or a percentile pNN (above 0, at most "
          "100) such as p95 or p99.9")
COMPARATORS = ("GE", "GT", "LE", "LT", "EQ", ".ge", ".gt", ".le", ".lt", ".eq")
DURATION = Pattern(POSITIVE_DURATION, error="an ISO-8601 duration longer than zero, "
                                                    "such as PT5M, PT1H, P30D or P1M")


# --- offering groups ----------------------------------------------------------------------
class OfferingGroupCreate(Strict):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))


class OfferingGroupPatch(Strict):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))


class OfferingGroup(Resource):
    name = fields.String()
    description = fields.String(allow_none=True)
    lifecycleStatus = fields.String()


# --- product offerings --------------------------------------------------------------------
class ProductOfferingCreate(Strict):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    lifecycleStatus = fields.String(load_default="inDesign", validate=validate.OneOf(LIFECYCLE))
    offeringGroupId = fields.UUID(allow_none=True)


class ProductOfferingPatch(Strict):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    lifecycleStatus = fields.String(validate=validate.OneOf(LIFECYCLE))
    offeringGroupId = fields.UUID(allow_none=True, metadata={
        "description": "move the offering to this group (the move is recorded)"})
    moveReason = fields.String(allow_none=True, validate=validate.Length(max=500))


class ProductOffering(Resource):
    name = fields.String()
    description = fields.String(allow_none=True)
    lifecycleStatus = fields.String()
    offeringGroupId = fields.String(allow_none=True)


# The IANA time zone names this machine's zoneinfo reads (each one a name it accepts).
TIME_ZONE = validate.OneOf(sorted(zoneinfo.available_timezones()),
                           error="an IANA time zone name such as Europe/Paris")


# --- SLA types ----------------------------------------------------------------------------
class SlaTypeCreate(Strict):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    maintenanceAccounting = fields.String(required=True, validate=validate.OneOf(ACCOUNTING))
    minimumNoticeDays = fields.Integer(required=True, validate=validate.Range(0, 365))
    creditPercentPerBreachedPeriod = fields.Float(required=True, validate=validate.Range(0, 100))
    creditCapPercent = fields.Float(required=True, validate=validate.Range(0, 100))
    timeZone = fields.String(validate=TIME_ZONE, metadata={
        "description": "IANA time zone of the conformance periods (calendar days, months, "
                       "quarters); default UTC", "example": "Europe/Paris"})
    missingData = fields.String(validate=validate.OneOf(MISSING_DATA), metadata={
        "description": MISSING_DATA_HELP + "; for the parameters of standards that do not "
                       "say (default unknown)"})
    noDataAfter = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": NO_DATA_AFTER_HELP})


class SlaTypePatch(Strict):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    maintenanceAccounting = fields.String(validate=validate.OneOf(ACCOUNTING))
    minimumNoticeDays = fields.Integer(validate=validate.Range(0, 365))
    creditPercentPerBreachedPeriod = fields.Float(validate=validate.Range(0, 100))
    creditCapPercent = fields.Float(validate=validate.Range(0, 100))
    timeZone = fields.String(validate=TIME_ZONE, metadata={
        "description": "IANA time zone of the conformance periods (calendar days, months, "
                       "quarters); default UTC", "example": "Europe/Paris"})
    missingData = fields.String(validate=validate.OneOf(MISSING_DATA), metadata={
        "description": MISSING_DATA_HELP + "; for the parameters of standards that do not "
                       "say"})
    noDataAfter = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": NO_DATA_AFTER_HELP})


class SlaType(Resource):
    name = fields.String()
    description = fields.String(allow_none=True)
    maintenanceAccounting = fields.String()
    minimumNoticeDays = fields.Integer()
    creditPercentPerBreachedPeriod = fields.Float()
    creditCapPercent = fields.Float()
    timeZone = fields.String()
    missingData = fields.String(metadata={"description": MISSING_DATA_HELP})
    noDataAfter = fields.Integer()
    lifecycleStatus = fields.String()


# --- threshold standards ------------------------------------------------------------------
class Parameter(Strict):
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


class ValidFor(Strict):
    startDateTime = fields.AwareDateTime(required=True)
    endDateTime = fields.AwareDateTime(allow_none=True)


class ThresholdStandardCreate(Strict):
    class Meta:
        openapi = exactly_one_of("productOfferingId", "offeringGroupId")

    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    productOfferingId = fields.UUID(allow_none=True)
    offeringGroupId = fields.UUID(allow_none=True)
    slaTypeId = fields.UUID(allow_none=True)
    basis = fields.String(required=True, validate=validate.OneOf(BASIS))
    validFor = fields.Nested(ValidFor, required=True)
    parameters = fields.List(fields.Nested(Parameter), required=True,
                             validate=validate.Length(min=1, max=50))

    @validates_schema
    def _one_scope(self, data: dict, **_: object) -> None:
        if bool(data.get("productOfferingId")) == bool(data.get("offeringGroupId")):
            raise ValidationError("give exactly one of productOfferingId and offeringGroupId",
                                  "productOfferingId")


class ThresholdStandardPatch(Strict):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    slaTypeId = fields.UUID(allow_none=True)
    basis = fields.String(validate=validate.OneOf(BASIS))
    validFor = fields.Nested(ValidFor)
    parameters = fields.List(fields.Nested(Parameter), validate=validate.Length(min=1, max=50))
    changeReason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ParameterOut(Schema):
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
    startDateTime = fields.String()
    endDateTime = fields.String(allow_none=True)


class ThresholdStandard(Resource):
    productOfferingId = fields.String(allow_none=True)
    offeringGroupId = fields.String(allow_none=True)
    slaTypeId = fields.String(allow_none=True)
    name = fields.String()
    description = fields.String(allow_none=True)
    basis = fields.String()
    lifecycleStatus = fields.String(metadata={
        "description": "of the latest version: draft, approved, superseded or retired"})
    currentVersion = fields.Integer()
    validFor = fields.Nested(ValidForOut)
    parameters = fields.List(fields.Nested(ParameterOut))


class StandardVersion(Resource):
    version = fields.Integer()
    lifecycleStatus = fields.String(metadata={
        "description": "draft, approved, superseded (a later version was approved) or retired"})
    name = fields.String()
    description = fields.String(allow_none=True)
    basis = fields.String()
    parameters = fields.List(fields.Nested(ParameterOut))
    validFor = fields.Nested(ValidForOut)
    slaTypeId = fields.String(allow_none=True)
    createdAt = fields.String()
    approvedAt = fields.String(allow_none=True)
    approvedBy = fields.String(allow_none=True)
    supersededAt = fields.String(allow_none=True, metadata={
        "description": "when a later approval replaced this version (still in force where "
                       "that one is not: before its approval or outside its validity)"})
    supersededBy = fields.Integer(allow_none=True, metadata={
        "description": "the version whose approval superseded this one"})
    retiredAt = fields.String(allow_none=True)
    changeReason = fields.String(allow_none=True)


class Approval(Strict):
    version = fields.Integer(required=True, validate=VERSION)


class Retirement(Strict):
    version = fields.Integer(allow_none=True, validate=VERSION, metadata={
        "description": "the version to retire; without it every version is retired"})


class InForceQuery(Schema):
    productOfferingId = fields.UUID(required=True)
    slaTypeId = fields.UUID()
    at = fields.AwareDateTime(metadata={
        "description": "business time: in force at this moment (default: now)"})
    asKnownAt = fields.AwareDateTime(metadata={
        "description": "record time: answer as the registry knew it at this moment, from "
                       "its log (default: what it knows now)"})


class InForce(Resource):
    thresholdStandard = fields.Nested(ThresholdStandard)
    inForceVersion = fields.Nested(StandardVersion)


# --- product offering inventory -----------------------------------------------------------
CURRENCY = validate.OneOf(sorted(ISO_CURRENCIES | {c.lower() for c in ISO_CURRENCIES}))
MONEY = Pattern(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$",
                        error="a decimal amount as text, such as \"49.90\"")


class PurchasedOfferingCreate(Strict):
    class Meta:  # a monthly charge is in a currency
        openapi = {"anyOf": [
            {"not": {"required": ["monthlyCharge"]}},
            {"properties": {"monthlyCharge": {"enum": [None]}}},
            {"required": ["currency"], "properties": {"currency": {"not": {"enum": [None]}}}}]}

    id = client_id(description="the product id known to fulfilment; generated when absent")
    customerId = fields.String(required=True, validate=validate.Length(min=1, max=200))
    customerGroup = fields.String(allow_none=True, validate=validate.Length(max=200))
    productOfferingId = fields.UUID(required=True)
    slaTypeId = fields.UUID(allow_none=True)
    site = fields.String(allow_none=True, validate=validate.Length(max=200))
    monthlyCharge = fields.String(allow_none=True, validate=MONEY, metadata={
        "description": "a decimal amount as text, e.g. \"49.90\""})
    currency = fields.String(allow_none=True, validate=CURRENCY)
    status = fields.String(load_default="active", validate=validate.OneOf(INVENTORY_STATUS))
    startDate = fields.AwareDateTime(allow_none=True)
    endDate = fields.AwareDateTime(allow_none=True)


class PurchasedOfferingPatch(Strict):
    customerId = fields.String(validate=validate.Length(min=1, max=200))
    customerGroup = fields.String(allow_none=True, validate=validate.Length(max=200))
    productOfferingId = fields.UUID()
    slaTypeId = fields.UUID(allow_none=True)
    site = fields.String(allow_none=True, validate=validate.Length(max=200))
    monthlyCharge = fields.String(allow_none=True, validate=MONEY, metadata={
        "description": "a decimal amount as text, e.g. \"49.90\""})
    currency = fields.String(allow_none=True, validate=CURRENCY)
    status = fields.String(validate=validate.OneOf(INVENTORY_STATUS))
    statusReason = fields.String(allow_none=True, validate=validate.Length(max=500))
    startDate = fields.AwareDateTime(allow_none=True)
    endDate = fields.AwareDateTime(allow_none=True)


class PurchasedOffering(Resource):
    customerId = fields.String()
    customerGroup = fields.String(allow_none=True)
    productOfferingId = fields.String()
    offeringGroupId = fields.String(allow_none=True)
    slaTypeId = fields.String(allow_none=True)
    site = fields.String(allow_none=True)
    monthlyCharge = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    status = fields.String()
    startDate = fields.String(allow_none=True)
    endDate = fields.String(allow_none=True)


class AnalysisResult(Schema):
    id = fields.String()
    kind = fields.String()
    target = fields.Dict()
    summary = fields.String()
    severity = fields.String()
    parameter = fields.String(allow_none=True)
    analysedAt = fields.String()
    details = fields.Dict()
