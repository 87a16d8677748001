"""What the stored read-model kit (shared/readmodel.py) gives scheduled work and lists of
lists: due-time columns and a timetable that finds what is due by an indexed query (the
in-memory timetable's answers, and its loop's exactly-once), tags for list-valued
attributes, and a listing's fixed conditions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.domain import Aggregate, event

from shared.readmodel import (
    Column,
    Listing,
    StoredIndex,
    StoredTimetable,
    Table,
    due_columns,
    tagged,
    tags,
)
from shared.scheduler import Due, DueLoop, SettableClock, Wakeup
from shared.store import ServiceApplication

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Reminder(Aggregate):
    """Due once (``at``) and, while ``nag`` is set, again every hour after it."""

    @event("Planned")
    def __init__(self, at: datetime, labels: list[str] | None = None) -> None:
        self.at: datetime | None = at
        self.nag: datetime | None = None
        self.labels = list(labels or [])
        self.sent = 0

    @event("Sent")
    def send(self) -> None:
        self.at, self.sent = None, self.sent + 1

    @event("Moved")
    def move(self, at: datetime) -> None:
        self.at = at

    @event("Nagging")
    def nag_at(self, at: datetime | None) -> None:
        self.nag = at


def reminder_due(r: Reminder) -> Iterator[Due]:
    if r.at is not None:
        yield Due(r.at, "reminder", r.id)
    if r.nag is not None:
        yield Due(r.nag, "nag", r.id)


LABELS = Column("labelTags", tags(lambda r: r.labels))


class Reminders(ServiceApplication):
    def __init__(self, env: dict[str, str] | None = None,
                 clock: SettableClock | None = None, limit: int = 500) -> None:
        super().__init__(env)
        self.clock = clock or SettableClock(T0)
        self.index = StoredIndex(self, "reminders", [Table(Reminder, (
            LABELS, Column("sent", lambda r: r.sent, "number"),
            *due_columns(reminder_due, ("reminder", "nag"))))])
        self.timetable = StoredTimetable(self.index, {Reminder: reminder_due}, limit=limit)
        self.wake = Wakeup()
        self.runs: list[Any] = []

    def send(self, item: Due) -> None:
        reminder: Reminder = self.repository.get(item.subject)
        if reminder.at is not None and reminder.at <= self.clock():
            reminder.send()
            self.save(reminder)
            self.runs.append(item.subject)

    def loop(self) -> DueLoop:
        return DueLoop(self.timetable, self.clock, {"reminder": self.send}, self.wake,
                       idle=0.05)

    def close(self) -> None:
        self.index.close()
        super().close()


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


def test_each_kind_of_item_has_its_own_column_and_a_moved_item_replaces_its_old_time(
        ) -> None:
    app = Reminders()
    r = Reminder(T0 + timedelta(minutes=5))
    app.save(r)
    r.move(T0 + timedelta(hours=1))
    r.nag_at(T0 + timedelta(minutes=30))
    app.save(r)
    app.clock.advance(600)
    assert app.loop().run_due() == 0
    assert app.timetable.next_at(["reminder"]) == T0 + timedelta(hours=1)
    assert app.timetable.next_at() == T0 + timedelta(minutes=30)
    assert [i.kind for i in app.timetable.items("nag")] == ["nag"]
    app.clock.advance(1800)
    assert [i.kind for i in app.timetable.due(app.clock())] == ["nag"]
    assert app.timetable.due(app.clock(), ["reminder"]) == []
    assert app.timetable.items("nothing") == []


def test_still_planned_tells_an_item_done_or_moved_from_one_left_as_it_was() -> None:
    app = Reminders()
    kept, done, moved = (Reminder(T0) for _ in range(3))
    app.save(kept, done, moved)
    items = {i.subject: i for i in app.timetable.due(T0)}
    done.send()
    moved.move(T0 + timedelta(minutes=1))
    app.save(done, moved)
    assert app.timetable.still_planned(items.values()) == [items[kept.id]]


def test_a_query_hands_out_at_most_its_limit_and_the_rest_next_time() -> None:
    app = Reminders(limit=3)
    app.save(*[Reminder(T0 + timedelta(seconds=n)) for n in range(7)])
    app.clock.advance(60)
    loop = app.loop()
    assert [loop.run_due() for _ in range(4)] == [3, 3, 1, 0]
    assert len(set(app.runs)) == len(app.runs) == 7


def test_due_work_survives_a_restart_without_replaying_the_log(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
           "SQLITE_DBNAME": str(tmp_path / "reminders.sqlite")}
    first = Reminders(env)
    r = Reminder(T0 + timedelta(minutes=5))
    first.save(r)
    assert first.timetable.next_at() == T0 + timedelta(minutes=5)
    first.close()
    restarted = Reminders(env, SettableClock(T0 + timedelta(minutes=6)))
    try:
        assert restarted.index.catch_up() == 0  # already applied, stored
        assert restarted.loop().run_due() == 1
        assert restarted.repository.get(r.id).sent == 1
    finally:
        restarted.close()


def test_two_loops_over_one_store_run_each_item_once(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
           "SQLITE_DBNAME": str(tmp_path / "reminders.sqlite")}
    clock = SettableClock(T0)
    apps = [Reminders(env, clock) for _ in range(2)]
    try:
        apps[0].save(*[Reminder(T0 + timedelta(seconds=n)) for n in range(40)])
        clock.advance(60)
        errors: list[BaseException] = []

        def run(app: Reminders) -> None:
            try:
                loop = app.loop()
                while app.timetable.due(clock()):
                    loop.run_due()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        runs = apps[0].runs + apps[1].runs
        assert len(runs) == len(set(runs)) == 40
    finally:
        for app in apps:
            app.close()


def test_tags_find_the_rows_whose_list_holds_a_value_exactly() -> None:
    app = Reminders()
    odd = ["a_b", "100%", "x|y", "Case"]
    first, second, third = (Reminder(T0, labels) for labels in (
        odd, ["a", "b", "case"], []))
    app.save(first, second, third)

    def holding(value: str) -> list[Any]:
        return [r.id for r in Listing(app.index, Reminder, conditions=[tagged(LABELS, value)])]

    for value in odd:
        assert holding(value) == [first.id], value
    assert holding("case") == [second.id] and holding("b") == [second.id]
    assert holding("x") == [] and holding("a%") == [] and holding("a") == [second.id]
    assert holding("") == []


def test_a_listing_keeps_its_conditions_and_is_read_by_place() -> None:
    app = Reminders()
    reminders = [Reminder(T0, [f"n{n % 2}"]) for n in range(5)]
    app.save(*reminders)
    even = Listing(app.index, Reminder, conditions=[tagged(LABELS, "n0")])
    assert len(even) == 3
    assert [r.id for r in even] == [reminders[0].id, reminders[2].id, reminders[4].id]
    assert even[-1].id == reminders[4].id and even[0].id == reminders[0].id


def test_a_read_scope_asks_the_log_once_and_still_sees_its_own_writes(tmp_path: Path
                                                                     ) -> None:
    """Routing one alert reads the index a dozen times; inside ``reading()`` the log's head
    is asked for once, this process's own saves are still seen, and another process's
    writes are seen by the next scope (and by every read outside one)."""
    path = str(tmp_path / "reminders.sqlite")
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    app, other = Reminders(env), Reminders(env)
    app.save(Reminder(T0))
    asked = []
    head = app.max_notification_id

    def counted() -> int:
        asked.append(1)
        return head()

    app.max_notification_id = counted  # type: ignore[method-assign]
    with app.index.reading():
        assert len(app.index.all(Reminder)) == 1
        mine = Reminder(T0 + timedelta(minutes=1))
        app.save(mine)
        other.save(Reminder(T0 + timedelta(minutes=2)))
        assert app.index.get(mine.id) is not None  # its own write
        assert len(app.index.all(Reminder)) == 2  # not yet the other process's
        for _ in range(10):
            app.timetable.due(T0 + timedelta(hours=1))
    assert len(asked) <= 2  # the scope's start (and its first catch-up)
    assert len(app.index.all(Reminder)) == 3
    with app.index.reading():
        assert len(app.index.all(Reminder)) == 3
    other.close()
    app.close()
