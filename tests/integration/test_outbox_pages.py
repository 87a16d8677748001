"""The outbox relay describes a page of notifications together (``shared.bus.outbox.Page``):
the same messages as describing each event alone from the store, with the states before
the page read in one query and a page of new aggregates read not at all.

Each test runs on SQLite and on PostgreSQL (``store_env``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.threshold_registry.application import ThresholdRegistry
from services.threshold_registry.domain import PurchasedOffering
from services.threshold_registry.messaging import SERVICE, describer
from shared.bus.outbox import OutboxRelay, Page, aggregate_after
from shared.bus.transport import InProcessTransport


@pytest.fixture
def registry(store_env: dict[str, str]) -> Iterator[ThresholdRegistry]:
    app = ThresholdRegistry(store_env)
    try:
        yield app
    finally:
        app.close()


def relay_of(app: ThresholdRegistry) -> OutboxRelay:
    return OutboxRelay(app, SERVICE, InProcessTransport(), describer(app))


def estate(app: ThresholdRegistry, items: int = 6, changes: int = 3) -> list[str]:
    """A group and offering, purchased offerings, then changes to them (interleaved, so
    a page cut anywhere holds aggregates whose earlier events are in an earlier page),
    and a move of the offering to another group."""
    group = app.register_offering_group("Fibre")
    offering = app.register_offering("Fibre 1G", lifecycle_status="active", group_id=group.id)
    products = [f"p-{n}" for n in range(items)]
    for product in products:
        app.upsert_purchased_offering(product, {"offering_id": offering.id,
                                                "customer_id": "c-1"}, None)
    for round_ in range(changes):
        for n, product in enumerate(products):
            app.upsert_purchased_offering(product, {"site": f"site-{round_}-{n}"},
                                          "suspended" if round_ % 2 == 0 else "active")
    other = app.register_offering_group("Fibre business")
    app.update_offering(offering.id, {"group_id": other.id})
    return products


def bodies(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(m.message_id, orjson.loads(m.to_bytes())) for m in messages]


def one_by_one(relay: OutboxRelay) -> list[tuple[str, Any]]:
    """Each event described alone, its aggregate reconstructed from the store."""
    return bodies([m for n in relay.app.notifications() for m in relay.to_messages(n)])


@pytest.mark.parametrize("page_size", [1, 4, 7, 500])
def test_a_page_describes_each_event_as_describing_it_alone_does(
        registry: ThresholdRegistry, page_size: int) -> None:
    estate(registry)
    relay = relay_of(registry)
    expected = one_by_one(relay)
    notifications = list(registry.notifications())
    got: list[Any] = []
    for start in range(0, len(notifications), page_size):
        got.extend(relay.page_messages(notifications[start:start + page_size]))
    assert bodies(got) == expected
    assert len(expected) == len(notifications)


def test_a_page_of_new_purchased_offerings_reads_no_aggregate_from_the_store(
        registry: ThresholdRegistry) -> None:
    estate(registry, items=20, changes=0)
    relay = relay_of(registry)
    expected = one_by_one(relay)
    reads: list[Any] = []
    get, load_at = registry.repository.get, registry.load_many_at

    def counted_get(*args: Any, **kwargs: Any) -> Any:
        reads.append(("get", args))
        return get(*args, **kwargs)

    def counted_load_at(versions: Any) -> Any:
        reads.append(("load_many_at", dict(versions)))
        return load_at(versions)

    registry.repository.get = counted_get  # type: ignore[method-assign]
    registry.load_many_at = counted_load_at  # type: ignore[method-assign]
    notifications = list(registry.notifications())
    purchased = [n for n in notifications if "PurchasedOffering" in n.topic]
    got = bodies(relay.page_messages(purchased))
    assert len(got) == 20
    assert got == [m for m in expected if "purchasedOffering" in m[1]["event"]]
    # The offering's group, once for the page (read from the log); nothing per event.
    offering_id = got[0][1]["event"]["purchasedOffering"]["productOfferingId"]
    assert [(kind, [str(a) for a in args]) for kind, args in reads] == [
        ("get", [offering_id])]


def test_the_states_before_a_page_are_read_in_one_query_at_their_versions(
        registry: ThresholdRegistry) -> None:
    products = estate(registry, items=5, changes=2)
    notifications = list(registry.notifications())
    tail = notifications[-8:]  # changes of aggregates created before the page
    events = [registry.mapper.to_domain_event(n) for n in tail]
    loads: list[dict[Any, int]] = []
    load_at = registry.load_many_at

    def counted(versions: Any) -> Any:
        loads.append(dict(versions))
        return load_at(versions)

    registry.load_many_at = counted  # type: ignore[method-assign]
    page = Page(registry, events)
    with page.bound():
        for event in events:
            state = aggregate_after(registry, event)
            alone = registry.repository.get(event.originator_id,
                                            version=event.originator_version)
            assert state.version == alone.version == event.originator_version
            assert vars(state) == vars(alone)
    purchased = [e for e in events if isinstance(registry.repository.get(e.originator_id),
                                                 PurchasedOffering)]
    assert len(loads) == 2  # one for the purchased offerings, one for the offering
    first_versions = {}
    for event in purchased:
        first_versions.setdefault(event.originator_id, event.originator_version - 1)
    assert first_versions in loads
    assert {PurchasedOffering.create_id(p) for p in products} >= set(first_versions)


def test_an_event_whose_earlier_events_are_not_in_the_page_is_read_from_the_store(
        registry: ThresholdRegistry) -> None:
    """As with a topic filter: the page skips some events of an aggregate."""
    estate(registry, items=2, changes=4)
    notifications = list(registry.notifications())
    events = [registry.mapper.to_domain_event(n) for n in notifications]
    skipping = [e for i, e in enumerate(events) if i % 3 != 1]
    with Page(registry, skipping).bound():
        for event in skipping:
            state = aggregate_after(registry, event)
            alone = registry.repository.get(event.originator_id,
                                            version=event.originator_version)
            assert vars(state) == vars(alone)


def test_many_aggregates_are_read_together_each_at_its_own_version(
        registry: ThresholdRegistry) -> None:
    products = estate(registry, items=4, changes=3)
    ids = [PurchasedOffering.create_id(p) for p in products]
    wanted = {aggregate_id: n + 1 for n, aggregate_id in enumerate(ids)}
    found = registry.load_many_at(wanted)
    assert {i: a.version for i, a in found.items()} == wanted
    for aggregate_id, version in wanted.items():
        assert vars(found[aggregate_id]) == vars(registry.repository.get(
            aggregate_id, version=version))
    assert registry.load_many_at({}) == {}


def test_an_aggregate_past_its_snapshot_is_read_at_an_earlier_version_too(
        registry: ThresholdRegistry) -> None:
    """Purchased offerings are snapshotted every 100 events: a version before the
    latest snapshot is read from an earlier one (or the events), one after it from it."""
    estate(registry, items=1, changes=0)
    for n in range(105):
        registry.upsert_purchased_offering("p-0", {"site": f"site-{n}"}, None)
    aggregate_id = PurchasedOffering.create_id("p-0")
    for version in (50, 100, 103, 106):
        found = registry.load_many_at({aggregate_id: version})[aggregate_id]
        assert vars(found) == vars(registry.repository.get(aggregate_id, version=version))
