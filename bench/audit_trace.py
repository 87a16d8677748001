"""Audit queries over a long log: the threshold-registry with a large inventory on
PostgreSQL, its audit answered through gunicorn from each log's audit index.

What it measures, each against a baseline taken in the same run:

- ``traceP99Ms``: ``audit/events?correlationId=`` for the stories told in the log (a
  customer's change: two events under one correlation id among a million), p50/p99 over
  HTTP (baseline: ``healthz`` through the same gunicorn, the HTTP floor; and the scan that
  answered it before the index, timed once on a tenth of the log, where it is ten times
  cheaper);
- the same for a migration's correlation id (a page of 100 of its 1,000 events), for
  ``aggregateId=`` and for ``eventType=`` with a one-second ``from``/``to`` window;
- ``indexEventsPerSecond``: how fast the audit index projects the log (the first query
  after a migration waits for it), against the rate at which the store reads its own
  notifications in the same run.

The estate is written into the registry's store directly, as a fulfilment migration would
load it (1,000 purchased offerings a transaction, each under a correlation id of its own),
with a customer's change — a story of two events under a new correlation id — between
transactions, and marked published. ``--quick``: 20,000 items.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import common
from bench.common import progress
from bench.read_models import (
    Registry,
    _registry,
    bench_env,
    catalogue,
    floor_latencies,
    ms,
    notification_read_rate,
    purchased_offerings,
)

NAME = "audit_trace"


def seed(app: Any, start: int, stop: int, offerings: list[Any], sla_type: Any,
         rng: random.Random, story: dict[str, list[Any]]) -> float:
    """Purchased offerings ``start`` … ``stop - 1`` a transaction of 1,000 at a time,
    each under a migration's correlation id, and after each a customer's change under a
    correlation id of its own; ``story`` collects the ids and times to ask for. Returns
    events written a second."""
    from shared import context

    began = time.perf_counter()
    events = app.max_notification_id()
    for first in range(start, stop, 1000):
        migration = f"migration-{first}"
        batch = purchased_offerings(first, min(first + 1000, stop), offerings, sla_type, rng,
                                    lambda: "active")
        with context.bound(correlation=migration, who="bench:migration"):
            app.save(*batch)
        story["migrations"].append(migration)
        story["aggregates"].append(str(rng.choice(batch).id))
        story["times"].append(datetime.now(UTC))
        changed = rng.randrange(0, first + len(batch))
        correlation = str(uuid.uuid4())
        with context.bound(correlation=correlation, who="bench:customer"):
            app.update_purchased_offering(f"po-{changed:08d}", {
                "site": f"site-{rng.randrange(1000)}", "status": "suspended"})
        story["stories"].append(correlation)
        if (first - start) % 50_000 == 0:
            progress(f"  seeded {first + len(batch):,} purchased offerings")
    app.record_published(app.max_notification_id())  # a migration: not for the bus
    return (app.max_notification_id() - events) / (time.perf_counter() - began)


def latencies(base: str, headers: dict[str, str], plan: list[dict[str, str]]
              ) -> tuple[list[float], list[int]]:
    """Each query of the plan from two client threads: seconds each, and how many events
    each answered (``X-Total-Count``)."""
    timings: list[float] = []
    totals: list[int] = []
    lock = threading.Lock()

    def client(part: list[dict[str, str]]) -> None:
        with requests.Session() as session:
            for params in part:
                began = time.perf_counter()
                response = session.get(f"{base}/audit/events", params=params,
                                       headers=headers, timeout=120)
                took = time.perf_counter() - began
                response.raise_for_status()
                with lock:
                    timings.append(took)
                    totals.append(int(response.headers["X-Total-Count"]))

    threads = [threading.Thread(target=client, args=(plan[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(900)
    return timings, totals


def scan_seconds(app: Any, correlation: str) -> tuple[float, int]:
    """The scan that answered ``correlationId=`` before the index, once."""
    from shared import audit

    began = time.perf_counter()
    found = sum(1 for _ in audit.scan(app, {"correlationId": correlation}))
    return time.perf_counter() - began, found


def index_bytes(index: Any) -> int:
    """The audit index's room on PostgreSQL: its tables with their indexes."""
    with index._db.transaction(write=False) as tx:
        return sum(int(tx.execute("SELECT pg_total_relation_size(?::regclass) AS n",
                                  (table,)).fetchone()["n"]) for table in index.tables.values())


