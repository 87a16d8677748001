"""A running suite in this process (in-process bus) on SQLite or PostgreSQL, with an
authenticated test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import auth, config
from tests.conftest import SECRET, base_env
from tests.helpers import drop_schemas


class Client:
    """Flask test client with bearer tokens and the service's API root."""

    def __init__(self, flask_app: Any, root: str, scopes: tuple[str, ...] = ("admin",)) -> None:
        self._client = flask_app.test_client()
        self.root = root
        self.token = auth.issue(SECRET, scopes, "tester")

    def with_scopes(self, *scopes: str) -> Client:
        other = Client.__new__(Client)
        other._client, other.root = self._client, self.root
        other.token = auth.issue(SECRET, scopes, "tester") if scopes else ""
        return other

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if method == "PATCH" and "json" in kwargs:
            import json

            kwargs["data"] = json.dumps(kwargs.pop("json"))
            headers.setdefault("Content-Type", "application/merge-patch+json")
        url = path if path.startswith("/") and path.startswith(self.root) else self.root + path
        return self._client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def _assert_everything_published(running: Any) -> None:
    """Every event a test caused went out on the bus in its contract's shape: a relay
    stuck on a message that breaks its contract fails the test that caused it."""
    import time

    for runtime in running.runtimes:
        for relay in runtime.relays:  # every log the service publishes
            deadline = time.monotonic() + 10
            while True:
                pending = relay.app.recorder.select_notifications(
                    start=relay.app.published_position(relay.outbox), limit=1,
                    inclusive_of_start=False, topics=relay.topics)
                if not pending and relay.last_error is None:
                    break
                assert time.monotonic() < deadline, (
                    f"{relay.name} did not publish everything: {relay.last_error}")
                time.sleep(0.05)


@pytest.fixture
def service_env() -> dict[str, str]:
    """The services' own settings for the suite under test, as its environment gives them
    (a test module that needs others overrides this fixture)."""
    return {}


@pytest.fixture
def service_clocks() -> dict[str, Callable[[], Any]]:
    """By service, the clock its application is built with (a test module that moves time
    overrides this fixture); the others keep the wall clock."""
    return {}


@pytest.fixture
def service_senders() -> dict[str, dict[str, Any]]:
    """By service, the senders by channel its application is built with (a test that
    hands messages over otherwise overrides this fixture); the others build their own
    from their settings."""
    return {}


@pytest.fixture(params=["sqlite", "postgres"])
def suite(request: pytest.FixtureRequest, tmp_path: Path, unique: str,
          service_env: dict[str, str], service_clocks: dict[str, Callable[[], Any]],
          service_senders: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """The suite in one process, on SQLite or on PostgreSQL: every service, or only those
    a ``@pytest.mark.services(...)`` marker names (a test of the registry alone does not
    start the evaluator and the delivery workers), built with ``service_env``,
    ``service_clocks`` and ``service_senders``."""
    from services.catalogue import SERVICE_MODULES, all_specs, spec
    from shared.wsgi import Suite

    marker = request.node.get_closest_marker("services")
    if marker is not None:
        unknown = set(marker.args) - set(SERVICE_MODULES)
        assert not unknown, f"no such service: {', '.join(sorted(unknown))}"
        specs = [spec(name) for name in SERVICE_MODULES if name in marker.args]
    else:
        specs = all_specs()

    extra: dict[str, str] = {}
    pg: dict[str, str] | None = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres")
        extra = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **pg,
                 "SLA_SCHEMA_PREFIX": f"t{unique}_"}
    settings = config.load(base_env(tmp_path / "var", **extra, **service_env))
    running = Suite(specs, settings, clocks=service_clocks, senders=service_senders)
    try:
        yield running
        _assert_everything_published(running)
    finally:
        running.stop()
        if pg is not None:
            drop_schemas(pg, f"t{unique}_")


@pytest.fixture
def registry(suite: Any) -> Client:
    return Client(suite.app("threshold-registry"), "/threshold-registry/v1")
