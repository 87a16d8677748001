"""Aggregate analysis over a million window summaries: analysis's stored read model on
PostgreSQL, as distributed mode runs it, and the aggregate questions an SLA manager asks.

What it measures, against a baseline taken in the same run:

- ``queries``: each question's time (``services.analysis`` ``Analysis.aggregate``, the
  statements and the assembling of the answer, median and max of ``--repeat`` runs):
  the whole period; availability by customer group and SLA type; every parameter by
  customer (100 groups); by purchased offering (1,000 groups, the widest answer); one
  offering group by offering. The goal (issue 11): each under 5 s at 1,000,000 summaries
  (``goalMet``);
- baseline ``scanSeconds``: one statement that reads every row of the table once
  (``COUNT(*)`` and two sums: the floor of any answer that reads them all), so
  ``ratioToScan`` says what grouping, ranking and the per-offering rows add;
- ``load``: summaries stored through the application (1,000 a transaction, as the
  inbox's groups store them: the first 20,000), and the read model rebuilt over all of
  them (``slactl readmodel rebuild analysis``, as after a backfill), in summaries a
  second.

The summaries are written into analysis's store directly (no monitoring, no bus: the
benchmark is about the read side), the first through the application, the rest copied
into the log as a migration would load it (``COPY``, the events encoded as the store
encodes them): 1,000 purchased offerings
(``--purchased-offerings``) of 100 customers in 5 customer groups, 50 offerings in 10 groups, 3 SLA
types with credit terms and a monthly charge each, two parameters (availability and p99
latency), hourly windows, as many as make ``--summaries``; 2 % of the windows breach.
``--quick``: 50,000 summaries.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from typing import Any

from bench import common
from bench.common import PG, progress

NAME = "aggregate_analysis"
HOUR = 3600.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GOAL_SECONDS = 5.0


def _analysis(env: dict[str, str]) -> Any:
    from services.analysis.application import Analysis
    from shared.store import ensure_schema, schema_lock

    ensure_schema(env)
    with schema_lock(env):
        return Analysis(env)


def estate(offerings: int) -> list[dict[str, Any]]:
    """The purchased offerings: customer, customer group, offering, group, SLA type."""
    groups = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"group-{n}")) for n in range(10)]
    products = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"offering-{n}")) for n in range(50)]
    slas = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"sla-{n}")) for n in range(3)]
    return [{"id": f"po-{n}", "customerId": f"cust-{n % 100}",
             "customerGroup": f"segment-{n % 100 % 5}", "productOfferingId": products[n % 50],
             "offeringGroupId": groups[n % 50 % 10], "slaTypeId": slas[n % 3],
             "monthlyCharge": "250.00", "currency": "EUR"} for n in range(offerings)]


def summary(po: dict[str, Any], parameter: str, window: int, rng: random.Random
            ) -> dict[str, Any]:
    from shared.times import iso

    start = START + HOUR * window
    breached = rng.random() < 0.02
    if parameter == "availability":
        bad = rng.choice((36.0, 360.0)) if breached else rng.choice((0.0, 0.0, 0.0, 1.8))
        value, unit, aggregation, comparator, target = (
            100 * (1 - bad / HOUR), "%", "availability", "GE", 99.9)
        eligible = HOUR
    else:
        value = rng.uniform(120, 400) if breached else rng.uniform(5, 90)
        unit, aggregation, comparator, target, eligible, bad = "ms", "p99", "LE", 100.0, 0, 0
    return {
        "id": str(uuid.uuid4()), "@type": "WindowSummary", "regimeId": "bench",
        "parameter": parameter, "scope": {"type": "purchasedOffering", "id": po["id"]},
        "purchasedOfferingId": po["id"], "customerId": po["customerId"],
        "customerGroup": po["customerGroup"], "productOfferingId": po["productOfferingId"],
        "offeringGroupId": po["offeringGroupId"], "slaTypeId": po["slaTypeId"],
        "windowStart": iso(start), "windowEnd": iso(start + HOUR),
        "aggregation": aggregation, "unit": unit, "sampleCount": 60, "value": value,
        "comparator": comparator, "conformanceTarget": target, "thresholdTarget": None,
        "eligibleSeconds": float(eligible), "badSeconds": float(bad), "excludedSeconds": 0.0,
        "classification": "breached" if breached else "ok", "breached": breached,
        "warned": False, "planned": False, "standardId": None, "standardVersion": None,
        "periodStart": iso(START) if start + HOUR <= START + 31 * 86400 else
        iso(START + 31 * 86400), "periodEnd": None, "crossingId": None}


def load(app: Any, pos: list[dict[str, Any]], total: int, rng: random.Random
         ) -> dict[str, Any]:
    """The replicas; a first part of the summaries stored through the application (1,000
    a transaction, as the inbox's groups keep them) for its rate; the rest copied into
    the log with ``COPY``, their events encoded as the store's transcoder encodes them;
    then the read model's catch-up (a load from nothing: ``shared.bulkload``)."""
    import orjson
    from psycopg.sql import SQL, Identifier

    from services.analysis.domain import Replica, WindowSummary, stable_summary_id
    from shared.replica import Copy
    from shared.times import iso

    for n, sla in enumerate(sorted({p["slaTypeId"] for p in pos})):
        app.receive_replica(Copy("slaType", sla, {
            "id": sla, "name": f"sla-{n}", "creditPercentPerBreachedPeriod": 5,
            "creditCapPercent": 20, "version": 1}, 1))
    app.save(*[Replica(kind="purchasedOffering", resource_id=p["id"],
                       resource={**p, "version": 1}, source_version=1) for p in pos])
    windows = total // (2 * len(pos))
    made = ((po, parameter, window) for window in range(windows) for po in pos
            for parameter in ("availability", "latency"))
    through_app = min(20_000, total // 10)
    started, cpu = time.perf_counter(), time.process_time()
    batch: list[Any] = []
    for _ in range(through_app):
        po, parameter, window = next(made)
        batch.append(WindowSummary.of(summary(po, parameter, window, rng)))
        if len(batch) == 1000:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    app_seconds = time.perf_counter() - started
    app_cpu = time.process_time() - cpu
    recorder = app.recorder
    copy_sql = SQL("COPY {}.{} (originator_id, originator_version, topic, state) "
                   "FROM STDIN").format(Identifier(recorder.datastore.schema),
                                        Identifier(recorder.events_table_name))
    topic = "services.analysis.domain:WindowSummary.Received"
    stamp = {"_type_": "datetime_iso", "_data_": iso(time.time()).replace("Z", "+00:00")}
    copied = 0
    started = time.perf_counter()
    rest = list(made)
    for first in range(0, len(rest), 50_000):
        with recorder.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs, curs.copy(copy_sql) as copy:
            for po, parameter, window in rest[first:first + 50_000]:
                s = summary(po, parameter, window, rng)
                copy.write_row((stable_summary_id(s["id"]), 1, topic, orjson.dumps({
                    "timestamp": stamp,
                    "originator_topic": "services.analysis.domain:WindowSummary",
                    "summary_id": s["id"], "figures": orjson.dumps(s).decode()})))
                copied += 1
        progress(f"copied {copied:,} of {len(rest):,} summaries into the log")
    copy_seconds = time.perf_counter() - started
    progress("the read model is rebuilt")
    caught = time.perf_counter()
    app.index.rebuild()  # a load from nothing, as after a backfill (shared.bulkload)
    catch_up_seconds = time.perf_counter() - caught
    stored = through_app + copied
    return {"summaries": stored, "windowsPerOffering": windows,
            "throughApplication": through_app,
            "applicationPerSecond": through_app / app_seconds if app_seconds else None,
            "applicationCpuMicrosecondsPerSummary": 1e6 * app_cpu / through_app,
            "copiedPerSecond": copied / copy_seconds if copy_seconds else None,
            "readModelSeconds": catch_up_seconds,
            "readModelPerSecond": stored / catch_up_seconds if catch_up_seconds else None,
            "storedStraightFromCreations": app.index._created,
            "end": START + HOUR * windows}


def scan_seconds(app: Any, repeat: int) -> float:
    from services.analysis.domain import WindowSummary

    table = app.index.sql_table(WindowSummary)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        app.index.query(f"SELECT COUNT(*) AS n, SUM(c_eligible_seconds) AS e, "
                        f"SUM(c_value) AS v FROM {table}")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def questions(end: float, group: str) -> dict[str, Any]:
    from services.analysis.aggregates import AggregateQuery

    return {
        "wholePeriod": AggregateQuery(START, end),
        "availabilityByCustomerGroupAndSlaType": AggregateQuery(
            START, end, parameter="availability", group_by=("customerGroup", "slaTypeId")),
        "byCustomer": AggregateQuery(START, end, group_by=("customerId",)),
        "byPurchasedOffering": AggregateQuery(START, end, group_by=("purchasedOfferingId",)),
        "oneGroupByOffering": AggregateQuery(START, end, filters={"offeringGroupId": [group]},
                                             group_by=("productOfferingId",)),
    }


def main(argv: list[str] | None = None) -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--summaries", type=int, default=1_000_000,
                            help="window summaries (default 1,000,000; --quick 50,000)")
        parser.add_argument("--purchased-offerings", type=int, default=1000,
                            help="purchased offerings the summaries are about (default 1,000)")
        parser.add_argument("--repeat", type=int, default=5,
                            help="runs of each question (default 5)")

    args = common.arguments(__doc__.splitlines()[0], argv, extra)
    total = 50_000 if args.quick else args.summaries
    rng = random.Random(11)
    prefix = f"aa{int(time.time())}_"
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "SINGLE_ROW_TRACKING": "n", **PG,
           "POSTGRES_SCHEMA": f"{prefix}analysis"}
    result: dict[str, Any] = {"quick": args.quick, "goalSeconds": GOAL_SECONDS}
    app = None
    try:
        app = _analysis(env)
        pos = estate(min(args.purchased_offerings, total // 2))
        result["load"] = loaded = load(app, pos, total, rng)
        scan = scan_seconds(app, args.repeat)
        result["scanSeconds"] = scan
        measured: dict[str, Any] = {}
        for name, query in questions(loaded["end"], pos[0]["offeringGroupId"]).items():
            times, items = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                items = app.aggregate(query)
                times.append(time.perf_counter() - started)
            measured[name] = {"medianSeconds": statistics.median(times),
                              "maxSeconds": max(times), "items": len(items),
                              "windows": sum(i["windowCount"] for i in items),
                              "ratioToScan": common.ratio(statistics.median(times), scan)}
            progress(f"{name}: median {statistics.median(times):.2f} s, "
                     f"max {max(times):.2f} s, {len(items)} items")
        result["queries"] = measured
        result["worstSeconds"] = max(q["maxSeconds"] for q in measured.values())
        result["goalMet"] = result["worstSeconds"] < GOAL_SECONDS
        common.table("aggregate analysis", ["question", "median s", "max s", "items",
                                            "× scan"],
                     [[n, q["medianSeconds"], q["maxSeconds"], q["items"], q["ratioToScan"]]
                      for n, q in measured.items()])
    finally:
        if app is not None:
            app.close()
        common.drop_schemas(prefix)
    common.write_result(NAME, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
