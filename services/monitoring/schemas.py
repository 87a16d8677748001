"""marshmallow schemas of the monitoring HTTP API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.http.schemas import client_id

NAME = validate.Length(min=1, max=200)


class RegimeCreate(Schema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    offeringGroupId = fields.UUID(allow_none=True, metadata={
        "description": "watch the purchased offerings of this offering group"})
    productOfferingId = fields.UUID(allow_none=True, metadata={
        "description": "or of this one offering"})
    slaTypeId = fields.UUID(allow_none=True, metadata={"description": "narrow to an SLA type"})
    customerGroup = fields.String(allow_none=True, validate=validate.Length(max=200))
    parameters = fields.List(fields.String(validate=NAME), load_default=list, metadata={
        "description": "parameters of the standards in force to watch; empty: all"})
    window = fields.String(required=True, metadata={"example": "PT5M"})
    allowedLateness = fields.String(load_default="PT1M", metadata={"example": "PT1M"})
    clearAfter = fields.Integer(load_default=1, validate=validate.Range(1, 1000), metadata={
        "description": "good windows needed before a crossing clears"})


class RegimePatch(Schema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    parameters = fields.List(fields.String(validate=NAME))
    allowedLateness = fields.String()
    clearAfter = fields.Integer(validate=validate.Range(1, 1000))


class RegimeAction(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class Regime(Schema):
    id = fields.String()
    href = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    offeringGroupId = fields.String(allow_none=True)
    productOfferingId = fields.String(allow_none=True)
    slaTypeId = fields.String(allow_none=True)
    customerGroup = fields.String(allow_none=True)
    parameters = fields.List(fields.String())
    window = fields.String()
    allowedLateness = fields.String()
    clearAfter = fields.Integer()
    status = fields.String()
    statusReason = fields.String(allow_none=True)
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


class MeasurementBatchIn(Schema):
    batchId = client_id(
        description="the sender's id; a batch sent again with it is not counted twice")
    samples = fields.List(fields.Raw(), required=True, metadata={
        "description": "samples (see Sample); each is checked on its own"})


class Rejection(Schema):
    index = fields.Integer()
    field = fields.String()
    reason = fields.String()


class MeasurementBatchOut(Schema):
    id = fields.String()
    href = fields.String()
    source = fields.String()
    accepted = fields.Integer()
    rejected = fields.List(fields.Nested(Rejection))
    duplicate = fields.Boolean()
    receivedAt = fields.String()


class Crossing(Schema):
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


class BurnAlert(Schema):
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


class WindowEvaluation(Schema):
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


class SeriesStatus(Schema):
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


class Quarantine(Schema):
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
