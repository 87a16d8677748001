"""Each of monitoring's resources described once: marshmallow schemas (snake_case
attributes, camelCase on the wire) that load request bodies into the application's
arguments and dump the aggregates — or the small read objects the application returns
where a resource joins several (``Receipt``, ``SeriesStatus``, ``QuarantineStatus``) —
for the HTTP responses, the bus payloads (``RegimeMessage``, ``CrossingMessage``,
``BurnAlertMessage``: the shapes of ``contracts/schemas/messages/``) and the audit's past
states (``represent``). The OpenAPI document is generated from them (``make openapi``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, missing, validate, validates_schema

from services.monitoring import domain
from services.monitoring.application import QuarantineStatus
from services.monitoring.budgets import BUDGET_UNIT
from shared.durations import POSITIVE_DURATION, duration_text
from shared.http.schemas import (
    NAME,
    CamelSchema,
    Computed,
    Pattern,
    Resource,
    client_id,
    exactly_one_of,
)
from shared.times import iso

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


class MeasurementBatchIn(CamelSchema):
    class Meta:
        openapi = {"properties": {"samples": {"items": SAMPLE}}}

    batch_id = client_id(
        description="the sender's id; a batch sent again with it is not counted twice")
    samples = fields.List(fields.Raw(), required=True,
                          validate=validate.Length(min=1),
                          metadata={"description": "samples, each checked on its own"})


# --- how recorded figures go on the wire -------------------------------------------------
class Figure(fields.Float):
    """A number as the evaluator recorded it: documented as a number, sent as it was kept
    (a whole number stays whole, as in the evaluation's or alert's record)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, int | float):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


class Instant(fields.String):
    """A moment kept as epoch seconds or a datetime, on the wire as ISO-8601 UTC with
    ``Z`` (``shared.times.iso``); text kept as text is sent as it is."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime):
            value = value.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return iso(value)
        return super()._serialize(value, attr, obj, **kwargs)


class RuleWindow(fields.String):
    """A burn-rate rule's window, kept in seconds, sent as an ISO-8601 duration (as on
    the bus); anything else kept is sent as it is."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return duration_text(value)
        return super()._serialize(value, attr, obj, **kwargs)


