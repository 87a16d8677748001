"""HTTP ingest through gunicorn: ``POST /monitoring/v1/measurementBatch`` with batches of
100 samples from a few concurrent client threads (token scoped ``ingest``).

Reports requests/s, samples/s and the request latency (p50, p99); then a sentinel batch
closes the last window, and the time until its crossing arrives gives the rate at which
the ingested samples were also evaluated.

Baseline: ``GET /monitoring/v1/healthz`` with the same client threads, connections and
duration — what gunicorn and this client manage with no work behind the request.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from bench import common as c

NAME = "http_ingest"
SIZE = 100


def hammer(threads: int, duration: float, max_requests: int,
           make: Callable[[requests.Session], requests.Response]) -> dict[str, Any]:
    """``threads`` clients, each with its own keep-alive session, until ``duration``
    seconds or ``max_requests`` in all."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    count = {"n": 0}
    start = time.monotonic()
    deadline = start + duration

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if count["n"] >= max_requests:
                    break
                count["n"] += 1
            t0 = time.monotonic()
            try:
                response = make(session)
                status = response.status_code
            except requests.RequestException as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            t1 = time.monotonic()
            with lock:
                latencies.append(t1 - t0)
                statuses[status] = statuses.get(status, 0) + 1
        session.close()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(duration + 35)
    elapsed = time.monotonic() - start
    ms = [v * 1000 for v in latencies]
    return {"requests": len(latencies), "seconds": elapsed,
            "requestsPerSecond": len(latencies) / elapsed if elapsed else None,
            "p50Ms": c.percentile(ms, 50), "p99Ms": c.percentile(ms, 99),
            "maxMs": max(ms) if ms else None, "statuses": {str(k): v for k, v in statuses.items()},
            "errors": len(errors), "firstErrors": errors[:3]}


def main(argv: list[str] | None = None) -> int:
    def extra(p: Any) -> None:
        p.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
        p.add_argument("--duration", type=float, default=None,
                       help="seconds per phase (default 15, quick 4)")
        p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                       help="sample monitoring's gunicorn workers with py-spy while ingesting "
                            "(default: on, off with --quick)")

    args = c.arguments(__doc__.splitlines()[0], argv, extra)
    profile = (not args.quick) if args.profile is None else args.profile
    duration = args.duration or (4.0 if args.quick else 15.0)
    max_requests = 2_000 if args.quick else 20_000
    with c.suite(args) as s, c.CrossingWatcher(s.regime_id) as watcher:
        monitoring = s.base("monitoring")
        c.progress(f"baseline: GET healthz, {args.threads} threads, {duration:.0f} s …")
        baseline = hammer(args.threads, duration, max_requests * 5,
                          lambda session: session.get(f"{monitoring}/healthz", timeout=30))
        c.progress(f"  {c.fmt(baseline['requestsPerSecond'])} requests/s, "
                   f"p50 {c.fmt(baseline['p50Ms'])} ms")

        headers = {**s.headers(s.ingest_token), "Content-Type": "application/json"}
        lock = threading.Lock()
        accepted = {"samples": 0, "rejected": 0, "last": s.cursor, "first": s.cursor}

        def post(session: requests.Session) -> requests.Response:
            with lock:
                samples = s.samples(SIZE)
                accepted["last"] = s.cursor - s.step
            body = c.orjson.dumps({"batchId": s.next_batch_id("http"), "samples": samples})
            response = session.post(f"{monitoring}/measurementBatch", data=body,
                                    headers=headers, timeout=30)
            if response.status_code == 201:
                out = response.json()
                with lock:
                    accepted["samples"] += out.get("accepted", 0)
                    accepted["rejected"] += len(out.get("rejected") or [])
            return response

        c.progress(f"POST measurementBatch ({SIZE} samples), {args.threads} threads, "
                   f"{duration:.0f} s …")
        profiler = (c.Profiler(s.pid("monitoring-http"), "monitoring-http-ingest",
                               subprocesses=True) if profile else contextlib.nullcontext())
        with c.CpuMeter(s) as cpu:
            started = time.monotonic()
            with profiler:
                ingest = hammer(args.threads, duration, max_requests, post)
            po, window, closing = s.sentinel_samples(accepted["last"])
            sent = time.monotonic()
            response = requests.post(f"{monitoring}/measurementBatch", headers=headers,
                                     timeout=30, data=c.orjson.dumps({
                                         "batchId": s.next_batch_id("http-sentinel"),
                                         "samples": closing}))
            done = watcher.wait(po, window, 60) if response.status_code == 201 else None
        ingest["samplesPerSecond"] = accepted["samples"] / ingest["seconds"]
        ingest["samplesAccepted"] = accepted["samples"]
        ingest["samplesRejected"] = accepted["rejected"]
        result: dict[str, Any] = {
            "quick": args.quick,
            "figure": "POST measurementBatch of 100 samples through gunicorn: requests/s, "
                      "samples/s and request latency",
            "ingest": ingest,
            "baseline": {"description": "GET healthz, same threads and duration", **baseline},
            "ratioRequestsPerSecondToHealthz": c.ratio(ingest["requestsPerSecond"],
                                                       baseline["requestsPerSecond"]),
            "cpuCoresUsed": cpu.result,
            "notificationsInMonitoringStore": s.notification_count(),
            "parameters": {**c.suite_parameters(s), "threads": args.threads,
                           "durationSeconds": duration, "maxRequests": max_requests,
                           "samplesPerRequest": SIZE,
                           "gunicorn": "2 workers, 4 threads (gthread), deploy/gunicorn.conf.py"},
        }
        if profile:
            result["profileMonitoringHttp"] = profiler.summary
        if done is not None:
            seconds = done["received"] - started
            result["evaluated"] = {
                "seconds": seconds, "samplesPerSecond": accepted["samples"] / seconds,
                "afterLastRequestSeconds": done["received"] - sent}
        else:
            result["incomplete"] = ("the sentinel's crossing did not arrive within 60 s "
                                    f"(sentinel POST answered {response.status_code})")
        c.write_result(NAME, result)
    c.table("HTTP ingest through gunicorn vs GET healthz",
            ["", "requests/s", "samples/s", "p50 ms", "p99 ms", "errors"],
            [["POST measurementBatch (100)", ingest["requestsPerSecond"],
              ingest["samplesPerSecond"], ingest["p50Ms"], ingest["p99Ms"],
              ingest["errors"] + sum(v for k, v in ingest["statuses"].items() if k != "201")],
             ["GET healthz (baseline)", baseline["requestsPerSecond"], None, baseline["p50Ms"],
              baseline["p99Ms"], baseline["errors"]]])
    if "evaluated" in result:
        c.progress(f"evaluated too: {c.fmt(result['evaluated']['samplesPerSecond'])} samples/s "
                   f"from the first request to the sentinel's crossing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
