"""Saves that threads of one process make at the same moment commit together
(``ServiceApplication.save_grouped``, ``shared.store.GroupCommit``): each caller returns
once its own events are committed, each event keeps its own request's audit metadata, and
a save of the group that conflicts fails alone, the others committed. And a save commits
in one round trip on PostgreSQL, a conflicting one recording nothing.

Each test runs on SQLite and on PostgreSQL (``store_env``). To make a group form for
certain, the first commit is held until the other threads wait behind it (``Gate``: the
real recorder, its first insert delayed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, Tracking

from shared import context
from shared.store import DuplicateMessage, GroupCommit, ServiceApplication

THREADS = 6


class Answer(Aggregate):
    @event("Given")
    def __init__(self, who: str) -> None:
        self.who = who

    @event("Changed")
    def change(self, note: str) -> None:
        self.note = note


class Answers(ServiceApplication):
    name = "Answers"


@pytest.fixture
def app(store_env: dict[str, str]) -> Iterator[Answers]:
    answers = Answers(store_env)
    try:
        yield answers
    finally:
        answers.close()


class Gate:
    """The application's recorder, its first ``insert_events`` held until ``waiting``
    saves queue behind it; the size of every insert kept."""

    def __init__(self, recorder: Any, commit: GroupCommit, waiting: int) -> None:
        self.recorder, self.commit, self.waiting = recorder, commit, waiting
        self.sizes: list[int] = []

    def insert_events(self, stored: list[Any], **kwargs: Any) -> Any:
        if not self.sizes:
            deadline = threading.Event()
            for _ in range(500):  # 5 s at most
                with self.commit._cond:
                    if len(self.commit._waiting) >= self.waiting:
                        break
                deadline.wait(0.01)
        self.sizes.append(len(stored))
        return self.recorder.insert_events(stored, **kwargs)


def gated(app: Answers, waiting: int) -> Gate:
    commit = GroupCommit(app.recorder)
    gate = Gate(app.recorder, commit, waiting)
    commit.recorder = gate
    app._group_commit = commit
    return gate


def in_threads(work: list[Any]) -> list[Any]:
    """Run each callable in a thread of its own, all at once; their results or errors."""
    results: list[Any] = [None] * len(work)
    start = threading.Barrier(len(work))

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = work[n]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def answer_as(app: Answers, who: str) -> Any:
    def save() -> Any:
        given = Answer(who)
        with context.bound(who=f"customer:{who}", correlation=f"corr-{who}"):
            app.save_grouped(given)
        return given

    return save


def test_answers_saved_at_once_commit_together_each_with_its_own_audit(
        app: Answers, store_env: dict[str, str]) -> None:
    gate = gated(app, THREADS - 1)
    saved = in_threads([answer_as(app, f"c{n}") for n in range(THREADS)])
    assert all(isinstance(a, Answer) for a in saved), saved
    # the first alone (it held the others back), then every other one in one commit
    assert gate.sizes == [1, THREADS - 1]

    # durable: another application on the same store reads every one
    other = Answers(store_env)
    try:
        for given in saved:
            assert other.repository.get(given.id).who == given.who
        metas = {}
        for notification in other.notifications():
            found, meta = other.decode(notification)
            metas[found.originator_id] = meta
    finally:
        other.close()
    for given in saved:
        assert metas[given.id]["actor"] == f"customer:{given.who}"
        assert metas[given.id]["correlationId"] == f"corr-{given.who}"
    ids = [n.id for n in app.notifications()]
    assert ids == sorted(ids) and len(ids) == THREADS
    assert app.local_head == ids[-1]


def test_a_conflicting_save_in_a_group_fails_alone(app: Answers) -> None:
    first = Answer("c-stale")
    app.save(first)
    stale = app.repository.get(first.id)
    moved = app.repository.get(first.id)
    moved.change("saved first")
    app.save(moved)
    stale.change("saved on a stale copy")

    def conflicting() -> Any:
        with context.bound(who="customer:c-stale"):
            app.save_grouped(stale)
        return stale

    gate = gated(app, THREADS - 1)
    work = [answer_as(app, f"c{n}") for n in range(THREADS - 1)]
    work.insert(THREADS // 2, conflicting)
    results = in_threads(work)
    assert isinstance(results[THREADS // 2], IntegrityError)
    others = [r for n, r in enumerate(results) if n != THREADS // 2]
    assert all(isinstance(r, Answer) for r in others), results
    for given in others:
        assert app.repository.get(given.id).who == given.who
    assert app.repository.get(first.id).note == "saved first"
    # the group failed as one, then each of it was committed alone
    assert sum(gate.sizes[1:2]) > 1 and gate.sizes[2:] == [1] * (len(gate.sizes) - 2)
    assert len(list(app.notifications())) == 2 + THREADS - 1


def test_a_save_alone_is_not_held(app: Answers) -> None:
    given = Answer("c-alone")
    app.save_grouped(given)
    assert app.repository.get(given.id).who == "c-alone"


def test_a_conflicting_save_records_nothing_and_the_next_one_commits(app: Answers) -> None:
    given = Answer("c1")
    app.save(given)
    stale = app.repository.get(given.id)
    given.change("first")
    app.save(given)
    stale.change("second")
    with pytest.raises(IntegrityError):
        app.save(stale)
    tracking = Tracking("upstream", 7)
    other = Answer("c2")
    app.save_tracked(tracking, other)
    again = Answer("c3")
    with pytest.raises(DuplicateMessage):
        app.save_tracked(tracking, again)
    assert app.repository.get(given.id).note == "first"
    assert [n.originator_id for n in app.notifications()] == [given.id, given.id, other.id]
    assert app.is_tracked(tracking)
