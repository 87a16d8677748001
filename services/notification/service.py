"""The notification service as the runtime sees it: its application, API, bus wiring,
and the worker loops that schedule and hand over messages."""

from __future__ import annotations

from services.notification import api, messaging, resources, worker
from services.notification.application import NotificationService
from services.notification.domain import Delivery, Incident
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name=messaging.SERVICE,
    application=NotificationService,
    blueprint=api.blueprint,
    describe=messaging.describer,
    bindings=messaging.BINDINGS,
    handlers=messaging.handlers,
    published=(Delivery, Incident),
    represent=resources.represent,
    background=worker.background,
    title="SLA Support Suite — notification",
    description="Notification lists and TMF hub subscriptions; monitoring alerts turned "
                "into grouped, inhibited or suppressed messages, delivered by e-mail and "
                "signed webhooks with retries, escalation tiers and acknowledgement, and "
                "the delivery history.",
)
