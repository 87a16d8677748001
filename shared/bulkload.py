"""Loading a stored index from nothing (a rebuild, a first start on a long log) at about
the rate the store reads its log.

Why a path of its own: applying an event the general way (the mapper decodes it with the
standard library's JSON, the event makes or changes the aggregate, a snapshot of it is
encoded again) costs several times what reading the notification costs, so a rebuild of a
million purchased offerings took minutes. Most of a long log is aggregates that were
created and never changed (the inventory a migration registered): such a row is the
creation event's stored fields in the order the aggregate's ``__init__`` assigns them,
plus what it always sets. A :class:`Creation` says so for one event class, and a load
reads it straight off the stored bytes (orjson), writes the row's state with orjson, and
makes the aggregate from that state (as a snapshot would) for the columns and the
index's hooks. Everything else takes the general path, in the same transaction:

- an aggregate with more than one event in a page, or whose event is not a creation;
- an event whose fields are not exactly the ones the event class has now (an older
  version, to be upcast), or whose aggregate topic is not the kind's own;
- any value that is not text, a whole number of 64 bits, true/false/null or a value of a
  registered transcoding that encodes back to the same text (a float, a list, a dict:
  the two JSON libraries could write those differently);
- a mapper that compresses or encrypts.

So the rows are the ones the general path stores, byte for byte (``tests/integration/
test_bulk_load.py`` rebuilds both ways and compares every row). As a guard against a
``Creation`` that no longer matches its ``__init__``, the first eligible event of each
creation in every page also takes the general path and both results are compared; a
difference turns the creation off for that index (and logs it) and the load starts again.

While Python applies a page, a thread reads the next one (PostgreSQL works on the other
core), and on PostgreSQL the rows of fresh aggregates are copied straight into their
table: a load from nothing has no row to update.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

if TYPE_CHECKING:
    from shared.readmodel import StoredIndex

log = logging.getLogger(__name__)

PAGE = 10_000  # notifications read, and applied in one transaction, at a time
_SCALARS = (str, int, bool, type(None))
_BASE = ("timestamp", "originator_topic")
_REFUSED = object()
_HEX32 = re.compile("[0-9a-f]{32}")
_IMMUTABLE = (UUID, datetime, date, Decimal, str, int)
_UNKNOWN = SafeUUID.unknown  # (an enum's member: a property read each time)


_TIME = re.compile(r"\d{4}-\d\d-\d\dT(\d\d):\d\d:\d\d(\.\d{6})?([+-]\d\d:\d\d)?")


def _canonical_time(text: str) -> bool:
    """Whether ``datetime.isoformat()`` writes what ``fromisoformat`` reads of ``text``
    back as ``text`` (what it wrote: YYYY-MM-DDTHH:MM:SS, six digits of a fraction that
    is not zero, an offset in minutes that is not ``-00:00``), without writing it."""
    match = _TIME.fullmatch(text)
    return match is not None and match[1] != "24" and match[2] != ".000000" \
        and match[3] != "-00:00"


def _uuid(value: int) -> UUID:
    """``UUID(int=value)`` as ``UUID.__init__`` ends (it checks and parses first)."""
    made = object.__new__(UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", _UNKNOWN)
    return made


@dataclass(frozen=True)
class Creation:
    """How an aggregate created by one event, and never changed, is stored.

    ``event``: the creation event class (``PurchasedOffering.Registered``).
    ``attributes``: what the aggregate's ``__init__`` assigns, in its order: a name is the
    event's field of that name, copied; ``(name, value)`` a value it always assigns
    (``None``, ``[]``, a text…). Every field of the event is copied: a field the
    ``__init__`` reads but does not keep as it is cannot be said here (so is refused)."""

    event: type
    attributes: tuple[str | tuple[str, Any], ...]

    def __post_init__(self) -> None:
        fields = set(self.fields)
        copied = [a for a in self.attributes if isinstance(a, str)]
        if set(copied) != fields:
            raise ValueError(f"{self.event.__qualname__}: a creation copies every field "
                             f"of its event (missing {sorted(fields - set(copied))}, "
                             f"unknown {sorted(set(copied) - fields)})")

    @property
    def fields(self) -> tuple[str, ...]:
        """The event's own fields (what its ``__init__`` takes)."""
        return tuple(f.name for f in dataclasses.fields(self.event)
                     if f.name not in ("originator_id", "originator_version", *_BASE))

    @property
    def kind(self) -> type:
        owner = self.event.__qualname__.rpartition(".")[0]
        module = __import__(self.event.__module__, fromlist=["_"])
        found: Any = module
        for part in owner.split("."):
            found = getattr(found, part)
        return found


