"""monitoring as the runtime sees it: application, API, bus wiring, background loops."""

from __future__ import annotations

from typing import Any

from services.monitoring import api, messaging, resources
from services.monitoring.application import Monitoring
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
    consumer = messaging.MeasurementConsumer(runtime.app, runtime.transport, queue)
    partitions = runtime.settings.evaluator_partitions
    evaluators = [Evaluator(runtime.app, i, partitions,
                            checkpoint_seconds=runtime.settings.checkpoint_seconds)
                  for i in range(partitions)]
    runtime.evaluators = evaluators
    for e in evaluators:
        runtime.health[f"evaluator-{e.partition}"] = lambda e=e: e.last_error
    roles = {"intake": consumer.run}
    if partitions == 1:
        roles["evaluator"] = evaluators[0].run
    else:
        roles.update({f"evaluator-{e.index}": e.run for e in evaluators})
    return roles


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
