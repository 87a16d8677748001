"""The analysis worker's own role (run by ``slactl worker``, or as a thread embedded):
the ``clock``, which runs analysis's due work (``scheduling.py``). It finds what is due by
the due-time columns of the stored read model (``views.py``), so a restarted worker
resumes where the last one stopped, and two clocks (two workers) do each item once."""

from __future__ import annotations

from services.analysis.application import Analysis
from shared.service import Role, Wiring


def background(app: Analysis, wiring: Wiring) -> dict[str, Role]:
    """The clock waits on ``app.wake``, set (unless ``SLA_WAKE_ON_EVENTS`` is false) by
    every new event of the log — a window summary kept by the inbox in another process,
    through PostgreSQL ``LISTEN`` — and otherwise sleeps until the next due item, at the
    latest ``SLA_ANALYSIS_TICK`` seconds."""
    if wiring.platform.wake_on_events:
        app.recorded.remove(app.wake)
        app.recorded.add(app.wake)
    clock = app.scheduler()
    return {"clock": Role(clock.run, lambda: clock.last_error)}
