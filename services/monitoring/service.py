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
    queue = QueueSpec(name="monitoring.measurements",
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
    roles = {"intake": consumer.run}
    runtime.health["intake"] = lambda: consumer.last_error
    for e, t in zip(evaluators, tickers, strict=True):
        role = "evaluator" if partitions == 1 else f"evaluator-{e.index}"
        roles[role] = with_clock(e, t)
        # The role is failing when its evaluator or its partition's clock keeps failing.
        runtime.health[role] = lambda e=e, t=t: e.last_error or t.last_error
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
