"""Waking on new events (shared/wakeups.py) against the real stores: an outbox relay whose
fallback poll is a minute long publishes what was saved — in its own process at once,
by another process through PostgreSQL ``LISTEN`` — and keeps doing so after its listening
connection is terminated (it reconnects). When no wake-up arrives (no one listens, or
wake-ups are off), the poll still publishes everything: nothing is lost.

No wait here comes near the minute: a message that arrives came by a wake-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared.bus.outbox import OutboxRelay, run_relays
from shared.bus.topology import QueueSpec
from shared.bus.transport import InProcessTransport
from shared.store import ensure_schema
from shared.wakeups import LogListener, Mark, Wakeup
from tests.integration.bus_fixtures import (
    BINDINGS,
    ProducerApp,
    describe,
    drop_schema,
    postgres_env,
    running,
    sqlite_env,
    wait_until,
)

MINUTE = 60.0
WAIT = 20.0


class Published:
    """The relay's messages, as a consumer of its routing key would get them."""

    def __init__(self, unique: str) -> None:
        self.transport = InProcessTransport()
        self.queue = QueueSpec(name=f"test-{unique}.watch", bindings=BINDINGS)
        self.transport.declare([self.queue])

    def count(self) -> int:
        return self.transport.depth(self.queue.name)


@pytest.fixture
def pg_env(postgres: dict[str, str], unique: str) -> Iterator[dict[str, str]]:
    schema = f"test_wake_{unique}"
    env = postgres_env(postgres, schema)
    ensure_schema(env)
    yield env
    drop_schema(postgres, schema)


def relay_of(app: ProducerApp, bus: Published, unique: str,
             poll_interval: float = MINUTE) -> OutboxRelay:
    return OutboxRelay(app, f"analysis-test-{unique}", bus.transport, describe,
                       poll_interval=poll_interval)


def test_a_save_in_the_relays_process_is_published_without_waiting_for_the_poll(
        tmp_path: Path, unique: str) -> None:
    bus = Published(unique)
    app = ProducerApp(sqlite_env(tmp_path / "analysis.sqlite"))
    try:
        with running(relay_of(app, bus, unique).run):
            app.produce(f"r-{unique}-0")
            wait_until(lambda: bus.count() == 1, WAIT, "the first message")
            # The relay has read the log and sleeps until its poll, a minute away.
            for n in range(1, 4):
                app.produce(f"r-{unique}-{n}")
                wait_until(lambda n=n: bus.count() == n + 1, WAIT, f"message {n + 1}")
    finally:
        app.close()


def test_another_process_save_wakes_the_relay_through_listen(
        pg_env: dict[str, str], unique: str) -> None:
    """Two applications on one schema stand for two processes: the writer's in-process
    signal never reaches the relay's application; PostgreSQL's NOTIFY does."""
    bus = Published(unique)
    relay_app, writer = ProducerApp(pg_env), ProducerApp(pg_env)
    listener = LogListener(relay_app)
    try:
        with running(listener.run, relay_of(relay_app, bus, unique).run):
            wait_until(listener.listening.is_set, WAIT, "listening")
            writer.produce(f"r-{unique}-0")
            wait_until(lambda: bus.count() == 1, WAIT, "the first message")
            for n in range(1, 4):
                writer.produce(f"r-{unique}-{n}")
                wait_until(lambda n=n: bus.count() == n + 1, WAIT, f"message {n + 1}")
    finally:
        relay_app.close()
        writer.close()


def test_a_terminated_listening_connection_reconnects_and_nothing_is_missed(
        pg_env: dict[str, str], postgres: dict[str, str], unique: str) -> None:
    bus = Published(unique)
    relay_app, writer = ProducerApp(pg_env), ProducerApp(pg_env)
    listener = LogListener(relay_app)
    try:
        with running(listener.run, relay_of(relay_app, bus, unique).run):
            wait_until(listener.listening.is_set, WAIT, "listening")
            writer.produce(f"r-{unique}-0")
            wait_until(lambda: bus.count() == 1, WAIT, "the first message")
            first = listener.backend_pid
            with psycopg.connect(host=postgres["POSTGRES_HOST"], port=postgres["POSTGRES_PORT"],
                                 user=postgres["POSTGRES_USER"],
                                 password=postgres.get("POSTGRES_PASSWORD") or None,
                                 dbname=postgres["POSTGRES_DBNAME"], autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()[0]
            # Saved while the listener may be deaf: its reconnection wakes the relay.
            writer.produce(f"r-{unique}-1")
            wait_until(lambda: bus.count() == 2, WAIT, "the message saved meanwhile")
            wait_until(lambda: listener.connections >= 2 and listener.listening.is_set(),
                       WAIT, "listening again")
            assert listener.backend_pid != first
            writer.produce(f"r-{unique}-2")
            wait_until(lambda: bus.count() == 3, WAIT, "a message after the reconnection")
    finally:
        relay_app.close()
        writer.close()


@pytest.mark.parametrize("wake", [True, False], ids=["wake-ups-lost", "wake-ups-off"])
def test_without_any_wake_up_the_poll_publishes_everything(
        pg_env: dict[str, str], unique: str, wake: bool) -> None:
    """Another process saves, and no listener runs: its NOTIFY reaches no one (as while a
    listener reconnects), or wake-ups are off. The relay's poll finds every message, in
    order, once."""
    bus = Published(unique)
    relay_app, writer = ProducerApp(pg_env), ProducerApp(pg_env)
    relay = relay_of(relay_app, bus, unique, poll_interval=0.05)
    try:
        with running(lambda stop: run_relays([relay], stop, wake)):
            for n in range(20):
                writer.produce(f"r-{unique}-{n}")
            wait_until(lambda: bus.count() == 20, WAIT, "every message")
        assert relay_app.published_position(relay.outbox) == 20
    finally:
        relay_app.close()
        writer.close()


def test_a_wakeup_sets_each_waiter_and_a_mark_its_shared_event() -> None:
    wakeup = Wakeup()
    mine, theirs = wakeup.waiter(), wakeup.waiter()
    shared = threading.Event()
    mark = wakeup.add(Mark(shared))
    wakeup.set()
    assert mine.is_set() and theirs.is_set() and shared.is_set()
    assert isinstance(mark, Mark) and mark.take() and not mark.take()
    wakeup.remove(mark)
    shared.clear()
    wakeup.set()
    assert not shared.is_set()
