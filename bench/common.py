"""What every benchmark shares: the machine's description and the result files, a
pipelined publisher with publisher confirms, the raw-pika consumer used as a baseline, a
watcher of monitoring's crossing events, and the distributed suite itself (threshold
registry and monitoring as gunicorn + worker processes on RabbitMQ, PostgreSQL and Redis,
with an estate of purchased offerings under a monitoring regime).

Rules (bench/README.md): speed is a ratio against a baseline measured in the same run on
the same broker; every loop has a count and a time limit; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pika
import requests
from pika.adapters.select_connection import SelectConnection
from rich.console import Console
from rich.table import Table

from shared.bus import topology
from shared.bus.topology import BrokerNames
from shared.durations import duration_text
from tests import helpers
from tests.e2e import processes
from tests.e2e.processes import Process, free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG = {
    "POSTGRES_HOST": os.environ.get("BENCH_POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("BENCH_POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("BENCH_POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("BENCH_POSTGRES_PASSWORD", ""),
    "POSTGRES_DBNAME": os.environ.get("BENCH_POSTGRES_DBNAME", "sla"),
}
# One run's own broker names (as SLA_BUS_PREFIX gives a suite), so a benchmark never
# consumes, or is slowed by, another suite's messages on the same broker.
BUS_PREFIX = os.environ.get("BENCH_BUS_PREFIX") or f"bench-{uuid.uuid4().hex[:8]}."
BUS_NAMES = BrokerNames(BUS_PREFIX)
MEASUREMENTS = BUS_NAMES.exchange(topology.MEASUREMENTS)
SLA_EVENTS = BUS_NAMES.exchange(topology.SLA_EVENTS)
ROUTING_KEY = "measurement.bench"
# Like the suite's MeasurementConsumer (services/monitoring/messaging.py).
SUITE_PREFETCH = 200

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# --- output ---------------------------------------------------------------------------------
def progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(), "hostname": socket.gethostname(),
            "pika": pika.__version__}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def result_path(name: str, quick: bool = False) -> Path:
    """``<name>.json``; a ``--quick`` run writes ``<name>.quick.json`` so a smoke run
    never overwrites the figures of a full one."""
    return RESULTS / f"{name}{'.quick' if quick else ''}.json"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(name, bool(payload.get("quick")))
    document = {"benchmark": name, "date": now_iso(), "machine": machine(), **payload}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    progress(f"wrote [bold]{path.relative_to(ROOT)}[/bold]")
    return path


def read_result(name: str, quick: bool = False) -> dict[str, Any] | None:
    path = result_path(name, quick)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c == columns[0] else "right")
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    console.print(t)


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the suite's convention)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def arguments(description: str, argv: list[str] | None,
              extra: Callable[[argparse.ArgumentParser], None] | None = None
              ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--offerings", type=int, default=200,
                        help="purchased offerings in the estate (default 200)")
    parser.add_argument("--samples-per-series-window", type=int, default=20,
                        help="latency samples per purchased offering per 1-minute window "
                             "(default 20: a sample every 3 s)")
    parser.add_argument("--partitions", type=int, default=1,
                        help="SLA_EVALUATOR_PARTITIONS: evaluator partitions, each in a "
                             "worker process of its own (default 1); the estate gets as many "
                             "regimes, so each partition has one")
    parser.add_argument("--intakes", type=int, default=1,
                        help="measurement intake processes consuming the one queue "
                             "(default 1)")
    if extra:
        extra(parser)
    return parser.parse_args(argv)


# --- AMQP helpers ---------------------------------------------------------------------------
def blocking() -> tuple[pika.BlockingConnection, Any]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    return connection, connection.channel()


def queue_depth(name: str) -> int | None:
    try:
        connection, channel = blocking()
    except pika.exceptions.AMQPError:
        return None
    try:
        return channel.queue_declare(name, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def purge(name: str) -> int | None:
    connection, channel = blocking()
    try:
        return channel.queue_purge(name).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        with contextlib.suppress(Exception):
            connection.close()


PERSISTENT = pika.BasicProperties(content_type="application/json",
                                  delivery_mode=pika.DeliveryMode.Persistent)


@dataclass
class PublishStats:
    sent: int = 0
    confirmed: int = 0
    nacked: int = 0
    first: float | None = None        # monotonic time of the first publish
    last_confirm: float | None = None  # monotonic time of the last confirm
    timed_out: bool = False
    stopped: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        seconds = (self.last_confirm - self.first) if self.first and self.last_confirm else None
        return {"sent": self.sent, "confirmed": self.confirmed, "nacked": self.nacked,
                "seconds": seconds, "timedOut": self.timed_out, "error": self.error}


class ConfirmPublisher:
    """Publishes persistent messages with publisher confirms on one connection, keeping
    up to ``window`` messages unconfirmed (pipelined confirms, as a producer that cares
    about throughput does; the suite's outbox confirms each message synchronously)."""

    def __init__(self, exchange: str, window: int = 256) -> None:
        self.exchange, self.window = exchange, window
        self._connection: SelectConnection | None = None
        self._stop_requested = threading.Event()

    def request_stop(self) -> None:
        """Stop after what is in flight (from any thread)."""
        self._stop_requested.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.ioloop.add_callback_threadsafe(lambda: None)

    def run(self, messages: Iterable[tuple[str, bytes, Any]], time_limit: float,
            rate: float | None = None,
            on_sent: Callable[[Any, float], None] | None = None) -> PublishStats:
        """Publish ``(routing_key, body, tag)`` items; ``rate`` in messages/s (None: as
        fast as confirms allow); ``on_sent(tag, monotonic)`` after each publish."""
        stats = PublishStats()
        source = iter(messages)
        pending: collections.deque[int] = collections.deque()
        state = {"exhausted": False, "closing": False, "scheduled": False, "channel": None,
                 "start": None}

        def close() -> None:
            if state["closing"]:
                return
            state["closing"] = True
            connection = self._connection
            if connection is not None and connection.is_open:
                connection.close()

        def pump() -> None:
            state["scheduled"] = False
            channel = state["channel"]
            if state["closing"] or channel is None:
                return
            if self._stop_requested.is_set():
                stats.stopped = True
                state["exhausted"] = True
            while not state["exhausted"] and len(pending) < self.window:
                now = time.monotonic()
                if rate:
                    due = state["start"] + stats.sent / rate
                    if due > now:
                        state["scheduled"] = True
                        self._connection.ioloop.call_later(due - now, pump)
                        break
                try:
                    routing_key, body, tag = next(source)
                except StopIteration:
                    state["exhausted"] = True
                    break
                if stats.first is None:
                    stats.first = now
                channel.basic_publish(self.exchange, routing_key, body, PERSISTENT)
                stats.sent += 1
                pending.append(stats.sent)
                if on_sent is not None:
                    on_sent(tag, time.monotonic())
            if state["exhausted"] and not pending:
                close()
            elif self._stop_requested.is_set() and not state["scheduled"]:
                state["scheduled"] = True
                self._connection.ioloop.call_later(0.05, pump)

        def on_confirm(frame: Any) -> None:
            method = frame.method
            tag, multiple = method.delivery_tag, method.multiple
            count = 0
            if multiple:
                while pending and pending[0] <= tag:
                    pending.popleft()
                    count += 1
            elif pending and pending[0] == tag:
                pending.popleft()
                count = 1
            else:
                with contextlib.suppress(ValueError):
                    pending.remove(tag)
                    count = 1
            if isinstance(method, pika.spec.Basic.Nack):
                stats.nacked += count
            else:
                stats.confirmed += count
            stats.last_confirm = time.monotonic()
            if not state["scheduled"]:
                pump()

        def on_channel(channel: Any) -> None:
            state["channel"] = channel
            def on_channel_closed(_channel: Any, reason: Any) -> None:
                if not state["closing"]:
                    stats.error = stats.error or f"channel closed: {reason}"
                    close()

            channel.add_on_close_callback(on_channel_closed)
            state["start"] = time.monotonic()
            channel.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _f: pump())

        def on_open(connection: Any) -> None:
            connection.channel(on_open_callback=on_channel)
            connection.ioloop.call_later(time_limit, on_deadline)
            watch_stop()

        def watch_stop() -> None:
            if self._stop_requested.is_set() and not state["scheduled"]:
                pump()
            if not state["closing"]:
                self._connection.ioloop.call_later(0.1, watch_stop)

        def on_deadline() -> None:
            if not state["closing"]:
                stats.timed_out = True
                close()

        def on_open_error(_connection: Any, exc: Any) -> None:
            stats.error = f"cannot connect: {exc}"
            self._connection.ioloop.stop()

        def on_closed(_connection: Any, reason: Any) -> None:
            if not state["closing"]:
                stats.error = stats.error or f"connection closed: {reason}"
            self._connection.ioloop.stop()

        self._connection = SelectConnection(pika.URLParameters(AMQP_URL),
                                            on_open_callback=on_open,
                                            on_open_error_callback=on_open_error,
                                            on_close_callback=on_closed)
        try:
            self._connection.ioloop.start()
        finally:
            self._connection = None
        return stats


