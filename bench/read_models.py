"""Read models that do not grow with the log: the threshold-registry with a large
inventory on PostgreSQL, as distributed mode runs it (gunicorn + worker).

What it measures, each against a baseline taken in the same run:

- ``restartToReadySeconds``: a restart of the registry's processes until ``readyz``
  answers 200 and a first list query is answered (baseline: the same at a tenth of the
  estate, so growth with history shows as a ratio);
- ``httpWorkerRssMb``: resident memory of each HTTP worker after the queries, at a tenth
  of the estate and at the whole (independent of size: their ratio is about 1);
- ``listP99Ms``: inventory lists with filters, sorts and paging (by customer, status and
  group, product offering, start date), p50/p99 (baseline: ``healthz`` through the same
  gunicorn, the HTTP floor);
- ``rebuildRatio``: ``slactl readmodel rebuild``'s rate (events applied a second)
  against the rate at which the store reads its own notifications (``select_notifications``
  over the whole log, pages of 1,000); with the CPU this process spent an event on each
  (``rebuild.cpuMicrosecondsPerEvent``, ``readCpuMicrosecondsPerEvent``) and how many
  rows were stored straight from their creation event (``fromCreations``);
- ``replicationEventsPerSecond`` and ``traceP99Ms`` when the benchmarks that measure them
  have written their results in this run (``replication``, audit trace).

The estate is written into the registry's store directly, as a fulfilment migration
would load it (1,000 purchased offerings a transaction), and marked published: the
benchmark is about the registry's reads, not the bus. ``--quick``: 20,000 items.

**Monitoring** (``--service monitoring``; both by default), after a month of hourly
window evaluations for 10,000 series (``--series``, ``--days``; ``--quick``: 500 series,
4 days), measured at a tenth of the days and at all of them:

- ``monitoring.restartToReadySeconds``: monitoring's gunicorn (2 workers) started until
  it answers its lists (crossings, burn alerts, regimes, quarantines) and takes a batch
  (which loads the working set), and ``readyAfterBootSeconds``, the part after its first
  ``healthz`` (the processes' boot, which no log changes); baseline:
  ``inMemory.catchUpSeconds``, what a process of the earlier release did on top of its
  boot before its first answers — every crossing, burn alert and quarantine and every
  replica and regime replayed from the logs into ``AggregateIndex``es — measured in a
  process of its own on the same logs;
- ``monitoring.httpWorkerRssMb``: resident memory of each HTTP worker after the queries
  (tenth and whole: their ratio is about 1), against ``inMemory.rssMb``, that process's
  growth holding those indexes;
- ``monitoring.listP99Ms``: crossing and burn-alert lists with filters, sorts and paging
  (by series, level, open, raisedAt), against ``healthz`` through the same gunicorn;
- ``monitoring.rebuild``: ``slactl readmodel rebuild monitoring``'s time for both indexes,
  against the store reading the same notifications (the topics the indexes keep).

How the logs are seeded (directly, as a migration would, not through the evaluator —
that would take a month): in the main log, replicas of an offering group's offering, an
availability standard (PT1H window) and ``--series`` purchased offerings (1,000 a
transaction) and one regime over the group; in the intake log, one batch an hour with a
sample of every series; in the outcomes log, one ``WindowEvaluation`` per series and
hour plus the group's (the per-series form earlier releases recorded, which is still read
alike and makes the longer log — the evaluator now records one ``EvaluatedWindow`` a
window — copied into the table with ``COPY``, their state encoded as the store's
transcoder encodes them), and,
day by day between them, crossings (2 % of the series-windows, each raised, some
escalated, cleared an hour later), a burn alert for one crossing in ten (resolved) and
a few quarantines. Only the HTTP processes run: the worker roles (relay, intake,
evaluator) would start by publishing or re-evaluating what was seeded without a
checkpoint, which is not what is measured here (``evaluator_state`` measures recovery).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import common
from bench.common import PG, progress
from tests.e2e import processes
from tests.e2e.processes import free_port

NAME = "read_models"
CUSTOMERS = 20_000
HOUR = 3600


def _registry(env: dict[str, str]) -> Any:
    from services.threshold_registry.application import ThresholdRegistry
    from shared.store import ensure_schema, schema_lock

    ensure_schema(env)
    with schema_lock(env):
        return ThresholdRegistry(env)


def bench_env(prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """The settings of a registry on PostgreSQL under its own schema prefix, and an admin
    token's headers for its API."""
    from shared import auth

    secret = "bench-" + "x" * 40
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **PG,
           "SLA_SCHEMA_PREFIX": prefix, "SLA_SECRET_KEY": secret,
           "SLA_BUS_URL": common.AMQP_URL, "SLA_BUS_PREFIX": common.BUS_PREFIX,
           "REDIS_URL": common.REDIS_URL, "SLA_LOG_LEVEL": "WARNING",
           "SLA_DATA_DIR": str(common.LOGS / f"data-{prefix}")}
    return env, {"Authorization": f"Bearer {auth.issue(secret, ['admin'], 'bench')}"}


