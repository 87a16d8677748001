"""The notification API's resources and commands, each described once (the OpenAPI
document, the HTTP responses, the published payloads and the audit records all come from
these): snake_case attributes, camelCase on the wire (``shared.http.schemas``).

Values that the aggregates keep as stored documents — a list's topics and noise settings,
its members, a delivery's attempts — are read and written where they are stored with
``attribute=`` (``settings.groupWait``, ``startedAt``), so a command's body loads straight
into the application's arguments and the aggregate dumps straight into its resource.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from services.notification import ROOT, domain
from services.notification.domain import (
    CHANNELS,
    FILTER_LABELS,
    GROUP_LABELS,
    LIST_KINDS,
    SEVERITIES,
)
from shared import times
from shared.http.schemas import (
    EMAIL,
    HTTP_URL,
    NAME,
    CamelSchema,
    Computed,
    Pattern,
    Resource,
    list_query,
)

WEEK = 7 * 86400
EVENT_PATTERN = Pattern(r"^[A-Za-z*?\[\]]{1,100}$",
                        error="an event type such as ThresholdCrossingEvent, "
                              "wildcards * and ? allowed")


def ids(**kwargs: Any) -> fields.List:
    """A list of up to 500 ids (a field of its own each time: fields are bound by name)."""
    return fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                       validate=validate.Length(max=500), **kwargs)


class IdText(fields.UUID):
    """A UUID on the wire (documented as one), kept as its text."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return str(super()._deserialize(value, attr, data, **kwargs))


class Instant(fields.String):
    """A time: a datetime inside, ISO-8601 UTC with ``Z`` on the wire (``shared.times``)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return times.iso_or_none(value)


class Label(fields.String):
    """One label of an alert, as it came off the bus (an incident's or decision's
    ``labels``); absent labels are null."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return obj.labels.get(self.label)


# --- notification lists ---------------------------------------------------------------

class Topic(CamelSchema):
    event_types = fields.List(fields.String(validate=EVENT_PATTERN), attribute="eventTypes",
                              load_default=lambda: ["*"],
                              validate=validate.Length(min=1, max=20), metadata={
                                  "description": "event types, shell wildcards allowed"})
    min_severity = fields.String(attribute="minSeverity", load_default="info",
                                 validate=validate.OneOf(SEVERITIES),
                                 metadata={"description": "severity floor: " +
                                           " < ".join(SEVERITIES)})
    offering_group_ids = ids(attribute="offeringGroupIds", load_default=list)
    offering_ids = ids(attribute="offeringIds", load_default=list)
    customer_ids = ids(attribute="customerIds", load_default=list)


class Escalation(CamelSchema):
    next_list_id = IdText(required=True, attribute="nextListId")
    delay = fields.Float(required=True, validate=validate.Range(min=0, max=WEEK), metadata={
        "description": "seconds without acknowledgement before the next list is told"})


class MemberCreate(CamelSchema):
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


class Member(CamelSchema):
    """A member as stored on its list; ``href`` where it is answered on its own, ``secret``
    once, when it is added."""

    id = fields.String()
    href = fields.String()
    name = fields.String()
    channel = fields.String()
    address = fields.String()
    locale = fields.String()
    secret = fields.String(metadata={"description": "webhook signing secret; returned once, "
                                                    "at creation"})


class NoiseSettings(CamelSchema):
    """How noisily a list is told: loaded into the list's ``settings``."""

    group_by = fields.List(fields.String(validate=validate.OneOf(GROUP_LABELS)),
                           attribute="settings.groupBy",
                           validate=validate.Length(max=len(GROUP_LABELS)))
    group_wait = fields.Float(attribute="settings.groupWait",
                              validate=validate.Range(min=0, max=WEEK),
                              metadata={"description": "seconds (default 30)"})
    group_interval = fields.Float(attribute="settings.groupInterval",
                                  validate=validate.Range(min=0, max=WEEK),
                                  metadata={"description": "seconds (default 300)"})
    repeat_interval = fields.Float(attribute="settings.repeatInterval",
                                   validate=validate.Range(min=1, max=30 * 86400),
                                   metadata={"description": "seconds (default 14400)"})
    escalation = fields.Nested(Escalation, attribute="settings.escalation", allow_none=True)


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
    customer_ids = ids()
    offering_group_ids = ids()
    topics = fields.List(fields.Nested(Topic), required=True,
                         validate=validate.Length(min=1, max=50))
    members = fields.List(fields.Nested(MemberCreate), load_default=list,
                          validate=validate.Length(max=500))

    @validates_schema
    def _customer_list(self, data: dict, **_: object) -> None:
        if data.get("kind") == "customer" and not data.get("customer_ids"):
            raise ValidationError("a customer list names the customers it serves",
                                  "customerIds")


