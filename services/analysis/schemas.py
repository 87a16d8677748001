"""The analysis API's resources and queries, each described once (the OpenAPI document
and the HTTP responses come from these): camelCase on the wire
(``shared.http.schemas``)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.analysis import ROOT, aggregates, credits, domain, problems, trend_series
from services.analysis.domain import ProblemRule, Replica, ServiceProblem, WindowSummary
from services.analysis.trend_runs import TrendRun
from shared import times
from shared.config import SERVICES
from shared.durations import POSITIVE_DURATION, duration_seconds, duration_text
from shared.http.schemas import CamelSchema, Computed, Pattern, Resource, list_query


class When(fields.AwareDateTime):
    """A time: ISO-8601 with an offset on the way in (kept in UTC), ``Z`` on the way out."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        except OverflowError:
            raise ValidationError("out of range") from None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return times.iso_or_none(value)


class Several(fields.String):
    """Comma-separated values (``groupBy=customerId,slaTypeId``; a filter's alternatives
    ``slaTypeId=a,b``), loaded as a tuple; each one of ``choices`` when given (the
    OpenAPI ``pattern`` says the same)."""

    def __init__(self, choices: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        pattern = (f"^({'|'.join(choices)})(,({'|'.join(choices)}))*$" if choices
                   else "[^,]")
        super().__init__(metadata={**kwargs.pop("metadata", {}), "pattern": pattern},
                         **kwargs)
        self.choices = choices

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        values = tuple(dict.fromkeys(v for v in text.split(",") if v))
        if not values:
            raise ValidationError("name at least one value")
        if self.choices is not None:
            unknown = [v for v in values if v not in self.choices]
            if unknown:
                raise ValidationError(f"unknown {', '.join(unknown)}; one or more of "
                                      f"{', '.join(self.choices)}")
        return values


class AggregateAnalysisQuery(Schema):
    """What an aggregate analysis is asked (every other query parameter is refused)."""

    start = When(required=True, data_key="from", metadata={
        "description": "start of the period (exclusive): windows ending after it",
        "example": "2026-11-01T00:00:00Z"})
    end = When(required=True, data_key="to", metadata={
        "description": "end of the period (inclusive): windows ending at or before it",
        "example": "2026-12-01T00:00:00Z"})
    group_by = Several(aggregates.DIMENSIONS, data_key="groupBy", load_default=(), metadata={
        "description": "dimensions to group by, comma-separated (each also a filter): "
                       + ", ".join(aggregates.DIMENSIONS)})
    parameter = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "one parameter (default: each parameter its own rows)"})
    scope_type = fields.String(data_key="scopeType", load_default="purchasedOffering",
                               validate=validate.OneOf(aggregates.SCOPE_TYPES), metadata={
        "description": "which series are summed: each purchased offering's (default), or "
                       "the regimes' pooled offering or group series"})
    format = fields.String(validate=validate.OneOf(("json", "csv")), metadata={
        "description": "csv: the same answer as CSV (also: Accept: text/csv)"})
    customer_id = Several(data_key="customerId")
    customer_group = Several(data_key="customerGroup")
    offering_group_id = Several(data_key="offeringGroupId")
    product_offering_id = Several(data_key="productOfferingId")
    sla_type_id = Several(data_key="slaTypeId")
    purchased_offering_id = Several(data_key="purchasedOfferingId")

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "start" in data and "end" in data and data["end"] <= data["start"]:
            raise ValidationError("must be after from", "to")


class Period(Schema):
    start_date_time = fields.String(data_key="startDateTime")
    end_date_time = fields.String(data_key="endDateTime")


class Amount(Schema):
    unit = fields.String(metadata={"description": "ISO 4217 currency"})
    value = fields.String(metadata={"description": "decimal amount"})


class CreditExposure(Schema):
    breachedPeriods = fields.Integer(metadata={
        "description": "conformance periods in which a purchased offering missed its "
                       "target, summed over the group's purchased offerings"})
    purchasedOfferingCount = fields.Integer(metadata={
        "description": "purchased offerings owed a credit"})
    amount = fields.List(fields.Nested(Amount), metadata={
        "description": "the credits by currency: the SLA type's creditPercentPerBreachedPeriod "
                       "per breached period, capped at creditCapPercent, of the monthly charge"})
    unpricedCount = fields.Integer(metadata={
        "description": "owed a credit, but with no monthly charge known"})
    withoutTermsCount = fields.Integer(metadata={
        "description": "missed a target, but their SLA type gives no credit percentage"})


