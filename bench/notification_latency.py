"""Notification latency: from a ThresholdCrossingEvent published on the bus (as monitoring
would) to its webhook received, at a steady load; and deliveries per second.

    .venv/bin/python -m bench.notification_latency [--rate 50] [--seconds 20] [--embedded]

Distributed wiring by default (RabbitMQ at SLA_BENCH_AMQP_URL or the loopback default,
SQLite store in a temporary directory; PERSISTENCE_MODULE=eventsourcing.postgres and the
POSTGRES_* variables switch the store); ``--embedded`` uses the in-process bus. The list
sends each alert at once (group_wait 0, one group per alert), so the figures exclude the
grouping delay. Results: bench/results/notification_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared import config
from shared.bus.envelope import Envelope
from shared.bus.topology import SLA_EVENTS
from shared.times import iso

RESULTS = Path(__file__).resolve().parent / "results" / "notification_latency.json"


def _receiver(arrivals: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.perf_counter()
            for alert in json.loads(body).get("alerts", []):
                arrivals.setdefault(alert["alertId"], now)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _crossing(crossing_id: str, group: str) -> Envelope:
    return Envelope(
        event_id=f"monitoring:{uuid.uuid4().int % 10**12}", event_time=iso(),
        event_type="ThresholdCrossingEvent", source="monitoring", correlation_id=crossing_id,
        event={"change": "raised", "crossing": {
            "id": crossing_id, "regimeId": "bench", "parameter": "availability",
            "scope": {"type": "offeringGroup", "id": group}, "level": "breached",
            "measuredValue": 99.0, "conformanceTarget": 99.9, "thresholdTarget": 99.95,
            "comparator": "GE", "standardId": "bench", "standardVersion": 1,
            "window": {"startDateTime": "2026-03-02T08:00:00Z",
                       "endDateTime": "2026-03-02T09:00:00Z"},
            "planned": False, "batchIds": [], "raisedAt": iso()}})


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))  # nearest rank
    return ordered[rank - 1]


def run(rate: float, seconds: float, embedded: bool) -> dict[str, Any]:
    from services.notification.service import SPEC
    from shared.wsgi import Suite

    arrivals: dict[str, float] = {}
    server = _receiver(arrivals)
    url = f"http://127.0.0.1:{server.server_address[1]}/bench"
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SLA_DATA_DIR": tmp, "SLA_SECRET_KEY": "bench-" + "x" * 40,
               "SLA_LOG_JSON": "1", "SLA_LOG_LEVEL": "WARNING",
               "SLA_BUS_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
               "SLA_SCHEMA_PREFIX": f"bench{uuid.uuid4().hex[:6]}_"}
        for key in ("PERSISTENCE_MODULE", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
                    "POSTGRES_PASSWORD", "POSTGRES_DBNAME"):
            if os.environ.get(key):
                env[key] = os.environ[key]
        if not embedded:
            env["SLA_BUS_URL"] = os.environ.get("SLA_BENCH_AMQP_URL",
                                                "amqp://guest:guest@127.0.0.1:5672/%2F")
        # notification's own settings, read from the same environment when it is built
        env.update({"SLA_WEBHOOK_ALLOW": "127.0.0.1/32", "SLA_NOTIFICATION_TICK": "0.05",
                    "SLA_DELIVERY_CONCURRENCY": "16"})
        settings = config.load(env)
        suite = Suite([SPEC], settings, start_workers=False)
        runtime = suite.runtime("notification")
        group = str(uuid.uuid4())
        runtime.app.create_list(
            name="bench", purpose=None, owner=None, kind="internal", customer_ids=[],
            offering_group_ids=[group], topics=[{"eventTypes": ["*"]}],
            settings={"groupWait": 0, "groupInterval": 0, "groupBy": ["alertId"]},
            members=[{"name": "bench", "channel": "webhook", "address": url}])
        runtime.start_workers()
        sent: dict[str, float] = {}
        try:
            time.sleep(1.0)  # consumers connected
            total = int(rate * seconds)
            started = time.perf_counter()
            for i in range(total):
                due = started + i / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                crossing_id = f"bench-{i}"
                envelope = _crossing(crossing_id, group)
                sent[crossing_id] = time.perf_counter()
                runtime.transport.publish_raw(SLA_EVENTS, "monitoring.crossing.raised",
                                              envelope.to_bytes(), message_id=envelope.event_id)
            deadline = time.perf_counter() + 60
            while len(arrivals) < total and time.perf_counter() < deadline:
                time.sleep(0.05)
            finished = max(arrivals.values()) if arrivals else time.perf_counter()
        finally:
            suite.stop()
            server.shutdown()
            if not embedded:
                _delete_queues(env["SLA_BUS_URL"], runtime.queue)
    latencies = [(arrivals[k] - sent[k]) * 1000 for k in sent if k in arrivals]
    result = {
        "benchmark": "notification_latency",
        "measuredAt": datetime.now(UTC).isoformat(),
        "wiring": "embedded (in-process bus)" if embedded else "distributed (RabbitMQ)",
        "store": settings.persistence_module,
        "targetRatePerSecond": rate, "seconds": seconds, "published": len(sent),
        "delivered": len(latencies),
        "latencyMs": {"p50": round(_percentile(latencies, 50), 1),
                      "p90": round(_percentile(latencies, 90), 1),
                      "p99": round(_percentile(latencies, 99), 1),
                      "max": round(max(latencies), 1),
                      "mean": round(statistics.fmean(latencies), 1)} if latencies else None,
        "deliveriesPerSecond": round(len(latencies) / max(1e-9, finished - started), 1),
        "goal": "p99 < 500 ms outside the grouping delay",
    }
    result["goalMet"] = bool(latencies) and result["latencyMs"]["p99"] < 500 and \
        len(latencies) == len(sent)
    return result


def _delete_queues(url: str, queue: Any) -> None:
    import contextlib

    import pika

    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as conn:
        channel = conn.channel()
        for name in (queue.name, queue.dead_letter_queue):
            channel.queue_delete(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="crossings per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--embedded", action="store_true", help="in-process bus")
    args = parser.parse_args()
    result = run(args.rate, args.seconds, args.embedded)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