class _Maker:
    """One :class:`Creation`, ready for an index's transcoder: stored bytes in, the row's
    state and the aggregate out (or None: the general path)."""

    def __init__(self, creation: Creation, transcoder: Any) -> None:
        self.creation = creation
        self.kind = creation.kind
        self.topic = get_topic(self.kind)
        self.event_topic = get_topic(creation.event)
        self.names = transcoder.names
        version = getattr(creation.event, "class_version", 1)
        self.expected = {*_BASE, *creation.fields} | ({"class_version"} if version > 1
                                                     else set())
        self.event_version = version
        # The fields as the event class stores them (the common order; any other is
        # compared as a set).
        self.order = (*_BASE, *creation.fields) + (("class_version",) if version > 1
                                                  else ())
        self.kind_version = getattr(self.kind, "class_version", 1)
        self.attributes = [(a, None, True) if isinstance(a, str) else (a[0], a[1], False)
                           for a in creation.attributes]
        self.enabled = True
        self._known: dict[tuple[str, str], Any] = {}
        for name, _, _ in self.attributes:
            if not name.isidentifier():
                raise ValueError(f"{creation.event.__qualname__}: {name!r} is no attribute")
        self._make = self._compile()

    def _typed(self, value: Any) -> Any:
        """A stored value as the transcoder would decode it, if this path may copy it
        (else ``_REFUSED``). Values of transcodings are kept (immutable, and repeated:
        the offering a thousand purchased offerings name)."""
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is not dict or len(value) != 2:
            return _REFUSED
        name, data = value.get("_type_"), value.get("_data_")
        if type(name) is not str or type(data) is not str:
            return _REFUSED
        key = (name, data)
        typed = self._known.get(key, _REFUSED)
        if typed is not _REFUSED:
            return typed
        transcoding = self.names.get(name)
        if transcoding is None:
            return _REFUSED
        try:
            if name == "uuid_hex" and _HEX32.fullmatch(data):  # UUID() without parsing
                typed = _uuid(int(data, 16))
            elif name == "datetime_iso" and _canonical_time(data):
                typed = transcoding.decode(data)  # (isoformat() gives it back: not asked)
            else:
                typed = transcoding.decode(data)
                if transcoding.encode(typed) != data:  # would be written back otherwise
                    return _REFUSED
        except Exception:  # the general path says what is wrong with it
            return _REFUSED
        if type(typed) not in _IMMUTABLE:
            return typed
        if len(self._known) >= 100_000:
            self._known.clear()
        self._known[key] = typed
        return typed

    def make(self, oid: str, state: bytes) -> tuple[bytes, Any] | None:
        try:
            raw = orjson.loads(state)
        except orjson.JSONDecodeError:
            return None
        if tuple(raw) != self.order and raw.keys() != self.expected and (
                raw.keys() - {"__meta__"} != self.expected):
            return None
        if raw["originator_topic"] != self.topic or (
                self.event_version > 1 and raw["class_version"] != self.event_version):
            return None
        return self._make(raw, oid)

    def _compile(self) -> Callable[[dict[str, Any], str], tuple[bytes, Any] | None]:
        """The row and the aggregate of one event, written out attribute by attribute
        (a loop over the attributes costs about as much again): stored values copied
        into the row's state, their decoded values into the aggregate's."""
        space: dict[str, Any] = {
            "typed": self._typed, "REFUSED": _REFUSED, "SCALARS": _SCALARS,
            "uuid": _uuid, "dumps": orjson.dumps, "loads": orjson.loads,
            "new": object.__new__, "assign": object.__setattr__, "kind": self.kind}
        lines = ["def make(raw, oid):",
                 "    ts = raw['timestamp']",
                 "    created = typed(ts)",
                 "    if created is REFUSED:",
                 "        return None"]
        row = ["'_created_on': ts", "'_modified_on': ts"]
        attrs = ["'_id': uuid(int(oid.replace('-', ''), 16))", "'_version': 1",
                 "'_created_on': created", "'_modified_on': created",
                 "'_pending_events': []"]
        for n, (name, constant, copied) in enumerate(self.attributes):
            key = repr(name)
            if copied:
                lines += [f"    v{n} = raw[{key}]",
                          f"    if type(v{n}) in SCALARS:",
                          f"        t{n} = v{n}",
                          "    else:",
                          f"        t{n} = typed(v{n})",
                          f"        if t{n} is REFUSED:",
                          "            return None"]
                row.append(f"{key}: v{n}")
                attrs.append(f"{key}: t{n}")
            else:
                space[f"c{n}"] = constant
                row.append(f"{key}: c{n}")
                if constant == [] or constant == {}:  # a fresh one each
                    attrs.append(f"{key}: {constant!r}")
                elif isinstance(constant, list | dict):
                    space[f"e{n}"] = orjson.dumps(constant)
                    attrs.append(f"{key}: loads(e{n})")
                else:
                    attrs.append(f"{key}: c{n}")
        if self.kind_version > 1:
            row.append(f"'class_version': {self.kind_version}")
        lines += ["    state = {" + ", ".join(row) + "}",
                  "    aggregate = new(kind)",
                  "    assign(aggregate, '__dict__', {" + ", ".join(attrs) + "})",
                  "    return dumps(state), aggregate"]
        exec("\n".join(lines), space)  # noqa: S102 - made here, from names checked above
        return space["make"]


