"""outage-negotiation's own settings, read from the environment and validated at start (a
bad value stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from shared.config import ConfigError, seconds
from shared.durations import duration_seconds

OVERLAP_POLICIES = ("flag", "refuse")
#: Reminders before an agreed outage starts, unless SLA_OUTAGE_REMINDERS says otherwise.
DEFAULT_REMINDERS = "*=P7D/PT24H/PT1H"


@dataclass(frozen=True)
class OutageSettings:
    # Overlapping outages on one purchased offering: flagged on the outage (``flag``), or
    # refused with a 409 (``refuse``): SLA_OUTAGE_OVERLAPS.
    overlaps: str = "flag"
    # Planned-outage minutes a purchased offering may have per calendar month (UTC), by
    # SLA type name or id, ``*`` for the others; none given: no cap.
    # SLA_OUTAGE_CAP_MINUTES, e.g. ``gold=240,silver=480,*=720``.
    cap_minutes: Mapping[str, int] = field(default_factory=dict)
    # The clock's loop wakes for the next start or end, or for new events; at the latest
    # after this many seconds: SLA_OUTAGE_TICK.
    tick: float = 1.0
    # The clock takes an outage's answers into it at most this often, in seconds (a
    # burst's answers then go in together; 0: each as it comes):
    # SLA_OUTAGE_ANSWER_INTERVAL.
    answer_interval: float = 1.0
    # How long before an agreed outage's start its customers are reminded, by SLA type
    # name or id, ``*`` for the others (``none``: no reminders; ``*`` left out: 7 days,
    # 24 hours and 1 hour): SLA_OUTAGE_REMINDERS,
    # e.g. ``gold=P7D/PT24H/PT1H,bronze=PT24H,*=P7D/PT24H/PT1H``. Leads in seconds.
    reminders: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: reminder_leads(DEFAULT_REMINDERS))
    # Where customers reach this service (the response page in their notices):
    # SLA_OUTAGE_PUBLIC_URL, else SLA_PUBLIC_URL.
    public_url: str = "http://localhost:8080"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutageSettings:
        overlaps = (env.get("SLA_OUTAGE_OVERLAPS") or "flag").strip()
        if overlaps not in OVERLAP_POLICIES:
            raise ConfigError("SLA_OUTAGE_OVERLAPS",
                              f"one of {', '.join(OVERLAP_POLICIES)}, got {overlaps!r}")
        public = (env.get("SLA_OUTAGE_PUBLIC_URL") or env.get("SLA_PUBLIC_URL")
                  or "http://localhost:8080").strip().rstrip("/")
        parsed = urlparse(public)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError("SLA_OUTAGE_PUBLIC_URL" if env.get("SLA_OUTAGE_PUBLIC_URL")
                              else "SLA_PUBLIC_URL", f"expected an http(s) URL, got {public!r}")
        return cls(overlaps=overlaps, cap_minutes=caps(env.get("SLA_OUTAGE_CAP_MINUTES")),
                   tick=seconds(env, "SLA_OUTAGE_TICK", 1.0, 0.01, 60),
                   answer_interval=seconds(env, "SLA_OUTAGE_ANSWER_INTERVAL", 1.0, 0, 60),
                   reminders={**reminder_leads(DEFAULT_REMINDERS),
                              **reminder_leads(env.get("SLA_OUTAGE_REMINDERS") or "")},
                   public_url=public)

    def cap_for(self, *names: str | None) -> int | None:
        """The cap of the first of an SLA type's names (its name, its id) that has one,
        else the ``*`` cap; None when there is none."""
        for name in names:
            if name and name in self.cap_minutes:
                return self.cap_minutes[name]
        return self.cap_minutes.get("*")

    def reminders_for(self, *names: str | None) -> tuple[int, ...]:
        """The reminder leads (seconds before the start, longest first) of the first of
        an SLA type's names that has its own, else the ``*`` ones."""
        for name in names:
            if name and name in self.reminders:
                return self.reminders[name]
        return self.reminders.get("*", ())


def caps(raw: str | None) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, _, minutes = part.partition("=")
        try:
            value = int(minutes)
        except ValueError:
            value = -1
        if not name.strip() or value < 0:
            raise ConfigError("SLA_OUTAGE_CAP_MINUTES",
                              f"expected NAME=MINUTES[,NAME=MINUTES…], got {part.strip()!r}")
        found[name.strip()] = value
    return found


def reminder_leads(raw: str) -> dict[str, tuple[int, ...]]:
    """``NAME=LEAD/LEAD…`` pairs (ISO-8601 durations, ``none`` for no reminder), as
    seconds before the start, longest first."""
    found: dict[str, tuple[int, ...]] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, leads = part.partition("=")
        try:
            values = () if leads.strip() == "none" else tuple(sorted(
                {duration_seconds(lead.strip()) for lead in leads.split("/")}, reverse=True))
        except ValueError:
            values = (0,)
        if not name.strip() or 0 in values or (not values and leads.strip() != "none"):
            raise ConfigError("SLA_OUTAGE_REMINDERS",
                              f"expected NAME=DURATION[/DURATION…] (ISO-8601, such as P7D "
                              f"or PT1H) or NAME=none, got {part.strip()!r}")
        found[name.strip()] = values
    return found
