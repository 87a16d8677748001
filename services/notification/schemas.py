"""marshmallow schemas of the notification API (the OpenAPI document is built from them)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.notification.domain import (
    CHANNELS,
    FILTER_LABELS,
    GROUP_LABELS,
    LIST_KINDS,
    SEVERITIES,
)
from shared.http.schemas import EMAIL, HTTP_URL, NAME, Pattern, Resource, Strict, list_query


def ids() -> fields.List:
    """A list of up to 500 ids (a field of its own each time: fields are bound by name)."""
    return fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                       validate=validate.Length(max=500))
WEEK = 7 * 86400
EVENT_PATTERN = Pattern(r"^[A-Za-z*?\[\]]{1,100}$",
                                error="an event type such as ThresholdCrossingEvent, "
                                      "wildcards * and ? allowed")


class Topic(Strict):
    eventTypes = fields.List(fields.String(validate=EVENT_PATTERN), load_default=lambda: ["*"],
                             validate=validate.Length(min=1, max=20), metadata={
                                 "description": "event types, shell wildcards allowed"})
    minSeverity = fields.String(load_default="info", validate=validate.OneOf(SEVERITIES),
                                metadata={"description": "severity floor: " +
                                          " < ".join(SEVERITIES)})
    offeringGroupIds = ids()
    offeringIds = ids()
    customerIds = ids()


class Escalation(Strict):
    nextListId = fields.UUID(required=True)
    delay = fields.Float(required=True, validate=validate.Range(min=0, max=WEEK), metadata={
        "description": "seconds without acknowledgement before the next list is told"})


class MemberCreate(Strict):
    class Meta:
        openapi = {"oneOf": [
            {"properties": {"channel": {"enum": ["email"]},
                            "address": {"pattern": EMAIL.regex.pattern}}},
            {"properties": {"channel": {"enum": ["webhook"]},
                            "address": {"pattern": HTTP_URL.regex.pattern}}}]}

    name = fields.String(required=True, validate=NAME)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=3, max=2000),
                            metadata={"description": "e-mail address, or webhook URL"})
    locale = fields.String(load_default="en", validate=Pattern(
        r"^[a-z]{2}(-[A-Z]{2})?$", error="a locale such as en or fr-FR"))

    @validates_schema
    def _address(self, data: dict, **_: object) -> None:
        check = {"email": EMAIL, "webhook": HTTP_URL}.get(data.get("channel", ""))
        if check is not None:
            try:
                check(data.get("address", ""))
            except ValidationError as exc:
                raise ValidationError(exc.messages, "address") from None


class Member(Schema):
    id = fields.String()
    href = fields.String()
    name = fields.String()
    channel = fields.String()
    address = fields.String()
    locale = fields.String()
    secret = fields.String(metadata={"description": "webhook signing secret; returned once, "
                                                    "at creation"})


class NoiseSettings(Strict):
    groupBy = fields.List(fields.String(validate=validate.OneOf(GROUP_LABELS)),
                          validate=validate.Length(max=len(GROUP_LABELS)))
    groupWait = fields.Float(validate=validate.Range(min=0, max=WEEK),
                             metadata={"description": "seconds (default 30)"})
    groupInterval = fields.Float(validate=validate.Range(min=0, max=WEEK),
                                 metadata={"description": "seconds (default 300)"})
    repeatInterval = fields.Float(validate=validate.Range(min=1, max=30 * 86400),
                                  metadata={"description": "seconds (default 14400)"})
    escalation = fields.Nested(Escalation, allow_none=True)


class NotificationListCreate(NoiseSettings):
    class Meta:  # a customer list names its customers
        openapi = {"anyOf": [
            {"not": {"required": ["kind"]}},
            {"properties": {"kind": {"enum": ["internal"]}}},
            {"required": ["customerIds"], "properties": {"customerIds": {"minItems": 1}}}]}

    name = fields.String(required=True, validate=NAME)
    purpose = fields.String(allow_none=True, validate=validate.Length(max=2000))
    owner = fields.String(allow_none=True, validate=validate.Length(max=200))
    kind = fields.String(load_default="internal", validate=validate.OneOf(LIST_KINDS))
    customerIds = ids()
    offeringGroupIds = ids()
    topics = fields.List(fields.Nested(Topic), required=True,
                         validate=validate.Length(min=1, max=50))
    members = fields.List(fields.Nested(MemberCreate), load_default=list,
                          validate=validate.Length(max=500))

    @validates_schema
    def _customer_list(self, data: dict, **_: object) -> None:
        if data.get("kind") == "customer" and not data.get("customerIds"):
            raise ValidationError("a customer list names the customers it serves",
                                  "customerIds")


class NotificationListPatch(NoiseSettings):
    name = fields.String(validate=NAME)
    purpose = fields.String(allow_none=True, validate=validate.Length(max=2000))
    owner = fields.String(allow_none=True, validate=validate.Length(max=200))
    customerIds = ids()
    offeringGroupIds = ids()
    topics = fields.List(fields.Nested(Topic), validate=validate.Length(min=1, max=50))


class EscalationOut(Schema):
    nextListId = fields.String()
    delay = fields.Float()


class TopicOut(Schema):
    eventTypes = fields.List(fields.String())
    minSeverity = fields.String()
    offeringGroupIds = fields.List(fields.String())
    offeringIds = fields.List(fields.String())
    customerIds = fields.List(fields.String())


class NotificationList(Resource):
    name = fields.String()
    purpose = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    kind = fields.String()
    customerIds = fields.List(fields.String())
    offeringGroupIds = fields.List(fields.String())
    topics = fields.List(fields.Nested(TopicOut))
    groupBy = fields.List(fields.String())
    groupWait = fields.Float()
    groupInterval = fields.Float()
    repeatInterval = fields.Float()
    escalation = fields.Nested(EscalationOut, allow_none=True)
    members = fields.List(fields.Nested(Member))
    status = fields.String()


class HubCreate(Strict):
    callback = fields.String(required=True, validate=[validate.Length(max=2000), HTTP_URL],
                             metadata={
                              "description": "events are POSTed to {callback}/listener/"
                                             "{eventName}"})
    query = fields.String(allow_none=True, validate=validate.Length(max=2000), metadata={
        "description": "filter, e.g. eventType=ThresholdCrossingEvent&severity=major&"
                       "offeringGroupId=...; attributes: " + ", ".join(FILTER_LABELS)})


class Hub(Resource):
    callback = fields.String()
    query = fields.String(allow_none=True)
    status = fields.String()
    secret = fields.String(metadata={"description": "signing secret; returned once"})


class Incident(Resource):
    alertId = fields.String()
    eventType = fields.String()
    level = fields.String()
    severity = fields.String()
    parameter = fields.String(allow_none=True)
    scope = fields.Dict()
    offeringGroupId = fields.String(allow_none=True)
    customerId = fields.String(allow_none=True)
    since = fields.String(allow_none=True, metadata={
        "description": "event time: start of the window in which the alert reached its "
                       "current level"})
    open = fields.Boolean()
    acknowledged = fields.Boolean()
    acknowledgedBy = fields.String(allow_none=True, metadata={
        "description": "the recipient of the link used, or the subject of the bearer token"})
    acknowledgedVia = fields.String(allow_none=True, metadata={
        "description": "link (the link in a message) or api"})
    acknowledgedAt = fields.String(allow_none=True)
    notifiedListIds = fields.List(fields.String())
    pendingEscalations = fields.List(fields.Dict())
    correlationId = fields.String(allow_none=True)


class Attempt(Schema):
    number = fields.Integer()
    startedAt = fields.String()
    finishedAt = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class Delivery(Resource):
    messageId = fields.String()
    channel = fields.String()
    address = fields.String()
    recipient = fields.String()
    targetKind = fields.String()
    listId = fields.String(allow_none=True)
    hubId = fields.String(allow_none=True)
    memberId = fields.String(allow_none=True)
    eventType = fields.String()
    eventIds = fields.List(fields.String())
    alertIds = fields.List(fields.String())
    correlationIds = fields.List(fields.String())
    reason = fields.String()
    status = fields.String(metadata={"description": "pending, sending, retrying, delivered, "
                                                    "failed or cancelled"})
    attemptCount = fields.Integer()
    maxAttempts = fields.Integer()
    attempts = fields.List(fields.Nested(Attempt))
    createdAt = fields.String()
    nextAttemptAt = fields.String(allow_none=True)
    deliveredAt = fields.String(allow_none=True)
    lastError = fields.String(allow_none=True)
    cancelledAt = fields.String(allow_none=True)
    cancelReason = fields.String(allow_none=True, metadata={
        "description": "why no further attempt is made (its target was deleted)"})
    subject = fields.String(allow_none=True)
    content = fields.Dict(metadata={
        "description": "as sent, except acknowledgement links: each shows as "
                       "urn:sla-suite:ack-link:<link id>, the link itself is only in the "
                       "message"})


class Decision(Resource):
    eventId = fields.String()
    targetKind = fields.String()
    listId = fields.String(allow_none=True)
    hubId = fields.String(allow_none=True)
    alertId = fields.String(allow_none=True)
    decision = fields.String(metadata={"description": "queued, grouped, inhibited, "
                                                      "suppressed or sent"})
    reason = fields.String()
    correlationId = fields.String(allow_none=True)
    groupId = fields.String(allow_none=True)
    eventType = fields.String(allow_none=True)
    severity = fields.String(allow_none=True)
    at = fields.String()


class HistoryQuery(list_query(Delivery)):  # type: ignore[misc]
    eventId = fields.String(metadata={"description": "deliveries carrying this event"})
    correlationId = fields.String(metadata={"description": "deliveries for this correlation"})
    alertId = fields.String()


class Acknowledgement(Strict):
    comment = fields.String(allow_none=True, validate=validate.Length(max=1000))


class AckLinkQuery(Schema):
    token = fields.String(validate=validate.Length(max=800), metadata={
        "description": "the signed token of the link in the message"})


class AckLinkForm(Schema):
    """The confirmation form of an acknowledgement link's page (form-encoded)."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=800), metadata={
        "description": "the token of the link, as the page's form carries it"})
