"""Stored read models: the current state of a service's aggregates, kept in tables of the
service's own database by a tracked projection of its log.

Why stored: an index held in memory is rebuilt from the whole log at every start and
copied into every HTTP worker, so start-up time and memory grow with history. A stored
index is caught up from where it stopped, shared by every process of the service, and
answers lists with filters, sorts and paging from indexed columns.

How it stays right:

- **Tracked.** A batch of notifications is applied in one transaction together with the
  index's position (``rm_position``), so a crash repeats at most an uncommitted batch and
  nothing is applied twice. Processes that catch up at once serialise on that row
  (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
- **Read after write.** Every query first catches up to the log's head, as the in-memory
  index did, so a read that follows a write sees it, whichever process served the write.
- **Same answers.** A row keeps the aggregate's whole state (encoded as its snapshots are)
  beside the columns that lists filter and sort by; a query rebuilds the aggregates of the
  page it answers and the resource's schema dumps them, exactly as before. Filters and
  sorts on a column run in SQL with the TMF630 semantics of ``shared.http.listing``; any
  other attribute is still filtered in Python, after the SQL narrowed what it could.
- **Rebuildable.** ``slactl readmodel rebuild`` drops the tables and replays the log with a
  progress bar; a change of a table's columns (its *shape*) rebuilds it on the next start.
  A load from nothing takes ``shared.bulkload``'s path (big pages, creation events stored
  straight off their stored state): the same rows, several times faster.
- **Due work and lists in lists.** :func:`due_columns` keep when each kind of an
  aggregate's scheduled work is due as an indexed column, and a :class:`StoredTimetable`
  answers a ``shared.scheduler.DueLoop`` from them; :func:`tags` keep a list-valued
  attribute so :func:`tagged` finds the rows holding one value.

A hot path that cannot afford a query per lookup (monitoring's intake checks every sample
against its replicas) keeps a :class:`Resident`: the kinds of a stored index held in
memory, loaded from the stored rows at start (what exists, not its history) and followed
from the log in memory from there. Only for kinds bounded by the estate.

Embedded, the tables live in ``<service>.views.sqlite`` beside the service's log; on
PostgreSQL in the service's schema (``rm_<index>_<kind>``), on the store's own pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Snapshot

from shared.bulkload import Creation, Made
from shared.http.errors import ApiError
from shared.store import AggregateIndex, ServiceApplication, topics_of

ColumnKind = Literal["text", "number", "time", "bool"]
NULLS = {"null", ""}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Column:
    """One attribute a list filters or sorts by, read from the aggregate.

    ``name`` is the attribute's name on the wire (what ``attr=`` and ``sort=`` name); a
    column that is not on the wire (say, ``retired``) only serves a view's fixed
    condition. ``kind`` gives the comparison: text (code point order), number, time
    (compared as instants; stored as epoch seconds) or bool."""

    name: str
    read: Callable[[Any], Any]
    kind: ColumnKind = "text"
    indexed: bool = True  # False: filtered in SQL, but no index to keep up

    @property
    def sql(self) -> str:
        """Its SQL name: ``c_`` and the name in snake case (PostgreSQL folds case)."""
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name)
        return "c_" + re.sub(r"[^0-9a-z_]", "_", snake.lower())

    def value(self, aggregate: Any) -> Any:
        return to_stored(self.read(aggregate), self.kind)

    def converter(self) -> Callable[[Any], Any]:
        """``value`` without the per-call dispatch on kind (it runs for every column of
        every row a batch stores)."""
        read = self.read
        if self.kind == "text":
            return lambda a: None if (v := read(a)) is None else v if type(v) is str \
                else str(v)
        if self.kind == "number":
            return lambda a: None if (v := read(a)) is None else float(v)
        if self.kind == "bool":
            return lambda a: None if (v := read(a)) is None else int(bool(v))
        return lambda a: to_stored(read(a), "time")


@dataclass(frozen=True)
class Table:
    """The aggregates of one kind, and the columns their lists need.

    ``orders``: the lists a large table is usually asked for, as composite indexes — each
    a tuple of column names, the filters' equality columns first and the sort's column
    last (``("customerId", "startDate")``: one customer's items by start date), each
    index ending in ``seq``, the unique tiebreaker every order ends with. Such a list is
    read in order from its index and stops at the page, instead of sorting every item
    that matched; the index also answers the total (up to :data:`COUNT_CAP`) from itself
    alone. Every ``indexed`` column still has its own index, on (column, ``seq``)."""

    kind: type
    columns: tuple[Column, ...] = ()
    orders: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        for order in self.orders:
            unknown = [name for name in order if self.column(name) is None]
            if unknown or not order:
                raise ValueError(f"{self.kind.__name__}: an order names no column or "
                                 f"unknown ones: {order!r}")

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


#: How far a list's total is counted: a filter matching more items than this answers
#: without ``X-Total-Count`` (and with ``X-Total-Count-At-Least``), rather than reading
#: every matching row to count them. Lists without a filter read their exact total from
#: the row count kept with the rows, whatever their size.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class AtLeast:
    """A list's total that was not counted to its end: at least ``n`` items match (more
    than :data:`COUNT_CAP`). Never shown as ``X-Total-Count``, which is exact."""

    n: int


def to_stored(value: Any, kind: ColumnKind) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "number":
        return float(value)
    if kind == "time":
        moment = value if isinstance(value, datetime) else _parse_time(str(value))
        return _epoch(moment)
    return str(value)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:  # a zone-less time is compared as UTC, like the lists do
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds()


def query_value(raw: str, kind: ColumnKind) -> Any:
    """A query's value as the column stores it; ``ValueError`` if it cannot be one."""
    if kind == "bool":
        if raw.lower() not in {"true", "false"}:
            raise ValueError("expected true or false")
        return int(raw.lower() == "true")
    if kind == "number":
        return float(raw)
    if kind == "time":
        return _epoch(_parse_time(raw))
    if "\x00" in raw:  # no stored text has one (PostgreSQL's text cannot)
        raise ValueError("a NUL character")
    return raw


# --- the database ---------------------------------------------------------------------
class _Database:
    """The few statements a stored index needs, on SQLite or PostgreSQL (``?`` marks)."""

    postgres = False

    def transaction(self, write: bool) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def qualified(self, table: str) -> str:
        return f'"{table}"'

    def close(self) -> None:  # pragma: no cover - nothing to close by default
        pass

    def analyse(self, tables: list[str]) -> None:
        """Gather the planner's statistics of freshly loaded tables: without them a
        filter on a column of a million rows can be planned as a scan of the sort's
        index (seconds instead of milliseconds)."""


class _SQLite(_Database):
    """A file of its own beside the service's log; one connection per thread (WAL lets
    readers go on while one writer catches up). Without a file (a store in memory, as
    unit tests use): one database in memory, one connection, one transaction at a time."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._memory_lock = threading.RLock() if path is None else None
        self._memory: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path or ":memory:", timeout=60, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        if self.path is not None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self.path is None:
            if self._memory is None:
                self._memory = self._connect()
            return self._memory
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def analyse(self, tables: list[str]) -> None:
        with self.transaction(write=True) as tx:
            for table in tables:
                tx.execute(f"ANALYZE {table}")

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Any]:
        with self._memory_lock or contextlib.nullcontext():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Cursor(conn.cursor(), postgres=False)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
        self._memory = None


class _Postgres(_Database):
    """The service's own schema, on the store's connection pool (no connections of its
    own: a service's processes already hold as many as PostgreSQL should give them)."""

    postgres = True

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore

    def qualified(self, table: str) -> str:
        return f'"{self.datastore.schema}"."{table}"' if self.datastore.schema else f'"{table}"'

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=write) as curs:
            yield _Cursor(curs, postgres=True)

    def analyse(self, tables: list[str]) -> None:
        """VACUUM ANALYZE, outside a transaction: statistics for the planner, and the
        visibility map that lets a count be answered from an index alone."""
        with self.datastore.get_connection() as conn:
            autocommit = conn.autocommit
            conn.autocommit = True
            try:
                for table in tables:
                    conn.execute(f"VACUUM (ANALYZE) {table}")
            finally:
                conn.autocommit = autocommit