class NotificationListPatch(NoiseSettings):
    name = fields.String(validate=NAME)
    purpose = fields.String(allow_none=True, validate=validate.Length(max=2000))
    owner = fields.String(allow_none=True, validate=validate.Length(max=200))
    customer_ids = ids()
    offering_group_ids = ids()
    topics = fields.List(fields.Nested(Topic), validate=validate.Length(min=1, max=50))


class EscalationOut(CamelSchema):
    next_list_id = fields.String(attribute="nextListId")
    delay = fields.Float()


class TopicOut(CamelSchema):
    event_types = fields.List(fields.String(), attribute="eventTypes")
    min_severity = fields.String(attribute="minSeverity")
    offering_group_ids = fields.List(fields.String(), attribute="offeringGroupIds")
    offering_ids = fields.List(fields.String(), attribute="offeringIds")
    customer_ids = fields.List(fields.String(), attribute="customerIds")


class NotificationList(Resource):
    PATH, TYPE = f"{ROOT}/notificationList", "NotificationList"

    name = fields.String()
    purpose = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    kind = fields.String()
    customer_ids = fields.List(fields.String())
    offering_group_ids = fields.List(fields.String())
    topics = fields.List(fields.Nested(TopicOut))
    group_by = fields.List(fields.String())
    group_wait = fields.Float()
    group_interval = fields.Float()
    repeat_interval = fields.Float()
    escalation = fields.Nested(EscalationOut, allow_none=True)
    members = fields.List(fields.Nested(Member))
    status = fields.String()


# --- hub --------------------------------------------------------------------------------

class HubCreate(CamelSchema):
    callback = fields.String(required=True, validate=[validate.Length(max=2000), HTTP_URL],
                             metadata={
                              "description": "events are POSTed to {callback}/listener/"
                                             "{eventName}"})
    query = fields.String(allow_none=True, validate=validate.Length(max=2000), metadata={
        "description": "filter, e.g. eventType=ThresholdCrossingEvent&severity=major&"
                       "offeringGroupId=...; attributes: " + ", ".join(FILTER_LABELS)})


class Hub(Resource):
    PATH, TYPE = f"{ROOT}/hub", "Hub"

    callback = fields.String()
    query = fields.String(allow_none=True)
    status = fields.String()
    secret = fields.String(metadata={"description": "signing secret; returned once"})


# --- incidents --------------------------------------------------------------------------

class Scope(fields.Dict):
    """What an alert is about: ``{"type": ..., "id": ...}`` from its labels."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return {"type": obj.labels.get("scopeType"), "id": obj.labels.get("scopeId")}


class PendingEscalations(fields.List):
    """An incident's escalations still to come: from which list to which, the tier, when."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Dict(), attribute="escalations", **kwargs)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> list[dict]:
        return [{"fromListId": k, "toListId": v["toList"], "tier": v["tier"],
                 "dueAt": times.iso_or_none(v["dueAt"])} for k, v in (value or {}).items()]


class Incident(Resource):
    PATH, TYPE = f"{ROOT}/incident", "Incident"

    alert_id = fields.String()
    event_type = Label("eventType")
    level = Label("level")
    severity = Label("severity")
    parameter = Label("parameter", allow_none=True)
    scope = Scope()
    offering_group_id = Label("offeringGroupId", allow_none=True)
    customer_id = Label("customerId", allow_none=True)
    since = Label("since", allow_none=True, metadata={
        "description": "event time: start of the window in which the alert reached its "
                       "current level"})
    open = fields.Boolean()
    acknowledged = fields.Boolean()
    acknowledged_by = fields.String(allow_none=True, metadata={
        "description": "the recipient of the link used, or the subject of the bearer token"})
    acknowledged_via = fields.String(allow_none=True, metadata={
        "description": "link (the link in a message) or api"})
    acknowledged_at = Instant(allow_none=True)
    notified_list_ids = fields.List(fields.String(), attribute="notified_lists")
    pending_escalations = PendingEscalations()
    correlation_id = Label("correlationId", allow_none=True)


#: What the bus says about an incident when it escalates or is acknowledged.
INCIDENT_SUMMARY = ("id", "href", "type_", "alert_id", "event_type", "level", "severity",
                    "open", "acknowledged", "acknowledged_by")


# --- deliveries and decisions -------------------------------------------------------------