class RuleWindowSeconds(Figure):
    """The same window in seconds (the alert's ``evidence[window]``, which the window's
    own field also reads); left out when the window was not kept in seconds."""

    def __init__(self, window: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window = window

    def get_value(self, obj: Any, attr: str, accessor: Any = None,
                  default: Any = missing) -> Any:
        return (getattr(obj, "evidence", None) or {}).get(self.window, missing)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        return missing


class Unsent(fields.Integer):
    """The ``version`` of a resource that never changes once recorded (a batch, an
    evaluation) or has none of its own (a status row): documented as every resource's,
    so lists take it in ``sort=`` and filters as they always have, and never sent (so
    there is no ETag)."""

    def __init__(self) -> None:
        super().__init__(dump_only=True, metadata={
            "description": "aggregate version; also the ETag"})

    def serialize(self, attr: str, obj: Any, accessor: Any = None, **kwargs: Any) -> Any:
        return missing


BUDGET_FRACTION = "share of the period's error budget left, a fraction (budgetUnit)"
IN_UNIT = "in unit: the standard parameter's unit (availability in % is 0..100)"


class Series(CamelSchema):
    """What names one series: a regime's parameter for one scope."""

    regime_id = fields.String()
    parameter = fields.String()
    scope_type = fields.String()
    scope_id = fields.String()


# --- measurement batches ------------------------------------------------------------------
class Rejection(CamelSchema):
    index = fields.Integer()
    field = fields.String()
    reason = fields.String()


class MeasurementBatchOut(Resource):
    """A recorded batch (``MeasurementBatch``), or the receipt of one just sent
    (``Receipt``: with ``duplicate``)."""

    PATH, TYPE = f"{ROOT}/measurementBatch", "MeasurementBatch"

    version = Unsent()

    id = fields.String(attribute="batch_id")
    href = Computed(lambda schema, obj: f"{schema.PATH}/{obj.batch_id}")
    source = fields.String()
    accepted = fields.Integer()
    rejected = fields.List(fields.Nested(Rejection))
    duplicate = fields.Boolean()
    received_at = Instant(attribute="created_on")


# --- crossings ----------------------------------------------------------------------------
class Crossing(Resource, Series):
    PATH, TYPE = f"{ROOT}/crossing", "ThresholdCrossing"

    id = fields.String()

    level = fields.String(attribute="shown_level", metadata={
        "description": "warning, breached, noData (the series sent no data for the "
                       "standard's noDataAfter windows) or cleared"})
    open = fields.Boolean()
    raised_at = Instant(attribute="created_on")
    since = fields.String(metadata={
        "description": "start of the first window of the crossing (noData: the first "
                       "window without data)"})
    measured_value = Figure(attribute="last.measuredValue", allow_none=True, metadata={
        "description": IN_UNIT})
    unit = fields.String(attribute="last.unit", allow_none=True)
    standard_id = fields.String(attribute="last.standardId")
    standard_version = fields.Integer(attribute="last.standardVersion")
    planned = fields.Boolean(attribute="first.planned", metadata={
        "description": "due to an agreed planned outage: without the outage's time the "
                       "window would not have been as bad"})
    history = fields.List(fields.Dict())


# --- burn alerts --------------------------------------------------------------------------
class BurnAlert(Resource, Series):
    """The alert with the evidence of the rule that raised it (or of its resolution): rule
    windows as ISO-8601 durations (as on the bus) and in seconds (``…Seconds``)."""

    PATH, TYPE = f"{ROOT}/burnAlert", "BurnRateAlert"

    id = fields.String()

    severity = fields.String()
    open = fields.Boolean()
    raised_at = Instant(attribute="created_on")
    burn_rate = Figure(attribute="evidence.burnRate", metadata={
        "description": "long-window error ratio / error budget: a multiple of the "
                       "sustainable burn"})
    long_window = RuleWindow(attribute="evidence.longWindow", metadata={"example": "PT1H"})
    short_window = RuleWindow(attribute="evidence.shortWindow", metadata={"example": "PT5M"})
    long_window_seconds = RuleWindowSeconds("longWindow")
    short_window_seconds = RuleWindowSeconds("shortWindow")
    remaining_budget = Figure(attribute="evidence.remainingBudget", allow_none=True,
                              metadata={"description": BUDGET_FRACTION})
    budget_unit = fields.String(attribute="evidence.budgetUnit", dump_default=BUDGET_UNIT,
                                metadata={"example": "ratio"})
    short_burn_rate = Figure(attribute="evidence.shortBurnRate", metadata={
        "description": "short-window error ratio / error budget"})
    factor = Figure(attribute="evidence.factor", metadata={
        "description": "the factor of the rule that raised the alert (kept on resolution)"})
    resolution = fields.String(attribute="evidence.resolution", allow_none=True, metadata={
        "description": "why it was resolved: subsided, escalatedToPage, fellToTicket or "
                       "budgetRemoved"})
    projected_exhaustion = fields.String(attribute="evidence.projectedExhaustion",
                                         allow_none=True)
    measured_value = Figure(attribute="evidence.measuredValue", allow_none=True, metadata={
        "description": f"of the window that raised or resolved it, {IN_UNIT}"})
    unit = fields.String(attribute="evidence.unit", allow_none=True)
    aggregation = fields.String(attribute="evidence.aggregation", allow_none=True)
    comparator = fields.String(attribute="evidence.comparator")
    conformance_target = Figure(attribute="evidence.conformanceTarget")
    threshold_target = Figure(attribute="evidence.thresholdTarget", allow_none=True)
    standard_id = fields.String(attribute="evidence.standardId")
    standard_version = fields.Integer(attribute="evidence.standardVersion")
    window_start = fields.String(attribute="evidence.windowStart")
    window_end = fields.String(attribute="evidence.windowEnd")
    planned = fields.Boolean(attribute="evidence.planned")
    batch_ids = fields.List(fields.String(), attribute="evidence.batchIds")
    evaluation_id = fields.String(attribute="evidence.evaluationId", allow_none=True)


# --- window evaluations -------------------------------------------------------------------
class WindowEvaluation(Resource, Series):
    """One evaluated window with the figures the evaluator recorded (``result``)."""

    PATH, TYPE = f"{ROOT}/windowEvaluation", "WindowEvaluation"

    id = fields.String()

    version = Unsent()

    window_start = Instant()
    window_end = Instant()
    value = Figure(attribute="result.value", allow_none=True, metadata={
        "description": IN_UNIT})
    unit = fields.String(attribute="result.unit", allow_none=True)
    aggregation = fields.String(attribute="result.aggregation", allow_none=True)
    classification = fields.String(attribute="result.classification", metadata={
        "description": "ok, warning, breached, unknown (nothing measurable) or noData (no "
                       "data, and the standard makes that a noData crossing)"})
    count = fields.Integer(attribute="result.count")
    eligible_seconds = Figure(attribute="result.eligibleSeconds")
    bad_seconds = Figure(attribute="result.badSeconds")
    excluded_seconds = Figure(attribute="result.excludedSeconds", metadata={
        "description": "covered time inside agreed outages left out (excluded accounting)"})
    planned = fields.Boolean(attribute="result.planned")
    standard_id = fields.String(attribute="result.standardId")
    standard_version = fields.Integer(attribute="result.standardVersion")
    comparator = fields.String(attribute="result.comparator")
    conformance_target = Figure(attribute="result.conformanceTarget")
    threshold_target = Figure(attribute="result.thresholdTarget", allow_none=True)
    grace_times = fields.Integer(attribute="result.graceTimes")
    batch_ids = fields.List(fields.String(), attribute="result.batchIds")
    late_samples = fields.Integer(attribute="result.lateSamples", metadata={
        "description": "samples for the window that came after it was evaluated"})
    remaining_budget = Figure(attribute="result.remainingBudget", allow_none=True,
                              metadata={"description": BUDGET_FRACTION})
    budget_unit = fields.String(attribute="result.budgetUnit", metadata={"example": "ratio"})
    projected_exhaustion = fields.String(attribute="result.projectedExhaustion",
                                         allow_none=True)
    period_start = fields.String(attribute="result.periodStart", metadata={
        "description": "the calendar conformance period the window ends in (SLA type's "
                       "time zone)"})
    period_end = fields.String(attribute="result.periodEnd")
    period_eligible_seconds = Figure(attribute="result.periodEligibleSeconds", metadata={
        "description": "the budget's denominator: period length x offerings pooled, less "
                       "the outage time excluded so far"})
    crossing_id = fields.String(attribute="result.crossingId", allow_none=True)


# --- status -------------------------------------------------------------------------------
class SeriesStatus(Resource, Series):
    """The current status of one series (``application.SeriesStatus``): its latest
    evaluation with its open crossing and burn alert."""

    PATH, TYPE = f"{ROOT}/status", "SeriesStatus"

    id = fields.String()

    version = Unsent()

    href = Computed(lambda schema, row: f"{schema.PATH}?regimeId={row.regime_id}"
                                        f"&scopeId={row.scope_id}")
    level = fields.String()
    since = fields.String(allow_none=True)
    crossing_id = fields.String(allow_none=True)
    value = Figure(attribute="evaluation.result.value", allow_none=True, metadata={
        "description": IN_UNIT})
    unit = fields.String(attribute="evaluation.result.unit", allow_none=True)
    classification = fields.String(attribute="evaluation.result.classification",
                                   allow_none=True)
    last_window_start = Instant(attribute="evaluation.window_start")
    last_window_end = Instant(attribute="evaluation.window_end")
    remaining_budget = Figure(attribute="evaluation.result.remainingBudget", allow_none=True,
                              metadata={"description": BUDGET_FRACTION})
    budget_unit = fields.String(metadata={"example": "ratio"})
    projected_exhaustion = fields.String(attribute="evaluation.result.projectedExhaustion",
                                         allow_none=True)
    burn_alert = fields.String(allow_none=True)
    standard_id = fields.String(attribute="evaluation.result.standardId", allow_none=True)
    standard_version = fields.Integer(attribute="evaluation.result.standardVersion",
                                      allow_none=True)


# --- quarantine ---------------------------------------------------------------------------
class QuarantineRelease(CamelSchema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500), metadata={
        "description": "why the series can be evaluated again (e.g. the replica was fixed)"})