class _Cursor:
    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cursor, self._postgres = cursor, postgres

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(self._sql(statement), tuple(params))
        return self

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(statement), [tuple(r) for r in rows])

    def copy(self, statement: str, rows: Sequence[Sequence[Any]],
             types: Sequence[str] | None = None) -> None:
        """PostgreSQL's COPY … FROM STDIN of these rows; with the columns' ``types``, in
        the binary format (``statement`` says ``(FORMAT BINARY)``): nothing to escape,
        no state written out in hexadecimal and parsed back."""
        with self._cursor.copy(statement) as copy:
            if types is not None:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


def database_of(app: ServiceApplication) -> _Database:
    """Where an application's stored indexes live: its PostgreSQL schema, or a SQLite
    file beside its log."""
    recorder: Any = app.recorder
    if app.factory.__class__.__module__.startswith("eventsourcing.postgres"):
        return _Postgres(recorder.datastore)
    name = app.env.get("SQLITE_DBNAME") or ""
    if not name or ":memory:" in name or name.startswith("file:"):
        return _SQLite(None)  # a store in memory: so is its index
    path = Path(name)
    return _SQLite(path.with_name(f"{path.stem}.views{path.suffix or '.sqlite'}"))


# --- the index --------------------------------------------------------------------------
@dataclass
class RebuildReport:
    events: int = 0
    rows: int = 0
    seconds: float = 0.0
    created: int = 0  # rows stored straight from their creation event (shared.bulkload)


