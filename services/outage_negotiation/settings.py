"""outage-negotiation's own settings, read from the environment and validated at start (a
bad value stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import ConfigError, seconds

OVERLAP_POLICIES = ("flag", "refuse")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutageSettings:
        overlaps = (env.get("SLA_OUTAGE_OVERLAPS") or "flag").strip()
        if overlaps not in OVERLAP_POLICIES:
            raise ConfigError("SLA_OUTAGE_OVERLAPS",
                              f"one of {', '.join(OVERLAP_POLICIES)}, got {overlaps!r}")
        return cls(overlaps=overlaps, cap_minutes=caps(env.get("SLA_OUTAGE_CAP_MINUTES")),
                   tick=seconds(env, "SLA_OUTAGE_TICK", 1.0, 0.01, 60))

    def cap_for(self, *names: str | None) -> int | None:
        """The cap of the first of an SLA type's names (its name, its id) that has one,
        else the ``*`` cap; None when there is none."""
        for name in names:
            if name and name in self.cap_minutes:
                return self.cap_minutes[name]
        return self.cap_minutes.get("*")


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
