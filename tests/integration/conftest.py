"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bus_fixtures import drop_schema, postgres_env, sqlite_env


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: Any, tmp_path: Path, unique: str) -> Iterator[dict[str, str]]:
    """A service's store on SQLite (a file of its own) and on PostgreSQL (a schema of
    its own, dropped afterwards): the test runs on each."""
    if request.param == "sqlite":
        yield sqlite_env(tmp_path / "service.sqlite")
        return
    from shared.store import ensure_schema

    pg = request.getfixturevalue("postgres")
    schema = f"test_store_{unique}"
    env = postgres_env(pg, schema)
    ensure_schema(env)
    try:
        yield env
    finally:
        drop_schema(pg, schema)
