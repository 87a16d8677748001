"""The TMF688-shaped envelope every message of the suite travels in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA_VERSION = "1"


class EnvelopeError(ValueError):
    """A message body that is not a valid envelope."""


@dataclass(frozen=True)
class Envelope:
    event_id: str
    event_time: str
    event_type: str
    event: dict[str, Any]
    source: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    schema_version: str = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "eventId": self.event_id,
            "eventTime": self.event_time,
            "eventType": self.event_type,
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
            "source": self.source,
            "schemaVersion": self.schema_version,
            "event": self.event,
        }
        body.update(self.extra)
        return {k: v for k, v in body.items() if v is not None}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict(), default=str)

    @classmethod
    def from_dict(cls, body: Any) -> Envelope:
        if not isinstance(body, dict):
            raise EnvelopeError("the message body is not a JSON object")
        missing = [k for k in ("eventId", "eventTime", "eventType", "event") if k not in body]
        if missing:
            raise EnvelopeError(f"the envelope lacks {', '.join(missing)}")
        if not isinstance(body["event"], dict):
            raise EnvelopeError("'event' is not an object")
        known = {
            "eventId", "eventTime", "eventType", "event", "source", "correlationId",
            "causationId", "schemaVersion",
        }
        return cls(
            event_id=str(body["eventId"]),
            event_time=str(body["eventTime"]),
            event_type=str(body["eventType"]),
            event=body["event"],
            source=body.get("source"),
            correlation_id=body.get("correlationId"),
            causation_id=body.get("causationId"),
            schema_version=str(body.get("schemaVersion", SCHEMA_VERSION)),
            extra={k: v for k, v in body.items() if k not in known},
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"the message body is not JSON: {exc}") from None
        return cls.from_dict(body)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for a transport: where it goes and what it carries."""

    exchange: str
    routing_key: str
    envelope: Envelope
    message_id: str
    headers: dict[str, Any] = field(default_factory=dict)
    # The envelope already encoded (the relay encodes each as it describes it).
    body: bytes | None = None

    def to_bytes(self) -> bytes:
        return self.body if self.body is not None else self.envelope.to_bytes()
