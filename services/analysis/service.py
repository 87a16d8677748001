"""The analysis service as the runtime sees it: its application, API and bus wiring
(window summaries and the registry's resources in; nothing published yet)."""

from __future__ import annotations

from services.analysis import api, messaging, schemas
from services.analysis.application import Analysis
from services.analysis.domain import Replica
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=Analysis,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    # Nothing is published yet: the relay is given the replicas' few topics to scan, so
    # it never reads the summaries (a million of them, after a backfill).
    published=(Replica,),
    represent=schemas.represent,
    title="SLA Support Suite — analysis",
    description="Aggregate analysis across customers, customer groups, offering groups, "
                "offerings and SLA types, from the window summaries monitoring publishes: "
                "availability pooled by time, the share of purchased offerings meeting "
                "their target, breaches, percentiles and the SLA credit exposure.",
)