class Quarantine(Resource):
    """A quarantine with the release asked for, if any (``application.QuarantineStatus``)."""

    PATH, TYPE = f"{ROOT}/quarantine", "EvaluationQuarantine"

    id = fields.String()

    kind = fields.String(metadata={
        "description": "series: a regime's parameter, set aside until released; batch: one "
                       "measurement batch, set aside for good"})
    partition = fields.String(metadata={"description": "the evaluator that set it aside"})
    regime_id = fields.String(allow_none=True)
    parameter = fields.String(allow_none=True)
    batch_id = fields.String(metadata={
        "description": "the batch being read when the evaluation failed"})
    position = fields.Integer(metadata={
        "description": "its place in the intake log: the quarantine takes effect there"})
    reason = fields.String(metadata={"description": "what failed"})
    status = fields.String(metadata={
        "description": "quarantined, releaseRequested or released"})
    quarantined_at = Instant(attribute="created_on")
    released_at = Instant(allow_none=True)
    release_reason = fields.String(allow_none=True)


# --- bus payloads -------------------------------------------------------------------------
class RegimeMessage(Regime):
    """A regime as ``MonitoringRegimeChangeEvent`` carries it: its resource, when it was
    started and when this version of it was recorded."""

    started_at = Instant(attribute="created_on")
    changed_at = Instant(attribute="modified_on")


