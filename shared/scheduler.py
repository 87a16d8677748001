"""Due work: a clock, a timetable of what is due when, and a loop that wakes for the next
due item (docs/architecture.md, "Adding a service").

The due times live in the log, in the events of the aggregates that own the work (a
group's ``flush_at``, an incident's escalation ``due_at``, a delivery's
``next_attempt_at``), so nothing is lost when a process restarts: the
:class:`Timetable` is rebuilt from the log as the application's read model catches up,
reading each changed aggregate's due items off its new state with the function its
service gives for that aggregate type. A :class:`DueLoop` sleeps until the earliest
item or until it is woken — its :class:`~shared.wakeups.Wakeup` is set when the log gets
new events, in this process or (PostgreSQL ``LISTEN``) another one — and at most
``idle`` seconds, the fallback should a wake-up be lost; then it hands each due item to
the work of its kind.

Exactly once: the work reloads its aggregate, checks the item is still due, and saves
its outcome with optimistic concurrency, so a concurrent scheduler's save conflicts and
the item (still in the timetable until its aggregate changes) is simply offered again.

What uses it: notification's group flushes, repeats, escalations and delivery attempts;
next, outage reminders and deadlines, periodic reports and period closes (an aggregate
whose state says when it is due, and a work function for the kind).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from shared import times
from shared.wakeups import Wakeup, sleep

__all__ = ["Clock", "Due", "DueLoop", "SettableClock", "SystemClock", "Timetable",
           "Wakeup"]

log = logging.getLogger(__name__)


# --- clocks -------------------------------------------------------------------------------

class Clock(Protocol):
    """The time an application reads: timezone-aware, UTC. Injected at construction."""

    def __call__(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def __call__(self) -> datetime:
        return times.now()


class SettableClock:
    """A clock a test sets and moves (thread-safe): work becomes due when the test says."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or times.now()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


# --- the timetable ------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Due:
    """One piece of due work: of ``kind``, about the aggregate ``subject``, at ``at``;
    ``key`` tells apart several items of one kind on one aggregate (an incident's
    escalation from each list)."""

    at: datetime
    kind: str
    subject: UUID = field(compare=False)
    key: str = field(default="", compare=False)

    @property
    def identity(self) -> tuple[UUID, str, str]:
        return self.subject, self.kind, self.key


DueOf = Callable[[Any], Iterable[Due]]


class Watched(Protocol):
    """A read model that tells who watches it about every aggregate it changes
    (``shared.store.AggregateIndex``)."""

    def watch(self, callback: Callable[[Any], None]) -> None: ...

    def catch_up(self) -> None: ...


class Timetable:
    """What is due when, kept from the log through the application's read model: each
    aggregate of a type in ``due_of`` that changes has its due items replaced by the ones
    its new state gives. An item stays until its aggregate changes again (the work's
    outcome), so work that failed is offered again.

    A heap per kind holds the items not yet due (an item replaced meanwhile is dropped
    when it comes to the top, and a heap is rebuilt when such leftovers outnumber its live
    items); the due ones wait in ``_ready`` for their work. Finding what is due costs the
    items that became due, not a walk over every aggregate."""

    def __init__(self, index: Watched, due_of: Mapping[type, DueOf]) -> None:
        self._index = index
        self._due_of = dict(due_of)
        self._lock = threading.Lock()
        self._items: dict[tuple[UUID, str, str], Due] = {}
        self._by_subject: dict[UUID, set[tuple[UUID, str, str]]] = {}
        self._heaps: dict[str, list[tuple[datetime, int, Due]]] = {}
        self._live: dict[str, int] = {}
        self._ready: dict[str, dict[tuple[UUID, str, str], Due]] = {}
        self._order = itertools.count()
        index.watch(self._changed)

    def _changed(self, aggregate: Any) -> None:
        due_of = self._due_of.get(type(aggregate))
        if due_of is None:
            return
        items = list(due_of(aggregate))
        with self._lock:
            for identity in self._by_subject.pop(aggregate.id, set()):
                gone = self._items.pop(identity, None)
                if gone is not None:
                    self._live[gone.kind] -= 1
                    self._ready.get(gone.kind, {}).pop(identity, None)
            for item in items:
                self._items[item.identity] = item
                self._by_subject.setdefault(aggregate.id, set()).add(item.identity)
                self._live[item.kind] = self._live.get(item.kind, 0) + 1
                heap = self._heaps.setdefault(item.kind, [])
                heapq.heappush(heap, (item.at, next(self._order), item))
                if len(heap) > 2 * self._live[item.kind] + 64:
                    self._compact(item.kind)

    def _compact(self, kind: str) -> None:
        ready = self._ready.get(kind, {})
        self._heaps[kind] = [(i.at, next(self._order), i) for i in self._items.values()
                             if i.kind == kind and i.identity not in ready]
        heapq.heapify(self._heaps[kind])

    def _current(self, item: Due) -> bool:
        return self._items.get(item.identity) is item

    def _kinds(self, kinds: Iterable[str] | None) -> list[str]:
        return list(self._heaps) if kinds is None else list(kinds)

    def due(self, now: datetime, kinds: Iterable[str] | None = None) -> list[Due]:
        """The items due at ``now`` (of these kinds), earliest first."""
        self._index.catch_up()
        found: list[Due] = []
        with self._lock:
            for kind in self._kinds(kinds):
                heap, ready = self._heaps.get(kind, []), self._ready.setdefault(kind, {})
                while heap and heap[0][0] <= now:
                    item = heapq.heappop(heap)[2]
                    if self._current(item):
                        ready[item.identity] = item
                found += [item for item in ready.values() if item.at <= now]
        return sorted(found)

    def still_planned(self, items: Iterable[Due]) -> list[Due]:
        """Those of ``items`` still planned as they were (their aggregates did not
        change), after catching up once."""
        self._index.catch_up()
        with self._lock:
            return [item for item in items if self._current(item)]

    def items(self, kind: str) -> list[Due]:
        """Every item of a kind, due or not."""
        self._index.catch_up()
        with self._lock:
            return sorted(item for item in self._items.values() if item.kind == kind)

    def next_at(self, kinds: Iterable[str] | None = None, catch_up: bool = True
                ) -> datetime | None:
        """When the earliest item (of these kinds) is due; None when nothing is planned."""
        if catch_up:
            self._index.catch_up()
        earliest: datetime | None = None
        with self._lock:
            for kind in self._kinds(kinds):
                ready = self._ready.get(kind, {})
                heap = self._heaps.get(kind, [])
                while heap and not self._current(heap[0][2]):
                    heapq.heappop(heap)  # replaced or done since it was planned
                candidates = [i.at for i in ready.values()] + ([heap[0][0]] if heap else [])
                if candidates and (earliest is None or min(candidates) < earliest):
                    earliest = min(candidates)
        return earliest