class Percentiles(Schema):
    p50 = fields.Float(allow_none=True)
    p90 = fields.Float(allow_none=True)
    p99 = fields.Float(allow_none=True)


class AggregateItem(Schema):
    """One group of the answer."""

    group = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                        metadata={"description": "the group's value of each groupBy "
                                                 "dimension (null: not known)"})
    parameter = fields.String()
    unit = fields.String(allow_none=True)
    aggregation = fields.String(allow_none=True)
    windowCount = fields.Integer()
    sampleCount = fields.Integer()
    purchasedOfferingCount = fields.Integer()
    availability = fields.Float(allow_none=True, metadata={
        "description": "pooled by time: Σ (eligible − down) / Σ eligible, in availabilityUnit"})
    availabilityUnit = fields.String(allow_none=True)
    eligibleSeconds = fields.Float()
    downSeconds = fields.Float()
    excludedSeconds = fields.Float(metadata={"description": "agreed outage time excluded"})
    breachCount = fields.Integer(metadata={"description": "windows judged breached"})
    breachedMinutes = fields.Float(metadata={"description": "length of those windows"})
    warningCount = fields.Integer()
    plannedCount = fields.Integer(metadata={"description": "windows bad only because of "
                                                           "an agreed outage"})
    percentile = fields.Nested(Percentiles, metadata={
        "description": "nearest-rank percentiles of the windows' measured values, in unit"})
    meetingTargetCount = fields.Integer()
    judgedCount = fields.Integer(metadata={"description": "purchased offerings judged"})
    meetingTargetShare = fields.Float(allow_none=True, metadata={
        "description": "meetingTargetCount / judgedCount: purchased offerings that met "
                       "their target in every conformance period of the period"})
    creditExposure = fields.Nested(CreditExposure)


class AggregateAnalysis(Schema):
    """An aggregate analysis of a period (TMF-style: ``@type``, the period as
    ``validFor``)."""

    type_ = fields.String(data_key="@type", dump_default="AggregateAnalysis")
    valid_for = fields.Nested(Period, data_key="validFor")
    group_by = fields.List(fields.String(), data_key="groupBy")
    filter = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    parameter = fields.String(allow_none=True)
    scope_type = fields.String(data_key="scopeType")
    item = fields.List(fields.Nested(AggregateItem))


# --- SLA credits ------------------------------------------------------------------------
class CreditPeriodOf(CamelSchema):
    """The conformance period a credit is for."""

    start_date_time = When(attribute="period_start")
    end_date_time = When(attribute="period_end")


class SlaCredit(Resource):
    """What one purchased offering is owed for one closed conformance period."""

    PATH, TYPE = f"{ROOT}/slaCredit", "SlaCredit"

    purchased_offering_id = fields.String()
    customer_id = fields.String(allow_none=True)
    sla_type_id = fields.String(allow_none=True)
    period = fields.Nested(CreditPeriodOf, metadata={
        "description": "the conformance period (calendar-aligned in the SLA type's time "
                       "zone: a month, a quarter)"})
    period_start = When(metadata={"description": "the period's start (a filter: "
                                                 "periodStart.gte=…)"})
    period_end = When(metadata={"description": "the period's end (a filter: "
                                               "periodEnd.lte=…)"})
    status = fields.String(metadata={
        "description": "due (published to billing as SlaCreditDueEvent); kept but not "
                       "published: unpriced (no monthly charge or currency known), "
                       "withoutTerms (the SLA type gives no credit percentage), "
                       "withoutCustomer", "enum": list(credits.STATUSES)})
    breached_periods = fields.Integer(metadata={
        "description": "conformance periods missed: one per parameter of the purchased "
                       "offering's standards that missed its target over the period"})
    missed_parameters = fields.List(fields.String())
    credit_percent = fields.String(allow_none=True, metadata={
        "description": "creditPercentPerBreachedPeriod × breachedPeriods, at most "
                       "creditCapPercent (decimal; null: no terms)"})
    amount = fields.String(allow_none=True, metadata={
        "description": "creditPercent of the monthly charge, to the cent (decimal; null: "
                       "no charge known)"})
    currency = fields.String(allow_none=True)
    crossing_ids = fields.List(fields.String(), metadata={
        "description": "the crossings the breached windows of the missed parameters raised"})
    window_count = fields.Integer(metadata={
        "description": "window summaries of the purchased offering in the period when the "
                       "credit was computed"})
    late_window_count = fields.Integer(metadata={
        "description": "window summaries of the period that arrived after it closed: "
                       "counted here, never applied (the credit stands)"})
    computed_at = When(metadata={"description": "when the clock closed the period"})


