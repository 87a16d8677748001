"""A planned outage over a large group: its impact resolved and its customers' notices
handed to notification, and the customers' answers through HTTP.

The estate: one offering group with 100,000 purchased offerings of 20,000 customers (five
each, ``--customers``, ``--per-customer``; ``--quick``: 2,000 customers) in
outage-negotiation's inventory replica, written into its store directly (as the
registry's events would have left it, 1,000 a transaction, marked published), and a
notification list naming each of 2,000 of the customers (``--lists``), one e-mail member
each. outage-negotiation's relay and notification's inbox run in this process on
RabbitMQ and PostgreSQL, as their workers do (``shared.service.Runtime``), and so does
outage-negotiation's clock; the HTTP
answers go to outage-negotiation's gunicorn (2 workers, ``deploy/gunicorn.conf.py``).

What it measures, each against a baseline taken in the same run:

- ``impact.seconds``: from the planner's draft to every notice part consumed by
  notification (draft, propose — the customers resolved from the replica and checked
  against every rule — negotiate, the relay describing and publishing the notices in
  parts of 500 customers, notification making a message for every list that names a
  customer); with each step's time and the messages made. Baseline:
  ``plainEvents.seconds``, the store creating as many plain events as there are
  purchased offerings (100,000 small aggregates, 500 a transaction) in the same
  database: ``impact.ratioToPlainEvents``. The issue's goal: under 10 s.
- ``responses.perSecond``: customers' answers (``POST /plannedOutageResponse`` with
  each one's token, accept the first window) from 8 client threads (``--responses``),
  each answered 200 and kept; ``takenPerSecond``: until the clock (in this process) has
  taken every one into the outage and applied its policy; baseline: ``healthz`` through
  the same gunicorn (``responses.ratioToHealthz``). Goal: at least 200 a second.
  ``cpuMillisecondsPerAnswer``: where the answers' CPU went (gunicorn; the clock's
  thread; the rest of this process, the clients mostly; every PostgreSQL backend), beside
  ``healthzGunicornCpuMilliseconds``.

Before anything is measured, one outage over one customer goes the whole way (a running
suite has read its contracts and compiled its templates before; the figures are the
outage's own).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench import common
from bench.common import progress
from bench.read_models import bench_env
from tests.e2e import processes
from tests.e2e.processes import free_port
from tests.helpers import delete_queues

NAME = "outage_impact"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--per-customer", type=int, default=5)
    parser.add_argument("--lists", type=int, default=2_000,
                        help="customers with a notification list of their own")
    parser.add_argument("--responses", type=int, default=2_000,
                        help="answers sent through HTTP")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.lists, args.responses = 2_000, 200, 400
    return args


def seed_replicas(app: Any, customers: int, per_customer: int,
                  prefix: str = "") -> dict[str, Any]:
    """An offering group, its offering, an SLA type (no notice asked) and the purchased
    offerings (ids ``<prefix>po-<n>``, customers ``<prefix>cust-<n>``), as
    outage-negotiation's replicas; marked published."""
    from services.outage_negotiation.domain import Replica

    group, offering, sla = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())

    def copy(kind: str, resource: dict[str, Any]) -> Any:
        """A replica first heard of (as ``shared.replica.receive`` makes one)."""
        return Replica(kind=kind, resource_id=str(resource["id"]), resource=resource,
                       source_version=1)

    app.save(copy("offeringGroup", {"id": group, "name": "Metro", "lifecycleStatus": "active"}),
             copy("productOffering", {"id": offering, "name": "Metro 10G",
                                      "offeringGroupId": group, "lifecycleStatus": "active"}),
             copy("slaType", {"id": sla, "name": "bronze", "minimumNoticeDays": 0,
                              "maintenanceAccounting": "excluded",
                              "creditPercentPerBreachedPeriod": 5, "creditCapPercent": 30}))
    total = customers * per_customer
    batch: list[Any] = []
    for n in range(total):
        batch.append(copy("purchasedOffering", {
            "id": f"{prefix}po-{n:07d}",
            "customerId": f"{prefix}cust-{n // per_customer:06d}",
            "productOfferingId": offering, "offeringGroupId": group, "slaTypeId": sla,
            "status": "active", "site": f"site-{n % 97}"}))
        if len(batch) == 1000:
            app.save(*batch)
            batch = []
            if (n + 1) % 20_000 == 0:
                progress(f"  {n + 1:,} purchased offerings in the replica")
    if batch:
        app.save(*batch)
    app.record_published(app.max_notification_id())
    app.index.catch_up()
    return {"group": group, "offering": offering, "slaType": sla}


