"""Replicas absorbed in groups, on the stores the suite runs on (PostgreSQL and SQLite):
monitoring's and notification's inboxes handle a run of the registry's inventory events in
one transaction, and the replicas come out as if each event had been handled alone — a
newer version kept, an older one ignored, even when both are in the same group — with
one tracking record per message. The replicas of a group are read in one query, which
must give what the repository gives, snapshots included."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.monitoring import messaging as monitoring_messaging
from services.monitoring.application import Monitoring
from services.monitoring.domain import Replica as MonitoringReplica
from services.notification import messaging as notification_messaging
from services.notification.application import NotificationService
from services.notification.delivery import NotificationConfig
from services.notification.domain import Replica as NotificationReplica
from shared.bus.envelope import Envelope
from shared.bus.inbox import Inbox, tracking_for
from shared.bus.topology import SLA_EVENTS, QueueSpec
from shared.bus.transport import Delivery, InProcessTransport, Settle
from shared.replica import Copy, receive
from shared.times import iso
from tests.integration.bus_fixtures import consumed

REGISTRY = "threshold-registry"


class Recorded(Settle):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def ack(self) -> None:
        self.log.append("ack")

    def retry_later(self, reason: str) -> None:
        self.log.append(f"retry: {reason}")

    def dead_letter(self, reason: str) -> None:
        self.log.append(f"dead-letter: {reason}")


def purchased(product_id: str, version: int, customer: str, number: int) -> Envelope:
    """A PurchasedOfferingChangeEvent as the registry's relay publishes it."""
    return Envelope(
        event_id=f"{REGISTRY}:{number}", event_time=iso(),
        event_type="PurchasedOfferingChangeEvent", source=REGISTRY,
        event={"change": "registered" if version == 1 else "updated", "purchasedOffering": {
            "id": product_id, "href": f"/threshold-registry/v1/purchasedOffering/{product_id}",
            "@type": "PurchasedOffering", "customerId": customer, "customerGroup": None,
            "productOfferingId": str(uuid.uuid5(uuid.NAMESPACE_URL, "offering")),
            "slaTypeId": None, "site": None, "monthlyCharge": None, "currency": None,
            "status": "active", "startDate": None, "endDate": None, "version": version}})


def deliveries(envelopes: list[Envelope], log: list[str]) -> list[tuple[Delivery, Settle]]:
    return [(Delivery(e.to_bytes(), SLA_EVENTS, "threshold-registry.purchased-offering.x",
                      e.event_id), Recorded(log)) for e in envelopes]


def services(env: dict[str, str]) -> list[tuple[Any, type, dict[str, Any]]]:
    """Both services on the store (on PostgreSQL their tables carry their names; on
    SQLite each has a file)."""
    monitoring = Monitoring(env)
    own = {**env, "SQLITE_DBNAME": env["SQLITE_DBNAME"] + ".n"} if "SQLITE_DBNAME" in env \
        else env
    notification = NotificationService(own, config=NotificationConfig.from_env({}),
                                       server_key="k" * 40)
    return [(monitoring, MonitoringReplica, monitoring_messaging.handlers(monitoring)),
            (notification, NotificationReplica, notification_messaging.handlers(notification))]


@pytest.mark.integration
def test_a_group_keeps_the_newest_version_of_each_replica_with_a_tracking_record_each(
        store_env: dict[str, str], unique: str) -> None:
    for app, replica_kind, handlers in services(store_env):
        try:
            log: list[str] = []
            inbox = Inbox(app, "test", InProcessTransport(), QueueSpec(f"q-{unique}"),
                          handlers, prefetch=100, group=100)
            waiting = app.recorded.waiter()  # a loop waiting for this log's new events
            x, y = f"po-{unique}-x", f"po-{unique}-y"
            events = [purchased(x, 1, "acme", 1), purchased(y, 1, "beta", 2),
                      purchased(x, 2, "acme-2", 3),  # newer, in the same group
                      purchased(x, 1, "acme", 4),    # older, overtaken: ignored
                      purchased(y, 1, "beta", 2)]    # the same message twice
            inbox.receive_many(deliveries(events, log))

            assert log == ["ack"] * 5
            assert waiting.is_set()  # a group's save wakes it, as any save does
            kept = app.load_many([replica_kind.create_id("purchasedOffering", x),
                                  replica_kind.create_id("purchasedOffering", y)])
            by_resource = {r.resource_id: r for r in kept.values()}
            assert by_resource[x].source_version == 2
            assert by_resource[x].resource.get("customerId") == "acme-2"
            assert by_resource[y].source_version == 1
            assert all(app.is_tracked(tracking_for(d, e)) for (d, _), e
                       in zip(deliveries(events, []), events, strict=True))

            # Delivered again (a crash before the acks): duplicates, nothing changes.
            again: list[str] = []
            inbox.receive_many(deliveries(events, again))
            assert again == ["ack"] * 5
            assert app.load_many([by_resource[x].id])[by_resource[x].id].version == \
                by_resource[x].version
        finally:
            app.close()


@pytest.mark.integration
def test_replicas_read_together_equal_the_repository_s_snapshots_included(
        store_env: dict[str, str], unique: str) -> None:
    app = Monitoring(store_env)  # snapshots its replicas every 50 versions
    try:
        product = f"po-{unique}"
        for version in range(1, 121):
            app.save(receive(app.repository, MonitoringReplica,
                             Copy("purchasedOffering", product, {"n": version}, version)))
        fresh = receive(app.repository, MonitoringReplica,
                        Copy("purchasedOffering", f"{product}-b", {"n": 1}, 1))
        app.save(fresh)
        wanted = [MonitoringReplica.create_id("purchasedOffering", product), fresh.id,
                  MonitoringReplica.create_id("purchasedOffering", "never-heard-of")]
        loaded = app.load_many(wanted)
        assert set(loaded) == set(wanted[:2])
        for aggregate_id, replica in loaded.items():
            expected = app.repository.get(aggregate_id)
            assert (replica.version, replica.resource, replica.source_version) == \
                (expected.version, expected.resource, expected.source_version)
        assert loaded[wanted[0]].version == 120
    finally:
        app.close()