class SlaCreditMessage(Schema):
    """A credit as ``SlaCreditDueEvent`` carries it (``contracts/``)."""

    id = fields.String()
    purchased_offering_id = fields.String(data_key="purchasedOfferingId")
    customer_id = fields.String(data_key="customerId")
    sla_type_id = fields.String(data_key="slaTypeId")
    period = fields.Nested(CreditPeriodOf)
    breached_periods = fields.Integer(data_key="breachedPeriods")
    credit_percent = fields.Function(lambda c: credits.percent_number(c.credit_percent),
                                     data_key="creditPercent")
    amount = fields.String()
    currency = fields.String()
    crossing_ids = fields.List(fields.String(), data_key="crossingIds")


SLA_CREDIT = SlaCredit()
CREDIT_MESSAGE = SlaCreditMessage()


def represent(aggregate: Any) -> dict[str, Any]:
    """Any analysis aggregate as its resource (for audit queries)."""
    if isinstance(aggregate, domain.SlaCredit):
        return SLA_CREDIT.dump({**vars(aggregate), "id": aggregate.id,
                                "version": aggregate.version, "period": aggregate.period,
                                "late_window_count": None})
    if isinstance(aggregate, domain.CreditPeriod):
        return {"id": str(aggregate.id), "periodStart": times.iso(aggregate.start),
                "periodEnd": times.iso(aggregate.end),
                "firstSeen": times.iso(aggregate.first_seen),
                "settleSeconds": aggregate.settle_seconds,
                "closeAt": times.iso(aggregate.close_at),
                "closedAt": times.iso_or_none(aggregate.closed_at),
                "purchasedOfferingCount": aggregate.purchased_offering_count,
                "windowCount": aggregate.window_count,
                "creditCount": aggregate.credit_count,
                "publishedCount": aggregate.published_count}
    if isinstance(aggregate, ServiceProblem):
        return service_problem(aggregate)
    if isinstance(aggregate, ProblemRule):
        return ProblemRuleOut().dump(aggregate)
    if isinstance(aggregate, WindowSummary):
        return dict(aggregate.summary)
    if isinstance(aggregate, TrendRun):
        return TREND_RUN.dump(aggregate)
    if isinstance(aggregate, Replica):
        return {"kind": aggregate.kind, "id": aggregate.resource_id,
                "version": aggregate.source_version, "resource": aggregate.resource}
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}


# --- trend analysis ---------------------------------------------------------------------
class Duration(fields.String):
    """An ISO 8601 duration on the wire (``P90D``, ``PT0S``), seconds inside; the
    document's ``pattern`` says which."""

    PATTERN = POSITIVE_DURATION + "|^PT0S$"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={**kwargs.pop("metadata", {}), "pattern": self.PATTERN},
                         **kwargs)
        self._pattern = Pattern(self.PATTERN)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            self._pattern(text)
            return float(duration_seconds(text))
        except (ValidationError, ValueError):
            raise ValidationError("an ISO 8601 duration, e.g. P90D") from None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else duration_text(value)


class TrendFilter(Schema):
    """A question's filters: each dimension's alternatives (its windows have one of
    them)."""

    customerId = fields.List(fields.String(), validate=validate.Length(min=1, max=500))
    customerGroup = fields.List(fields.String(), validate=validate.Length(min=1, max=500))
    offeringGroupId = fields.List(fields.String(), validate=validate.Length(min=1, max=500))
    productOfferingId = fields.List(fields.String(), validate=validate.Length(min=1, max=500))
    slaTypeId = fields.List(fields.String(), validate=validate.Length(min=1, max=500))
    purchasedOfferingId = fields.List(fields.String(),
                                      validate=validate.Length(min=1, max=500))


