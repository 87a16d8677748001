"""Audit queries over a service's own event log, for ``audit:read`` only
(docs/architecture.md, "The audit model"; the endpoints: README, audit).

Events filtered by aggregate, type, time range, actor, correlation id and batch id; an
aggregate's full history; any resource as it was at a past time or version; JSON Lines
export.

Why an index: a log grows for years, and reading (and decoding) every event of it to
answer "what happened under this correlation id" takes longer with every event. Each log
keeps an audit index (:func:`audit_index`, a tracked ``shared.readmodel.EventIndex``):
one row per event with the columns every filter needs, indexed. A query selects the
matching notification ids there — caught up to the log's head first, so a read after a
write sees it — and reads and decodes only those events, which it answers exactly as a
scan of the log would (:func:`scan`, kept as the reference the tests hold it to).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError, resolve_topic
from flask import Response, jsonify, request, stream_with_context
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shared.http import listing
from shared.http.errors import ApiError
from shared.http.listing import list_response, one_response
from shared.http.security import requires
from shared.readmodel import Column, EventIndex, EventRow, select_notifications_by_id
from shared.store import META_KEY, ServiceApplication


class EventQuery(Schema):
    aggregateId = fields.UUID()
    eventType = fields.String(metadata={"description": "e.g. ThresholdStandard.Approved; "
                                                       "a trailing * matches a prefix"})
    correlationId = fields.String()
    batchId = fields.String(metadata={"description": "a measurement batch: the batch "
                                                     "itself and what names it among the "
                                                     "batches behind it (evaluations, "
                                                     "crossings, quarantines)"})
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


# --- batch ids ------------------------------------------------------------------------
BATCH_KEYS = frozenset({"batch_id", "batchId", "batch_ids", "batchIds"})


def batch_ids(data: Any) -> list[str]:
    """The batch ids an event's data names, wherever it names them (a batch's own
    ``batch_id``, the ``batchIds`` behind an evaluation's result or a crossing's
    evidence), in order of appearance: what ``batchId=`` matches."""
    found: list[str] = []
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in BATCH_KEYS:
                    for one in (item if isinstance(item, list | tuple) else [item]):
                        if isinstance(one, str | UUID):
                            found.append(str(one))
                if isinstance(item, dict | list | tuple):
                    stack.append(item)
        elif isinstance(value, list | tuple):
            stack.extend(v for v in value if isinstance(v, dict | list | tuple))
    return found


# --- the scan (the reference) --------------------------------------------------------------
def scan(app: ServiceApplication, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Matching events of every log the service keeps, each log in its own order, found by
    reading every event: what the index must answer (its tests compare the two)."""
    for store in app.stores():
        for record in _scan_in(store, q):
            if len(app.stores()) > 1:
                record["log"] = store.name
            yield record


def _scan_in(app: ServiceApplication, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
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
        if q.get("batchId") and q["batchId"] not in batch_ids(record["data"]):
            continue
        when = datetime.fromisoformat(record["eventTime"]) if record["eventTime"] else None
        if q.get("from_") and (when is None or when < q["from_"]):
            continue
        if q.get("to") and (when is None or when >= q["to"]):
            continue
        yield record


# --- the index ------------------------------------------------------------------------------
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a double holds them exactly until 2255)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _field(name: str) -> Any:
    return lambda values: values.get(name)


# Indexed: what audit/events filters by, and lists by (the time); causation id and
# aggregate type are kept for questions to come, without the room an index takes.
COLUMNS = (
    Column("aggregateId", _field("aggregateId")),
    Column("aggregateType", _field("aggregateType"), indexed=False),
    Column("eventType", _field("eventType")),
    # The time as the answers show it and sort by (text), and as the filters compare it.
    Column("eventTime", _field("eventTime")),
    Column("eventMicros", _field("eventMicros"), "number"),
    Column("correlationId", _field("correlationId")),
    Column("causationId", _field("causationId"), indexed=False),
    Column("actor", _field("actor")),
)


def _text(value: Any) -> str | None:
    """A metadata value the filters can match (they compare with text: others never)."""
    return value if isinstance(value, str) else None


def audit_row(app: ServiceApplication, notification: Any) -> EventRow:
    """The audit index's row of one event: its columns as :func:`event_record` reads
    them, and its batch ids as :func:`batch_ids` finds them in its data."""
    state = _upcast(notification.topic, app.mapper.decode_state(notification))  # type: ignore[attr-defined]
    meta = state.pop(META_KEY, None) or {}
    timestamp = state.pop("timestamp", None)
    when = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
    micros = None
    if isinstance(when, str) and when:
        try:
            micros = _micros(datetime.fromisoformat(when))
        except ValueError:
            micros = None
    etype = _event_type(notification.topic)
    return EventRow(values={
        "aggregateId": str(notification.originator_id),
        "aggregateType": etype.rpartition(".")[0] or etype,
        "eventType": etype,
        # (none sorts first, as an empty one: "" keeps the order the index reads in)
        "eventTime": "" if when is None else str(when),
        "eventMicros": micros,
        "correlationId": _text(meta.get("correlationId")),
        "causationId": _text(meta.get("causationId")),
        "actor": _text(meta.get("actor")),
    }, tags=batch_ids(state))


def audit_index(store: ServiceApplication) -> EventIndex:
    """The audit index of one log (made on first use, then kept by the application)."""
    return store.audit_index(_make_index)


def _make_index(store: ServiceApplication) -> EventIndex:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", store.name).lower()
    return EventIndex(store, f"audit_{snake}", COLUMNS, audit_row, ordered_by="eventTime")


