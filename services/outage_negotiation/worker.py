"""The outage-negotiation worker's role (run by ``slactl worker``, or as a thread
embedded): the ``clock``, which starts agreed outages at their agreed start and completes
them at their agreed end. It finds what is due by the due-time columns of the stored read
model (``views.py``), so a restarted worker resumes where the last one stopped."""

from __future__ import annotations

from services.outage_negotiation.application import OutageNegotiation
from shared.service import Role, Wiring


def background(app: OutageNegotiation, wiring: Wiring) -> dict[str, Role]:
    """The clock waits on ``app.wake``, set (unless ``SLA_WAKE_ON_EVENTS`` is false) by
    every new event of the log — an agreement over HTTP in another process, through
    PostgreSQL ``LISTEN`` — and otherwise sleeps until the next start or end, at the
    latest ``SLA_OUTAGE_TICK`` seconds."""
    if wiring.platform.wake_on_events:
        app.recorded.remove(app.wake)
        app.recorded.add(app.wake)
    clock = app.scheduler()
    return {"clock": Role(clock.run, lambda: clock.last_error)}