class TrendQuestion(CamelSchema):
    """What a trend analysis is asked (the body of ``POST /trendAnalysis``; also what a
    run shows it was asked)."""

    start = When(required=True, data_key="from", metadata={
        "description": "start of the period (exclusive): windows ending after it",
        "example": "2026-09-01T00:00:00Z"})
    end = When(required=True, data_key="to", metadata={
        "description": "end of the period (inclusive)", "example": "2026-12-01T00:00:00Z"})
    granularity = fields.String(load_default="day", validate=validate.OneOf(
        trend_series.GRANULARITIES), metadata={
        "description": "a point per UTC day, ISO week or month"})
    group_by = fields.List(fields.String(validate=validate.OneOf(trend_series.DIMENSIONS)),
                           load_default=["productOfferingId"],
                           validate=validate.Length(max=len(trend_series.DIMENSIONS)),
                           metadata={"description": "a series per group and parameter: "
                                     + ", ".join(trend_series.DIMENSIONS)
                                     + " ([]: one series per parameter)"})
    filter = fields.Nested(TrendFilter, load_default=dict, metadata={
        "description": "only the windows whose dimension is one of the values, "
                       'e.g. {"offeringGroupId": ["..."]}'})
    parameter = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(min=1, max=200), metadata={
        "description": "one parameter (default: each its own series)"})
    scope_type = fields.String(load_default="purchasedOffering", validate=validate.OneOf(
        aggregates.SCOPE_TYPES), metadata={
        "description": "which series are pooled: the purchased offerings' (default), or "
                       "the regimes' pooled offering or group series"})
    test = fields.String(load_default="original", validate=validate.OneOf(
        trend_series.TESTS), metadata={
        "description": "original Mann-Kendall; seasonal (Hirsch-Slack); hamed_rao or "
                       "yue_wang (corrected for autocorrelation: daily series)"})
    alpha = fields.Float(load_default=0.05, validate=validate.Range(1e-9, 0.5),
                         metadata={"description": "significance level"})
    season = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(2, 366),
                            metadata={"description": "points a cycle, for the seasonal test "
                                                     "(default 7 days, 52 weeks, 12 months)"})
    lag = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 1000),
                         metadata={"description": "lags of the corrected tests (default: all)"})
    horizon = Duration(load_default=90 * 86400.0, metadata={
        "description": "how far past the last point a crossing of the target is projected "
                       "(ten years at most: a longer horizon is taken as P3660D)"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "start" not in data or "end" not in data:
            return
        if data["end"] <= data["start"]:
            raise ValidationError("must be after from", "to")
        points = trend_series.Calendar.of(trend_series.TrendQuery(
            start=data["start"].timestamp(), end=data["end"].timestamp(),
            granularity=data.get("granularity") or "day")).count
        if points > trend_series.MAX_POINTS:
            raise ValidationError(
                f"the period has {points:,} points of a {data.get('granularity')}; at "
                f"most {trend_series.MAX_POINTS:,}: a shorter period or a coarser "
                f"granularity", "to")

    @staticmethod
    def query(body: dict[str, Any]) -> trend_series.TrendQuery:
        return trend_series.TrendQuery(
            start=body["start"].timestamp(), end=body["end"].timestamp(),
            granularity=body["granularity"], group_by=tuple(dict.fromkeys(body["group_by"])),
            filters={k: tuple(v) for k, v in body["filter"].items()},
            parameter=body["parameter"], scope_type=body["scope_type"], test=body["test"],
            alpha=body["alpha"], season=body["season"], lag=body["lag"],
            horizon=min(body["horizon"], trend_series.MAX_HORIZON))


class TrendQuestionShown(CamelSchema):
    """A run's question as recorded (times as ISO 8601, the horizon as a duration)."""

    start = fields.Function(lambda q: times.iso(q["start"]), data_key="from")
    end = fields.Function(lambda q: times.iso(q["end"]), data_key="to")
    granularity = fields.String()
    group_by = fields.List(fields.String())
    filter = fields.Dict(attribute="filters", keys=fields.String(),
                         values=fields.List(fields.String()))
    parameter = fields.String(allow_none=True)
    scope_type = fields.String()
    test = fields.String()
    alpha = fields.Float()
    season = fields.Integer(allow_none=True)
    lag = fields.Integer(allow_none=True)
    horizon = Duration()


class TrendPoint(CamelSchema):
    start_date_time = fields.String(metadata={"description": "the point's period start"})
    value = fields.Float(allow_none=True, metadata={
        "description": "the period's figure in unit (availability pooled by time; else "
                       "the windows' values weighted by samples); null: no window"})


class TrendProjection(CamelSchema):
    status = fields.String(metadata={
        "description": "crossing (within the horizon), already crossed, or not within "
                       "the horizon"})
    crossing_date_time = fields.String(allow_none=True, metadata={
        "description": "when the Sen line crosses the conformance target"})
    earliest_date_time = fields.String(allow_none=True, metadata={
        "description": "the crossing of the line at the slope's steeper confidence limit"})
    latest_date_time = fields.String(allow_none=True, metadata={
        "description": "the crossing at the shallower limit (null: that line does not "
                       "cross within the horizon)"})
    slope_low = fields.Float(allow_none=True)
    slope_high = fields.Float(allow_none=True)
    horizon_end_date_time = fields.String()


class TrendResult(CamelSchema):
    """One series' result: pymannkendall's figures (null where undefined) and what they
    mean for the SLA."""

    group = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))
    parameter = fields.String()
    unit = fields.String(allow_none=True)
    aggregation = fields.String(allow_none=True)
    comparator = fields.String(allow_none=True)
    conformance_target = fields.Float(allow_none=True)
    higher_is_better = fields.Boolean(allow_none=True)
    window_count = fields.Integer()
    point_count = fields.Integer()
    n = fields.Integer(metadata={"description": "points with a value (the test's sample)"})
    trend = fields.String(metadata={"description": "increasing, decreasing or no trend"})
    h = fields.Boolean()
    p = fields.Float(allow_none=True)
    z = fields.Float(allow_none=True)
    tau = fields.Float(allow_none=True)
    s = fields.Float(allow_none=True)
    var_s = fields.Float(allow_none=True)
    slope = fields.Float(allow_none=True, metadata={
        "description": "Sen's slope, in unit a point (a cycle, for the seasonal test)"})
    intercept = fields.Float(allow_none=True)
    deteriorating = fields.Boolean(metadata={
        "description": "a significant trend the wrong way for the parameter"})
    projection = fields.Nested(TrendProjection, allow_none=True)
    product_offering_ids = fields.List(fields.String())
    points = fields.List(fields.Nested(TrendPoint))


