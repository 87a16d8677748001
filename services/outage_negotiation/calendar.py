"""A customer's planned outages as an iCalendar feed (RFC 5545), and the signed link a
calendar subscribes to.

Calendar clients fetch a feed by its URL alone — they cannot send a bearer token — so the
URL carries a token naming the customer, signed (HMAC-SHA256) with a key derived from the
suite's secret key under a label of its own (a response link's key signs nothing here,
nor the other way round). It is checked, never stored. It does not expire: a calendar
subscribes once and polls for years, and a link that stopped working would silently
empty it; what it shows is one customer's outage schedule, no more. Changing the suite's
key (``SLA_SECRET_KEY``) revokes every link, as it does every token.

The feed is built with the ``icalendar`` library, one ``VEVENT`` per outage: the UID is
the outage's id (stable, so an update replaces the event instead of adding one), the
SEQUENCE its version (every change makes it higher), times in UTC. An outage is shown

- ``CONFIRMED`` while agreed, in progress or completed (extended: at its extended end);
- ``TENTATIVE`` once agreed and then rescheduled, while it is negotiated again (at its
  first proposed window: the old window is no longer in force);
- ``CANCELLED`` when cancelled (or rejected) after being agreed, so calendars that
  showed it remove it;

and not at all before it is first agreed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, timedelta
from typing import Any

from icalendar import Calendar, Event

from services.outage_negotiation.domain import PlannedOutage
from shared.outage_links import InvalidLink, _b64, _unb64
from shared.times import iso

#: The statuses a feed lists (a cancelled, rejected or negotiating one only once agreed).
SHOWN = ("agreed", "inProgress", "completed", "cancelled", "rejected", "negotiating")
CONFIRMED = ("agreed", "inProgress", "completed")
#: How far back a feed lists outages (by their start), and at most how many it lists.
PAST = timedelta(days=90)
LIMIT = 1000
#: How often a calendar is asked to fetch the feed again (RFC 7986 REFRESH-INTERVAL).
REFRESH = timedelta(hours=1)
PRODID = "-//SLA Support Suite//outage-negotiation//EN"
IMPACT = {"fullOutage": "full outage", "degraded": "degraded service",
          "atRisk": "service at risk"}


def _key(server_key: str) -> bytes:
    return hmac.new(server_key.encode(), b"outage-calendar-link", hashlib.sha256).digest()


def issue(server_key: str, customer_id: str) -> str:
    """The token of a customer's feed (the same every time it is asked for)."""
    body = _b64(json.dumps(["calendar", customer_id], separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(server_key), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def check(server_key: str, token: str) -> str:
    """The customer a feed token names: :class:`~shared.outage_links.InvalidLink` unless
    this service signed it."""
    body, _, signature = (token or "").partition(".")
    expected = _b64(hmac.new(_key(server_key), body.encode(), hashlib.sha256).digest())
    if not body or not hmac.compare_digest(signature, expected):
        raise InvalidLink("the calendar link is not valid (it was not made here, or it "
                          "was changed)")
    try:
        kind, customer_id = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise InvalidLink("the calendar link is not valid") from exc
    if kind != "calendar" or not isinstance(customer_id, str):
        raise InvalidLink("the calendar link is not valid")
    return customer_id


def status_of(outage: PlannedOutage) -> str | None:
    """The event's STATUS, or None when the outage is not in a calendar (never agreed)."""
    if outage.status in CONFIRMED:
        return "CONFIRMED"
    if not getattr(outage, "was_agreed", False):
        return None
    if outage.status in ("cancelled", "rejected"):
        return "CANCELLED"
    if outage.status == "negotiating":
        return "TENTATIVE"
    return None


def _window(outage: PlannedOutage) -> Mapping[str, Any]:
    return outage.agreed_window or outage.windows[0]


def _description(outage: PlannedOutage, customer_id: str, status: str) -> str:
    mine = next((c for c in outage.resolution if c["customerId"] == customer_id), None)
    services = list((mine or {}).get("purchasedOfferingIds") or [])
    lines = [f"Reason: {outage.reason}",
             f"Expected impact: {IMPACT.get(outage.impact, outage.impact)}",
             f"Your affected services ({len(services)}): " + ", ".join(services[:50])
             + (" …" if len(services) > 50 else "")]
    if outage.extensions:
        last = outage.extensions[-1]
        lines.append(f"Extended to {iso(last['to'])}: {last['reason']}")
    if status == "TENTATIVE":
        lines.append("Rescheduled: the window is being agreed again; proposed: " + ", ".join(
            f"{iso(w['start'])} - {iso(w['end'])}" for w in outage.windows))
    if status == "CANCELLED":
        lines.append(f"{outage.status.capitalize()}: {outage.moves[-1].get('reason') or ''}"
                     .rstrip(": "))
    return "\n".join(lines)


def event(outage: PlannedOutage, customer_id: str, address: Callable[[Any], str]
          ) -> Event | None:
    """One outage as the customer's calendar shows it (None: not shown)."""
    status = status_of(outage)
    if status is None:
        return None
    window = _window(outage)
    changed = outage.moves[-1]["at"] if outage.moves else outage.created_at
    item = Event()
    item.add("uid", str(outage.id))
    item.add("sequence", int(outage.version))
    item.add("dtstamp", changed.astimezone(UTC))
    item.add("created", outage.created_at.astimezone(UTC))
    item.add("last-modified", changed.astimezone(UTC))
    item.add("dtstart", window["start"].astimezone(UTC))
    item.add("dtend", window["end"].astimezone(UTC))
    item.add("summary", f"Planned outage: {outage.name or outage.reason}")
    item.add("description", _description(outage, customer_id, status))
    item.add("status", status)
    item.add("transp", "OPAQUE")
    item.add("categories", ["Planned outage"])
    item.add("url", address(outage.id))
    return item


def feed(outages: Iterable[PlannedOutage], customer_id: str,
         address: Callable[[Any], str]) -> bytes:
    """The customer's feed: its outages as events, earliest first; ``address`` gives an
    outage's URL."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.calendar_name = f"Planned outages: {customer_id}"
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")  # REFRESH-INTERVAL as Outlook reads it
    for outage in sorted(outages, key=lambda o: (_window(o)["start"], str(o.id))):
        item = event(outage, customer_id, address)
        if item is not None:
            calendar.add_component(item)
    return calendar.to_ical()
