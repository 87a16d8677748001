"""What the registry knows of resources other services own: monitoring's regimes.

The registry refuses to retire an offering group that is still used. Offerings and
standards are its own; regimes are monitoring's, so the registry keeps a small replica of
each one from ``MonitoringRegimeChangeEvent`` (which group or offering it watches, its
status), in its own log, without asking monitoring anything at request time.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.ids import stable_id


class MonitoringRegimeReplica(Aggregate):
    """The newest state the registry has heard of one monitoring regime.

    Messages may come twice or out of order: the inbox drops repeats, and a state whose
    version is not above the one kept is ignored, so the replica ends at the highest
    version whatever the order."""

    @staticmethod
    def create_id(regime_id: str) -> UUID:
        return stable_id("threshold-registry", "monitoring-regime", regime_id)

    @event("Received")
    def __init__(self, regime_id: str, name: str, offering_group_id: str | None,
                 offering_id: str | None, status: str, source_version: int) -> None:
        self.regime_id = regime_id
        self.name = name
        self.offering_group_id = offering_group_id
        self.offering_id = offering_id
        self.status = status
        self.source_version = source_version

    @property
    def watching(self) -> bool:
        """A stopped regime watches nothing any more (and never starts again)."""
        return self.status != "stopped"

    def receive(self, name: str, offering_group_id: str | None, offering_id: str | None,
                status: str, source_version: int) -> bool:
        """Keep a newer state; an older or equal one (late, replayed) changes nothing."""
        if source_version <= self.source_version:
            return False
        self._updated(name=name, offering_group_id=offering_group_id,
                      offering_id=offering_id, status=status, source_version=source_version)
        return True

    @event("Updated")
    def _updated(self, name: str, offering_group_id: str | None, offering_id: str | None,
                 status: str, source_version: int) -> None:
        self.name = name
        self.offering_group_id = offering_group_id
        self.offering_id = offering_id
        self.status = status
        self.source_version = source_version


def fields_of(regime: dict[str, Any]) -> dict[str, Any]:
    """The replica's fields from the regime a ``MonitoringRegimeChangeEvent`` carries."""
    def ref(key: str) -> str | None:
        value = regime.get(key)
        return None if value is None else str(value)

    return {"name": str(regime["name"]), "offering_group_id": ref("offeringGroupId"),
            "offering_id": ref("productOfferingId"), "status": str(regime["status"]),
            "source_version": int(regime["version"])}