def catalogue(app: Any) -> tuple[list[Any], list[Any], Any]:
    """What an estate's purchased offerings name: 10 offering groups, 50 offerings over
    them, one SLA type."""
    groups = [app.register_offering_group(f"Group {n}") for n in range(10)]
    offerings = [app.register_offering(f"Offering {n}", lifecycle_status="active",
                                       group_id=groups[n % 10].id) for n in range(50)]
    sla_type = app.register_sla_type(name="gold", maintenance_accounting="excluded",
                                     minimum_notice_days=10,
                                     credit_percent_per_breached_period=5,
                                     credit_cap_percent=30)
    return groups, offerings, sla_type


def purchased_offerings(first: int, stop: int, offerings: list[Any], sla_type: Any,
                        rng: random.Random, status: Callable[[], str]) -> list[Any]:
    """Purchased offerings ``first`` … ``stop - 1`` (ids ``po-<n>``) of random customers,
    offerings, groups, sites and start dates in 2025."""
    from services.threshold_registry.domain import PurchasedOffering

    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [PurchasedOffering(
        product_id=f"po-{n:08d}", customer_id=f"cust-{rng.randrange(CUSTOMERS):06d}",
        offering_id=rng.choice(offerings).id, sla_type_id=sla_type.id,
        customer_group=rng.choice(["smb", "enterprise", "public"]),
        site=f"site-{rng.randrange(1000)}", status=status(),
        start_date=base + timedelta(minutes=rng.randrange(525_600)))
        for n in range(first, stop)]


def seed(app: Any, start: int, stop: int, offerings: list[Any], sla_type: Any,
         rng: random.Random) -> float:
    """Purchased offerings ``start`` … ``stop - 1``; returns items written a second."""
    began = time.perf_counter()
    statuses = ["active"] * 8 + ["suspended", "terminated"]
    for first in range(start, stop, 1000):
        batch = purchased_offerings(first, min(first + 1000, stop), offerings, sla_type, rng,
                                    lambda: rng.choice(statuses))
        app.save(*batch)
        if (first - start) % 50_000 == 0:
            progress(f"  seeded {first + len(batch):,} purchased offerings")
    app.record_published(app.max_notification_id())  # a migration: not for the bus
    return (stop - start) / (time.perf_counter() - began)


def notification_read_rate(app: Any, decode: bool = False) -> float:
    """How fast the store reads its whole log (the ceiling a rebuild is measured by);
    with ``decode``, also turning each notification into its domain event, the least a
    projection in Python must do with it."""
    began = time.perf_counter()
    count = 0
    for notification in app.notifications(batch=1000):
        if decode:
            app.mapper.to_domain_event(notification)
        count += 1
    return count / (time.perf_counter() - began)


class Registry:
    """The registry's gunicorn (2 workers) and worker processes over one schema."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.running: dict[str, processes.Process] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/threshold-registry/v1"

    def start(self, headers: dict[str, str]) -> float:
        """Start, and the seconds until ready and a first list answered."""
        began = time.perf_counter()
        self.running = processes.service_processes("threshold-registry", self.port,
                                                   self.env, common.LOGS, http_workers=2)
        processes.wait_until(lambda: processes.ready(self.base), 300, "registry ready",
                             self.running.values())
        processes.wait_until(lambda: requests.get(
            f"{self.base}/purchasedOffering?limit=1", headers=headers,
            timeout=120).status_code == 200, 300, "a first list", self.running.values())
        return time.perf_counter() - began

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each gunicorn worker (the master's children)."""
        master = self.running["threshold-registry-http"].pid
        sizes = []
        for child in _children(master):
            try:
                for line in open(f"/proc/{child}/status"):  # noqa: SIM115 - tiny reads
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return sizes

    def stop(self) -> None:
        for process in self.running.values():
            process.stop()
        self.running = {}


def _children(pid: int) -> list[int]:
    try:
        text = open(f"/proc/{pid}/task/{pid}/children").read()  # noqa: SIM115
    except OSError:
        return []
    return [int(p) for p in text.split()]