class TrackedProjection:
    """What a stored index and an event index share: a log applied in batches after a
    position kept with the rows (``rm_position``, one row per index), a *shape* digest
    whose change rebuilds the tables, and bulk loading (the secondary indexes dropped
    while a load from nothing runs, built once at the end, statistics gathered).

    A subclass gives its tables (``_tables_ddl``, ``_indexes_ddl``, ``_drop_tables``),
    how a batch is applied (``_apply_batch``), what it analyses and how many rows it has."""

    POSITIONS = "rm_position"
    BULK = 50_000  # from nothing, at least this far behind: load first, index after

    def __init__(self, app: ServiceApplication, name: str, batch: int) -> None:
        self.app, self.name, self.batch = app, name, batch
        self._db = database_of(app)
        self._position = 0  # what this process knows to be applied
        self._created = 0  # rows the last load from nothing made from creation events
        self._lock = threading.Lock()
        self._scope = threading.local()  # a thread's read scope: the log's head at its start

    # --- what a subclass gives -----------------------------------------------------------
    def _tables_ddl(self) -> list[str]:
        raise NotImplementedError

    def _indexes_ddl(self) -> list[str]:
        raise NotImplementedError

    def _drop_tables(self, tx: Any) -> None:
        raise NotImplementedError

    def _apply_batch(self, head: int) -> tuple[int, int]:
        raise NotImplementedError

    def _analysed(self) -> list[str]:
        raise NotImplementedError

    def _row_total(self) -> int:
        raise NotImplementedError

    def _after_tables(self, tx: Any) -> None:
        """Hook, in the set-up's transaction, once the tables exist."""

    def _emptied(self, tx: Any) -> None:
        """Hook, in a rebuild's transaction, once the tables are made again empty."""

    def _bulk_apply(self, head: int, progress: Callable[[int, int], None] | None) -> int:
        """Hook, for a load from nothing: apply what it can faster than batch by batch
        (returns how many events; the batches carry on from the position it left)."""
        return 0

    def _reset(self) -> None:
        """The tables made again empty (without their secondary indexes), the position
        back to 0, in one transaction."""
        with self._db.transaction(write=True) as tx:
            self._drop_tables(tx)
            for statement in self._tables_ddl():
                tx.execute(statement)
            self._emptied(tx)
            tx.execute(f"UPDATE {self._db.qualified(self.POSITIONS)} SET position = 0, "
                       "shape = ? WHERE name = ?", (self.shape, self.name))
            self._position = 0

    # --- tables ------------------------------------------------------------------------
    def _ddl(self) -> list[str]:
        return self._tables_ddl() + self._indexes_ddl()

    @property
    def shape(self) -> str:
        """A digest of the tables' definitions: a changed one is rebuilt."""
        return hashlib.sha256("\n".join(self._ddl()).encode()).hexdigest()[:16]

    def _setup(self) -> None:
        """Make the tables and the position, in one transaction. A changed shape, or a
        log behind the index (the log was replaced: a store restored from a backup, a
        data directory wiped but for this file), drops the tables, to be rebuilt."""
        positions = self._db.qualified(self.POSITIONS)
        with self._db.transaction(write=True) as tx:
            if self._db.postgres:  # processes starting at once would race to create them
                key = int.from_bytes(hashlib.sha256(
                    f"readmodel:{positions}".encode()).digest()[:8], signed=True)
                tx.execute("SELECT pg_advisory_xact_lock(?)", (key,))
            tx.execute(f"CREATE TABLE IF NOT EXISTS {positions} (name TEXT PRIMARY KEY, "
                       "position BIGINT NOT NULL, shape TEXT NOT NULL)")
            row = tx.execute(f"SELECT position, shape FROM {positions} WHERE name = ?",
                             (self.name,)).fetchone()
            if row is not None and (row["shape"] != self.shape or
                                    int(row["position"]) > self.app.max_notification_id()):
                self._drop_tables(tx)
                row = None
            for statement in self._ddl():
                tx.execute(statement)
            self._after_tables(tx)
            if row is None:
                tx.execute(f"DELETE FROM {positions} WHERE name = ?", (self.name,))
                tx.execute(f"INSERT INTO {positions} (name, position, shape) VALUES (?, 0, ?)",
                           (self.name, self.shape))

    def _drop_indexes(self) -> None:
        with self._db.transaction(write=True) as tx:
            for statement in self._indexes_ddl():
                name = statement.split('"')[1]  # CREATE INDEX IF NOT EXISTS "<name>" ON …
                tx.execute(f"DROP INDEX IF EXISTS {self._db.qualified(name)}")

    def _create_indexes(self, analyse: bool = True) -> None:
        with self._db.transaction(write=True) as tx:
            for statement in self._indexes_ddl():
                tx.execute(statement)
        if analyse:
            self._db.analyse(self._analysed())

    def close(self) -> None:
        self._db.close()

    # --- keeping up -----------------------------------------------------------------------
    @property
    def position(self) -> int:
        return self._position

    def stored_position(self) -> int:
        with self._db.transaction(write=False) as tx:
            row = tx.execute(f"SELECT position FROM {self._db.qualified(self.POSITIONS)} "
                             "WHERE name = ?", (self.name,)).fetchone()
        return int(row["position"]) if row else 0

    def catch_up(self, progress: Callable[[int, int], None] | None = None,
                 bulk: bool | None = None) -> int:
        """Apply what the log recorded since the stored position; returns how many
        events it applied. Cheap when nothing is new: one look at the log's head.

        From an empty index far behind its log (a first start on an existing log, a
        rebuild: ``bulk``), the secondary indexes are dropped while it loads and made
        again at the end: building an index once is much cheaper than keeping it up row
        by row."""
        head = self._scoped_head()
        if head is None:
            head = self.app.max_notification_id()
        if head <= self._position:
            return 0
        applied = 0
        with self._lock:
            if head <= self._position and bulk is None:
                return 0  # another thread caught up while this one waited
            if bulk is None:
                bulk = self.stored_position() == 0 and head >= self.BULK
            if bulk:
                self._drop_indexes()
            try:
                if bulk:
                    applied += self._bulk_apply(head, progress)
                while True:
                    done, position = self._apply_batch(head)
                    applied += done
                    self._position = max(self._position, position)
                    if progress is not None:
                        progress(position, head)
                    if position >= head:
                        break
            finally:
                if bulk:
                    self._create_indexes()
        if applied >= self.BULK and not bulk:  # a long way caught up: fresh statistics
            self._db.analyse(self._analysed())
        return applied

    def _scoped_head(self) -> int | None:
        """Inside a read scope of this thread, the head to catch up to without asking the
        log: the head at the scope's start, or this process's own newer writes."""
        start = getattr(self._scope, "head", None)
        if start is None:
            return None
        return max(start, self.app.local_head)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One unit of work's reads (routing one alert, flushing one group): the index
        catches up once, at the start, and the queries inside ask the log for its head no
        more — each would be a round trip and, when several loops share the index, a wait
        on the others' catch-ups. What this process writes inside the scope is still seen
        (``ServiceApplication.local_head``); what other processes write after its start
        is seen by the next scope. Scopes nest (the outermost one counts)."""
        if getattr(self._scope, "head", None) is not None:
            yield
            return
        head = self.app.max_notification_id()
        self.catch_up()
        self._scope.head = head
        try:
            yield
        finally:
            self._scope.head = None

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> RebuildReport:
        """Drop the tables and apply the whole log again (the position back to 0), the
        rows first and the secondary indexes once at the end."""
        import time

        started = time.perf_counter()
        with self._lock:
            self._reset()
            self._created = 0
        events = self.catch_up(progress, bulk=True)
        # (when the log is empty catch_up did nothing; else the indexes exist, analysed)
        self._create_indexes(analyse=False)
        return RebuildReport(events=events, rows=self._row_total(),
                             seconds=time.perf_counter() - started, created=self._created)


class StoredIndex(TrackedProjection):
    """The current state of every aggregate of some kinds, stored and tracked.

    ``name`` names the index in its database (a service may keep several, over its logs);
    ``tables`` the kinds it keeps and their columns. ``batch``: notifications applied per
    transaction. ``creations``: creation events a load from nothing (a rebuild) stores
    straight off their stored state (``shared.bulkload``)."""

    # Each table's number of rows, kept with the rows: a list's X-Total-Count without a
    # filter is read, not counted (COUNT(*) reads every row of a million).
    ROWS = "rm_rows"
    #: How far a filtered list's total is counted (:meth:`Listing.total`).
    count_cap = COUNT_CAP
    #: At most how many items a list reads whole to filter or sort them in Python, by
    #: an attribute without a column (more: a 400 asking for a narrower query).
    fallback_cap = COUNT_CAP

    def __init__(self, app: ServiceApplication, name: str, tables: Sequence[Table],
                 batch: int = 1000, creations: Sequence[Creation] = ()) -> None:
        super().__init__(app, name, batch)
        self.tables = {table.kind: table for table in tables}
        #: Creation events a load from nothing stores straight off their stored state
        #: (``shared.bulkload``): the rows the general path stores, much faster.
        self.creations = tuple(creations)
        self._topics = topics_of(list(self.tables))
        self._owner: dict[type, Table | None] = {}
        self._converters: dict[type, list[Callable[[Any], Any]]] = {}
        self._kind_topics: dict[type, str] = {}
        self._setup()

    # --- schema -----------------------------------------------------------------------
    def table_name(self, table: Table) -> str:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", table.kind.__name__).lower()
        return f"rm_{self.name}_{snake}"

    def _tables_ddl(self) -> list[str]:
        pg = self._db.postgres
        blob = "BYTEA" if pg else "BLOB"
        text = 'TEXT COLLATE "C"' if pg else "TEXT"
        types = {"text": text, "number": "DOUBLE PRECISION" if pg else "REAL",
                 "time": "DOUBLE PRECISION" if pg else "REAL", "bool": "INTEGER"}
        statements = []
        for table in self.tables.values():
            q = self._db.qualified(self.table_name(table))
            columns = "".join(f", {c.sql} {types[c.kind]}" for c in table.columns)
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {q} (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, "
                f"version BIGINT NOT NULL, topic TEXT NOT NULL, state {blob} NOT NULL"
                f"{columns})")
        return statements

    @property
    def shape(self) -> str:
        """A digest of the tables and their columns' indexes: a changed one is rebuilt.
        The orders' indexes are not part of it: one a release adds is made on the next
        start where missing (``CREATE INDEX IF NOT EXISTS``, seconds at a million rows),
        not by replaying the log."""
        ddl = self._tables_ddl() + self._column_indexes_ddl()
        return hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:16]

    def _indexes_ddl(self) -> list[str]:
        return self._column_indexes_ddl() + self._order_indexes_ddl()

    def _column_indexes_ddl(self) -> list[str]:
        """The secondary indexes: the default order (``seq``) and each indexed column
        (with ``seq``, so a filtered list comes out in order)."""
        statements = []
        for table in self.tables.values():
            name = self.table_name(table)
            q = self._db.qualified(name)
            statements.append(f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}_seq" ON {q} (seq)')
            for c in table.columns:
                if c.indexed:
                    statements.append(f'CREATE INDEX IF NOT EXISTS "{name}_{c.sql}" '
                                      f"ON {q} ({c.sql}, seq)")
        return statements

    def _order_indexes_ddl(self) -> list[str]:
        """The composite indexes of each table's ``orders`` (each ending in ``seq``)."""
        statements = []
        for table in self.tables.values():
            name = self.table_name(table)
            q = self._db.qualified(name)
            for order in table.orders:
                keys = [table.column(n).sql for n in order]  # type: ignore[union-attr]
                # (a digest: the columns' names could pass PostgreSQL's 63 characters)
                digest = hashlib.sha256(",".join(keys).encode()).hexdigest()[:10]
                statements.append(f'CREATE INDEX IF NOT EXISTS "{name}_o{digest}" '
                                  f"ON {q} ({', '.join(keys)}, seq)")
        return statements

    def _rows_table(self, tx: Any) -> str:
        """The table of row counts (made if missing), by its qualified name."""
        rows = self._db.qualified(self.ROWS)
        tx.execute(f"CREATE TABLE IF NOT EXISTS {rows} (tbl TEXT PRIMARY KEY, "
                   "n BIGINT NOT NULL)")
        return rows

    def _after_tables(self, tx: Any) -> None:
        """Each table's row count, counted once for a table that has none kept yet."""
        rows = self._rows_table(tx)
        for table in self.tables.values():
            name = self.table_name(table)
            if tx.execute(f"SELECT n FROM {rows} WHERE tbl = ?", (name,)).fetchone() is None:
                tx.execute(f"INSERT INTO {rows} (tbl, n) SELECT ?, COUNT(*) FROM "
                           f"{self._db.qualified(name)}", (name,))

    def sql_table(self, kind: type) -> str:
        """The qualified name of a kind's table (for a subclass's own statements)."""
        return self._db.qualified(self.table_name(self.tables[kind]))

    def _drop_tables(self, tx: Any) -> None:
        rows = self._rows_table(tx)
        for table in self.tables.values():
            name = self.table_name(table)
            tx.execute(f"DROP TABLE IF EXISTS {self._db.qualified(name)}")
            tx.execute(f"DELETE FROM {rows} WHERE tbl = ?", (name,))

    def _apply_batch(self, head: int) -> tuple[int, int]:
        """One transaction: lock the position, apply up to ``batch`` notifications after
        it, store the rows and the new position."""
        positions = self._db.qualified(self.POSITIONS)
        lock = " FOR UPDATE" if self._db.postgres else ""
        with self._db.transaction(write=True) as tx:
            if self._db.postgres:
                # The rows and the position commit together: a batch a crash loses is
                # only applied again, so it need not wait for the disk.
                tx.execute("SET LOCAL synchronous_commit TO OFF")
            row = tx.execute(f"SELECT position FROM {positions} WHERE name = ?{lock}",
                             (self.name,)).fetchone()
            position = int(row["position"]) if row else 0
            if position >= head:
                return 0, position
            page = self.app.recorder.select_notifications(
                start=position, limit=self.batch, inclusive_of_start=False,
                topics=self._topics, stop=head)
            applied = self._apply(tx, page)
            position = page[-1].id if len(page) == self.batch else head
            tx.execute(f"UPDATE {positions} SET position = ? WHERE name = ?",
                       (position, self.name))
        return applied, position

    def _bulk_apply(self, head: int, progress: Callable[[int, int], None] | None) -> int:
        from shared.bulkload import bulk_apply

        return bulk_apply(self, head, progress)

    def _apply(self, tx: Any, page: Sequence[Any], made: Sequence[Made] = (),
               fresh: bool = False) -> int:
        """Apply notifications (and aggregates a load from nothing made from their
        creation events, ``shared.bulkload``) in the batch's transaction; returns how
        many events changed an aggregate. ``fresh``: what ``made`` holds has no row yet."""
        changed: dict[UUID, tuple[Table, Any, int]] = {}
        added: dict[type, int] = {}
        applied = 0
        events = []
        for notification in page:
            event: Any = self.app.mapper.to_domain_event(notification)
            table = self._table_of(type(event))
            if table is not None:
                events.append((notification.id, table, event))
        # An aggregate's first event creates it: nothing stored to load for it (nor for
        # its later events in the same batch).
        created = {e.originator_id for _, _, e in events if e.originator_version == 1}
        current = self._load(tx, [(t, e.originator_id) for _, t, e in events
                                  if e.originator_version > 1
                                  and e.originator_id not in created])
        new: set[UUID] = set()
        for seq, table, event in events:
            before = changed.get(event.originator_id)
            aggregate = before[1] if before else current.get(event.originator_id)
            aggregate = event.mutate(aggregate)
            if aggregate is None:
                continue
            first = before[2] if before else (
                current_seq(current, event.originator_id) or seq)
            if before is None and event.originator_id not in current:
                added[table.kind] = added.get(table.kind, 0) + 1
                new.add(event.originator_id)
            changed[event.originator_id] = (table, aggregate, first)
            applied += 1
        states: dict[UUID, tuple[bytes, str]] = {}
        for one in made:
            table = self.tables[type(one.aggregate)]
            changed[one.aggregate.id] = (table, one.aggregate, one.seq)
            states[one.aggregate.id] = (one.state, one.oid)
            added[table.kind] = added.get(table.kind, 0) + 1
            new.add(one.aggregate.id)
            applied += 1
        aggregates = [aggregate for _, aggregate, _ in changed.values()]
        self.storing(tx, aggregates)
        self._store(tx, changed.values(), states, new if fresh else ())
        tx.executemany(f"UPDATE {self._db.qualified(self.ROWS)} SET n = n + ? "
                       "WHERE tbl = ?",
                       [(n, self.table_name(self.tables[k])) for k, n in added.items()])
        self.changed(tx, aggregates)
        return applied

    def storing(self, tx: Any, aggregates: list[Any]) -> None:
        """Hook, in the batch's transaction, before its rows are stored: a subclass looks
        up what derived columns need (e.g. the groups of the offerings they name)."""

    def changed(self, tx: Any, aggregates: list[Any]) -> None:
        """Hook, in the batch's transaction: a subclass keeps derived columns of other
        rows (e.g. a purchased offering's group, which is its offering's)."""

    def _table_of(self, event_class: type) -> Table | None:
        if event_class not in self._owner:
            owner = event_class.__qualname__.rpartition(".")[0]
            self._owner[event_class] = next(
                (t for kind, t in self.tables.items()
                 if kind.__qualname__ == owner and issubclass(event_class, kind.Event)), None)
        return self._owner[event_class]

    def _load(self, tx: Any, wanted: list[tuple[Table, UUID]]) -> _Loaded:
        loaded = _Loaded()
        by_table: dict[Table, list[str]] = {}
        for table, aggregate_id in wanted:
            by_table.setdefault(table, []).append(str(aggregate_id))
        for table, ids in by_table.items():
            name = self._db.qualified(self.table_name(table))
            for start in range(0, len(ids), 500):
                chunk = sorted(set(ids[start:start + 500]))
                marks = ",".join("?" * len(chunk))
                for row in tx.execute(f"SELECT id, seq, version, topic, state FROM {name} "
                                      f"WHERE id IN ({marks})", chunk).fetchall():
                    loaded.keep(self._aggregate(row), int(row["seq"]))
        return loaded

    def _aggregate(self, row: Any) -> Any:
        state = self.app.mapper.transcoder.decode(bytes(row["state"]))
        snapshot = Snapshot(originator_id=UUID(row["id"]),  # type: ignore[call-arg]
                            originator_version=int(row["version"]), timestamp=_EPOCH,
                            topic=row["topic"], state=state)
        return snapshot.mutate(None)

    def _store(self, tx: Any, rows: Any,
               states: Mapping[UUID, tuple[bytes, str]] | None = None,
               new: Collection[UUID] = ()) -> None:
        """Upsert the rows of these aggregates; ``states``: rows' states already encoded,
        with the id as text (by ``shared.bulkload``); ``new``: aggregates known to have
        no row yet (copied straight into the table on PostgreSQL: nothing to update)."""
        encode = self.app.mapper.transcoder.encode
        states = states or {}
        # (keyed by kind: a Table's hash walks every column, for every row)
        by_table: dict[type, tuple[Table, list[list[Any]], list[list[Any]]]] = {}
        for table, aggregate, seq in rows:
            converters = self._converters.get(table.kind)
            if converters is None:
                converters = self._converters[table.kind] = [
                    c.converter() for c in table.columns]
            known = states.get(aggregate.id)
            if known is None:
                snapshot = Snapshot.take(aggregate)
                topic, state, text = snapshot.topic, encode(snapshot.state), str(aggregate.id)
            else:
                (state, text), topic = known, self._topic_of(type(aggregate))
            entry = by_table.get(table.kind)
            if entry is None:
                entry = by_table[table.kind] = (table, [], [])
            entry[2 if aggregate.id in new else 1].append(
                [text, seq, aggregate.version, topic, state,
                 *(convert(aggregate) for convert in converters)])
        for table, values, new_values in by_table.values():
            names = ["id", "seq", "version", "topic", "state"] + [c.sql for c in table.columns]
            updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
            target = self._db.qualified(self.table_name(table))
            if new_values and self._db.postgres:
                binary = {"text": "text", "number": "float8", "time": "float8",
                          "bool": "int4"}
                tx.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)",
                        new_values, ["text", "int8", "int8", "text", "bytea",
                                     *(binary[c.kind] for c in table.columns)])
            elif new_values:
                values = new_values + values
            if self._db.postgres and len(values) > 20:
                # Many rows: COPY them into a staging table and upsert from it in one
                # statement (several times faster than a statement per row).
                stage = f"rm_stage_{self.shape[:8]}_{self.table_name(table)}"[:63]
                tx.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE {target}) '
                           "ON COMMIT DELETE ROWS")
                tx.copy(f'COPY "{stage}" ({", ".join(names)}) FROM STDIN', values)
                tx.execute(f"INSERT INTO {target} ({', '.join(names)}) SELECT "
                           f'{", ".join(names)} FROM "{stage}" '
                           f"ON CONFLICT (id) DO UPDATE SET {updates}")
                continue
            tx.executemany(
                f"INSERT INTO {target} ({', '.join(names)}) VALUES "
                f"({', '.join('?' * len(names))}) ON CONFLICT (id) DO UPDATE SET {updates}",
                values)

    def _topic_of(self, kind: type) -> str:
        topic = self._kind_topics.get(kind)
        if topic is None:
            from eventsourcing.utils import get_topic

            topic = self._kind_topics[kind] = get_topic(kind)
        return topic

    def state(self, kinds: Sequence[type]) -> tuple[int, list[Any]]:
        """Every aggregate of some kinds (oldest first) and the position of the log they
        are as of, read together: no catch-up can commit in between (it waits on the
        position row, ``FOR SHARE`` on PostgreSQL; SQLite reads one snapshot)."""
        positions = self._db.qualified(self.POSITIONS)
        lock = " FOR SHARE" if self._db.postgres else ""
        found: list[Any] = []
        with self._db.transaction(write=False) as tx:
            row = tx.execute(f"SELECT position FROM {positions} WHERE name = ?{lock}",
                             (self.name,)).fetchone()
            position = int(row["position"]) if row else 0
            for kind in kinds:
                rows = tx.execute("SELECT id, seq, version, topic, state FROM "
                                  f"{self._db.qualified(self.table_name(self.tables[kind]))}"
                                  " ORDER BY seq").fetchall()
                found.extend(self._aggregate(r) for r in rows)
        return position, found

    # --- rebuilding ---------------------------------------------------------------------
    def _emptied(self, tx: Any) -> None:
        for table in self.tables.values():
            tx.execute(f"INSERT INTO {self._db.qualified(self.ROWS)} (tbl, n) "
                       "VALUES (?, 0)", (self.table_name(table),))

    def _analysed(self) -> list[str]:
        return [self.sql_table(kind) for kind in self.tables]

    def _row_total(self) -> int:
        return sum(self.count(kind) for kind in self.tables)

    # --- queries --------------------------------------------------------------------------
    def count(self, kind: type) -> int:
        """How many rows a kind's table has (kept with them, not counted)."""
        with self._db.transaction(write=False) as tx:
            row = tx.execute(f"SELECT n FROM {self._db.qualified(self.ROWS)} WHERE tbl = ?",
                             (self.table_name(self.tables[kind]),)).fetchone()
        return int(row["n"]) if row else 0

    def get(self, aggregate_id: UUID | None, kind: type | None = None) -> Any | None:
        """One aggregate as the index has it (caught up first); None if it has none."""
        if aggregate_id is None:
            return None
        self.catch_up()
        kinds = [self.tables[kind]] if kind is not None else list(self.tables.values())
        with self._db.transaction(write=False) as tx:
            for table in kinds:
                row = tx.execute(
                    "SELECT id, seq, version, topic, state FROM "
                    f"{self._db.qualified(self.table_name(table))} WHERE id = ?",
                    (str(aggregate_id),)).fetchone()
                if row is not None:
                    return self._aggregate(row)
        return None

    def all(self, kind: type, **where: Any) -> list[Any]:
        """Every aggregate of a kind (oldest first) whose columns equal ``where``: for the
        small kinds and the narrow questions commands ask."""
        return [aggregate for aggregate, _ in self.select(kind, where)]

    def select(self, kind: type, where: Mapping[str, Any] = (), conditions: Sequence[
               tuple[str, Sequence[Any]]] = (), order: str = "seq", limit: int | None = None,
               offset: int = 0) -> list[tuple[Any, Any]]:
        """Aggregates with their rows: ``where`` column name → value (None: IS NULL);
        ``conditions``: SQL fragments with their values."""
        self.catch_up()
        table = self.tables[kind]
        clauses, params = self._where(table, where, conditions)
        statement = (f"SELECT * FROM {self._db.qualified(self.table_name(table))}{clauses} "
                     f"ORDER BY {order}")
        if limit is not None:
            statement += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(statement, params).fetchall()
        return [(self._aggregate(row), row) for row in rows]

    @property
    def postgres(self) -> bool:
        """Whether the index lives in PostgreSQL (a statement may use what only it has)."""
        return self._db.postgres

    def query(self, statement: str, params: Sequence[Any] = (), *,
              work_mem: str | None = None) -> list[dict[str, Any]]:
        """The rows of a read-only statement of a subclass's own over its tables
        (``sql_table`` names them, ``Column.sql`` their columns; ``?`` marks), each a dict,
        the index caught up first: for answers summed in SQL (aggregates over a million
        rows) rather than built from the aggregates. ``work_mem``: PostgreSQL's memory
        for the statement's sorts and hashes (e.g. ``"64MB"``), for its transaction only."""
        self.catch_up()
        with self._db.transaction(write=False) as tx:
            if work_mem is not None and self._db.postgres:
                if not re.fullmatch(r"\d+[kMG]B", work_mem):
                    raise ValueError(f"work_mem {work_mem!r}: a size such as 64MB")
                tx.execute(f"SET LOCAL work_mem = '{work_mem}'")
            return [dict(row) for row in tx.execute(statement, params).fetchall()]

    def mark(self, kind: type) -> tuple[int, int]:
        """Where a kind's table stands (its rows, and the last change stored in it),
        caught up first: what a process compares to know that something it derived from
        the table (a map of lists by customer) still holds, in one indexed read."""
        name = self._db.qualified(self.table_name(self.tables[kind]))
        [row] = self.query(f"SELECT COUNT(*) AS n, MAX(seq) AS last FROM {name}")
        return int(row["n"] or 0), int(row["last"] or 0)

    def values(self, kind: type, columns: Sequence[str], where: Mapping[str, Any] = (),
               conditions: Sequence[tuple[str, Sequence[Any]]] = ()) -> list[dict[str, Any]]:
        """The named columns of the matching rows (by column name, as stored), oldest
        first, without decoding an aggregate: for a question over many rows that a few of
        their facts answer (an outage's impact over a hundred thousand purchased
        offerings reads five facts of each, not each one's whole state)."""
        table = self.tables[kind]
        wanted = [table.column(name) for name in columns]
        if any(column is None for column in wanted):
            raise KeyError(f"{kind.__name__} has no column among {list(columns)!r}")
        clauses, params = self._where(table, where, conditions)
        named = [(name, c.sql) for name, c in zip(columns, wanted, strict=True)
                 if c is not None]
        rows = self.query(f"SELECT {', '.join(sql for _, sql in named)} FROM "
                          f"{self._db.qualified(self.table_name(table))}{clauses} "
                          f"ORDER BY seq", params)
        return [{name: row[sql] for name, sql in named} for row in rows]

    def _where(self, table: Table, where: Mapping[str, Any],
               conditions: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
        parts, params = [], []
        for name, value in dict(where).items():
            column = table.column(name)
            if column is None:
                raise KeyError(f"{table.kind.__name__} has no column {name!r}")
            if value is None:
                parts.append(f"{column.sql} IS NULL")
            else:
                parts.append(f"{column.sql} = ?")
                params.append(to_stored(value, column.kind))
        for fragment, values in conditions:
            parts.append(f"({fragment})")
            params.extend(values)
        return (" WHERE " + " AND ".join(parts)) if parts else "", params

    def listing(self, kind: type, present: Callable[[Any, Any], Any] | None = None,
                **where: Any) -> Listing:
        """A list for a view to return: the blueprint pages it in the database."""
        return Listing(self, kind, where, present)


class _Loaded(dict):
    """Aggregates loaded for a batch, with the ``seq`` their rows keep (first recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.seqs: dict[UUID, int] = {}

    def keep(self, aggregate: Any, seq: int) -> None:
        self[aggregate.id] = aggregate
        self.seqs[aggregate.id] = seq


def current_seq(loaded: _Loaded, aggregate_id: UUID) -> int | None:
    return loaded.seqs.get(aggregate_id)


# --- lists --------------------------------------------------------------------------------
@dataclass
class Listing:
    """What a list view returns instead of a list: the aggregates of a kind (matching
    ``where``), with what the view shows for each (``present``: aggregate and row → the
    object its schema dumps). ``Blueprint`` calls :meth:`page` with the request's query."""

    index: StoredIndex
    kind: type
    where: Mapping[str, Any] = field(default_factory=dict)
    present: Callable[[Any, Any], Any] | None = None
    #: SQL fragments with their values that every item also meets (a view's fixed
    #: condition that is not one column's equality, e.g. :func:`tagged`).
    conditions: Sequence[tuple[str, Sequence[Any]]] = ()

    def __iter__(self) -> Iterator[Any]:
        """Every item, oldest first (for commands, tests and small lists)."""
        return iter(self._shown(self.index.select(self.kind, self.where, self.conditions)))

    def __len__(self) -> int:
        self.index.catch_up()
        return self._count(list(self.conditions))

    def __getitem__(self, position: int | slice) -> Any:
        """An item, or a slice, by position oldest first, read from the database alone
        (``listing[0]``, ``listing[-1]``, ``listing[10:20]``)."""
        if isinstance(position, slice):
            start, stop, step = position.indices(len(self))
            if step != 1:
                return list(self)[position]
            if stop <= start:
                return []
            return self._shown(self.index.select(self.kind, self.where, self.conditions,
                                                 "seq", stop - start, start))
        count = len(self)
        at = position + count if position < 0 else position
        if not 0 <= at < count:
            raise IndexError("listing index out of range")
        return self._shown(self.index.select(self.kind, self.where, self.conditions, "seq",
                                             1, at))[0]

    def _shown(self, pairs: list[tuple[Any, Any]]) -> list[Any]:
        if self.present is None:
            return [aggregate for aggregate, _ in pairs]
        return [self.present(aggregate, row) for aggregate, row in pairs]

    def page(self, args: Mapping[str, str], allowed: set[str], reserved: Sequence[str],
             dump: Callable[[list[Any]], list[dict[str, Any]]]
             ) -> tuple[list[dict[str, Any]], int | AtLeast]:
        """The page of representations the query asks for, and how many matched: exact,
        or :class:`AtLeast` when a filter matches more than the index's ``count_cap``
        (see :meth:`total`)."""
        from shared.http import listing

        self.index.catch_up()
        table = self.index.tables[self.kind]
        filters = listing.parse_filters(args, allowed, reserved)
        sort = listing.parse_sort(args.get("sort"), allowed)
        offset = listing.int_arg(args, "offset", 0)
        limit = listing.int_arg(args, "limit", listing.DEFAULT_LIMIT, listing.MAX_LIMIT)
        fields = listing.requested_fields()
        in_sql = [f for f in filters if table.column(f[0]) is not None]
        rest = [f for f in filters if table.column(f[0]) is None]
        conditions: list[tuple[str, Sequence[Any]]] = list(self.conditions)
        for attr, op, raws in in_sql:
            conditions.append(self._condition(table, conditions, attr, op, raws))
        if not rest and all(table.column(name) is not None for name, _ in sort):
            pairs, total = self._page_and_total(table, conditions, self._order(table, sort),
                                                limit, offset)
            items = dump(self._shown(pairs))
            return [listing.select_fields(i, fields) for i in items], total
        # An attribute without a column: narrow in SQL, then as the lists always did —
        # if what is narrowed is small enough to read whole (no process reads a million
        # aggregates for one page).
        cap = self.index.fallback_cap
        if self._count(conditions, cap + 1) > cap:
            named = sorted({f[0] for f in rest} | {n for n, _ in sort
                                                   if table.column(n) is None})
            columns = sorted(c.name for c in table.columns if c.name in allowed)
            raise ApiError(400, f"filtering or sorting by {', '.join(named)} needs other "
                           f"filters that leave at most {cap:,} items first",
                           "QUERY_TOO_BROAD",
                           {", ".join(named): [f"narrow first by: {', '.join(columns)}"]})
        items = dump(self._shown(self.index.select(self.kind, self.where, conditions)))
        items = listing.refine(items, rest, sort)
        return ([listing.select_fields(i, fields) for i in items[offset:offset + limit]],
                len(items))

    def _page_and_total(self, table: Table, conditions: list[tuple[str, Sequence[Any]]],
                        order: str, limit: int, offset: int
                        ) -> tuple[list[tuple[Any, Any]], int | AtLeast]:
        """A page's rows and the list's total (:meth:`total`) in one statement — the
        page with its total as a column beside it — in one read transaction: a list is
        then two round trips to the database (the log's head, this), not six, which is
        what its latency is made of on a busy database. A page with no rows (past the
        end, or nothing matches) asks for the total on its own."""
        index = self.index
        source = index._db.qualified(index.table_name(table))
        clauses, params = index._where(table, self.where, conditions)
        cap = index.count_cap
        if not conditions and not self.where:
            counted = f"(SELECT n FROM {index._db.qualified(index.ROWS)} WHERE tbl = ?)"
            count_params: list[Any] = [index.table_name(table)]
        else:
            counted = f"(SELECT COUNT(*) FROM (SELECT 1 FROM {source}{clauses} LIMIT ?) " \
                      "AS matching)"
            count_params = [*params, cap + 1]
        rows: list[Any] = []
        with index._db.transaction(write=False) as tx:
            if limit and offset < 2**62:  # (an offset past SQL's integers: past any end)
                rows = tx.execute(
                    f"SELECT page.*, {counted} AS rm_total FROM (SELECT * FROM {source}"
                    f"{clauses} ORDER BY {order} LIMIT ? OFFSET ?) AS page ORDER BY {order}",
                    [*count_params, *params, limit, offset]).fetchall()
            found = int(rows[0]["rm_total"] or 0) if rows else int(
                tx.execute(f"SELECT {counted} AS n", count_params).fetchone()["n"] or 0)
        unfiltered = not conditions and not self.where
        total: int | AtLeast = found if unfiltered or found <= cap else AtLeast(found)
        return [(index._aggregate(row), row) for row in rows], total

    def total(self, conditions: list[tuple[str, Sequence[Any]]]) -> int | AtLeast:
        """How many items match, as a list's ``X-Total-Count``, at a cost that does not
        grow with the table: without a filter, the row count kept with the rows (exact at
        any size); with one, the matching rows counted up to the index's ``count_cap``
        and no further — exact when fewer match (an index-only scan of at most that many
        entries where an index serves the filter), else :class:`AtLeast` (``cap + 1``).
        Counting every one of a broad filter's matches would read them all: at a million
        items, a filter matching a fifth of them cost 250–400 ms to count alone."""
        if not conditions and not self.where:
            return self.index.count(self.kind)
        cap = self.index.count_cap
        found = self._count(conditions, cap + 1)
        return AtLeast(found) if found > cap else found

    def _count(self, conditions: list[tuple[str, Sequence[Any]]],
               limit: int | None = None) -> int:
        """The rows matching, counted (no further than ``limit`` when given)."""
        table = self.index.tables[self.kind]
        if not conditions and not self.where:
            return self.index.count(self.kind)
        clauses, params = self.index._where(table, self.where, conditions)
        source = self.index._db.qualified(self.index.table_name(table))
        statement = f"SELECT COUNT(*) AS n FROM {source}{clauses}"
        if limit is not None:
            statement = f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {source}{clauses} " \
                        "LIMIT ?) AS matching"
            params = [*params, limit]
        with self.index._db.transaction(write=False) as tx:
            row = tx.execute(statement, params).fetchone()
        return int(row["n"])

    @staticmethod
    def _order(table: Table, sort: list[tuple[str, bool]]) -> str:
        """Ascending puts missing values last and descending first, as the lists do;
        ties keep the order of creation."""
        keys = []
        for name, desc in sort:
            column = table.column(name)
            assert column is not None
            keys.append(f"{column.sql} DESC NULLS FIRST" if desc
                        else f"{column.sql} ASC NULLS LAST")
        return ", ".join([*keys, "seq"])

    def _condition(self, table: Table, earlier: list[tuple[str, Sequence[Any]]], attr: str,
                   op: str, raws: list[str]) -> tuple[str, list[Any]]:
        """One TMF630 filter as SQL, with ``shared.http.listing``'s meaning: ``eq`` takes
        any of several values (``null`` or empty: missing); the comparisons never match a
        missing value; a value that cannot be compared with the attribute is a 400 when
        the attribute has values to compare it with."""
        column = table.column(attr)
        assert column is not None
        if op == "eq":
            parts, params = [], []
            for raw in raws:
                if raw in NULLS:
                    parts.append(f"{column.sql} IS NULL")
                try:
                    params.append(query_value(raw, column.kind))
                except ValueError:
                    continue
                parts.append(f"{column.sql} = ?")
            return (" OR ".join(parts) or "1 = 0"), params
        try:
            value = query_value(raws[0], column.kind)
        except ValueError:
            if self._any_value(table, earlier, column):
                raise ApiError(400, f"'{attr}.{op}' needs a value comparable with {attr}",
                               "INVALID_FILTER",
                               {f"{attr}.{op}": [f"cannot compare {raws[0]!r}"]}) from None
            return "1 = 0", []
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "ne": "<>"}[op]
        return f"{column.sql} IS NOT NULL AND {column.sql} {sign} ?", [value]

    def _any_value(self, table: Table, earlier: list[tuple[str, Sequence[Any]]],
                   column: Column) -> bool:
        conditions = [*earlier, (f"{column.sql} IS NOT NULL", [])]
        clauses, params = self.index._where(table, self.where, conditions)
        with self.index._db.transaction(write=False) as tx:
            return tx.execute(f"SELECT 1 FROM "
                              f"{self.index._db.qualified(self.index.table_name(table))}"
                              f"{clauses} LIMIT 1", params).fetchone() is not None


