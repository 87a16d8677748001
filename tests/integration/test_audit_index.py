"""The audit index (``shared/audit.py``) answers every audit query as a scan of the logs
did — over both of monitoring's logs, with ties in time across them, on SQLite and on
PostgreSQL — sees a write at once, survives a restart without replaying, and rebuilds to
the same answers."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanCreateTimestamp

from services.monitoring.application import Monitoring
from services.monitoring.domain import (
    MeasurementBatch,
    Quarantine,
    QuarantineRelease,
    WindowEvaluation,
)
from shared import audit, context
from shared.audit import audit_index, audit_indexes

pytestmark = pytest.mark.integration

BASE = datetime(2026, 3, 1, tzinfo=UTC)
CORRELATIONS = [f"corr-{n}" for n in range(8)]
ACTORS = ["alice", "bob", "bus:intake"]
BATCHES = [f"b-{n:02d}" for n in range(12)]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Events stamped with the times a test chooses (so they tie, across logs too)."""
    now = [BASE]
    monkeypatch.setattr(CanCreateTimestamp, "create_timestamp", staticmethod(lambda: now[0]))

    def set_to(moment: datetime) -> None:
        now[0] = moment

    return set_to


def some_history(app: Monitoring, rng: random.Random, set_time: Callable[[datetime], None],
                 events: int) -> None:
    """Batches and release requests in the intake log; evaluations and quarantines (raised,
    some released) in the outcomes log; under assorted correlation ids and actors, at
    times that often tie (whole seconds) and sometimes do not (microseconds)."""
    quarantines: list[Quarantine] = []
    named: set[str] = set()
    for n in range(events):
        moment = BASE + timedelta(seconds=rng.randrange(60))
        if rng.random() < 0.3:
            moment += timedelta(microseconds=rng.randrange(1, 1_000_000))
        set_time(moment)
        with context.bound(correlation=rng.choice([*CORRELATIONS, None]),
                           causation=rng.choice([None, f"cause-{n % 5}"]),
                           who=rng.choice([*ACTORS, None])):
            kind = rng.randrange(5)
            if kind == 0:
                app.save(MeasurementBatch(batch_id=f"{rng.choice(BATCHES)}-{n}",
                                          source="http:test", rows="[]", rejected=[]))
            elif kind == 1:  # a batch under one of the ids the queries ask for
                unused = [b for b in BATCHES if b not in named]
                named.add(batch_id := rng.choice(unused) if unused else f"only-{n}")
                app.save(MeasurementBatch(batch_id=batch_id, source="bus:x", rejected=[],
                                          rows='[["po","latency",1.0,2.0,0,"ok"]]'))
            elif kind == 2:
                app.outcomes.save(WindowEvaluation(
                    regime_id=UUID(int=rng.randrange(3)), parameter="latency",
                    scope_type="purchasedOffering", scope_id=f"po-{n}",
                    window_start=float(n), window_end=float(n + 3600),
                    result={"value": 1.0, "batchIds": rng.sample(BATCHES,
                                                                 rng.randrange(0, 4))}))
            elif kind == 3 or not quarantines:
                quarantine = Quarantine(partition="evaluator", kind="batch", key=f"k{n}",
                                        regime_id=None, parameter=None,
                                        batch_id=rng.choice(BATCHES), position=n,
                                        reason="broken")
                app.outcomes.save(quarantine)
                quarantines.append(quarantine)
            else:
                quarantine = quarantines.pop(rng.randrange(len(quarantines)))
                app.save(QuarantineRelease(quarantine_id=quarantine.id,
                                           partition="evaluator", key=quarantine.key,
                                           reason=None, requested_by="alice"))
                quarantine.resumed(position=n, reason=None, requested_by="alice")
                app.outcomes.save(quarantine)


def random_query(rng: random.Random, aggregates: list[UUID]) -> dict[str, Any]:
    q: dict[str, Any] = {}
    if rng.random() < 0.2:
        q["aggregateId"] = rng.choice([*aggregates, UUID(int=99)])
    if rng.random() < 0.4:
        q["eventType"] = rng.choice([
            "MeasurementBatch.Accepted", "Quarantine.*", "Quarantine.Released",
            "WindowEvaluation.*", "W*", "*", "", "Nothing.Here", "Quarantine",
            "QuarantineRelease.Requested", "MeasurementBatch.Accepted*"])
    if rng.random() < 0.4:
        q["correlationId"] = rng.choice([*CORRELATIONS, "", "unknown"])
    if rng.random() < 0.2:
        q["actor"] = rng.choice([*ACTORS, "", "nobody"])
    if rng.random() < 0.3:
        q["batchId"] = rng.choice([*BATCHES, "", "only-7", "none"])
    if rng.random() < 0.4:
        q["from_"] = BASE + timedelta(seconds=rng.randrange(-5, 65))
    if rng.random() < 0.4:
        q["to"] = BASE + timedelta(seconds=rng.randrange(-5, 65),
                                   microseconds=rng.choice([0, 0, 500_000]))
    return q