def list_latencies(base: str, headers: dict[str, str], groups: list[str],
                   offerings: list[str], count: int, rng: random.Random) -> list[float]:
    """Inventory lists a user would ask for, from two client threads: seconds each."""
    queries = [
        lambda: {"customerId": f"cust-{rng.randrange(CUSTOMERS):06d}", "sort": "-startDate"},
        lambda: {"status": "suspended", "offeringGroupId": rng.choice(groups),
                 "sort": "startDate", "offset": str(rng.randrange(0, 500)), "limit": "50"},
        lambda: {"productOfferingId": rng.choice(offerings), "sort": "customerId",
                 "limit": "20", "offset": str(rng.randrange(0, 2000))},
        lambda: {"customerGroup": "enterprise", "startDate.gte": "2025-06-01T00:00:00Z",
                 "sort": "-startDate", "limit": "25"},
        lambda: {"limit": "10", "offset": str(rng.randrange(0, 10_000))},
    ]
    plan = [rng.choice(queries)() for _ in range(count)]
    timings: list[float] = []
    lock = threading.Lock()

    def client(part: list[dict[str, str]]) -> None:
        with requests.Session() as session:
            for params in part:
                began = time.perf_counter()
                response = session.get(f"{base}/purchasedOffering", params=params,
                                       headers=headers, timeout=60)
                took = time.perf_counter() - began
                response.raise_for_status()
                with lock:
                    timings.append(took)

    threads = [threading.Thread(target=client, args=(plan[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return timings


def floor_latencies(base: str, count: int) -> list[float]:
    timings = []
    with requests.Session() as session:
        for _ in range(count):
            began = time.perf_counter()
            session.get(f"{base}/healthz", timeout=10).raise_for_status()
            timings.append(time.perf_counter() - began)
    return timings


def ms(values: list[float], q: float) -> float | None:
    found = common.percentile(values, q)
    return None if found is None else round(found * 1000, 2)


def registry_bench(env: dict[str, str], headers: dict[str, str], estate: int, queries: int,
                   rng: random.Random, quick: bool) -> dict[str, Any]:
    """The registry's figures (the module's docstring)."""
    from shared import config

    store_env = config.load(env).store_env("threshold-registry")
    result: dict[str, Any] = {"parameters": {
        "purchasedOfferings": estate, "queries": queries, "httpWorkers": 2,
        "store": "eventsourcing.postgres"}}
    registry = Registry(env)
    try:
        app = _registry(store_env)
        groups, offerings, sla_type = catalogue(app)
        group_ids = [str(g.id) for g in groups]
        offering_ids = [str(o.id) for o in offerings]
        by_size: dict[str, dict[str, Any]] = {}
        done = 0
        for label, size in (("tenth", estate // 10), ("whole", estate)):
            progress(f"seeding to {size:,} purchased offerings")
            rate = seed(app, done, size, offerings, sla_type, rng)
            done = size
            progress(f"  {rate:,.0f} items/s; projecting into the read model")
            app.index.catch_up()
            ready = registry.start(headers)
            progress(f"  registry ready in {ready:.2f} s; {queries} list queries")
            lists = list_latencies(registry.base, headers, group_ids, offering_ids,
                                   queries, rng)
            floor = floor_latencies(registry.base, min(queries, 500))
            rss = registry.worker_rss_mb()
            registry.stop()
            restart = registry.start(headers)
            registry.stop()
            by_size[label] = {
                "purchasedOfferings": size, "firstStartSeconds": round(ready, 2),
                "restartToReadySeconds": round(restart, 2),
                "listP50Ms": ms(lists, 50), "listP99Ms": ms(lists, 99),
                "healthzP50Ms": ms(floor, 50), "healthzP99Ms": ms(floor, 99),
                "httpWorkerRssMb": [round(r, 1) for r in rss]}
            progress(f"  {by_size[label]}")
        progress("reading the whole log (the store's ceiling), then rebuilding")
        cpu = time.process_time()
        ceiling = notification_read_rate(app)
        read_cpu = time.process_time() - cpu
        decoded = notification_read_rate(app, decode=True)
        load = os.getloadavg()
        cpu = time.process_time()
        report = app.index.rebuild(lambda d, t: None)
        rebuild_cpu = time.process_time() - cpu
        rebuild_rate = report.events / report.seconds
        whole, tenth = by_size["whole"], by_size["tenth"]
        replication = common.read_result("replication", quick) or {}
        trace = common.read_result("audit_trace", quick) or {}
        result.update({
            "restartToReadySeconds": whole["restartToReadySeconds"],
            "listP99Ms": whole["listP99Ms"],
            "traceP99Ms": trace.get("traceP99Ms"),
            "rebuildRatio": round(rebuild_rate / ceiling, 3),
            "replicationEventsPerSecond": replication.get("replicationEventsPerSecond"),
            "rebuild": {"events": report.events, "rows": report.rows,
                        "seconds": round(report.seconds, 1),
                        "eventsPerSecond": round(rebuild_rate),
                        "storeReadsPerSecond": round(ceiling),
                        "storeReadsDecodedPerSecond": round(decoded),
                        "ratioToDecodedReads": round(rebuild_rate / decoded, 3),
                        # rows stored straight from their creation event (shared.bulkload)
                        "fromCreations": report.created,
                        # this process's CPU (PostgreSQL's is not counted in either)
                        "cpuMicrosecondsPerEvent": round(rebuild_cpu / report.events * 1e6, 2),
                        "readCpuMicrosecondsPerEvent": round(
                            read_cpu / report.events * 1e6, 2),
                        "loadAverage": [round(v, 2) for v in load]},
            "httpWorkerRssMb": max(whole["httpWorkerRssMb"] or [0]),
            "rssRatioWholeToTenth": common.ratio(
                max(whole["httpWorkerRssMb"] or [0]), max(tenth["httpWorkerRssMb"] or [1])),
            "restartRatioWholeToTenth": common.ratio(whole["restartToReadySeconds"],
                                                     tenth["restartToReadySeconds"]),
            "listP99ToHealthzP99": common.ratio(whole["listP99Ms"], whole["healthzP99Ms"]),
            "bySize": by_size,
        })
        common.table("read models", ["figure", "value"], [
            ["restart to ready (s)", whole["restartToReadySeconds"]],
            ["list p50 / p99 (ms)", f"{whole['listP50Ms']} / {whole['listP99Ms']}"],
            ["healthz p99 (ms)", whole["healthzP99Ms"]],
            ["HTTP worker RSS (MB), tenth → whole",
             f"{max(tenth['httpWorkerRssMb'] or [0]):.0f} → "
             f"{max(whole['httpWorkerRssMb'] or [0]):.0f}"],
            ["rebuild (events/s)", round(rebuild_rate)],
            ["store reads (notifications/s)", round(ceiling)],
            ["store reads + decode (events/s)", round(decoded)],
            ["rebuild ratio (to reads; to reads + decode)",
             f"{result['rebuildRatio']}; {result['rebuild']['ratioToDecodedReads']}"],
        ])
        app.close()
    finally:
        registry.stop()
    return result


# --- monitoring ---------------------------------------------------------------------------
def _monitoring(env: dict[str, str]) -> Any:
    from services.monitoring.application import Monitoring
    from shared.store import ensure_schema, schema_lock

    ensure_schema(env)
    with schema_lock(env):
        return Monitoring(env)


def seed_monitoring_estate(app: Any, series: int, start: float) -> dict[str, Any]:
    """Replicas of one offering's group, its availability standard and ``series``
    purchased offerings; one regime over the group (PT1H windows)."""
    from services.monitoring.domain import Replica

    group, offering, standard = (str(uuid.uuid4()) for _ in range(3))
    version = {"version": 1, "lifecycleStatus": "approved", "name": "Availability",
               "basis": "commerciallyAgreed", "slaTypeId": None,
               "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
               "parameters": [{"name": "availability", "unit": "%", "kind": "technical",
                               "aggregation": "availability", "comparator": "GE",
                               "conformanceTarget": 99.9, "thresholdTarget": 99.95,
                               "conformancePeriod": None, "evaluationWindow": "PT1H",
                               "graceTimes": 0}],
               "createdAt": "2026-01-01T00:00:00Z", "approvedAt": "2026-01-01T00:00:00Z"}
    app.receive_replica("productOffering", offering, {
        "id": offering, "offeringGroupId": group, "lifecycleStatus": "active",
        "version": 1}, 1)
    app.receive_replica("thresholdStandard", standard, {
        "id": standard, "offeringGroupId": group, "productOfferingId": None,
        "versions": [version], "version": 1}, 1)
    products = [f"po-{n:05d}" for n in range(series)]
    for first in range(0, series, 1000):
        app.save(*(Replica(kind="purchasedOffering", resource_id=p, source_version=1,
                           resource={"id": p, "customerId": f"c-{n % 997}",
                                     "productOfferingId": offering, "slaTypeId": None,
                                     "customerGroup": None, "status": "active",
                                     "startDate": "2026-01-01T00:00:00Z", "version": 1})
                   for n, p in enumerate(products[first:first + 1000], start=first)))
    regime = app.start_regime(name="Availability watch", window="PT1H",
                              allowed_lateness="PT10M", offering_group_id=uuid.UUID(group))
    return {"group": group, "standard": standard, "products": products,
            "regime": regime.id, "start": start}


def _batch(batch_id: str, rows: list[list[Any]]) -> Any:
    from services.monitoring.domain import MeasurementBatch

    make = getattr(MeasurementBatch, "of", None)  # pre-encoded rows, where it has them
    if make is not None:
        return make(batch_id, "bench", rows, [], None)
    return MeasurementBatch(batch_id=batch_id, source="bench", samples=rows, rejected=[],
                            content_digest=None)


def _result(bad: bool, standard: str, batch_id: str) -> dict[str, Any]:
    """A series' figures for an hour, as the evaluator records them (97 % or 99.99 %)."""
    return {"value": 97.0 if bad else 99.99, "unit": "%", "aggregation": "availability",
            "count": 1, "eligibleSeconds": HOUR, "badSeconds": 108.0 if bad else 0.36,
            "excludedSeconds": 0, "classification": "breached" if bad else "ok",
            "planned": False, "standardId": standard, "standardVersion": 1,
            "comparator": "GE", "conformanceTarget": 99.9, "thresholdTarget": 99.95,
            "graceTimes": 0, "batchIds": [batch_id], "lateSamples": 0,
            "remainingBudget": None, "budgetUnit": "ratio", "projectedExhaustion": None,
            "crossingId": None}


def seed_monitoring_days(app: Any, estate: dict[str, Any], first_day: int, last_day: int,
                         rng: random.Random) -> dict[str, int]:
    """Days ``first_day`` … ``last_day - 1`` of hourly evaluation (the module's docstring):
    batches into the intake log, evaluations copied into the outcomes log, crossings,
    burn alerts and quarantines saved between the days."""
    import orjson
    from psycopg.sql import SQL, Identifier

    from services.monitoring.domain import (
        BurnAlert,
        Crossing,
        Quarantine,
        WindowEvaluation,
    )
    from shared.times import iso

    regime, products = estate["regime"], estate["products"]
    regime_hex = regime.hex
    topic = "services.monitoring.domain:WindowEvaluation.Evaluated"
    origin = "services.monitoring.domain:WindowEvaluation"
    recorder = app.outcomes.recorder
    copy_sql = SQL("COPY {}.{} (originator_id, originator_version, topic, state) "
                   "FROM STDIN").format(Identifier(recorder.datastore.schema),
                                        Identifier(recorder.events_table_name))
    counts = {"evaluations": 0, "crossings": 0, "burnAlerts": 0, "quarantines": 0}
    stamp = {"_type_": "datetime_iso", "_data_": iso(time.time()).replace("Z", "+00:00")}
    scopes = [("purchasedOffering", p) for p in products] + [
        ("offeringGroup", estate["group"])]
    head = orjson.dumps({"timestamp": stamp, "originator_topic": origin, "regime_id": {
        "_type_": "uuid_hex", "_data_": regime_hex}, "parameter": "availability"})[:-1] + b","
    for day in range(first_day, last_day):
        outcomes: list[Any] = []
        with recorder.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs, curs.copy(copy_sql) as copy:
            for hour in range(24):
                start = estate["start"] + (day * 24 + hour) * HOUR
                batch_id = f"bench-{int(start)}"
                app.save(_batch(batch_id, [[p, "availability", start + HOUR,
                                            rng.choice((1.0, 1.0, 1.0, 0.9995, 0.97)),
                                            HOUR, None] for p in products]))
                results = {bad: orjson.dumps(_result(bad, estate["standard"], batch_id))
                           for bad in (False, True)}
                window = f',"window_start":{start!r},"window_end":{start + HOUR!r},"result":'
                for scope_type, scope_id in scopes:
                    bad = rng.random() < 0.02
                    value = 97.0 if bad else 99.99
                    # The evaluator's stable id where a crossing cites it, else any id
                    # (nothing reads an evaluation by id here): the seeding's hot loop.
                    evaluation_id = WindowEvaluation.create_id(
                        regime, "availability", scope_type, scope_id, start) if bad \
                        else uuid.uuid4()
                    copy.write_row((evaluation_id, 1, topic, b"".join((
                        head, f'"scope_type":"{scope_type}","scope_id":"{scope_id}"'
                        .encode(), window.encode(), results[bad], b"}"))))
                    counts["evaluations"] += 1
                    if not bad:
                        continue
                    evidence = {"measuredValue": value, "unit": "%",
                                "aggregation": "availability", "conformanceTarget": 99.9,
                                "thresholdTarget": 99.95, "comparator": "GE",
                                "standardId": estate["standard"], "standardVersion": 1,
                                "windowStart": iso(start), "windowEnd": iso(start + HOUR),
                                "planned": False, "batchIds": [batch_id],
                                "evaluationId": str(evaluation_id)}
                    crossing = Crossing(
                        id=Crossing.id_for(regime, "availability", scope_type, scope_id,
                                           start), regime_id=regime, parameter="availability",
                        scope_type=scope_type, scope_id=scope_id,
                        level=rng.choice(("warning", "breached")), evidence=evidence)
                    if crossing.level == "warning" and rng.random() < 0.3:
                        crossing.escalate(evidence)
                    crossing.clear({**evidence, "measuredValue": 99.99,
                                    "windowStart": iso(start + HOUR)})
                    outcomes.append(crossing)
                    counts["crossings"] += 1
                    if rng.random() < 0.1:
                        alert = BurnAlert(
                            id=BurnAlert.id_for(regime, "availability", scope_type,
                                                scope_id, start),
                            regime_id=regime, parameter="availability",
                            scope_type=scope_type, scope_id=scope_id,
                            severity=rng.choice(("page", "ticket")),
                            evidence={**evidence, "factor": 14.4, "burnRate": 30.0,
                                      "shortBurnRate": 30.0, "longWindow": 3600,
                                      "shortWindow": 300, "remainingBudget": 0.5})
                        alert.resolve({**alert.evidence, "resolution": "subsided"})
                        outcomes.append(alert)
                        counts["burnAlerts"] += 1
        if day % 7 == 0:
            outcomes.append(Quarantine(
                partition="main", kind="batch", key=f"batch:{day}", regime_id=None,
                parameter=None, batch_id=f"bench-day-{day}", position=day + 1,
                reason="seeded"))
            counts["quarantines"] += 1
        for first in range(0, len(outcomes), 1000):
            app.outcomes.save(*outcomes[first:first + 1000])
        progress(f"  day {day + 1}: {counts['evaluations']:,} evaluations, "
                 f"{counts['crossings']:,} crossings so far")
    app.outcomes.record_published(app.outcomes.max_notification_id())  # not for the bus
    return counts


IN_MEMORY = """
import json, sys, time
from services.monitoring.application import Monitoring
from services.monitoring.domain import BurnAlert, Crossing, Quarantine, Regime, Replica
from shared.store import AggregateIndex

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

app = Monitoring(json.loads(sys.argv[1]))
before = rss()
began = time.perf_counter()
outcomes = AggregateIndex(app.outcomes, kinds=(Crossing, BurnAlert, Quarantine))
main = AggregateIndex(app, kinds=(Replica, Regime))
held = sum(len(index.all(kind)) for index, kind in (
    (outcomes, Crossing), (outcomes, BurnAlert), (outcomes, Quarantine),
    (main, Replica), (main, Regime)))
print(json.dumps({"catchUpSeconds": round(time.perf_counter() - began, 2),
                  "rssMb": round(rss() - before, 1), "aggregates": held}))
app.close()
"""


def in_memory_baseline(store_env: dict[str, str]) -> dict[str, Any]:
    """What a process of the earlier release did before its first answers, in a process
    of its own: replay the logs into in-memory indexes (seconds, resident growth)."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", IN_MEMORY, json.dumps(store_env)],
                          capture_output=True, text=True, timeout=3600, check=True,
                          cwd=common.ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


class MonitoringHttp:
    """Monitoring's gunicorn (2 workers) alone (the module's docstring says why)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.process: processes.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/monitoring/v1"

    def start(self, headers: dict[str, str], product: str) -> tuple[float, float]:
        """Start; the seconds until its lists are answered and a batch is taken, and until
        ``healthz`` first answered (the processes' boot, the same whatever the logs)."""
        began = time.perf_counter()
        self.process = processes.gunicorn("services.monitoring.wsgi:app", self.port,
                                          self.env, common.LOGS / "monitoring-http.log", 2)
        processes.wait_until(lambda: requests.get(f"{self.base}/healthz", timeout=60).ok,
                             900, "monitoring healthz", self.process)
        booted = time.perf_counter() - began
        with requests.Session() as session:
            def answers() -> bool:
                for path in ("crossing?limit=1", "burnAlert?limit=1",
                             "monitoringRegime", "quarantine"):
                    if session.get(f"{self.base}/{path}", headers=headers,
                                   timeout=600).status_code != 200:
                        return False
                now = time.time() - 60
                taken = session.post(f"{self.base}/measurementBatch", headers=headers,
                                     timeout=600, json={"batchId": f"ready-{uuid.uuid4()}",
                                                        "samples": [{
                                                            "purchasedOfferingId": product,
                                                            "parameter": "availability",
                                                            "value": 1.0,
                                                            "intervalSeconds": 60,
                                                            "observedAt": common.iso_ms(now)}]})
                return taken.status_code == 201 and taken.json()["accepted"] == 1

            processes.wait_until(answers, 900, "monitoring answers", self.process)
        return time.perf_counter() - began, booted

    def worker_rss_mb(self) -> list[float]:
        assert self.process is not None
        sizes = []
        for child in _children(self.process.pid):
            try:
                for line in open(f"/proc/{child}/status"):  # noqa: SIM115 - tiny reads
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return sizes

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def monitoring_latencies(base: str, headers: dict[str, str], estate: dict[str, Any],
                         count: int, rng: random.Random) -> list[float]:
    """Crossing and burn-alert lists an operator would ask for, from two client threads."""
    products = estate["products"]
    since = common.iso_ms(estate["start"] + 86400)
    queries = [
        lambda: ("crossing", {"scopeId": rng.choice(products), "sort": "-raisedAt"}),
        lambda: ("crossing", {"level": "cleared", "scopeType": "purchasedOffering",
                              "raisedAt.gte": since, "sort": "-raisedAt", "limit": "50",
                              "offset": str(rng.randrange(0, 500))}),
        lambda: ("crossing", {"open": "true", "limit": "100"}),
        lambda: ("crossing", {"regimeId": str(estate["regime"]), "sort": "since",
                              "limit": "20", "offset": str(rng.randrange(0, 5000))}),
        lambda: ("burnAlert", {"severity": "page", "sort": "-raisedAt", "limit": "25"}),
        lambda: ("burnAlert", {"scopeId": rng.choice(products)}),
    ]
    plan = [rng.choice(queries)() for _ in range(count)]
    timings: list[float] = []
    lock = threading.Lock()

    def client(part: list[tuple[str, dict[str, str]]]) -> None:
        with requests.Session() as session:
            for path, params in part:
                began = time.perf_counter()
                response = session.get(f"{base}/{path}", params=params, headers=headers,
                                       timeout=60)
                took = time.perf_counter() - began
                response.raise_for_status()
                with lock:
                    timings.append(took)

    threads = [threading.Thread(target=client, args=(plan[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return timings


def monitoring_bench(env: dict[str, str], headers: dict[str, str], series: int, days: int,
                     queries: int, rng: random.Random) -> dict[str, Any]:
    """Monitoring's figures (the module's docstring)."""
    from services.monitoring.domain import WindowEvaluation
    from shared import config
    from shared.store import topics_of

    store_env = config.load(env).store_env("monitoring")
    result: dict[str, Any] = {"parameters": {
        "series": series, "days": days, "window": "PT1H", "queries": queries,
        "httpWorkers": 2, "store": "eventsourcing.postgres"}}
    start = (time.time() // HOUR) * HOUR - days * 86400
    http = MonitoringHttp(env)
    app = _monitoring(store_env)
    try:
        progress(f"monitoring: {series:,} purchased offerings, a regime")
        estate = seed_monitoring_estate(app, series, start)
        by_size: dict[str, dict[str, Any]] = {}
        done = 0
        counts: dict[str, int] = {}
        for label, upto in (("tenth", max(1, days // 10)), ("whole", days)):
            progress(f"monitoring: seeding to {upto} days of hourly evaluations")
            began = time.perf_counter()
            for key, n in seed_monitoring_days(app, estate, done, upto, rng).items():
                counts[key] = counts.get(key, 0) + n
            seeded = time.perf_counter() - began
            if not done:  # what was copied reads back as the evaluator's records do
                first = next(app.outcomes.notifications(batch=1, topics=topics_of(
                    [WindowEvaluation])))
                assert app.outcomes.mapper.to_domain_event(first).result["unit"] == "%"
            done = upto
            progress(f"  seeded in {seeded:.0f} s; projecting into the read models")
            began = time.perf_counter()
            for model in app.read_models():
                model.catch_up()
            projected = time.perf_counter() - began
            baseline = in_memory_baseline(store_env)
            progress(f"  in memory (the earlier release): {baseline}")
            ready, _ = http.start(headers, estate["products"][0])
            progress(f"  ready in {ready:.2f} s; {queries} list queries")
            lists = monitoring_latencies(http.base, headers, estate, queries, rng)
            floor = floor_latencies(http.base, min(queries, 500))
            rss = http.worker_rss_mb()
            http.stop()
            restart, booted = http.start(headers, estate["products"][1])
            http.stop()
            by_size[label] = {
                "days": upto, **counts,
                "outcomesLogEvents": app.outcomes.max_notification_id(),
                "intakeLogEvents": app.max_notification_id(),
                "projectSeconds": round(projected, 2),
                "firstStartSeconds": round(ready, 2),
                "restartToReadySeconds": round(restart, 2),
                "bootSeconds": round(booted, 2),
                "readyAfterBootSeconds": round(restart - booted, 2),
                "inMemory": baseline,
                "listP50Ms": ms(lists, 50), "listP99Ms": ms(lists, 99),
                "healthzP50Ms": ms(floor, 50), "healthzP99Ms": ms(floor, 99),
                "httpWorkerRssMb": [round(r, 1) for r in rss]}
            progress(f"  {by_size[label]}")
        progress("monitoring: reading the indexes' notifications, then rebuilding them")
        began = time.perf_counter()
        read = sum(sum(1 for _ in model.app.notifications(
            batch=1000, topics=topics_of(list(model.tables)))) for model in app.read_models())
        ceiling = time.perf_counter() - began
        rebuilt = [model.rebuild() for model in app.read_models()]
        rebuild_seconds = sum(r.seconds for r in rebuilt)
        whole, tenth = by_size["whole"], by_size["tenth"]
        result.update({
            "restartToReadySeconds": whole["restartToReadySeconds"],
            "readyAfterBootSeconds": whole["readyAfterBootSeconds"],
            "inMemoryCatchUpSeconds": whole["inMemory"]["catchUpSeconds"],
            "readyAfterBootToInMemoryRatio": common.ratio(
                whole["readyAfterBootSeconds"], whole["inMemory"]["catchUpSeconds"]),
            "httpWorkerRssMb": max(whole["httpWorkerRssMb"] or [0]),
            "inMemoryRssMb": whole["inMemory"]["rssMb"],
            "rssRatioWholeToTenth": common.ratio(
                max(whole["httpWorkerRssMb"] or [0]), max(tenth["httpWorkerRssMb"] or [1])),
            "restartRatioWholeToTenth": common.ratio(whole["restartToReadySeconds"],
                                                     tenth["restartToReadySeconds"]),
            "listP99Ms": whole["listP99Ms"],
            "listP99ToHealthzP99": common.ratio(whole["listP99Ms"], whole["healthzP99Ms"]),
            "rebuild": {"events": sum(r.events for r in rebuilt),
                        "rows": sum(r.rows for r in rebuilt),
                        "seconds": round(rebuild_seconds, 1),
                        "storeReadSeconds": round(ceiling, 1), "storeReadEvents": read,
                        "ratioToStoreRead": common.ratio(rebuild_seconds, ceiling)},
            "bySize": by_size,
        })
        common.table("monitoring read models", ["figure", "value"], [
            ["restart to ready (s), tenth → whole",
             f"{tenth['restartToReadySeconds']} → {whole['restartToReadySeconds']}"],
            ["  of which after boot (healthz)",
             f"{tenth['readyAfterBootSeconds']} → {whole['readyAfterBootSeconds']}"],
            ["in memory: catch-up (s), tenth → whole",
             f"{tenth['inMemory']['catchUpSeconds']} → {whole['inMemory']['catchUpSeconds']}"],
            ["HTTP worker RSS (MB), tenth → whole",
             f"{max(tenth['httpWorkerRssMb'] or [0]):.0f} → "
             f"{max(whole['httpWorkerRssMb'] or [0]):.0f}"],
            ["in memory: RSS growth (MB), tenth → whole",
             f"{tenth['inMemory']['rssMb']} → {whole['inMemory']['rssMb']}"],
            ["list p50 / p99 (ms)", f"{whole['listP50Ms']} / {whole['listP99Ms']}"],
            ["healthz p99 (ms)", whole["healthzP99Ms"]],
            ["rebuild (s) / store read (s)", f"{rebuild_seconds:.1f} / {ceiling:.1f}"],
        ])
    finally:
        http.stop()
        app.close()
    return result


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--estate", type=int, default=1_000_000,
                            help="purchased offerings (default 1,000,000; --quick 20,000)")
        parser.add_argument("--queries", type=int, default=2000,
                            help="list queries measured at each size (default 2,000)")
        parser.add_argument("--service", choices=["both", "registry", "monitoring"],
                            default="both", help="which service's read models (default both)")
        parser.add_argument("--series", type=int, default=10_000,
                            help="monitoring: series evaluated hourly (default 10,000)")
        parser.add_argument("--days", type=int, default=30,
                            help="monitoring: days of evaluations (default 30)")

    args = common.arguments(__doc__.splitlines()[0], argv, extra)
    estate = 20_000 if args.quick else args.estate
    queries = 300 if args.quick else args.queries
    rng = random.Random(1)
    unique = f"rm{int(time.time())}_"
    env, headers = bench_env(unique)
    result: dict[str, Any] = {"quick": args.quick}
    try:
        if args.service in ("both", "registry"):
            result.update(registry_bench(env, headers, estate, queries, rng, args.quick))
        if args.service in ("both", "monitoring"):
            series = 500 if args.quick else args.series
            days = 4 if args.quick else args.days
            result["monitoring"] = monitoring_bench(env, headers, series, days,
                                                    300 if args.quick else 1000, rng)
    finally:
        common.drop_schemas(unique)
    if args.service != "both":  # keep the other service's figures of an earlier run
        earlier = {k: v for k, v in (common.read_result(NAME, args.quick) or {}).items()
                   if k not in ("benchmark", "date", "machine")}  # (this run's, not its)
        result = {**earlier, **result}
    common.write_result(NAME, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