class Attempt(CamelSchema):
    number = fields.Integer()
    started_at = Instant(attribute="startedAt")
    finished_at = Instant(attribute="finishedAt", allow_none=True)
    outcome = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class Delivery(Resource):
    """One delivery; in lists without its content (a history can be long)."""

    PATH, TYPE = f"{ROOT}/delivery", "Delivery"

    message_id = fields.String()
    channel = fields.String()
    address = fields.String()
    recipient = fields.String()
    target_kind = fields.String()
    list_id = fields.String(allow_none=True)
    hub_id = fields.String(allow_none=True)
    member_id = fields.String(allow_none=True)
    event_type = fields.String()
    event_ids = fields.List(fields.String())
    alert_ids = fields.List(fields.String())
    correlation_ids = fields.List(fields.String())
    reason = fields.String()
    status = fields.String(metadata={"description": "pending, sending, retrying, delivered, "
                                                    "failed or cancelled"})
    attempt_count = fields.Integer()
    max_attempts = fields.Integer()
    attempts = fields.List(fields.Nested(Attempt))
    created_at = Instant()
    next_attempt_at = Instant(allow_none=True)
    delivered_at = Instant(allow_none=True)
    last_error = fields.String(allow_none=True)
    cancelled_at = Instant(allow_none=True)
    cancel_reason = fields.String(allow_none=True, metadata={
        "description": "why no further attempt is made (its target was deleted)"})
    subject = fields.String(allow_none=True)
    content = fields.Dict(metadata={
        "description": "as sent, except acknowledgement links: each shows as "
                       "urn:sla-suite:ack-link:<link id>, the link itself is only in the "
                       "message"})

    @post_dump
    def _listed_without_content(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if self.many:
            data.pop("content", None)
        return data


#: What the bus says about a delivery whose outcome changed.
DELIVERY_SUMMARY = ("id", "href", "type_", "message_id", "channel", "recipient",
                    "target_kind", "list_id", "hub_id", "event_type", "event_ids",
                    "alert_ids", "reason", "status", "attempt_count", "last_error")


class Decision(Resource):
    PATH, TYPE = f"{ROOT}/decision", "Decision"

    event_id = fields.String()
    target_kind = fields.String()
    list_id = fields.String(allow_none=True)
    hub_id = fields.String(allow_none=True)
    alert_id = fields.String(allow_none=True)
    decision = fields.String(metadata={"description": "queued, grouped, inhibited, "
                                                      "suppressed or sent"})
    reason = fields.String()
    correlation_id = fields.String(allow_none=True)
    group_id = fields.String(allow_none=True)
    event_type = Label("eventType", allow_none=True)
    severity = Label("severity", allow_none=True)
    at = Instant()


class AlertGroup(CamelSchema):
    """An alert group as the audit shows it (it is not served on its own)."""

    id = fields.String()
    type_ = Computed(lambda schema, obj: "AlertGroup", data_key="@type")
    list_id = fields.String()
    key = fields.String()
    pending = fields.Function(lambda g: [a.get("alertId") for a in g.pending])
    firing = fields.Function(lambda g: list(g.firing))
    flush_at = Instant(allow_none=True)
    last_flush_at = Instant(allow_none=True)
    repeat_at = Instant(allow_none=True)
    flushes = fields.Integer()
    version = fields.Integer()


# --- queries and forms --------------------------------------------------------------------

class HistoryQuery(list_query(Delivery)):  # type: ignore[misc]
    eventId = fields.String(metadata={"description": "deliveries carrying this event"})
    correlationId = fields.String(metadata={"description": "deliveries for this correlation"})
    alertId = fields.String()


class Acknowledgement(CamelSchema):
    comment = fields.String(allow_none=True, validate=validate.Length(max=1000))


class AckLinkQuery(Schema):
    token = fields.String(validate=validate.Length(max=800), metadata={
        "description": "the signed token of the link in the message"})


class AckLinkForm(Schema):
    """The confirmation form of an acknowledgement link's page (form-encoded)."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=800), metadata={
        "description": "the token of the link, as the page's form carries it"})


# --- one representation per aggregate -----------------------------------------------------

_REPRESENTATIONS: dict[type, Schema] = {
    domain.NotificationList: NotificationList(), domain.HubSubscription: Hub(),
    domain.Incident: Incident(), domain.Delivery: Delivery(), domain.Decision: Decision(),
    domain.AlertGroup: AlertGroup(),
}
_DELIVERY_SUMMARY = Delivery(only=DELIVERY_SUMMARY)
_INCIDENT_SUMMARY = Incident(only=INCIDENT_SUMMARY)


def represent(aggregate: Any) -> dict[str, Any]:
    """Any notification aggregate as its resource (for audit queries)."""
    schema = _REPRESENTATIONS.get(type(aggregate))
    if schema is None:
        return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    return schema.dump(aggregate)


def delivery_summary(d: domain.Delivery) -> dict[str, Any]:
    return _DELIVERY_SUMMARY.dump(d)


def incident_summary(i: domain.Incident) -> dict[str, Any]:
    return _INCIDENT_SUMMARY.dump(i)