class TrendAnalysis(Resource):
    """A trend analysis run: what was asked, when and by whom, and each series' result."""

    PATH = f"{ROOT}/trendAnalysis"
    TYPE = "TrendAnalysis"

    analysed_at = When()
    actor = fields.String()
    trigger = fields.String(metadata={"description": "request or schedule"})
    question = fields.Nested(TrendQuestionShown, attribute="query",
                             metadata={"description": "the question, as asked"})
    series_count = fields.Integer()
    deteriorating_count = fields.Integer()
    omitted = fields.Integer(metadata={
        "description": "series left out of a scheduled run over more than the cap"})
    result = fields.Nested(TrendResult, many=True, attribute="results")


class TrendAnalysisBrief(TrendAnalysis):
    """A run in a list (without its results)."""

    class Meta:
        exclude = ("result",)


TREND_RUN = TrendAnalysis()


def iso(moment: Any) -> str:
    return times.iso(moment)


# --- offering-wide problems (TMF656 ServiceProblem) -----------------------------------------

REGISTRY = str(SERVICES["threshold-registry"]["root"])


class Ref(Schema):
    """A reference (TMF style): id, href, name, ``@referredType``."""

    id = fields.String()
    href = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    referred_type = fields.String(data_key="@referredType")


class PartyRef(Ref):
    role = fields.String()