def warm_up(app: Any, notification: Any) -> None:
    """One outage over one customer with a list, drafted, proposed and negotiated until
    notification made its message: what a running suite has done before, done here
    before anything is measured (the contracts' catalogue read, the notice templates
    compiled, the schemas' first use), so the figures are the outage's own."""
    estate = seed_replicas(app, 1, 1, prefix="warm-")
    notification.create_list("warm-up contacts", [{"eventTypes": ["*"]}],
                             customer_ids=["warm-cust-000000"], members=[{
                                 "name": "Ops", "channel": "email",
                                 "address": "ops@warm-up.example"}])
    start = datetime.now(UTC) + timedelta(days=3)
    drafted = app.draft({"offeringGroupId": estate["group"]},
                        [{"start": start, "end": start + timedelta(hours=2)}],
                        "warm-up", "fullOutage", "bench", None, "Warm-up")
    app.propose(drafted.id, "bench")
    app.open_negotiation(drafted.id, "bench", deadline=start - timedelta(days=1))
    wait(lambda: _decisions(notification) >= 1, 60, "the warm-up notice consumed")


def plain_events(env: dict[str, str], count: int) -> float:
    """Seconds the store takes to create ``count`` small aggregates, 500 a transaction."""
    from eventsourcing.domain import Aggregate

    from shared.store import ServiceApplication, ensure_schema

    class Plain(Aggregate):
        def __init__(self, n: int) -> None:
            self.n = n

    class PlainEvents(ServiceApplication):
        name = "PlainEvents"

    store = {**env, "POSTGRES_SCHEMA": env["SLA_SCHEMA_PREFIX"] + "plain"}
    ensure_schema(store)
    app = PlainEvents(store)
    began = time.perf_counter()
    for first in range(0, count, 500):
        app.save(*[Plain(n) for n in range(first, min(first + 500, count))])
    seconds = time.perf_counter() - began
    app.close()
    return seconds


