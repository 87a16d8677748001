"""The threshold-registry application: named commands and queries over its aggregates.

Commands take plain values and return the changed aggregate; queries read the stored
index (lists, ``views.py``) or the repository (one item, with its version for ETags).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from services.threshold_registry.domain import (
    OfferingGroup,
    Placed,
    ProductOffering,
    PurchasedOffering,
    SlaType,
    ThresholdStandard,
)
from services.threshold_registry.domain.analysis_log import (
    PRODUCT_OFFERING,
    PURCHASED_OFFERING,
    LoggedResult,
)
from services.threshold_registry.domain.replicas import (
    REGIME,
    KnownRegime,
    MonitoringRegimeReplica,
    Replica,
    known,
    newest,
)
from services.threshold_registry.views import RegistryIndex
from shared import replica as replicas
from shared.errors import InUse, MissingReference, NotFound
from shared.inflection import camel
from shared.readmodel import Listing
from shared.replica import Copy
from shared.store import InboxGroup, ServiceApplication

KINDS: dict[type, str] = {
    OfferingGroup: "offering group",
    ProductOffering: "product offering",
    SlaType: "SLA type",
    ThresholdStandard: "threshold standard",
    PurchasedOffering: "purchased offering",
}


class ThresholdRegistry(ServiceApplication):
    """Product offerings and their groups, SLA types, threshold standards, inventory."""

    name = "ThresholdRegistry"
    snapshotting_intervals = {ThresholdStandard: 50, ProductOffering: 100,  # noqa: RUF012
                              PurchasedOffering: 100}

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.index = RegistryIndex(self)

    def read_models(self) -> list[RegistryIndex]:
        return [self.index]

    def close(self) -> None:
        self.index.close()
        super().close()

    # --- reading one -------------------------------------------------------------------
    def _get(self, kind: type, aggregate_id: UUID, expected_version: int | None = None) -> Any:
        return self.get(kind, aggregate_id, expected_version, label=KINDS[kind])

    def offering_group(self, group_id: UUID) -> OfferingGroup:
        return self._get(OfferingGroup, group_id)

    def offering(self, offering_id: UUID) -> ProductOffering:
        return self._get(ProductOffering, offering_id)

    def sla_type(self, sla_type_id: UUID) -> SlaType:
        return self._get(SlaType, sla_type_id)

    def standard(self, standard_id: UUID) -> ThresholdStandard:
        return self._get(ThresholdStandard, standard_id)

    def purchased_offering(self, product_id: str) -> PurchasedOffering:
        return self._get(PurchasedOffering, PurchasedOffering.create_id(product_id))

    # --- lists (paged by the blueprint in the database) ------------------------------
    def offering_groups(self) -> Listing:
        """The groups not retired."""
        return self.index.listing(OfferingGroup, retired=False)

    def offerings(self) -> Listing:
        return self.index.listing(ProductOffering)

    def sla_types(self) -> Listing:
        return self.index.listing(SlaType)

    def standards(self) -> Listing:
        return self.index.listing(ThresholdStandard)

    def purchased_offerings(self) -> Listing:
        """The inventory, each item placed in its offering's group."""
        return self.index.listing(PurchasedOffering, present=self.index.placed)

    def placed(self, item: PurchasedOffering) -> Placed:
        """A purchased offering with the group its offering is in now."""
        return Placed(item, self.group_of(item.offering_id))

    def group_of(self, offering_id: UUID | None) -> UUID | None:
        offering = self.index.get(offering_id, ProductOffering)
        return offering.group_id if isinstance(offering, ProductOffering) else None

    def sla_type_named(self, name_or_id: str) -> SlaType | None:
        for sla_type in self.index.all(SlaType):
            if str(sla_type.id) == name_or_id or sla_type.name.lower() == name_or_id.lower():
                return sla_type
        return None

    # --- offering groups ---------------------------------------------------------------
    def register_offering_group(self, name: str, description: str | None = None
                                ) -> OfferingGroup:
        group = OfferingGroup(name=name, description=description)
        self.save(group)
        return group

    def update_offering_group(self, group_id: UUID, changes: Mapping[str, Any],
                              expected_version: int | None = None) -> OfferingGroup:
        group = self._get(OfferingGroup, group_id, expected_version)
        group.update(**changes)
        self.save(group)
        return group

    def retire_offering_group(self, group_id: UUID, expected_version: int | None = None
                              ) -> OfferingGroup:
        """Retire a group nothing uses any more; ``InUse`` names the offerings, the
        standards and the monitoring regimes (as the registry has heard of them from
        monitoring) that still do. A regime started moments before, that the registry has
        not heard of yet, does not hold the retirement up: monitoring stops the regimes of
        a retired group when it hears of it, and refuses new ones."""
        group = self._get(OfferingGroup, group_id, expected_version)
        if not group.is_retired:
            self._refuse_if_used(group)
        group.retire()
        self.save(group)
        return group

    def _refuse_if_used(self, group: OfferingGroup) -> None:
        offerings = [o for o in self.index.all(ProductOffering, offeringGroupId=group.id)
                     if o.lifecycle_status != "retired"]
        standards = [t for t in self.index.all(ThresholdStandard, offeringGroupId=group.id)
                     if not t.is_retired]
        regimes = self.regimes_watching(group.id)
        if not offerings and not standards and not regimes:
            return
        parts, advice = [], []
        for label, found, name, ident, todo in (
                ("product offering", offerings, lambda o: o.name, lambda o: o.id,
                 "move or retire the offerings"),
                ("threshold standard", standards, lambda t: t.latest["name"], lambda t: t.id,
                 "retire the standards"),
                ("monitoring regime", regimes, lambda r: r.name, lambda r: r.regime_id,
                 "stop the regimes (in monitoring)")):
            if found:
                shown = ", ".join(f"{name(a)!r} ({ident(a)})" for a in found[:5])
                more = f" and {len(found) - 5} more" if len(found) > 5 else ""
                parts.append(f"{len(found)} {label}{'s' if len(found) > 1 else ''}: "
                             f"{shown}{more}")
                advice.append(todo)
        raise InUse(
            f"offering group {group.name!r} is still used by " + "; ".join(parts)
            + ". " + ", ".join(advice).capitalize() + " first",
            {key: ids for key, ids in (
                ("productOffering", [str(o.id) for o in offerings]),
                ("thresholdStandard", [str(t.id) for t in standards]),
                ("monitoringRegime", [r.regime_id for r in regimes])) if ids})

    # --- monitoring's regimes (replicas) -------------------------------------------------
    def regimes(self) -> list[KnownRegime]:
        """Every monitoring regime heard of, oldest first, at the highest version heard
        (the kit's replicas, and what an earlier release kept that no newer state
        replaced)."""
        earlier = {r.regime_id: known(r) for r in self.index.all(MonitoringRegimeReplica)}
        kept = {r.resource_id: known(r) for r, _ in self.index.select(Replica, {"kind": REGIME})}
        found = {i: newest(kept.get(i), earlier.get(i)) for i in {**earlier, **kept}}
        return [regime for regime in found.values() if regime is not None]

    def regimes_watching(self, group_id: UUID) -> list[KnownRegime]:
        """The regimes not stopped that watch a group, oldest first, as last heard."""
        return [r for r in self.regimes()
                if r.watching and r.offering_group_id == str(group_id)]

    def regime_replica(self, regime_id: str) -> KnownRegime | None:
        """One regime as last heard of (None: never heard of)."""
        kit = replicas.find(self.repository, Replica, REGIME, regime_id)
        try:
            earlier = self.repository.get(MonitoringRegimeReplica.create_id(regime_id))
        except AggregateNotFoundError:
            earlier = None
        return newest(known(kit) if kit is not None else None,
                      known(earlier) if isinstance(earlier, MonitoringRegimeReplica) else None)

    def receive_replica(self, copy: Copy) -> Replica:
        """Keep the newest state of another service's resource (a monitoring regime;
        idempotent, any order): one save, so the inbox records it with the message's
        tracking record."""
        replica = replicas.receive(self.repository, Replica, copy)
        self.save(replica)
        return replica

    def _check_group_open(self, group_id: UUID, field: str = "offeringGroupId") -> None:
        """A retired (deleted) group takes no new offerings or standards: like a group that
        never existed, it is an unknown reference (409 naming the field)."""
        try:
            group = self._get(OfferingGroup, group_id)
        except NotFound:
            raise MissingReference({field: [f"no offering group with id {group_id}"]}) from None
        if group.is_retired:
            raise MissingReference({field: [f"offering group {group.name!r} ({group.id}) is "
                                        "retired; it takes no new offerings or standards"]})

    # --- product offerings -------------------------------------------------------------
    def register_offering(self, name: str, description: str | None = None,
                          lifecycle_status: str = "inDesign", group_id: UUID | None = None
                          ) -> ProductOffering:
        if group_id is not None:
            self._check_group_open(group_id)
        offering = ProductOffering(name=name, description=description,
                                   lifecycle_status=lifecycle_status, group_id=group_id)
        self.save(offering)
        return offering

    def update_offering(self, offering_id: UUID, changes: Mapping[str, Any],
                        expected_version: int | None = None) -> ProductOffering:
        offering = self._get(ProductOffering, offering_id, expected_version)
        changes = dict(changes)
        if "group_id" in changes:
            group_id = changes.pop("group_id")
            if group_id is not None and group_id != offering.group_id:
                self._check_group_open(group_id)
            offering.move_to_group(group_id, changes.pop("move_reason", None))
        changes.pop("move_reason", None)
        if "lifecycle_status" in changes:
            status = changes.pop("lifecycle_status")
            if status != offering.lifecycle_status:
                offering.change_lifecycle(status)
        if changes:
            offering.update(**changes)
        self.save(offering)
        return offering

    # --- SLA types ---------------------------------------------------------------------
    def register_sla_type(self, **terms: Any) -> SlaType:
        sla_type = SlaType(**terms)
        self.save(sla_type)
        return sla_type

    def change_sla_type_terms(self, sla_type_id: UUID, changes: Mapping[str, Any],
                              expected_version: int | None = None) -> SlaType:
        sla_type = self._get(SlaType, sla_type_id, expected_version)
        sla_type.change_terms(**changes)
        self.save(sla_type)
        return sla_type

    # --- threshold standards -----------------------------------------------------------
    def register_standard(self, **fields: Any) -> ThresholdStandard:
        self._check_scope(fields.get("offering_id"), fields.get("offering_group_id"),
                          fields.get("sla_type_id"))
        if fields.get("offering_group_id") is not None:
            self._check_group_open(fields["offering_group_id"])
        standard = ThresholdStandard(**fields)
        self.save(standard)
        return standard

    def _check_scope(self, offering_id: UUID | None, group_id: UUID | None,
                     sla_type_id: UUID | None) -> None:
        errors: dict[str, list[str]] = {}
        for field, kind, value in (("productOfferingId", ProductOffering, offering_id),
                                   ("offeringGroupId", OfferingGroup, group_id),
                                   ("slaTypeId", SlaType, sla_type_id)):
            if value is None:
                continue
            try:
                self._get(kind, value)
            except NotFound as exc:
                errors[field] = [str(exc)]
        if errors:
            raise MissingReference(errors)

    def revise_standard(self, standard_id: UUID, changes: Mapping[str, Any],
                        reason: str | None = None, expected_version: int | None = None
                        ) -> ThresholdStandard:
        standard = self._get(ThresholdStandard, standard_id, expected_version)
        sla_type_id = next((value for key, value in changes.items()
                            if camel(key) == "slaTypeId"), None)
        if sla_type_id is not None:
            self._check_scope(None, None, UUID(str(sla_type_id)))
        standard.revise(dict(changes), reason)
        self.save(standard)
        return standard

    def approve_standard(self, standard_id: UUID, version: int, approved_by: str,
                         expected_version: int | None = None) -> ThresholdStandard:
        standard = self._get(ThresholdStandard, standard_id, expected_version)
        standard.approve(version, approved_by)
        self.save(standard)
        return standard

    def retire_standard(self, standard_id: UUID, version: int | None = None,
                        expected_version: int | None = None) -> ThresholdStandard:
        standard = self._get(ThresholdStandard, standard_id, expected_version)
        standard.retire(version)
        self.save(standard)
        return standard

    def standards_in_force(self, offering_id: UUID | None = None,
                           sla_type_id: UUID | None = None, at: datetime | None = None,
                           as_known_at: datetime | None = None
                           ) -> list[tuple[ThresholdStandard, dict]]:
        """Which standards are in force for an offering (and SLA type) at a time; without
        an offering, those in force for the SLA type across every offering.

        ``at`` is business time (validity and approvals); ``as_known_at`` is record time:
        the answer the registry would have given then, from its log up to that moment
        (the offering's group, the standards and their versions as they were). Without
        it, today's knowledge. A standard applies when scoped to the offering or to the
        group the offering is in, and when it names no SLA type or the one asked for.
        """
        at = at or datetime.now(UTC)
        offering: ProductOffering | None = None
        if offering_id is not None and as_known_at is None:
            offering = self._get(ProductOffering, offering_id)
        elif offering_id is not None:
            known = self.as_known_at(offering_id, as_known_at)
            if not isinstance(known, ProductOffering):
                raise NotFound(f"no product offering with id {offering_id} was known at "
                               f"{as_known_at.isoformat()}")
            offering = known

        def scoped(standard: ThresholdStandard) -> bool:
            if offering is None:
                return True
            return standard.offering_id == offering_id or (
                offering.group_id is not None
                and standard.offering_group_id == offering.group_id)

        candidates = self.index.all(ThresholdStandard) if offering is None else [
            *self.index.all(ThresholdStandard, productOfferingId=offering_id),
            *(self.index.all(ThresholdStandard, offeringGroupId=offering.group_id)
              if offering.group_id is not None else [])]
        candidates.sort(key=lambda standard: standard.created_on)
        standards = [standard for standard in candidates if scoped(standard)]
        if as_known_at is not None:
            # A standard's scope never changes: only those in scope are rebuilt.
            standards = [known for known in (
                self.as_known_at(standard.id, as_known_at) for standard in standards)
                if known is not None]
        found = []
        for standard in standards:
            version = standard.in_force(at)
            if version is None:
                continue
            version_sla = version.get("slaTypeId")
            if version_sla is not None and str(version_sla) != str(sla_type_id):
                continue
            found.append((standard, version))
        return found

    def as_known_at(self, aggregate_id: UUID, when: datetime) -> Any | None:
        """An aggregate as the log had it at ``when`` (None: it did not exist yet)."""
        version = None
        for recorded in self.repository.event_store.get(aggregate_id):
            if recorded.timestamp > when:
                break
            version = recorded.originator_version
        return None if version is None else self.repository.get(aggregate_id, version=version)

    # --- product offering inventory ----------------------------------------------------
    def create_purchased_offering(self, **fields: Any) -> PurchasedOffering:
        self._check_inventory_refs(fields.get("offering_id"), fields.get("sla_type_id"))
        item = PurchasedOffering(**fields)
        self.save(item)
        return item

    def _check_inventory_refs(self, offering_id: UUID | None, sla_type_id: UUID | None) -> None:
        errors: dict[str, list[str]] = {}
        # Inside an inbox group, each offering and SLA type is read once for the group
        # (product events change neither).
        if offering_id is not None:
            try:
                InboxGroup.once(("exists", offering_id),
                                lambda: self._get(ProductOffering, offering_id))
            except NotFound as exc:
                errors["productOfferingId"] = [str(exc)]
        if sla_type_id is not None:
            try:
                InboxGroup.once(("exists", sla_type_id), lambda: self._get(SlaType, sla_type_id))
            except NotFound as exc:
                errors["slaTypeId"] = [str(exc)]
        if errors:
            raise MissingReference(errors)

    def update_purchased_offering(self, product_id: str, changes: Mapping[str, Any],
                                  expected_version: int | None = None) -> PurchasedOffering:
        item = self._get(PurchasedOffering, PurchasedOffering.create_id(product_id),
                         expected_version)
        changes = dict(changes)
        self._check_inventory_refs(changes.get("offering_id"), changes.get("sla_type_id"))
        status = changes.pop("status", None)
        reason = changes.pop("status_reason", None)
        if changes:
            item.update(**changes)
        if status is not None:
            item.change_status(status, reason)
        self.save(item)
        return item

    def inventory_item(self, product_id: str) -> PurchasedOffering | None:
        """The purchased offering of a product, None when there is none yet. Inside an
        inbox group, as the group knows it (loaded ahead for the group, or saved by an
        earlier message of it), so two messages about one product build on each other."""
        known = self.known(PurchasedOffering.create_id(product_id))
        return known if isinstance(known, PurchasedOffering) else None

    def upsert_purchased_offering(self, product_id: str, fields: Mapping[str, Any],
                                  status: str | None) -> PurchasedOffering:
        """Create or bring up to date from fulfilment; one save, so one tracked effect."""
        item = self.inventory_item(product_id)
        if item is None:
            self._check_inventory_refs(fields.get("offering_id"), fields.get("sla_type_id"))
            item = PurchasedOffering(product_id=product_id, status=status or "active",
                                     **fields)
            self.save(item)
            return item
        changes = {k: v for k, v in fields.items() if v is not None}
        self._check_inventory_refs(changes.get("offering_id"), changes.get("sla_type_id"))
        if item.status != "terminated" and changes:
            item.update(**changes)
        if status is not None and status != item.status:
            item.change_status(status, "fulfilment")
        self.save(item)
        return item

    # --- analysis results --------------------------------------------------------------
    def log_analysis_result(self, result: Mapping[str, Any]) -> LoggedResult:
        """Record an analysis result on the offering or purchased offering it concerns,
        once by its id: a result heard before (a redelivery, one an earlier release kept
        on the offering itself) changes nothing and is returned as it was kept."""
        item, target_type, target_id = self._analysed(result.get("target") or {})
        logged = LoggedResult.of(result, target_type, target_id)
        try:
            return self.repository.get(logged.id)
        except AggregateNotFoundError:
            pass
        if any(str(r.get("id")) == logged.result_id for r in item.analysis_log):
            return logged
        self.save(logged)
        return logged

    def _analysed(self, target: Mapping[str, Any]
                  ) -> tuple[ProductOffering | PurchasedOffering, str, str]:
        """What a result is about, and its target's type and id as the log keeps them."""
        if target.get("type") == PURCHASED_OFFERING:
            item = self._get(PurchasedOffering, PurchasedOffering.create_id(str(target["id"])))
            return item, PURCHASED_OFFERING, item.product_id
        try:
            offering_id = UUID(str(target.get("id")))
        except ValueError:
            raise NotFound(f"no product offering with id {target.get('id')}") from None
        offering = self._get(ProductOffering, offering_id)
        return offering, PRODUCT_OFFERING, str(offering.id)

    def analysis_log(self, item: ProductOffering | PurchasedOffering) -> Listing | list[Any]:
        """The results logged on an offering or purchased offering, oldest first: paged in
        the database; with what an earlier release kept in the item's own state first,
        where it kept any."""
        if isinstance(item, PurchasedOffering):
            target_type, target_id = PURCHASED_OFFERING, item.product_id
        else:
            target_type, target_id = PRODUCT_OFFERING, str(item.id)
        listing = self.index.listing(LoggedResult, present=lambda logged, _: logged.result,
                                     targetType=target_type, targetId=target_id)
        if not item.analysis_log:
            return listing
        return [*item.analysis_log, *listing]
