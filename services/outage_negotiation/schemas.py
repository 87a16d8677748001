"""The outage-negotiation API's resources and commands, each described once (the OpenAPI
document, the HTTP responses, the published payloads and the audit records all come from
these): snake_case attributes, camelCase on the wire (``shared.http.schemas``).

A window is kept as ``{"start", "end"}`` (datetimes, UTC) and is ``startDateTime`` /
``endDateTime`` on the wire (TMF's period), so a body loads straight into the
application's arguments and the outage dumps straight into its resource.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.outage_negotiation import ROOT, domain
from services.outage_negotiation.figures import negotiation_figures
from shared import times
from shared.durations import duration_text
from shared.http.schemas import (
    HTTP_URL,
    NAME,
    NOT_BLANK,
    CamelSchema,
    Pattern,
    Resource,
    client_id,
    exactly_one_of,
)

REASON = [validate.Length(min=1, max=2000), NOT_BLANK]


class When(fields.AwareDateTime):
    """A time: ISO-8601 with an offset on the way in (kept in UTC), ``Z`` on the way out."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return times.iso_or_none(value)


class Period(CamelSchema):
    """A window: it must start in the future (now, when it is sent) and end after it
    starts (400 naming the field otherwise)."""

    start = When(required=True, data_key="startDateTime",
                 metadata={"example": "2099-01-01T01:00:00Z"})
    end = When(required=True, data_key="endDateTime",
               metadata={"example": "2099-01-01T03:00:00Z"})


class BlackoutPeriod(Period):
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=500))


class CustomerSite(CamelSchema):
    customer_id = client_id(required=True, attribute="customerId",
                            description="the customer")
    site = fields.String(required=True, attribute="site", validate=NAME)


def _ids(item: fields.Field, **kwargs: Any) -> fields.List:
    return fields.List(item, validate=validate.Length(max=1000), **kwargs)


class Affects(CamelSchema):
    """What an outage affects: an offering group, offerings, purchased offerings or
    customer sites (any of them; at least one)."""

    class Meta:
        openapi = {"anyOf": [
            {"required": ["offeringGroupId"],
             "properties": {"offeringGroupId": {"not": {"enum": [None]}}}},
            *({"required": [name], "properties": {name: {"minItems": 1}}}
              for name in ("productOfferingIds", "purchasedOfferingIds", "customerSites"))]}

    offering_group_id = fields.UUID(attribute="offeringGroupId", allow_none=True,
                                    load_default=None)
    product_offering_ids = _ids(fields.UUID(), attribute="productOfferingIds",
                                load_default=list)
    purchased_offering_ids = _ids(client_id(), attribute="purchasedOfferingIds",
                                  load_default=list)
    customer_sites = fields.List(fields.Nested(CustomerSite), attribute="customerSites",
                                 load_default=list, validate=validate.Length(max=1000))

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(k) for k in ("offeringGroupId", "productOfferingIds",
                                          "purchasedOfferingIds", "customerSites")):
            raise ValidationError("name an offeringGroupId, productOfferingIds, "
                                  "purchasedOfferingIds or customerSites")

    def load(self, *args: Any, **kwargs: Any) -> Any:  # ids as text, as the bus has them
        data = super().load(*args, **kwargs)
        if data.get("offeringGroupId") is not None:
            data["offeringGroupId"] = str(data["offeringGroupId"])
        data["productOfferingIds"] = [str(i) for i in data.get("productOfferingIds", [])]
        return data


WINDOWS = dict(validate=validate.Length(min=1, max=20), metadata={
    "description": "the windows proposed, most preferred first"})


class PlannedOutageCreate(CamelSchema):
    name = fields.String(validate=NAME, load_default=None)
    affects = fields.Nested(Affects, required=True)
    windows = fields.List(fields.Nested(Period), required=True, **WINDOWS)
    reason = fields.String(required=True, validate=REASON)
    impact = fields.String(required=True, validate=validate.OneOf(domain.IMPACTS),
                           metadata={"description": "fullOutage, degraded or atRisk"})
    planner = fields.String(validate=NAME, load_default=None, metadata={
        "description": "who plans it (default: the token's subject)"})
    change_link = fields.String(load_default=None, allow_none=True, validate=HTTP_URL,
                                metadata={"description": "the network change this outage "
                                                         "is for (an http or https URL)"})