def wait(check: Any, limit: float, what: str) -> float:
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > limit:
            raise TimeoutError(f"{what} did not happen within {limit:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    from services.catalogue import spec
    from services.outage_negotiation.domain import PlannedOutage
    from shared import config
    from shared import outage_links as links
    from shared.service import Runtime

    prefix = f"bo{uuid.uuid4().hex[:6]}_"
    env, headers = bench_env(prefix)
    # The seeding's bulk load of the read model makes each page's rows inside its
    # transaction: on a loaded machine that outlasts the store's 5 s default for a
    # transaction left idle, and the run stops before measuring anything.
    env.update({"SLA_OUTAGE_TICK": "1", "SLA_RELAY_POLL_INTERVAL": "0.05",
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60"})
    settings = config.load(env)
    customers = args.customers
    purchased = customers * args.per_customer
    result: dict[str, Any] = {"quick": args.quick, "customers": customers,
                              "purchasedOfferings": purchased, "lists": args.lists,
                              "load": list(os.getloadavg())}
    runtimes: list[Any] = []
    http = None
    try:
        outages = Runtime(spec("outage-negotiation"), settings)
        notifier = Runtime(spec("notification"), settings)
        runtimes += [outages, notifier]
        app, notification = outages.app, notifier.app
        progress(f"seeding {purchased:,} purchased offerings of {customers:,} customers")
        estate = seed_replicas(app, customers, args.per_customer)
        for n in range(0, customers, max(1, customers // args.lists)):
            if n // max(1, customers // args.lists) >= args.lists:
                break
            customer = f"cust-{n:06d}"
            notification.create_list(f"{customer} contacts", [{"eventTypes": ["*"]}],
                                     customer_ids=[customer], members=[{
                                         "name": "Ops", "channel": "email",
                                         "address": f"ops@{customer}.example"}])
        notifier.start_workers({"inbox"})
        outages.start_workers({"relay", "clock"})
        progress("warm-up: an outage over one customer, told through notification")
        warm_up(app, notification)
        progress("baseline: the same number of plain events in the store")
        result["plainEvents"] = {"count": purchased,
                                 "seconds": round(plain_events(env, purchased), 3)}

        warm, warm_messages = _decisions(notification), _deliveries(notification)
        progress("an outage over the whole group: drafted, proposed, negotiated")
        start = datetime.now(UTC) + timedelta(days=3)
        window = {"start": start, "end": start + timedelta(hours=2)}
        steps: dict[str, float] = {}
        began = time.perf_counter()
        drafted = app.draft({"offeringGroupId": estate["group"]}, [window],
                            "metro ring upgrade", "fullOutage", "bench", None, "Metro")
        steps["draft"] = time.perf_counter() - began
        mark = time.perf_counter()
        proposed = app.propose(drafted.id, "bench")
        steps["propose"] = time.perf_counter() - mark
        mark = time.perf_counter()
        app.open_negotiation(drafted.id, "bench", deadline=start - timedelta(days=1))
        steps["negotiate"] = time.perf_counter() - mark
        parts = -(-customers // 500)

        mark = time.perf_counter()
        wait(lambda: _decisions(notification) >= args.lists + warm, 120,
             "every notice part consumed by notification")
        steps["relayAndNotification"] = time.perf_counter() - mark
        seconds = time.perf_counter() - began
        result["impact"] = {
            "seconds": round(seconds, 3), "steps": {k: round(v, 3) for k, v in steps.items()},
            "affectedCustomers": len(proposed.resolution), "noticeParts": parts,
            "messagesMade": _deliveries(notification) - warm_messages,
            "ratioToPlainEvents": round(seconds / result["plainEvents"]["seconds"], 3),
            "goalSeconds": 10, "met": seconds < 10}
        progress(f"impact resolved and notices handed over in {seconds:.2f} s "
                 f"({', '.join(f'{k} {v:.2f}' for k, v in steps.items())})")

        port = free_port()
        http = processes.gunicorn("services.outage_negotiation.wsgi:app", port, env,
                                  common.LOGS / f"{prefix}outage-http.log")
        base = f"http://127.0.0.1:{port}/outage-negotiation/v1"
        processes.wait_until(lambda: processes.ready(base), 60, "outage-negotiation ready",
                             [http])
        outage: PlannedOutage = app.outage(drafted.id)
        expires = outage.deadline
        tokens = [links.issue(settings.secret_key, links.Link(
            str(outage.id), f"cust-{n:06d}", outage.round, expires))
            for n in range(min(args.responses, customers))]
        session = threading.local()

        def post(token: str) -> int:
            s = getattr(session, "s", None) or requests.Session()
            session.s = s
            return s.post(f"{base}/plannedOutageResponse", timeout=30,
                          json={"token": token, "answer": "accept", "windowIndex": 0}
                          ).status_code

        def healthz(_: Any) -> int:
            s = getattr(session, "s", None) or requests.Session()
            session.s = s
            return s.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(healthz, range(50)))
            floor_cpu = common.cpu_seconds(http.pid) or 0.0
            mark = time.perf_counter()
            floor = list(pool.map(healthz, range(len(tokens))))
            floor_rate = len(floor) / (time.perf_counter() - mark)
            floor_cpu = ((common.cpu_seconds(http.pid) or 0.0) - floor_cpu) / len(floor)
            progress(f"{len(tokens):,} answers through HTTP")
            cpu = _cpu(http.pid)
            mark = time.perf_counter()
            statuses = list(pool.map(post, tokens))
            rate = len(statuses) / (time.perf_counter() - mark)
            cpu = {k: round((v - cpu[k]) / len(tokens) * 1e3, 2)
                   for k, v in _cpu(http.pid).items()}
        ok = sum(1 for s in statuses if s == 200)
        try:
            wait(lambda: len(app.outage(drafted.id).responses) >= ok, 60,
                 "every answer taken into the outage")
        except TimeoutError:
            result["incomplete"] = "answers not all taken into the outage within 60 s"
        taken_rate = ok / (time.perf_counter() - mark)
        answered = len(app.outage(drafted.id).responses)
        result["responses"] = {
            "count": len(tokens), "perSecond": round(rate, 1),
            "ok": sum(1 for s in statuses if s == 200),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "recorded": answered, "takenPerSecond": round(taken_rate, 1),
            "healthzPerSecond": round(floor_rate, 1), "cpuMillisecondsPerAnswer": cpu,
            "healthzGunicornCpuMilliseconds": round(floor_cpu * 1e3, 2),
            "ratioToHealthz": round(rate / floor_rate, 3), "goalPerSecond": 200,
            "met": rate >= 200 and answered == len(tokens)}
        progress(f"answers: {rate:,.0f}/s ({answered:,} recorded), healthz "
                 f"{floor_rate:,.0f}/s")
    finally:
        if http is not None:
            http.stop()
        for runtime in runtimes:
            runtime.stop()
            runtime.app.close()
        common.drop_schemas(prefix)
        delete_queues(common.AMQP_URL, *(f"{common.BUS_PREFIX}{service}.inbox{suffix}"
                                         for service in ("outage-negotiation", "notification")
                                         for suffix in ("", ".dead-letter")))
    common.table("Planned outage impact", ["figure", "value", "goal", "met"], [
        ["impact resolved + notices handed over (s)", result["impact"]["seconds"], 10,
         result["impact"]["met"]],
        ["plain events, same count (s)", result["plainEvents"]["seconds"], None, None],
        ["answers through HTTP (/s)", result["responses"]["perSecond"], 200,
         result["responses"]["met"]]])
    common.write_result(NAME, result)
    return 0


def _cpu(http_pid: int) -> dict[str, float]:
    """CPU seconds so far of outage-negotiation's gunicorn (master and workers), of the
    clock's thread in this process (taking the answers in), of the rest of this process
    (the clients, mostly) and of PostgreSQL (every backend)."""
    clock = next((t.native_id for t in threading.enumerate()
                  if t.name == "outage-negotiation-clock"), None)
    whole = common.cpu_seconds(os.getpid()) or 0.0
    taking = _thread_cpu(clock) if clock is not None else 0.0
    return {"gunicorn": common.cpu_seconds(http_pid) or 0.0, "clock": taking,
            "benchClients": whole - taking, "postgres": common._system_cpu()["postgres"]}


def _thread_cpu(native_id: int) -> float:
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _decisions(notification: Any) -> int:
    from services.notification.domain import Decision

    notification.index.catch_up()
    return notification.index.count(Decision)


def _deliveries(notification: Any) -> int:
    from services.notification.domain import Delivery

    notification.index.catch_up()
    return notification.index.count(Delivery)


if __name__ == "__main__":
    raise SystemExit(main())