def _raw_consume(url: str, queue: str, expected: int, prefetch: int, time_limit: float,
                 ready: Any, results: Any) -> None:
    """In its own process (like the suite's worker): consume and ack, no processing."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    received, first, last, size = 0, None, None, 0
    deadline = time.monotonic() + time_limit
    ready.set()
    for method, _props, body in channel.consume(queue, inactivity_timeout=0.2):
        now = time.monotonic()
        if method is not None:
            channel.basic_ack(method.delivery_tag)
            received += 1
            size += len(body)
            first = first or now
            last = now
            if received >= expected:
                break
        if now > deadline:
            break
    with contextlib.suppress(Exception):
        channel.cancel()
        connection.close()
    results.put({"received": received, "first": first, "last": last, "bytes": size})


def raw_ceiling(bodies: list[bytes], samples_per_message: int, time_limit: float,
                window: int = 256) -> dict[str, Any]:
    """The baseline: publish these very messages (persistent, confirmed) to a temporary
    durable queue through a temporary topic exchange, and consume them with manual acks
    and the suite's prefetch in another process; no processing."""
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench.raw.{tag}", f"bench.raw.{tag}"
    connection, channel = blocking()
    channel.exchange_declare(exchange, exchange_type="topic", durable=False, auto_delete=False)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="measurement.#")
    connection.close()
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_raw_consume, args=(
        AMQP_URL, queue, len(bodies), SUITE_PREFETCH, time_limit + 10, ready, results),
        daemon=True)
    consumer.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the raw consumer did not start")
        publisher = ConfirmPublisher(exchange, window)
        stats = publisher.run(((ROUTING_KEY, b, None) for b in bodies), time_limit)
        try:
            got = results.get(timeout=time_limit + 20)
        except Exception:  # noqa: BLE001 - queue.Empty
            got = {"received": 0, "first": None, "last": None, "bytes": 0}
        consumer.join(5)
    finally:
        if consumer.is_alive():
            consumer.terminate()
        connection, channel = blocking()
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        connection.close()
    seconds = (got["last"] - stats.first) if got["last"] and stats.first else None
    received = got["received"]
    result: dict[str, Any] = {
        "messages": received, "samples": received * samples_per_message,
        "seconds": seconds, "bytes": got["bytes"],
        "messagesPerSecond": received / seconds if seconds else None,
        "samplesPerSecond": received * samples_per_message / seconds if seconds else None,
        "publish": stats.as_dict(),
        "publishMessagesPerSecond": (stats.confirmed / stats.as_dict()["seconds"]
                                     if stats.as_dict()["seconds"] else None),
    }
    if received < len(bodies):
        result["incomplete"] = (f"consumed {received} of {len(bodies)} within the "
                                f"{time_limit:.0f} s limit")
    return result


