"""Audit queries over a service's own event log, for ``audit:read`` only
(docs/architecture.md, "The audit model"; the endpoints: README, audit).

Events filtered by aggregate, type, time range and correlation id; an aggregate's full
history; any resource as it was at a past time or version; JSON Lines export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError, resolve_topic
from flask import Response, stream_with_context
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shared.http.errors import ApiError
from shared.http.listing import list_response, one_response
from shared.http.security import requires
from shared.store import META_KEY, ServiceApplication


class EventQuery(Schema):
    aggregateId = fields.UUID()
    eventType = fields.String(metadata={"description": "e.g. ThresholdStandard.Approved; "
                                                       "a trailing * matches a prefix"})
    correlationId = fields.String()
    actor = fields.String()
    # "from" is a Python keyword; the query name stays "from".
    from_ = fields.AwareDateTime(data_key="from", default_timezone=None)
    to = fields.AwareDateTime()
    offset = fields.Integer(validate=validate.Range(min=0))
    limit = fields.Integer(validate=validate.Range(min=0, max=1000))


class AuditEvent(Schema):
    """One recorded event, as the audit queries answer it."""

    notificationId = fields.Integer(metadata={"description": "position in the log "
                                                             "(events lists only)"})
    log = fields.String(metadata={"description": "which log, for a service with several"})
    aggregateId = fields.String(required=True)
    aggregateVersion = fields.Integer(required=True)
    eventType = fields.String(required=True)
    eventTime = fields.String(required=True, allow_none=True)
    correlationId = fields.String(required=True, allow_none=True)
    causationId = fields.String(required=True, allow_none=True)
    actor = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)


class PastState(Schema):
    aggregateVersion = fields.Integer(required=True)
    asOf = fields.String(required=True, allow_none=True)
    resource = fields.Dict(required=True, metadata={"description": "the resource's "
                                                                   "representation then"})


class StateQuery(Schema):
    version = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "the aggregate's version; with asOf, the earlier of the two"})
    asOf = fields.AwareDateTime(metadata={"description": "the last version recorded by "
                                                         "then"})


def _event_type(topic: str) -> str:
    return topic.rpartition(":")[2]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _upcast(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """The stored state as the event's current class reads it (its ``upcast_vN_vM``
    steps applied): the audit shows what the service itself would load, so a record that
    a later version redacts on read is shown redacted here too."""
    try:
        cls = resolve_topic(topic)
    except TopicError:
        return state
    version, current = state.pop("class_version", 1), getattr(cls, "class_version", 1)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
    return state


def event_record(app: ServiceApplication, stored: StoredEvent,
                 notification_id: int | None = None) -> dict[str, Any]:
    state = _upcast(stored.topic, app.mapper.decode_state(stored))  # type: ignore[attr-defined]
    meta = state.pop(META_KEY, None) or {}
    timestamp = state.pop("timestamp", None)
    record = {
        "notificationId": notification_id,
        "aggregateId": str(stored.originator_id),
        "aggregateVersion": stored.originator_version,
        "eventType": _event_type(stored.topic),
        "eventTime": timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp,
        "correlationId": meta.get("correlationId"),
        "causationId": meta.get("causationId"),
        "actor": meta.get("actor"),
        "data": _jsonable(state),
    }
    if notification_id is None:
        record.pop("notificationId")
    return record


def _matching(app: ServiceApplication, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Matching events of every log the service keeps, each log in its own order."""
    for store in app.stores():
        for record in _matching_in(store, q):
            if len(app.stores()) > 1:
                record["log"] = store.name
            yield record


