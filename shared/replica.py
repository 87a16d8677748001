"""The replica kit: a service's local copy of facts another service owns (the registry's
inventory, SLA types and standards, planned outages), kept from that service's bus
events, so that no request ever waits on a synchronous call to the owner
(docs/architecture.md, "Partitioning and the working set").

Three parts, each usable alone:

- :class:`Replica`, the aggregate: the last state seen of one resource of one kind,
  identified by what it copies (``stable_id(namespace, "replica", kind, id)``), so a
  redelivered event finds it instead of creating a second one. It keeps a newer version
  only: an event replayed, redelivered or overtaken by a later one changes nothing.
  A service subclasses it once in its domain, naming itself (``namespace``).
- :class:`Replicated`, one rule per event type: which kind of replica it feeds, where the
  resource sits in the event, how its id and version are read and what of it is kept.
- :func:`replica_handlers`, the inbox handlers for a table of those rules (event type →
  rule), each reading the event into a :class:`Copy` and giving it to the service
  (which stores it with :func:`receive`, perhaps along with what the change implies).
  They are groupable: the inbox handles a run of them in one transaction, their
  replicas loaded in one read (a fulfilment migration is absorbed at thousands of
  events a second, not hundreds).

A new service that copies another's facts writes its table of rules and one function
that keeps a copy; the rest is here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event

from shared.bus.envelope import Envelope
from shared.bus.inbox import Handler, Rejected, groupable
from shared.ids import stable_id
from shared.store import InboxGroup

Resource = dict[str, Any]


class Replica(Aggregate):
    """The last seen state of a resource another service owns, and its version there.

    Subclass it once per service (``class Replica(replica.Replica): namespace = "x"``)
    in the service's domain module: the subclass gets event classes of its own, so the
    stored events name the service's module and a service's index of its replicas reads
    only its own."""

    namespace = ""  # not annotated: an annotation would make eventsourcing take the
    # class for a dataclass and give subclasses an ``__init__`` of their own fields

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The update event is defined here, triggered by name: give each subclass its
        # own, as eventsourcing does for the created event, so its topic names the
        # subclass's module (its stored events keep resolving when the kit moves).
        if "Updated" not in cls.__dict__:
            cls.Updated = type("Updated", (cls.Updated,), {  # type: ignore[misc]
                "__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.Updated"})
        super().__init_subclass__(**kwargs)

    @classmethod
    def create_id(cls, kind: str, resource_id: str) -> UUID:
        return _replica_id(cls.namespace, kind, resource_id)

    @event("Received")
    def __init__(self, kind: str, resource_id: str, resource: Resource,
                 source_version: int) -> None:
        self.kind = kind
        self.resource_id = resource_id
        self.resource = resource
        self.source_version = source_version

    class Updated(Aggregate.Event):
        resource: Resource
        source_version: int

        def apply(self, aggregate: Any) -> None:
            aggregate.resource = self.resource
            aggregate.source_version = self.source_version

    def receive(self, resource: Resource, source_version: int) -> bool:
        """Keep a newer state; an older or equal one (out of order, replayed) is ignored.
        True when the state changed."""
        if source_version <= self.source_version:
            return False
        self.trigger_event(type(self).Updated, resource=resource,
                           source_version=source_version)
        return True


@functools.lru_cache(maxsize=4096)
def _replica_id(namespace: str, kind: str, resource_id: str) -> UUID:
    """Remembered for a while: an inbox group asks for each of its replicas' ids twice
    (to load them ahead, then to keep each copy), and a uuid5 is a SHA-1."""
    return stable_id(namespace, "replica", kind, resource_id)


def _id_of(resource: Resource) -> str:
    return str(resource["id"])


def _version_of(resource: Resource) -> int:
    return int(resource.get("version", 0))


def _all_of(resource: Resource, _: Envelope) -> Resource:
    return resource


@dataclass(frozen=True)
class Replicated:
    """How the events of one type feed one kind of replica.

    ``member``: the event's member holding the resource (``envelope.event[member]``);
    ``facts``: what of it is kept (by default all of it), given the resource and the
    envelope (e.g. a cancellation read from ``change``); ``id_of`` / ``version_of``:
    the owner's id and version of the resource (by default its ``id`` and ``version``);
    ``grouped``: False when keeping the copy also does what reads more than the replica
    (notification routes a planned outage's notice to its lists), so such a message is
    handled alone, never in a group of others."""

    kind: str
    member: str
    facts: Callable[[Resource, Envelope], Resource] = field(default=_all_of)
    id_of: Callable[[Resource], str] = field(default=_id_of)
    version_of: Callable[[Resource], int] = field(default=_version_of)
    grouped: bool = True

    def copy(self, envelope: Envelope) -> Copy:
        """The copy an event carries; :class:`Rejected` (dead-lettered at once) when the
        event has no such resource or the resource no readable id or version."""
        resource = envelope.event.get(self.member)
        if not isinstance(resource, dict):
            raise Rejected(f"the {envelope.event_type} carries no {self.member}")
        try:
            resource_id, version = self.id_of(resource), self.version_of(resource)
        except (KeyError, TypeError, ValueError) as exc:
            raise Rejected(f"the {envelope.event_type}'s {self.member} has no readable id "
                           f"or version ({type(exc).__name__}: {exc})") from None
        if not resource_id:
            raise Rejected(f"the {envelope.event_type}'s {self.member} has no id")
        return Copy(self.kind, resource_id, self.facts(resource, envelope), version, envelope)


@dataclass(frozen=True)
class Copy:
    """One resource as an event told it: its kind, owner's id and version, the facts
    kept, and the envelope it came in (for services that act on the change too)."""

    kind: str
    resource_id: str
    resource: Resource
    version: int
    envelope: Envelope | None = None


def replica_handlers(rules: Mapping[str, Replicated], keep: Callable[[Copy], None],
                     replica: type[Replica] | None = None) -> dict[str, Handler]:
    """The inbox handlers of a table of rules (event type → rule): each reads the event
    into a :class:`Copy` by its rule and gives it to ``keep``. Groupable unless the rule
    says otherwise; with ``replica`` (the service's subclass, which ``keep`` receives
    into) a group's replicas are loaded ahead in one read."""

    def handler(rule: Replicated) -> Handler:
        def replicate(envelope: Envelope) -> None:
            keep(rule.copy(envelope))

        if not rule.grouped:
            return replicate

        def prepare(envelopes: Sequence[Envelope]) -> None:
            group = InboxGroup.current()
            if group is None or replica is None:
                return
            ids = []
            for envelope in envelopes:
                try:
                    copy = rule.copy(envelope)
                except Rejected:
                    continue  # refused when its handler runs
                ids.append(replica.create_id(copy.kind, copy.resource_id))
            group.preload(ids)

        return groupable(replicate, prepare)

    return {event_type: handler(rule) for event_type, rule in rules.items()}


def receive(repository: Any, kind: type[Replica], copy: Copy) -> Replica:
    """The replica of ``copy`` with it applied: created when first heard of, updated when
    the copy is newer, unchanged otherwise. Not saved, so the caller saves it with what
    the change implies (in one transaction); an unchanged one saves nothing. Inside an
    inbox group, the replica as the group knows it (loaded ahead, or changed by an
    earlier message of the group)."""
    replica_id = kind.create_id(copy.kind, copy.resource_id)
    group = InboxGroup.current()
    known = group.find(replica_id) if group is not None else InboxGroup.UNSEEN
    if known is InboxGroup.UNSEEN:
        try:
            known = repository.get(replica_id)
        except AggregateNotFoundError:
            known = None
    if known is None:
        return kind(kind=copy.kind, resource_id=copy.resource_id, resource=copy.resource,
                    source_version=copy.version)
    replica: Replica = known
    replica.receive(copy.resource, copy.version)
    return replica


def find(repository: Any, kind: type[Replica], replica_kind: str,
         resource_id: str) -> Replica | None:
    """The replica of one resource, None when not heard of (yet)."""
    try:
        return repository.get(kind.create_id(replica_kind, resource_id))
    except AggregateNotFoundError:
        return None


def by_kind(replicas: Iterable[Replica], kinds: Iterable[str] = ()
            ) -> dict[str, dict[str, Resource]]:
    """The kept resources by kind and id (every kind in ``kinds`` present, if empty)."""
    table: dict[str, dict[str, Resource]] = {k: {} for k in kinds}
    for replica in replicas:
        table.setdefault(replica.kind, {})[replica.resource_id] = replica.resource
    return table
