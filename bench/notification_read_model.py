"""notification's stored read model: start-up, memory, due work and lists that do not grow
with the delivery history (embedded: SQLite, as ``make run`` keeps it).

Two estates are seeded in the same run, a whole one and a tenth of it (deliveries,
mostly delivered, some failed, some pending later, and the same 100 due now), and for
each a fresh process starts the application and answers its first questions. Each
figure is a ratio measured in this run:

- ``startRatioWholeToTenth``: seconds from constructing the application to its first
  delivery list and its due deliveries, whole against tenth (about 1: nothing is
  replayed); ``memoryStartRatioWholeToTenth`` the same for the index that was kept in
  memory (an ``AggregateIndex`` over the same log, as the earlier release started: it
  grows with the log);
- ``rssRatioWholeToTenth``: that process's resident memory after answering, whole
  against tenth (about 1), and ``memoryRssRatioWholeToTenth`` for the in-memory index;
- ``dueRatioWholeToTenth``: finding the due deliveries (``StoredTimetable.due``), p50,
  whole against tenth (about 1: an indexed range of the same 100 rows);
- ``listRatioWholeToTenth``: a history page (failed deliveries, newest first, 10), p50,
  whole against tenth.

``--quick``: 4,000 deliveries (and 400).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common
from bench.common import progress

NAME = "notification_read_model"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DUE_NOW = 100

CHILD = r"""
import json, sys, time
from datetime import datetime
env, mode, now = json.loads(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
from services.notification.application import NotificationService
from services.notification.domain import Delivery
from shared.scheduler import SettableClock
began = time.perf_counter()
app = NotificationService(env, server_key="k", clock=SettableClock(now))
if mode == "stored":
    listed, due = len(app.deliveries()), len(app.due_deliveries())
else:
    from shared.store import AggregateIndex
    index = AggregateIndex(app)
    deliveries = index.all(Delivery)
    listed = len(deliveries)
    due = sum(1 for d in deliveries if d.status == "pending" and d.next_attempt_at <= now)
seconds = time.perf_counter() - began
rss = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status")
           if line.startswith("VmRSS:"))
print(json.dumps({"seconds": seconds, "rssMb": rss, "listed": listed, "due": due}))
"""


def seed(env: dict[str, str], deliveries: int, rng: random.Random) -> dict[str, Any]:
    """The estate, written as the service would have recorded it, its read model kept up."""
    from services.notification.application import NotificationService
    from services.notification.domain import Delivery

    app = NotificationService(env, server_key="k")
    began = time.perf_counter()
    for first in range(0, deliveries, 500):
        batch = []
        for n in range(first, min(first + 500, deliveries)):
            created = T0 - timedelta(minutes=deliveries - n)
            fate = rng.random()
            due_at = (T0 - timedelta(seconds=1) if n >= deliveries - DUE_NOW
                      else T0 + timedelta(days=1) if fate >= 0.95 else created)
            d = Delivery(message_id=f"m-{n}", channel="email", address=f"r{n % 50}@x.example",
                         recipient=f"R {n % 50}", target_kind="list",
                         target_id=f"list-{n % 20}", member_id=f"member-{n % 50}",
                         event_ids=[f"monitoring:{n}"], alert_ids=[f"alert-{n % 997}"],
                         correlation_ids=[f"corr-{n}"], event_type="ThresholdCrossingEvent",
                         reason="first", content={"subject": f"breach {n}", "text": "x" * 400},
                         max_attempts=3, due_at=due_at, ack_links=[])
            if n < deliveries - DUE_NOW and fate < 0.95:
                d.start_attempt(created, "bench")
                if fate < 0.9:
                    d.succeed(created + timedelta(seconds=1), "250 ok")
                else:
                    d.fail(created + timedelta(seconds=1), "refused", None)
            batch.append(d)
        app.save(*batch)
    written = time.perf_counter() - began
    began = time.perf_counter()
    app.index.catch_up()
    kept = time.perf_counter() - began
    events = app.max_notification_id()
    app.record_published(events)  # a benchmark: nothing for the bus
    app.close()
    return {"deliveries": deliveries, "events": events, "seedSeconds": round(written, 2),
            "catchUpSeconds": round(kept, 2)}


def start(env: dict[str, str], mode: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(env), mode, T0.isoformat()],
                          capture_output=True, text=True, timeout=900, cwd=common.ROOT,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(call: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def queries(env: dict[str, str]) -> dict[str, Any]:
    from flask import Flask

    from services.notification import schemas
    from services.notification.application import NotificationService
    from shared.http.blueprint import wire_names
    from shared.scheduler import SettableClock

    app = NotificationService(env, server_key="k", clock=SettableClock(T0))
    try:
        assert len(app.due_deliveries()) == DUE_NOW
        schema = schemas.Delivery(many=True)
        allowed = wire_names(schema)
        args = {"status": "failed", "sort": "-createdAt", "limit": "10"}
        with Flask(__name__).test_request_context("/", query_string=args):
            def page() -> Any:
                return app.history().page(args, allowed, (), schema.dump)

            return {"dueP50Ms": timed(app.due_deliveries, 30), "listP50Ms": timed(page, 30)}
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--deliveries", type=int, default=30_000,
                        help="deliveries in the whole estate (default 30,000)")
    args = parser.parse_args(argv)
    whole_size = 4_000 if args.quick else args.deliveries
    rng = random.Random(7)
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notification-") as tmp:
        for name, size in (("tenth", whole_size // 10), ("whole", whole_size)):
            env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                   "SQLITE_DBNAME": str(Path(tmp) / name / "notification.sqlite")}
            Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True)
            progress(f"seeding {size:,} deliveries ({name})")
            figures[name] = seed(env, size, rng)
            stored, memory = start(env, "stored"), start(env, "memory")
            assert stored["due"] == memory["due"] == DUE_NOW, (stored, memory)
            assert stored["listed"] == memory["listed"] == size
            figures[name].update({"startSeconds": stored["seconds"], "rssMb": stored["rssMb"],
                                  "memoryStartSeconds": memory["seconds"],
                                  "memoryRssMb": memory["rssMb"], **queries(env)})
    whole, tenth = figures["whole"], figures["tenth"]
    result = {
        "benchmark": NAME, "quick": args.quick, "measuredAt": common.now_iso(),
        "machine": common.machine(), "whole": whole, "tenth": tenth,
        "ratios": {
            "startRatioWholeToTenth": common.ratio(whole["startSeconds"], tenth["startSeconds"]),
            "memoryStartRatioWholeToTenth": common.ratio(whole["memoryStartSeconds"],
                                                         tenth["memoryStartSeconds"]),
            "rssRatioWholeToTenth": common.ratio(whole["rssMb"], tenth["rssMb"]),
            "memoryRssRatioWholeToTenth": common.ratio(whole["memoryRssMb"],
                                                       tenth["memoryRssMb"]),
            "dueRatioWholeToTenth": common.ratio(whole["dueP50Ms"], tenth["dueP50Ms"]),
            "listRatioWholeToTenth": common.ratio(whole["listP50Ms"], tenth["listP50Ms"]),
        },
    }
    common.table("notification read model", ["figure", "tenth", "whole"], [
        [key, common.fmt(tenth[key]), common.fmt(whole[key])]
        for key in ("deliveries", "events", "startSeconds", "memoryStartSeconds", "rssMb",
                    "memoryRssMb", "dueP50Ms", "listP50Ms")])
    common.table("ratios", ["figure", "value"],
                 [[k, common.fmt(v)] for k, v in result["ratios"].items()])
    common.write_result(NAME, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
