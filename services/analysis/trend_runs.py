"""The aggregates of trend analysis: a run (a question, who or what asked it, and every
series' result — one event, never changed) and the schedule that asks the daily
question. No Flask, no pika.

Why a run is one event: it is what an auditor asks for — "what did analysis find on
1 December, from which data, by which test" — and what is published (each series'
result as an ``AnalysisResultEvent``, logged into the inventory), so it must not change
after it was published. Its id comes from a key: random when someone asks, the
schedule's due time when the clock does, so two clocks that both see the run due record
it once (the store refuses the second).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.ids import stable_id

REQUEST, SCHEDULE = "request", "schedule"


class TrendRun(Aggregate):
    """One trend analysis: the question (``trend_series.TrendQuery.to_dict``), the time
    it was made, the actor (a person's subject, or ``clock``), how it was asked
    (``request`` or ``schedule``), the results (one per series, in the question's order)
    and how many series were left out (a scheduled question over more than the cap)."""

    @staticmethod
    def create_id(key: str, **_: Any) -> UUID:
        return stable_id("analysis", "trend-run", key)

    @event("Completed")
    def __init__(self, key: str, query: dict[str, Any], results: list[dict[str, Any]],
                 analysed_at: datetime, actor: str, trigger: str, omitted: int = 0) -> None:
        self.key = key
        self.query = query
        self.results = results
        self.analysed_at = analysed_at
        self.actor = actor
        self.trigger = trigger
        self.omitted = omitted

    @property
    def series_count(self) -> int:
        return len(self.results)

    @property
    def deteriorating_count(self) -> int:
        return sum(1 for r in self.results if r.get("deteriorating"))

    @staticmethod
    def scheduled_key(due: datetime) -> str:
        """The key of the run the schedule makes at ``due``."""
        return f"schedule:{due.isoformat()}"


class TrendSchedule(Aggregate):
    """When the next scheduled trend run is due, how often it runs and how long after
    each boundary (seconds). One per installation (:meth:`create_id`), planned by the
    first clock that starts."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return stable_id("analysis", "trend-schedule")

    @event("Planned")
    def __init__(self, every: float, delay: float, next_at: datetime | None) -> None:
        self.every = every
        self.delay = delay
        self.next_at = next_at
        self.last_run_id: str | None = None

    @event("Ran")
    def ran(self, run_id: str, next_at: datetime | None) -> None:
        self.last_run_id = run_id
        self.next_at = next_at

    @event("Replanned")
    def replan(self, every: float, delay: float, next_at: datetime | None) -> None:
        """A new interval or delay (the installation's settings changed), planned from
        now; ``every`` 0 stops the schedule."""
        self.every = every
        self.delay = delay
        self.next_at = next_at