# --- a resident set -------------------------------------------------------------------------
class Resident(AggregateIndex):
    """Some kinds of a stored index, held in memory for a hot path: loaded from the stored
    rows at the first catch-up (the stored index caught up first, so a start reads what
    exists and the few events since, never the whole history), then kept up from the log
    in memory, as :class:`shared.store.AggregateIndex` keeps its aggregates.

    Only for kinds bounded by the estate (replicas of an inventory, regimes): what grows
    with history belongs in the stored index's tables, paged from there.

    ``generation`` names the state held: the position it was loaded at, then the
    notification id of each event applied since. Two processes with the same generation
    hold the same state (a cache shared by them may key on it); the same state may have
    two generations (a process loaded at a later position), which costs a cache miss."""

    def __init__(self, stored: StoredIndex, kinds: Sequence[type]) -> None:
        unknown = [k.__name__ for k in kinds if k not in stored.tables]
        if unknown:
            raise KeyError(f"{stored.name} keeps no {', '.join(unknown)}")
        super().__init__(stored.app, kinds)
        self.stored = stored
        self._kinds = tuple(kinds)
        self._loaded = False
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def catch_up(self) -> None:
        with self._lock:
            if not self._loaded:
                self.stored.catch_up()
                position, aggregates = self.stored.state(self._kinds)
                for aggregate in aggregates:
                    self._keep(aggregate)
                self._position = self._generation = position
                self._loaded = True
            head = self._app.max_notification_id()
            if head <= self._position:
                return
            for notification in self._app.notifications(after=self._position,
                                                        topics=self._topics, stop=head):
                event: Any = self._app.mapper.to_domain_event(notification)
                current = self._current(event.originator_id)
                if current is None or event.originator_version > current.version:
                    aggregate = event.mutate(current)
                    if aggregate is not None:
                        self._keep(aggregate)
                    self._applied += 1
                    self._generation = notification.id
                self._position = notification.id
            self._position = max(self._position, head)


