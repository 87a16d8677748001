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
  over the whole log, pages of 1,000);
- ``replicationEventsPerSecond`` and ``traceP99Ms`` when the benchmarks that measure them
  have written their results in this run (``replication``, audit trace).

The estate is written into the registry's store directly, as a fulfilment migration
would load it (1,000 purchased offerings a transaction), and marked published: the
benchmark is about the registry's reads, not the bus. ``--quick``: 20,000 items.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import common
from bench.common import PG, progress
from tests.e2e import processes
from tests.e2e.processes import free_port

NAME = "read_models"
CUSTOMERS = 20_000


def _registry(env: dict[str, str]) -> Any:
    from services.threshold_registry.application import ThresholdRegistry
    from shared.store import ensure_schema, schema_lock

    ensure_schema(env)
    with schema_lock(env):
        return ThresholdRegistry(env)


def seed(app: Any, start: int, stop: int, offerings: list[Any], sla_type: Any,
         rng: random.Random) -> float:
    """Purchased offerings ``start`` … ``stop - 1``; returns items written a second."""
    from services.threshold_registry.domain import PurchasedOffering

    began = time.perf_counter()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for first in range(start, stop, 1000):
        batch = [PurchasedOffering(
            product_id=f"po-{n:08d}", customer_id=f"cust-{rng.randrange(CUSTOMERS):06d}",
            offering_id=rng.choice(offerings).id, sla_type_id=sla_type.id,
            customer_group=rng.choice(["smb", "enterprise", "public"]),
            site=f"site-{rng.randrange(1000)}", status=rng.choice(
                ["active"] * 8 + ["suspended", "terminated"]),
            start_date=base + timedelta(minutes=rng.randrange(525_600)))
            for n in range(first, min(first + 1000, stop))]
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


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--estate", type=int, default=1_000_000,
                            help="purchased offerings (default 1,000,000; --quick 20,000)")
        parser.add_argument("--queries", type=int, default=2000,
                            help="list queries measured at each size (default 2,000)")

    args = common.arguments(__doc__.splitlines()[0], argv, extra)
    estate = 20_000 if args.quick else args.estate
    queries = 300 if args.quick else args.queries
    rng = random.Random(1)
    unique = f"rm{int(time.time())}_"
    from shared import auth, config

    secret = "bench-" + "x" * 40
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **PG,
           "SLA_SCHEMA_PREFIX": unique, "SLA_SECRET_KEY": secret,
           "SLA_BUS_URL": common.AMQP_URL, "SLA_BUS_PREFIX": common.BUS_PREFIX,
           "REDIS_URL": common.REDIS_URL, "SLA_LOG_LEVEL": "WARNING",
           "SLA_DATA_DIR": str(common.LOGS / f"data-{unique}")}
    store_env = config.load(env).store_env("threshold-registry")
    headers = {"Authorization": f"Bearer {auth.issue(secret, ['admin'], 'bench')}"}
    result: dict[str, Any] = {"quick": args.quick, "parameters": {
        "purchasedOfferings": estate, "queries": queries, "httpWorkers": 2,
        "store": "eventsourcing.postgres"}}
    registry = Registry(env)
    try:
        app = _registry(store_env)
        groups = [app.register_offering_group(f"Group {n}") for n in range(10)]
        offerings = [app.register_offering(f"Offering {n}", lifecycle_status="active",
                                           group_id=groups[n % 10].id) for n in range(50)]
        sla_type = app.register_sla_type(name="gold", maintenance_accounting="excluded",
                                         minimum_notice_days=10,
                                         credit_percent_per_breached_period=5,
                                         credit_cap_percent=30)
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
        ceiling = notification_read_rate(app)
        decoded = notification_read_rate(app, decode=True)
        report = app.index.rebuild(lambda d, t: None)
        rebuild_rate = report.events / report.seconds
        whole, tenth = by_size["whole"], by_size["tenth"]
        replication = common.read_result("replication", args.quick) or {}
        trace = common.read_result("audit_trace", args.quick) or {}
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
                        "ratioToDecodedReads": round(rebuild_rate / decoded, 3)},
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
        common.drop_schemas(unique)
    common.write_result(NAME, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
