"""When the clock moves an outage, and the move: an agreed outage starts at its agreed
start, and an outage in progress completes at its agreed end (as extended), never by
hand only; a negotiation's deadline resolves it by its policy (agreed, or left to the
planner with a summary); and the reminders planned when it was agreed go out before it
starts.

The due times are the agreed window in the outage's own events, read off its state by
:func:`outage_due` — for the due-time columns of the stored read model (``views.py``)
and the timetable that queries them (``shared.readmodel.StoredTimetable``) — so a
restarted worker finds them where they were. Each move reloads the outage, checks it is
still due and saves it with optimistic concurrency, so two workers never both make it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from services.outage_negotiation.domain import CLOCK, CustomerAnswer, PlannedOutage
from shared import context
from shared.scheduler import Due, DueOf

if TYPE_CHECKING:
    from services.outage_negotiation.application import OutageNegotiation

START, COMPLETE, DEADLINE = "outage.start", "outage.complete", "outage.deadline"
REMIND = "outage.remind"
TAKE = "answer.take"
KINDS = (START, COMPLETE, DEADLINE, REMIND)
ANSWER_KINDS = (TAKE,)


def outage_due(outage: PlannedOutage) -> Iterator[Due]:
    if outage.status == "negotiating" and getattr(outage, "deadline", None) is not None \
            and getattr(outage, "deadline_summary", None) is None:
        yield Due(outage.deadline, DEADLINE, outage.id)
    window = outage.agreed_window
    if window is None:
        return
    if outage.status == "agreed":
        yield Due(window["start"], START, outage.id)
        for reminder in outage.pending_reminders:
            yield Due(reminder["at"], REMIND, outage.id)
    elif outage.status == "inProgress":
        yield Due(window["end"], COMPLETE, outage.id)


def answer_due(answer: CustomerAnswer) -> Iterator[Due]:
    """An answer not yet taken into its outage is due from when it came in; its subject
    is the outage (the clock takes every answer waiting for an outage at once)."""
    if answer.taken_at is None:
        yield Due(answer.at, TAKE, UUID(answer.outage_id))


def due_items() -> dict[type, DueOf]:
    return {PlannedOutage: outage_due, CustomerAnswer: answer_due}


class Scheduling:
    """The clock's moves of the outage-negotiation application, by kind of due item."""

    def __init__(self, app: OutageNegotiation) -> None:
        self.app = app
        self._taken: dict[UUID, float] = {}  # when each outage's answers were last taken

    def work(self) -> dict[str, Any]:
        return {START: self.start, COMPLETE: self.complete, REMIND: self.remind,
                TAKE: self.take,
                DEADLINE: lambda item: self.app.resolve_at_deadline(item.subject)}

    def take(self, item: Due) -> int:
        """Take the answers waiting for an outage into it, at most once every
        ``answer_interval`` seconds (SLA_OUTAGE_ANSWER_INTERVAL) for one outage; the
        first answer after a quiet spell is taken at once.

        Why: a take reads and rewrites the outage, whose state holds every affected
        customer (megabytes over a large group), whatever the number of answers it takes.
        Taken as each answer came, a burst of answers kept the clock rewriting the outage
        back to back, a core's worth of work taken from the answers themselves; taken
        once a second, each take carries the second's answers. Until then they wait,
        saved and due (the loop offers them again within a second): the policy applies
        that much later, and what must count every answer (the deadline, the planner's
        ranking and choice) takes them all first (``take_all_answers``)."""
        interval = self.app.settings.answer_interval
        last = self._taken.get(item.subject)
        if last is not None and time.monotonic() - last < interval:
            return 0  # still due: offered again shortly
        taken = self.app.take_answers(item.subject)
        if len(self._taken) >= 64:
            self._taken.pop(next(iter(self._taken)))
        self._taken[item.subject] = time.monotonic()
        return taken

    def start(self, item: Due) -> int:
        return self._at_edge(item, "agreed", "start", PlannedOutage.start)

    def complete(self, item: Due) -> int:
        return self._at_edge(item, "inProgress", "end", PlannedOutage.complete)

    def remind(self, item: Due) -> int:
        """Send the nearest reminder whose time has come, before the start: the earlier
        ones whose time passed too (no clock ran then) are passed over, recorded with it,
        so a customer gets one reminder, not a burst, and none twice."""
        app = self.app
        outage: PlannedOutage = app.repository.get(item.subject)
        now = app.clock()
        window = outage.agreed_window
        due = [r["lead"] for r in outage.pending_reminders if r["at"] <= now]
        if outage.status != "agreed" or window is None or not due or window["start"] <= now:
            return 0
        nearest = min(due)
        outage.remind(nearest, now, [lead for lead in due if lead != nearest])
        with context.bound(who=CLOCK):
            app.save(outage)
        return 1

    def _at_edge(self, item: Due, status: str, edge: str,
                 move: Callable[[PlannedOutage, datetime], None]) -> int:
        """Move an outage still ``status`` once its agreed window's ``edge`` has come."""
        app = self.app
        outage: PlannedOutage = app.repository.get(item.subject)
        now = app.clock()
        window = outage.agreed_window
        if outage.status != status or window is None or window[edge] > now:
            return 0
        move(outage, now)
        with context.bound(who=CLOCK):
            app.save(outage)
        return 1
