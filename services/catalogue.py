"""The services of the suite, by name: the composition root's one list."""

from __future__ import annotations

import importlib

from shared.service import ServiceSpec

SERVICE_MODULES = {
    "threshold-registry": "services.threshold_registry.service",
    "notification": "services.notification.service",
    "monitoring": "services.monitoring.service",
    "analysis": "services.analysis.service",
    "outage-negotiation": "services.outage_negotiation.service",
}


def spec(name: str) -> ServiceSpec:
    try:
        module = SERVICE_MODULES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICE_MODULES)}") from None
    return importlib.import_module(module).SPEC


def all_specs() -> list[ServiceSpec]:
    return [spec(name) for name in SERVICE_MODULES]
