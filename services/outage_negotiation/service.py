"""The outage-negotiation service as the runtime sees it: its settings, how its
application is built, its API, bus wiring and the clock role that starts and completes
agreed outages."""

from __future__ import annotations

from services.outage_negotiation import api, messaging, schemas, worker
from services.outage_negotiation.application import OutageNegotiation
from services.outage_negotiation.domain import PlannedOutage
from services.outage_negotiation.settings import OutageSettings
from shared.service import ServiceSpec, Wiring


def build(wiring: Wiring) -> OutageNegotiation:
    """The application on the service's store, with its own settings (overlap policy,
    caps), the suite's key (from which customers' response links are signed) and the
    clock it is given (by default the wall clock)."""
    return OutageNegotiation(wiring.store_env, settings=wiring.settings, clock=wiring.clock,
                             server_key=wiring.platform.secret_key)


SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=OutageNegotiation,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    published=(PlannedOutage,),
    represent=schemas.represent,
    settings=OutageSettings.from_env,
    build=build,
    background=worker.background,
    title="SLA Support Suite — outage-negotiation",
    description="Planned outages: what they affect (resolved from the inventory when "
                "proposed), the windows proposed and agreed under the SLA types' minimum "
                "notice, customers' blackout periods, overlaps and caps, started and "
                "completed by the clock, and published to monitoring and notification.",
)
