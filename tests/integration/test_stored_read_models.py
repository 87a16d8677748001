"""Stored read models (``shared/readmodel.py``) answer lists as the in-memory lists did,
keep up with the log exactly once across processes and restarts, and rebuild to the
same answers — on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from services.threshold_registry import schemas
from services.threshold_registry.application import ThresholdRegistry
from services.threshold_registry.domain import Placed, PurchasedOffering
from services.threshold_registry.views import RegistryIndex
from shared.http import listing
from shared.http.blueprint import wire_names
from shared.http.errors import ApiError
from shared.readmodel import AtLeast

pytestmark = pytest.mark.integration


def an_estate(registry: ThresholdRegistry, items: int, seed: int = 7) -> None:
    """Offerings in two groups and none, SLA types, and purchased offerings with every
    attribute sometimes missing, so filters and sorts meet nulls, ties and times."""
    rng = random.Random(seed)
    groups = [registry.register_offering_group(f"Group {n}") for n in range(2)]
    offerings = [registry.register_offering(f"Offering {n}", lifecycle_status="active",
                                            group_id=[None, *[g.id for g in groups]][n % 3])
                 for n in range(5)]
    gold = registry.register_sla_type(name="gold", maintenance_accounting="excluded",
                                      minimum_notice_days=10,
                                      credit_percent_per_breached_period=5,
                                      credit_cap_percent=30)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(items):
        charge = rng.choice([None, "10.00", "9.50", "100"])
        registry.create_purchased_offering(
            product_id=f"p-{n:04d}", customer_id=f"cust-{rng.randrange(8)}",
            offering_id=rng.choice(offerings).id,
            customer_group=rng.choice([None, "smb", "enterprise", "Éire"]),
            sla_type_id=rng.choice([None, gold.id]),
            site=rng.choice([None, "", "Dublin", "cork", "Zürich"]),
            monthly_charge=charge, currency=None if charge is None else "EUR",
            status=rng.choice(["active", "suspended", "terminated"]),
            start_date=rng.choice([None, start + timedelta(hours=rng.randrange(500))]),
        )
    # Moves after purchase: the items follow their offering's group.
    registry.update_offering(offerings[0].id, {"group_id": groups[1].id})
    registry.update_offering(offerings[1].id, {"group_id": None})


def random_query(rng: random.Random, values: dict[str, list[Any]]) -> dict[str, str]:
    query: dict[str, str] = {}
    for _ in range(rng.randrange(3)):
        attr = rng.choice(sorted(values))
        sample = [str(v) for v in values[attr] if v is not None] or ["x"]
        op = rng.choice(["eq", "eq", "gt", "gte", "lt", "lte", "ne"])
        if op == "eq":
            picked = rng.sample(sample, min(len(sample), rng.randrange(1, 3)))
            if rng.random() < 0.2:
                picked.append(rng.choice(["null", ""]))
            query[attr] = ",".join(picked)
        else:
            query[f"{attr}.{op}"] = rng.choice([*sample, "2026-01-05T00:00:00Z", "5"])
    if rng.random() < 0.7:
        keys = rng.sample(sorted(values), rng.randrange(1, 3))
        query["sort"] = ",".join(("-" if rng.random() < 0.5 else "") + k for k in keys)
    if rng.random() < 0.5:
        query["offset"] = str(rng.randrange(0, 30))
    query["limit"] = str(rng.choice([5, 20, 1000]))
    if rng.random() < 0.2:
        query["fields"] = "customerId,status"
    return query


def answer(flask_app: Flask, query: dict[str, str], compute: Any) -> Any:
    with flask_app.test_request_context("/", query_string=query):
        try:
            return compute()
        except ApiError as exc:
            return ("error", exc.status, exc.code)


def test_the_inventory_pages_in_the_database_as_the_lists_did_in_memory(
        store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 150)
        schema = schemas.PurchasedOffering(many=True)
        allowed = wire_names(schema)
        everything = schema.dump(list(registry.purchased_offerings()))
        values = {attr: sorted({item.get(attr) for item in everything}, key=str)
                  for attr in ("customerId", "customerGroup", "productOfferingId",
                               "offeringGroupId", "slaTypeId", "site", "monthlyCharge",
                               "status", "startDate", "version", "currency")}
        rng = random.Random(11)
        flask_app = Flask(__name__)
        for _ in range(400):
            query = random_query(rng, values)
            expected = answer(flask_app, query, lambda: listing.page_of(everything, allowed))
            stored = answer(flask_app, query, lambda: registry.purchased_offerings().page(
                listing.request.args, allowed, (), schema.dump))
            assert stored == expected, query
        # Totals counted only so far: the same pages, and an exact total only when it was
        # counted to its end (a filtered list matching more than the cap says "at least").
        registry.index.count_cap = 40
        bounded = 0
        for _ in range(300):
            query = random_query(rng, values)
            expected = answer(flask_app, query, lambda: listing.page_of(everything, allowed))
            stored = answer(flask_app, query, lambda: registry.purchased_offerings().page(
                listing.request.args, allowed, (), schema.dump))
            filtered = set(query) - listing.RESERVED
            if expected[0] != "error" and filtered and expected[1] > 40:
                expected = (expected[0], AtLeast(41))
                bounded += 1
            assert stored == expected, query
        assert bounded > 20
    finally:
        registry.close()


def test_a_list_by_an_attribute_without_a_column_reads_only_a_narrowed_set_whole(
        store_env: dict[str, str]) -> None:
    """Filtering or sorting by an attribute kept in no column reads the aggregates SQL
    narrowed to; past ``fallback_cap`` of them the query is refused as too broad (a 400
    naming what narrows it) instead of reading the whole table for one page."""
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 60)
        registry.index.fallback_cap = 20
        schema = schemas.PurchasedOffering(many=True)
        allowed = wire_names(schema)
        everything = schema.dump(list(registry.purchased_offerings()))
        flask_app = Flask(__name__)
        one = everything[5]
        narrow = {"customerId": one["customerId"], "href": one["href"]}
        assert sum(i["customerId"] == one["customerId"] for i in everything) <= 20
        for query in (narrow, {"customerId": one["customerId"], "sort": "-href"}):
            expected = answer(flask_app, query, lambda: listing.page_of(everything, allowed))
            stored = answer(flask_app, query, lambda: registry.purchased_offerings().page(
                listing.request.args, allowed, (), schema.dump))
            assert stored == expected and expected[0], query
        broad = answer(flask_app, {"href": one["href"]},
                       lambda: registry.purchased_offerings().page(
                           listing.request.args, allowed, (), schema.dump))
        assert broad == ("error", 400, "QUERY_TOO_BROAD")
    finally:
        registry.close()


def test_an_offering_moved_to_another_group_moves_its_purchased_offerings(
        store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        group = registry.register_offering_group("Fibre")
        offering = registry.register_offering("Fibre 1G", lifecycle_status="active")
        registry.create_purchased_offering(product_id="p-1", customer_id="c",
                                           offering_id=offering.id)
        schema = schemas.PurchasedOffering(many=True)
        flask_app = Flask(__name__)

        def in_group() -> list[str]:
            page, _ = answer(flask_app, {"offeringGroupId": str(group.id)},
                             lambda: registry.purchased_offerings().page(
                                 listing.request.args, wire_names(schema), (), schema.dump))
            return [item["id"] for item in page]

        assert in_group() == []
        registry.update_offering(offering.id, {"group_id": group.id})
        assert in_group() == ["p-1"]
    finally:
        registry.close()


def test_a_restarted_service_carries_on_from_its_stored_position(
        store_env: dict[str, str]) -> None:
    first = ThresholdRegistry(store_env)
    an_estate(first, 20)
    assert len(first.purchased_offerings()) == 20
    position = first.index.stored_position()
    assert position == first.max_notification_id()
    first.close()

    again = ThresholdRegistry(store_env)
    try:
        assert again.index.stored_position() == position  # nothing to replay
        assert again.index.catch_up() == 0
        again.create_purchased_offering(product_id="p-new", customer_id="c-new",
                                        offering_id=next(iter(again.offerings())).id)
        assert again.index.catch_up() == 1
        assert len(again.purchased_offerings()) == 21
    finally:
        again.close()


def test_processes_catching_up_at_once_apply_each_event_once(
        store_env: dict[str, str]) -> None:
    writer = ThresholdRegistry(store_env)
    readers = [ThresholdRegistry(store_env) for _ in range(3)]
    try:
        an_estate(writer, 60)
        errors: list[BaseException] = []

        def read(app: ThresholdRegistry) -> None:
            try:
                app.index.batch = 7  # many small transactions, to interleave
                app.index.catch_up()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(r,)) for r in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert [i.product_id for i in readers[0].purchased_offerings()] == \
            [f"p-{n:04d}" for n in range(60)]
        assert readers[0].index.count(PurchasedOffering) == 60
        versions = {i.product_id: i.version for i in writer.purchased_offerings()}
        assert {i.product_id: i.version for i in readers[2].purchased_offerings()} == versions
    finally:
        for app in (writer, *readers):
            app.close()


def test_a_rebuilt_read_model_gives_the_same_answers(store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 40)
        schema = schemas.PurchasedOffering(many=True)
        before = schema.dump(list(registry.purchased_offerings()))
        seen: list[tuple[int, int]] = []
        report = registry.index.rebuild(lambda done, total: seen.append((done, total)))
        assert report.events == registry.max_notification_id()
        assert seen and seen[-1][0] == seen[-1][1] == registry.max_notification_id()
        assert schema.dump(list(registry.purchased_offerings())) == before
    finally:
        registry.close()


def test_a_changed_shape_or_a_replaced_log_is_rebuilt_at_start(
        store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    an_estate(registry, 5)
    assert len(registry.purchased_offerings()) == 5
    registry.close()

    class Reshaped(RegistryIndex):
        def _tables_ddl(self) -> list[str]:  # as if a release added a column
            return [*super()._tables_ddl(), "SELECT 1"]

    registry = ThresholdRegistry(store_env)
    try:
        reshaped = Reshaped(registry)
        assert reshaped.stored_position() == 0  # dropped, to be rebuilt
        assert reshaped.catch_up() > 0
        assert reshaped.count(PurchasedOffering) == 5
        reshaped.close()
    finally:
        registry.close()


def test_an_order_a_release_adds_is_indexed_at_start_without_a_rebuild(
        store_env: dict[str, str]) -> None:
    """An index is not the rows' shape: a new order's index is made where missing on the
    next start, and the rows and their position stay (no replay of the log)."""
    registry = ThresholdRegistry(store_env)
    an_estate(registry, 5)
    assert len(registry.purchased_offerings()) == 5
    position = registry.index.stored_position()
    registry.close()

    class Ordered(RegistryIndex):
        def _order_indexes_ddl(self) -> list[str]:  # as if a release added an order
            return [*super()._order_indexes_ddl(), 'CREATE INDEX IF NOT EXISTS '
                    f'"rm_added_order" ON {self.sql_table(PurchasedOffering)} (c_site, seq)']

    registry = ThresholdRegistry(store_env)
    try:
        ordered = Ordered(registry)
        assert ordered.stored_position() == position > 0
        with ordered._db.transaction(write=False) as tx:
            found = tx.execute(
                "SELECT indexname AS n FROM pg_indexes WHERE indexname = 'rm_added_order'"
                if ordered._db.postgres else
                "SELECT name AS n FROM sqlite_master WHERE name = 'rm_added_order'"
            ).fetchall()
        assert len(found) == 1
        assert ordered.count(PurchasedOffering) == 5
        ordered.close()
    finally:
        registry.close()


def test_an_offset_past_the_end_is_an_empty_page(store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 3)
        schema = schemas.PurchasedOffering(many=True)
        page = answer(Flask(__name__), {"offset": str(2**80), "limit": "5"},
                      lambda: registry.purchased_offerings().page(
                          listing.request.args, wire_names(schema), (), schema.dump))
        assert page == ([], 3)
    finally:
        registry.close()


def test_the_row_counts_kept_with_the_rows_are_the_tables_counts(
        store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 30)
        for kind in registry.index.tables:
            with registry.index._db.transaction(write=False) as tx:
                counted = tx.execute(f"SELECT COUNT(*) AS n FROM "
                                     f"{registry.index.sql_table(kind)}").fetchone()["n"]
            assert registry.index.count(kind) == counted, kind
        assert len(registry.purchased_offerings()) == 30
        registry.index.rebuild()
        assert registry.index.count(PurchasedOffering) == 30
    finally:
        registry.close()


def test_a_resident_set_loads_from_the_stored_rows_and_follows_the_log(
        store_env: dict[str, str]) -> None:
    from services.threshold_registry.domain import ProductOffering
    from shared.readmodel import Resident
    from shared.store import AggregateIndex

    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 30)
        kinds = (ProductOffering, PurchasedOffering)

        def state(index: Any) -> list[tuple[Any, int]]:
            return [(a.id, a.version) for kind in kinds for a in index.all(kind)]

        resident = Resident(registry.index, kinds)
        assert state(resident) == state(AggregateIndex(registry, kinds))
        assert resident.applied == 0  # loaded, not replayed
        assert resident.generation == registry.index.stored_position() == \
            registry.max_notification_id()
        registry.update_offering(next(iter(registry.offerings())).id, {"name": "Renamed"})
        registry.create_purchased_offering(product_id="p-late", customer_id="c",
                                           offering_id=next(iter(registry.offerings())).id)
        assert state(resident) == state(AggregateIndex(registry, kinds))
        assert resident.applied == 2
        assert resident.generation == registry.max_notification_id()
        registry.register_offering_group("Not a kind it keeps")
        resident.catch_up()
        assert resident.generation < registry.max_notification_id()  # its state is as it was
        with pytest.raises(KeyError):
            Resident(registry.index, (Placed,))
    finally:
        registry.close()


def test_a_listing_is_indexed_and_sliced_like_the_list_it_replaces(
        store_env: dict[str, str]) -> None:
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 12)
        listed = registry.purchased_offerings()
        everything = [i.product_id for i in listed]
        assert listed[0].product_id == everything[0]
        assert listed[-1].product_id == everything[-1]
        for window in (slice(3, 7), slice(None, 2), slice(-4, None), slice(10, 40),
                       slice(5, 2), slice(None, None, 3)):
            assert [i.product_id for i in listed[window]] == everything[window]
        with pytest.raises(IndexError):
            listed[12]
        with pytest.raises(IndexError):
            listed[-13]
    finally:
        registry.close()


def test_a_filter_value_with_a_nul_character_matches_nothing(
        store_env: dict[str, str]) -> None:
    """PostgreSQL's text cannot hold a NUL: such a value is no stored value, never a 500."""
    registry = ThresholdRegistry(store_env)
    try:
        an_estate(registry, 3)
        schema = schemas.PurchasedOffering(many=True)
        flask_app = Flask(__name__)

        def page(query: dict[str, str]) -> Any:
            return answer(flask_app, query, lambda: registry.purchased_offerings().page(
                listing.request.args, wire_names(schema), (), schema.dump))

        assert page({"customerId": "cust-1\x00"}) == ([], 0)
        assert page({"customerId.gt": "a\x00"})[:2] == ("error", 400)
    finally:
        registry.close()