def scanned(app: Monitoring, q: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer of a scan, oldest first (as ``audit/events`` sorted it)."""
    return sorted(audit.scan(app, q), key=lambda r: r["eventTime"] or "")


def aggregates_of(app: Monitoring) -> list[UUID]:
    return [n.originator_id for store in app.stores() for n in store.notifications()]


def assert_same_answers(app: Monitoring, rng: random.Random, queries: int) -> None:
    aggregates = aggregates_of(app)
    matched = 0
    for _ in range(queries):
        q = random_query(rng, aggregates)
        offset, limit = rng.choice([0, 0, 3, 40]), rng.choice([0, 1, 7, 100, 1000])
        everything = scanned(app, q)
        assert audit.page(app, q, offset, limit) == (everything[offset:offset + limit],
                                                     len(everything)), q
        assert list(audit.matching(app, q)) == list(audit.scan(app, q)), q
        matched += bool(everything)
    assert matched > queries // 3  # the queries find something, not only nothing


def test_audit_queries_answer_from_the_index_exactly_as_the_scan(
        store_env: dict[str, str], clock: Callable[[datetime], None]) -> None:
    rng = random.Random(5)
    app = Monitoring(store_env)
    try:
        some_history(app, rng, clock, 400)
        assert_same_answers(app, rng, 200)
        # A query after a write sees it (the index catches up first).
        clock(BASE + timedelta(seconds=30))
        with context.bound(correlation="corr-late"):
            app.outcomes.save(WindowEvaluation(
                regime_id=UUID(int=1), parameter="latency", scope_type="offeringGroup",
                scope_id="g", window_start=0.0, window_end=1.0, result={"batchIds": ["late"]}))
        found, total = audit.page(app, {"correlationId": "corr-late"}, 0, 10)
        assert total == 1 and found[0]["data"]["result"]["batchIds"] == ["late"]
        assert audit.page(app, {"batchId": "late"}, 0, 10)[1] == 1
        # ... also a write made by another process (another application on the store).
        other = Monitoring(store_env)
        try:
            with context.bound(correlation="corr-other"):
                other.save(MeasurementBatch(batch_id="elsewhere", source="http:x",
                                            rows="[]", rejected=[]))
        finally:
            other.close()
        assert [r["data"]["batch_id"] for r in audit.page(
            app, {"correlationId": "corr-other"}, 0, 10)[0]] == ["elsewhere"]
        for index in audit_indexes(app):
            assert index.row_counts()["events"] == index.app.max_notification_id()
    finally:
        app.close()


def test_the_index_survives_a_restart_and_a_rebuild_answers_the_same(
        store_env: dict[str, str], clock: Callable[[datetime], None]) -> None:
    rng = random.Random(9)
    app = Monitoring(store_env)
    try:
        some_history(app, rng, clock, 200)
        aggregates = aggregates_of(app)
        before = [audit.page(app, random_query(random.Random(n), aggregates), 0, 1000)
                  for n in range(40)]
        heads = [store.max_notification_id() for store in app.stores()]
    finally:
        app.close()

    app = Monitoring(store_env)
    try:
        # Restarted: the stored position is the log's head, nothing is applied again.
        assert [audit_index(s).stored_position() for s in app.stores()] == heads
        assert [audit_index(s).catch_up() for s in app.stores()] == [0, 0]
        queries = [random_query(random.Random(n), aggregates) for n in range(40)]
        assert [audit.page(app, q, 0, 1000) for q in queries] == before
        assert_same_answers(app, rng, 50)

        reports = [index.rebuild() for index in audit_indexes(app)]
        assert [r.events for r in reports] == heads
        assert [r.rows for r in reports] == heads
        assert [audit.page(app, q, 0, 1000) for q in queries] == before
    finally:
        app.close()


def test_a_batch_is_found_wherever_an_event_names_it() -> None:
    data = {"batch_id": "a", "result": {"batchIds": ["b", "c"]},
            "evidence": [{"batchId": "d"}], "samples": [["x", 1]], "batch_ids": ("e",),
            "other": {"id": "f"}, "uuid": {"batchId": UUID(int=1)}}
    assert sorted(audit.batch_ids(data)) == sorted(["a", "b", "c", "d", "e", str(UUID(int=1))])


def test_an_audit_filter_with_a_nul_character_finds_nothing(
        store_env: dict[str, str], clock: Callable[[datetime], None]) -> None:
    """No recorded text has a NUL (PostgreSQL's cannot): such a filter matches nothing,
    as it would in a scan, instead of reaching the database as a 500."""
    app = Monitoring(store_env)
    try:
        some_history(app, random.Random(3), clock, 20)
        for q in ({"correlationId": "corr\x00"}, {"actor": "\x00"}, {"batchId": "b\x00"},
                  {"eventType": "Crossing.Raised\x00"}):
            assert audit.page(app, q, 0, 10) == ([], 0), q
            assert list(audit.scan(app, q)) == []
    finally:
        app.close()
