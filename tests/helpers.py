"""Small tools every test layer uses: polling with a timeout, and removing what a test
made on the shared broker and database."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pika


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until ``check`` returns something truthy; on timeout, fail with its last
    assertion (tests poll with a timeout, they never sleep to assert)."""
    deadline = time.monotonic() + timeout
    last: AssertionError | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout}s: {last or check}")


def delete_queues(amqp_url: str, *names: str) -> None:
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(amqp_url))) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)


def drop_schemas(pg: dict[str, str], prefix: str) -> None:
    """Drop every PostgreSQL schema a test made (they share a prefix)."""
    import psycopg

    with psycopg.connect(host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"],
                         user=pg["POSTGRES_USER"], password=pg.get("POSTGRES_PASSWORD") or None,
                         dbname=pg["POSTGRES_DBNAME"], autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            (prefix + "%",)).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