class PlannedOutagePatch(CamelSchema):
    """A draft's changes (merge-patch); any of the fields of its creation."""

    name = fields.String(validate=NAME, allow_none=True)
    affects = fields.Nested(Affects)
    windows = fields.List(fields.Nested(Period), **WINDOWS)
    reason = fields.String(validate=REASON)
    impact = fields.String(validate=validate.OneOf(domain.IMPACTS))
    planner = fields.String(validate=NAME)
    change_link = fields.String(allow_none=True, validate=HTTP_URL)


class Move(CamelSchema):
    reason = fields.String(validate=REASON, load_default=None)


class Negotiation(Move):
    deadline = When(load_default=None, allow_none=True, metadata={
        "description": "until when the customers may answer (before the first window); "
                       "none: the planner agrees by hand", "example": "2099-01-01T00:00:00Z"})
    policy = fields.String(load_default="all", validate=validate.OneOf(domain.POLICIES),
                           metadata={"description": "when the answers agree a window: all "
                                     "customers accept it, a quorum of customers or of "
                                     "affected purchased offerings, or silence is consent "
                                     "at the deadline"})
    quorum = fields.Float(load_default=None, allow_none=True,
                          validate=validate.Range(min=0.01, max=1),
                          metadata={"description": "the share a quorum policy needs "
                                                   "(0.01 to 1)"})


class LinkRequest(CamelSchema):
    customer_id = client_id(required=True, description="an affected customer")


class ResponseLink(CamelSchema):
    token = fields.String(attribute="token")
    expires_at = When(attribute="expiresAt")
    customer_id = fields.String(attribute="customerId")
    planned_outage_id = fields.String(attribute="plannedOutageId")
    round = fields.Integer(attribute="round")


class CustomerResponse(CamelSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                          metadata={"description": "the customer's response link token"})
    answer = fields.String(required=True, validate=validate.OneOf(domain.ANSWERS))
    window_index = fields.Integer(load_default=0, validate=validate.Range(min=0, max=19),
                                  metadata={"description": "the window accepted"})
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))
    windows = fields.List(fields.Nested(Period), load_default=list,
                          validate=validate.Length(max=20),
                          metadata={"description": "the windows counter-proposed"})


class PageQuery(CamelSchema):
    token = fields.String(load_default=None, validate=validate.Length(max=2000))


