"""The monitoring domain: regimes, the measurement batches they read, window evaluations,
crossings, burn alerts, and the replicas of registry and outage data they rely on.

High-volume facts are many small aggregates (one per batch, one per evaluated window),
never one growing aggregate: replaying a long aggregate on every save would make the hot
path slower with history (docs/architecture.md, "The event store").
"""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate, event

from shared import replica
from shared.durations import duration_seconds as seconds
from shared.errors import InvalidTransition, InvalidValue
from shared.ids import stable_id

REGIME_STATUS = ("active", "paused", "stopped")


def _uuid5(*parts: object) -> UUID:
    return stable_id("monitoring", *parts)


class Regime(Aggregate):
    """A proactive monitoring regime over a group of purchased offerings (or one offering).

    It watches some parameters of the standards in force, evaluates tumbling windows of
    ``window`` length, accepts samples up to ``allowed_lateness`` behind the newest one,
    and clears a crossing after ``clear_after`` good windows.
    """

    @event("Started")
    def __init__(self, name: str, offering_group_id: UUID | None, offering_id: UUID | None,
                 sla_type_id: UUID | None, customer_group: str | None, parameters: list[str],
                 window: str, allowed_lateness: str, clear_after: int,
                 description: str | None = None) -> None:
        self.name = name
        self.description = description
        self.offering_group_id = offering_group_id
        self.offering_id = offering_id
        self.sla_type_id = sla_type_id
        self.customer_group = customer_group
        self.parameters = list(parameters)
        self.window = window
        self.allowed_lateness = allowed_lateness
        self.clear_after = clear_after
        self.status = "active"
        self.status_reason: str | None = None

    @classmethod
    def validate(cls, *, name: Any, offering_group_id: Any, offering_id: Any,
                 parameters: Any, window: Any, allowed_lateness: Any, clear_after: Any,
                 **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["a regime needs a name"]
        if (offering_group_id is None) == (offering_id is None):
            errors["offeringGroupId"] = ["give exactly one of offeringGroupId and "
                                         "productOfferingId"]
        if not isinstance(parameters, list) or not all(
                isinstance(p, str) and p for p in parameters):
            errors["parameters"] = ["a list of parameter names (empty: every parameter of "
                                    "the standards in force)"]
        for field, value, lo in (("window", window, 60), ("allowedLateness", allowed_lateness, 0)):
            try:
                if seconds(value) < lo:
                    errors[field] = [f"at least {lo} seconds"]
            except (ValueError, TypeError) as exc:
                errors[field] = [str(exc)]
        if "window" not in errors and "allowedLateness" not in errors and \
                seconds(allowed_lateness) > 7 * 86400:
            errors["allowedLateness"] = ["at most 7 days"]
        if not isinstance(clear_after, int) or isinstance(clear_after, bool) or not (
                1 <= clear_after <= 1000):
            errors["clearAfter"] = ["a whole number of good windows, 1 to 1000"]
        if errors:
            raise InvalidValue(errors)

    @property
    def window_seconds(self) -> int:
        return seconds(self.window)

    @property
    def lateness_seconds(self) -> int:
        return seconds(self.allowed_lateness)

    def change(self, **changes: Any) -> None:
        """Rename, re-describe, change the watched parameters, lateness or clearing."""
        if self.status == "stopped":
            raise InvalidTransition("a stopped regime cannot change")
        allowed = {"name", "description", "parameters", "allowed_lateness", "clear_after"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidValue({k: ["cannot change: start a new regime instead"]
                                for k in sorted(unknown)})
        merged = {"name": self.name, "offering_group_id": self.offering_group_id,
                  "offering_id": self.offering_id, "parameters": self.parameters,
                  "window": self.window, "allowed_lateness": self.allowed_lateness,
                  "clear_after": self.clear_after, **changes}
        Regime.validate(**merged)
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if effective:
            self._changed(changes=effective)

    @event("Changed")
    def _changed(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def pause(self, reason: str | None = None) -> None:
        if self.status != "active":
            raise InvalidTransition(f"only an active regime can be paused; it is {self.status}")
        self._status_changed(status="paused", reason=reason)

    def resume(self) -> None:
        if self.status != "paused":
            raise InvalidTransition(f"only a paused regime can be resumed; it is {self.status}")
        self._status_changed(status="active", reason=None)

    def stop(self, reason: str | None = None) -> None:
        if self.status == "stopped":
            raise InvalidTransition("the regime is already stopped")
        self._status_changed(status="stopped", reason=reason)

    @event("StatusChanged")
    def _status_changed(self, status: str, reason: str | None) -> None:
        self.status = status
        self.status_reason = reason


class BatchConflict(InvalidTransition):
    """A batch id recorded before, sent again with different samples."""


class MeasurementBatch(Aggregate):
    """The accepted samples of one batch, as received: the evidence behind evaluations.

    Its id derives from the sender's batch id, so a batch sent again is not counted twice.
    Samples are compact rows: [purchasedOfferingId, parameter, observedAt (epoch s),
    value, intervalSeconds, status], stored pre-encoded: ``rows`` is the JSON text of the
    list of rows (one column, encoded once by orjson at intake and decoded once by the
    evaluator, never walked value by value by the store's generic transcoder).
    ``content_digest`` is a digest of the samples as sent, so a repeat is told from a
    different batch under the same id without reading its samples (None for batches
    recorded before it was kept). Batches recorded before ``rows`` (class version 2 and
    older, ``samples`` as a JSON list) are read as if they had been recorded so.
    """

    class Accepted(Aggregate.Created):
        batch_id: str
        source: str
        rows: str
        rejected: list[dict[str, Any]]
        content_digest: str | None
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["content_digest"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["rows"] = encode_rows(state.pop("samples"))

    @staticmethod
    def create_id(batch_id: str) -> UUID:
        return _uuid5("batch", batch_id)

    @event(Accepted)
    def __init__(self, batch_id: str, source: str, rows: str,
                 rejected: list[dict[str, Any]], content_digest: str | None = None) -> None:
        self.batch_id = batch_id
        self.source = source
        self.rows = rows
        self.rejected = rejected
        self.content_digest = content_digest

    @classmethod
    def of(cls, batch_id: str, source: str, samples: list[list[Any]],
           rejected: list[dict[str, Any]], content_digest: str | None = None
           ) -> MeasurementBatch:
        """A new batch of these sample rows (encoded here, once)."""
        batch = cls(batch_id=batch_id, source=source, rows=encode_rows(samples),
                    rejected=rejected, content_digest=content_digest)
        batch.__dict__["samples"] = samples  # known already: never decoded again here
        return batch

    @functools.cached_property
    def samples(self) -> list[list[Any]]:
        """The rows, decoded (fresh lists, once per aggregate)."""
        return decode_rows(self.rows)

    @property
    def accepted(self) -> int:
        """How many of its samples were accepted (the ones it keeps)."""
        return len(self.samples)


def encode_json(data: Any) -> str:
    """Pre-encoded JSON text: orjson (a few hundred nanoseconds a sample row), or the
    standard library for what orjson refuses (a lone surrogate in a string, an integer
    beyond 64 bits)."""
    try:
        return orjson.dumps(data).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(data, separators=(",", ":"))


def encode_rows(rows: list[list[Any]]) -> str:
    """Sample rows as JSON text (:func:`encode_json`)."""
    return encode_json(rows)


def decode_rows(text: str) -> list[list[Any]]:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class WindowEvaluation(Aggregate):
    """One evaluated window of one series: what was measured, against which standard."""

    @staticmethod
    def create_id(regime_id: UUID, parameter: str, scope_type: str, scope_id: str,
                  window_start: float) -> UUID:
        return _uuid5("window", regime_id, parameter, scope_type, scope_id, window_start)

    @event("Evaluated")
    def __init__(self, regime_id: UUID, parameter: str, scope_type: str, scope_id: str,
                 window_start: float, window_end: float, result: dict[str, Any]) -> None:
        self.regime_id = regime_id
        self.parameter = parameter
        self.scope_type = scope_type
        self.scope_id = scope_id
        self.window_start = window_start
        self.window_end = window_end
        self.result = result


class EvaluatedWindow(Aggregate):
    """One evaluated window of one regime's parameter, for its whole scope: the figures of
    every purchased offering evaluated in it and of the regime's scope (group or offering)
    in one event — one record per window, not one per series.

    ``figures`` is pre-encoded JSON text (see :func:`window_figures`): the series in the
    order they were evaluated, the result entries every series shares once, the others in
    columns, and each series' batches as positions in ``batch_ids`` (every batch that fed
    the window, sorted). Read back, each series gives exactly the ``result`` a
    :class:`WindowEvaluation` of it carried (that class stays: logs recorded before this
    one hold it, and are read alike)."""

    @staticmethod
    def create_id(regime_id: UUID, parameter: str, window_start: float) -> UUID:
        return _uuid5("evaluated-window", regime_id, parameter, window_start)

    @event("Evaluated")
    def __init__(self, regime_id: UUID, parameter: str, window_start: float,
                 window_end: float, batch_ids: list[str], figures: str) -> None:
        self.regime_id = regime_id
        self.parameter = parameter
        self.window_start = window_start
        self.window_end = window_end
        self.batch_ids = batch_ids
        self.figures = figures

    def series(self) -> list[SeriesEvaluation]:
        """Each series' evaluation of this window, as :class:`WindowEvaluation` shows it."""
        return read_window_figures(self.regime_id, self.parameter, self.window_start,
                                   self.window_end, self.batch_ids, self.figures)


def _same(values: list[Any]) -> bool:
    first = values[0]
    kind = type(first)
    return all(type(v) is kind and v == first for v in values)


def window_figures(series: list[tuple[str, str, dict[str, Any]]], batch_ids: list[str]
                   ) -> str:
    """The figures of a window's series (scope type, scope id, result) as
    :class:`EvaluatedWindow` keeps them: entries equal (value and type) across the series
    once (``common``), the rest in ``columns``, entries some series lack in ``absent``
    (key -> positions); ``batchIds`` as positions in ``batch_ids``."""
    position = {b: i for i, b in enumerate(batch_ids)}
    results = [{**result, "batchIds": [position[b] for b in result["batchIds"]]}
               for _, _, result in series]
    keys = list(dict.fromkeys(k for r in results for k in r))
    common: dict[str, Any] = {}
    columns: dict[str, list[Any]] = {}
    absent: dict[str, list[int]] = {}
    for key in keys:
        lacking = [n for n, r in enumerate(results) if key not in r]
        values = [r.get(key) for r in results]
        if lacking:
            absent[key] = lacking
            columns[key] = values
        elif _same(values):
            common[key] = values[0]
        else:
            columns[key] = values
    return encode_json({"format": 1, "scopes": [[t, i] for t, i, _ in series],
                        "common": common, "columns": columns, "absent": absent})


class SeriesEvaluation:
    """One series' evaluation of one window, read from an :class:`EvaluatedWindow`: the
    attributes a :class:`WindowEvaluation` has (its id is the one that series' record had,
    the one crossings cite as ``evaluationId``)."""

    __slots__ = ("parameter", "regime_id", "result", "scope_id", "scope_type",
                 "window_end", "window_start")
    version = 1

    def __init__(self, regime_id: UUID, parameter: str, scope_type: str, scope_id: str,
                 window_start: float, window_end: float, result: dict[str, Any]) -> None:
        self.regime_id, self.parameter = regime_id, parameter
        self.scope_type, self.scope_id = scope_type, scope_id
        self.window_start, self.window_end = window_start, window_end
        self.result = result

    @property
    def id(self) -> UUID:
        return WindowEvaluation.create_id(self.regime_id, self.parameter, self.scope_type,
                                          self.scope_id, self.window_start)


def read_window_figures(regime_id: UUID, parameter: str, window_start: float,
                        window_end: float, batch_ids: list[str], figures: str
                        ) -> list[SeriesEvaluation]:
    """The series' evaluations :func:`window_figures` encoded."""
    data = decode_rows(figures)
    common: dict[str, Any] = data["common"]
    columns: dict[str, list[Any]] = data["columns"]
    out = []
    for n, (scope_type, scope_id) in enumerate(data["scopes"]):
        result = dict(common)
        for key, column in columns.items():
            result[key] = column[n]
        result["batchIds"] = [batch_ids[i] for i in result["batchIds"]]
        out.append(SeriesEvaluation(regime_id, parameter, scope_type, scope_id,
                                    window_start, window_end, result))
    for key, lacking in data.get("absent", {}).items():
        for n in lacking:
            out[n].result.pop(key, None)
    return out


class Crossing(Aggregate):
    """A threshold crossing of one series, from raised to cleared."""

    @staticmethod
    def id_for(regime_id: UUID, parameter: str, scope_type: str, scope_id: str,
                  window_start: float, level: str | None = None) -> UUID:
        """A noData crossing gets an id of its own (``level``): it may open in the same
        window as a threshold crossing of the series."""
        if level == "noData":
            return _uuid5("crossing", regime_id, parameter, scope_type, scope_id,
                          window_start, level)
        return _uuid5("crossing", regime_id, parameter, scope_type, scope_id, window_start)

    @event("Raised")
    def __init__(self, id: UUID, regime_id: UUID, parameter: str,  # noqa: A002
                 scope_type: str, scope_id: str, level: str, evidence: dict[str, Any]) -> None:
        self.regime_id = regime_id
        self.parameter = parameter
        self.scope_type = scope_type
        self.scope_id = scope_id
        self.level = level
        self.raised = evidence
        self.latest = evidence
        self.history: list[dict[str, Any]] = [{"change": "raised", "level": level, **evidence}]
        self.open = True

    @property
    def shown_level(self) -> str:
        """The level readers see: ``cleared`` once the crossing is closed."""
        return self.level if self.open else "cleared"

    @property
    def first(self) -> dict[str, Any]:
        """The step that raised it, with its evidence."""
        return self.history[0]

    @property
    def last(self) -> dict[str, Any]:
        """Its latest step, with its evidence."""
        return self.history[-1]

    @property
    def since(self) -> str:
        """Start of the first window of the crossing (noData: the first empty window)."""
        return self.first.get("silentSince") or self.first["windowStart"]

    def escalate(self, evidence: dict[str, Any]) -> None:
        if not self.open or self.level == "breached":
            raise InvalidTransition("only an open warning can escalate")
        self._escalated(evidence=evidence)

    @event("Escalated")
    def _escalated(self, evidence: dict[str, Any]) -> None:
        self.level = "breached"
        self.latest = evidence
        self.history.append({"change": "escalated", "level": "breached", **evidence})

    def clear(self, evidence: dict[str, Any]) -> None:
        if not self.open:
            raise InvalidTransition("the crossing is already cleared")
        self._cleared(evidence=evidence)

    @event("Cleared")
    def _cleared(self, evidence: dict[str, Any]) -> None:
        self.open = False
        self.latest = evidence
        self.history.append({"change": "cleared", "level": "cleared", **evidence})


class BurnAlert(Aggregate):
    """An error-budget burn-rate alert (page or ticket) of one series, raised by the rule
    that fired (``factor``, windows and burn rates in ``evidence``) and resolved with the
    figures of that rule at resolution and its ``resolution``: ``subsided``,
    ``escalatedToPage`` / ``fellToTicket`` (an alert of the other severity is raised in the
    same window), or ``budgetRemoved`` (the standard in force keeps no budget any more)."""

    @staticmethod
    def id_for(regime_id: UUID, parameter: str, scope_type: str, scope_id: str,
                  window_start: float) -> UUID:
        return _uuid5("burn", regime_id, parameter, scope_type, scope_id, window_start)

    @event("Raised")
    def __init__(self, id: UUID, regime_id: UUID, parameter: str,  # noqa: A002
                 scope_type: str, scope_id: str, severity: str,
                 evidence: dict[str, Any]) -> None:
        self.regime_id = regime_id
        self.parameter = parameter
        self.scope_type = scope_type
        self.scope_id = scope_id
        self.severity = severity
        self.evidence = evidence
        self.raised = evidence
        self.open = True

    def resolve(self, evidence: dict[str, Any]) -> None:
        if not self.open:
            raise InvalidTransition("the alert is already resolved")
        self._resolved(evidence=evidence)

    @event("Resolved")
    def _resolved(self, evidence: dict[str, Any]) -> None:
        self.open = False
        self.evidence = evidence


class Replica(replica.Replica):
    """The last seen state of a resource another service owns (registry resources,
    planned outages): monitoring's local projection, so no synchronous call is needed
    (``shared.replica``: newer versions only, in any order)."""

    namespace = "monitoring"


class RegimeClock(Aggregate):
    """Processing time as the evaluator sees it, for one regime: how far the clock has
    closed its windows.

    Windows otherwise close on event time (a later sample), so a feed that stops would
    leave its last windows open for ever. A ticker records here, once per window boundary
    (never once per tick), that processing time has passed a window's end plus the allowed
    lateness; the evaluator reads these events from the log it reads batches from, so a
    clock-driven close replays exactly after a crash. ``origin`` is where the clock began
    watching: windows that ended before it (history sent later) still close on event time.
    """

    @staticmethod
    def create_id(regime_id: UUID | str) -> UUID:
        return _uuid5("clock", regime_id)

    @event("Started")
    def __init__(self, regime_id: UUID, origin: float) -> None:
        self.regime_id = regime_id
        self.origin = origin
        self.until = origin

    def advance(self, until: float) -> None:
        """Windows ending at or before ``until`` are closed (only ever moves forward)."""
        if until > self.until:
            self._advanced(regime_id=self.regime_id, until=until)

    @event("Advanced")
    def _advanced(self, regime_id: UUID, until: float) -> None:
        self.until = until


class EvaluatorCheckpoint(Aggregate):
    """The evaluator's state at a position of the log, so a restart replays only the rest.

    ``state`` is a small manifest (``{"format": 2, "generation": g, "parts": n, "bytes": b}``):
    the state
    itself is in ``n`` :class:`EvaluatorCheckpointPart` aggregates written before it, each a
    bounded slice, so no single event (nor database parameter) grows with the number of
    series. A ``state`` without ``format`` is the older inline form."""

    @staticmethod
    def create_id(partition: str) -> UUID:
        return _uuid5("checkpoint", partition)

    @event("Opened")
    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.position = 0
        self.state: dict[str, Any] = {}

    @event("Checkpointed")
    def checkpoint(self, position: int, state: dict[str, Any]) -> None:
        self.position = position
        self.state = state


class Quarantine(Aggregate):
    """Something the evaluator could not evaluate and set aside, so that it never stops
    the evaluation of everything else: a series (``regime|parameter``: its windows are
    dropped and its samples skipped until it is released) or one measurement batch (when
    the failure cannot be put down to a series; it is skipped for good).

    It takes effect at ``position``, the notification of the intake log whose processing
    failed, so a replay after a restart sets the same thing aside at the same point.
    """

    @staticmethod
    def create_id(partition: str, key: str, position: int) -> UUID:
        return _uuid5("quarantine", partition, key, position)

    @event("Quarantined")
    def __init__(self, partition: str, kind: str, key: str, regime_id: str | None,
                 parameter: str | None, batch_id: str, position: int, reason: str) -> None:
        self.partition = partition
        self.kind = kind  # "series" or "batch"
        self.key = key
        self.regime_id = regime_id
        self.parameter = parameter
        self.batch_id = batch_id
        self.position = position
        self.reason = reason
        self.released = False
        self.release: dict[str, Any] | None = None

    @event("Released")
    def resumed(self, position: int, reason: str | None, requested_by: str | None) -> None:
        """The evaluator resumed the series at ``position`` (an operator asked for it)."""
        self.released = True
        self.release = {"position": position, "reason": reason, "requestedBy": requested_by}


class QuarantineRelease(Aggregate):
    """An operator's request to evaluate a quarantined series again. It is recorded in
    the intake log, among the batches, so the evaluator resumes the series at exactly
    this point of the log, in every replay."""

    @staticmethod
    def create_id(quarantine_id: UUID) -> UUID:
        return _uuid5("quarantine-release", quarantine_id)

    @event("Requested")
    def __init__(self, quarantine_id: UUID, partition: str, key: str, reason: str | None,
                 requested_by: str | None) -> None:
        self.quarantine_id = quarantine_id
        self.partition = partition
        self.key = key
        self.reason = reason
        self.requested_by = requested_by
class EvaluatorCheckpointPart(Aggregate):
    """One slice (base64 text of at most a few hundred kilobytes) of the compressed state of
    one checkpoint attempt (``generation``, at ``position``); written once, never changed. A
    save interrupted before its manifest leaves parts no manifest names."""

    @staticmethod
    def create_id(partition: str, generation: str, index: int) -> UUID:
        return _uuid5("checkpoint-part", partition, generation, index)

    @event("Written")
    def __init__(self, partition: str, generation: str, position: int, index: int,
                 data: str) -> None:
        self.partition = partition
        self.generation = generation
        self.position = position
        self.index = index
        self.data = data
