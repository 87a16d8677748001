"""A load from nothing (``shared/bulkload.py``) stores exactly the rows the general path
stores — every column, the state byte for byte — on SQLite and PostgreSQL, over a log
of creations, changes, several event types, events with audit metadata, values the two
JSON libraries might write differently, and old versions of an event that are upcast."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, event

from services.threshold_registry.application import ThresholdRegistry
from shared import bulkload, context
from shared.bulkload import Creation
from shared.readmodel import Column, StoredIndex, Table
from shared.store import ServiceApplication
from tests.integration.test_stored_read_models import an_estate

pytestmark = pytest.mark.integration


class Gadget(Aggregate):
    """A kind whose creation event is at its second version (the first had no
    ``extra``), with values of every sort."""

    class Made(Aggregate.Created):
        class_version = 2
        name: str
        size: Any
        owner: UUID | None
        at: datetime | None
        price: Decimal | None
        extra: Any

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["extra"] = "upcast"

    @event(Made)
    def __init__(self, name: str, size: Any = None, owner: UUID | None = None,
                 at: datetime | None = None, price: Decimal | None = None,
                 extra: Any = None) -> None:
        self.name = name
        self.tags: list[str] = []
        self.size = size
        self.owner = owner
        self.at = at
        self.price = price
        self.extra = extra
        self.note: str | None = None

    @event("Renamed")
    def rename(self, name: str) -> None:
        self.name = name

    @event("Noted")
    def annotate(self, note: str) -> None:
        self.note = note
        self.tags.append(note)


GADGET = Creation(Gadget.Made, ("name", ("tags", []), "size", "owner", "at", "price",
                                "extra", ("note", None)))
# What a stale declaration looks like: ``note`` is not what __init__ assigns.
STALE = Creation(Gadget.Made, ("name", ("tags", []), "size", "owner", "at", "price",
                               "extra", ("note", "")))


class Gadgets(ServiceApplication):
    def __init__(self, env: dict[str, str], creations: tuple[Creation, ...] = (GADGET,)
                 ) -> None:
        super().__init__(env)
        self.index = StoredIndex(self, "gadgets", [Table(Gadget, (
            Column("name", lambda g: g.name),
            Column("size", lambda g: g.size if isinstance(g.size, int | float) else None,
                   "number"),
            Column("at", lambda g: g.at, "time"),
            Column("owner", lambda g: g.owner),
            Column("tagged", lambda g: bool(g.tags), "bool", indexed=False)))],
            creations=creations)

    def close(self) -> None:
        self.index.close()
        super().close()


ODD_TEXTS = ["", "plain", "Zürich", "tab\there", "line\nbreak", 'quote " and \\ slash',
             "\x01\x1f\x7f", "\u2028\u2029", "😀 emoji", "{\"_type_\": \"x\"}"]
ODD_SIZES = [None, 0, -1, 2**63 - 1, 2**64 - 1, 2**64, 10**30, 1.5, 1e16, 1e-7, 0.1,
             True, [1, "a", None], {"k": [1, 2]}, {"_type_": "t", "_data_": "d", "x": 1}]


def gadget_log(app: Gadgets, count: int = 120) -> None:
    """Creations with odd values, some in a context (audit metadata), some changed in
    the same save and some later, and several saves (pages apart)."""
    zone = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    made: list[Gadget] = []
    for n in range(count):
        gadget = Gadget(
            name=ODD_TEXTS[n % len(ODD_TEXTS)],
            size=ODD_SIZES[n // 3 % len(ODD_SIZES)] if n % 3 == 0 else n,
            owner=uuid4() if n % 3 else None,
            at=[None, at + timedelta(minutes=n), (at + timedelta(hours=n)).astimezone(zone),
                datetime(2026, 1, 1, tzinfo=UTC)][n % 4],
            price=Decimal("9.50") if n % 5 == 0 else None,
            extra=[None, "x", None, "nul \x00 inside", {"deep": [1, {"deeper": None}]}][n % 5])
        if n % 7 == 0:
            gadget.rename(f"renamed {n}")  # a change in the creation's own save
        made.append(gadget)
        if n % 4 == 0:
            with context.bound(correlation=f"corr-{n}", who="tester"):
                app.save(gadget)
        else:
            app.save(gadget)
    for n, gadget in enumerate(made):
        if n % 11 == 0:
            gadget.annotate(f"later {n}")  # a change in a later save
            app.save(gadget)


def make_old(app: ServiceApplication, every: int = 6) -> None:
    """Rewrite some creation events as the first version stored them (no ``extra``, no
    class version): they are upcast when read."""
    import orjson

    topic = f"{Gadget.Made.__module__}:{Gadget.Made.__qualname__}"
    recorder: Any = app.recorder
    postgres = app.factory.__class__.__module__.startswith("eventsourcing.postgres")
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=True) as curs:
        if postgres:
            schema = recorder.datastore.schema
            name = f'"{schema}"."{table}"' if schema else f'"{table}"'
            curs.execute(f"SELECT notification_id AS n, state FROM {name} WHERE topic = %s",
                         (topic,))
        else:
            name = table
            curs.execute(f"SELECT rowid AS n, state FROM {name} WHERE topic = ?", (topic,))
        rows = curs.fetchall()
        for row in rows[::every]:
            state = orjson.loads(bytes(row["state"]))
            state.pop("extra")
            state.pop("class_version")
            mark = "%s" if postgres else "?"
            key = "notification_id" if postgres else "rowid"
            curs.execute(f"UPDATE {name} SET state = {mark} WHERE {key} = {mark}",
                         (app.mapper.transcoder.encode(state), row["n"]))


def every_row(index: StoredIndex) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    with index._db.transaction(write=False) as tx:
        for kind in index.tables:
            rows = tx.execute(f"SELECT * FROM {index.sql_table(kind)} ORDER BY id").fetchall()
            found[kind.__name__] = [tuple(bytes(v) if isinstance(v, memoryview) else v
                                          for v in dict(row).values()) for row in rows]
    found["counts"] = [(kind.__name__, index.count(kind)) for kind in index.tables]
    return found


def both_ways(index: StoredIndex) -> tuple[Any, Any, Any]:
    """The rows rebuilt the general way, then with the index's creations."""
    creations = index.creations
    index.creations = ()
    general = index.rebuild()
    rows = every_row(index)
    index.creations = creations
    fast = index.rebuild()
    assert fast.events == general.events
    assert fast.rows == general.rows
    return rows, every_row(index), fast


