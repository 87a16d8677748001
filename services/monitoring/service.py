"""monitoring as the runtime sees it: application, API, bus wiring, background loops."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from services.monitoring import api, messaging, resources
from services.monitoring.application import Monitoring
from services.monitoring.clock import Ticker
from services.monitoring.domain import BurnAlert, Crossing
from services.monitoring.evaluator import Evaluator
from shared.bus.topology import QueueSpec
from shared.service import ServiceSpec


def background(runtime: Any) -> dict[str, Any]:
    """The measurement intake (batched consumer) and the evaluator, as two roles that can
    run in one worker process or in two (``slactl worker monitoring --only evaluator``)."""
    prefix = runtime.settings.queue_prefix
    queue = QueueSpec(name=f"{prefix}monitoring.measurements",
                      bindings=messaging.MEASUREMENT_BINDINGS)
    runtime.transport.declare([queue])
    consumer = messaging.MeasurementConsumer(runtime.app, runtime.transport, queue,
                                             max_deliveries=runtime.settings.max_deliveries)
    partitions = runtime.settings.evaluator_partitions
    evaluators = [Evaluator(runtime.app, i, partitions,
                            checkpoint_seconds=runtime.settings.checkpoint_seconds)
                  for i in range(partitions)]
    tickers = [Ticker(runtime.app, i, partitions) for i in range(partitions)]
    runtime.evaluators, runtime.tickers = evaluators, tickers
    for e, t in zip(evaluators, tickers, strict=True):
        runtime.health[f"evaluator-{e.partition}"] = lambda e=e: e.last_error
        runtime.health[f"clock-{e.partition}"] = lambda t=t: t.last_error
    roles = {"intake": consumer.run}
    if partitions == 1:
        roles["evaluator"] = with_clock(evaluators[0], tickers[0])
    else:
        roles.update({f"evaluator-{e.index}": with_clock(e, t)
                      for e, t in zip(evaluators, tickers, strict=True)})
    return roles


def with_clock(evaluator: Evaluator, ticker: Ticker) -> Callable[[threading.Event], None]:
    """The evaluator role runs its partition's clock beside it (embedded or distributed)."""
    def run(stop: threading.Event) -> None:
        thread = threading.Thread(target=ticker.run, args=(stop,), daemon=True,
                                  name=f"monitoring-clock-{evaluator.partition}")
        thread.start()
        try:
            evaluator.run(stop)
        finally:
            thread.join(5)

    return run


SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=Monitoring,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    published=(Crossing, BurnAlert),
    represent=resources.represent,
    background=background,
    # Intake and evaluation each get a process (and so a core of their own).
    worker_processes=("relay,inbox,intake", "evaluator"),
    title="SLA Support Suite — monitoring",
    description="Proactive monitoring regimes over groups of purchased product offerings: "
                "measurements in, windows evaluated against the threshold standards in force, "
                "warnings, breaches, clears and error-budget burn alerts out.",
)
