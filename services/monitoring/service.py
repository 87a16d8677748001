"""monitoring as the runtime sees it: its settings, how its application is built, its API,
bus wiring and background roles."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from services.monitoring import api, messaging, schemas
from services.monitoring.application import Monitoring
from services.monitoring.clock import Ticker
from services.monitoring.domain import BurnAlert, Crossing, EvaluatedWindow, Regime
from services.monitoring.evaluator import Evaluator
from services.monitoring.settings import MonitoringSettings
from shared.bus.topology import QueueSpec
from shared.service import PublishedLog, Role, ServiceSpec, Wiring


def build(wiring: Wiring) -> Monitoring:
    """The application on the service's store, the shared cache (the resolved routes,
    watermarks and clocks every monitoring process reads) and the clock it is given."""
    settings: MonitoringSettings = wiring.settings
    return Monitoring(wiring.store_env, clock=wiring.clock or time.time, cache=wiring.cache,
                      evaluations_kept=settings.evaluations_kept)


def background(app: Monitoring, wiring: Wiring) -> dict[str, Role]:
    """The measurement intake (batched consumer) and the evaluator(s), as roles that can
    run in one worker process or in several (``slactl worker monitoring --only evaluator``;
    with ``SLA_EVALUATOR_PARTITIONS`` N, roles ``evaluator-0`` … ``evaluator-N-1``)."""
    settings: MonitoringSettings = wiring.settings
    queue = QueueSpec(name="monitoring.measurements",
                      bindings=messaging.MEASUREMENT_BINDINGS)
    wiring.transport.declare([queue])
    consumer = messaging.MeasurementConsumer(app, wiring.transport, queue,
                                             max_deliveries=wiring.platform.max_deliveries)
    roles = {"intake": Role(consumer.run, lambda: consumer.last_error)}
    partitions = settings.evaluator_partitions
    for index in range(partitions):
        evaluator = Evaluator(app, index, partitions,
                              checkpoint_seconds=settings.checkpoint_seconds,
                              poll_interval=settings.evaluator_poll_interval,
                              wake=app.recorded if wiring.platform.wake_on_events else None)
        ticker = Ticker(app, index, partitions)
        role = "evaluator" if partitions == 1 else f"evaluator-{index}"
        # The role is failing when its evaluator or its partition's clock keeps failing.
        roles[role] = Role(with_clock(evaluator, ticker),
                           lambda e=evaluator, t=ticker: e.last_error or t.last_error)
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
    # A closed window goes out as a summary per series (what analysis aggregates).
    published=(Crossing, BurnAlert, EvaluatedWindow),
    # The regimes live in the main log: their changes go out from there, so the registry
    # can refuse to retire a group a regime still watches.
    also_published=(PublishedLog("regimes", store=lambda app: app,
                                 describe=messaging.regime_describer, published=(Regime,)),),
    represent=schemas.represent,
    settings=MonitoringSettings.from_env,
    build=build,
    background=background,
    # Intake and evaluation each get a process (and so a core of their own).
    worker_processes=("relay,inbox,intake", "evaluator"),
    title="SLA Support Suite — monitoring",
    description="Proactive monitoring regimes over groups of purchased product offerings: "
                "measurements in, windows evaluated against the threshold standards in force, "
                "warnings, breaches, clears and error-budget burn alerts out.",
)