class EvidenceRef(Schema):
    """One violation behind a problem (TMF656 ``slaViolation`` as SLAViolationRef)."""

    id = fields.String(metadata={"description": "the violation's, analysis's or "
                                                "crossing's own id"})
    href = fields.String(allow_none=True)
    referred_type = fields.String(data_key="@referredType", metadata={
        "description": "SlaViolation, CustomerSlaAnalysis or ThresholdCrossing"})
    purchasedOfferingId = fields.String()
    customerId = fields.String(allow_none=True)
    parameter = fields.String(allow_none=True)
    dateTime = fields.String(metadata={"description": "when it happened (a violation's "
                                                      "date, an analysis period's end, "
                                                      "a crossing window's end)"})


class RuleOut(Schema):
    count = fields.Integer(allow_none=True)
    share = fields.Float(allow_none=True)
    period = fields.String()
    quietTime = fields.String()


class ServiceProblemOut(Schema):
    """An offering-wide problem in TMF656 ServiceProblem shape (``id``, ``href``,
    ``status``, ``affectedService``, ``affectedNumberOfServices``, ``relatedParty``,
    ``slaViolation``, ``firstAlert``, ``timeRaised`` …), with the counts and the rule
    behind it."""

    PATH = f"{ROOT}/serviceProblem"

    id = fields.String()
    href = fields.String()
    type_ = fields.String(data_key="@type")
    version = fields.Integer(metadata={"description": "aggregate version; also the ETag"})
    name = fields.String()
    description = fields.String(metadata={"description": "what the latest change found"})
    category = fields.String(metadata={"description": "offeringWideSlaViolation"})
    originatingSystem = fields.String()
    status = fields.String(metadata={"description": "inProgress (open) or resolved"})
    statusChangeReason = fields.String()
    statusChangeDate = fields.String()
    productOfferingId = fields.String(metadata={"description": "the offering affected"})
    offeringGroupId = fields.String(allow_none=True)
    affectedProductOffering = fields.Nested(Ref)
    affectedNumberOfServices = fields.Integer(metadata={
        "description": "purchased offerings of the offering violated in this episode"})
    activeNumberOfServices = fields.Integer(metadata={
        "description": "the offering's active purchased offerings (the inventory's)"})
    impactImportanceFactor = fields.Float(allow_none=True, metadata={
        "description": "affectedNumberOfServices as a percentage of the active ones"})
    affectedService = fields.List(fields.Nested(Ref), metadata={
        "description": f"the latest {problems.KEPT} purchased offerings affected"})
    affectedCustomerCount = fields.Integer()
    relatedParty = fields.List(fields.Nested(PartyRef), metadata={
        "description": f"the latest {problems.KEPT} customers affected (role Customer)"})
    violationCount = fields.Integer(metadata={"description": "violations in this episode"})
    slaViolation = fields.List(fields.Nested(EvidenceRef), metadata={
        "description": f"the latest {problems.KEPT} violations behind it"})
    firstAlert = fields.Nested(EvidenceRef, metadata={
        "description": "the earliest violation of the episode (first seen)"})
    lastAlert = fields.Nested(EvidenceRef, metadata={
        "description": "the latest violation (last seen)"})
    timeRaised = fields.String(metadata={"description": "when it was opened (or reopened)"})
    timeChanged = fields.String()
    resolutionDate = fields.String(allow_none=True)
    resolutionDue = fields.String(allow_none=True, metadata={
        "description": "when it is resolved if no violation arrives before (open only)"})
    episode = fields.Integer(metadata={"description": "1, then 2 after the first reopening, …"})
    reopenCount = fields.Integer()
    rule = fields.Nested(RuleOut)


