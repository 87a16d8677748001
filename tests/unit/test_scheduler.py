"""The scheduler kit (shared.scheduler): due items read off the log's aggregates, a loop
that runs what is due on a clock the test moves, and due work that survives a restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, event

from shared.scheduler import Due, DueLoop, SettableClock, Timetable, Wakeup
from shared.store import AggregateIndex, ServiceApplication
from tests.helpers import eventually

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Reminder(Aggregate):
    """An aggregate whose state says when it is due (as an outage reminder would)."""

    @event("Planned")
    def __init__(self, at: datetime) -> None:
        self.at: datetime | None = at
        self.sent = 0

    @event("Sent")
    def send(self) -> None:
        self.at, self.sent = None, self.sent + 1

    @event("Moved")
    def move(self, at: datetime) -> None:
        self.at = at


def reminder_due(r: Reminder) -> Iterator[Due]:
    if r.at is not None:
        yield Due(r.at, "reminder", r.id)


class Reminders(ServiceApplication):
    def __init__(self, env: dict[str, str] | None = None,
                 clock: SettableClock | None = None) -> None:
        super().__init__(env)
        self.clock = clock or SettableClock(T0)
        self.index = AggregateIndex(self)
        self.timetable = Timetable(self.index, {Reminder: reminder_due})
        self.wake = Wakeup()

    def send(self, item: Due) -> None:
        reminder: Reminder = self.repository.get(item.subject)
        if reminder.at is not None and reminder.at <= self.clock():
            reminder.send()
            self.save(reminder)

    def loop(self) -> DueLoop:
        return DueLoop(self.timetable, self.clock, {"reminder": self.send}, self.wake,
                       idle=0.05)


def test_only_what_is_due_runs_earliest_first_and_once() -> None:
    app = Reminders()
    late, early = Reminder(T0 + timedelta(minutes=10)), Reminder(T0 + timedelta(minutes=5))
    app.save(late, early)
    loop = app.loop()
    assert loop.run_due() == 0
    assert app.timetable.next_at() == T0 + timedelta(minutes=5)
    app.clock.advance(600)
    assert [i.subject for i in app.timetable.due(app.clock())] == [early.id, late.id]
    assert loop.run_due() == 2
    assert loop.run_due() == 0  # done: their aggregates say so
    assert app.repository.get(early.id).sent == 1 and app.repository.get(late.id).sent == 1
    assert app.timetable.next_at() is None


def test_a_moved_item_replaces_the_one_it_had() -> None:
    app = Reminders()
    r = Reminder(T0 + timedelta(minutes=5))
    app.save(r)
    r.move(T0 + timedelta(hours=1))
    app.save(r)
    app.clock.advance(600)
    assert app.loop().run_due() == 0
    assert app.timetable.next_at() == T0 + timedelta(hours=1)


def test_due_work_survives_a_restart(tmp_path: Any) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
           "SQLITE_DBNAME": str(tmp_path / "reminders.sqlite")}
    first = Reminders(env)
    r = Reminder(T0 + timedelta(minutes=5))
    first.save(r)
    del first
    restarted = Reminders(env, SettableClock(T0 + timedelta(minutes=6)))
    assert restarted.loop().run_due() == 1
    assert restarted.repository.get(r.id).sent == 1


def test_the_loop_wakes_for_the_next_item_when_the_clock_moves() -> None:
    app = Reminders()
    r = Reminder(T0 + timedelta(minutes=5))
    app.save(r)
    loop, stop = app.loop(), threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        app.clock.advance(299)
        app.wake.set()
        assert app.repository.get(r.id).sent == 0
        app.clock.advance(1)
        app.wake.set()
        eventually(lambda: app.repository.get(r.id).sent == 1, timeout=5)
    finally:
        stop.set()
        thread.join(5)


def test_failing_work_stays_due_and_is_offered_again() -> None:
    app = Reminders()
    r = Reminder(T0)
    app.save(r)
    calls: list[Due] = []

    def flaky(item: Due) -> None:
        calls.append(item)
        if len(calls) == 1:
            raise RuntimeError("the mail server is down")
        app.send(item)

    loop = DueLoop(app.timetable, app.clock, {"reminder": flaky}, app.wake, idle=0.05,
                   retry_after=0)
    assert loop.run_due() == 0 and loop.last_error is not None
    assert loop.run_due() == 1 and loop.last_error is None
    assert app.repository.get(r.id).sent == 1


def test_an_item_moved_many_times_is_due_once_at_its_last_time() -> None:
    app = Reminders()
    r = Reminder(T0 + timedelta(minutes=1))
    app.save(r)
    for minutes in range(2, 300):  # leftovers of earlier plans are dropped, not run
        r.move(T0 + timedelta(minutes=minutes))
        app.save(r)
    assert app.timetable.next_at() == T0 + timedelta(minutes=299)
    app.clock.advance(298 * 60)
    assert app.loop().run_due() == 0
    app.clock.advance(60)
    assert app.loop().run_due() == 1 and app.repository.get(r.id).sent == 1
