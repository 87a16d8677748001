"""End-to-end measurement throughput of monitoring, against the raw pika ceiling.

For 1, 100 and 1,000 samples a message, on the same broker in the same run:

* baseline — the raw pika ceiling: the very same messages published (persistent, with
  publisher confirms) to a temporary durable queue and consumed with manual acks and the
  suite's prefetch in another process, with no processing;
* the suite — the messages published to ``measurements`` (``measurement.bench``) and
  timed from the first publish until the windows covering every sample are evaluated:
  a sentinel message puts a breaching sample into the last window and closes it, and the
  crossing monitoring raises for it (received on ``sla.events``) ends the clock.

The group's evaluations are read back afterwards to check no sample was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from bench import common as c

NAME = "monitoring_throughput"
SIZES = (1, 100, 1000)


def plan(quick: bool) -> dict[int, int]:
    """Messages per size: bounded in samples and in messages."""
    if quick:
        return {1: 500, 100: 100, 1000: 10}
    return {1: 10_000, 100: 2_000, 1000: 200}


def run_size(s: c.Suite, size: int, messages: int, time_limit: float,
             watcher: c.CrossingWatcher, profile: bool = False) -> dict[str, Any]:
    batch = s.throughput_batch(messages, size)
    c.progress(f"{size:>5} samples/message: {messages:,} messages, {batch.samples:,} samples "
               f"over {batch.windows} windows — raw pika ceiling …")
    raw = c.raw_ceiling(batch.bodies, size, time_limit)
    c.progress(f"      raw: {c.fmt(raw['samplesPerSecond'])} samples/s "
               f"({c.fmt(raw['messagesPerSecond'])} messages/s); now through monitoring …")

    s.check_alive()
    depth_before = c.queue_depth(s.measurement_queue)
    dead_before = c.queue_depth(s.measurement_queue + ".dead-letter") or 0
    publisher = c.ConfirmPublisher(c.MEASUREMENTS)
    items = [(c.ROUTING_KEY, b, None) for b in batch.bodies]
    items.append((c.ROUTING_KEY, batch.sentinel, "sentinel"))
    sent_at: dict[str, float] = {}
    deadline = time.monotonic() + time_limit
    profiler = (c.Profiler(s.pid("monitoring-worker"), f"monitoring-worker-{size}")
                if profile else contextlib.nullcontext())
    evaluator = next((name for name in s.processes if name.startswith("monitoring-evaluator")),
                     None)
    evaluator_profiler = (c.Profiler(s.pid(evaluator), f"monitoring-evaluator-{size}")
                          if profile and evaluator else contextlib.nullcontext())
    recorded_before = s.recorded_batches() if s.intakes > 1 else None
    with c.CpuMeter(s) as cpu, profiler, evaluator_profiler:
        on_sent = lambda tag, t: sent_at.__setitem__(tag, t) if tag else None  # noqa: E731
        if s.intakes == 1:
            stats = publisher.run(items, time_limit, on_sent=on_sent)
        else:
            # Several intakes record out of order: the sentinel goes once every batch is in.
            stats = publisher.run(items[:-1], time_limit, on_sent=on_sent)
            s.wait_recorded((recorded_before or 0) + messages,
                            max(1.0, deadline - time.monotonic()))
            last = c.ConfirmPublisher(c.MEASUREMENTS).run(items[-1:], time_limit,
                                                          on_sent=on_sent)
            stats.sent += last.sent
            stats.confirmed += last.confirmed
            stats.last_confirm = last.last_confirm or stats.last_confirm
        published_in = (stats.last_confirm - stats.first) if stats.last_confirm else None
        c.progress(f"      published {stats.confirmed:,} messages in "
                   f"{c.fmt(published_in)} s; waiting for the last window's evaluation …")
        done = None
        if "sentinel" in sent_at:
            # every regime's last window (one regime per evaluator partition)
            for po in batch.sentinel_pos or [batch.sentinel_po]:
                seen = watcher.wait(po, batch.sentinel_window,
                                    max(1.0, deadline - time.monotonic()))
                if seen is None:
                    done = None
                    break
                if done is None or seen["received"] > done["received"]:
                    done = seen
    result: dict[str, Any] = {
        "samplesPerMessage": size, "messages": messages, "samples": batch.samples,
        "windows": batch.windows, "publish": stats.as_dict(),
        "queueDepthBefore": depth_before, "cpuCoresUsed": cpu.result,
        # CPU time a sample costs each process: steadier than a rate when the machine is
        # shared (RabbitMQ's and PostgreSQL's count every client of theirs on the machine)
        "cpuMicrosecondsPerSample": {
            name: round(cores * cpu.elapsed / batch.samples * 1e6, 2)
            for name, cores in cpu.result.items()},
    }
    if profile:
        result["profileMonitoringWorker"] = profiler.summary
        if evaluator:
            result["profileMonitoringEvaluator"] = evaluator_profiler.summary
    if done is None:
        depth = c.queue_depth(s.measurement_queue)
        consumed = (stats.confirmed - depth) if depth is not None else None
        elapsed = time.monotonic() - (stats.first or time.monotonic())
        result.update({
            "incomplete": (f"the last window was not evaluated within the {time_limit:.0f} s "
                           f"limit" + (f" ({stats.error})" if stats.error else "")),
            "seconds": elapsed, "queueDepthAtLimit": depth,
            "messagesTakenFromQueue": consumed,
            "samplesPerSecondLowerBound": None,
        })
        c.progress(f"      [yellow]incomplete[/yellow]: {depth} messages still queued; "
                   f"purging the rest")
        result["purged"] = c.purge(s.measurement_queue)
        suite_rate = None
    else:
        seconds = done["received"] - stats.first
        suite_rate = batch.samples / seconds
        result.update({
            "seconds": seconds,
            "samplesPerSecond": suite_rate,
            "messagesPerSecond": messages / seconds,
            "crossingRaisedAt": done["raisedAt"],
            "sentinelLatency": done["received"] - sent_at["sentinel"],
        })
    result["deadLetters"] = (c.queue_depth(s.measurement_queue + ".dead-letter") or 0) - dead_before
    result["baseline"] = raw
    result["ratioToRawCeiling"] = c.ratio(suite_rate, raw.get("samplesPerSecond"))
    if done is not None:
        try:
            got = s.evaluated_samples(s.window_of(batch.first_time), batch.sentinel_window)
            # plus the sentinel's breaching sample of each regime
            expected = batch.samples + len(batch.sentinel_pos or [batch.sentinel_po])
            result["verification"] = {"expectedSamples": expected, **got,
                                      "nothingLost": got["samples"] == expected}
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            result["verification"] = {"error": f"{type(exc).__name__}: {exc}"}
    if not done and not s.drain(10):
        result["note"] = "the measurement queue was not empty after the run"
    c.progress(f"      suite: {c.fmt(suite_rate)} samples/s, "
               f"ratio {c.fmt(result['ratioToRawCeiling'])} of the raw ceiling")
    return result


def main(argv: list[str] | None = None) -> int:
    def extra(p: Any) -> None:
        p.add_argument("--time-limit", type=float, default=None,
                       help="seconds per message size for each of baseline and suite "
                            "(default 60, quick 20)")
        p.add_argument("--sizes", default=None,
                       help="samples a message to run, comma-separated (default 1,100,1000)")
        p.add_argument("--messages", type=int, default=None,
                       help="messages a size (default: 10,000 / 2,000 / 200; quick 500 / "
                            "100 / 10)")
        p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                       help="sample the monitoring worker with py-spy during the suite runs "
                            "(default: on, off with --quick)")

    args = c.arguments(__doc__.splitlines()[0], argv, extra)
    profile = (not args.quick) if args.profile is None else args.profile
    time_limit = args.time_limit or (20.0 if args.quick else 60.0)
    counts = plan(args.quick)
    sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else SIZES
    if args.messages:
        counts = {size: args.messages for size in sizes}
    with c.suite(args) as s, c.CrossingWatcher(s.regime_ids) as watcher:
        results = {}
        for size in sizes:
            results[str(size)] = run_size(s, size, counts[size], time_limit, watcher,
                                             profile)
        hundred = results.get("100", {})
        goal = {
            "samplesPerSecondAt100": 150_000, "ratioToRawCeilingAt100": 0.2,
            "metSamplesPerSecond": (hundred.get("samplesPerSecond") or 0) >= 150_000,
            "metRatio": (hundred.get("ratioToRawCeiling") or 0) >= 0.2,
        }
        incomplete = {k: v["incomplete"] for k, v in results.items() if "incomplete" in v}
        payload: dict[str, Any] = {
            "quick": args.quick,
            "figure": "samples/s from the first publish until the crossing event of the "
                      "last window is received (every window evaluated)",
            "baselineDescription": "raw pika ceiling: the same messages, persistent, "
                                   "publisher confirms (pipelined, up to 256 unconfirmed), "
                                   "durable classic queue, consumed with manual acks, "
                                   f"prefetch {c.SUITE_PREFETCH}, no processing, "
                                   "consumer in its own process",
            "parameters": {**c.suite_parameters(s), "messagesPerSize": counts,
                           "timeLimitSeconds": time_limit},
            "sizes": results, "goal": goal,
        }
        if incomplete:
            payload["incomplete"] = incomplete
        c.write_result(c.scaled_name(NAME, s), payload)
    rows = []
    for size in sizes:
        r = results[str(size)]
        rows.append([size, r["samples"], r.get("samplesPerSecond"), r.get("messagesPerSecond"),
                     r["baseline"].get("samplesPerSecond"), r["baseline"].get("messagesPerSecond"),
                     r.get("ratioToRawCeiling"),
                     (r.get("verification") or {}).get("nothingLost", "incomplete"
                                                       if "incomplete" in r else None)])
    c.table("monitoring throughput (end to end) vs raw pika ceiling",
            ["samples/msg", "samples", "suite samples/s", "suite msgs/s", "raw samples/s",
             "raw msgs/s", "ratio", "nothing lost"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
