"""Waking the background loops when there is new work, instead of polling for it.

Every loop on an alert's path (the outbox relay, monitoring's evaluator, notification's
scheduler and dispatcher) reads a log. Polling that log often costs CPU while nothing
happens, and polling it seldom costs latency. So each log has a :class:`Wakeup`
(``ServiceApplication.recorded``) that says "this log may have new events":

* in the process that saved them, at once (``ServiceApplication`` sets it after every
  save: the embedded suite, and a worker's own saves);
* from other processes on PostgreSQL, through ``LISTEN``: the eventsourcing recorder
  sends ``NOTIFY <its events table>`` in every transaction that inserts events, and a
  :class:`LogListener` per log, in each process that runs roles, sets the log's wakeup
  when one arrives.

A wake-up is only a hint. Each loop still reads from its own position, so a spurious one
costs one empty read, and a lost one (a listener reconnecting, ``SLA_WAKE_ON_EVENTS=false``,
a pooler that drops ``LISTEN``) costs at most the loop's fallback poll interval: nothing
is ever stuck, and nothing is lost (docs/architecture.md, "Waking on new events").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Settable(Protocol):
    """Anything a wakeup can set: a ``threading.Event``, another :class:`Wakeup`."""

    def set(self) -> None: ...


class Wakeup:
    """"There may be new work": set by whoever recorded some (or moved a test clock). Every
    loop that waits has a target of its own (:meth:`waiter`), so one loop's wake-up is not
    another's; a wakeup can also forward to another (:meth:`add`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[Settable] = []

    def waiter(self) -> threading.Event:
        """A new event of one loop's own, set with every :meth:`set` from now on."""
        event = threading.Event()
        self.add(event)
        return event

    def add(self, target: Settable) -> Settable:
        """Set ``target`` too with every :meth:`set` from now on."""
        with self._lock:
            self._targets.append(target)
        return target

    def remove(self, target: Settable) -> None:
        with self._lock:
            if target in self._targets:
                self._targets.remove(target)

    def set(self) -> None:
        with self._lock:
            targets = list(self._targets)
        for target in targets:
            target.set()


STOP_CHECK = 1.0  # seconds: how often a loop asleep on a wake-up looks at its stop event


def sleep(woken: threading.Event, stop: threading.Event, timeout: float) -> bool:
    """Sleep until ``woken`` is set, ``stop`` is set, or ``timeout`` seconds passed; True
    when woken. ``stop`` is looked at every ``STOP_CHECK`` seconds (the runtime also sets
    the wake-ups when it stops, so its loops end at once)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if woken.wait(min(left, STOP_CHECK)):
            return True
    return False


class Mark:
    """One source's flag behind a shared event: a loop that waits for several logs at
    once (the relays of a service's logs) waits on the shared event, then does the work
    of the logs whose marks are up."""

    def __init__(self, shared: threading.Event) -> None:
        self.shared = shared
        self._up = threading.Event()

    def set(self) -> None:
        self._up.set()
        self.shared.set()

    def take(self) -> bool:
        """Whether it was up (and lower it)."""
        if self._up.is_set():
            self._up.clear()
            return True
        return False


class LogListener:
    """Sets a log's wakeup whenever PostgreSQL notifies its channel (``LISTEN``), on a
    connection of its own; reconnects with backoff when the connection drops.

    After each (re)connection it sets the wakeup once: what was recorded while it was not
    listening is read at once, not only at the next fallback poll."""

    def __init__(self, store: Any, name: str = "") -> None:
        """``store``: a ``ServiceApplication`` on PostgreSQL (``store.recorded`` is set)."""
        recorder = store.recorder
        self.store = store
        self.channel: str = recorder.channel_name
        self.name = name or self.channel
        self._params = dict(recorder.datastore.pool.kwargs)
        self._params.pop("row_factory", None)
        self._timeout = float(getattr(recorder.datastore.pool, "timeout", 5.0) or 5.0)
        self.backend_pid: int | None = None  # the listening connection's server process
        self.connections = 0  # how many times it has connected (a test sees reconnects)
        self.listening = threading.Event()
        self.last_error: str | None = None

    def run(self, stop: threading.Event) -> None:
        import psycopg
        from psycopg import sql

        from shared.bus.transport import backoff

        failures = 0
        while not stop.is_set():
            try:
                params = {**self._params, "password": self._params.get("password") or None}
                with psycopg.connect(autocommit=True, connect_timeout=max(1, int(self._timeout)),
                                     **params) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.backend_pid = conn.info.backend_pid
                    self.connections += 1
                    self.listening.set()
                    self.last_error = None
                    failures = 0
                    self.store.recorded.set()  # anything recorded while not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=STOP_CHECK):
                            self.store.recorded.set()
                            if stop.is_set():
                                break
            except Exception as exc:  # noqa: BLE001 - reconnect; the loops poll meanwhile
                self.listening.clear()
                self.backend_pid = None
                if stop.is_set():
                    break
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("listening for new events of %s failed (%s); reconnecting",
                            self.name, exc)
                self.store.recorded.set()
                stop.wait(backoff(failures, base=0.2, cap=5.0))
        self.listening.clear()


def listens(store: Any) -> bool:
    """Whether this store's recorder notifies a channel other processes can listen to."""
    return hasattr(store.recorder, "channel_name") and hasattr(store.recorder, "datastore") \
        and hasattr(store.recorder.datastore, "pool")
