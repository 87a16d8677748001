"""In distributed mode the worker processes' health reaches ``readyz`` of the HTTP
processes: each role writes a heartbeat with its state to Redis, so a role that fails in
a loop, or a worker that died, shows as 503 naming the role — as in embedded mode."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests

from shared.cache import make_cache
from tests.conftest import SECRET
from tests.e2e.processes import free_port, gunicorn, ready, wait_until, worker
from tests.helpers import delete_queues, drop_schemas

pytestmark = pytest.mark.e2e


@pytest.fixture
def monitoring_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                         tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    queue_prefix = f"health-{unique}."
    env = {
        "SLA_BUS_URL": amqp_url, "PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres,
        "SLA_SCHEMA_PREFIX": f"h{unique}_", "SLA_QUEUE_PREFIX": queue_prefix,
        "REDIS_URL": redis_url, "SLA_SECRET_KEY": SECRET, "SLA_DATA_DIR": str(tmp_path),
        "SLA_RELAY_POLL_INTERVAL": "0.05", "SLA_HEARTBEAT_SECONDS": "0.3",
        "SLA_CHECKPOINT_SECONDS": "1",
    }
    port = free_port()
    http = gunicorn("services.monitoring.wsgi:app", port, env, tmp_path / "http.log",
                    workers=1)
    work = worker("monitoring", env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}/monitoring/v1"
    try:
        wait_until(lambda: ready(base), 60, "monitoring ready", http)
        yield {"base": base, "http": http, "worker": work, "schema": f"h{unique}_monitoring",
               "cache": make_cache(redis_url, queue_prefix + "monitoring")}
    finally:
        http.stop()
        work.stop()
        drop_schemas(postgres, f"h{unique}_")
        delete_queues(amqp_url, *(f"{queue_prefix}{queue}{suffix}"
                                  for queue in ("monitoring.inbox", "monitoring.measurements")
                                  for suffix in ("", ".dead-letter")))
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{queue_prefix}monitoring:*"):
            client.delete(key)


def rename(postgres: dict[str, str], schema: str, table: str, to: str) -> None:
    with psycopg.connect(host=postgres["POSTGRES_HOST"], port=postgres["POSTGRES_PORT"],
                         user=postgres["POSTGRES_USER"], dbname=postgres["POSTGRES_DBNAME"],
                         autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}"."{table}" RENAME TO "{to}"')


def readiness(base: str) -> tuple[int, dict[str, Any]]:
    response = requests.get(f"{base}/readyz", timeout=5)
    return response.status_code, response.json()


def test_a_failing_or_silent_worker_role_shows_in_readyz(
        monitoring_processes: dict[str, Any], postgres: dict[str, str]) -> None:
    base, schema = monitoring_processes["base"], monitoring_processes["schema"]
    wait_until(lambda: monitoring_processes["cache"].members("roles") == {
        "relay", "inbox", "intake", "evaluator"}, 30, "every role's first heartbeat")
    assert readiness(base) == (200, {"status": "ok", "down": [], "checks": {
        "store": "ok", "bus": "ok", "cache": "ok"}})

    # The evaluator (and the relay) can no longer reach their log: they fail in a loop
    # in the worker process, and the HTTP process says so, by role and state only.
    rename(postgres, schema, "monitoringoutcomes_events", "moved_away")
    try:
        status, body = wait_until(
            lambda: (r := readiness(base))[0] == 503 and "evaluator" in r[1]["down"] and r,
            30, "the evaluator's failure in readyz", monitoring_processes["worker"])
        assert body["checks"]["evaluator"] == "failing"
        assert body["checks"]["relay"] == "failing"
        assert body["checks"]["store"] == "ok" and "intake" not in body["checks"]
    finally:
        rename(postgres, schema, "moved_away", "monitoringoutcomes_events")
    wait_until(lambda: readiness(base)[0] == 200, 30, "ready again",
               monitoring_processes["worker"])

    # A worker that dies falls silent.
    monitoring_processes["worker"].send(signal.SIGKILL)
    monitoring_processes["worker"].proc.wait(10)
    roles = ("relay", "inbox", "intake", "evaluator")

    def all_silent() -> Any:  # each role's heartbeat runs out on its own
        status, body = readiness(base)
        return status == 503 and {body["checks"].get(role) for role in roles} == {
            "silent"} and body
    body = wait_until(all_silent, 30, "the dead worker's roles silent in readyz")
    assert set(roles) <= set(body["down"])