def test_a_retirement_whose_save_failed_still_stops_the_regime_when_handled_again() -> None:
    """Regression: a retired offering group stopped its regimes on the regime index's own
    objects, so when the save failed (and the message was handled again) the index
    already believed them stopped and the stop was never saved."""
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    group = str(uuid.uuid4())
    app.receive_replica("offeringGroup", group, {"id": group, "name": "Fibre",
                                                 "lifecycleStatus": "active"}, 1)
    regime = app.start_regime(name="Fibre watch", offering_group_id=uuid.UUID(group),
                              window="PT1H")
    retired = {"id": group, "name": "Fibre", "lifecycleStatus": "retired"}
    saving = app.save

    def failing_save(*objs: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store is down")

    app.save = failing_save  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        app.receive_replica("offeringGroup", group, retired, 2)
    app.save = saving  # type: ignore[method-assign]
    app.receive_replica("offeringGroup", group, retired, 2)  # the redelivery

    assert app.repository.get(regime.id).status == "stopped"
    assert [r.status for r in app.regimes() if r.id == regime.id] == ["stopped"]


def product(product_id: str, offering_id: str, status: str = "active",
            event_type: str = "ProductCreateEvent", site: str = "Paris-1") -> Envelope:
    """A fulfilment product event (TMF637), as the registry's inbox receives it."""
    return Envelope(
        event_id=str(uuid.uuid4()), event_time=iso(), event_type=event_type,
        correlation_id="migration-1", event={"product": {
            "id": product_id, "status": status,
            "productOffering": {"id": offering_id, "name": "Fibre 1G"},
            "relatedParty": [{"id": "cust-42", "role": "Customer"}],
            "productCharacteristic": [{"name": "slaType", "value": "gold"},
                                      {"name": "site", "value": site}]}})


@pytest.mark.integration
def test_the_registry_takes_a_group_of_fulfilment_products_in_one_transaction(
        store_env: dict[str, str], unique: str) -> None:
    """A migration's activations, a change of one of them in the same group, a duplicate
    and a product naming an unknown offering: the bad one is dead-lettered alone (its
    group handled again one by one), the others take effect once each, in order."""
    from services.threshold_registry import messaging as registry_messaging
    from services.threshold_registry.application import ThresholdRegistry
    from services.threshold_registry.domain import PurchasedOffering

    app = ThresholdRegistry(store_env)
    try:
        offering = app.register_offering("Fibre 1G", lifecycle_status="active")
        app.register_sla_type(name="gold", maintenance_accounting="excluded",
                              minimum_notice_days=10, credit_percent_per_breached_period=5,
                              credit_cap_percent=30)
        service = f"threshold-registry-{unique}"
        inbox = Inbox(app, service, InProcessTransport(),
                      QueueSpec(f"q-{unique}"), registry_messaging.handlers(app),
                      prefetch=100, group=100)
        products = [f"mig-{unique}-{n}" for n in range(5)]
        first = [product(p, str(offering.id)) for p in products]
        changed = product(products[0], str(offering.id), status="suspended",
                          event_type="ProductStateChangeEvent", site="Lyon-2")
        good = [*first, changed, first[1]]  # a change in the same group, a duplicate

        def delivered(envelopes: list[Envelope], log: list[str]) -> list[Any]:
            return [(Delivery(e.to_bytes(), "fulfilment.events", "product.create",
                              e.event_id), Recorded(log)) for e in envelopes]

        groups: list[int] = []
        save_group = app.save_group

        def counted(group: Any) -> None:
            groups.append(len(group.trackings))
            save_group(group)

        app.save_group = counted  # type: ignore[method-assign]
        log: list[str] = []
        inbox.receive_many(delivered(good, log))
        assert log == ["ack"] * len(good)
        # One transaction for all of them (the duplicate within the group is not saved).
        assert groups == [len(good) - 1]
        assert consumed(service, "regrouped") == 0
        assert consumed(service, "processed") == len(good) - 1
        assert consumed(service, "duplicate") == 1
        items = {p: app.purchased_offering(p) for p in products}
        assert items[products[0]].status == "suspended"
        assert items[products[0]].site == "Lyon-2"
        assert items[products[0]].version == 3  # registered, updated, status changed
        assert all(items[p].version == 1 and items[p].status == "active"
                   for p in products[1:])
        history = list(app.repository.event_store.get(
            PurchasedOffering.create_id(products[1])))
        assert len(history) == 1  # the duplicate took no effect

        bad = product(f"mig-{unique}-bad", str(uuid.uuid4()))
        later = [product(f"mig-{unique}-{n}", str(offering.id)) for n in range(5, 8)]
        log = []
        inbox.receive_many(delivered([later[0], bad, *later[1:]], log))
        assert log[0] == "ack" and log[2:] == ["ack", "ack"]
        assert log[1].startswith("dead-letter: ") and "is not an offering" in log[1]
        assert consumed(service, "regrouped") == 4
        assert all(app.inventory_item(f"mig-{unique}-{n}") is not None for n in range(5, 8))
        assert app.inventory_item(f"mig-{unique}-bad") is None
    finally:
        app.close()