def _matching_in(app: ServiceApplication, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
    wanted_type = q.get("eventType")
    for n in app.notifications():
        if q.get("aggregateId") and n.originator_id != q["aggregateId"]:
            continue
        etype = _event_type(n.topic)
        if wanted_type and not (etype == wanted_type or (
                wanted_type.endswith("*") and etype.startswith(wanted_type[:-1]))):
            continue
        record = event_record(app, n, n.id)
        if q.get("correlationId") and record["correlationId"] != q["correlationId"]:
            continue
        if q.get("actor") and record["actor"] != q["actor"]:
            continue
        when = datetime.fromisoformat(record["eventTime"]) if record["eventTime"] else None
        if q.get("from_") and (when is None or when < q["from_"]):
            continue
        if q.get("to") and (when is None or when >= q["to"]):
            continue
        yield record


def audit_blueprint(runtime: Any) -> Blueprint:
    blp = Blueprint("audit", __name__, description="Read-only audit of the event log")
    app: ServiceApplication = runtime.app

    def _find(aggregate_id: UUID) -> tuple[ServiceApplication, list[StoredEvent]]:
        for store in app.stores():
            stored = store.recorder.select_events(aggregate_id)
            if stored:
                return store, list(stored)
        raise ApiError(404, f"no events for aggregate {aggregate_id}")

    @blp.route("/events", methods=["GET"])
    @blp.arguments(EventQuery, location="query", as_kwargs=True)
    @blp.response(200, AuditEvent(many=True))
    @requires("audit:read")
    def events(**q: Any) -> Response:
        """Events, oldest first, filtered by aggregate, type, time range, correlation id."""
        records = sorted(_matching(app, q), key=lambda r: r["eventTime"] or "")
        return list_response(records, allowed=(), extra_reserved=EventQuery().fields
                             .keys() | {"from"})

    @blp.route("/events/export", methods=["GET"])
    @blp.arguments(EventQuery, location="query", as_kwargs=True)
    @blp.response(200, {"type": "string", "description": "one AuditEvent per line"},
                  content_type="application/x-ndjson")
    @requires("audit:read")
    def export(**q: Any) -> Response:
        """The same events as JSON Lines, streamed, for archiving or offline analysis."""
        def lines() -> Iterator[str]:
            for record in _matching(app, q):
                yield json.dumps(record, separators=(",", ":")) + "\n"

        filename = f"{runtime.spec.name}-audit.jsonl"
        return Response(stream_with_context(lines()), mimetype="application/x-ndjson",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @blp.route("/aggregates/<uuid:aggregate_id>/history", methods=["GET"])
    @blp.response(200, AuditEvent(many=True))
    @requires("audit:read")
    def history(aggregate_id: UUID) -> Response:
        """Every event of one aggregate, in order."""
        store, stored = _find(aggregate_id)
        return list_response([event_record(store, s) for s in stored], allowed=())

    @blp.route("/aggregates/<uuid:aggregate_id>/state", methods=["GET"])
    @blp.arguments(StateQuery, location="query", as_kwargs=True)
    @blp.response(200, PastState)
    @requires("audit:read")
    def state(aggregate_id: UUID, version: int | None = None,
              asOf: datetime | None = None) -> Response:  # noqa: N803
        """The resource as it was at a version or at a time (``version`` or ``asOf``; with
        both, whichever is earlier)."""
        store, stored = _find(aggregate_id)
        if asOf is not None:
            at_time = None
            for s in stored:
                when = store.mapper.to_domain_event(s).timestamp  # type: ignore[attr-defined]
                if when <= asOf:
                    at_time = s.originator_version
            if at_time is None:
                raise ApiError(404, f"aggregate {aggregate_id} did not exist at {asOf.isoformat()}")
            version = at_time if version is None else min(version, at_time)
        if version is not None and version > stored[-1].originator_version:
            raise ApiError(404, f"aggregate {aggregate_id} has no version {version}; "
                                f"latest is {stored[-1].originator_version}")
        aggregate = store.repository.get(aggregate_id, version=version)
        represent = runtime.spec.represent
        body = represent(aggregate) if represent else _jsonable(
            {k: v for k, v in vars(aggregate).items() if not k.startswith("_")})
        return one_response({"aggregateVersion": aggregate.version, "asOf": _jsonable(asOf),
                             "resource": body}, version=aggregate.version)

    return blp
