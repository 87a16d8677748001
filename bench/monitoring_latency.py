"""Crossing latency under load: from publishing a breaching sample to receiving the
ThresholdCrossingEvent monitoring raises for it (p50, p99, max).

A steady background load of 100-sample messages runs at a fixed rate (by default half of
the end-to-end throughput that ``monitoring_throughput`` measured in this run). Now and
then, the message that closes a window (its samples pass the window's end plus the
allowed lateness) also carries one breaching sample of a purchased offering inside that
window; its crossing (``monitoring.crossing.raised`` on ``sla.events``, matched by the
offering and the window) stops the clock.

Baseline: the raw pika round trip (publish with confirm → delivery to a consumer) of a
message of the same size on the same broker, measured concurrently under the same load
(and once idle, before it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from bench import common as c

NAME = "monitoring_latency"
SIZE = 100


class RoundTrips:
    """Raw pika round trips: publish one persistent message (confirmed) to a temporary
    durable queue and time its delivery to a consumer on another connection."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.queue = f"bench.rtt.{c.uuid.uuid4().hex[:8]}"
        self.samples: list[float] = []
        self._got = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._received = 0.0

    def _consume(self) -> None:
        connection, channel = c.blocking()
        channel.basic_qos(prefetch_count=c.SUITE_PREFETCH)
        self._ready.set()
        for method, _props, _body in channel.consume(self.queue, inactivity_timeout=0.1):
            if self._stop.is_set():
                break
            if method is None:
                continue
            self._received = time.monotonic()
            channel.basic_ack(method.delivery_tag)
            self._got.set()
        with c.contextlib.suppress(Exception):
            channel.cancel()
            connection.close()

    def run(self, count: int, time_limit: float, interval: float = 0.0,
            stop: threading.Event | None = None) -> list[float]:
        connection, channel = c.blocking()
        channel.queue_declare(self.queue, durable=True)
        channel.confirm_delivery()
        consumer = threading.Thread(target=self._consume, daemon=True)
        consumer.start()
        self._ready.wait(10)
        deadline = time.monotonic() + time_limit
        try:
            for _ in range(count):
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    break
                self._got.clear()
                sent = time.monotonic()
                channel.basic_publish("", self.queue, self.body, c.PERSISTENT)
                if self._got.wait(5):
                    self.samples.append(self._received - sent)
                if interval:
                    time.sleep(interval)
        finally:
            self._stop.set()
            consumer.join(5)
            with c.contextlib.suppress(Exception):
                channel.queue_delete(self.queue)
                connection.close()
        return self.samples


# The crossing latency the ingest goal asks for, at half the measured throughput.
GOAL_P99_MS = 100

