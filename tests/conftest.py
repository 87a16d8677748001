"""Fixtures shared by every test layer.

Integration tests need the real RabbitMQ, Redis and PostgreSQL on loopback (addresses
overridable by environment). When one is absent they fail under ``CI`` or
``SLA_REQUIRE_SERVICES=1`` and are skipped with a one-line reason otherwise.

A test session has a RabbitMQ vhost of its own (made with ``rabbitmqctl`` and deleted at
the end), so concurrent sessions on one broker never see each other's messages, and a
test can take the broker away from its own session without touching anybody else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pytest

AMQP_URL = os.environ.get("SLA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("SLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG = {
    "POSTGRES_HOST": os.environ.get("SLA_TEST_POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("SLA_TEST_POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("SLA_TEST_POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("SLA_TEST_POSTGRES_PASSWORD", ""),
    "POSTGRES_DBNAME": os.environ.get("SLA_TEST_POSTGRES_DBNAME", "sla_test"),
    # One connection kept open per store (more are opened when needed): test sessions
    # share the database server, and idle pools of five soon exhaust its connections.
    "POSTGRES_POOL_SIZE": os.environ.get("SLA_TEST_POSTGRES_POOL_SIZE", "1"),
}
SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


def services_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("SLA_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (a developer's machine) when a real service is not reachable."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(f"{message} (required because CI or SLA_REQUIRE_SERVICES=1 is set)")
    pytest.skip(f"{message}; set SLA_REQUIRE_SERVICES=1 to make this a failure")


def require_command(name: str, why: str) -> None:
    """Fail (CI) or skip (a developer's machine) when a command a test drives is missing."""
    import shutil

    if shutil.which(name) is not None:
        return
    message = f"{name} is needed {why}"
    if services_required():
        pytest.fail(f"{message} (required because CI or SLA_REQUIRE_SERVICES=1 is set)")
    pytest.skip(f"{message}; set SLA_REQUIRE_SERVICES=1 to make this a failure")


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` (on the broker's host: the tests' broker is on loopback)."""
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=90)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: "
                           f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def amqp_vhost() -> Iterator[str]:
    """This session's own vhost, with every permission for the test user; deleted (with
    everything in it) when the session ends."""
    import time

    parsed = urlparse(AMQP_URL)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5672
    deadline = time.monotonic() + 60  # a broker being restarted comes back
    while not _reachable(host, port) and time.monotonic() < deadline:
        time.sleep(1)
    require_service("RabbitMQ", host, port)
    require_command("rabbitmqctl", "to give the test session a vhost of its own")
    vhost = f"sla-test-{uuid.uuid4().hex[:12]}"
    when_the_broker_runs(lambda: rabbitmqctl("add_vhost", vhost))
    try:
        rabbitmqctl("set_permissions", "-p", vhost, amqp_user(), ".*", ".*", ".*")
        yield vhost
    finally:
        when_the_broker_runs(lambda: rabbitmqctl("delete_vhost", vhost))


def when_the_broker_runs(command: Callable[[], object], timeout: float = 90) -> None:
    """Run a ``rabbitmqctl`` command, waiting while the broker is starting (or being
    restarted): the node answers, but its ``rabbit`` application is not up yet."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            command()
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def amqp_user() -> str:
    return unquote(urlparse(AMQP_URL).username or "guest")


@pytest.fixture(scope="session")
def amqp_url(amqp_vhost: str) -> str:
    """The broker URL every test uses: ``SLA_TEST_AMQP_URL`` on the session's vhost."""
    return urlparse(AMQP_URL)._replace(path="/" + quote(amqp_vhost, safe="")).geturl()


@pytest.fixture(scope="session")
def redis_url() -> str:
    parsed = urlparse(REDIS_URL)
    require_service("Redis", parsed.hostname or "127.0.0.1", parsed.port or 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres() -> dict[str, str]:
    require_service("PostgreSQL", PG["POSTGRES_HOST"], int(PG["POSTGRES_PORT"]))
    return dict(PG)


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so no test depends on another's leftovers."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a suite process under test (embedded defaults)."""
    env = {"SLA_DATA_DIR": str(data_dir), "SLA_SECRET_KEY": SECRET, "SLA_LOG_JSON": "1",
           "SLA_RELAY_POLL_INTERVAL": "0.05"}
    env.update(extra)
    return env


@pytest.fixture
def settings_factory(data_dir: Path) -> Iterator:
    from shared import config

    def make(**extra: str) -> config.Settings:
        return config.load(base_env(data_dir, **extra))

    yield make