def log_bytes(app: Any) -> int:
    """The log's own room (events, their indexes), to compare the index's with."""
    recorder = app.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT pg_total_relation_size(%s::regclass) AS n", (table,))
        return int(curs.fetchone()["n"])


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--estate", type=int, default=1_000_000,
                            help="purchased offerings (default 1,000,000; --quick 20,000)")
        parser.add_argument("--queries", type=int, default=1000,
                            help="queries measured of each kind (default 1,000)")

    args = common.arguments(__doc__.splitlines()[0], argv, extra)
    estate = 20_000 if args.quick else args.estate
    queries = 200 if args.quick else args.queries
    rng = random.Random(3)
    unique = f"at{int(time.time())}_"
    from shared import config
    from shared.audit import audit_index

    env, headers = bench_env(unique)
    store_env = config.load(env).store_env("threshold-registry")
    result: dict[str, Any] = {"quick": args.quick, "parameters": {
        "purchasedOfferings": estate, "queries": queries, "httpWorkers": 2,
        "store": "eventsourcing.postgres"}}
    registry = Registry(env)
    try:
        app = _registry(store_env)
        _, offerings, sla_type = catalogue(app)
        story: dict[str, list[Any]] = {"migrations": [], "stories": [], "aggregates": [],
                                       "times": []}

        def window() -> dict[str, str]:
            moment = rng.choice(story["times"]) - timedelta(seconds=rng.random())
            return {"eventType": "PurchasedOffering.*", "limit": "100",
                    "from": moment.isoformat(), "to": (moment + timedelta(seconds=1))
                    .isoformat()}

        kinds: dict[str, Callable[[], dict[str, str]]] = {
            "trace": lambda: {"correlationId": rng.choice(story["stories"])},
            "migration": lambda: {"correlationId": rng.choice(story["migrations"]),
                                  "limit": "100"},
            "aggregate": lambda: {"aggregateId": rng.choice(story["aggregates"])},
            "typeWindow": window,
        }
        by_size: dict[str, dict[str, Any]] = {}
        done = 0
        for label, size in (("tenth", estate // 10), ("whole", estate)):
            progress(f"seeding to {size:,} purchased offerings")
            rate = seed(app, done, size, offerings, sla_type, rng, story)
            done = size
            head = app.max_notification_id()
            progress(f"  {rate:,.0f} events/s; {head:,} events; projecting the audit index")
            began = time.perf_counter()
            projected = audit_index(app).catch_up()
            index_rate = projected / (time.perf_counter() - began)
            figures: dict[str, Any] = {
                "events": head, "seedEventsPerSecond": round(rate),
                "indexEventsPerSecond": round(index_rate),
                "indexBytesPerEvent": round(index_bytes(audit_index(app)) / head),
                "logBytesPerEvent": round(log_bytes(app) / head)}
            if label == "tenth":  # the scan that answered before the index, once
                scan, found = scan_seconds(app, story["stories"][-1])
                figures["scan"] = {"seconds": round(scan, 2), "found": found}
                progress(f"  the scan of {head:,} events: {scan:.2f} s ({found} found)")
            else:
                figures["storeReadsPerSecond"] = round(notification_read_rate(app))
            progress("  the registry's read model")
            app.index.catch_up()
            ready = registry.start(headers)
            progress(f"  registry ready in {ready:.2f} s; {queries} queries of each kind")
            for kind, make in kinds.items():
                timings, totals = latencies(registry.base, headers,
                                            [make() for _ in range(queries)])
                figures[kind] = {"p50Ms": ms(timings, 50), "p99Ms": ms(timings, 99),
                                 "eventsMatchedMedian": sorted(totals)[len(totals) // 2]}
                progress(f"  {kind}: {figures[kind]}")
            floor = floor_latencies(registry.base, min(queries, 500))
            figures.update({"healthzP50Ms": ms(floor, 50), "healthzP99Ms": ms(floor, 99)})
            registry.stop()
            by_size[label] = figures
        whole, tenth = by_size["whole"], by_size["tenth"]
        trace, head, scan_tenth = whole["trace"], whole["events"], tenth["scan"]["seconds"]
        index_rate, ceiling = whole["indexEventsPerSecond"], whole["storeReadsPerSecond"]
        figures, floor_p99 = whole, whole["healthzP99Ms"]
        result.update({
            "traceP99Ms": trace["p99Ms"], "traceP50Ms": trace["p50Ms"],
            "healthzP99Ms": floor_p99,
            "traceP99ToHealthzP99": common.ratio(trace["p99Ms"], floor_p99),
            "traceP99WholeToTenth": common.ratio(trace["p99Ms"], tenth["trace"]["p99Ms"]),
            "events": head,
            "traceP99ToScanAtTenth": common.ratio(trace["p99Ms"], scan_tenth * 1000),
            "indexEventsPerSecond": index_rate,
            "storeReadsPerSecond": ceiling,
            "indexToStoreReads": common.ratio(index_rate, ceiling),
            "indexBytesPerEvent": whole["indexBytesPerEvent"],
            "logBytesPerEvent": whole["logBytesPerEvent"],
            "bySize": by_size,
        })
        common.table("audit over a long log", ["figure", "value"], [
            ["events in the log", head],
            ["trace by correlation id p50 / p99 (ms)",
             f"{trace['p50Ms']} / {trace['p99Ms']}"],
            ["migration page p50 / p99 (ms)",
             f"{figures['migration']['p50Ms']} / {figures['migration']['p99Ms']}"],
            ["by aggregate p50 / p99 (ms)",
             f"{figures['aggregate']['p50Ms']} / {figures['aggregate']['p99Ms']}"],
            ["type + 1 s window p50 / p99 (ms)",
             f"{figures['typeWindow']['p50Ms']} / {figures['typeWindow']['p99Ms']}"],
            ["trace p99 at a tenth (ms)", tenth["trace"]["p99Ms"]],
            ["healthz p99 (ms)", floor_p99],
            [f"the scan at a tenth ({tenth['events']:,} events, s)", scan_tenth],
            ["audit index (events/s)", index_rate],
            ["store reads (notifications/s)", ceiling],
            ["audit index / log (bytes an event)",
             f"{whole['indexBytesPerEvent']} / {whole['logBytesPerEvent']}"],
        ])
        app.close()
    finally:
        registry.stop()
        common.drop_schemas(unique)
    common.write_result(NAME, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