# --- crossing events ------------------------------------------------------------------------
def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CrossingWatcher:
    """Consumes monitoring's ThresholdCrossingEvents (``sla.events``,
    ``monitoring.crossing.*``) of one regime into memory, stamped on receipt."""

    def __init__(self, regime_id: str | list[str]) -> None:
        self.regime_ids = {regime_id} if isinstance(regime_id, str) else set(regime_id)
        self._seen: dict[tuple[str, float, str], dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crossing-watcher", daemon=True)
        self.error: str | None = None
        self.other = 0

    def __enter__(self) -> CrossingWatcher:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError(f"crossing watcher did not start: {self.error}")
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            connection, channel = blocking()
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, SLA_EVENTS, "monitoring.crossing.*")
            self._ready.set()
            for method, _props, body in channel.consume(queue, auto_ack=True,
                                                        inactivity_timeout=0.1):
                if self._stop.is_set():
                    break
                if method is None:
                    continue
                received, wall = time.monotonic(), time.time()
                try:
                    envelope = orjson.loads(body)
                    event = envelope["event"]
                    crossing = event["crossing"]
                except (ValueError, KeyError, TypeError):
                    continue
                if crossing.get("regimeId") not in self.regime_ids:
                    self.other += 1
                    continue
                key = (crossing["scope"]["id"], epoch(crossing["window"]["startDateTime"]),
                       event["change"])
                with self._cond:
                    self._seen.setdefault(key, {"received": received, "receivedWall": wall,
                                                "raisedAt": crossing.get("raisedAt"),
                                                "level": crossing.get("level")})
                    self._cond.notify_all()
            with contextlib.suppress(Exception):
                channel.cancel()
                connection.close()
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark
            self.error = f"{type(exc).__name__}: {exc}"
            self._ready.set()

    def get(self, scope_id: str, window_start: float, change: str = "raised"
            ) -> dict[str, Any] | None:
        with self._cond:
            return self._seen.get((scope_id, window_start, change))

    def wait(self, scope_id: str, window_start: float, timeout: float,
             change: str = "raised") -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        key = (scope_id, window_start, change)
        with self._cond:
            while key not in self._seen:
                left = deadline - time.monotonic()
                if left <= 0 or self.error:
                    return None
                self._cond.wait(min(left, 0.5))
            return self._seen[key]


# --- the suite as processes -----------------------------------------------------------------
# Started, watched and stopped with the end-to-end tests' helpers (tests/e2e/processes.py).
def drop_schemas(prefix: str) -> None:
    """Drop every PostgreSQL schema whose name starts with ``prefix``."""
    helpers.drop_schemas(PG, prefix)


