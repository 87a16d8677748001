"""What a service declares about itself, and the runtime that wires it.

A service module provides a :class:`ServiceSpec`; the same spec runs embedded (threads,
in-process bus, SQLite) or distributed (gunicorn for HTTP, worker processes for the
relay, the inbox and the service's own roles, RabbitMQ, PostgreSQL, Redis) — chosen by
the environment only.

Wiring is explicit: the runtime reads the service's own settings through its spec, makes
the store's environment, the cache and the transport, and hands them to the spec as one
:class:`Wiring`; the spec builds its application and its background roles from that, and
nothing is set on either afterwards (docs/architecture.md, "Adding a service").
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint

from shared.bus.inbox import Handler, Inbox
from shared.bus.outbox import Describe, OutboxRelay, run_relays
from shared.bus.topology import Binding, QueueSpec, inbox_queue
from shared.bus.transport import InProcessTransport, Transport
from shared.cache import Cache, make_cache
from shared.config import SERVICES, Settings
from shared.store import ServiceApplication, ensure_schema, schema_lock, topics_of
from shared.wakeups import LogListener, listens

log = logging.getLogger(__name__)


def _no_error() -> str | None:
    return None


# Objects a worker process allocates before the cyclic collector looks at its youngest
# generation (the interpreter's default is 700).
GC_YOUNG_THRESHOLD = 20_000


def tune_collector() -> None:
    """Collect cycles seldom in a worker process, and never walk what start-up built.

    The hot loops allocate a few containers a message or a sample (a sample's dict and
    row, a window's lists) that reference counting frees at once; with the default
    threshold the cyclic collector ran every few hundred of them and, every hundred runs
    or so, walked the whole heap — the working set, the evaluator's open windows. That was
    a fifth of the intake's and the evaluator's CPU (``bench/README.md``, "Ingest").
    ``gc.freeze`` moves what exists now (modules, the service's state as loaded) out of
    the collector's reach; cycles made later are still collected, only less often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


@dataclass(frozen=True)
class Role:
    """One named background loop of a service: ``run`` until the stop event is set, and
    ``last_error`` for readiness (its loop's last failure, None while it is well)."""

    run: Callable[[threading.Event], None]
    last_error: Callable[[], str | None] = _no_error


@dataclass(frozen=True)
class Wiring:
    """Everything a service's spec builds its application and roles from."""

    service: str
    platform: Settings
    # The service's own settings, as its spec's ``settings`` read them (None if it has none).
    settings: Any
    # The event store's own variables (the eventsourcing library's), nothing else.
    store_env: Mapping[str, str]
    cache: Cache
    transport: Transport
    # The time source to build the application with, in the unit the application takes;
    # None: the application's own (the wall clock). Tests give one to move time.
    clock: Callable[[], Any] | None = None
    # By channel, what the service hands its messages over with (e.g. notification's
    # ``email`` and ``webhook`` senders); empty: the ones its own settings make.
    senders: Mapping[str, Any] = field(default_factory=dict)


def _no_settings(env: Mapping[str, str]) -> None:
    return None


def _no_roles(app: Any, wiring: Wiring) -> dict[str, Role]:
    return {}


@dataclass(frozen=True)
class PublishedLog:
    """A further log a service publishes from, beside its publishing store's: a relay of
    its own over it, with its own position and message ids (``<service>.<name>:<n>``),
    run in the service's ``relay`` role with the first one."""

    name: str
    # Given the service's application, the log (an application) to publish.
    store: Callable[[Any], ServiceApplication]
    # Given the service's application, maps each event of that log to what it publishes.
    describe: Callable[[Any], Describe]
    # Aggregate types whose events are published (empty: every event is offered).
    published: tuple[type, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    # The service's application class (its package holds ``wsgi.py``, the HTTP entry point).
    application: type[ServiceApplication]
    blueprint: Callable[[Runtime], Blueprint]
    # Given the service's application, maps each stored event to what it publishes.
    describe: Callable[[Any], Describe]
    bindings: tuple[Binding, ...] = ()
    handlers: Callable[[Any], dict[str, Handler]] = field(default=lambda app: {})
    # Aggregate types whose events the outbox publishes (empty: every event is offered).
    published: tuple[type, ...] = ()
    # Further logs published beside the publishing store's (see :class:`PublishedLog`).
    also_published: tuple[PublishedLog, ...] = ()
    # Turns an aggregate into its resource representation, for audit "as of" queries.
    represent: Callable[[Any], dict[str, Any]] | None = None
    # Reads and validates the service's own settings from the environment (raising
    # ``ConfigError`` naming the variable); checked when a process starts.
    settings: Callable[[Mapping[str, str]], Any] = _no_settings
    # Builds the application from the wiring; None: ``application(wiring.store_env)``.
    build: Callable[[Wiring], ServiceApplication] | None = None
    # The service's own background roles (schedulers, evaluators, consumers of its own
    # queues), by name, from its application and the wiring: ``slactl worker SERVICE
    # --only ROLE`` runs some of them. Called only where roles run (a worker, or the
    # embedded suite), never in a distributed HTTP process.
    background: Callable[[Any, Wiring], dict[str, Role]] = _no_roles
    # How distributed mode spreads the roles over worker processes: one entry per process
    # (comma-separated roles); empty: one process with every role.
    worker_processes: tuple[str, ...] = ()
    title: str = ""
    description: str = ""

    @property
    def root(self) -> str:
        return str(SERVICES[self.name]["root"])

    @property
    def port(self) -> int:
        return int(SERVICES[self.name]["port"])

    def queue(self) -> QueueSpec:
        """The durable inbox queue, by its logical name (the transport adds the suite's
        ``SLA_BUS_PREFIX`` on the broker)."""
        return inbox_queue(self.name, self.bindings)

    def own_settings(self, settings: Settings) -> Any:
        """The service's own settings, read from the environment ``settings`` came from."""
        return self.settings(settings.environment)


def make_transport(settings: Settings, shared: Transport | None = None,
                   name: str | None = None) -> Transport:
    """The service's bus; ``name`` names its broker connections (``<prefix><service>``)."""
    if shared is not None:
        return shared
    if settings.bus_url:
        from shared.bus.amqp import AmqpTransport

        return AmqpTransport(settings.bus_url, settings.bus_prefix,
                             name=f"{settings.bus_prefix}{name}" if name else None)
    return InProcessTransport()


class Runtime:
    """One service's store, bus and cache, and its background work (relay, inbox, roles)."""

    PLATFORM_ROLES = ("relay", "inbox")

    def __init__(self, spec: ServiceSpec, settings: Settings,
                 transport: Transport | None = None,
                 clock: Callable[[], Any] | None = None,
                 senders: Mapping[str, Any] | None = None) -> None:
        self.spec, self.settings = spec, settings
        store_env = settings.store_env(spec.name)
        self.transport = make_transport(settings, transport, spec.name)
        self.cache: Cache = make_cache(settings.redis_url, settings.bus_prefix + spec.name)
        self.wiring = Wiring(service=spec.name, platform=settings,
                             settings=spec.own_settings(settings), store_env=store_env,
                             cache=self.cache, transport=self.transport, clock=clock,
                             senders=dict(senders or {}))
        if settings.persistence_module == "eventsourcing.sqlite":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_schema(store_env)
        with schema_lock(store_env):
            self.app = spec.build(self.wiring) if spec.build is not None \
                else spec.application(store_env)
        self.relay = OutboxRelay(self.app.publishing_store, spec.name, self.transport,
                                 spec.describe(self.app),
                                 batch=settings.relay_batch,
                                 poll_interval=settings.relay_poll_interval,
                                 topics=topics_of(spec.published))
        # The relays of every log the service publishes, the publishing store's first.
        self.relays = [self.relay] + [
            OutboxRelay(log.store(self.app), spec.name, self.transport, log.describe(self.app),
                        batch=settings.relay_batch, poll_interval=settings.relay_poll_interval,
                        topics=topics_of(log.published), log=log.name)
            for log in spec.also_published]
        self.queue = spec.queue()
        self.inbox = Inbox(self.app, spec.name, self.transport, self.queue,
                           spec.handlers(self.app), max_deliveries=settings.max_deliveries,
                           prefetch=settings.prefetch, group=settings.inbox_group)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._roles: dict[str, threading.Thread] = {}  # the roles this process runs
        # Each role's last error, or None while it is well (readiness).
        self._health: dict[str, Callable[[], str | None]] = {}
        # The LISTEN connections of this process, by log (only where roles run).
        self.listeners: dict[int, LogListener] = {}

    def roles(self) -> dict[str, Role]:
        """Every role of the service: the outbox relay, the inbox if it consumes anything,
        and the service's own (built here, so only where roles run)."""
        wake = self.settings.wake_on_events
        roles = {"relay": Role(
            lambda stop: run_relays(self.relays, stop, wake),
            lambda: next((r.last_error for r in self.relays if r.last_error), None))}
        if self.spec.bindings:
            roles["inbox"] = Role(self.inbox.run)
        own = self.spec.background(self.app, self.wiring)
        clash = set(own) & set(self.PLATFORM_ROLES)
        if clash:
            raise ValueError(f"{self.spec.name}: role names {', '.join(sorted(clash))} "
                             f"are the platform's")
        roles.update(own)
        return roles

    def start_workers(self, only: set[str] | None = None) -> list[str]:
        """Start the service's roles — or only those named in ``only`` (so a service's
        work can be spread over several processes). Returns the roles started."""
        roles = self.roles()
        if only is not None:
            # A role split in numbered parts (monitoring's ``evaluator-0`` … with several
            # evaluator partitions) is also named by its family: ``evaluator`` runs them all.
            only = {r for name in only for r in (
                [name] if name in roles else
                [role for role in roles if role.startswith(f"{name}-")
                 and role[len(name) + 1:].isdigit()] or [name])}
        unknown = (only or set()) - set(roles)
        if unknown:
            raise ValueError(f"{self.spec.name} has no role {', '.join(sorted(unknown))}; "
                             f"its roles: {', '.join(roles)}")
        if (only is None or "inbox" in only) and self.spec.bindings:
            self.transport.declare([self.queue])
        started = []
        if self.settings.wake_on_events:
            self._listen()
        for name, role in roles.items():
            if only is None or name in only:
                self._health[name] = role.last_error
                self._roles[name] = self._spawn(f"{self.spec.name}-{name}", role.run)
                started.append(name)
        if self.settings.redis_url:
            # Distributed: the HTTP processes learn this process's health from Redis.
            self._spawn(f"{self.spec.name}-heartbeat", self._heartbeat)
        return started

    def logs(self) -> list[ServiceApplication]:
        """Every log of the service, each once: its stores and the logs it publishes."""
        found: dict[int, ServiceApplication] = {}
        for store in [*self.app.stores(), *(r.app for r in self.relays)]:
            found.setdefault(id(store), store)
        return list(found.values())

    def _listen(self) -> None:
        """Where roles run, on PostgreSQL: a listener per log, so this process's loops
        wake when another process records events (``shared.wakeups``). Its state is not
        a role of its own: while it reconnects the loops poll, and nothing is lost."""
        for store in self.logs():
            if listens(store) and id(store) not in self.listeners:
                listener = LogListener(store, f"{self.spec.name} {store.name}")
                self.listeners[id(store)] = listener
                self._spawn(f"{self.spec.name}-listen-{store.name}", listener.run)

    def _spawn(self, name: str, target: Callable[[threading.Event], None]
               ) -> threading.Thread:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # --- health of the roles ------------------------------------------------------------
    ROLES_KEY = "roles"

    def role_state(self, role: str) -> str:
        """``ok``, ``failing`` (its loop keeps failing) or ``stopped`` (its thread ended)."""
        thread = self._roles.get(role)
        if thread is None or not thread.is_alive():
            return "stopped"
        check = self._health.get(role)
        return "failing" if check is not None and check() else "ok"

    def _heartbeat(self, stop: threading.Event) -> None:
        """Every ``SLA_HEARTBEAT_SECONDS``, write each role's state to the cache with a
        time to live of three beats, and name the role in the service's set of roles: a
        role whose process died or hangs falls silent, and readiness says so. A clean
        stop takes the process's roles out of the set."""
        interval = self.settings.heartbeat_seconds
        registered: set[str] = set()
        while True:
            try:
                for role in self._roles:
                    self.cache.set(f"heartbeat:{role}", self.role_state(role).encode(),
                                   ttl=3 * interval)
                    if role not in registered:
                        self.cache.add_member(self.ROLES_KEY, role)
                        registered.add(role)
            except Exception as exc:  # noqa: BLE001 - the cache is down: readiness says so
                log.warning("heartbeat of %s not written: %s", self.spec.name, exc)
            if stop.wait(interval):
                break
        try:
            for role in self._roles:
                self.cache.remove_member(self.ROLES_KEY, role)
                self.cache.delete(f"heartbeat:{role}")
        except Exception as exc:  # noqa: BLE001
            log.warning("roles of %s not withdrawn: %s", self.spec.name, exc)

    def role_states(self) -> dict[str, str]:
        """The state of each role of the service: this process's own when it runs them
        (embedded mode, a worker), else the heartbeats of the worker processes (an HTTP
        process in distributed mode); ``silent`` when a role's heartbeat stopped."""
        if self._roles:
            return {role: self.role_state(role) for role in self._roles}
        if not self.settings.redis_url:
            return {}
        states = {}
        for role in sorted(self.cache.members(self.ROLES_KEY)):
            beat = self.cache.get(f"heartbeat:{role}")
            states[role] = beat.decode() if beat else "silent"
        return states

    @property
    def workers_alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for store in self.logs():
            store.recorded.set()  # loops sleeping until new events see the stop at once
        for thread in self._threads:
            thread.join(timeout)
        self.transport.close()
        self.app.close()

    def readiness(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or ``down: <why>``."""
        checks: dict[str, str] = {}
        for name, probe in (("store", self.app.ping), ("bus", self.transport.ping),
                            ("cache", self.cache.ping)):
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                checks[name] = f"down: {type(exc).__name__}: {exc}"[:300]
        if checks["cache"] == "ok":
            # Each role that is not well, by name and state (never its error text).
            try:
                roles = self.role_states()
            except Exception:  # noqa: BLE001 - the cache went away meanwhile
                roles = {}
            checks.update({role: state for role, state in roles.items() if state != "ok"})
        return checks
