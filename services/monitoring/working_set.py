"""The working set: what monitoring knows of the registry and of planned outages, as
local replicas, resolved for the hot path (which regimes watch a purchased offering,
which standard is in force for it, which outages and accounting apply).

The replicas and regimes are held in memory — they are bounded by the estate, not by
history — loaded at start from the stored ``monitoring`` read model (``views.py``) and
followed from the log from there, so a start reads what exists, not every change ever
made (``shared.readmodel.Resident``).

Resolved routes are cached in the service's cache (Redis in distributed mode) under the
generation of the replicas they were computed from, so every monitoring process shares
them and a change of any replica or regime invalidates them at once (docs/architecture.md,
"Partitioning and the working set").
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.monitoring.domain import Regime, Replica
from services.monitoring.measurement import Outage
from services.monitoring.periods import time_zone
from shared.cache import Cache
from shared.outages import IN_FORCE
from shared.readmodel import Resident, StoredIndex
from shared.replica import by_kind as replicas_by_kind
from shared.standards import version_in_force
from shared.times import epoch_of

log = logging.getLogger(__name__)

KINDS = ("productOffering", "slaType", "thresholdStandard", "purchasedOffering",
         "plannedOutage")
MISSING_DATA = ("unknown", "counted-as-down", "noData")


def missing_data(parameter: dict[str, Any]) -> tuple[str, int]:
    """What a window without data means for a standard's parameter (or an SLA type):
    ``unknown`` (left out of eligible time, the default), ``counted-as-down``, or ``noData``
    (a noData crossing after ``noDataAfter`` consecutive empty windows)."""
    treatment = parameter.get("missingData") or "unknown"
    if treatment not in MISSING_DATA:
        treatment = "unknown"
    return treatment, max(1, int(parameter.get("noDataAfter") or 1))


def epoch(text: str | None) -> float | None:
    """An ISO 8601 time as epoch seconds; None when absent or unreadable.

    Contracts check formats on the way in, but a replica recorded before they did (or by
    a producer that got it wrong) must not stop evaluation: a time that cannot be read
    counts as absent (an outage without a readable window applies nowhere, a standard
    version without a readable start is not in force), and is logged."""
    moment = epoch_of(text)
    if moment is None and text:
        _unreadable(str(text))
    return moment


@functools.lru_cache(maxsize=256)
def _unreadable(text: str) -> None:
    """Log an unreadable time once (per distinct text), not once per evaluated window."""
    log.warning("ignoring an unreadable time in a replica: %r", text[:100])


@dataclass(frozen=True, slots=True)
class Route:
    """A regime that watches one parameter of one purchased offering (hot-path view)."""

    regime_id: str
    window_seconds: int
    lateness_seconds: int
    window: str
    allowed_lateness: str
    name: str
    partition: int  # a stable hash of the regime id, for evaluator partitions
    series: str     # "regime|parameter": the evaluator's key of its open windows


@dataclass(frozen=True, slots=True)
class Level:
    """A standard's parameter as it applies to one series at one time."""

    standard_id: str
    standard_version: int
    parameter: dict[str, Any]


