"""The event store of a service: an eventsourcing ``Application`` with audit metadata,
per-id tracking for the inbox, and helpers for the outbox and the read models.

SQLite by default, PostgreSQL through the library's own variables (one schema per
service). Every stored event carries ``__meta__`` (correlation id, causation id, actor)
so the audit log and the bus envelope can tell where it came from (docs/architecture.md,
"The event store").
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    ProcessRecorder,
    Recording,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import retry

from shared import context
from shared.errors import NotFound, StaleVersion
from shared.wakeups import Wakeup

META_KEY = "__meta__"


class AuditingMapper(Mapper):
    """Stamps the current context on each event as it is stored, strips it on load."""

    def to_stored_event(self, domain_event: DomainEventProtocol) -> StoredEvent:
        meta = context.current()
        if not meta:
            return super().to_stored_event(domain_event)
        state = vars(domain_event)
        state[META_KEY] = meta
        try:
            return super().to_stored_event(domain_event)
        finally:
            state.pop(META_KEY, None)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol:
        event = super().to_domain_event(stored_event)
        vars(event).pop(META_KEY, None)
        return event

    def to_domain_event_and_meta(self, stored_event: StoredEvent
                                 ) -> tuple[DomainEventProtocol, dict[str, Any]]:
        """The domain event and the metadata stamped on it, from one decoding of its
        state (the outbox needs both for every event it publishes)."""
        event = super().to_domain_event(stored_event)
        meta = vars(event).pop(META_KEY, None)
        return event, meta if isinstance(meta, dict) else {}

    def decode_state(self, stored_event: StoredEvent) -> dict[str, Any]:
        """The raw stored state, metadata included (for audit and the envelope)."""
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return self.transcoder.decode(state)


def external_tracking(source: str, message_id: str) -> Tracking:
    """A tracking record for a message that has no notification id of ours.

    Per-id tracking only needs a unique integer per (source, message): a 63-bit digest.
    """
    digest = hashlib.sha256(message_id.encode()).digest()
    return Tracking(application_name=source, notification_id=int.from_bytes(digest[:8]) >> 1)


class InboxTracking:
    """The tracking record of the message an inbox handler is processing.

    While bound, :meth:`ServiceApplication.save` writes it with the handler's events, so
    application commands need not know whether they run for HTTP or for the bus.
    """

    _current: contextvars.ContextVar[InboxTracking | None] = contextvars.ContextVar(
        "inbox_tracking", default=None)

    def __init__(self, tracking: Tracking, group: InboxGroup | None = None) -> None:
        self.tracking = tracking
        self.saved = False
        # Set while the inbox handles several messages in one transaction: the handler's
        # save then adds its events and this record to the group instead of committing.
        self.group = group

    def bind(self) -> contextvars.Token:
        return self._current.set(self)

    def unbind(self, token: contextvars.Token) -> None:
        self._current.reset(token)

    @classmethod
    def current(cls) -> InboxTracking | None:
        return cls._current.get()


class GroupConflict(Exception):
    """An aggregate saved by one message of an inbox group was loaded again, apart, by a
    later one: the later one worked on a stale state, so the group is handled one by one."""


_UNSEEN = object()


class InboxGroup(context.UnitOfWork):
    """Several messages an inbox handles in one store transaction (a unit of work).

    Each handler still saves its whole effect in one ``save()``; inside a group that save
    converts the events to stored events at once (so each carries its own message's
    audit context) and keeps them here with the message's tracking record, and
    :meth:`ServiceApplication.save_group` commits all of them together. The aggregates a
    handler saved, and those loaded ahead for the group (:meth:`preload`), are found here
    by later messages of the same group (:meth:`find`), so two messages about one
    resource build on each other as they would one after the other.
    """

    def __init__(self, app: ServiceApplication) -> None:
        super().__init__()
        self.app = app
        self.stored: list[StoredEvent] = []
        self.events: list[Any] = []
        self.aggregates: dict[UUID, Any] = {}   # saved by a message of the group
        self.trackings: list[Tracking] = []
        self._known: dict[UUID, Any] = {}       # loaded ahead, or saved (None: absent)

    @classmethod
    def current(cls) -> InboxGroup | None:
        return cls.active()

    def preload(self, aggregate_ids: Iterable[UUID]) -> None:
        """Load these aggregates in one read (those not known yet); absent ones are
        remembered as absent."""
        missing = [i for i in dict.fromkeys(aggregate_ids) if i not in self._known]
        if not missing:
            return
        found = self.app.load_many(missing)
        for aggregate_id in missing:
            self._known[aggregate_id] = found.get(aggregate_id)

    def find(self, aggregate_id: UUID) -> Any:
        """The aggregate as this group knows it: saved by an earlier message, or loaded
        ahead (None: it does not exist); ``InboxGroup.UNSEEN`` when the group does not
        know (read it from the store)."""
        return self._known.get(aggregate_id, _UNSEEN)

    UNSEEN = _UNSEEN

    @classmethod
    def once(cls, key: Any, compute: Callable[[], Any]) -> Any:
        """:meth:`memo` of the group being handled, or ``compute()`` outside one."""
        group = cls.current()
        return compute() if group is None else group.memo(key, compute)

    def add(self, tracking: Tracking, objs: Sequence[Any]) -> None:
        """One message's effect: its aggregates' new events and its tracking record."""
        mapper = self.app.mapper
        for obj in objs:
            if obj is None:
                continue
            known = self.aggregates.get(obj.id)
            if known is not None and known is not obj:
                raise GroupConflict(obj.id)
            for event in obj.collect_events():
                self.events.append(event)
                self.stored.append(mapper.to_stored_event(event))
            self.aggregates[obj.id] = obj
            self._known[obj.id] = obj
        self.trackings.append(tracking)


class _Commit:
    """One thread's save waiting in a :class:`GroupCommit`: its stored events, then its
    notification ids or the error its own commit raised."""

    __slots__ = ("done", "error", "ids", "stored")

    def __init__(self, stored: list[StoredEvent]) -> None:
        self.stored = stored
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Commits the saves that threads of one process ask for at the same moment in one
    transaction (leader and followers): a thread that finds no commit under way commits
    every save waiting, its own first; the others wait until theirs is committed.

    Why: every save of a log takes the log's table lock (notification ids must commit in
    the order they are issued) and holds it while the server waits for the disk, so
    concurrent single-event saves (customers' answers) go one disk flush at a time, the
    others queued behind the lock. In one transaction a group shares one lock and one
    flush. Nothing is answered before it is durable: each caller returns only once the
    transaction holding its events has committed.

    What a group cannot commit (one of its saves conflicts: an aggregate moved on, or
    two saves of the group wrote the same version) commits nothing, being one
    transaction; each save of the group is then committed alone, in the order they came,
    so each gets exactly the outcome it would have had alone — the others are not lost,
    the failing one raises its own ``IntegrityError``. A failure to reach the store
    (``InterfaceError``, ``OperationalError``, after the recorder's own retries) is every
    save's, and each of them raises it."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self._cond = threading.Condition()
        self._waiting: list[_Commit] = []
        self._busy = False

    def commit(self, stored: list[StoredEvent]) -> Sequence[int] | None:
        """Commit these stored events (in a group if others wait); their notification
        ids."""
        mine = _Commit(stored)
        with self._cond:
            self._waiting.append(mine)
            while self._busy and not mine.done:
                self._cond.wait()
            group: list[_Commit] = []
            if not mine.done:  # no commit under way: this thread commits what waits
                self._busy = True
                group, self._waiting = self._waiting, []
        if group:
            try:
                self._commit_group(group)
            finally:
                with self._cond:
                    self._busy = False
                    # (only if this thread was stopped midway: the rest wait again)
                    self._waiting[:0] = [c for c in group if not c.done]
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _commit_group(self, group: list[_Commit]) -> None:
        try:
            if len(group) > 1:
                ids = self.recorder.insert_events([e for c in group for e in c.stored])
                offset = 0
                for one in group:
                    one.ids = None if ids is None else ids[offset:offset + len(one.stored)]
                    offset += len(one.stored)
                    one.done = True
                return
        except (InterfaceError, OperationalError) as exc:
            for one in group:
                one.error, one.done = exc, True
            return
        except Exception:  # noqa: BLE001 - one of them failed: each alone, below
            pass
        for one in group:
            try:
                one.ids = self.recorder.insert_events(one.stored)
            except Exception as exc:  # noqa: BLE001 - that save's own outcome
                one.error = exc
            one.done = True


class DuplicateMessage(Exception):
    """The message was already processed: its tracking record exists."""


class ServiceApplication(Application):
    """Base class of every service's application: a process recorder and audit metadata."""

    OUTBOX = "__outbox__"
    # A service's second log, kept beside its main one, is named here. SQLite names its
    # tables ``stored_events`` and ``tracking`` whatever the application, so in embedded
    # mode that log lives in a file of its own, ``<service>.<log_name>.sqlite`` (two
    # applications in one file would read one log, and audit would list it twice); on
    # PostgreSQL its tables carry the application's name already.
    log_name: str = ""
    # The aggregate types of that second log: what it takes over, once, from a main file
    # that an earlier release shared with it.
    log_kinds: tuple[type, ...] = ()

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = dict(env or {})
        shared_file = _shared_sqlite_file(env) if self.log_name else None
        if shared_file is not None:
            env["SQLITE_DBNAME"] = str(shared_file.with_name(
                f"{shared_file.stem}.{self.log_name}{shared_file.suffix}"))
        super().__init__(env=env)
        self._lock = threading.RLock()
        # "This log may have new events": set after every save in this process, and by a
        # LogListener when another process's save is notified (shared/wakeups.py).
        self.recorded = Wakeup()
        # The newest notification id this process recorded: what a read scope
        # (``shared.readmodel.TrackedProjection.reading``) must see of its own writes.
        self.local_head = 0
        self._audit_index: Any = None
        self._group_commit = GroupCommit(self.recorder)
        if shared_file is not None:
            adopt_shared_sqlite_log(shared_file, Path(env["SQLITE_DBNAME"]),
                                    topics_of(self.log_kinds))

    @property
    def publishing_store(self) -> ServiceApplication:
        """The application whose log the outbox publishes: itself, unless the service
        keeps its published facts in a log of their own (and says so here)."""
        return self

    def stores(self) -> list[ServiceApplication]:
        """Every log this service keeps (audit reads them all)."""
        return [self]

    def read_models(self) -> list[Any]:
        """The stored read models (``shared.readmodel.StoredIndex``) this service keeps
        over its logs: what ``slactl readmodel`` shows and rebuilds."""
        return []

    def audit_index(self, make: Callable[[ServiceApplication], Any]) -> Any:
        """This log's audit index (``shared.audit.audit_index``): made by ``make`` on
        first use, kept while the application lives, closed with it."""
        with self._lock:
            if self._audit_index is None:
                self._audit_index = make(self)
            return self._audit_index

    def close(self) -> None:
        with self._lock:
            index, self._audit_index = self._audit_index, None
        if index is not None:
            index.close()
        super().close()

    # --- construction -------------------------------------------------------------
    def construct_mapper(self) -> AuditingMapper:
        base = self.factory.mapper(transcoder=self.construct_transcoder())
        return AuditingMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )

    def construct_recorder(self) -> ProcessRecorder:
        return _with_multi_tracking(self.factory.process_recorder())

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def get(self, kind: type, aggregate_id: UUID, expected_version: int | None = None,
            label: str | None = None) -> Any:
        """One aggregate of a kind; :class:`NotFound` or :class:`StaleVersion` if not."""
        from eventsourcing.application import AggregateNotFoundError

        label = label or re.sub(r"(?<!^)(?=[A-Z])", " ", kind.__name__).lower()
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {label} with id {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {label} with id {aggregate_id}")
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(aggregate.version, expected_version)
        return aggregate

    def known(self, aggregate_id: UUID) -> Any | None:
        """An aggregate as this process knows it now, None when there is none: inside an
        inbox group as the group has it (loaded ahead for the group, or saved by an
        earlier message of it, so two messages of a group build on each other), else as
        stored."""
        from eventsourcing.application import AggregateNotFoundError

        group = InboxGroup.current()
        known = group.find(aggregate_id) if group is not None else InboxGroup.UNSEEN
        if known is not InboxGroup.UNSEEN:
            return known
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    # --- inbox ------------------------------------------------------------------------
    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        """Save; inside an inbox handler, together with the message's tracking record."""
        pending = InboxTracking.current()
        if pending is None:
            if kwargs:
                return super().save(*objs, **kwargs)
            return self._save(ProcessingEvent(), objs)
        if pending.saved:
            raise RuntimeError("an inbox handler must save its whole effect in one save()")
        if pending.group is not None:
            pending.group.add(pending.tracking, objs)
            pending.saved = True
            return []
        recordings = self.save_tracked(pending.tracking, *objs)
        pending.saved = True
        return recordings

    def save_grouped(self, *objs: Any) -> list[Any]:
        """Save as :meth:`save` does, committed in one transaction with the saves other
        threads of this process ask for at the same moment (:class:`GroupCommit`); it
        returns once its own events are committed, or raises what its own save alone
        would have raised (an ``IntegrityError`` when the aggregate moved on).

        For many small saves at once (customers' answers through HTTP): each one alone
        takes the log's table lock and waits for the disk, and the others wait for it.
        Inside an inbox handler it is :meth:`save` (the message's tracking record goes
        with its events)."""
        if InboxTracking.current() is not None:
            return self.save(*objs)
        processing: ProcessingEvent = ProcessingEvent()
        for obj in objs:
            if obj is None:
                continue
            processing.events.extend(obj.collect_events())
            processing.aggregates[obj.id] = obj
        # Converted here, in the caller's context: each event carries its own request's
        # audit metadata (actor, correlation id), whoever commits the group.
        stored = [self.mapper.to_stored_event(event) for event in processing.events]
        ids = self._group_commit.commit(stored)
        recordings = [Recording(event, Notification(
            id=n, originator_id=s.originator_id, originator_version=s.originator_version,
            topic=s.topic, state=s.state)) for event, s, n in zip(
                processing.events, stored, ids or (), strict=False)]
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def save_tracked(self, tracking: Tracking, *objs: Any) -> list[Any]:
        """Save the handler's events and the tracking record in one transaction.

        Raises :class:`DuplicateMessage` when the message was already processed, and
        lets an optimistic-concurrency ``IntegrityError`` through so it can be retried.
        """
        try:
            return self._save(ProcessingEvent(tracking=tracking), objs)
        except IntegrityError:
            if self.is_tracked(tracking):
                raise DuplicateMessage(tracking) from None
            raise

    def _save(self, processing: ProcessingEvent, objs: Sequence[Any]) -> list[Any]:
        """Collect the aggregates' pending events and record them.

        The library's ``collect_events`` tells aggregates from events with runtime-checked
        protocols (microseconds each); a service saves only aggregates, hundreds at a time
        on the hot paths, so this collects them directly."""
        for obj in objs:
            if obj is None:
                continue
            processing.events.extend(obj.collect_events())
            processing.aggregates[obj.id] = obj
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def _notify(self, recordings: list[Any]) -> None:
        """After a save: wake the loops waiting for this log's new events."""
        super()._notify(recordings)
        if recordings:
            newest = max(r.notification.id for r in recordings)
            if newest > self.local_head:
                self.local_head = newest
            self.recorded.set()

    def is_tracked(self, tracking: Tracking) -> bool:
        """Exact check for one tracking record (``has_tracking_id`` compares with the max)."""
        recorder: Any = self.recorder
        datastore = recorder.datastore
        if self.factory.__class__.__module__.startswith("eventsourcing.postgres"):
            from psycopg.sql import SQL, Identifier

            statement = SQL(
                "SELECT 1 FROM {}.{} WHERE application_name = %s AND notification_id = %s"
            ).format(Identifier(datastore.schema), Identifier(recorder.tracking_table_name))
            with datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, (tracking.application_name, tracking.notification_id))
                return curs.fetchone() is not None
        with datastore.transaction(commit=False) as c:  # SQLite
            c.execute(
                "SELECT 1 FROM tracking WHERE application_name=? AND notification_id=?",
                (tracking.application_name, tracking.notification_id),
            )
            return c.fetchone() is not None

    def tracked(self, trackings: Sequence[Tracking]) -> set[tuple[str, int]]:
        """Which of these tracking records exist, as ``(application name, notification
        id)``: :meth:`is_tracked` for many messages, in one query on PostgreSQL."""
        if not trackings:
            return set()
        recorder: Any = self.recorder
        if self.factory.__class__.__module__.startswith("eventsourcing.postgres"):
            from psycopg.sql import SQL, Identifier

            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                statement = _sql(recorder, "tracked", conn, lambda: SQL(
                    "SELECT t.application_name, t.notification_id FROM {}.{} t "
                    "JOIN unnest(%s::text[], %s::bigint[]) AS w(a, n) "
                    "ON t.application_name = w.a AND t.notification_id = w.n"
                ).format(Identifier(recorder.datastore.schema),
                         Identifier(recorder.tracking_table_name)))
                curs.execute(statement, ([t.application_name for t in trackings],
                                         [t.notification_id for t in trackings]))
                return {(row["application_name"], row["notification_id"])
                        for row in curs.fetchall()}
        return {(t.application_name, t.notification_id) for t in trackings
                if self.is_tracked(t)}

    def load_many_at(self, versions: Mapping[UUID, int]) -> dict[UUID, Any]:
        """Several aggregates, each as it was at a version of its own (those that exist
        by then), read together: on PostgreSQL one query whatever their number (each
        one's latest snapshot up to its version, then its events after that up to it);
        elsewhere one ``repository.get`` each. What the outbox relay reads once for a
        page of changes instead of once for each."""
        from eventsourcing.application import AggregateNotFoundError

        wanted = {i: v for i, v in versions.items() if v > 0}
        if not wanted:
            return {}
        if not self.factory.__class__.__module__.startswith("eventsourcing.postgres"):
            found = {}
            for aggregate_id, version in wanted.items():
                try:
                    found[aggregate_id] = self.repository.get(aggregate_id, version=version)
                except AggregateNotFoundError:
                    pass
            return found
        return self._load_many_postgres(list(wanted), versions=wanted)

    def load_many(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The current state of several aggregates (those that exist), read together.

        On PostgreSQL two queries whatever their number: the latest snapshot of each,
        then the events after it (so loading stays bounded for an aggregate with a long
        history); elsewhere one ``repository.get`` each."""
        from eventsourcing.application import AggregateNotFoundError

        wanted = list(dict.fromkeys(aggregate_ids))
        if not wanted:
            return {}
        if not self.factory.__class__.__module__.startswith("eventsourcing.postgres"):
            found = {}
            for aggregate_id in wanted:
                try:
                    found[aggregate_id] = self.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    pass
            return found
        return self._load_many_postgres(wanted)

    def _load_many_postgres(self, wanted: list[UUID],
                            versions: Mapping[UUID, int] | None = None) -> dict[UUID, Any]:
        from psycopg.sql import SQL, Identifier

        recorder: Any = self.recorder
        schema = Identifier(recorder.datastore.schema)
        events = Identifier(recorder.events_table_name)
        id_type = Identifier(recorder.datastore.originator_id_type)
        keys = wanted if recorder.datastore.originator_id_type == "uuid" else [
            str(i) for i in wanted]
        snapshots: Any = self.snapshots.recorder if self.snapshots is not None else None

        def build_at() -> Any:
            # Each aggregate up to its own version: the wanted (id, version) pairs joined
            # to the snapshots and events, otherwise as below.
            wanted_sql = "SELECT * FROM unnest(%(ids)s::{id_type}[], %(versions)s::bigint[]) " \
                         "AS w(id, v)"
            if snapshots is None:
                return SQL(
                    "WITH w AS (" + wanted_sql + ") "
                    "SELECT 1 AS event, e.originator_id, e.originator_version, e.topic, "
                    "e.state FROM {schema}.{events} e JOIN w ON e.originator_id = w.id "
                    "AND e.originator_version <= w.v ORDER BY 2, 3").format(
                        id_type=id_type, schema=schema, events=events)
            return SQL(
                "WITH w AS (" + wanted_sql + "), "
                "s AS (SELECT DISTINCT ON (n.originator_id) n.originator_id, "
                "n.originator_version, n.topic, n.state FROM {schema}.{snapshots} n "
                "JOIN w ON n.originator_id = w.id AND n.originator_version <= w.v "
                "ORDER BY n.originator_id, n.originator_version DESC) "
                "SELECT 0 AS event, originator_id, originator_version, topic, state FROM s "
                "UNION ALL SELECT 1, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM {schema}.{events} e JOIN w ON e.originator_id = w.id "
                "AND e.originator_version <= w.v "
                "LEFT JOIN s ON s.originator_id = e.originator_id "
                "WHERE e.originator_version > COALESCE(s.originator_version, 0) "
                "ORDER BY 2, 1, 3").format(id_type=id_type, schema=schema, events=events,
                                           snapshots=Identifier(snapshots.events_table_name))

        def build() -> Any:
            if snapshots is None:
                return SQL(
                    "SELECT 1 AS event, originator_id, originator_version, topic, state "
                    "FROM {}.{} WHERE originator_id = ANY(%(ids)s) "
                    "ORDER BY originator_id, originator_version").format(schema, events)
            # The latest snapshot of each, then its events after that snapshot, in one
            # round trip: ordered by aggregate, snapshot first, then by version.
            return SQL(
                "WITH s AS (SELECT DISTINCT ON (originator_id) originator_id, "
                "originator_version, topic, state FROM {schema}.{snapshots} "
                "WHERE originator_id = ANY(%(ids)s) "
                "ORDER BY originator_id, originator_version DESC) "
                "SELECT 0 AS event, originator_id, originator_version, topic, state FROM s "
                "UNION ALL SELECT 1, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM {schema}.{events} e LEFT JOIN s ON s.originator_id = e.originator_id "
                "WHERE e.originator_id = ANY(%(ids)s) "
                "AND e.originator_version > COALESCE(s.originator_version, 0) "
                "ORDER BY 2, 1, 3").format(schema=schema, events=events,
                                           snapshots=Identifier(snapshots.events_table_name))
        mapper = self.mapper
        aggregates: dict[Any, Any] = {}
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            if versions is None:
                curs.execute(_sql(recorder, "load_many", conn, build), {"ids": keys})
            else:
                curs.execute(_sql(recorder, "load_many_at", conn, build_at),
                             {"ids": keys, "versions": [versions[i] for i in wanted]})
            for row in curs.fetchall():
                key = row["originator_id"]
                event: Any = mapper.to_domain_event(_stored(row))
                aggregates[key] = event.mutate(aggregates.get(key) if row["event"] else None)
        return {aggregate.id: aggregate for aggregate in aggregates.values()
                if aggregate is not None}

    @property
    def takes_groups(self) -> bool:
        """Whether :meth:`save_group` can commit several tracking records at once (the
        SQLite and PostgreSQL stores; the inbox handles messages one by one otherwise)."""
        return isinstance(self.recorder, (_PostgresTrackings, _SQLiteTrackings))

    def save_group(self, group: InboxGroup) -> None:
        """Commit what an inbox group collected — every message's events and every
        message's tracking record — in one transaction. An ``IntegrityError`` (one of
        the messages was processed meanwhile, or an aggregate changed under it) commits
        nothing; the inbox then handles the messages one by one."""
        if group.app is not self or not self.takes_groups:
            raise ValueError("an inbox group is saved by the application it was made for, "
                             "on a store that takes groups")
        ids = self.recorder.insert_events(group.stored, tracking=None,
                                          trackings=list(group.trackings))
        processing: ProcessingEvent = ProcessingEvent()
        processing.events.extend(group.events)
        processing.aggregates.update(group.aggregates)
        self._take_snapshots(processing)
        # As after any save: the loops waiting for this log's new events wake up.
        self._notify([Recording(event, Notification(
            id=n, originator_id=stored.originator_id,
            originator_version=stored.originator_version, topic=stored.topic,
            state=stored.state)) for event, stored, n in zip(
                group.events, group.stored, ids or (), strict=False)])

    # --- outbox -------------------------------------------------------------------------
    def published_position(self, outbox: str = OUTBOX) -> int:
        """How far the outbox named ``outbox`` has published this log (a log published
        by more than one relay keeps a position for each, under its own name)."""
        return self.process_recorder.max_tracking_id(outbox) or 0

    def record_published(self, notification_id: int, outbox: str = OUTBOX) -> None:
        try:
            self.process_recorder.insert_tracking(Tracking(outbox, notification_id))
        except IntegrityError:
            pass  # already recorded by an earlier, interrupted run

    # --- notification log -------------------------------------------------------------
    def notifications(self, after: int = 0, batch: int = 500, topics: Sequence[str] = (),
                      stop: int | None = None) -> Iterator[Notification]:
        """Every notification after a position (up to ``stop``; optionally of some event
        topics only), read in batches (no cap of 10)."""
        position = after
        while True:
            page = self.recorder.select_notifications(
                start=position, limit=batch, inclusive_of_start=False, topics=topics,
                stop=stop,
            )
            if not page:
                return
            yield from page
            position = page[-1].id
            if len(page) < batch:
                return

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def decode(self, notification: StoredEvent) -> tuple[DomainEventProtocol, dict[str, Any]]:
        """The domain event and its audit metadata."""
        mapper: AuditingMapper = self.mapper  # type: ignore[assignment]
        return mapper.to_domain_event_and_meta(notification)

    def ping(self) -> None:
        """Raise if the store cannot be reached (for readiness)."""
        self.recorder.max_notification_id()


def _sql(owner: Any, key: str, conn: Any, build: Callable[[], Any]) -> str:
    """A composed statement as text, composed once per recorder (composing identifiers
    for every query of a busy inbox cost more than the query's parameters)."""
    cache = owner.__dict__.setdefault("_sla_statements", {})
    text = cache.get(key)
    if text is None:
        text = cache[key] = build().as_string(conn)
    return text


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(originator_id=row["originator_id"],
                       originator_version=row["originator_version"], topic=row["topic"],
                       state=bytes(row["state"]))


class _PostgresTrackings:
    """Several tracking records written with a save (``trackings=``), in its transaction:
    one statement for all of them; and a save committed in one round trip."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """The library's insert (its table lock, so notification ids commit in the order
        they are issued), with the ``COMMIT`` sent in the same pipeline as the lock and
        the inserts, before any result is read: one round trip instead of two.

        Why: the lock is held until the commit reaches the server. The library reads the
        inserts' results first, so the lock stayed held while this thread waited for the
        server, then for the GIL and a core (milliseconds in a busy gunicorn worker), and
        every other save of the log waited with it: commits of single answers were held
        to about a hundred a second, whatever the database could do. Sent together, the
        lock lasts only the server's own work. A failed insert (a unique violation: the
        aggregate moved on, or the tracking record exists) aborts the transaction on the
        server, so the queued ``COMMIT`` commits nothing; the error is raised when the
        pipeline is read, the connection rolled back, and nothing was recorded — as
        before. The ids come from the ``RETURNING`` rows, read after the commit."""
        from psycopg.pq import TransactionStatus

        recorder: Any = self
        if recorder.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        with recorder.datastore.get_connection() as conn:
            curs = conn.cursor()
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    with conn.cursor() as first:
                        recorder._insert_events(first, stored_events, **kwargs)
                    if stored_events:
                        recorder._insert_stored_events(curs, stored_events, **kwargs)
                    conn.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()
                raise
            if not stored_events:
                return []
            return recorder._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Any:
        trackings: Sequence[Tracking] = kwargs.get("trackings") or ()
        if trackings:
            from psycopg.sql import SQL, Identifier

            recorder: Any = self
            recorder._check_has_multi_row_tracking_table(curs)
            curs.execute(_sql(recorder, "insert_trackings", curs.connection, lambda: SQL(
                "INSERT INTO {}.{} (application_name, notification_id) "
                "SELECT * FROM unnest(%s::text[], %s::bigint[])"
            ).format(Identifier(recorder.datastore.schema),
                     Identifier(recorder.tracking_table_name))),
                ([t.application_name for t in trackings],
                 [t.notification_id for t in trackings]))
        return super()._insert_events(curs, stored_events, **kwargs)  # type: ignore[misc]

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """The library's insert (table lock, notify, one INSERT … RETURNING of every
        event), with the events sent as four arrays in binary instead of one array of a
        composite type in text: dumping those composites in Python cost more than the
        rest of a save of many events."""
        from psycopg.sql import SQL, Identifier

        recorder: Any = self
        recorder._lock_table(curs)
        recorder._notify_channel(curs)
        statement = _sql(recorder, "insert_arrays", curs.connection, lambda: SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(Identifier(recorder.datastore.schema),
                 Identifier(recorder.events_table_name),
                 Identifier(recorder.datastore.originator_id_type)))
        ids: list[Any] = [e.originator_id for e in stored_events]
        if recorder.datastore.originator_id_type != "uuid":
            ids = [str(i) for i in ids]
        curs.execute(statement, (
            ids,
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events]))


class _SQLiteTrackings:
    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Any:
        returning = super()._insert_events(c, stored_events, **kwargs)  # type: ignore[misc]
        recorder: Any = self
        for tracking in kwargs.get("trackings") or ():
            recorder._insert_tracking(c, tracking)
        return returning


_MULTI_TRACKING: dict[type, type] = {}


def _with_multi_tracking(recorder: ProcessRecorder) -> ProcessRecorder:
    """The library's process recorder, able to write several tracking records with one
    save (``insert_events(..., trackings=[...])``) — what an inbox group commits. The
    in-memory store keeps one tracking id per upstream, so it gets no groups."""
    cls = type(recorder)
    module = cls.__module__
    mixin = (_PostgresTrackings if module.startswith("eventsourcing.postgres") else
             _SQLiteTrackings if module.startswith("eventsourcing.sqlite") else None)
    if mixin is None or isinstance(recorder, mixin):
        return recorder
    subclass = _MULTI_TRACKING.get(cls)
    if subclass is None:
        subclass = _MULTI_TRACKING[cls] = type(f"MultiTracking{cls.__name__}", (mixin, cls), {})
    recorder.__class__ = subclass
    return recorder


class AggregateIndex:
    """An in-memory read model: the current state of every aggregate, by id and type.

    Kept up to date from the notification log (each event mutates its own copy), rebuilt
    from zero at start and caught up before each query, so a read that follows a write
    always sees it, whichever process served the write.
    """

    def __init__(self, app: ServiceApplication, kinds: Sequence[type] = ()) -> None:
        """``kinds``: only these aggregate types (their events' topics), else everything."""
        self._app = app
        self._topics = topics_of(kinds)
        self._position = 0
        self._applied = 0
        self._lock = threading.Lock()
        self._by_id: dict[UUID, Any] = {}
        self._by_type: dict[type, dict[UUID, Any]] = {}
        self._watchers: list[Callable[[Any], None]] = []

    @property
    def position(self) -> int:
        return self._position

    @property
    def applied(self) -> int:
        """How many events it has applied: changes only when its aggregates change."""
        return self._applied

    def catch_up(self) -> None:
        """Apply what was recorded since the last catch-up.

        With a topic filter, the position moves to the log's head even past events of
        other topics, so the next catch-up does not scan them again (the recorders commit
        notification ids in order, so nothing below the head can still appear)."""
        with self._lock:
            head = self._app.max_notification_id() if self._topics else None
            if head is not None and head <= self._position:
                return
            for notification in self._app.notifications(after=self._position,
                                                        topics=self._topics, stop=head):
                event: Any = self._app.mapper.to_domain_event(notification)
                aggregate = event.mutate(self._current(event.originator_id))
                if aggregate is not None:
                    self._keep(aggregate)
                self._position = notification.id
                self._applied += 1
            if head is not None:
                self._position = max(self._position, head)

    def _current(self, aggregate_id: UUID) -> Any | None:
        return self._by_id.get(aggregate_id)

    def watch(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` with each aggregate the index changes, as it changes it (a
        read model kept beside this one, such as ``shared.scheduler.Timetable``)."""
        self._watchers.append(callback)

    def _keep(self, aggregate: Any) -> None:
        self._by_id[aggregate.id] = aggregate
        self._by_type.setdefault(type(aggregate), {})[aggregate.id] = aggregate
        for callback in self._watchers:
            callback(aggregate)

    def all(self, kind: type) -> list[Any]:
        """Every aggregate of a type, oldest first (caught up first)."""
        self.catch_up()
        return sorted(self._by_type.get(kind, {}).values(), key=lambda a: a.created_on)

    def get(self, aggregate_id: UUID) -> Any | None:
        self.catch_up()
        return self._by_id.get(aggregate_id)


def topics_of(kinds: Sequence[type]) -> list[str]:
    """The topics of every event class defined on the given aggregate classes."""
    from eventsourcing.domain import DomainEvent
    from eventsourcing.utils import _topic_cache, get_topic

    topics = []
    for kind in kinds:
        # Topics a kind was recorded under before it moved (``register_topic``): its
        # events' stored topics start with them, and a filter must find those too.
        aliases = [topic for topic, obj in list(_topic_cache.items())
                   if obj is kind and topic != get_topic(kind)]
        for name in dir(kind):
            attr = getattr(kind, name, None)
            if isinstance(attr, type) and issubclass(attr, DomainEvent) and \
                    attr.__qualname__.startswith(kind.__qualname__ + "."):
                topics.append(get_topic(attr))
                suffix = attr.__qualname__[len(kind.__qualname__):]
                topics.extend(alias + suffix for alias in aliases)
    return sorted(set(topics))


def _shared_sqlite_file(env: Mapping[str, str]) -> Path | None:
    name = env.get("SQLITE_DBNAME") or ""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite" or not name or \
            ":memory:" in name or name.startswith("file:"):
        return None
    return Path(name)


def adopt_shared_sqlite_log(shared: Path, own: Path, topics: Sequence[str]) -> int:
    """Move a second log's events out of the service's main SQLite file into its own.

    Earlier releases kept both of monitoring's logs in one file, so both read one table.
    This copies the events of the given topics (with their notification ids, which the
    outbox position and the evaluator's checkpoints refer to), their aggregates'
    snapshots and the tracking records, then deletes them from the main file: two
    transactions, the copy first, so a crash in between only repeats the move on the
    next start. Returns how many events it moved (0 once done)."""
    import sqlite3

    if not topics or not shared.exists():
        return 0
    marks = ",".join("?" * len(topics))
    mine = f"SELECT originator_id FROM main.stored_events WHERE topic IN ({marks})"
    with contextlib.closing(sqlite3.connect(shared, timeout=30)) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "stored_events" not in tables:
            return 0
        moving = conn.execute(f"SELECT COUNT(*) FROM stored_events WHERE topic IN ({marks})",
                              list(topics)).fetchone()[0]
        if not moving:
            return 0
        conn.execute("ATTACH DATABASE ? AS own", (str(own),))
        own_tables = {row[0] for row in conn.execute(
            "SELECT name FROM own.sqlite_master WHERE type = 'table'")}
        with conn:
            conn.execute(
                "INSERT OR IGNORE INTO own.stored_events "
                "(rowid, originator_id, originator_version, topic, state) "
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM main.stored_events WHERE topic IN ({marks})", list(topics))
            if {"stored_snapshots"} <= tables & own_tables:
                conn.execute("INSERT OR IGNORE INTO own.stored_snapshots SELECT * FROM "
                             f"main.stored_snapshots WHERE originator_id IN ({mine})",
                             list(topics))
            if {"tracking"} <= tables & own_tables:
                conn.execute("INSERT OR IGNORE INTO own.tracking SELECT * FROM main.tracking")
        with conn:
            if "stored_snapshots" in tables:
                conn.execute(f"DELETE FROM main.stored_snapshots WHERE originator_id IN ({mine})",
                             list(topics))
            conn.execute(f"DELETE FROM main.stored_events WHERE topic IN ({marks})",
                         list(topics))
        return int(moving)


def aggregate_uuid(kind: str, natural_key: str) -> UUID:
    """A stable aggregate id for an outside identifier, so creation is idempotent."""
    from shared.ids import stable_id

    return stable_id(kind, natural_key)


def ensure_schema(settings_env: Mapping[str, str]) -> None:
    """Create the service's PostgreSQL database and schema if they are missing."""
    if settings_env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        return
    import psycopg
    from psycopg import sql

    params = {
        "host": settings_env["POSTGRES_HOST"],
        "port": settings_env["POSTGRES_PORT"],
        "user": settings_env["POSTGRES_USER"],
        "password": settings_env.get("POSTGRES_PASSWORD") or None,
        "connect_timeout": int(settings_env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
    }
    dbname = settings_env["POSTGRES_DBNAME"]
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        with _advisory_lock(conn, f"database:{dbname}"):
            _create_if_missing(conn, "SELECT 1 FROM pg_database WHERE datname = %s", dbname,
                               sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    schema = settings_env["POSTGRES_SCHEMA"]
    with psycopg.connect(dbname=dbname, autocommit=True, **params) as conn:
        with _advisory_lock(conn, f"schema:{schema}"):
            _create_if_missing(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", schema,
                               sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                                   sql.Identifier(schema)))


def _create_if_missing(conn: Any, exists: str, name: str, create: Any) -> None:
    """Create a database or schema unless it exists. Under the advisory lock only one of
    the processes starting at once gets here first; the others then find it. A creator
    that does not take the lock (another tool, an older release) can still win the race:
    its duplicate (``duplicate_database``, or the catalogue's ``unique_violation`` when
    both insert at once) means the object exists, which is all that is wanted."""
    import psycopg

    if conn.execute(exists, (name,)).fetchone():
        return
    with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.DuplicateSchema,
                             psycopg.errors.UniqueViolation):
        conn.execute(create)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], signed=True)


@contextlib.contextmanager
def _advisory_lock(conn: Any, name: str) -> Iterator[None]:
    """A session-level advisory lock on this connection (it may be a maintenance
    connection: CREATE DATABASE cannot run in a transaction, so no transaction lock)."""
    key = _lock_key(name)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextlib.contextmanager
def schema_lock(settings_env: Mapping[str, str]) -> Iterator[None]:
    """Serialise table creation between processes starting at once (gunicorn workers and
    the service's worker race to CREATE TYPE/TABLE otherwise): a PostgreSQL advisory lock
    per schema, held while the application builds its tables."""
    if settings_env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        yield
        return
    import psycopg

    with psycopg.connect(host=settings_env["POSTGRES_HOST"], port=settings_env["POSTGRES_PORT"],
                         user=settings_env["POSTGRES_USER"],
                         password=settings_env.get("POSTGRES_PASSWORD") or None,
                         dbname=settings_env["POSTGRES_DBNAME"], autocommit=True) as conn, \
            _advisory_lock(conn, settings_env["POSTGRES_SCHEMA"]):
        yield


def iter_batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
