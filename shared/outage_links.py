"""Response links: what lets one customer answer one round of one outage's negotiation,
without an account. A token names the outage, the customer, the round and when it
expires, signed with a key derived from the suite's secret key (HMAC-SHA256): it is
checked, never stored, so a tampered one is refused, an expired one too, and one from a
round since replaced (a rescheduled outage) no longer answers anything.

Shared by the two services that handle them: outage-negotiation checks them (and makes
one for a planner who hands a link out), notification makes one for each customer's
notice when it hands the message over (the notice on the bus and the stored delivery
carry only the link's facts: no token is kept anywhere)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from shared import times


class InvalidLink(ValueError):
    """Not a link this service made (malformed or tampered with)."""


class ExpiredLink(ValueError):
    """A link this service made, whose time is over."""


@dataclass(frozen=True)
class Link:
    outage_id: str
    customer_id: str
    round: int
    expires_at: datetime


def _key(server_key: str) -> bytes:
    return hmac.new(server_key.encode(), b"outage-response-link", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(server_key: str, link: Link) -> str:
    body = _b64(json.dumps([link.outage_id, link.customer_id, link.round,
                            times.iso(link.expires_at)], separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(server_key), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def check(server_key: str, token: str, now: datetime) -> Link:
    """The link a token stands for: :class:`InvalidLink` unless this service signed it,
    :class:`ExpiredLink` once it expired."""
    body, _, signature = (token or "").partition(".")
    expected = _b64(hmac.new(_key(server_key), body.encode(), hashlib.sha256).digest())
    if not body or not hmac.compare_digest(signature, expected):
        raise InvalidLink("the response link is not valid (it was not made here, or it "
                          "was changed)")
    try:
        outage_id, customer_id, round_, expires = json.loads(_unb64(body))
        link = Link(str(outage_id), str(customer_id), int(round_), times.parse(expires))
    except (ValueError, TypeError) as exc:
        raise InvalidLink("the response link is not valid") from exc
    if link.expires_at <= now:
        raise ExpiredLink(f"the response link expired at {times.iso(link.expires_at)}")
    return link


def url(respond_url: str, token: str) -> str:
    """The response page's address for a token (``respond_url``: the page without it)."""
    return f"{respond_url}?token={token}"