class Itself(fields.Nested):
    """A part of a payload made of the object's own attributes (a series' ``scope``)."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None,
                  default: Any = missing) -> Any:
        return obj


class WhenKept(fields.Field):
    """``field``'s dump of what the evidence kept, left out when it kept nothing (null or
    absent): the contracts make these members optional, never null."""

    def __init__(self, field: fields.Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.field = field

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return missing if value is None else self.field._serialize(value, attr, obj, **kwargs)


class Otherwise(fields.Field):
    """``field``'s dump of what the evidence kept, or of ``fallback`` where it kept nothing
    (absent, null or zero): an alert recorded before the figure was kept still carries
    every member its contract requires."""

    def __init__(self, field: fields.Field, fallback: Any, **kwargs: Any) -> None:
        super().__init__(dump_default=None, **kwargs)
        self.field, self.fallback = field, fallback

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return self.field._serialize(value or self.fallback, attr, obj, **kwargs)


class BurnRate(Figure):
    """A burn rate as the bus carries it: never below zero (the contract's minimum); an
    alert that kept none has 0."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dump_default=None, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return max(0.0, value or 0)


class Duration(fields.String):
    """A burn-rate rule's window, kept in seconds, as an ISO-8601 duration."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return duration_text(value)


class Scope(CamelSchema):
    """What a series watches, as the messages name it: ``{type, id}``."""

    type_ = fields.String(attribute="scope_type", data_key="type")
    id = fields.String(attribute="scope_id")


class EvaluatedWindow(CamelSchema):
    """The evaluation window an outcome's evidence names (its event time)."""

    start_date_time = fields.String(attribute="windowStart")
    end_date_time = fields.String(attribute="windowEnd")


class WindowWhenKept(fields.Nested):
    """The evaluated window, left out when the evidence does not name both its ends."""

    def _serialize(self, nested_obj: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if not (nested_obj.get("windowStart") and nested_obj.get("windowEnd")):
            return missing
        return super()._serialize(nested_obj, attr, obj, **kwargs)


class SeriesMessage(CamelSchema):
    """What names an outcome of one series in a message: its id, regime, parameter and
    scope."""

    id = fields.String()
    regime_id = fields.String()
    parameter = fields.String()
    scope = Itself(Scope)


class CrossingMessage(SeriesMessage):
    """A crossing as ``ThresholdCrossingEvent`` carries it: the level it is at after the
    change, with the evidence of the change's window (``last``), recorded at
    ``raisedAt`` (the change's time)."""

    level = fields.String(attribute="shown_level")
    measured_value = Figure(attribute="last.measuredValue", dump_default=None)
    unit = fields.String(attribute="last.unit", dump_default=None)
    aggregation = fields.String(attribute="last.aggregation", dump_default=None)
    conformance_target = Figure(attribute="last.conformanceTarget")
    threshold_target = Figure(attribute="last.thresholdTarget", dump_default=None)
    comparator = fields.String(attribute="last.comparator")
    standard_id = fields.String(attribute="last.standardId")
    standard_version = fields.Integer(attribute="last.standardVersion")
    window = fields.Nested(EvaluatedWindow, attribute="last")
    planned = fields.Boolean(attribute="last.planned")
    batch_ids = fields.List(fields.String(), attribute="last.batchIds")
    raised_at = Instant(attribute="modified_on")
    evaluation_id = fields.String(attribute="last.evaluationId", dump_default=None)


class BurnAlertMessage(SeriesMessage):
    """A burn alert as ``BurnRateAlertEvent`` carries it: the figures of its rule when it
    was raised or resolved (``evidence``), recorded at ``raisedAt`` (the change's time)."""

    severity = fields.String()
    burn_rate = BurnRate(attribute="evidence.burnRate")
    long_window = Otherwise(Duration(), 3600, attribute="evidence.longWindow")
    short_window = Otherwise(Duration(), 300, attribute="evidence.shortWindow")
    remaining_budget = Otherwise(Figure(), 0.0, attribute="evidence.remainingBudget")
    budget_unit = fields.String(attribute="evidence.budgetUnit", dump_default=BUDGET_UNIT)
    projected_exhaustion = fields.String(attribute="evidence.projectedExhaustion",
                                         dump_default=None)
    standard_id = fields.String(attribute="evidence.standardId")
    standard_version = fields.Integer(attribute="evidence.standardVersion")
    window = WindowWhenKept(EvaluatedWindow, attribute="evidence")
    raised_at = Instant(attribute="modified_on")
    factor = WhenKept(Figure(), attribute="evidence.factor")
    short_burn_rate = WhenKept(Figure(), attribute="evidence.shortBurnRate")
    resolution = WhenKept(fields.String(), attribute="evidence.resolution")


# --- the audit's "as of" representation ---------------------------------------------------
def represent(aggregate: Any) -> dict[str, Any]:
    """An aggregate as the API shows it, for the audit's past states."""
    for kind, schema in ((domain.Regime, Regime), (domain.WindowEvaluation, WindowEvaluation),
                         (domain.Crossing, Crossing), (domain.BurnAlert, BurnAlert),
                         (domain.MeasurementBatch, MeasurementBatchOut)):
        if isinstance(aggregate, kind):
            return schema().dump(aggregate)
    if isinstance(aggregate, domain.Quarantine):
        return Quarantine().dump(QuarantineStatus(aggregate))
    if isinstance(aggregate, domain.EvaluatedWindow):  # one window, every series inside
        return {"id": str(aggregate.id), "regimeId": str(aggregate.regime_id),
                "parameter": aggregate.parameter,
                "windowStart": iso(aggregate.window_start),
                "windowEnd": iso(aggregate.window_end),
                "evaluations": WindowEvaluation(many=True).dump(aggregate.series())}
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
