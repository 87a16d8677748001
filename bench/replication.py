"""Replication: how fast the other services' replicas absorb the registry's inventory.

    .venv/bin/python -m bench.replication [--quick] [--events N] [--time-limit S]

A fulfilment migration puts many purchased offerings into the registry at once; each is a
``PurchasedOfferingChangeEvent`` that monitoring and notification keep as a replica. This
benchmark creates N purchased offerings in the registry (its own application on its
PostgreSQL schema, in saves of 1,000), lets the registry's outbox relay (its worker
process) publish them on RabbitMQ, and measures how fast monitoring's and notification's
worker processes — distributed wiring, as ``slactl run --distributed`` starts them — take
them all into their replicas, exactly once (their tracking records counted in their
stores; every replica checked afterwards).

Baseline, same run, same broker: the **raw consume rate of the very same messages** —
two plain durable queues bound like the inboxes receive every message the relay
published, and two raw pika consumers (manual acks, the suite's prefetch, no processing,
one process each, at the same time, as the two services' inboxes run) drain them.

Both are measured from queues already holding every message, so the figures are the
consumers' own rates (the relay's publishing rate is reported beside them). The suite's
clock starts when the first of the two services has absorbed its first event (the worker
processes' start-up is not counted; the skew between the two is) and stops when both
have absorbed all. Then the same again on 10,000 fresh events (quick 2,000) with groups
off (``SLA_INBOX_GROUP=1``: one message a transaction, the inbox as it was before groups),
so the gain of the groups is measured in the same run too (``--no-compare`` skips it).

CPU is reported per event and per process (``cpuMicrosecondsPerEvent``: its share of a
core over the span × the span ÷ the events), for the registry's relay (from its first
message on) and for each worker — and for the PostgreSQL backends serving each worker,
found by the application name their connections give (``PGAPPNAME``), apart from whatever
else the server does meanwhile: figures that survive a shared machine better than rates.
Results: ``bench/results/replication.json`` (``--quick``:
``replication.quick.json``); :func:`events_per_second` returns the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from bench import common
from bench.common import AMQP_URL, LOGS, PG, REDIS_URL, progress
from shared import context
from shared.bus import topology
from tests.e2e import processes

SERVICES = ("monitoring", "notification")
BINDING = "threshold-registry.purchased-offering.*"
SAVE_CHUNK = 1000
POLL = 0.02


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (10,000)")
    parser.add_argument("--events", type=int, default=None,
                        help="purchased offerings created (default 100,000; quick 10,000)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds allowed for each phase (default 600; quick 120)")
    parser.add_argument("--no-profile", action="store_true",
                        help="do not sample the workers with py-spy")
    parser.add_argument("--profile", action="store_true",
                        help="sample the workers with py-spy in a quick run too")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the second measurement with groups off (SLA_INBOX_GROUP=1)")
    return parser.parse_args(argv)


class Run:
    """One run's schemas, broker names and processes, torn down afterwards."""

    def __init__(self, events: int, time_limit: float,
                 extra_env: dict[str, str] | None = None) -> None:
        self.events, self.time_limit = events, time_limit
        self.unique = uuid.uuid4().hex[:8]
        self.schema_prefix = f"benchrepl{self.unique}_"
        self.prefix = common.BUS_PREFIX
        self.names = common.BUS_NAMES
        # What the workers' PostgreSQL connections call themselves (PGAPPNAME), so the
        # CPU of their own backends is told apart from other users of the server.
        self.pg_app = f"benchrepl{self.unique}"
        self.taps = [f"{self.prefix}bench.replication-tap.{s}.{self.unique}" for s in SERVICES]
        self.processes: dict[str, processes.Process] = {}
        self.env = {
            "SLA_BUS_URL": AMQP_URL, "PERSISTENCE_MODULE": "eventsourcing.postgres", **PG,
            "SLA_SCHEMA_PREFIX": self.schema_prefix, "SLA_BUS_PREFIX": self.prefix,
            "REDIS_URL": REDIS_URL, "SLA_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "SLA_DATA_DIR": str(LOGS / f"data-{self.unique}"),
            "SLA_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            **(extra_env or {}),
        }

    # --- set-up -----------------------------------------------------------------------
    def declare(self) -> dict[str, str]:
        """The two inbox queues (so they take the relay's messages before their workers
        run) and the two taps of the baseline; returns each service's inbox queue."""
        from services.catalogue import spec
        from shared.bus.amqp import AmqpTransport

        transport = AmqpTransport(AMQP_URL, self.prefix)
        queues = {}
        for service in SERVICES:
            queue = spec(service).queue()
            transport.declare([queue])
            queues[service] = self.names.queue(queue.name)
        connection, channel = common.blocking()
        try:
            for tap in self.taps:
                channel.queue_declare(tap, durable=True)
                channel.queue_bind(tap, self.names.exchange(topology.SLA_EVENTS), BINDING)
        finally:
            connection.close()
        return queues

    def create_inventory(self) -> float:
        """N purchased offerings in the registry's store (its application, saves of
        1,000); the seconds it took."""
        from services.threshold_registry.application import ThresholdRegistry
        from shared import config
        from shared.store import ensure_schema

        store_env = config.load(self.env).store_env("threshold-registry")
        ensure_schema(store_env)
        registry = ThresholdRegistry(store_env)
        started = time.monotonic()
        # One migration, one correlation id (its events carry it, as fulfilment's would).
        with context.bound(correlation=f"migration-{self.unique}", who="bench:migration"):
            self._create(registry)
        return time.monotonic() - started

    def _create(self, registry: Any) -> None:
        from services.threshold_registry.domain import PurchasedOffering

        try:
            group = registry.register_offering_group(f"Migrated fibre {self.unique}")
            offering = registry.register_offering("Fibre 1G", lifecycle_status="active",
                                                  group_id=group.id)
            gold = registry.register_sla_type(
                name=f"gold-{self.unique}", maintenance_accounting="excluded",
                minimum_notice_days=10, credit_percent_per_breached_period=5,
                credit_cap_percent=30)
            for first in range(0, self.events, SAVE_CHUNK):
                registry.save(*[PurchasedOffering(
                    product_id=f"mig-{self.unique}-{n:07d}", customer_id=f"cust-{n % 5000}",
                    offering_id=offering.id, customer_group="enterprise",
                    sla_type_id=gold.id, site=f"site-{n % 997}")
                    for n in range(first, min(first + SAVE_CHUNK, self.events))])
        finally:
            registry.close()

    def relay(self, queues: dict[str, str]) -> dict[str, Any]:
        """The registry's worker publishes everything; wait until every queue holds it."""
        started = time.monotonic()
        self.processes["threshold-registry-worker"] = processes.worker(
            "threshold-registry", self.env, LOGS / "replication-registry-worker.log", "relay")
        watched = [*queues.values(), *self.taps]
        pid = self.processes["threshold-registry-worker"].pid
        # The relay's CPU from its first message on (the process's start-up left out).
        first: dict[str, float] = {}

        def published() -> bool:
            depths = [common.queue_depth(q) or 0 for q in watched]
            if "cpu" not in first and min(depths) > 0:
                first.update(cpu=common.cpu_seconds(pid) or 0.0, at=float(min(depths)))
            return all(d >= self.events for d in depths)

        processes.wait_until(published, self.time_limit, "the relay to publish every event",
                             self.processes.values())
        seconds = time.monotonic() - started
        cpu = common.cpu_seconds(pid)
        self.processes.pop("threshold-registry-worker").stop()
        relayed = self.events - first.get("at", 0.0)
        return {"seconds": round(seconds, 2), "eventsPerSecond": round(self.events / seconds),
                "cpuMicrosecondsPerEvent": round((cpu - first["cpu"]) / relayed * 1e6)
                if cpu is not None and "cpu" in first and relayed > 0 else None,
                "queued": {q: common.queue_depth(q) for q in watched}}

    # --- the baseline -----------------------------------------------------------------
    def raw(self) -> dict[str, Any]:
        """Both taps drained at once by raw pika consumers in processes of their own."""
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        consumers, readies = [], []
        for tap in self.taps:
            ready = ctx.Event()
            consumer = ctx.Process(target=common._raw_consume, args=(
                AMQP_URL, tap, self.events, prefetch(), self.time_limit, ready, results),
                daemon=True)
            consumer.start()
            consumers.append(consumer)
            readies.append(ready)
        got = []
        try:
            for ready in readies:
                ready.wait(30)
            for _ in consumers:
                got.append(results.get(timeout=self.time_limit + 30))
        finally:
            for consumer in consumers:
                consumer.join(5)
                if consumer.is_alive():
                    consumer.terminate()
        firsts = [g["first"] for g in got if g["first"]]
        lasts = [g["last"] for g in got if g["last"]]
        received = min(g["received"] for g in got)
        seconds = max(lasts) - min(firsts) if firsts and lasts else None
        result: dict[str, Any] = {
            "received": [g["received"] for g in got], "seconds": seconds,
            "eventsPerSecond": round(received / seconds) if seconds else None,
            "perConsumer": [round(g["received"] / (g["last"] - g["first"]))
                            if g["first"] and g["last"] and g["last"] > g["first"] else None
                            for g in got]}
        if received < self.events:
            result["incomplete"] = f"consumed {received} of {self.events} in the time limit"
        return result

    # --- the suite --------------------------------------------------------------------
    def absorb(self, targets: dict[str, int], profile: bool) -> dict[str, Any]:
        """Start monitoring's and notification's workers and follow their tracking
        records until both have absorbed what their queues held."""
        from services.catalogue import spec

        for service in SERVICES:
            for n, roles in enumerate(spec(service).worker_processes or ("",)):
                name = f"{service}-worker" if n == 0 else f"{service}-{roles.split(',')[0]}"
                self.processes[name] = processes.worker(
                    service, {**self.env, "PGAPPNAME": f"{self.pg_app}-{name}"},
                    LOGS / f"replication-{name}.log", roles)
        first: dict[str, float] = {}
        done: dict[str, float] = {}
        at_first: dict[str, int] = {}
        counts = dict.fromkeys(SERVICES, 0)
        meter = common.CpuMeter(self)  # type: ignore[arg-type] - it reads .processes
        backends = BackendCpu(self.pg_app)
        profilers = []
        incomplete = None
        with pg() as conn, contextlib.ExitStack() as stack:
            deadline = time.monotonic() + self.time_limit
            while len(done) < len(SERVICES):
                now = time.monotonic()
                if now > deadline:
                    incomplete = f"absorbed {counts} of {targets} in {self.time_limit:.0f} s"
                    break
                for p in self.processes.values():
                    if not p.alive():
                        raise RuntimeError(f"{p.name} exited:\n{p.tail(2000)}")
                for service in SERVICES:
                    if service in done:
                        continue
                    counts[service] = tracked(conn, self.schema_prefix + service)
                    stamp = time.monotonic()
                    if counts[service] and service not in first:
                        first[service], at_first[service] = stamp, counts[service]
                        if len(first) == 1:
                            stack.enter_context(meter)
                            stack.enter_context(backends)
                            if profile:
                                for name in list(self.processes):
                                    profilers.append(stack.enter_context(common.Profiler(
                                        self.processes[name].pid, f"replication-{name}")))
                    if counts[service] >= targets[service]:
                        done[service] = stamp
                time.sleep(POLL)
        start = min(first.values()) if first else None
        end = max(done.values()) if len(done) == len(SERVICES) else None
        seconds = end - start if start is not None and end is not None else None
        per_service = {}
        for service in SERVICES:
            if service in first and service in done and done[service] > first[service]:
                per_service[service] = {
                    "events": targets[service], "absorbedBeforeClock": at_first[service],
                    "seconds": round(done[service] - first[service], 2),
                    "eventsPerSecond": round((targets[service] - at_first[service])
                                             / (done[service] - first[service]))}
        result: dict[str, Any] = {
            "seconds": round(seconds, 2) if seconds else None,
            "eventsPerSecond": round(self.events / seconds) if seconds else None,
            "perService": per_service, "startSkewSeconds": (
                round(max(first.values()) - min(first.values()), 2)
                if len(first) == len(SERVICES) else None),
            "cpuCores": getattr(meter, "result", None),
            "postgresBackendsCpuCores": getattr(backends, "result", None),
            "cpuMicrosecondsPerEvent": per_event(
                {**getattr(meter, "result", {}), **{
                    f"postgres for {k}": v
                    for k, v in (getattr(backends, "result", None) or {}).items()}},
                seconds, self.events),
            "profiles": [p.summary for p in profilers if p.summary]}
        if incomplete:
            result["incomplete"] = incomplete
        return result

    def verify(self) -> dict[str, Any]:
        """Every purchased offering replicated once: a replica each, no dead letters."""
        found: dict[str, Any] = {}
        with pg() as conn:
            for service in SERVICES:
                schema = self.schema_prefix + service
                found[service] = {
                    "trackingRecords": tracked(conn, schema),
                    "purchasedOfferingReplicas": replicas(conn, schema),
                    "deadLetters": common.queue_depth(
                        self.names.queue(f"{service}.inbox.dead-letter"))}
        found["exactlyOnce"] = all(
            v["purchasedOfferingReplicas"] == self.events and not v["deadLetters"]
            for v in found.values() if isinstance(v, dict))
        return found

    # --- tear-down --------------------------------------------------------------------
    def teardown(self) -> None:
        for p in self.processes.values():
            with contextlib.suppress(Exception):
                p.stop(timeout=15)
        with contextlib.suppress(Exception):
            common.drop_schemas(self.schema_prefix)
        with contextlib.suppress(Exception):
            connection, channel = common.blocking()
            queues = [*self.taps]
            for service in (*SERVICES, "threshold-registry"):
                queues += [self.names.queue(f"{service}.inbox"),
                           self.names.queue(f"{service}.inbox.dead-letter")]
            queues += [self.names.queue("monitoring.measurements"),
                       self.names.queue("monitoring.measurements.dead-letter")]
            for queue in queues:
                with contextlib.suppress(Exception):
                    channel.queue_delete(queue)
                if channel.is_closed:
                    channel = connection.channel()
            for exchange in (*topology.EXCHANGES, topology.DEAD_LETTER):
                with contextlib.suppress(Exception):
                    channel.exchange_delete(self.names.exchange(exchange))
                if channel.is_closed:
                    channel = connection.channel()
            connection.close()
        with contextlib.suppress(Exception):
            import redis

            r = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
            keys = list(r.scan_iter(match=f"{self.prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])


class BackendCpu:
    """CPU of the PostgreSQL backends serving one run's processes (found by the
    application name their connections give), by process, over a span: the database's
    work for the suite, apart from whatever else the server does meanwhile."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._start: dict[int, tuple[str, float]] = {}
        self._t0 = 0.0

    def _sample(self) -> dict[int, tuple[str, float]]:
        with pg() as conn:
            rows = conn.execute("SELECT pid, application_name FROM pg_stat_activity "
                                "WHERE application_name LIKE %s",
                                (self.prefix + "-%",)).fetchall()
        found = {}
        for pid, name in rows:
            seconds = common.cpu_seconds(int(pid))
            if seconds is not None:
                found[int(pid)] = (str(name)[len(self.prefix) + 1:], seconds)
        return found

    def __enter__(self) -> BackendCpu:
        self._start = self._sample()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *_: Any) -> None:
        end = self._sample()
        elapsed = time.monotonic() - self._t0
        totals: dict[str, float] = {}
        for pid, (name, seconds) in end.items():
            before = self._start.get(pid, (name, 0.0))[1]
            totals[name] = totals.get(name, 0.0) + seconds - before
        self.result = {name: round(total / elapsed, 3) for name, total in sorted(totals.items())}

    result: dict[str, float]


def per_event(cores: dict[str, float], seconds: float | None, events: int
              ) -> dict[str, float] | None:
    """CPU microseconds per event of each process (its share of a core × the span ÷ the
    events): what survives a shared machine better than a rate."""
    if not seconds or not events:
        return None
    return {name: round(share * seconds / events * 1e6) for name, share in cores.items()}


def prefetch() -> int:
    from shared import config

    return config.Settings.__dataclass_fields__["prefetch"].default  # type: ignore[no-any-return]


@contextlib.contextmanager
def pg() -> Any:
    with psycopg.connect(host=PG["POSTGRES_HOST"], port=PG["POSTGRES_PORT"],
                         user=PG["POSTGRES_USER"], password=PG["POSTGRES_PASSWORD"] or None,
                         dbname=PG["POSTGRES_DBNAME"], autocommit=True) as conn:
        yield conn


def _tables(conn: Any, schema: str, suffix: str) -> list[str]:
    """The tables of a schema whose names end with ``suffix`` (a service may keep two
    logs in its schema: monitoring's outcomes have their own events and tracking)."""
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                        "table_schema = %s", (schema,)).fetchall()
    return sorted(r[0] for r in rows if r[0].endswith(suffix))


def tracked(conn: Any, schema: str) -> int:
    """The registry's messages a service has recorded as handled."""
    return sum(int(conn.execute(sql.SQL(
        "SELECT count(*) FROM {}.{} WHERE application_name = 'threshold-registry'").format(
        sql.Identifier(schema), sql.Identifier(table))).fetchone()[0])
        for table in _tables(conn, schema, "_tracking"))


def replicas(conn: Any, schema: str) -> int:
    """Distinct replica aggregates of purchased offerings in a service's store."""
    return sum(int(conn.execute(sql.SQL(
        "SELECT count(DISTINCT originator_id) FROM {}.{} WHERE topic LIKE %s "
        "AND convert_from(state, 'UTF8') LIKE %s").format(
        sql.Identifier(schema), sql.Identifier(table)),
        ("%Replica.Received", '%"purchasedOffering"%')).fetchone()[0])
        for table in _tables(conn, schema, "_events"))


def one_by_one(events: int, time_limit: float) -> dict[str, Any]:
    """The same absorption with groups off (``SLA_INBOX_GROUP=1``: each message in its
    own transaction, as the inbox handled every message before groups), on fewer events
    and a fresh store: what the groups gain, measured in the same run."""
    run = Run(events, time_limit, {"SLA_INBOX_GROUP": "1"})
    try:
        queues = run.declare()
        run.create_inventory()
        run.relay(queues)
        targets = {s: common.queue_depth(q) or 0 for s, q in queues.items()}
        suite = run.absorb(targets, profile=False)
        suite["verified"] = run.verify()
        suite["events"] = events
        return suite
    finally:
        run.teardown()


def measure(events: int, time_limit: float, profile: bool = True,
            compare_events: int = 0) -> dict[str, Any]:
    run = Run(events, time_limit)
    try:
        progress(f"replication: {events:,} purchased offerings (schemas "
                 f"{run.schema_prefix}*, broker names {run.prefix}*)")
        queues = run.declare()
        created = run.create_inventory()
        progress(f"created {events:,} purchased offerings in the registry in {created:.1f}s")
        relayed = run.relay(queues)
        progress(f"the registry's relay published them in {relayed['seconds']}s "
                 f"({relayed['eventsPerSecond']:,}/s)")
        targets = {s: common.queue_depth(q) or 0 for s, q in queues.items()}
        raw = run.raw()
        progress(f"raw consume of the same messages, two consumers at once: "
                 f"{raw['eventsPerSecond']}/s")
        suite = run.absorb(targets, profile)
        progress(f"replicas of monitoring and notification: {suite['eventsPerSecond']}/s "
                 f"({suite['perService']})")
        checked = run.verify()
        result: dict[str, Any] = {
            "events": events, "replicationEventsPerSecond": suite["eventsPerSecond"],
            "suite": suite, "baseline": {"rawConsume": raw},
            "ratio": common.ratio(suite["eventsPerSecond"], raw["eventsPerSecond"]),
            "relay": relayed, "inventoryCreatedSeconds": round(created, 1),
            "verified": checked,
            "parameters": {
                "wiring": "distributed: the services' worker processes as slactl run "
                          "--distributed starts them (monitoring: relay,inbox,intake + "
                          "evaluator; notification: one worker), RabbitMQ, PostgreSQL "
                          "(eventsourcing.postgres), Redis; no HTTP processes",
                "prefetch": prefetch(), "inboxGroup": 100, "services": list(SERVICES),
                "message": "PurchasedOfferingChangeEvent (registered), as the registry's "
                           "relay publishes it"}}
        for part in (suite, raw):
            if part.get("incomplete"):
                result["incomplete"] = part["incomplete"]
    finally:
        run.teardown()
    if compare_events:
        progress(f"the same with groups off (SLA_INBOX_GROUP=1), {compare_events:,} events")
        single = one_by_one(compare_events, time_limit)
        progress(f"one message a transaction: {single['eventsPerSecond']}/s")
        result["oneByOne"] = single
        result["speedupOverOneByOne"] = common.ratio(result["replicationEventsPerSecond"],
                                                     single["eventsPerSecond"])
    return result


def events_per_second(events: int = 100_000, time_limit: float = 600) -> float | None:
    """The figure alone (``replicationEventsPerSecond``): inventory events a second that
    both monitoring's and notification's replicas absorb, distributed wiring."""
    return measure(events, time_limit, profile=False)["replicationEventsPerSecond"]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    events = args.events or (10_000 if args.quick else 100_000)
    limit = args.time_limit or (120.0 if args.quick else 600.0)
    compare = 0 if args.no_compare else (2_000 if args.quick else 10_000)
    profile = args.profile or (not args.no_profile and not args.quick)
    result = measure(events, limit, profile=profile,
                     compare_events=compare)
    result["quick"] = bool(args.quick)
    common.table("replication", ["figure", "value"], [
        ["events", events],
        ["replicas (both services), events/s", result["replicationEventsPerSecond"]],
        ["raw consume, same messages, events/s",
         result["baseline"]["rawConsume"]["eventsPerSecond"]],
        ["ratio", result["ratio"]],
        ["groups off (SLA_INBOX_GROUP=1), events/s",
         (result.get("oneByOne") or {}).get("eventsPerSecond")],
        ["speed-up of groups", result.get("speedupOverOneByOne")],
        ["registry relay publish, events/s", result["relay"]["eventsPerSecond"]],
        ["registry relay CPU, µs/event", result["relay"].get("cpuMicrosecondsPerEvent")],
        *[[f"CPU µs/event, {name}", value] for name, value in
          (result["suite"].get("cpuMicrosecondsPerEvent") or {}).items()
          if name not in ("postgres", "redis")],
        ["exactly once", result["verified"]["exactlyOnce"]]])
    common.write_result("replication", result)
    return 0 if not result.get("incomplete") and result["verified"]["exactlyOnce"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