# --- the loop -----------------------------------------------------------------------------

Work = Callable[[Due], Any]


class DueLoop:
    """Runs the due items of some kinds: each with the work of its kind, earliest first,
    then sleeps until the next one is due or until woken (new events in its log), at
    most ``idle`` seconds: should a wake-up be lost, new items are still seen that soon.

    A failure (a save that conflicted, a bug) leaves the item in the timetable: it is
    offered again after ``retry_after`` seconds, and logged."""

    def __init__(self, timetable: Timetable, clock: Clock, work: Mapping[str, Work],
                 wakeup: Wakeup, idle: float, retry_after: float = 1.0) -> None:
        self.timetable, self.clock, self.work = timetable, clock, dict(work)
        self.idle, self.retry_after = idle, retry_after
        self._wake = wakeup.waiter()
        self._held: dict[tuple[UUID, str, str], tuple[Due, float]] = {}
        self.last_error: str | None = None

    def run_due(self) -> int:
        """Run every item due now; how many were run without failing."""
        import time

        done, ran = 0, []
        due = self.timetable.due(self.clock(), self.work)
        planned = {item.identity for item in due}
        self._held = {k: v for k, v in self._held.items() if k in planned}
        for item in due:
            held = self._held.get(item.identity)
            if held is not None and held[0] == item and held[1] > time.monotonic():
                continue
            try:
                self.work[item.kind](item)
            except Exception as exc:  # noqa: BLE001 - the item stays; offered again later
                from eventsourcing.persistence import IntegrityError

                self._held[item.identity] = (item, time.monotonic() + self.retry_after)
                if not isinstance(exc, IntegrityError):
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("due %s of %s failed", item.kind, item.subject)
                continue
            self._held.pop(item.identity, None)
            ran.append(item)
            done += 1
        for item in self.timetable.still_planned(ran):  # nothing changed: not due after all
            self._held[item.identity] = (item, time.monotonic() + self.retry_after)
        if not self._held:
            self.last_error = None
        return done

    def seconds_to_next(self) -> float:
        """Until the next item is due, at most ``idle``; ``idle`` when what is due is held
        back after a failure."""
        upcoming = self.timetable.next_at(self.work, catch_up=False)
        if upcoming is None:
            return self.idle
        wait = (upcoming - self.clock()).total_seconds()
        return self.idle if wait <= 0 else min(self.idle, wait)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                # A timetable over a stored index reads it in one scope a pass (one
                # catch-up for the pass's queries, its own writes still seen).
                reading = getattr(self.timetable, "reading", contextlib.nullcontext)
                with reading():
                    self.run_due()
                    pause = self.seconds_to_next()
            except Exception as exc:  # noqa: BLE001 - keep scheduling after any failure
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("due work loop failed")
                pause = self.idle
            if sleep(self._wake, stop, pause):
                self._wake.clear()
