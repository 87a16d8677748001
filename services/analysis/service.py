"""The analysis service as the runtime sees it: its settings, how its application is
built, its API, bus wiring (window summaries, the registry's resources and customer-level
violations in; SLA credits out to billing, the offering-wide problems out) and the clock
role that runs its due work (the credits' period closes, the problems' resolution)."""

from __future__ import annotations

from services.analysis import api, messaging, schemas, worker
from services.analysis.application import Analysis
from services.analysis.domain import Replica, ServiceProblem, SlaCredit
from services.analysis.settings import AnalysisSettings
from services.analysis.trend_runs import TrendRun
from shared.service import ServiceSpec, Wiring


def build(wiring: Wiring) -> Analysis:
    """The application on the service's store, with its own settings and the clock it is
    given (by default the wall clock)."""
    return Analysis(wiring.store_env, settings=wiring.settings, clock=wiring.clock)

SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=Analysis,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    # What is published: the credits, trend runs' results and the problems' changes. The
    # relay is given their topics (and the replicas'), so it never reads the summaries (a
    # million of them, after a backfill) or the violations.
    published=(Replica, SlaCredit, TrendRun, ServiceProblem),
    represent=schemas.represent,
    settings=AnalysisSettings.from_env,
    build=build,
    background=worker.background,
    title="SLA Support Suite — analysis",
    description="Aggregate analysis across customers, customer groups, offering groups, "
                "offerings and SLA types, from the window summaries monitoring publishes: "
                "availability pooled by time, the share of purchased offerings meeting "
                "their target, breaches, percentiles and the SLA credit exposure; the SLA "
                "credits of each closed conformance period, published to billing.",
)
