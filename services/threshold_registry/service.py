"""The threshold-registry as the runtime sees it: its application, API, bus wiring."""

from __future__ import annotations

from services.threshold_registry import api, messaging, schemas
from services.threshold_registry.application import ThresholdRegistry
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=ThresholdRegistry,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    represent=schemas.represent,
    title="SLA Support Suite — threshold-registry",
    description="Product offerings and their groups, SLA types and their commercial terms, "
                "versioned and approved threshold standards (TMF657), and the product "
                "offering inventory (TMF637) with the analysis results logged on it.",
)
