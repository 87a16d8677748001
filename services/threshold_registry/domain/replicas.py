"""What the registry knows of resources other services own: monitoring's regimes.

The registry refuses to retire an offering group that is still used. Offerings and
standards are its own; regimes are monitoring's, so the registry keeps a replica of each
one from ``MonitoringRegimeChangeEvent`` (which group or offering it watches, its status)
with the replica kit (``shared.replica``), in its own log, without asking monitoring
anything at request time.

An earlier release kept regimes in an aggregate of their own, ``MonitoringRegimeReplica``
(recorded under ``services.threshold_registry.replicas``): it stays, registered at its
first topic, so logs written then still load, and a regime it holds is read where it is
newer than the kit's replica (``known``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic, register_topic

from shared import replica
from shared.ids import stable_id

#: The kind of replica a monitoring regime is kept as.
REGIME = "monitoringRegime"


class Replica(replica.Replica):
    """The registry's copy of a resource another service owns (a monitoring regime: its
    name, the group or offering it watches, its status, in their wire names), kept by
    ``shared.replica`` (newer versions only, in any order)."""

    namespace = "threshold-registry"


class MonitoringRegimeReplica(Aggregate):
    """A monitoring regime as an earlier release kept it (before the replica kit); read
    where no newer state of the regime reached a ``Replica``."""

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

    @event("Updated")
    def _updated(self, name: str, offering_group_id: str | None, offering_id: str | None,
                 status: str, source_version: int) -> None:
        self.name = name
        self.offering_group_id = offering_group_id
        self.offering_id = offering_id
        self.status = status
        self.source_version = source_version


#: Where the earlier release's regime replica was recorded: its events (``…Received``,
#: ``…Updated``) and snapshots resolve through this topic.
LEGACY_REPLICA_TOPIC = "services.threshold_registry.replicas:MonitoringRegimeReplica"
if get_topic(MonitoringRegimeReplica) != LEGACY_REPLICA_TOPIC:
    register_topic(LEGACY_REPLICA_TOPIC, MonitoringRegimeReplica)


def regime_facts(regime: dict[str, Any], _: Any = None) -> dict[str, Any]:
    """What the registry keeps of a regime that ``MonitoringRegimeChangeEvent`` carries."""
    return {key: regime.get(key)
            for key in ("name", "offeringGroupId", "productOfferingId", "status")}


@dataclass(frozen=True)
class KnownRegime:
    """A monitoring regime as the registry last heard of it, whichever aggregate keeps it."""

    regime_id: str
    name: str
    offering_group_id: str | None
    offering_id: str | None
    status: str
    source_version: int

    @property
    def watching(self) -> bool:
        """A stopped regime watches nothing any more (and never starts again)."""
        return self.status != "stopped"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def known(kept: Replica | MonitoringRegimeReplica) -> KnownRegime:
    """The regime a replica (the kit's, or the earlier release's) keeps."""
    if isinstance(kept, MonitoringRegimeReplica):
        return KnownRegime(kept.regime_id, kept.name, kept.offering_group_id,
                           kept.offering_id, kept.status, kept.source_version)
    facts = kept.resource
    return KnownRegime(kept.resource_id, str(facts.get("name")),
                       _text(facts.get("offeringGroupId")),
                       _text(facts.get("productOfferingId")), str(facts.get("status")),
                       kept.source_version)


def newest(kit: KnownRegime | None, earlier: KnownRegime | None) -> KnownRegime | None:
    """Of what the kit's replica and the earlier release's keep of one regime, the state
    with the higher version (the kit's on a tie)."""
    if kit is None:
        return earlier
    if earlier is None or kit.source_version >= earlier.source_version:
        return kit
    return earlier