def iso_ms(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def envelope(batch_id: str, samples: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({
        "eventId": str(uuid.uuid4()), "eventTime": now_iso(),
        "eventType": "MeasurementBatchEvent", "source": "bench", "schemaVersion": "1",
        "correlationId": batch_id, "event": {"batchId": batch_id, "samples": samples}})


GOOD = 20.0       # ms, well inside the standard (warning 80, breach 100)
BREACHING = 5000.0


@dataclass
class Batch:
    """Prepared measurement messages and where they sit in simulated time."""

    bodies: list[bytes]
    samples: int
    first_time: float
    last_time: float
    sentinel: bytes | None = None
    sentinel_po: str | None = None
    sentinel_window: float | None = None
    # with several regimes: the sentinel's offering of each (sentinel_po is the first)
    sentinel_pos: list[str] = field(default_factory=list)
    windows: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class Suite:
    """threshold-registry and monitoring, each as gunicorn + worker, on RabbitMQ,
    PostgreSQL and Redis, under a unique schema and queue prefix; plus the estate."""

    WINDOW = 60.0      # PT1M
    LATENESS = 60.0    # PT1M (the API's default)
    # With several intake processes, messages are taken out of order across them (each
    # holds up to its prefetch of 400): the samples' simulated time runs ~1.5 s a
    # 100-sample message, so an allowed lateness of one minute would refuse as late what
    # one process takes while another is hundreds of messages ahead. PT1H covers it.
    LATENESS_SEVERAL_INTAKES = 3600.0

    def __init__(self, offerings: int = 200, samples_per_series_window: int = 20,
                 partitions: int = 1, intakes: int = 1) -> None:
        self.partitions, self.intakes = partitions, intakes
        if intakes > 1:
            self.LATENESS = self.LATENESS_SEVERAL_INTAKES
        self.unique = uuid.uuid4().hex[:8]
        self.schema_prefix = f"bench{self.unique}_"
        self.queue_prefix = BUS_PREFIX
        self.secret = "bench-" + uuid.uuid4().hex + uuid.uuid4().hex
        self.offerings = offerings
        self.per_series = samples_per_series_window
        self.processes: dict[str, Process] = {}
        self.ports = {"threshold-registry": free_port(), "monitoring": free_port()}
        self.products: list[str] = []
        self.regime_id = ""
        self.regime_ids: list[str] = []
        self.regime_partition: dict[str, int] = {}  # regime id -> its customer group number
        self.group_id = ""
        self._probe = 0
        self._batch_seq = 0
        # Simulated time starts a day ago (samples may not be more than 5 minutes ahead).
        start = time.time() - 86400
        self.cursor = (start // self.WINDOW) * self.WINDOW
        self.started = time.monotonic()
        from shared import auth

        self.admin = auth.issue(self.secret, ["admin"], "bench")
        self.ingest_token = auth.issue(self.secret, ["ingest"], "bench-ingest")

    # --- addresses ----------------------------------------------------------------------
    def base(self, service: str) -> str:
        root = {"threshold-registry": "/threshold-registry/v1",
                "monitoring": "/monitoring/v1"}[service]
        return f"http://127.0.0.1:{self.ports[service]}{root}"

    @property
    def measurement_queue(self) -> str:
        return f"{self.queue_prefix}monitoring.measurements"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    def env(self) -> dict[str, str]:
        return {
            "SLA_BUS_URL": AMQP_URL, "PERSISTENCE_MODULE": "eventsourcing.postgres", **PG,
            "SLA_SCHEMA_PREFIX": self.schema_prefix, "SLA_BUS_PREFIX": self.queue_prefix,
            "REDIS_URL": REDIS_URL, "SLA_SECRET_KEY": self.secret,
            "SLA_DATA_DIR": str(LOGS / f"data-{self.unique}"),
            "SLA_RELAY_POLL_INTERVAL": "0.05", "SLA_HTTP_WORKERS": "2",
            "SLA_LOG_LEVEL": "WARNING", "SLA_EVALUATOR_PARTITIONS": str(self.partitions),
        }

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        env = self.env()
        for service in ("threshold-registry", "monitoring"):
            # The processes as distributed mode runs them (monitoring: intake and
            # evaluator each in a worker process of its own); SLA_HTTP_WORKERS says how
            # many HTTP workers.
            self.processes.update(processes.service_processes(
                service, self.ports[service], env, LOGS, http_workers=None,
                **({"worker_processes": self.monitoring_workers()}
                   if service == "monitoring" else {})))
        for service in ("threshold-registry", "monitoring"):
            self._wait(lambda s=service: processes.ready(self.base(s)), 60, f"{service} ready")
        progress(f"suite up: registry :{self.ports['threshold-registry']}, monitoring "
                 f":{self.ports['monitoring']} (schemas {self.schema_prefix}*, queues "
                 f"{self.queue_prefix}*)")

    def monitoring_workers(self) -> tuple[str, ...]:
        """Monitoring's worker processes: as ``slactl run --distributed`` starts them, plus
        one process per further evaluator partition and per further intake."""
        evaluators = ("evaluator",) if self.partitions == 1 else tuple(
            f"evaluator-{n}" for n in range(self.partitions))
        return ("relay,inbox,intake", *evaluators, *(["intake"] * (self.intakes - 1)))

    def check_alive(self) -> None:
        for p in self.processes.values():
            if not p.alive():
                raise RuntimeError(f"{p.name} exited:\n{p.tail(2000)}")

    def _wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll until ``check`` holds; fails at once if a suite process exits."""
        try:
            return processes.wait_until(check, timeout, what, self.processes.values())
        except AssertionError as exc:
            raise RuntimeError(str(exc)) from None

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def teardown(self) -> None:
        progress("tearing the suite down")
        for p in self.processes.values():
            with contextlib.suppress(Exception):
                p.stop(timeout=15)
        with contextlib.suppress(Exception):
            drop_schemas(self.schema_prefix)
        with contextlib.suppress(Exception):
            connection, channel = blocking()
            for service in ("threshold-registry", "monitoring"):
                for queue in (f"{service}.inbox", f"{service}.inbox.dead-letter"):
                    with contextlib.suppress(Exception):
                        channel.queue_delete(self.queue_prefix + queue)
                    if channel.is_closed:
                        channel = connection.channel()
            for queue in (self.measurement_queue, self.measurement_queue + ".dead-letter"):
                with contextlib.suppress(Exception):
                    channel.queue_delete(queue)
                if channel.is_closed:
                    channel = connection.channel()
            for exchange in (*topology.EXCHANGES, topology.DEAD_LETTER):
                with contextlib.suppress(Exception):
                    channel.exchange_delete(BUS_NAMES.exchange(exchange))
                if channel.is_closed:
                    channel = connection.channel()
            connection.close()
        with contextlib.suppress(Exception):
            import redis

            r = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
            keys = list(r.scan_iter(match=f"{self.queue_prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])

    # --- the estate ---------------------------------------------------------------------
    def _post(self, service: str, path: str, body: dict[str, Any],
              token: str | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.base(service)}{path}", json=body,
                                 headers=self.headers(token), timeout=30)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def build_estate(self) -> None:
        started = time.monotonic()
        reg = "threshold-registry"
        group = self._post(reg, "/offeringGroup", {"name": f"Bench fibre {self.unique}"})
        offering = self._post(reg, "/productOffering", {
            "name": "Bench fibre 1G", "offeringGroupId": group["id"],
            "lifecycleStatus": "active"})
        gold = self._post(reg, "/slaType", {
            "name": f"gold-{self.unique}", "maintenanceAccounting": "excluded",
            "minimumNoticeDays": 10, "creditPercentPerBreachedPeriod": 5,
            "creditCapPercent": 30})
        valid_from = (datetime.now(UTC) - timedelta(days=30)).isoformat(
            timespec="seconds").replace("+00:00", "Z")
        standard = self._post(reg, "/thresholdStandard", {
            "name": "Bench SLOs", "offeringGroupId": group["id"],
            "basis": "commerciallyAgreed", "validFor": {"startDateTime": valid_from},
            "parameters": [{"name": "latency", "unit": "ms", "kind": "technical",
                            "aggregation": "p99", "comparator": "LE",
                            "conformanceTarget": 100, "thresholdTarget": 80,
                            "evaluationWindow": "PT1M", "graceTimes": 0}]})
        self._post(reg, f"/thresholdStandard/{standard['id']}/approve", {"version": 1})
        self.group_id = group["id"]
        session = requests.Session()
        for n in range(self.offerings):
            product = f"bench-{self.unique}-{n:04d}"
            response = session.post(f"{self.base(reg)}/purchasedOffering", headers=self.headers(),
                                    timeout=30, json={
                                        "id": product, "customerId": f"cust-{n % 50}",
                                        "productOfferingId": offering["id"],
                                        "slaTypeId": gold["id"],
                                        "customerGroup": self.customer_group(n)})
            if response.status_code != 201:
                raise RuntimeError(f"purchasedOffering: {response.status_code} "
                                   f"{response.text[:300]}")
            self.products.append(product)
        self.regime_ids = self.start_regimes(group["id"])
        self.regime_id = self.regime_ids[0]

        # The registry's changes reach monitoring over the bus: probe until it knows the
        # last purchased offering (and so, by the relay's order, all of them).
        probe = {"purchasedOfferingId": self.products[-1], "parameter": "latency",
                 "value": GOOD, "observedAt": iso_ms(self.cursor)}

        def known() -> bool:
            response = session.post(f"{self.base('monitoring')}/measurementBatch",
                                    headers=self.headers(self.ingest_token), timeout=10,
                                    json={"batchId": f"probe-{self.unique}",
                                          "samples": [probe]})
            return response.status_code in (200, 201)

        self._wait(known, 120, "monitoring knows the estate")
        self.cursor += self.WINDOW  # the data starts in the window after the probe
        progress(f"estate: {self.offerings} purchased offerings under "
                 f"{len(self.regime_ids)} regime(s) (window PT1M, lateness "
                 f"{duration_text(self.LATENESS)}) in {time.monotonic() - started:.1f}s")

    def customer_group(self, n: int) -> str:
        """The customer group of the n-th purchased offering: one per evaluator partition
        (each partition's regime watches one), ``enterprise`` with one partition."""
        return "enterprise" if self.partitions == 1 else f"cg-{n % self.partitions}"

    def start_regimes(self, group_id: str) -> list[str]:
        """One regime over the group, or with several evaluator partitions one regime per
        partition, each over one customer group: regimes go to partitions by a hash of
        their id, so a regime that lands on a partition taken already is stopped and
        another started."""
        body = {"name": "Bench watch", "offeringGroupId": group_id, "window": "PT1M",
                "allowedLateness": duration_text(self.LATENESS), "clearAfter": 1,
                "parameters": ["latency"]}
        if self.partitions == 1:
            return [self._post("monitoring", "/monitoringRegime", body)["id"]]
        by_partition: dict[int, str] = {}
        for _ in range(50 * self.partitions):
            n = len(by_partition)
            regime = self._post("monitoring", "/monitoringRegime", {
                **body, "name": f"Bench watch {n}", "customerGroup": f"cg-{n}"})
            partition = zlib.crc32(regime["id"].encode()) % self.partitions
            if partition not in by_partition:
                by_partition[partition] = regime["id"]
                self.regime_partition[regime["id"]] = n
                if len(by_partition) == self.partitions:
                    return [by_partition[p] for p in sorted(by_partition)]
            else:
                self._post("monitoring", f"/monitoringRegime/{regime['id']}/stop",
                           {"reason": "bench: its partition has a regime already"})
        raise RuntimeError("could not give every evaluator partition a regime")

    # --- simulated time and messages ----------------------------------------------------
    @property
    def step(self) -> float:
        """Simulated seconds between consecutive samples."""
        return self.WINDOW / (self.offerings * self.per_series)

    def window_of(self, t: float) -> float:
        return (t // self.WINDOW) * self.WINDOW

    def next_batch_id(self, kind: str) -> str:
        self._batch_seq += 1
        return f"bench-{self.unique}-{kind}-{self._batch_seq}"

    def next_probe_po(self) -> str:
        self._probe += 1
        return self.products[self._probe % len(self.products)]

    def samples(self, count: int) -> list[dict[str, Any]]:
        """``count`` good samples, round-robin over the estate, time advancing steadily."""
        out = []
        step, products, n = self.step, self.products, len(self.products)
        t = self.cursor
        index = int(round(t / step)) % n
        for _ in range(count):
            out.append({"purchasedOfferingId": products[index], "parameter": "latency",
                        "value": GOOD + index % 30, "observedAt": iso_ms(t)})
            index = (index + 1) % n
            t += step
        self.cursor = t
        return out

    def check_clock(self) -> None:
        if self.cursor > time.time() + 60:
            raise RuntimeError("simulated time ran ahead of the clock; lower the volumes")

    def throughput_batch(self, messages: int, size: int) -> Batch:
        """``messages`` messages of ``size`` samples, then a sentinel that puts a breaching
        sample into the last window and a sample past its closing time (end + lateness):
        the sentinel's crossing event says every window before it was evaluated."""
        first = self.cursor
        bodies = [envelope(self.next_batch_id(f"t{size}"), self.samples(size))
                  for _ in range(messages)]
        last = self.cursor - self.step
        pos, window, closing = self.sentinels(last)
        sentinel = envelope(self.next_batch_id("sentinel"), closing)
        return Batch(bodies=bodies, samples=messages * size, first_time=first, last_time=last,
                     sentinel=sentinel, sentinel_po=pos[0], sentinel_window=window,
                     sentinel_pos=pos,
                     windows=int((window - self.window_of(first)) // self.WINDOW) + 1)

    def sentinels(self, last: float) -> tuple[list[str], float, list[dict[str, Any]]]:
        """:meth:`sentinel_samples` for every regime (a purchased offering of each regime's
        customer group): with several partitions, each regime's last window must close."""
        if len(self.regime_ids) <= 1:
            po, window, samples = self.sentinel_samples(last)
            return [po], window, samples
        pos, samples, window = [], [], 0.0
        cursor = self.cursor
        for n in range(len(self.regime_ids)):
            self.cursor = cursor
            while True:
                po = self.next_probe_po()
                if self.customer_group(self.products.index(po)) == f"cg-{n}":
                    break
            window, more = self.sentinel_samples(last, po)[1:]
            pos.append(po)
            samples.extend(more)
        return pos, window, samples

    def sentinel_samples(self, last: float, po: str | None = None
                         ) -> tuple[str, float, list[dict[str, Any]]]:
        """A breaching sample in the window of ``last`` (the newest sample so far) and a
        sample at that window's closing time (end + lateness); moves the cursor past."""
        window = self.window_of(last)
        po = po or self.next_probe_po()
        end = window + self.WINDOW
        samples = [
            {"purchasedOfferingId": po, "parameter": "latency", "value": BREACHING,
             "observedAt": iso_ms(end - 0.0005 if end - 0.0005 > last else last)},
            {"purchasedOfferingId": po, "parameter": "latency", "value": GOOD,
             "observedAt": iso_ms(end + self.LATENESS)}]
        # Next data after the window holding the closing sample.
        self.cursor = end + self.LATENESS + self.WINDOW
        self.check_clock()
        return po, window, samples

    def evaluated_samples(self, first_window: float, last_window: float,
                          timeout: float = 60) -> dict[str, Any]:
        """Samples counted by the group-scope evaluations of these windows."""
        params = {"parameter": "latency", "scopeType": "offeringGroup",
                  "scopeId": self.group_id, "windowStart.gte": iso_ms(first_window),
                  "windowStart.lte": iso_ms(last_window), "limit": 1000,
                  "fields": "count,windowStart,classification"}
        response = requests.get(f"{self.base('monitoring')}/windowEvaluation", params=params,
                                headers=self.headers(), timeout=timeout)
        response.raise_for_status()
        rows = response.json()
        return {"windows": len(rows), "samples": sum(r.get("count") or 0 for r in rows),
                "total": response.headers.get("X-Total-Count")}

    def notification_count(self) -> int | None:
        """Events in monitoring's store (its notification log's length)."""
        try:
            import psycopg

            with psycopg.connect(host=PG["POSTGRES_HOST"], port=PG["POSTGRES_PORT"],
                                 user=PG["POSTGRES_USER"], password=PG["POSTGRES_PASSWORD"],
                                 dbname=PG["POSTGRES_DBNAME"], autocommit=True) as conn:
                row = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_name LIKE %s", (self.schema_prefix + "monitoring",
                                               "%events")).fetchone()
                if row is None:
                    return None
                return conn.execute(f'SELECT count(*) FROM "{self.schema_prefix}monitoring".'
                                    f'"{row[0]}"').fetchone()[0]
        except Exception:  # noqa: BLE001 - informative only
            return None

    def recorded_batches(self) -> int | None:
        """Measurement batches in monitoring's intake log (every intake process's)."""
        try:
            import psycopg

            with psycopg.connect(host=PG["POSTGRES_HOST"], port=PG["POSTGRES_PORT"],
                                 user=PG["POSTGRES_USER"], password=PG["POSTGRES_PASSWORD"],
                                 dbname=PG["POSTGRES_DBNAME"], autocommit=True) as conn:
                schema = self.schema_prefix + "monitoring"
                row = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_name LIKE %s", (schema, "%events")).fetchone()
                if row is None:
                    return None
                return conn.execute(
                    f'SELECT count(*) FROM "{schema}"."{row[0]}" WHERE topic LIKE %s',
                    ("%MeasurementBatch%",)).fetchone()[0]
        except Exception:  # noqa: BLE001 - the caller waits or gives up
            return None

    def wait_recorded(self, count: int, timeout: float) -> bool:
        """Wait until the intake log holds ``count`` batches (several intake processes
        record out of order: a sentinel sent before the last of them would close windows
        that some process is still filling)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.recorded_batches() or 0) >= count:
                return True
            time.sleep(0.02)
        return False

    def drain(self, timeout: float) -> bool:
        """Wait until the measurement queue is empty (the worker has taken everything)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if queue_depth(self.measurement_queue) == 0:
                return True
            time.sleep(0.2)
        return False


# --- one suite per run ----------------------------------------------------------------------
_SHARED: Suite | None = None
SHARE_SUITE = False  # set by ``python -m bench``: one suite for every benchmark


@contextlib.contextmanager
def suite(args: argparse.Namespace) -> Iterator[Suite]:
    """The running suite with its estate: shared across benchmarks under ``python -m
    bench``, otherwise started here and torn down afterwards."""
    global _SHARED
    if _SHARED is not None:
        yield _SHARED
        return
    s = Suite(offerings=args.offerings, samples_per_series_window=args.samples_per_series_window,
              partitions=args.partitions, intakes=args.intakes)
    try:
        s.start()
        s.build_estate()
    except BaseException:
        s.teardown()
        raise
    if SHARE_SUITE:
        _SHARED = s
        yield s
        return
    try:
        yield s
    finally:
        s.teardown()


def close_shared_suite() -> None:
    global _SHARED
    if _SHARED is not None:
        _SHARED.teardown()
        _SHARED = None


def scaled_name(name: str, s: Suite) -> str:
    """``name``, or ``name.p<partitions>i<intakes>`` for a run with more evaluator
    partitions or intake processes than the default one of each (its own result file)."""
    if s.partitions == 1 and s.intakes == 1:
        return name
    return f"{name}.p{s.partitions}i{s.intakes}"


def suite_parameters(s: Suite) -> dict[str, Any]:
    return {"wiring": "distributed: gunicorn (2 workers x 4 threads) + worker per service, "
                      "RabbitMQ, PostgreSQL (eventsourcing.postgres), Redis",
            "evaluatorPartitions": s.partitions, "intakeProcesses": s.intakes,
            "workerProcesses": list(s.monitoring_workers()),
            "regimes": len(s.regime_ids),
            "offerings": s.offerings, "samplesPerSeriesPerWindow": s.per_series,
            "samplesPerWindow": s.offerings * s.per_series, "window": "PT1M",
            "allowedLateness": duration_text(s.LATENESS),
            "standard": "latency p99 LE 100 ms (warning 80)",
            "services": ["threshold-registry", "monitoring"]}


# --- CPU of the suite's processes -----------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """user+system CPU seconds of a process and its children that were waited for."""
    total = 0.0
    try:
        pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children")
                        .read_text().split()]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    for p in pids:
        try:
            fields_ = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields_[11]) + int(fields_[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def service_pid(name: str) -> int | None:
    """PID of a broker/database process by its command name (for CPU accounting)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm == name:
            return int(proc.name)
    return None


class CpuMeter:
    """CPU used by the suite's processes (and RabbitMQ, PostgreSQL, Redis) over a span."""

    def __init__(self, s: Suite) -> None:
        self.pids = {name: p.pid for name, p in s.processes.items()}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def _sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            value = cpu_seconds(pid)
            if value is not None:
                out[name] = value
        out.update(_system_cpu())
        return out

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *_: Any) -> None:
        end = self._sample()
        self.elapsed = time.monotonic() - self._t0
        self.result = {name: round((end[name] - self._start.get(name, 0.0)) / self.elapsed, 3)
                       for name in end if name in self._start}

    result: dict[str, float]
    elapsed: float


def _system_cpu() -> dict[str, float]:
    """CPU seconds of the broker, the database and the cache, by process name."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"rabbitmq": 0.0, "postgres": 0.0, "redis": 0.0}
    names = {"beam.smp": "rabbitmq", "postgres": "postgres", "redis-server": "redis"}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        key = names.get(comm)
        if key is None:
            continue
        fields_ = stat.rsplit(")", 1)[1].split()
        totals[key] += (int(fields_[11]) + int(fields_[12])) / tick
    return totals


# --- where the CPU goes (py-spy, if installed) ----------------------------------------------
def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


class Profiler:
    """Samples a suite process with ``py-spy record`` (non-blocking, 50 Hz, per thread)
    over a span, and summarises where its threads spent their time."""

    def __init__(self, pid: int, name: str, rate: int = 50,
                 subprocesses: bool = False) -> None:
        self.pid, self.name, self.rate = pid, name, rate
        self.subprocesses = subprocesses
        self.path = RESULTS / f"profile-{name}.txt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.summary: dict[str, Any] | None = None

    def __enter__(self) -> Profiler:
        tool = py_spy()
        if tool is None:
            self.summary = {"skipped": "py-spy is not installed (pip install py-spy)"}
            return self
        RESULTS.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [tool, "record", "-p", str(self.pid), "-o", str(self.path), "-f", "raw",
             "-r", str(self.rate), "--nonblocking", "--threads",
             *(["--subprocesses"] if self.subprocesses else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *_: Any) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            _, err = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        try:
            self.summary = summarise_profile(self.path.read_text(), self.rate)
            self.summary["file"] = str(self.path.relative_to(ROOT))
        except OSError:
            self.summary = {"error": (err or b"").decode(errors="replace")[-500:]}


def _frame(text: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (to/file.py)``."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    for anchor in ("services", "shared", "site-packages"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (1 if anchor == "site-packages" else 0):]
            break
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


def summarise_profile(raw: str, rate: int, top: int = 15) -> dict[str, Any]:
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        if len(frames) < 2:
            continue
        calls = [_frame(f) for f in (frames[1:] if frames[0].startswith("thread (")
                                     else frames)]
        suite_calls = [f for f in calls if f.split(" (", 1)[-1].startswith(
            ("services/", "shared/"))]
        # A thread is known by the first frame of the suite's own code (its loop).
        thread = suite_calls[0] if suite_calls else (calls[0] if calls else "?")
        if frames[0].startswith("thread (") and "): " in frames[0]:
            thread = frames[0].split("): ", 1)[1]
        total += count
        threads[thread] += count
        if calls:
            own[calls[-1]] += count
        for f in set(suite_calls):
            inclusive[f] += count
    def share(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "share": round(n / total, 3)} for f, n in counter.most_common(top)]

    return {"samples": total, "cpuSecondsSampled": round(total / rate, 1),
            "threads": {t: round(n / total, 3) for t, n in threads.most_common()},
            "topSelf": share(own), "topInclusiveSuiteFrames": share(inclusive)}
