"""The notification service as the runtime sees it: its settings, how its application is
built, its API, bus wiring, and the worker roles that schedule and hand over messages."""

from __future__ import annotations

from services.notification import api, messaging, schemas, worker
from services.notification.application import NotificationService
from services.notification.delivery import NotificationConfig
from services.notification.domain import Delivery, Incident
from shared.service import ServiceSpec, Wiring


def build(wiring: Wiring) -> NotificationService:
    """The application on the service's store, with its own settings (SMTP, webhooks,
    retries, links), the suite's key (from which webhook secrets and acknowledgement links
    are derived), the clock and the senders it is given (by default the wall clock, and
    the e-mail and webhook senders its settings make)."""
    return NotificationService(wiring.store_env, config=wiring.settings,
                               server_key=wiring.platform.secret_key, clock=wiring.clock,
                               senders=wiring.senders or None)


SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=NotificationService,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    published=(Delivery, Incident),
    represent=schemas.represent,
    settings=NotificationConfig.from_env,
    build=build,
    background=worker.background,
    title="SLA Support Suite — notification",
    description="Notification lists and TMF hub subscriptions; monitoring alerts turned "
                "into grouped, inhibited or suppressed messages, delivered by e-mail and "
                "signed webhooks with retries, escalation tiers and acknowledgement, and "
                "the delivery history.",
)