# --- event rows -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EventRow:
    """What an :class:`EventIndex` keeps of one event: its columns' values (by column
    name) and the values of its one many-valued attribute (``tags``, e.g. the batch ids
    behind an evaluation), each a row of a table of their own."""

    values: Mapping[str, Any]
    tags: Sequence[str] = ()


class EventIndex(TrackedProjection):
    """One row per event of a log, with indexed columns: what questions about events
    (rather than aggregates) select from, so they read only the events that match.

    ``columns`` read an event's :class:`EventRow` values (``Column.read`` is given the
    values mapping); ``read`` makes the row of one notification (the application, the
    notification). Rows are applied in batches, each in one transaction with the index's
    position, exactly as :class:`StoredIndex` applies aggregates; its tables are
    ``rm_<name>_events`` (``seq``: the notification id) and ``rm_<name>_tags``."""

    def __init__(self, app: ServiceApplication, name: str, columns: Sequence[Column],
                 read: Callable[[ServiceApplication, Any], EventRow],
                 ordered_by: str | None = None, batch: int = 1000) -> None:
        """``ordered_by``: the column answers are listed by (then ``seq``), which every
        indexed column's index carries after its own value, so a filtered list is read in
        order from its index (a column not ``indexed`` is only kept: an index costs about
        as much room as its column again)."""
        super().__init__(app, name, batch)
        self.columns = tuple(columns)
        self.ordered_by = ordered_by
        self._read = read
        self.events_table = self._db.qualified(f"rm_{name}_events")
        self.tags_table = self._db.qualified(f"rm_{name}_tags")
        self._setup()

    @property
    def tables(self) -> dict[str, str]:
        """Its tables by what their rows are (for ``slactl readmodel status``)."""
        return {"events": self.events_table, "tags": self.tags_table}

    def row_counts(self) -> dict[str, int]:
        with self._db.transaction(write=False) as tx:
            return {label: int(tx.execute(f"SELECT COUNT(*) AS n FROM {table}")
                               .fetchone()["n"]) for label, table in self.tables.items()}

    def column(self, name: str) -> Column:
        found = next((c for c in self.columns if c.name == name), None)
        if found is None:
            raise KeyError(f"{self.name} has no column {name!r}")
        return found

    def _tables_ddl(self) -> list[str]:
        pg = self._db.postgres
        text = 'TEXT COLLATE "C"' if pg else "TEXT"
        types = {"text": text, "number": "DOUBLE PRECISION" if pg else "REAL",
                 "time": "DOUBLE PRECISION" if pg else "REAL", "bool": "INTEGER"}
        columns = "".join(f", {c.sql} {types[c.kind]}" for c in self.columns)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.events_table} (seq BIGINT PRIMARY KEY"
            f"{columns})",
            f"CREATE TABLE IF NOT EXISTS {self.tags_table} (tag {text} NOT NULL, "
            "seq BIGINT NOT NULL, PRIMARY KEY (tag, seq))"]

    def _indexes_ddl(self) -> list[str]:
        """The secondary indexes: each indexed column, then the order, then ``seq``."""
        bare = self.events_table.rpartition(".")[2].strip('"')
        then = "" if self.ordered_by is None else f"{self.column(self.ordered_by).sql}, "
        statements = []
        for c in self.columns:
            if not c.indexed:
                continue
            after = "" if c.name == self.ordered_by else then
            statements.append(f'CREATE INDEX IF NOT EXISTS "{bare}_{c.sql}" '
                              f"ON {self.events_table} ({c.sql}, {after}seq)")
        return statements

    def _drop_tables(self, tx: Any) -> None:
        tx.execute(f"DROP TABLE IF EXISTS {self.events_table}")
        tx.execute(f"DROP TABLE IF EXISTS {self.tags_table}")

    def _apply_batch(self, head: int) -> tuple[int, int]:
        positions = self._db.qualified(self.POSITIONS)
        lock = " FOR UPDATE" if self._db.postgres else ""
        with self._db.transaction(write=True) as tx:
            if self._db.postgres:  # as StoredIndex: a lost batch is only applied again
                tx.execute("SET LOCAL synchronous_commit TO OFF")
            row = tx.execute(f"SELECT position FROM {positions} WHERE name = ?{lock}",
                             (self.name,)).fetchone()
            position = int(row["position"]) if row else 0
            if position >= head:
                return 0, position
            page = self.app.recorder.select_notifications(
                start=position, limit=self.batch, inclusive_of_start=False, stop=head)
            rows, tags = [], []
            for notification in page:
                made = self._read(self.app, notification)
                rows.append([notification.id] + [
                    c.value(made.values) for c in self.columns])
                tags.extend((tag, notification.id) for tag in dict.fromkeys(made.tags))
            self._insert(tx, self.events_table, ["seq", *(c.sql for c in self.columns)],
                         rows, "seq")
            self._insert(tx, self.tags_table, ["tag", "seq"], tags, "tag, seq")
            position = page[-1].id if len(page) == self.batch else head
            tx.execute(f"UPDATE {positions} SET position = ? WHERE name = ?",
                       (position, self.name))
        return len(page), position

    def _insert(self, tx: Any, table: str, names: list[str], rows: list[Any],
                key: str) -> None:
        """New rows (one already there, from a batch applied again, is kept)."""
        if self._db.postgres and len(rows) > 20:  # COPY, then one statement (as StoredIndex)
            bare = table.rpartition(".")[2].strip('"')
            stage = f"rm_stage_{self.shape[:8]}_{bare}"[:63]
            tx.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE {table}) '
                       "ON COMMIT DELETE ROWS")
            tx.copy(f'COPY "{stage}" ({", ".join(names)}) FROM STDIN', rows)
            tx.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT "
                       f'{", ".join(names)} FROM "{stage}" ON CONFLICT ({key}) DO NOTHING')
            return
        tx.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                       f"({', '.join('?' * len(names))}) ON CONFLICT ({key}) DO NOTHING", rows)

    def _analysed(self) -> list[str]:
        return [self.events_table, self.tags_table]

    def _row_total(self) -> int:
        return self.row_counts()["events"]

    # --- queries ----------------------------------------------------------------------
    def select(self, columns: Sequence[str], conditions: Sequence[
               tuple[str, Sequence[Any]]] = (), order: str = "seq",
               limit: int | None = None) -> list[Any]:
        """Rows (``seq`` and the named columns, by their SQL names) matching every
        condition (SQL fragments over the columns' SQL names, ``tags`` naming the tags
        table, with their values), caught up first."""
        self.catch_up()
        wanted = ", ".join(["seq", *(self.column(n).sql for n in columns)])
        parts, params = [], []
        for fragment, values in conditions:
            parts.append(f"({fragment.replace('{tags}', self.tags_table)})")
            params.extend(values)
        if _holds_nul(params):
            return []
        statement = f"SELECT {wanted} FROM {self.events_table}"
        if parts:
            statement += " WHERE " + " AND ".join(parts)
        statement += f" ORDER BY {order}"
        if limit is not None:
            statement += " LIMIT ?"
            params.append(limit)
        with self._db.transaction(write=False) as tx:
            return tx.execute(statement, params).fetchall()

    def count(self, conditions: Sequence[tuple[str, Sequence[Any]]] = ()) -> int:
        """How many rows match (see :meth:`select`), caught up first."""
        self.catch_up()
        parts, params = [], []
        for fragment, values in conditions:
            parts.append(f"({fragment.replace('{tags}', self.tags_table)})")
            params.extend(values)
        if _holds_nul(params):
            return 0
        where = (" WHERE " + " AND ".join(parts)) if parts else ""
        with self._db.transaction(write=False) as tx:
            return int(tx.execute(f"SELECT COUNT(*) AS n FROM {self.events_table}{where}",
                                  params).fetchone()["n"])