def test_gadgets_rebuilt_from_their_creations_are_the_rows_the_general_path_stores(
        store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    app = Gadgets(store_env)
    try:
        gadget_log(app)
        make_old(app)
        monkeypatch.setattr(bulkload, "PAGE", 13)  # changes a page or more after creation
        general, fast, report = both_ways(app.index)
        assert fast == general
        assert len(general["Gadget"]) == 120
        # Most rows came from their creation event; the odd ones took the general path.
        assert 30 < report.created < 120
        # And the rows are what the log says now.
        for gadget_id, *_ in general["Gadget"][:20]:
            assert app.index.get(UUID(gadget_id)).__dict__ == \
                app.repository.get(UUID(gadget_id)).__dict__
    finally:
        app.close()


def test_a_creation_that_no_longer_matches_its_aggregate_is_caught_and_left_out(
        store_env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    app = Gadgets(store_env, creations=(STALE,))
    try:
        gadget_log(app, 40)
        with caplog.at_level(logging.WARNING, logger="shared.bulkload"):
            general, fast, report = both_ways(app.index)
        assert fast == general
        assert report.created == 0
        assert "no longer stores what the general path does" in caplog.text
    finally:
        app.close()


def test_the_inventory_rebuilt_from_its_registrations_is_the_rows_the_general_path_stores(
        store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        with context.bound(correlation="migration", who="tester"):
            an_estate(registry, 60)
        for n in range(0, 60, 7):
            registry.update_purchased_offering(f"p-{n:04d}", {"site": f"moved {n}"})
        for n in range(3, 60, 9):
            registry.update_purchased_offering(f"p-{n:04d}", {"status": "terminated"})
        monkeypatch.setattr(bulkload, "PAGE", 17)
        general, fast, report = both_ways(registry.index)
        assert fast == general
        assert report.created >= 40
    finally:
        registry.close()