class WorkingSet:
    def __init__(self, stored: StoredIndex, cache: Cache) -> None:
        """``stored``: the index that keeps the replicas and regimes (loaded from it)."""
        self._index = Resident(stored, (Replica, Regime))
        self._cache = cache
        self._lock = threading.Lock()
        self._generation = -1
        self._by_kind: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self._regimes: list[Regime] = []
        self._regime_by_id: dict[str, Regime] = {}
        self._routes: dict[str, list[str]] = {}
        self._param_routes: dict[tuple[str, str], list[Route]] = {}
        self._lookups: dict[tuple[str, str], tuple[dict[str, Any] | None, list[Route]]] = {}
        self._route_lists: dict[tuple[Route, ...], list[Route]] = {}
        self._standard_parameters: set[str] = set()
        self._zones_checked: set[str] = set()
        self._bad_zones: set[str] = set()
        self._missing_parameters: set[str] = set()
        self._members: dict[str, list[dict[str, Any]]] = {}
        self._service: dict[str, tuple[float | None, float | None]] = {}

    # --- refresh --------------------------------------------------------------------------
    def refresh(self) -> int:
        """Catch up with new replicas and regimes; returns the generation."""
        applied = self._index.applied
        self._index.catch_up()
        position = self._index.generation
        if position == self._generation:
            return position
        if self._index.applied != applied:
            # Changes followed in memory: the stored index takes them too, so the next
            # start loads them from there and has little of the log left to read.
            self._index.stored.catch_up()
        with self._lock:
            by_kind = replicas_by_kind(self._index.all(Replica), KINDS)
            self._by_kind = by_kind
            self._regimes = [r for r in self._index.all(Regime) if r.status != "stopped"]
            self._regime_by_id = {str(r.id): r for r in self._regimes}
            self._routes = {}
            self._param_routes = {}
            self._lookups = {}
            self._route_lists = {}
            self._standard_parameters = {
                p["name"] for st in by_kind["thresholdStandard"].values()
                for v in st.get("versions") or [] for p in v.get("parameters") or []}
            sla_says = any(missing_data(sla)[0] != "unknown"
                           for sla in by_kind["slaType"].values())
            self._missing_parameters = {
                p["name"] for st in by_kind["thresholdStandard"].values()
                for v in st.get("versions") or [] for p in v.get("parameters") or []
                if missing_data(p)[0] != "unknown" or (sla_says and not p.get("missingData"))}
            self._members = {}
            self._service = {}
            self._generation = position
        return position

    @property
    def generation(self) -> int:
        return self._generation

    # --- lookups --------------------------------------------------------------------------
    def purchased_offering(self, product_id: str) -> dict[str, Any] | None:
        return self._by_kind["purchasedOffering"].get(product_id)

    def offering(self, offering_id: str | None) -> dict[str, Any] | None:
        return self._by_kind["productOffering"].get(offering_id) if offering_id else None

    def sla_type(self, sla_type_id: str | None) -> dict[str, Any] | None:
        return self._by_kind["slaType"].get(sla_type_id) if sla_type_id else None

    def regimes(self) -> list[Regime]:
        return list(self._regimes)

    def regime(self, regime_id: UUID | str) -> Regime | None:
        return self._regime_by_id.get(str(regime_id))

    def group_of(self, po: dict[str, Any]) -> str | None:
        offering = self.offering(po.get("productOfferingId"))
        return (offering or {}).get("offeringGroupId") or po.get("offeringGroupId")

    def accounting(self, po: dict[str, Any]) -> str:
        sla = self.sla_type(po.get("slaTypeId"))
        return (sla or {}).get("maintenanceAccounting") or "excluded"

    def time_zone(self, sla_type_id: str | None) -> str:
        """The SLA type's time zone (IANA name) for its conformance periods; UTC when the
        type names none (or is unknown here). A name this process cannot read (an older
        time-zone database) falls back to UTC, logged, rather than stopping evaluation."""
        name = (self.sla_type(sla_type_id) or {}).get("timeZone") or "UTC"
        if name not in self._zones_checked:
            try:
                time_zone(name)
            except ValueError:
                log.warning("SLA type %s: unknown time zone %r; its periods use UTC",
                            sla_type_id, name)
                self._bad_zones.add(name)
            self._zones_checked.add(name)
        return "UTC" if name in self._bad_zones else name

    def watches(self, regime: Regime, po: dict[str, Any]) -> bool:
        if regime.status != "active" or po.get("status") == "terminated":
            return False
        if regime.offering_id is not None:
            if po.get("productOfferingId") != str(regime.offering_id):
                return False
        elif self.group_of(po) != str(regime.offering_group_id):
            return False
        if regime.sla_type_id is not None and po.get("slaTypeId") != str(regime.sla_type_id):
            return False
        return not (regime.customer_group is not None
                    and po.get("customerGroup") != regime.customer_group)

    def routes(self, product_id: str) -> list[str]:
        """Ids of the active regimes watching a purchased offering (cached, shared)."""
        cached = self._routes.get(product_id)
        if cached is not None:
            return cached
        key = f"routes:at{self._generation}:{product_id}"  # at a notification id
        raw = self._cache.get(key)
        if raw is not None:
            routes = json.loads(raw)
        else:
            po = self.purchased_offering(product_id)
            routes = [str(r.id) for r in self._regimes if po and self.watches(r, po)]
            self._cache.set(key, json.dumps(routes).encode(), ttl=3600)
        self._routes[product_id] = routes
        return routes

    def routes_for(self, product_id: str, parameter: str) -> list[Route]:
        """The regimes that watch this parameter of this purchased offering.

        A regime with no parameter list watches every parameter any standard names."""
        key = (product_id, parameter)
        found = self._param_routes.get(key)
        if found is None:
            found = []
            for regime_id in self.routes(product_id):
                regime = self._regime_by_id.get(regime_id)
                if regime is None:
                    continue
                watched = (parameter in regime.parameters if regime.parameters
                           else parameter in self._standard_parameters)
                if watched:
                    found.append(Route(regime_id, regime.window_seconds,
                                       regime.lateness_seconds, regime.window,
                                       regime.allowed_lateness, regime.name,
                                       zlib.crc32(regime_id.encode()),
                                       f"{regime_id}|{parameter}"))
            # Offerings watched by the same regimes share one list (the routes are
            # equal): a batch's samples are then told apart by regime at a glance.
            found = self._param_routes[key] = self._route_lists.setdefault(tuple(found), found)
        return found

    def sample_lookups(self) -> dict[tuple[str, str], tuple[dict[str, Any] | None,
                                                            list[Route]]]:
        """What the intake looks up for each sample, kept for this generation: per
        (purchased offering, parameter), the offering's replica (None: not in the inventory)
        and the routes that watch that parameter of it. A batch names a few hundred
        offerings at most, each once or twice; the same few hundred come again in every
        batch, so they are looked up once a generation, not once a batch
        (:meth:`lookup` fills it)."""
        return self._lookups

    def lookup(self, product_id: str, parameter: str
               ) -> tuple[dict[str, Any] | None, list[Route]]:
        lookups = self._lookups  # first: a refresh replaces the replicas before this
        po = self.purchased_offering(product_id)
        found = (po, self.routes_for(product_id, parameter) if po is not None else [])
        lookups[(product_id, parameter)] = found
        return found

    def members(self, regime: Regime) -> list[dict[str, Any]]:
        """The purchased offerings the regime's scope holds now (kept per generation)."""
        key = str(regime.id)
        found = self._members.get(key)
        if found is None:
            found = self._members[key] = sorted(
                (po for po in self._by_kind["purchasedOffering"].values()
                 if self.watches(regime, po)), key=lambda po: str(po.get("id")))
        return found

    def treats_missing(self, parameter: str) -> bool:
        """Whether any standard gives missing data of this parameter a meaning (so the
        evaluator looks for silent offerings only where it matters)."""
        return parameter in self._missing_parameters

    def missing_parameters(self, regime: Regime) -> list[str]:
        """The regime's parameters for which some standard gives missing data a meaning."""
        if regime.parameters:
            return sorted(p for p in regime.parameters if p in self._missing_parameters)
        return sorted(self._missing_parameters)

    def expected(self, regime: Regime, start: float, end: float) -> list[dict[str, Any]]:
        """The purchased offerings expected to report in ``[start, end)``: the regime's
        scope in the inventory, active (not suspended) and in service for the whole window
        (one that starts or ends inside it is judged on what it sent)."""
        found = []
        for po in self.members(regime):
            if po.get("status") not in (None, "active"):
                continue
            service = self._service.get(str(po.get("id")))
            if service is None:
                service = self._service[str(po.get("id"))] = (
                    epoch(po.get("startDate")), epoch(po.get("endDate")))
            begins, ends = service
            if (begins is None or begins <= start) and (ends is None or ends >= end):
                found.append(po)
        return found

    # --- standards ------------------------------------------------------------------------
    def level_for(self, po: dict[str, Any] | None, parameter: str, at: float,
                  regime: Regime | None = None, members_sla_type: str | None = None
                  ) -> Level | None:
        """The standard in force at ``at`` for a purchased offering (or, with ``po`` None,
        for the regime's scope): offering-scoped beats group-scoped, a standard naming the
        SLA type beats one that names none. A regime that names no SLA type is held to its
        members' SLA type when they all share one (``members_sla_type``)."""
        if po is not None:
            offering_id = po.get("productOfferingId")
            group_id = self.group_of(po)
            sla_type_id = po.get("slaTypeId")
        else:
            assert regime is not None
            offering_id = str(regime.offering_id) if regime.offering_id else None
            group_id = str(regime.offering_group_id) if regime.offering_group_id else None
            sla_type_id = str(regime.sla_type_id) if regime.sla_type_id else members_sla_type
        best: tuple[int, Level] | None = None
        for standard in self._by_kind["thresholdStandard"].values():
            if standard.get("productOfferingId") and standard["productOfferingId"] == offering_id:
                rank = 2
            elif standard.get("offeringGroupId") and standard["offeringGroupId"] == group_id:
                rank = 0
            else:
                continue
            version = _in_force(standard, at)
            if version is None:
                continue
            if version.get("slaTypeId"):
                if version["slaTypeId"] != sla_type_id:
                    continue
                rank += 1
            parameter_doc = next((p for p in version["parameters"] if p["name"] == parameter),
                                 None)
            if parameter_doc is None:
                continue
            if best is None or rank > best[0]:
                best = (rank, Level(standard["id"], version["version"], parameter_doc))
        if best is None:
            return None
        level = best[1]
        if not level.parameter.get("missingData"):  # the standard leaves it to the SLA type
            sla = self.sla_type(sla_type_id)
            if sla and sla.get("missingData"):
                level = Level(level.standard_id, level.standard_version, {
                    **level.parameter, "missingData": sla["missingData"],
                    "noDataAfter": level.parameter.get("noDataAfter")
                    or sla.get("noDataAfter")})
        return level

    def parameters_for(self, regime: Regime, po: dict[str, Any], at: float) -> set[str]:
        if regime.parameters:
            return set(regime.parameters)
        names: set[str] = set()
        for standard in self._by_kind["thresholdStandard"].values():
            version = _in_force(standard, at)
            if version:
                names.update(p["name"] for p in version["parameters"])
        return names

    # --- planned outages ------------------------------------------------------------------
    def outages(self, product_id: str) -> list[Outage]:
        found = []
        for outage in self._by_kind["plannedOutage"].values():
            if outage.get("status") not in IN_FORCE:  # agreed, in progress, completed
                continue
            if product_id not in (outage.get("affectedPurchasedOfferingIds") or []):
                continue
            window = outage.get("window") or {}
            start, end = epoch(window.get("startDateTime")), epoch(window.get("endDateTime"))
            if start is not None and end is not None:
                found.append(Outage(start, end))
        return found


def _in_force(standard: dict[str, Any], at: float) -> Mapping[str, Any] | None:
    """The version in force at ``at`` as the replica knows it now, by the registry's own
    rule (each approved version from its approval on, superseded ones included for the
    times before their successor's approval): a window is judged by the version in force
    for it, as known when it is evaluated."""
    return version_in_force(standard.get("versions") or [], at)
