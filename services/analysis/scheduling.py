"""The analysis service's clock: what is due when, and the work of each kind.

The due times live in the log, in the state of the aggregates that own the work (as
outage-negotiation's agreed windows do, ``shared/scheduler.py``): each kind of due item
is read off its aggregate's state by a function given here for that aggregate type —
for the due-time columns of the stored read model (``views.py``,
``shared.readmodel.due_columns``) and the timetable that queries them
(``shared.readmodel.StoredTimetable``) — so a restarted worker finds them where they
were. Each piece of work reloads its aggregate, checks it is still due and saves its
outcome with optimistic concurrency (or under an id the store refuses twice), so two
clocks never both do it: the loser's save conflicts and the item, gone from the
timetable once its aggregate changed, is not offered again.

A job of analysis (period closes for SLA credits, trend runs, problem resolution) joins
the clock with three entries: its kinds in :data:`KINDS` (by aggregate type), its
aggregate type's due items in :func:`due_items`, and its work in
:meth:`Scheduling.work`; its aggregate's table in ``views.py`` gets
``due_columns(<its due function>, <its kinds>)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from services.analysis import problems
from services.analysis.domain import CreditPeriod, ServiceProblem
from services.analysis.trend_runs import TrendSchedule
from shared.scheduler import Due, DueOf, Work

if TYPE_CHECKING:
    from services.analysis.application import Analysis

#: A conformance period's close: its purchased offerings' SLA credits computed and
#: published (``credits.py``).
CREDIT_CLOSE = "credit.close"
#: The scheduled trend run (``trend_runs.py``).
TREND_RUN = "trend.run"

#: The kinds of due item of each aggregate type (each a due-time column of its table).
KINDS: dict[type, tuple[str, ...]] = {
    CreditPeriod: (CREDIT_CLOSE,),
    TrendSchedule: (TREND_RUN,),
    # An open offering-wide problem, resolved once quiet for its rule's time.
    ServiceProblem: (problems.RESOLVE,),
}


def credit_period_due(period: CreditPeriod) -> Iterator[Due]:
    """An open period is due to close at its end plus the settle time it was opened
    with (``credits.close_at``)."""
    if period.closed_at is None:
        yield Due(period.close_at, CREDIT_CLOSE, period.id)


def trend_schedule_due(schedule: TrendSchedule) -> Iterator[Due]:
    """The scheduled trend run, when the schedule plans one."""
    if schedule.next_at is not None:
        yield Due(schedule.next_at, TREND_RUN, schedule.id)


def due_items() -> dict[type, DueOf]:
    """Each aggregate type's due items, off its state."""
    return {CreditPeriod: credit_period_due, TrendSchedule: trend_schedule_due,
            ServiceProblem: problems.problem_due}


class Scheduling:
    """The clock's work in the analysis application, by kind of due item."""

    def __init__(self, app: Analysis) -> None:
        self.app = app

    def work(self) -> Mapping[str, Work]:
        return {CREDIT_CLOSE: lambda item: self.app.close_credit_period(item.subject),
                TREND_RUN: lambda item: self.app.run_scheduled_trends(item.at),
                problems.RESOLVE: lambda item: self.app.resolve_problem(item.subject)}