class PageForm(CamelSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    choice = fields.String(required=True, validate=Pattern(
        r"^(accept:(1[0-9]|[0-9])|reject)$", error="accept:<window> or reject"))
    reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class ResponseReceipt(CamelSchema):
    """What a customer sees of its answer: never the other customers'."""

    planned_outage_id = fields.String(attribute="outage.id")
    customer_id = fields.String(attribute="customer")
    round = fields.Integer(attribute="outage.round")
    answer = fields.String()
    status = fields.String(attribute="outage.status", metadata={
        "description": "the outage's status when the answer came in: answers are taken "
                       "into it, and its policy applied, right after"})


class ReasonedMove(CamelSchema):
    reason = fields.String(required=True, validate=REASON)


class Agreement(Move):
    window_index = fields.Integer(load_default=0, validate=validate.Range(min=0, max=19),
                                  metadata={"description": "which proposed window (0: the "
                                                           "first)"})


class Reschedule(ReasonedMove):
    windows = fields.List(fields.Nested(Period), required=True, **WINDOWS)


class Extension(ReasonedMove):
    end = When(required=True, data_key="endDateTime",
               metadata={"description": "the new end"})


# --- representations ---------------------------------------------------------------------

class MoveRecord(CamelSchema):
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    to = fields.String()
    at = When()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class SlaTypeTerms(CamelSchema):
    id = fields.String()
    name = fields.String(allow_none=True)
    minimum_notice_days = fields.Integer(attribute="minimumNoticeDays")
    maintenance_accounting = fields.String(attribute="maintenanceAccounting", allow_none=True)


class AffectedCustomer(CamelSchema):
    customer_id = fields.String(attribute="customerId")
    purchased_offering_ids = fields.List(fields.String(), attribute="purchasedOfferingIds")
    sla_types = fields.List(fields.Nested(SlaTypeTerms), attribute="slaTypes")
    minimum_notice_days = fields.Integer(attribute="minimumNoticeDays")


class Overlap(CamelSchema):
    planned_outage_id = fields.String(attribute="plannedOutageId")
    status = fields.String()
    shared_count = fields.Integer(attribute="sharedCount")
    purchased_offering_ids = fields.List(fields.String(), attribute="purchasedOfferingIds")


class ResponseRecord(CamelSchema):
    customer_id = fields.String(attribute="customerId")
    answer = fields.String()
    window_index = fields.Integer(attribute="windowIndex", allow_none=True)
    reason = fields.String(allow_none=True)
    windows = fields.List(fields.Nested(Period))
    at = When()
    round = fields.Integer()


class ExtensionRecord(CamelSchema):
    from_ = When(attribute="from", data_key="from")
    to = When()
    at = When()
    actor = fields.String()
    reason = fields.String()


class ReminderRecord(CamelSchema):
    lead = fields.Function(lambda r: duration_text(r["lead"]), metadata={
        "description": "how long before the start (ISO-8601)"})
    at = When(attribute="at")
    sla_type_ids = fields.List(fields.String(), attribute="slaTypeIds")
    untyped = fields.Boolean(attribute="untyped", metadata={
        "description": "also for customers whose purchased offerings have no SLA type"})


def _reminders(outage: domain.PlannedOutage) -> list[dict[str, Any]]:
    done = set(getattr(outage, "reminded", ()))
    passed = set(getattr(outage, "passed_over", ()))
    return [{**ReminderRecord().dump(r), "state": "passedOver" if r["lead"] in passed
             else "sent" if r["lead"] in done else "planned"}
            for r in getattr(outage, "reminders", ())]


class PlannedOutage(Resource):
    PATH = f"{ROOT}/plannedOutage"
    TYPE = "PlannedOutage"

    name = fields.String(allow_none=True)
    status = fields.String(metadata={"description": " | ".join(domain.STATUSES)})
    affects = fields.Nested(Affects)
    windows = fields.List(fields.Nested(Period))
    window = fields.Nested(Period, attribute="agreed_window", allow_none=True, metadata={
        "description": "the agreed window (as extended); null until agreed"})
    reason = fields.String()
    impact = fields.String()
    planner = fields.String()
    change_link = fields.String(allow_none=True)
    offering_group_id = fields.String(allow_none=True)
    created_at = When()
    resolved_at = When(allow_none=True, metadata={
        "description": "when the affected customers were resolved from the inventory"})
    started_at = When(allow_none=True)
    completed_at = When(allow_none=True)
    affected_customers = fields.List(fields.Nested(AffectedCustomer), attribute="resolution")
    affected_purchased_offering_count = fields.Function(
        lambda o: len(o.purchased_offering_ids), dump_only=True)
    overlaps = fields.List(fields.Nested(Overlap))
    extensions = fields.List(fields.Nested(ExtensionRecord))
    round = fields.Integer(metadata={"description": "the negotiation round (0: none yet)"})
    deadline = When(allow_none=True)
    policy = fields.String()
    quorum = fields.Float(allow_none=True)
    responses = fields.Function(lambda o: ResponseRecord(many=True).dump(
        list(o.responses.values())), dump_only=True, metadata={
        "description": "the customers' answers in the current round"})
    deadline_summary = fields.Dict(allow_none=True, metadata={
        "description": "what the customers said when the deadline passed without an "
                       "agreement (the planner decides)"})
    moves = fields.List(fields.Nested(MoveRecord))
    reminders = fields.Function(_reminders, dump_only=True, metadata={
        "description": "the reminders planned when the window was agreed "
                       "(SLA_OUTAGE_REMINDERS) and their state: planned, sent, or "
                       "passedOver (its time came while no clock ran, and a nearer one "
                       "went out instead)"})


class PlannedOutageMessage(Resource):
    """An outage as ``PlannedOutageChangeEvent`` carries it: its window in force, its
    status and the purchased offerings it affects."""

    PATH = f"{ROOT}/plannedOutage"
    TYPE = "PlannedOutage"

    status = fields.String()
    window = fields.Method("_window")
    reason = fields.String()
    impact = fields.String()
    offering_group_id = fields.String(allow_none=True)
    affected_purchased_offering_ids = fields.List(fields.String(),
                                                  attribute="purchased_offering_ids")

    negotiation = fields.Function(lambda o: _figures(o), metadata={
        "description": "the negotiation's figures once agreed (figures.py): notice given, "
                       "cycle time, rounds, acceptance, agreed by silence"})

    def _window(self, outage: domain.PlannedOutage) -> dict[str, Any]:
        window = outage.agreed_window or outage.windows[0]
        return Period().dump(window)


def _figures(outage: domain.PlannedOutage) -> dict[str, Any] | None:
    found = negotiation_figures(outage)
    return None if found is None else {**found, "agreedAt": times.iso(found["agreedAt"])}


class FiguresQuery(CamelSchema):
    start = When(data_key="from", load_default=None, metadata={
        "description": "agreed at or after (default: any time)"})
    end = When(data_key="to", load_default=None, metadata={
        "description": "agreed before (default: now)"})


class NegotiationSummary(CamelSchema):
    start = When(data_key="from", allow_none=True)
    end = When(data_key="to", allow_none=True)
    outages_agreed = fields.Integer(attribute="outagesAgreed")
    notice_given_seconds = fields.Dict(attribute="noticeGivenSeconds", metadata={
        "description": "median and least: from the customers' first notice to the "
                       "agreed start"})
    cycle_time_seconds = fields.Dict(attribute="cycleTimeSeconds", metadata={
        "description": "mean and median: from the negotiation's opening to agreement"})
    rounds = fields.Dict(metadata={"description": "mean and most"})
    acceptance_rate = fields.Float(attribute="acceptanceRate", allow_none=True, metadata={
        "description": "customers who accepted the agreed window, of every customer "
                       "affected (pooled over the outages)"})
    agreed_by_silence_share = fields.Float(attribute="agreedBySilenceShare",
                                           allow_none=True)


class CustomerBlackouts(Resource):
    PATH = f"{ROOT}/customerBlackout"
    TYPE = "CustomerBlackout"

    id = fields.String(attribute="customer_id", dump_only=True)
    href = fields.Function(lambda b: f"{ROOT}/customerBlackout/{b.customer_id}",
                           dump_only=True)
    customer_id = fields.String()
    periods = fields.List(fields.Nested(BlackoutPeriod))
    declared_by = fields.String()


class BlackoutDeclaration(CamelSchema):
    periods = fields.List(fields.Nested(BlackoutPeriod), required=True,
                          validate=validate.Length(max=200))


class NoticeOutage(Resource):
    """An outage as a notice to its customers carries it: what they need to read."""

    PATH = f"{ROOT}/plannedOutage"
    TYPE = "PlannedOutage"

    name = fields.String(allow_none=True)
    status = fields.String()
    reason = fields.String()
    impact = fields.String()
    change_link = fields.String(allow_none=True)
    windows = fields.List(fields.Nested(Period))
    window = fields.Nested(Period, attribute="agreed_window", allow_none=True)
    round = fields.Integer()
    deadline = When(allow_none=True)
    offering_group_id = fields.String(allow_none=True)


class NoticeRecipient(CamelSchema):
    customer_id = fields.String(attribute="customerId")
    purchased_offering_ids = fields.List(fields.String(), attribute="purchasedOfferingIds")
    sla_type_names = fields.Function(
        lambda c: sorted({t.get("name") or t["id"] for t in c["slaTypes"]}))


NOTICE_OUTAGE, RECIPIENTS = NoticeOutage(), NoticeRecipient(many=True)


_REPRESENTATIONS: dict[type, Schema] = {
    domain.PlannedOutage: PlannedOutage(), domain.CustomerBlackouts: CustomerBlackouts(),
}
MESSAGE = PlannedOutageMessage()


def represent(aggregate: Any) -> dict[str, Any]:
    """Any outage-negotiation aggregate as its resource (for audit queries)."""
    schema = _REPRESENTATIONS.get(type(aggregate))
    if schema is None:
        return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    return schema.dump(aggregate)


# --- the planner's ranking of candidate windows, and its choice (ranking.py) --------------

class BlackoutHit(CamelSchema):
    customer_id = fields.String()
    start = When(data_key="startDateTime")
    end = When(data_key="endDateTime")
    reason = fields.String(allow_none=True)


class ExposurePart(CamelSchema):
    """One SLA type's part of a window's SLA exposure."""

    sla_type_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    maintenance_accounting = fields.String(allow_none=True, metadata={
        "description": "only counted-as-down exposes credit: excluded and counted-as-up "
                       "planned time cannot breach"})
    purchased_offerings = fields.Integer(metadata={
        "description": "affected purchased offerings of this SLA type"})
    credit_percent_per_breached_period = fields.Float(allow_none=True)
    credit_cap_percent = fields.Float(allow_none=True)
    months = fields.Integer(metadata={
        "description": "calendar months (in the SLA type's time zone) the window touches"})
    weight = fields.Float(metadata={
        "description": "credit at risk per purchased offering: the credit per breached "
                       "period times the months, at most the cap (0 unless "
                       "counted-as-down)"})
    exposure = fields.Float(metadata={"description": "weight times purchased offerings"})


class RuleBreak(CamelSchema):
    rule = fields.String(metadata={"description": "WINDOWS, MINIMUM_NOTICE, BLACKOUT, "
                                                  "OVERLAP or CAP"})
    message = fields.String()


class CandidateWindow(CamelSchema):
    """A window the planner may choose, with its scores: the order is most accepting
    customers, then fewest blackout periods, then least SLA exposure, then the earliest
    start."""

    rank = fields.Integer(metadata={"description": "its place (0: best); what "
                                                   "chooseWindow's candidate names"})
    window = fields.Nested(Period)
    proposed_window_index = fields.Integer(allow_none=True, metadata={
        "description": "which of the round's proposed windows it is (null: only "
                       "counter-proposed)"})
    counter_proposed_by = fields.List(fields.String())
    accepted_by = fields.List(fields.String(), metadata={
        "description": "the customers to whom it is acceptable: a window they accepted or "
                       "counter-proposed contains it"})
    accepting_customers = fields.Integer()
    customers = fields.Integer(metadata={"description": "the customers affected"})
    accepting_purchased_offerings = fields.Integer()
    blackout_count = fields.Integer()
    blackouts = fields.List(fields.Nested(BlackoutHit))
    exposure = fields.Float(metadata={"description": "the service credit (percent, summed "
                                                     "over purchased offerings) it puts at "
                                                     "risk"})
    exposure_by_sla_type = fields.List(fields.Nested(ExposurePart))
    passes = fields.Boolean(metadata={"description": "whether choosing it passes the rules "
                                                     "(ruleBreaks: which not)"})
    rule_breaks = fields.List(fields.Nested(RuleBreak))
    overlaps = fields.List(fields.Nested(Overlap))
    why = fields.List(fields.String())


class WindowChoice(ReasonedMove):
    """The planner's choice of a candidate: by its rank in the ranking, or by its
    window; and the new round's terms (as ``round``; the policy and quorum default to
    the outage's)."""

    class Meta:
        openapi = exactly_one_of("candidate", "window")

    candidate = fields.Integer(load_default=None, allow_none=True,
                               validate=validate.Range(min=0, max=100000),
                               metadata={"description": "the candidate's rank"})
    window = fields.Nested(Period, load_default=None, allow_none=True, metadata={
        "description": "or the candidate's window"})
    deadline = When(load_default=None, allow_none=True, metadata={
        "description": "until when the customers asked may answer (before the window); "
                       "none: the planner agrees by hand", "example": "2099-01-01T00:00:00Z"})
    policy = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(domain.POLICIES))
    quorum = fields.Float(load_default=None, allow_none=True,
                          validate=validate.Range(min=0.01, max=1))

    @validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("candidate") is None) == (data.get("window") is None):
            raise ValidationError("name the candidate by its rank or by its window, one of "
                                  "the two", "candidate")


# --- customers' calendar feeds (calendar.py) ------------------------------------------------

class CalendarLinkRequest(CamelSchema):
    customer_id = client_id(required=True, description="the customer")


class CalendarLink(CamelSchema):
    customer_id = fields.String(attribute="customerId")
    token = fields.String(attribute="token")
    url = fields.String(attribute="url", metadata={
        "description": "the feed (text/calendar) to subscribe to: it needs no token, "
                       "and does not expire"})
