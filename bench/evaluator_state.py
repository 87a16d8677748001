"""``python -m bench.evaluator_state``: the evaluator's error-budget state per series, the
size of a checkpoint of 100,000 series with 30-day budgets, and whether saving that
checkpoint on PostgreSQL holds up the intake.

* **State per series**: 100,000 ``BudgetLedger`` s (30-day period, a month of one-minute
  windows each — built from a dozen fed histories, each copy then fed its own last five
  minutes), as the evaluator holds them (``State.ledgers``, keys included): bytes a series
  measured with ``tracemalloc`` over 2,000 more built the same way. Baseline, same run: the
  one-bucket-a-minute ledger the evaluator kept before (``MinuteLedger``), fed the same
  month, measured the same way on a few series (100,000 would need hundreds of gigabytes).
* **Checkpoint**: the evaluator's own ``save_state_parts`` of that state on PostgreSQL — the
  compressed bytes and the parts written. Baseline: the JSON the old inline checkpoint
  carried per series, times 100,000. A worst case is reported too: ledgers whose every cell
  is random (nothing to compress).
* **Intake while checkpointing**: a separate process (as in distributed mode) checks and
  records 100-sample batches into the same PostgreSQL database as fast as it can, first
  alone (the baseline), then while the checkpoint is saved; the same again with the intake
  as a thread of the checkpointing process (embedded mode, one GIL). Figures: batch latency
  p50 / p99 / max and batches/s in both phases, and the ratio.

Writes ``bench/results/evaluator_state.json`` (``--quick``: ``.quick.json``, 10,000 series).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import random
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import common
from services.monitoring.budget_ledger import BudgetLedger, MinuteLedger
from services.monitoring.budgets import remaining_budget
from services.monitoring.burn_rates import burn_alerts

MONTH = 30 * 86400
PERIOD_START = (1_764_547_200 // MONTH) * MONTH
GROUP = "7a1c1d50-0000-4000-8000-000000000001"
OFFERING = "7a1c1d50-0000-4000-8000-000000000002"


# --- the state ------------------------------------------------------------------------------
def history(ledger: Any, rng: random.Random, minutes: int) -> float:
    """A month of one-minute availability windows: mostly up, a few incidents of a few
    minutes to an hour, the odd partial minute; queried as the evaluator queries (every
    window for the compact ledger would be slow here: every 15 minutes)."""
    t = float(PERIOD_START)
    incident = 0
    for n in range(minutes):
        if incident == 0 and rng.random() < 1 / 2000:
            incident = rng.randint(2, 60)
        if incident:
            bad = rng.uniform(20, 60)
            incident -= 1
        else:
            bad = rng.uniform(0.5, 5) if rng.random() < 0.01 else 0.0
        ledger.add(t, t + 60, 60.0, bad)
        t += 60
        if n % 15 == 0 and isinstance(ledger, BudgetLedger):
            remaining_budget(ledger, PERIOD_START, t, 0.999, MONTH)
            burn_alerts(ledger, t, 0.999, MONTH)
    return t


def measured(build: Any) -> tuple[Any, int]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    value = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return value, after - before


def compact_state(series: int, templates: int, traced: int, rng: random.Random
                  ) -> tuple[dict, float]:
    """``series`` ledgers as the evaluator holds them, and the bytes a series measured with
    tracemalloc over ``traced`` more built the same way (tracing all would take hours)."""
    minutes = 30 * 24 * 60 - 5
    fed = []
    for _ in range(templates):
        ledger = BudgetLedger(60, MONTH)
        end = history(ledger, rng, minutes)
        fed.append(ledger.to_dict())

    def build(count: int) -> dict[str, BudgetLedger]:
        ledgers = {}
        for n in range(count):
            ledger = BudgetLedger.from_dict(fed[n % templates])
            t = end
            for _ in range(5):  # its own last minutes
                ledger.add(t, t + 60, 60.0, rng.uniform(0, 60) if rng.random() < 0.2 else 0.0)
                t += 60
            ledgers[f"{uuid.uuid4()}|availability|purchasedOffering|po-{n:06d}"] = ledger
        return ledgers

    _, nbytes = measured(lambda: build(traced))
    return build(series), nbytes / traced


def baseline_state(series: int, rng: random.Random) -> tuple[int, int]:
    """(bytes in memory, bytes of the old inline checkpoint's JSON) of ``series`` minute
    ledgers fed a month."""
    def build() -> dict[str, MinuteLedger]:
        ledgers = {}
        for n in range(series):
            ledger = MinuteLedger(60, MONTH)
            history(ledger, rng, 30 * 24 * 60)
            ledgers[f"{uuid.uuid4()}|availability|purchasedOffering|po-{n:06d}"] = ledger
        return ledgers

    ledgers, nbytes = measured(build)
    encoded = len(json.dumps({k: v.to_dict() for k, v in ledgers.items()}))
    return nbytes, encoded


def worst_case_ledger_bytes(rng: random.Random) -> int:
    """Checkpoint bytes of one ledger whose every cell is random (incompressible)."""
    ledger = BudgetLedger(60, MONTH)
    ledger.add(PERIOD_START, PERIOD_START + 60, 60, 1)
    for i in range(len(ledger._e)):  # noqa: SLF001 - a deliberately incompressible ledger
        ledger._e[i] = rng.uniform(0, 60)  # noqa: SLF001
        ledger._b[i] = rng.uniform(0, 60)  # noqa: SLF001
    return len(json.dumps(ledger.to_dict()))


# --- PostgreSQL ------------------------------------------------------------------------------
def store_env(prefix: str) -> dict[str, str]:
    from shared import config
    from shared.store import ensure_schema

    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **common.PG,
           "SLA_SCHEMA_PREFIX": prefix, "SLA_DATA_DIR": str(common.LOGS / f"state-{prefix}"),
           "SLA_SECRET_KEY": "bench-" + "x" * 40, "SLA_LOG_LEVEL": "WARNING"}
    settings = config.load(env)
    store = settings.store_env("monitoring")
    ensure_schema(store)
    return dict(store)


def estate(app: Any, offerings: int) -> list[str]:
    """One offering of a group, a latency standard, ``offerings`` purchased offerings and a
    regime: enough for the intake to accept samples."""
    products = [f"po-{n:04d}" for n in range(offerings)]
    version = {"version": 1, "lifecycleStatus": "approved", "name": "Latency",
               "description": None, "basis": "internallyAcceptable", "slaTypeId": None,
               "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
               "parameters": [{"name": "latency", "unit": "ms", "kind": "technical",
                               "aggregation": "p99", "comparator": "LE",
                               "conformanceTarget": 100, "thresholdTarget": 80,
                               "conformancePeriod": None, "evaluationWindow": "PT1M",
                               "graceTimes": 0}],
               "createdAt": "2026-01-01T00:00:00Z", "approvedAt": "2026-01-01T00:00:00Z",
               "approvedBy": "bench", "retiredAt": None, "changeReason": None}
    standard = str(uuid.uuid4())
    app.receive_replica("productOffering", OFFERING, {
        "id": OFFERING, "offeringGroupId": GROUP, "lifecycleStatus": "active", "version": 1}, 1)
    app.receive_replica("thresholdStandard", standard, {
        "id": standard, "offeringGroupId": GROUP, "productOfferingId": None,
        "versions": [version], "version": 2}, 2)
    for product in products:
        app.receive_replica("purchasedOffering", product, {
            "id": product, "customerId": "c", "productOfferingId": OFFERING, "slaTypeId": None,
            "customerGroup": None, "status": "active", "version": 1}, 1)
    app.start_regime(name="bench", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                     sla_type_id=None, customer_group=None, parameters=["latency"],
                     window="PT1M", allowed_lateness="PT5M", clear_after=1)
    return products


def intake_loop(env: dict[str, str], products: list[str], seconds: float, tag: str,
                out: Any, stop: Any = None) -> None:
    """Check and record 100-sample batches for ``seconds``; put (wall time, latency) pairs
    on ``out``. Runs in a process of its own or in a thread."""
    from services.monitoring.application import Monitoring

    app = Monitoring(env)
    rng = random.Random(tag)
    timings: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            now = time.time()
            stamp = datetime.fromtimestamp(now - 1, UTC).isoformat().replace("+00:00", "Z")
            samples = [{"purchasedOfferingId": products[(n * 100 + i) % len(products)],
                        "parameter": "latency", "value": rng.uniform(10, 90),
                        "observedAt": stamp} for i in range(100)]
            t0 = time.perf_counter()
            checked = app.check_batch(samples)
            app.record_batches([(f"{tag}-{n}", "bench", checked)])
            timings.append((now, time.perf_counter() - t0))
            n += 1
    finally:
        app.close()
        out.put(timings)


def phase_figures(timings: list[tuple[float, float]], start: float, end: float
                  ) -> dict[str, Any]:
    inside = [latency for at, latency in timings if start <= at < end]
    span = end - start
    return {"batches": len(inside), "batchesPerSecond": len(inside) / span if span else None,
            "p50Ms": _ms(common.percentile(inside, 50)),
            "p99Ms": _ms(common.percentile(inside, 99)),
            "maxMs": _ms(max(inside) if inside else None), "seconds": round(span, 2)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def checkpoint_under_intake(evaluator: Any, env: dict[str, str], products: list[str],
                            embedded: bool, alone_seconds: float, limit: float
                            ) -> dict[str, Any]:
    """Intake alone for ``alone_seconds``, then a checkpoint save while it goes on."""
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue() if not embedded else __import__("queue").Queue()
    stop = threading.Event() if embedded else ctx.Event()
    tag = f"{'thread' if embedded else 'process'}-{uuid.uuid4().hex[:6]}"
    args = (env, products, alone_seconds + limit, tag, out, stop)
    worker: Any = (threading.Thread(target=intake_loop, args=args, daemon=True) if embedded
                   else ctx.Process(target=intake_loop, args=args, daemon=True))
    worker.start()
    # the intake's first batches pay for connections and the working set: let it settle
    time.sleep(3.0)
    alone_from = time.time()
    time.sleep(alone_seconds)
    alone_to = saving_from = time.time()
    evaluator.position += 1
    started = time.perf_counter()
    evaluator.checkpoint()
    save_seconds = time.perf_counter() - started
    saving_to = time.time()
    time.sleep(0.5)
    stop.set()
    timings = out.get(timeout=limit + alone_seconds + 60)
    worker.join(timeout=30)
    alone = phase_figures(timings, alone_from, alone_to)
    saving = phase_figures(timings, saving_from, saving_to)
    return {"mode": "embedded (intake thread, one process)" if embedded
            else "distributed (intake in its own process)",
            "checkpointSaveSeconds": round(save_seconds, 2),
            "intakeAlone": alone, "intakeDuringCheckpoint": saving,
            "p99Ratio": common.ratio(saving["p99Ms"], alone["p99Ms"]),
            "throughputRatio": common.ratio(saving["batchesPerSecond"],
                                            alone["batchesPerSecond"])}


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 series, shorter phases")
    parser.add_argument("--series", type=int, default=None,
                        help="series in the state (default 100,000; quick 10,000)")
    parser.add_argument("--templates", type=int, default=None,
                        help="fed month-long histories the series are made from (default 12)")
    parser.add_argument("--baseline-series", type=int, default=3)
    args = parser.parse_args(argv)
    series = args.series or (10_000 if args.quick else 100_000)
    templates = args.templates or (4 if args.quick else 12)
    rng = random.Random(20261201)
    from services.monitoring.application import Monitoring
    from services.monitoring.evaluator import CHECKPOINT_PART_BYTES, Evaluator, State

    common.progress(f"feeding {templates} month-long compact ledgers and "
                    f"{args.baseline_series} minute ledgers")
    t0 = time.perf_counter()
    ledgers, per_series = compact_state(series, templates, min(series, 2000), rng)
    build_seconds = time.perf_counter() - t0
    base_bytes, base_json = baseline_state(args.baseline_series, rng)
    base_per_series = base_bytes / args.baseline_series
    base_json_per_series = base_json / args.baseline_series
    common.progress(f"{series:,} compact ledgers in {build_seconds:.0f} s: "
                    f"{per_series:,.0f} B a series (baseline {base_per_series:,.0f} B)")

    prefix = f"bstate{uuid.uuid4().hex[:8]}_"
    result: dict[str, Any] = {"quick": args.quick}
    try:
        env = store_env(prefix)
        app = Monitoring(env)
        products = estate(app, 100)
        evaluator = Evaluator(app)
        state = State()
        state.ledgers = ledgers
        evaluator.state = state
        raw = len(json.dumps(state.to_dict()))
        evaluator.position = 1
        t0 = time.perf_counter()
        evaluator.checkpoint()
        first_save = time.perf_counter() - t0
        manifest = app.outcomes.repository.get(evaluator._checkpoint_id()).state  # noqa: SLF001
        t0 = time.perf_counter()
        reloaded = Evaluator(app)
        reloaded.recover()
        load_seconds = time.perf_counter() - t0
        same = len(reloaded.state.ledgers) == series and all(
            reloaded.state.ledgers[k].to_dict() == v.to_dict()
            for k, v in list(ledgers.items())[:: max(1, series // 500)])
        del reloaded
        common.progress(f"checkpoint: {manifest['bytes']:,} B in {manifest['parts']} parts, "
                        f"saved in {first_save:.1f} s, reloaded in {load_seconds:.1f} s")
        limit = 60.0 if args.quick else 180.0
        alone = 5.0 if args.quick else 10.0
        blocking = []
        for embedded in (False, True):
            common.progress("intake alone, then during a checkpoint save ("
                            + ("embedded" if embedded else "distributed") + ")")
            blocking.append(checkpoint_under_intake(evaluator, env, products, embedded,
                                                    alone, limit))
        app.close()
        worst = worst_case_ledger_bytes(rng)
        result.update({
            "bytesPerSeries": round(per_series, 1),
            "checkpointBytes": manifest["bytes"],
            "series": series,
            "period": "P30D",
            "goalBytesPerSeries": 2048,
            "withinGoal": per_series <= 2048,
            "ledgerNbytes": next(iter(ledgers.values())).nbytes(),
            "checkpoint": {
                "parts": manifest["parts"], "partBytes": CHECKPOINT_PART_BYTES,
                "uncompressedJsonBytes": raw, "firstSaveSeconds": round(first_save, 2),
                "reloadSeconds": round(load_seconds, 2), "reloadedEqual": same,
                "worstCaseBytes": worst * series,
                "worstCaseNote": "every ledger cell random (nothing to compress), "
                                 "per-ledger JSON x series",
            },
            "baseline": {
                "what": "the one-bucket-a-minute ledger (MinuteLedger) and the inline JSON "
                        "checkpoint, same history, measured on "
                        f"{args.baseline_series} series and scaled to {series:,}",
                "bytesPerSeries": round(base_per_series, 1),
                "checkpointBytes": round(base_json_per_series * series),
                "checkpointBytesPerSeries": round(base_json_per_series),
            },
            "ratio": {
                "bytesPerSeries": common.ratio(per_series, base_per_series),
                "checkpointBytes": common.ratio(manifest["bytes"], base_json_per_series * series),
            },
            "intakeWhileCheckpointing": blocking,
            "buildSeconds": round(build_seconds, 1),
        })
    finally:
        with contextlib.suppress(Exception):
            common.drop_schemas(prefix)
    common.table("evaluator state", ["figure", "compact", "baseline", "ratio"], [
        ["bytes a series", result["bytesPerSeries"], result["baseline"]["bytesPerSeries"],
         result["ratio"]["bytesPerSeries"]],
        [f"checkpoint bytes, {series:,} series", result["checkpointBytes"],
         result["baseline"]["checkpointBytes"], result["ratio"]["checkpointBytes"]],
    ])
    common.table("intake during a checkpoint save", ["mode", "save s", "p99 alone ms",
                                                     "p99 during ms", "p99 ratio",
                                                     "throughput ratio"], [
        [b["mode"], b["checkpointSaveSeconds"], b["intakeAlone"]["p99Ms"],
         b["intakeDuringCheckpoint"]["p99Ms"], b["p99Ratio"], b["throughputRatio"]]
        for b in result["intakeWhileCheckpointing"]])
    common.write_result("evaluator_state", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
