"""The crossing state machine (docs/sla-figures.md, "Levels and grace"): a series'
evaluated windows, in order, raise, escalate and clear its crossing — grace before a
breach, no de-escalation, clearing after enough good windows — and whether a crossing is
planned (an agreed outage made the window bad)."""

from __future__ import annotations

from dataclasses import dataclass

from services.monitoring.levels import LEVELS, SEVERITY


@dataclass
class CrossingState:
    """Crossing state per (regime, parameter, scope); serialisable with ``asdict``."""

    level: str = "ok"
    bad_streak: int = 0
    good_streak: int = 0
    since: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """``raised`` (ok → warning/breached), ``escalated`` (warning → breached), ``cleared``
    (warning/breached → ok). ``de-escalated`` is never emitted by :func:`step`."""

    change: str
    from_level: str
    to_level: str


def step(
    state: CrossingState,
    classification: str,
    window_start: float,
    grace_times: int,
    clear_after: int,
    has_warning: bool = True,
) -> Transition | None:
    """Feed one evaluated window (in window order) to ``state``; mutate it; return the change.

    * A breaching window adds to ``bad_streak``; the breach is raised on the
      ``grace_times + 1``-th consecutive breaching window and nothing is raised for it before
      that. A warning is raised only where the standard has a warning level
      (``has_warning``): then a breaching window within grace — beyond the warning level too —
      raises (or keeps) "warning" as any warning window does; without one it raises nothing.
      A warning window raises/keeps "warning" at once (no grace) and resets ``bad_streak``.
    * No de-escalation: a breached state stays breached through warning windows (and through
      breaching windows within grace) until it clears.
    * Clearing: after ``clear_after`` (at least 1) consecutive ok windows, warning/breached →
      ok ("cleared"). Any warning or breaching window resets ``good_streak``.
    * ``since`` is set to ``window_start`` whenever the level changes.
    """
    if classification not in LEVELS:
        raise ValueError(f"classification must be one of {LEVELS}, got {classification!r}")
    grace = max(0, grace_times)
    needed = max(1, clear_after)
    level = state.level

    if classification == "breached":
        state.bad_streak += 1
        state.good_streak = 0
        if state.bad_streak > grace:
            target = "breached"
        elif level == "ok" and has_warning:
            target = "warning"  # within grace: beyond the warning level, so a warning
        else:
            target = level  # within grace: nothing raised (or kept as it is)
    elif classification == "warning":
        state.bad_streak = 0
        state.good_streak = 0
        target = "warning" if level == "ok" else level
    else:
        state.bad_streak = 0
        state.good_streak += 1
        target = "ok" if level != "ok" and state.good_streak >= needed else level

    if target == level:
        return None
    state.level = target
    state.since = window_start
    if target == "ok":
        change = "cleared"
    elif level == "ok":
        change = "raised"
    else:
        change = "escalated"  # warning -> breached; breached -> warning cannot happen
    return Transition(change, level, target)

def is_planned(classification: str, without_outages: str) -> bool:
    """A window's crossing is planned when the agreed outage is what made it bad: its level
    without the outages' time (``without_outages``, see ``Measurement``) is less severe than
    its level. Unplanned downtime that breaches on its own is never planned, whatever the
    window overlaps."""
    return SEVERITY.get(classification, 0) > SEVERITY.get(without_outages, 0)