def _holds_nul(params: Sequence[Any]) -> bool:
    """A filter value with a NUL character: no event's text has one (PostgreSQL's text
    cannot), so nothing matches it — answered without asking the database, which would
    refuse it."""
    return any(isinstance(value, str) and "\x00" in value for value in params)


def select_notifications_by_id(app: ServiceApplication, ids: Sequence[int]) -> list[Any]:
    """The notifications with these ids, in id order: what an index's rows point to,
    read by the log's own primary key (the recorder reads ranges only)."""
    from eventsourcing.persistence import Notification

    recorder: Any = app.recorder
    found: list[Any] = []
    wanted = sorted(set(ids))
    postgres = app.factory.__class__.__module__.startswith("eventsourcing.postgres")
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        if postgres:
            datastore = recorder.datastore
            table = f'"{datastore.schema}"."{recorder.events_table_name}"' \
                if datastore.schema else f'"{recorder.events_table_name}"'
            with datastore.transaction(commit=False) as curs:
                curs.execute(f"SELECT notification_id, originator_id, originator_version, "
                             f"topic, state FROM {table} WHERE notification_id = ANY(%s)",
                             (chunk,))
                found.extend(Notification(
                    id=row["notification_id"], originator_id=row["originator_id"],
                    originator_version=row["originator_version"], topic=row["topic"],
                    state=bytes(row["state"])) for row in curs.fetchall())
        else:
            marks = ",".join("?" * len(chunk))
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                          f"FROM {recorder.events_table_name} WHERE rowid IN ({marks})",
                          chunk)
                found.extend(Notification(
                    id=row["rowid"],
                    originator_id=recorder.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"], topic=row["topic"],
                    state=row["state"]) for row in c.fetchall())
    return sorted(found, key=lambda n: n.id)