def audit_indexes(app: ServiceApplication) -> list[EventIndex]:
    """One per log the service keeps: what ``slactl readmodel`` shows and rebuilds beside
    the service's own read models."""
    return [audit_index(store) for store in app.stores()]


def _next_text(prefix: str) -> str | None:
    """The least text after every text that starts with ``prefix`` (None: no bound)."""
    for cut in range(len(prefix), 0, -1):
        code = ord(prefix[cut - 1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:cut - 1] + chr(code)
    return None


def conditions(index: EventIndex, q: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """A query's filters as SQL over the index's columns, with the scan's meaning:
    an empty value filters nothing, an event without a time matches no time range."""
    sql = {c.name: c.sql for c in index.columns}
    found: list[tuple[str, list[Any]]] = []
    if q.get("aggregateId"):
        found.append((f"{sql['aggregateId']} = ?", [str(q["aggregateId"])]))
    wanted_type = q.get("eventType")
    if wanted_type:
        exact = (f"{sql['eventType']} = ?", [wanted_type])
        if wanted_type.endswith("*") and wanted_type[:-1]:
            prefix, bound = wanted_type[:-1], _next_text(wanted_type[:-1])
            if bound is None:
                found.append((f"{sql['eventType']} >= ?", [prefix]))
            else:
                found.append((f"{sql['eventType']} >= ? AND {sql['eventType']} < ?",
                              [prefix, bound]))
        elif not wanted_type.endswith("*"):
            found.append(exact)
    for name in ("correlationId", "actor"):
        if q.get(name):
            found.append((f"{sql[name]} = ?", [q[name]]))
    if q.get("batchId"):
        found.append(("seq IN (SELECT seq FROM {tags} WHERE tag = ?)", [q["batchId"]]))
    if q.get("from_"):
        found.append((f"{sql['eventMicros']} >= ?", [_micros(q["from_"])]))
    if q.get("to"):
        found.append((f"{sql['eventMicros']} < ?", [_micros(q["to"])]))
    return found


SQL_INTEGER_MAX = 2**63 - 1
_ORDER = "c_event_time, seq"  # what each column's index carries after its value


def page(app: ServiceApplication, q: dict[str, Any], offset: int, limit: int
         ) -> tuple[list[dict[str, Any]], int]:
    """Matching events of every log, oldest first (ties: log by log, each in its order),
    from ``offset``, at most ``limit``; and how many matched. Each log's index gives the
    first ``offset + limit`` of its own; merged, they give the page."""
    stores = app.stores()
    keys: list[tuple[str, int, int]] = []
    total = 0
    # No log holds more rows than SQL's integers count: an offset beyond them asks the
    # index for what it has (SQLite refuses a larger LIMIT; the page is then empty).
    wanted = min(offset + limit, SQL_INTEGER_MAX)
    for position, store in enumerate(stores):
        index = audit_index(store)
        where = conditions(index, q)
        rows = index.select(["eventTime"], where, order=_ORDER, limit=wanted) if wanted \
            else []
        total += len(rows) if len(rows) < wanted else index.count(where)
        keys.extend((row["c_event_time"] or "", position, int(row["seq"])) for row in rows)
    keys.sort()
    chosen = keys[offset:offset + limit]
    by_store: dict[int, list[int]] = {}
    for _, position, seq in chosen:
        by_store.setdefault(position, []).append(seq)
    records: dict[tuple[int, int], dict[str, Any]] = {}
    for position, seqs in by_store.items():
        for record in _records(stores[position], seqs, len(stores) > 1):
            records[position, record["notificationId"]] = record
    return [records[position, seq] for _, position, seq in chosen], total


def _records(store: ServiceApplication, seqs: Iterable[int], several: bool
             ) -> Iterator[dict[str, Any]]:
    for notification in select_notifications_by_id(store, list(seqs)):
        record = event_record(store, notification, notification.id)
        if several:
            record["log"] = store.name
        yield record


def matching(app: ServiceApplication, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every matching event, log by log, each in its own order (as :func:`scan`), read
    through the index a few hundred at a time."""
    stores = app.stores()
    for store in stores:
        index = audit_index(store)
        seqs = [int(row["seq"]) for row in index.select([], conditions(index, q))]
        for start in range(0, len(seqs), 500):
            yield from _records(store, seqs[start:start + 500], len(stores) > 1)


RESERVED = EventQuery().fields.keys() | {"from"}


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
        """Events, oldest first, filtered by aggregate, type, time range, actor,
        correlation id and batch id."""
        # The list conventions' checks, in their order (no attribute filters, no sort).
        listing.parse_filters(request.args, (), RESERVED)
        listing.parse_sort(request.args.get("sort"), set())
        offset = listing.int_arg(request.args, "offset", 0)
        limit = listing.int_arg(request.args, "limit", listing.DEFAULT_LIMIT,
                                listing.MAX_LIMIT)
        records, total = page(app, q, offset, limit)
        fields = listing.requested_fields()
        response = jsonify([listing.select_fields(r, fields) for r in records])
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(records))
        return response

    @blp.route("/events/export", methods=["GET"])
    @blp.arguments(EventQuery, location="query", as_kwargs=True)
    @blp.response(200, {"type": "string", "description": "one AuditEvent per line"},
                  content_type="application/x-ndjson")
    @requires("audit:read")
    def export(**q: Any) -> Response:
        """The same events as JSON Lines, streamed, for archiving or offline analysis."""
        def lines() -> Iterator[str]:
            for record in matching(app, q):
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
