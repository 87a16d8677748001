"""Webhook signatures: how the suite signs a delivery, and how a receiver checks it.

Standard library only, so a receiver can import this module or copy it as it is. One
HMAC-SHA256 covers the timestamp, the delivery id, the event type and the raw body, so
none of them can be changed or moved to another request without breaking the signature:

    X-SLA-Signature:   t=<unix seconds>,v2=<hex HMAC-SHA256(secret, signed payload)>
    X-SLA-Delivery-Id: <delivery id>
    X-SLA-Event-Type:  <event type>

    signed payload = "<t>\\n<delivery id>\\n<event type>\\n" + raw body

(HTTP header values cannot hold a line feed, so the fields cannot bleed into each other.)
A receiver refuses a signature whose timestamp is older than ``tolerance`` seconds (replay)
or further than ``skew`` seconds in its future (a forged or badly clocked sender), and
drops a delivery id it has already processed (retries reuse it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-SLA-Signature"
DELIVERY_HEADER = "X-SLA-Delivery-Id"
EVENT_HEADER = "X-SLA-Event-Type"
SCHEME = "v2"
TOLERANCE = 300.0
SKEW = 30.0


class InvalidSignature(ValueError):
    """The request is not a genuine, fresh delivery of the suite; the message says why."""


def signed_payload(timestamp: int, delivery_id: str, event_type: str, body: bytes) -> bytes:
    return f"{int(timestamp)}\n{delivery_id}\n{event_type}\n".encode() + body


def _mac(secret: str, timestamp: int, delivery_id: str, event_type: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signed_payload(timestamp, delivery_id, event_type, body),
                    hashlib.sha256).hexdigest()


def sign(secret: str, delivery_id: str, event_type: str, body: bytes,
         timestamp: int | None = None) -> str:
    """The ``X-SLA-Signature`` value of one delivery attempt."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SCHEME}={_mac(secret, t, delivery_id, event_type, body)}"


def signature_headers(secret: str, delivery_id: str, event_type: str, body: bytes,
                      timestamp: int | None = None) -> dict[str, str]:
    """Every header a signed delivery carries."""
    return {SIGNATURE_HEADER: sign(secret, delivery_id, event_type, body, timestamp),
            DELIVERY_HEADER: delivery_id, EVENT_HEADER: event_type}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def check_signature(secret: str, headers: Mapping[str, str], body: bytes, *,
                    now: float | None = None, tolerance: float = TOLERANCE,
                    skew: float = SKEW) -> tuple[str, str]:
    """What a receiver does with a request: check the signature over the timestamp,
    delivery id, event type and raw body (in constant time), and the timestamp's age.

    ``headers`` is any mapping of the request's headers (names in any case). Returns
    (delivery id, event type); raises :class:`InvalidSignature` otherwise."""
    header = _header(headers, SIGNATURE_HEADER)
    delivery_id = _header(headers, DELIVERY_HEADER)
    event_type = _header(headers, EVENT_HEADER)
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    if not delivery_id or not event_type:
        raise InvalidSignature(f"{DELIVERY_HEADER} and {EVENT_HEADER} are both required")
    if any(c in value for value in (delivery_id, event_type) for c in "\r\n"):
        raise InvalidSignature("a header value holds a line break")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        raise InvalidSignature("the signature has no timestamp") from None
    current = time.time() if now is None else now
    if t > current + skew:
        raise InvalidSignature(f"the timestamp is {t - current:.0f} s in the future "
                               f"(more than {skew:.0f} s)")
    if current - t > tolerance:
        raise InvalidSignature(f"the timestamp is {current - t:.0f} s old "
                               f"(more than {tolerance:.0f} s)")
    expected = _mac(secret, t, delivery_id, event_type, body)
    if not any(hmac.compare_digest(expected, v) for v in parts.get(SCHEME, [])):
        raise InvalidSignature("the signature does not match")
    return delivery_id, event_type


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, *,
                     now: float | None = None, tolerance: float = TOLERANCE,
                     skew: float = SKEW) -> bool:
    """:func:`check_signature` as a yes/no answer."""
    try:
        check_signature(secret, headers, body, now=now, tolerance=tolerance, skew=skew)
    except InvalidSignature:
        return False
    return True