# --- values that are lists ------------------------------------------------------------------
def _tag(value: Any) -> str:
    """One value of a tags column, in hexadecimal: no value holds the separator or a LIKE
    wildcard, and SQLite's LIKE, blind to case, still tells ``A`` from ``a``."""
    return str(value).encode().hex()


def tags(read: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    """A column's reader for an attribute that is a list of texts (a delivery's event
    ids): kept as ``|<hex a>|<hex b>|``, so :func:`tagged` finds the rows carrying one
    value in SQL without reading the others."""

    def joined(aggregate: Any) -> str | None:
        values = [_tag(v) for v in (read(aggregate) or ())]
        return "|" + "|".join(values) + "|" if values else None

    return joined


def tagged(column: Column, value: str) -> tuple[str, list[Any]]:
    """The condition "the list kept in ``column`` (by :func:`tags`) holds ``value``", for a
    ``Listing``'s ``conditions`` or :meth:`StoredIndex.select`."""
    return f"{column.sql} LIKE ?", [f"%|{_tag(value)}|%"]


# --- what is due ------------------------------------------------------------------------------
DUE = "due:"


def due_columns(due_of: Callable[[Any], Iterable[Any]], kinds: Sequence[str]
                ) -> tuple[Column, ...]:
    """One indexed time column per kind of due item (``shared.scheduler.Due``) an
    aggregate's state gives: the earliest item of that kind, or null. A
    :class:`StoredTimetable` over the index finds what is due with them."""

    def earliest(kind: str) -> Callable[[Any], Any]:
        return lambda aggregate: min((item.at for item in due_of(aggregate)
                                      if item.kind == kind), default=None)

    return tuple(Column(DUE + kind, earliest(kind), "time") for kind in kinds)


class StoredTimetable:
    """What is due when, answered by a stored index (``shared.scheduler.Timetable``'s
    questions, for a ``DueLoop`` and its kind): ``WHERE due <= now ORDER BY due LIMIT n``
    on each kind's :func:`due_columns`, so finding what is due reads only the rows that
    are due, and no process keeps every aggregate to know.

    ``due_of`` gives each aggregate type's items off its state (the functions its
    :func:`due_columns` were made with): the rows a query finds are read again by it, so
    an item is handed out exactly as its aggregate says now (a due time that depends on a
    setting, such as a lease, is stored as reckoned when its aggregate last changed and
    handed out as reckoned now). An item stays due until its aggregate changes (the work's
    outcome), so work that failed is offered again. ``limit``: items of a kind handed out
    at most at once; the rest are found on the next call."""

    def __init__(self, index: StoredIndex, due_of: Mapping[type, Callable[[Any], Iterable[Any]]],
                 limit: int = 500) -> None:
        self.index, self.limit = index, limit
        self._due_of = dict(due_of)
        self._kinds: dict[str, tuple[type, Column]] = {}
        for kind, table in index.tables.items():
            for column in table.columns:
                if column.name.startswith(DUE) and kind in self._due_of:
                    self._kinds[column.name[len(DUE):]] = (kind, column)

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """A pass's reads in one scope of the index (:meth:`TrackedProjection.reading`)."""
        return self.index.reading()

    def _wanted(self, kinds: Iterable[str] | None) -> list[str]:
        return list(self._kinds) if kinds is None else [k for k in kinds if k in self._kinds]

    def _items(self, aggregate: Any, kind: str) -> list[Any]:
        return [item for item in self._due_of[type(aggregate)](aggregate) if item.kind == kind]

    def _rows(self, kind: str, condition: str, params: Sequence[Any],
              limit: int | None) -> list[Any]:
        aggregate_type, column = self._kinds[kind]
        return [aggregate for aggregate, _ in self.index.select(
            aggregate_type, conditions=[(f"{column.sql} IS NOT NULL{condition}", params)],
            order=f"{column.sql}, seq", limit=limit)]

    def due(self, now: datetime, kinds: Iterable[str] | None = None) -> list[Any]:
        """The items due at ``now`` (of these kinds), earliest first."""
        found = []
        for kind in self._wanted(kinds):
            for aggregate in self._rows(kind, f" AND {self._kinds[kind][1].sql} <= ?",
                                        [to_stored(now, "time")], self.limit):
                found += [item for item in self._items(aggregate, kind) if item.at <= now]
        return sorted(found)

    def items(self, kind: str) -> list[Any]:
        """Every item of a kind, due or not."""
        if kind not in self._kinds:
            return []
        return sorted(item for aggregate in self._rows(kind, "", [], None)
                      for item in self._items(aggregate, kind))

    def still_planned(self, items: Iterable[Any]) -> list[Any]:
        """Those of ``items`` still planned as they were (their aggregates did not
        change them), read after catching up."""
        planned = []
        for item in items:
            aggregate_type = self._kinds[item.kind][0] if item.kind in self._kinds else None
            aggregate = self.index.get(item.subject, aggregate_type)
            if aggregate is not None and type(aggregate) in self._due_of and any(
                    (now.identity, now.at) == (item.identity, item.at)
                    for now in self._due_of[type(aggregate)](aggregate)):
                planned.append(item)
        return planned

    def next_at(self, kinds: Iterable[str] | None = None, catch_up: bool = True
                ) -> datetime | None:
        """When the earliest item (of these kinds) is due; None when nothing is planned.
        (The index catches up before every query, so ``catch_up`` changes nothing.)"""
        earliest: datetime | None = None
        for kind in self._wanted(kinds):
            for aggregate in self._rows(kind, "", [], 1):
                for item in self._items(aggregate, kind):
                    if earliest is None or item.at < earliest:
                        earliest = item.at
        return earliest