def problem_view(problem: ServiceProblem) -> dict[str, Any]:
    """A problem as its resource (the API's answers and the published events)."""
    due = problems.problem_due(problem)
    share = problems.share_of(problem.affected_count, problem.active_count)
    changed = problem.resolved_at if problem.status == problems.RESOLVED else \
        problem.changed_at
    return {
        "id": str(problem.id), "href": f"{ServiceProblemOut.PATH}/{problem.id}",
        "type_": "ServiceProblem", "version": problem.version,
        "name": f"Offering-wide problem of {problem.offering_name or problem.product_offering_id}",
        "description": problems.summary(
            problem.product_offering_id, problems.Counts(
                problem.violation_count, problem.affected_count, problem.customer_count),
            problem.active_count, problems.Rule.of(problem.rule),
            problems.RESOLVED if problem.status == problems.RESOLVED else
            problems.REOPENS if problem.episode > 1 else problems.OPENS),
        "category": "offeringWideSlaViolation", "originatingSystem": "analysis",
        "status": problem.status, "statusChangeReason": problem.status_reason,
        "statusChangeDate": times.iso(changed),
        "productOfferingId": problem.product_offering_id,
        "offeringGroupId": problem.offering_group_id,
        "affectedProductOffering": {
            "id": problem.product_offering_id,
            "href": f"{REGISTRY}/productOffering/{problem.product_offering_id}",
            "name": problem.offering_name, "referred_type": "ProductOffering"},
        "affectedNumberOfServices": problem.affected_count,
        "activeNumberOfServices": problem.active_count,
        "impactImportanceFactor": None if share is None else round(100 * min(share, 1), 2),
        "affectedService": [{"id": po, "href": f"{REGISTRY}/purchasedOffering/{po}",
                             "referred_type": "PurchasedOffering"}
                            for po in problem.affected],
        "affectedCustomerCount": problem.customer_count,
        "relatedParty": [{"id": c, "role": "Customer", "referred_type": "Customer"}
                         for c in problem.customers],
        "violationCount": problem.violation_count,
        "slaViolation": [_evidence(ref) for ref in problem.evidence],
        "firstAlert": _evidence(problem.first_alert),
        "lastAlert": _evidence(problem.last_alert),
        "timeRaised": times.iso(problem.raised_at),
        "timeChanged": times.iso(problem.changed_at),
        "resolutionDate": times.iso_or_none(problem.resolved_at),
        "resolutionDue": times.iso(due[0].at) if due else None,
        "episode": problem.episode, "reopenCount": problem.episode - 1,
        "rule": dict(problem.rule),
    }


def _evidence(ref: dict[str, Any]) -> dict[str, Any]:
    return {("referred_type" if k == "@referredType" else k): v for k, v in ref.items()}


def service_problem(problem: ServiceProblem) -> dict[str, Any]:
    """A problem on the wire (camelCase, TMF656 shape)."""
    return ServiceProblemOut().dump(problem_view(problem))


class ServiceProblemQuery(list_query(ServiceProblemOut)):  # type: ignore[misc]
    """The list's own filter besides the attributes (which filter as any list's do)."""

    customerId = fields.String(metadata={
        "description": "problems of offerings in which this customer's purchased "
                       "offerings had a violation"})


DURATION = Pattern(POSITIVE_DURATION, error="an ISO 8601 duration longer than zero, "
                                            "such as PT24H")


class ProblemRuleIn(Schema):
    """An offering's rule (or the default): a count or a share of its active purchased
    offerings violated within a period, or both (either opens a problem), and the quiet
    time after which an open problem is resolved."""

    class Meta:
        openapi = {"anyOf": [{"required": ["count"]}, {"required": ["share"]}]}

    count = fields.Integer(validate=validate.Range(min=1, max=1_000_000), metadata={
        "description": "purchased offerings violated within the period (left out: "
                       "none; a count, a share or both)"})
    share = fields.Float(validate=validate.Range(min=0, max=1, min_inclusive=False), metadata={
        "description": "share (0-1] of the offering's active purchased offerings "
                       "violated within the period (at least two)",
        "exclusiveMinimum": True})
    period = fields.String(required=True, validate=DURATION, metadata={
        "description": "the sliding period the violations are counted in", "example": "PT24H"})
    quietTime = fields.String(required=True, validate=DURATION, metadata={
        "description": "an open problem is resolved after this long without a violation",
        "example": "PT6H"})

    @validates_schema
    def _some_threshold(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("count") is None and data.get("share") is None:
            raise ValidationError("give a count, a share or both", "count")


class ProblemRuleOut(Resource):
    """The rule of one offering (``id``: the offering's id) or the default (``default``)."""

    PATH, TYPE = f"{ROOT}/serviceProblemRule", "ServiceProblemRule"

    id = fields.String(attribute="rule_id", dump_only=True)
    href = Computed(lambda schema, obj: f"{schema.PATH}/{obj.rule_id}")
    count = fields.Integer(allow_none=True)
    share = fields.Float(allow_none=True)
    period = fields.String()
    quietTime = fields.String(attribute="quiet_time")
