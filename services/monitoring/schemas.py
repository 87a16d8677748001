"""marshmallow schemas of the monitoring HTTP API."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.durations import POSITIVE_DURATION
from shared.http.schemas import (
    NAME,
    CamelSchema,
    Computed,
    Pattern,
    Resource,
    client_id,
    exactly_one_of,
)

ROOT = "/monitoring/v1"

DURATION = Pattern(POSITIVE_DURATION, error="an ISO-8601 duration longer than zero, "
                                                    "such as PT5M or PT1H")
LATENESS = Pattern(POSITIVE_DURATION + "|^PT0S$", error="an ISO-8601 duration such "
                                                               "as PT0S, PT1M or PT1H")


class RegimeCreate(CamelSchema):
    class Meta:
        openapi = exactly_one_of("offeringGroupId", "productOfferingId")

    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    offering_group_id = fields.UUID(allow_none=True, metadata={
        "description": "watch the purchased offerings of this offering group"})
    offering_id = fields.UUID(data_key="productOfferingId", allow_none=True, metadata={
        "description": "or of this one offering"})
    sla_type_id = fields.UUID(allow_none=True, metadata={"description": "narrow to an SLA type"})
    customer_group = fields.String(allow_none=True, validate=validate.Length(max=200))
    parameters = fields.List(fields.String(validate=NAME), load_default=list, metadata={
        "description": "parameters of the standards in force to watch; empty: all"})
    window = fields.String(required=True, validate=DURATION, metadata={
        "example": "PT5M", "description": "at least a minute"})
    allowed_lateness = fields.String(load_default="PT1M", validate=LATENESS, metadata={
        "example": "PT1M", "description": "at most 7 days"})
    clear_after = fields.Integer(load_default=1, validate=validate.Range(1, 1000), metadata={
        "description": "good windows needed before a crossing clears"})

    @validates_schema(skip_on_field_errors=False)
    def _one_scope(self, data: dict, **_: object) -> None:
        if (data.get("offering_group_id") is None) == (data.get("offering_id") is None):
            raise ValidationError("give exactly one of offeringGroupId and productOfferingId",
                                  "offeringGroupId")


class RegimePatch(CamelSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    parameters = fields.List(fields.String(validate=NAME))
    allowed_lateness = fields.String(validate=LATENESS, metadata={
        "description": "at most 7 days"})
    clear_after = fields.Integer(validate=validate.Range(1, 1000))


class RegimeAction(CamelSchema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class Regime(Resource):
    PATH, TYPE = f"{ROOT}/monitoringRegime", "MonitoringRegime"

    id = fields.String()
    href = Computed(lambda schema, obj: f"{schema.PATH}/{obj.id}")
    name = fields.String()
    description = fields.String(allow_none=True)
    offering_group_id = fields.String(allow_none=True)
    offering_id = fields.String(data_key="productOfferingId", allow_none=True)
    sla_type_id = fields.String(allow_none=True)
    customer_group = fields.String(allow_none=True)
    parameters = fields.List(fields.String())
    window = fields.String()
    allowed_lateness = fields.String()
    clear_after = fields.Integer()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    version = fields.Integer()


class Sample(Schema):
    purchasedOfferingId = fields.String(required=True)
    parameter = fields.String(required=True)
    value = fields.Float(allow_none=True, metadata={
        "description": "the measurement, in unit when given; without unit a fraction 0..1 "
                       "for availability (the up fraction of the interval) and ratio "
                       "parameters, the standard's unit for any other parameter. A finite "
                       "number of magnitude at most 1e15 (so that no window's sum or mean "
                       "can overflow); larger values are refused with that reason"})
    unit = fields.String(allow_none=True, metadata={
        "description": "optional: % or ratio for availability and ratio parameters "
                       "(recorded as a fraction), otherwise the standard's unit",
        "example": "%"})
    observedAt = fields.String(required=True, metadata={"format": "date-time"})
    intervalSeconds = fields.Float(allow_none=True, metadata={
        "description": "length of the interval the value covers, ending at observedAt"})
    status = fields.String(allow_none=True, metadata={"description": "up or down"})


SAMPLE = {  # documented, not loaded: a sample that breaks it is refused on its own
    "type": "object",
    "required": ["purchasedOfferingId", "parameter", "observedAt"],
    "properties": {
        "purchasedOfferingId": {"type": "string", "minLength": 1},
        "parameter": {"type": "string", "minLength": 1},
        "value": {"type": "number", "nullable": True, "minimum": -1e15, "maximum": 1e15,
                  "description": "the measurement; for "
                  "availability the up fraction (0..1) of the interval"},
        "observedAt": {"type": "string", "format": "date-time",
                       "description": "at most 5 minutes ahead of the service's clock"},
        "intervalSeconds": {"type": "number", "nullable": True, "exclusiveMinimum": True,
                            "minimum": 0, "maximum": 31 * 86400,
                            "description": "length of the interval the "
                            "value covers, ending at observedAt"},
        "status": {"type": "string", "nullable": True, "enum": ["up", "down", None]},
        "unit": {"type": "string", "nullable": True, "description": "the value's unit: % "
                 "or ratio for availability-like parameters, otherwise the standard's"},
    },
    "anyOf": [{"required": ["value"], "properties": {"value": {"type": "number"}}},
              {"required": ["status"], "properties": {"status": {"type": "string"}}}],
}


class MeasurementBatchIn(Schema):
    class Meta:
        openapi = {"properties": {"samples": {"items": SAMPLE}}}

    batchId = client_id(
        description="the sender's id; a batch sent again with it is not counted twice")
    samples = fields.List(fields.Raw(), required=True,
                          validate=validate.Length(min=1),
                          metadata={"description": "samples, each checked on its own"})


class Rejection(Schema):
    index = fields.Integer()
    field = fields.String()
    reason = fields.String()


class MeasurementBatchOut(Resource):
    id = fields.String()
    href = fields.String()
    source = fields.String()
    accepted = fields.Integer()
    rejected = fields.List(fields.Nested(Rejection))
    duplicate = fields.Boolean()
    receivedAt = fields.String()


class Crossing(Resource):
    id = fields.String()
    regimeId = fields.String()
    parameter = fields.String()
    scopeType = fields.String()
    scopeId = fields.String()
    level = fields.String(metadata={
        "description": "warning, breached, noData (the series sent no data for the "
                       "standard's noDataAfter windows) or cleared"})
    open = fields.Boolean()
    raisedAt = fields.String()
    since = fields.String(metadata={
        "description": "start of the first window of the crossing (noData: the first "
                       "window without data)"})
    measuredValue = fields.Float(allow_none=True, metadata={
        "description": "in unit: the standard parameter's unit (availability in % is 0..100)"})
    unit = fields.String(allow_none=True)
    standardId = fields.String()
    standardVersion = fields.Integer()
    planned = fields.Boolean(metadata={
        "description": "due to an agreed planned outage: without the outage's time the "
                       "window would not have been as bad"})
    history = fields.List(fields.Dict())


class BurnAlert(Resource):
    id = fields.String()
    regimeId = fields.String()
    parameter = fields.String()
    scopeType = fields.String()
    scopeId = fields.String()
    severity = fields.String()
    open = fields.Boolean()
    burnRate = fields.Float(metadata={
        "description": "long-window error ratio / error budget: a multiple of the "
                       "sustainable burn"})
    longWindow = fields.String(metadata={"example": "PT1H"})
    shortWindow = fields.String(metadata={"example": "PT5M"})
    longWindowSeconds = fields.Float()
    shortWindowSeconds = fields.Float()
    remainingBudget = fields.Float(allow_none=True, metadata={
        "description": "share of the period's error budget left, a fraction (budgetUnit)"})
    budgetUnit = fields.String(metadata={"example": "ratio"})
    shortBurnRate = fields.Float(metadata={
        "description": "short-window error ratio / error budget"})
    factor = fields.Float(metadata={
        "description": "the factor of the rule that raised the alert (kept on resolution)"})
    resolution = fields.String(allow_none=True, metadata={
        "description": "why it was resolved: subsided, escalatedToPage, fellToTicket or "
                       "budgetRemoved"})
    projectedExhaustion = fields.String(allow_none=True)


class WindowEvaluation(Resource):
    id = fields.String()
    regimeId = fields.String()
    parameter = fields.String()
    scopeType = fields.String()
    scopeId = fields.String()
    windowStart = fields.String()
    windowEnd = fields.String()
    value = fields.Float(allow_none=True, metadata={
        "description": "in unit: the standard parameter's unit (availability in % is 0..100)"})
    unit = fields.String(allow_none=True)
    classification = fields.String(metadata={
        "description": "ok, warning, breached, unknown (nothing measurable) or noData (no "
                       "data, and the standard makes that a noData crossing)"})
    count = fields.Integer()
    eligibleSeconds = fields.Float()
    badSeconds = fields.Float()
    excludedSeconds = fields.Float(metadata={
        "description": "covered time inside agreed outages left out (excluded accounting)"})
    planned = fields.Boolean()
    standardId = fields.String()
    standardVersion = fields.Integer()
    batchIds = fields.List(fields.String())
    remainingBudget = fields.Float(allow_none=True, metadata={
        "description": "share of the period's error budget left, a fraction (budgetUnit)"})
    budgetUnit = fields.String(metadata={"example": "ratio"})
    projectedExhaustion = fields.String(allow_none=True)
    periodStart = fields.String(metadata={
        "description": "the calendar conformance period the window ends in (SLA type's "
                       "time zone)"})
    periodEnd = fields.String()
    periodEligibleSeconds = fields.Float(metadata={
        "description": "the budget's denominator: period length x offerings pooled, less "
                       "the outage time excluded so far"})
    crossingId = fields.String(allow_none=True)


class SeriesStatus(Resource):
    id = fields.String()
    regimeId = fields.String()
    parameter = fields.String()
    scopeType = fields.String()
    scopeId = fields.String()
    level = fields.String()
    since = fields.String(allow_none=True)
    value = fields.Float(allow_none=True, metadata={
        "description": "in unit: the standard parameter's unit (availability in % is 0..100)"})
    unit = fields.String(allow_none=True)
    remainingBudget = fields.Float(allow_none=True, metadata={
        "description": "share of the period's error budget left, a fraction (budgetUnit)"})
    budgetUnit = fields.String(metadata={"example": "ratio"})
    projectedExhaustion = fields.String(allow_none=True)
    burnAlert = fields.String(allow_none=True)


class QuarantineRelease(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500), metadata={
        "description": "why the series can be evaluated again (e.g. the replica was fixed)"})


class Quarantine(Resource):
    id = fields.String()
    href = fields.String()
    kind = fields.String(metadata={
        "description": "series: a regime's parameter, set aside until released; batch: one "
                       "measurement batch, set aside for good"})
    partition = fields.String(metadata={"description": "the evaluator that set it aside"})
    regimeId = fields.String(allow_none=True)
    parameter = fields.String(allow_none=True)
    batchId = fields.String(metadata={
        "description": "the batch being read when the evaluation failed"})
    position = fields.Integer(metadata={
        "description": "its place in the intake log: the quarantine takes effect there"})
    reason = fields.String(metadata={"description": "what failed"})
    status = fields.String(metadata={
        "description": "quarantined, releaseRequested or released"})
    quarantinedAt = fields.String()
    releasedAt = fields.String(allow_none=True)
    releaseReason = fields.String(allow_none=True)
