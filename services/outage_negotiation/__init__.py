"""Planned outages: what they affect, the rules a change manager expects, and the clock
that starts and completes them (README: outage-negotiation; its place in the suite:
docs/architecture.md; the guide: docs/planned-outages.md)."""

from shared.config import SERVICES

#: The service's API root: its resources' ``href``s are under it.
ROOT = str(SERVICES["outage-negotiation"]["root"])