@dataclass
class Made:
    """An aggregate made by a :class:`Creation`: its row's state, already encoded."""

    seq: int
    oid: str  # its id as text
    aggregate: Any
    state: bytes


def _pages(index: StoredIndex, start: int, head: int, size: int
           ) -> Iterator[tuple[list[tuple[Any, ...]], int]]:
    """The index's notifications after ``start`` up to ``head``, a page at a time, each
    with the position it takes the index to: ``(id, originator id as text, version,
    topic, state)``, read in a thread one page ahead."""
    app: Any = index.app
    topics = list(index._topics)

    def read(after: int) -> tuple[list[tuple[Any, ...]], int]:
        if index._db.postgres:
            datastore = app.recorder.datastore
            name = app.recorder.events_table_name
            table = f'"{datastore.schema}"."{name}"' if datastore.schema else f'"{name}"'
            from psycopg.rows import tuple_row

            # Tuples in the binary format: no state in hexadecimal, no dict a row.
            with datastore.get_connection() as conn, conn.transaction(force_rollback=True):
                curs = conn.cursor(row_factory=tuple_row, binary=True)
                curs.execute(f"SELECT notification_id, originator_id::text, "
                             f"originator_version, topic, state FROM {table} "
                             "WHERE notification_id > %s AND notification_id <= %s "
                             "AND topic = ANY(%s) ORDER BY notification_id LIMIT %s",
                             (after, head, topics, size), prepare=False)
                rows = curs.fetchall()
        else:
            rows = [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
                    for n in app.recorder.select_notifications(
                        start=after, limit=size, inclusive_of_start=False, topics=topics,
                        stop=head)]
        return rows, (rows[-1][0] if len(rows) == size else head)

    if not index._db.postgres:  # one file, one writer: nothing to overlap
        position = start
        while position < head:
            rows, position = read(position)
            yield rows, position
        return

    ahead: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def reader() -> None:
        position = start
        try:
            while position < head and not stop.is_set():
                rows, position = read(position)
                ahead.put((rows, position))
        except BaseException as exc:  # handed to the loop, which raises it
            ahead.put(exc)
        ahead.put(None)

    thread = threading.Thread(target=reader, name=f"bulk-{index.name}", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with_room = True
        while with_room:  # let the reader finish its put and see the stop
            try:
                ahead.get_nowait()
            except queue.Empty:
                with_room = thread.is_alive()
                thread.join(timeout=0.05)


def bulk_apply(index: StoredIndex, head: int,
               progress: Callable[[int, int], None] | None) -> int:
    """Apply the log up to ``head`` with :class:`Creation`\\ s where they apply, a page a
    transaction (the rows and the position together, as every catch-up). Returns how many
    events it applied; stops early (the catch-up's loop carries on the general way) when
    another process moved the position meanwhile."""
    mapper: Any = index.app.mapper
    makers = {} if mapper.cipher or mapper.compressor else {
        m.event_topic: m for m in (_Maker(c, mapper.transcoder) for c in index.creations)}
    applied = 0
    index._created = 0
    # A load makes and drops a page of aggregates at a time, without cycles between
    # them: the collector's passes over everything the process holds, every few
    # hundred of them, cost a quarter of the load. It runs again once the load is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        while True:
            done, restart = _load(index, head, progress, makers)
            applied += done
            if not restart:
                return applied
            # A creation disagreed with the general path: what it made is undone, and
            # the load starts again from nothing without it.
            index._reset()
            index._created = applied = 0
    finally:
        if collecting:
            gc.enable()


def _load(index: StoredIndex, head: int, progress: Callable[[int, int], None] | None,
          makers: dict[str, _Maker]) -> tuple[int, bool]:
    """Pages applied in order, each in a transaction of its own; on PostgreSQL a page is
    written (in a thread) while the next one is made. Returns how many events it applied
    and whether a creation disagreed (the load is to start again without it)."""
    positions = index._db.qualified(index.POSITIONS)
    lock = " FOR UPDATE" if index._db.postgres else ""
    start = index.stored_position()
    state = {"expected": start, "applied": 0, "moved": False}

    def write(made: list[Made], general: list[Notification], through: int) -> None:
        if state["moved"]:
            return
        with index._db.transaction(write=True) as tx:
            if index._db.postgres:  # as every batch: a lost one is only applied again
                tx.execute("SET LOCAL synchronous_commit TO OFF")
            row = tx.execute(f"SELECT position FROM {positions} WHERE name = ?{lock}",
                             (index.name,)).fetchone()
            if row is None or int(row["position"]) != state["expected"]:
                state["moved"] = True  # another process applied it: the batches go on
                return
            state["applied"] += index._apply(tx, general, made, fresh=True)
            index._created += len(made)
            tx.execute(f"UPDATE {positions} SET position = ? WHERE name = ?",
                       (through, index.name))
        state["expected"] = through
        index._position = max(index._position, through)
        if progress is not None:
            progress(through, head)

    writer = ThreadPoolExecutor(1, thread_name_prefix=f"bulk-{index.name}") \
        if index._db.postgres else None
    pending: Future[None] | None = None
    try:
        for page, through in _pages(index, start, head, PAGE):
            made, general, wrong = _split(index, page, makers)
            if pending is not None:
                pending.result()
            if wrong or state["moved"]:
                return state["applied"], wrong
            if writer is None:
                write(made, general, through)
            else:
                pending = writer.submit(write, made, general, through)
        if pending is not None:
            pending.result()
    finally:
        if writer is not None:
            writer.shutdown(wait=True)
    return state["applied"], False


def _split(index: StoredIndex, page: Sequence[tuple[Any, ...]], makers: dict[str, _Maker]
           ) -> tuple[list[Made], list[Notification], bool]:
    """A page's aggregates made by creations, and the notifications for the general path;
    ``True`` when a creation disagrees with the general path (turned off, then)."""
    counts = Counter(oid for _, oid, _, _, _ in page)
    made: list[Made] = []
    general: list[Notification] = []
    checked: set[str] = set()
    for seq, oid, version, topic, state in page:
        maker = makers.get(topic)
        if maker is not None and maker.enabled and version == 1 and counts[oid] == 1:
            result = maker.make(oid, state)
            if result is not None:
                if topic not in checked:
                    checked.add(topic)
                    if not _agrees(index, maker, seq, oid, state, result):
                        maker.enabled = False
                        log.warning("%s: %s no longer stores what the general path does; "
                                    "loading %s without it", index.name,
                                    maker.creation.event.__qualname__, index.name)
                        return [], [], True
                made.append(Made(seq, oid, result[1], result[0]))
                continue
        general.append(Notification(id=seq, originator_id=UUID(oid),
                                    originator_version=version, topic=topic, state=state))
    return made, general, False


def _agrees(index: StoredIndex, maker: _Maker, seq: int, oid: str, state: bytes,
            result: tuple[bytes, Any]) -> bool:
    """The general path's aggregate and row state for one event, against the creation's."""
    mapper: Any = index.app.mapper
    event: Any = mapper.to_domain_event(Notification(
        id=seq, originator_id=UUID(oid), originator_version=1, topic=maker.event_topic,
        state=state))
    aggregate = event.mutate(None)
    encoded = mapper.transcoder.encode(Snapshot.take(aggregate).state)
    return (type(aggregate) is maker.kind and encoded == result[0]
            and vars(aggregate) == vars(result[1]))
