"""Creating a service's PostgreSQL database and schema is race-free: every process of a
distributed start (gunicorn workers, the service's workers, other services) may find the
database missing at the same moment, and none of them may crash for it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shared.store import ensure_schema

pytestmark = pytest.mark.integration

CREATORS = 8


@pytest.fixture
def fresh_database(postgres: dict[str, str]) -> Iterator[str]:
    """A database name nobody has made yet; dropped afterwards."""
    name = f"sla_race_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(host=postgres["POSTGRES_HOST"], port=postgres["POSTGRES_PORT"],
                         user=postgres["POSTGRES_USER"],
                         password=postgres["POSTGRES_PASSWORD"] or None,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_processes_that_create_the_database_at_once_all_start(
        postgres: dict[str, str], fresh_database: str) -> None:
    start = threading.Barrier(CREATORS)
    errors: list[BaseException] = []

    def create(service: str) -> None:
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres,
               "POSTGRES_DBNAME": fresh_database, "POSTGRES_SCHEMA": service}
        start.wait(10)
        try:
            ensure_schema(env)
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    # Half of them share a schema, as a service's HTTP and worker processes do.
    creators = [threading.Thread(target=create, args=(f"svc_{n % (CREATORS // 2)}",))
                for n in range(CREATORS)]
    for thread in creators:
        thread.start()
    for thread in creators:
        thread.join(60)
    assert errors == []
    with psycopg.connect(host=postgres["POSTGRES_HOST"], port=postgres["POSTGRES_PORT"],
                         user=postgres["POSTGRES_USER"],
                         password=postgres["POSTGRES_PASSWORD"] or None,
                         dbname=fresh_database, autocommit=True) as conn:
        schemas = {row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'svc_%'")}
    assert schemas == {f"svc_{n}" for n in range(CREATORS // 2)}
