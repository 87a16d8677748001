"""The distributed wiring for real: the registry as gunicorn processes plus its worker,
on RabbitMQ, PostgreSQL and Redis; fulfilment publishes a product on the broker."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from shared import auth
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.registry import RegistryDriver
from tests.e2e.processes import free_port, gunicorn, ready, wait_until, worker
from tests.helpers import delete_queues, drop_schemas

pytestmark = pytest.mark.e2e


@pytest.fixture
def registry_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                       tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {
        "SLA_BUS_URL": amqp_url, "PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres,
        "SLA_SCHEMA_PREFIX": f"e{unique}_", "SLA_BUS_PREFIX": f"e2e-{unique}.",
        "REDIS_URL": redis_url, "SLA_SECRET_KEY": SECRET, "SLA_DATA_DIR": str(tmp_path),
        "SLA_RELAY_POLL_INTERVAL": "0.05", "SLA_HTTP_WORKERS": "2",
    }
    http = gunicorn("services.threshold_registry.wsgi:app", port, env, tmp_path / "http.log")
    work = worker("threshold-registry", env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}/threshold-registry/v1"
    try:
        wait_until(lambda: ready(base), 60, "registry ready", http)
        yield {"base": base, "http": http, "worker": work, "unique": unique,
               "prefix": f"e2e-{unique}."}
    finally:
        http.stop()
        work.stop()
        drop_schemas(postgres, f"e{unique}_")
        delete_queues(amqp_url, f"e2e-{unique}.threshold-registry.inbox",
                      f"e2e-{unique}.threshold-registry.inbox.dead-letter")


def test_a_fulfilment_activation_reaches_the_inventory_once(
        registry_processes: dict[str, Any], amqp_url: str) -> None:
    base = registry_processes["base"]
    headers = {"Authorization": f"Bearer {auth.issue(SECRET, ['admin'], 'e2e')}"}
    manager = RegistryDriver(NetworkHttp(base, auth.issue(SECRET, ["admin"], "e2e")))
    offering = manager.create_offering("Fibre 1G")
    gold = manager.create_sla_type("gold")

    # Watch what the registry publishes.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    watch = channel.queue_declare("", exclusive=True).method.queue
    prefix = registry_processes["prefix"]
    channel.exchange_declare(prefix + "sla.events", exchange_type="topic", durable=True)
    channel.queue_bind(watch, prefix + "sla.events", "threshold-registry.purchased-offering.*")

    def inbox_bound() -> bool:  # the worker declares its inbox when it starts consuming
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(amqp_url))) as c:
            try:
                c.channel().queue_declare(prefix + "threshold-registry.inbox", passive=True)
                return True
            except pika.exceptions.ChannelClosedByBroker:
                return False

    wait_until(inbox_bound, 30, "the registry's inbox", registry_processes["worker"])

    product_id = f"fibre-{registry_processes['unique']}"
    body = {"eventId": str(uuid.uuid4()), "eventTime": "2026-11-25T10:00:00Z",
            "eventType": "ProductCreateEvent", "correlationId": "order-778",
            "event": {"product": {
                "id": product_id, "status": "active",
                "productOffering": {"id": offering["id"]},
                "relatedParty": [{"id": "cust-42", "role": "Customer"}],
                "productCharacteristic": [{"name": "slaType", "value": "gold"}]}}}
    channel.basic_publish(prefix + "fulfilment.events", "product.create", json.dumps(body),
                          pika.BasicProperties(delivery_mode=2))
    channel.basic_publish(prefix + "fulfilment.events", "product.create", json.dumps(body),
                          pika.BasicProperties(delivery_mode=2))  # fulfilment retried
    item = wait_until(lambda: requests.get(f"{base}/purchasedOffering/{product_id}",
                                           headers=headers).json()
                      if requests.get(f"{base}/purchasedOffering/{product_id}",
                                      headers=headers).status_code == 200 else None,
                      10, "product in inventory", registry_processes["worker"])
    assert item["slaTypeId"] == gold["id"] and item["version"] == 1

    def published() -> Any:
        method, props, raw = channel.basic_get(watch, auto_ack=True)
        return json.loads(raw) if method else None

    message = wait_until(published, 10, "registry change published")
    assert message["event"]["purchasedOffering"]["id"] == product_id
    assert message["correlationId"] == "order-778"
    time.sleep(0.3)  # a duplicate effect, if any, would be published by now
    assert published() is None, "the redelivered fulfilment message had a second effect"
    connection.close()


def test_readiness_names_what_is_down_and_the_worker_stops_cleanly(
        registry_processes: dict[str, Any]) -> None:
    base = registry_processes["base"]
    checks = requests.get(f"{base}/readyz").json()["checks"]
    assert checks == {"store": "ok", "bus": "ok", "cache": "ok"}
    assert requests.get(f"{base}/healthz").status_code == 200
    metrics = requests.get(f"{base}/metrics", headers={
        "Authorization": f"Bearer {auth.issue(SECRET, ['sla:read'])}"})
    assert "sla_http_requests_total" in metrics.text
    assert registry_processes["worker"].stop(signal.SIGTERM) == 0