def summary(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {"count": len(ms), "p50Ms": c.percentile(ms, 50), "p99Ms": c.percentile(ms, 99),
            "maxMs": max(ms) if ms else None,
            "meanMs": sum(ms) / len(ms) if ms else None}


def background_rate(args: Any) -> tuple[float, str]:
    if args.rate:
        return args.rate, "given (--rate)"
    measured = c.read_result("monitoring_throughput", args.quick) or {}
    rate = ((measured.get("sizes") or {}).get("100") or {}).get("samplesPerSecond")
    if rate:
        return rate * args.load_fraction, (
            f"{args.load_fraction:.0%} of the end-to-end throughput at 100 samples/message "
            f"measured by monitoring_throughput at {measured.get('date')}")
    return 10_000.0, "default 10,000 samples/s (no monitoring_throughput result found)"


def main(argv: list[str] | None = None) -> int:
    def extra(p: Any) -> None:
        p.add_argument("--crossings", type=int, default=None,
                       help="crossings to time (default 50, quick 10)")
        p.add_argument("--rate", type=float, default=None,
                       help="background load in samples/s (default: --load-fraction of the "
                            "measured throughput)")
        p.add_argument("--load-fraction", type=float, default=0.5)
        p.add_argument("--time-limit", type=float, default=None,
                       help="seconds for the loaded run (default 60, quick 20)")

    args = c.arguments(__doc__.splitlines()[0], argv, extra)
    crossings = args.crossings or (10 if args.quick else 50)
    time_limit = args.time_limit or (20.0 if args.quick else 60.0)
    rate, rate_source = background_rate(args)
    messages_per_second = rate / SIZE
    with c.suite(args) as s, c.CrossingWatcher(s.regime_id) as watcher:
        # Windows close every `per window` samples; space the probes in wall time.
        window_seconds = s.offerings * s.per_series / rate
        warmup = 2.0
        interval = max(window_seconds * 1.05, (time_limit * 0.6 - warmup) / crossings, 0.1)
        c.progress(f"background load {rate:,.0f} samples/s ({messages_per_second:,.1f} "
                   f"messages/s of {SIZE}; {rate_source}); a window closes every "
                   f"{window_seconds:.2f} s; {crossings} probes, one every {interval:.2f} s")

        idle_body = c.envelope("rtt", s.samples(SIZE))
        idle = RoundTrips(idle_body).run(100 if not args.quick else 30, 15)
        c.progress(f"raw round trip, idle: p50 {c.fmt(summary(idle)['p50Ms'])} ms, "
                   f"p99 {c.fmt(summary(idle)['p99Ms'])} ms")

        probes: dict[tuple[str, float], float] = {}
        state = {"last": s.cursor - s.step, "probes": 0, "next": time.monotonic() + warmup}

        def stream() -> Iterator[tuple[str, bytes, Any]]:
            while True:
                samples = s.samples(SIZE)
                last = s.cursor - s.step
                tag = None
                # the boundary c = W + window + lateness this message crosses, if any
                boundary = (last // s.WINDOW) * s.WINDOW
                if state["last"] < boundary <= last and state["probes"] < crossings \
                        and time.monotonic() >= state["next"]:
                    window = boundary - s.WINDOW - s.LATENESS
                    po = s.next_probe_po()
                    samples.append({"purchasedOfferingId": po, "parameter": "latency",
                                    "value": c.BREACHING,
                                    "observedAt": c.iso_ms(window + s.WINDOW - 0.0005)})
                    tag = (po, window)
                    state["probes"] += 1
                    state["next"] = time.monotonic() + interval
                state["last"] = last
                yield c.ROUTING_KEY, c.envelope(s.next_batch_id("load"), samples), tag

        def sent(tag: Any, t: float) -> None:
            if tag is not None:
                probes[tag] = t

        publisher = c.ConfirmPublisher(c.MEASUREMENTS)
        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: outcome.setdefault(
            "stats", publisher.run(stream(), time_limit + 5, rate=messages_per_second,
                                   on_sent=sent)), daemon=True)
        loaded_stop = threading.Event()
        loaded_rtt = RoundTrips(idle_body)
        rtt_thread = threading.Thread(target=loaded_rtt.run, args=(
            10_000, time_limit, 0.05, loaded_stop), daemon=True)
        depths: list[int] = []
        started = time.monotonic()
        deadline = started + time_limit
        with c.CpuMeter(s) as cpu:
            thread.start()
            time.sleep(warmup / 2)
            rtt_thread.start()
            latencies: dict[tuple[str, float], float] = {}
            last_depth = 0.0
            while time.monotonic() < deadline:
                for key, t in list(probes.items()):
                    if key in latencies:
                        continue
                    seen = watcher.get(*key)
                    if seen is not None:
                        latencies[key] = seen["received"] - t
                if len(latencies) >= crossings:
                    break
                if time.monotonic() - last_depth >= 1.0:
                    last_depth = time.monotonic()
                    depth = c.queue_depth(s.measurement_queue)
                    if depth is not None:
                        depths.append(depth)
                    n = len(latencies)
                    if n:
                        c.progress(f"  {n}/{crossings} crossings, p50 so far "
                                   f"{c.fmt(c.percentile(list(latencies.values()), 50) * 1000)}"
                                   f" ms; queue depth {depth}")
                time.sleep(0.02)
            publisher.request_stop()
            loaded_stop.set()
            thread.join(15)
            rtt_thread.join(10)
        stats: c.PublishStats = outcome.get("stats") or c.PublishStats()
        elapsed = (stats.last_confirm or time.monotonic()) - (stats.first or started)
        achieved = stats.confirmed * SIZE / elapsed if elapsed > 0 else None
        crossing = summary(list(latencies.values()))
        baseline = summary(loaded_rtt.samples)
        result: dict[str, Any] = {
            "quick": args.quick,
            "figure": "publish of the message carrying the breaching sample (and closing "
                      "its window) → receipt of monitoring.crossing.raised on sla.events",
            "crossing": crossing,
            "crossingsPublished": len(probes), "crossingsReceived": len(latencies),
            "baseline": {"description": "raw pika round trip (persistent, confirmed publish "
                                        "→ delivery) of a 100-sample message to a temporary "
                                        "durable queue, during the same load",
                         **baseline, "idle": summary(idle)},
            "ratioP99ToRawRoundTripP99": c.ratio(crossing["p99Ms"], baseline["p99Ms"]),
            "ratioP50ToRawRoundTripP50": c.ratio(crossing["p50Ms"], baseline["p50Ms"]),
            "load": {"targetSamplesPerSecond": rate, "source": rate_source,
                     "achievedSamplesPerSecond": achieved, "messagesConfirmed": stats.confirmed,
                     "seconds": elapsed, "queueDepthMax": max(depths) if depths else None,
                     "queueDepthLast": depths[-1] if depths else None,
                     "publishError": stats.error},
            "cpuCoresUsed": cpu.result,
            "parameters": {**c.suite_parameters(s), "samplesPerMessage": SIZE,
                           "crossings": crossings, "probeIntervalSeconds": interval,
                           "timeLimitSeconds": time_limit},
            "goal": {"p99MsUnder": GOAL_P99_MS,
                     "met": crossing["p99Ms"] is not None and crossing["p99Ms"] < GOAL_P99_MS
                     and len(latencies) >= crossings},
        }
        if len(latencies) < crossings:
            result["incomplete"] = (f"{len(latencies)} of {crossings} crossings received "
                                    f"within the {time_limit:.0f} s limit")
        if not s.drain(30):
            result["purgedAfterRun"] = c.purge(s.measurement_queue)
        c.write_result(NAME, result)
    c.table("crossing latency under load vs raw pika round trip (ms)",
            ["", "count", "p50", "p99", "max"],
            [["crossing (suite)", crossing["count"], crossing["p50Ms"], crossing["p99Ms"],
              crossing["maxMs"]],
             ["raw round trip, same load", baseline["count"], baseline["p50Ms"],
              baseline["p99Ms"], baseline["maxMs"]],
             ["raw round trip, idle", len(idle), summary(idle)["p50Ms"],
              summary(idle)["p99Ms"], summary(idle)["maxMs"]]])
    c.progress(f"load achieved {c.fmt(achieved)} samples/s (target {c.fmt(rate)}); "
               f"p99 ratio to raw {c.fmt(result['ratioP99ToRawRoundTripP99'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
