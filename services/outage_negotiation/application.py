"""The outage-negotiation application: the planner's commands over planned outages
(draft, propose, negotiate, agree, reject, cancel, reschedule, extend), customers'
blackout periods, the clock's moves (``scheduling.py``), and the queries the API serves.

Built with everything it uses (docs/architecture.md, "Adding a service"): its store's
environment, its settings and a clock (tests give a settable one). What an outage
affects is resolved from the replicas of the registry's groups, offerings, SLA types and
inventory kept from the bus (never by calling the registry), when it is proposed, and
kept with the outage: a later inventory change does not rewrite who was told what.
The rules its windows must pass are ``rules.py``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from services.outage_negotiation import calendar, figures, ranking, rules
from services.outage_negotiation.domain import (
    CLOCK,
    COUNTED,
    OPEN,
    AlreadyAnswered,
    CustomerAnswer,
    CustomerBlackouts,
    DeadlinePassed,
    OutageRuleBroken,
    PlannedOutage,
    Replica,
    Window,
)
from services.outage_negotiation.scheduling import Scheduling, due_items
from services.outage_negotiation.settings import OutageSettings
from services.outage_negotiation.views import (
    ANSWER_OUTAGE,
    CUSTOMER,
    CUSTOMERS,
    GROUP,
    OFFERING,
    PURCHASED_FACTS,
    STATUS,
    TAKE_DUE,
    OutageIndex,
)
from shared import context
from shared import outage_links as links
from shared import replica as replicas
from shared.errors import ErrorCollector, InvalidValue, MissingReference, NotFound
from shared.readmodel import Listing, StoredTimetable, tagged, to_stored
from shared.replica import Copy
from shared.scheduler import Clock, DueLoop, SystemClock, Wakeup
from shared.store import ServiceApplication

#: Purchased offerings in these statuses are affected by an outage over their offering.
LIVE = ("active", "suspended")
CHUNK = 500
#: Answers taken into an outage at once.
ANSWER_BATCH = 1000


class OutageNegotiation(ServiceApplication):
    """Planned outages, customers' blackout periods, and the registry facts they need."""

    name = "OutageNegotiation"
    snapshotting_intervals = {Replica: 50, PlannedOutage: 50}  # noqa: RUF012

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 settings: OutageSettings | None = None, clock: Clock | None = None,
                 server_key: str = "") -> None:
        super().__init__(env)
        self.server_key = server_key
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or OutageSettings()
        self.index = OutageIndex(self)
        self.wake = Wakeup()
        self.scheduling = Scheduling(self)
        self.timetable = StoredTimetable(self.index, due_items())
        self._answering: dict[UUID, PlannedOutage] = {}
        self._answering_lock = threading.Lock()

    def read_models(self) -> list[OutageIndex]:
        return [self.index]

    def close(self) -> None:
        self.index.close()
        super().close()

    def scheduler(self) -> DueLoop:
        """The loop that starts and completes agreed outages at their agreed times."""
        return DueLoop(self.timetable, self.clock, self.scheduling.work(), self.wake,
                       idle=self.settings.tick)

    def tick(self) -> int:
        """Make the moves due now; how many were made."""
        return self.scheduler().run_due()

    # --- queries -------------------------------------------------------------------------
    def outages(self) -> Listing:
        return self.index.listing(PlannedOutage)

    def outage(self, outage_id: UUID, expected_version: int | None = None) -> PlannedOutage:
        return self.get(PlannedOutage, outage_id, expected_version, label="planned outage")

    def blackout_listing(self) -> Listing:
        return self.index.listing(CustomerBlackouts)

    def blackouts_of(self, customer_id: str) -> CustomerBlackouts:
        found = self.index.get(CustomerBlackouts.create_id(customer_id), CustomerBlackouts)
        if found is None:
            raise NotFound(f"customer {customer_id} declared no blackout periods")
        return found

    # --- the registry's facts ----------------------------------------------------------
    def receive_replica(self, copy: Copy) -> None:
        """Keep a registry resource as its event told it (a newer version only)."""
        self.save(replicas.receive(self.repository, Replica, copy))

    def _fact(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        found = self.index.get(Replica.create_id(kind, resource_id), Replica)
        return found.resource if isinstance(found, Replica) else None

    def _replicas(self, kind: str, column: Any, values: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), CHUNK):
            chunk = list(values[start:start + CHUNK])
            found += [r.resource for r, _ in self.index.select(
                Replica, {"replicaKind": kind},
                [(f"{column.sql} IN ({','.join('?' * len(chunk))})", chunk)])]
        return found

    def _purchased(self, column: Any, values: Sequence[str]) -> list[dict[str, Any]]:
        """The facts an impact needs of the purchased offerings whose ``column`` is one of
        ``values``, read off the read model's columns (no replica decoded)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), CHUNK):
            chunk = list(values[start:start + CHUNK])
            found += [{**row, "id": row.pop("resourceId")} for row in self.index.values(
                Replica, PURCHASED_FACTS, {"replicaKind": "purchasedOffering"},
                [(f"{column.sql} IN ({','.join('?' * len(chunk))})", chunk)])]
        return found

    def check_references(self, affects: Mapping[str, Any]) -> None:
        """What an outage names exists and is not retired (409 naming the field)."""
        errors = ErrorCollector()
        group = affects.get("offeringGroupId")
        if group:
            found = self._fact("offeringGroup", group)
            if found is None:
                errors.add("affects.offeringGroupId", f"no offering group {group}")
            elif found.get("lifecycleStatus") == "retired":
                errors.add("affects.offeringGroupId", f"offering group {group} is retired")
        for n, offering in enumerate(affects.get("productOfferingIds") or []):
            found = self._fact("productOffering", offering)
            if found is None:
                errors.add(f"affects.productOfferingIds.{n}", f"no product offering {offering}")
            elif found.get("lifecycleStatus") == "retired":
                errors.add(f"affects.productOfferingIds.{n}",
                           f"product offering {offering} is retired")
        for n, product in enumerate(affects.get("purchasedOfferingIds") or []):
            found = self._fact("purchasedOffering", product)
            if found is None:
                errors.add(f"affects.purchasedOfferingIds.{n}",
                           f"no purchased offering {product}")
            elif found.get("status") not in LIVE:
                errors.add(f"affects.purchasedOfferingIds.{n}",
                           f"purchased offering {product} is {found.get('status')}")
        errors.raise_if_any(MissingReference)

    def resolve(self, affects: Mapping[str, Any]) -> tuple[list[dict[str, Any]],
                                                          dict[str, str | None]]:
        """Who an outage affects, from the inventory replica now: per customer its
        purchased offerings, SLA types and the longest minimum notice among them; and
        each purchased offering's SLA type id."""
        offerings = list(affects.get("productOfferingIds") or [])
        if affects.get("offeringGroupId"):
            offerings += [o["id"] for o in self._replicas(
                "productOffering", GROUP, [affects["offeringGroupId"]])
                if o.get("lifecycleStatus") != "retired"]
        products: dict[str, dict[str, Any]] = {}
        for item in self._purchased(OFFERING, sorted(set(offerings))):
            products[str(item["id"])] = item
        for product in affects.get("purchasedOfferingIds") or []:
            found = self._fact("purchasedOffering", product)
            if found is not None:
                products[product] = found
        sites = affects.get("customerSites") or []
        if sites:
            wanted = {(s["customerId"], s["site"]) for s in sites}
            for item in self._purchased(CUSTOMER, sorted({s["customerId"] for s in sites})):
                if (item.get("customerId"), item.get("site")) in wanted:
                    products[str(item["id"])] = item
            found_sites = {(p.get("customerId"), p.get("site")) for p in products.values()}
            errors = ErrorCollector()
            for n, site in enumerate(sites):
                if (site["customerId"], site["site"]) not in found_sites:
                    errors.add(f"affects.customerSites.{n}",
                               f"customer {site['customerId']} has no purchased offering "
                               f"at site {site['site']}")
            errors.raise_if_any(MissingReference)
        live = {k: v for k, v in products.items() if v.get("status") in LIVE}
        if not live:
            raise MissingReference({"affects": [
                "no active purchased offering is affected: the inventory this service "
                "knows has none under what the outage names"]})
        sla_types: dict[str, dict[str, Any] | None] = {}
        customers: dict[str, dict[str, Any]] = {}
        sla_of: dict[str, str | None] = {}
        for product_id in sorted(live):
            item = live[product_id]
            sla = item.get("slaTypeId")
            sla_of[product_id] = sla
            if sla and sla not in sla_types:
                sla_types[sla] = self._fact("slaType", sla)
            entry = customers.setdefault(str(item.get("customerId")), {
                "customerId": str(item.get("customerId")), "purchasedOfferingIds": [],
                "slaTypes": {}, "minimumNoticeDays": 0})
            entry["purchasedOfferingIds"].append(product_id)
            terms = sla_types.get(sla) if sla else None
            if sla and sla not in entry["slaTypes"]:
                entry["slaTypes"][sla] = {
                    "id": sla, "name": (terms or {}).get("name"),
                    "minimumNoticeDays": int((terms or {}).get("minimumNoticeDays") or 0),
                    "maintenanceAccounting": (terms or {}).get("maintenanceAccounting")}
                entry["minimumNoticeDays"] = max(entry["minimumNoticeDays"],
                                                 entry["slaTypes"][sla]["minimumNoticeDays"])
        resolution = [{**c, "slaTypes": list(c["slaTypes"].values())}
                      for _, c in sorted(customers.items())]
        return resolution, sla_of

    def _caps(self, sla_of: Mapping[str, str | None]) -> dict[str, int | None]:
        caps: dict[str, int | None] = {}
        for sla in {s for s in sla_of.values() if s}:
            terms = self._fact("slaType", sla) or {}
            caps[sla] = self.settings.cap_for(terms.get("name"), sla)
        return caps

    def _others(self, statuses: Sequence[str], exclude: UUID | None = None,
                agreed_only: bool = False) -> list[rules.Other]:
        marks = ",".join("?" * len(statuses))
        found = []
        for outage, _ in self.index.select(PlannedOutage,
                                           conditions=[(f"{STATUS.sql} IN ({marks})",
                                                        list(statuses))]):
            if outage.id == exclude:
                continue
            windows = ([outage.agreed_window] if outage.agreed_window is not None
                       else [] if agreed_only else outage.windows)
            found.append(rules.Other(str(outage.id), outage.status, tuple(windows),
                                     frozenset(outage.purchased_offering_ids)))
        return found

    def _blackouts(self, customers: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        wanted = sorted(set(customers))
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            for declared, _ in self.index.select(
                    CustomerBlackouts,
                    conditions=[(f"c_customer_id IN ({','.join('?' * len(chunk))})", chunk)]):
                if declared.periods:
                    found[declared.customer_id] = declared.periods
        return found

    def _checked(self, outage_id: UUID | None, windows: Sequence[Window],
                 affects: Mapping[str, Any], field: str = "windows", notice: bool = True
                 ) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
        """The windows checked against every rule for what ``affects`` resolves to now:
        the resolution, the purchased offerings, the overlaps flagged."""
        now = self.clock()
        rules.check_windows(windows, now, field)
        self.check_references(affects)
        resolution, sla_of = self.resolve(affects)
        if notice:
            rules.check_notice(windows, resolution, now, field)
        rules.check_blackouts(windows, self._blackouts(c["customerId"] for c in resolution),
                              field)
        purchased = set(sla_of)
        found = rules.overlaps(windows, purchased, self._others(OPEN, outage_id))
        rules.check_overlaps(found, self.settings.overlaps)
        caps = self._caps(sla_of)
        counted = self._others(COUNTED, outage_id, agreed_only=True)
        for n, window in enumerate(windows):
            rules.check_cap(window, sla_of, caps, counted, f"{field}.{n}")
        return resolution, sorted(purchased), found

    # --- the planner's commands ----------------------------------------------------------
    def draft(self, affects: Mapping[str, Any], windows: Sequence[Window], reason: str,
              impact: str, actor: str, planner: str | None = None,
              change_link: str | None = None, name: str | None = None) -> PlannedOutage:
        rules.check_windows(windows, self.clock())
        self.check_references(affects)
        outage = PlannedOutage(affects=dict(affects), windows=list(windows), reason=reason,
                               impact=impact, planner=planner or actor,
                               change_link=change_link, name=name, at=self.clock())
        self.save(outage)
        return outage

    def revise(self, outage_id: UUID, changes: Mapping[str, Any], actor: str,
               expected_version: int | None = None) -> PlannedOutage:
        outage = self.outage(outage_id, expected_version)
        changes = {k: v for k, v in changes.items() if getattr(outage, k, None) != v}
        if "windows" in changes:
            rules.check_windows(changes["windows"], self.clock())
        if "affects" in changes:
            self.check_references(changes["affects"])
        outage.revise(changes, self.clock(), actor)
        self.save(outage)
        return outage

    def propose(self, outage_id: UUID, actor: str, reason: str | None = None,
                expected_version: int | None = None) -> PlannedOutage:
        """Resolve who is affected now and check the windows against every rule."""
        outage = self.outage(outage_id, expected_version)
        outage.require("proposed", "draft")
        resolution, purchased, found = self._checked(outage.id, outage.windows,
                                                     outage.affects)
        outage.propose(resolution, purchased, outage.affects.get("offeringGroupId"), found,
                       self.clock(), actor, reason)
        self.save(outage)
        return outage

    def open_negotiation(self, outage_id: UUID, actor: str, reason: str | None = None,
                         expected_version: int | None = None, deadline: Any = None,
                         policy: str = "all", quorum: float | None = None) -> PlannedOutage:
        """Open the negotiation with the affected customers: each answers by its response
        link until the deadline, and the policy decides when the answers agree a window
        (at the deadline: agreed, or left to the planner with a summary). Without a
        deadline the planner agrees by hand."""
        outage = self.outage(outage_id, expected_version)
        outage.require("negotiated", "proposed")
        self._check_round(min(w["start"] for w in outage.windows), deadline, policy, quorum)
        outage.open_negotiation(self.clock(), actor, reason, deadline, policy, quorum)
        self.save(outage)
        return outage

    def new_round(self, outage_id: UUID, actor: str, reason: str | None = None,
                  expected_version: int | None = None, deadline: Any = None,
                  policy: str = "all", quorum: float | None = None) -> PlannedOutage:
        """Ask the customers again (after the planner chose among the answers): the
        earlier round's answers stay in the outage's history, and its links answer
        nothing any more."""
        outage = self.outage(outage_id, expected_version)
        outage.require("negotiated again", "negotiating")
        self._check_round(min(w["start"] for w in outage.windows), deadline, policy, quorum)
        outage.reopen(self.clock(), actor, reason, deadline, policy, quorum)
        self.save(outage)
        return outage

    def _check_round(self, first: Any, deadline: Any, policy: str, quorum: float | None,
                     window: str = "the first window") -> None:
        """A round's deadline (in the future, before ``first``, when ``window`` starts)
        and its policy's quorum: 400 naming the field otherwise."""
        errors = ErrorCollector()
        if deadline is not None:
            if deadline <= self.clock():
                errors.add("deadline", f"{deadline.isoformat()} is in the past")
            elif deadline > first:
                errors.add("deadline", f"must be before {window} starts "
                                       f"({first.isoformat()})")
        if policy.startswith("quorum") and quorum is None:
            errors.add("quorum", f"the {policy} policy needs a quorum (a share, 0 to 1)")
        errors.raise_if_any()

    # --- the customers' answers ---------------------------------------------------------
    def response_link(self, outage_id: UUID, customer_id: str) -> dict[str, Any]:
        """The token that lets one affected customer answer the current round (it
        expires at the round's deadline, or when the first window starts)."""
        outage = self.outage(outage_id)
        outage.require("answered", "negotiating")
        if customer_id not in {c["customerId"] for c in outage.resolution}:
            raise InvalidValue({"customerId": [
                f"customer {customer_id} is not affected by planned outage {outage_id}"]})
        expires = outage.deadline or min(w["start"] for w in outage.windows)
        token = links.issue(self.server_key, links.Link(str(outage.id), customer_id,
                                                        outage.round, expires))
        return {"token": token, "expiresAt": expires, "customerId": customer_id,
                "plannedOutageId": str(outage.id), "round": outage.round}

    def link_outage(self, token: str) -> tuple[PlannedOutage, dict[str, Any]]:
        """The outage and the customer (as resolved) a valid link of the current round
        names, without answering: what the response page shows."""
        link = links.check(self.server_key, token, self.clock())
        outage = self.outage(UUID(link.outage_id))
        if link.round != outage.round:
            raise links.InvalidLink("this response link is for an earlier round of the "
                                    "negotiation; a newer link was sent")
        customer = next((c for c in outage.resolution
                         if c["customerId"] == link.customer_id), None)
        if customer is None:
            raise links.InvalidLink("this response link names no affected customer")
        return outage, customer

    def respond(self, token: str, answer: str, window_index: int | None = None,
                reason: str | None = None, windows: Sequence[Window] = ()
                ) -> tuple[PlannedOutage, CustomerAnswer]:
        """A customer's answer by its link: accept a window, reject with a reason, or
        counter-propose windows. Kept as a ``CustomerAnswer`` of its own (so answers of
        many customers are taken at once without waiting for each other, and a second
        answer to the round is refused by the store), then taken into the outage by the
        clock, which applies the policy (``take_answers``)."""
        now = self.clock()
        link = links.check(self.server_key, token, now)
        outage = self.answering(UUID(link.outage_id))
        if link.round != outage.round:
            raise links.InvalidLink("this response link is for an earlier round of the "
                                    "negotiation; a newer link was sent")
        outage.require("answered", "negotiating")
        if answer == "accept" and not 0 <= int(window_index or 0) < len(outage.windows):
            raise InvalidValue({"windowIndex": [
                f"the outage has {len(outage.windows)} proposed window(s)"]})
        if answer == "reject" and not reason:
            raise InvalidValue({"reason": ["a rejection needs its reason"]})
        if answer == "counterPropose":
            rules.check_windows(list(windows), now)
        if link.customer_id in outage.responses:
            raise AlreadyAnswered(f"customer {link.customer_id} already answered round "
                                  f"{outage.round} of planned outage {outage.id}")
        if outage.deadline is not None and now >= outage.deadline:
            raise DeadlinePassed(f"the deadline of planned outage {outage.id} passed at "
                                 f"{outage.deadline.isoformat()}")
        given = CustomerAnswer(outage_id=str(outage.id), round=outage.round,
                               customer_id=link.customer_id, answer=answer,
                               window_index=window_index if answer == "accept"
                               else None, reason=reason, windows=list(windows), at=now)
        try:
            with context.bound(who=f"customer:{link.customer_id}"):
                self.save_grouped(given)
        except IntegrityError:
            raise AlreadyAnswered(f"customer {link.customer_id} already answered round "
                                  f"{outage.round} of planned outage {outage.id}") from None
        self.wake.set()
        return outage, given

    def answer_of(self, outage: PlannedOutage, customer_id: str) -> dict[str, Any] | None:
        """A customer's answer to the outage's current round: taken into it, or waiting
        to be."""
        if customer_id in outage.responses:
            return outage.responses[customer_id]
        found = self.index.get(CustomerAnswer.create_id(outage.id, outage.round,
                                                        customer_id), CustomerAnswer)
        return found.record if isinstance(found, CustomerAnswer) else None

    def answering(self, outage_id: UUID) -> PlannedOutage:
        """The outage as an answer is checked against: kept in this process while only
        answers were taken into it since (its status, round, deadline and windows are
        what they were), so a burst of answers does not load a large outage each.

        The store is asked what came after the kept version outside the lock, so the
        threads of a worker answering at once do not wait for each other's round trip;
        what came (answers taken) is applied under it, to the kept copy only if no other
        thread moved it on meanwhile."""
        with self._answering_lock:
            cached = self._answering.get(outage_id)
            version = cached.version if cached is not None else 0
        if cached is not None:
            since = self.recorder.select_events(outage_id, gt=version)
            if not since:
                return cached
            if all(e.topic.endswith("AnswersTaken") for e in since):
                with self._answering_lock:
                    for stored in since:  # only this process reads it: moved on in place
                        if stored.originator_version == cached.version + 1:
                            self.mapper.to_domain_event(stored).mutate(cached)
                    if cached.version >= since[-1].originator_version:
                        return cached
        outage = self.outage(outage_id)
        with self._answering_lock:
            if len(self._answering) >= 64:
                self._answering.pop(next(iter(self._answering)))
            self._answering[outage_id] = outage
        return outage

    def take_all_answers(self, outage_id: UUID) -> int:
        """Take every answer waiting for the outage now (not when the clock comes to
        them): before what must count them all — the deadline, the planner's ranking and
        choice."""
        taken, conflicts = 0, 0
        while True:
            try:
                found = self.take_answers(outage_id)
            except IntegrityError:  # the clock took some at the same moment: again
                conflicts += 1
                if conflicts > 10:
                    raise
                continue
            if not found:
                return taken
            taken += found

    def take_answers(self, outage_id: UUID) -> int:
        """Take every answer waiting for the outage into it, at once, and agree the
        window the policy now chooses (if it still passes the rules); answers to a round
        that is over are marked so and change nothing."""
        waiting = [a for a, _ in self.index.select(
            CustomerAnswer, conditions=[(f"{ANSWER_OUTAGE.sql} = ?", [str(outage_id)]),
                                        (f"{TAKE_DUE.sql} IS NOT NULL", [])],
            limit=ANSWER_BATCH) if a.taken_at is None]
        if not waiting:
            return 0
        outage: PlannedOutage = self.repository.get(outage_id)
        now = self.clock()
        current = [a for a in waiting if outage.status == "negotiating"
                   and a.round == outage.round and a.customer_id not in outage.responses]
        for answer in waiting:
            answer.take(now, "taken" if answer in current else "roundClosed")
        actor = f"customer:{current[-1].customer_id}" if current else CLOCK
        if current:
            outage.take_answers([a.record for a in current], now)
            index, _ = rules.decide(outage.policy, outage.quorum, outage.resolution,
                                    outage.responses, len(outage.windows))
            if index is not None:
                self._try_agree(outage, index, actor,
                                f"agreed by the customers' answers ({outage.policy})")
        with context.bound(who=actor):
            self.save(outage, *waiting)
        return len(waiting)

    def _try_agree(self, outage: PlannedOutage, index: int, actor: str, reason: str) -> bool:
        """Agree a window the answers chose, if it still passes the rules."""
        window = outage.windows[index]
        try:
            rules.check_windows([window], self.clock(), "window")
            self._checked(outage.id, [window], outage.affects, "window", notice=False)
        except (InvalidValue, OutageRuleBroken):
            return False
        outage.agree(window, self.clock(), actor, reason,
                     self.reminder_plan(outage.resolution, window))
        return True

    def resolve_at_deadline(self, outage_id: UUID) -> int:
        """The round's deadline: agreed by the policy (silence counted as consent where
        it says so), or left to the planner with a summary of the answers."""
        outage: PlannedOutage = self.repository.get(outage_id)
        now = self.clock()
        if outage.status != "negotiating" or outage.deadline is None \
                or outage.deadline > now or outage.deadline_summary is not None:
            return 0
        if self.take_all_answers(outage_id):  # every answer given before the deadline
            outage = self.repository.get(outage_id)
        if outage.status != "negotiating":
            return 1
        index, summary = rules.decide(outage.policy, outage.quorum, outage.resolution,
                                      outage.responses, len(outage.windows),
                                      at_deadline=True)
        agreed = index is not None and self._try_agree(
            outage, index, CLOCK, f"agreed at the deadline ({outage.policy}): {summary}")
        if not agreed:
            outage.deadline_passed(summary, now)
        with context.bound(who=CLOCK):
            self.save(outage)
        return 1

    def agree(self, outage_id: UUID, actor: str, window_index: int = 0,
              reason: str | None = None, expected_version: int | None = None
              ) -> PlannedOutage:
        """Agree one of the proposed windows: checked again (blackouts declared, outages
        agreed and caps used since the proposal count); the notice was given when it was
        proposed."""
        outage = self.outage(outage_id, expected_version)
        outage.require("agreed", "negotiating")
        if not 0 <= window_index < len(outage.windows):
            raise InvalidValue({"windowIndex": [
                f"the outage has {len(outage.windows)} proposed window(s): 0 to "
                f"{len(outage.windows) - 1}"]})
        window = outage.windows[window_index]
        self._checked(outage.id, [window], outage.affects, "window", notice=False)
        outage.agree(window, self.clock(), actor, reason,
                     self.reminder_plan(outage.resolution, window))
        self.save(outage)
        return outage

    def reminder_plan(self, resolution: Sequence[Mapping[str, Any]], window: Window
                      ) -> list[dict[str, Any]]:
        """The reminders an agreed window's customers get before it starts: each lead of
        their SLA types (``SLA_OUTAGE_REMINDERS``) whose time is still to come, with the
        SLA types whose customers it is for (``untyped``: customers whose purchased
        offerings have none). Longest lead first."""
        now = self.clock()
        types = {(t["id"], t.get("name")) for c in resolution for t in c["slaTypes"]}
        plan: dict[int, dict[str, Any]] = {}

        def add(lead: int, sla_type: str | None) -> None:
            at = window["start"] - timedelta(seconds=lead)
            if at <= now:
                return
            entry = plan.setdefault(lead, {"lead": lead, "at": at, "slaTypeIds": [],
                                           "untyped": False})
            if sla_type is None:
                entry["untyped"] = True
            else:
                entry["slaTypeIds"].append(sla_type)

        for sla_type, name in sorted(types, key=lambda t: t[0]):
            for lead in self.settings.reminders_for(name, sla_type):
                add(lead, sla_type)
        if any(not c["slaTypes"] for c in resolution):
            for lead in self.settings.reminders_for():
                add(lead, None)
        return [plan[lead] for lead in sorted(plan, reverse=True)]

    def reject(self, outage_id: UUID, actor: str, reason: str,
               expected_version: int | None = None) -> PlannedOutage:
        outage = self.outage(outage_id, expected_version)
        outage.reject(self.clock(), actor, reason)
        self.save(outage)
        return outage

    def cancel(self, outage_id: UUID, actor: str, reason: str,
               expected_version: int | None = None) -> PlannedOutage:
        outage = self.outage(outage_id, expected_version)
        outage.cancel(self.clock(), actor, reason)
        self.save(outage)
        return outage

    def reschedule(self, outage_id: UUID, windows: Sequence[Window], actor: str,
                   reason: str, expected_version: int | None = None) -> PlannedOutage:
        """New windows for an agreed outage, negotiated again: its customers resolved and
        every rule checked again, notice included."""
        outage = self.outage(outage_id, expected_version)
        outage.require("rescheduled", "agreed")
        resolution, purchased, found = self._checked(outage.id, windows, outage.affects)
        outage.reschedule(list(windows), resolution, purchased, found, self.clock(), actor,
                          reason)
        self.save(outage)
        return outage

    def extend(self, outage_id: UUID, end: Any, actor: str, reason: str,
               expected_version: int | None = None) -> PlannedOutage:
        """A later end for an outage in progress: the added time must pass the blackouts
        and the caps (this outage's own minutes counted)."""
        outage = self.outage(outage_id, expected_version)
        if outage.status == "inProgress" and outage.agreed_window is not None \
                and end > outage.agreed_window["end"]:
            added = {"start": outage.agreed_window["end"], "end": end}
            customers = [c["customerId"] for c in outage.resolution]
            rules.check_blackouts([added], self._blackouts(customers), "endDateTime")
            sla_of = {po: sla for c in outage.resolution for po in c["purchasedOfferingIds"]
                      for sla in [self._sla_of_product(po)]}
            rules.check_cap(added, sla_of, self._caps(sla_of),
                            self._others(COUNTED, agreed_only=True), "endDateTime")
        outage.extend(end, self.clock(), actor, reason)
        self.save(outage)
        return outage

    def _sla_of_product(self, product_id: str) -> str | None:
        found = self._fact("purchasedOffering", product_id) or {}
        sla = found.get("slaTypeId")
        return str(sla) if sla else None

    # --- the negotiation's figures ------------------------------------------------------
    def negotiation_summary(self, start: Any = None, end: Any = None) -> dict[str, Any]:
        """The figures of the outages agreed from ``start`` to before ``end``."""
        marks = ",".join("?" * len(COUNTED))
        found = []
        for outage, _ in self.index.select(PlannedOutage, conditions=[
                (f"{STATUS.sql} IN ({marks})", list(COUNTED))]):
            one = figures.negotiation_figures(outage)
            if one is not None and (start is None or one["agreedAt"] >= start) and (
                    end is None or one["agreedAt"] < end):
                found.append(one)
        return {"start": start, "end": end, **figures.summary(found)}

    # --- blackouts -----------------------------------------------------------------------
    def declare_blackouts(self, customer_id: str, periods: Sequence[Mapping[str, Any]],
                          actor: str) -> CustomerBlackouts:
        """A customer's periods free of maintenance, declared once (declared again:
        replaced), checked by every outage that affects the customer."""
        errors = ErrorCollector()
        for n, period in enumerate(periods):
            if period["end"] <= period["start"]:
                errors.add(f"periods.{n}.endDateTime", "must be after startDateTime")
        errors.raise_if_any()
        kept = [dict(p) for p in periods]
        existing = self.index.get(CustomerBlackouts.create_id(customer_id), CustomerBlackouts)
        if existing is None:
            declared = CustomerBlackouts(customer_id=customer_id, periods=kept, actor=actor)
        else:
            declared = self.repository.get(existing.id)
            declared.redeclare(kept, actor)
        self.save(declared)
        return declared

    # --- the planner's ranking of candidate windows, and its choice (``ranking.py``) ------
    def ranking_facts(self, outage: PlannedOutage) -> ranking.Facts:
        """What the candidates of an outage are judged against, read once: who and what it
        affects now (as ``agree`` checks it), their blackouts, SLA terms, caps and the
        other outages."""
        self.check_references(outage.affects)
        resolution_now, sla_of = self.resolve(outage.affects)
        terms = {sla: found for sla in sorted({s for s in sla_of.values() if s})
                 if (found := self._fact("slaType", sla)) is not None}
        return ranking.Facts(
            now=self.clock(), resolution=outage.resolution,
            blackouts=self._blackouts(c["customerId"] for c in resolution_now),
            sla_of=sla_of, terms=terms, caps=self._caps(sla_of),
            open_others=self._others(OPEN, outage.id),
            counted=self._others(COUNTED, outage.id, agreed_only=True),
            overlap_policy=self.settings.overlaps)

    def candidate_windows(self, outage_id: UUID) -> list[dict[str, Any]]:
        """The ranking of an outage in negotiation (after the deadline too): the round's
        proposed windows and the customers' counter-proposals, best first — acceptable
        to the most customers, in the fewest blackout periods, with the least SLA
        exposure, the earliest — each with its scores, whether it passes the rules, and
        why."""
        self.take_all_answers(outage_id)  # the ranking counts every answer given
        outage = self.outage(outage_id)
        outage.require("ranked", "negotiating")
        return ranking.rank(outage.windows, outage.responses, self.ranking_facts(outage))

    def choose_window(self, outage_id: UUID, actor: str, reason: str,
                      candidate: int | None = None, window: Window | None = None,
                      deadline: Any = None, policy: str | None = None,
                      quorum: float | None = None, expected_version: int | None = None
                      ) -> PlannedOutage:
        """The planner's choice of a candidate (its rank, or its window): a new round
        whose one window it is, with the customers who had not found it acceptable; the
        others' acceptance is carried into the round. Checked as ``agree`` checks a
        window (and a counter-proposed window for the notice of those who hear of it
        now). When the carried acceptances already meet the policy (under ``all``:
        every customer accepted it), it is agreed at once."""
        outage = self.outage(outage_id, expected_version)
        outage.require("given a chosen window", "negotiating")
        if self.take_all_answers(outage_id):  # chosen against every answer given
            outage = self.outage(outage_id)
        ranked = ranking.rank(outage.windows, outage.responses, self.ranking_facts(outage))
        chosen = self._chosen(ranked, candidate, window)
        picked = chosen["window"]
        policy = policy or outage.policy
        if quorum is None and policy == outage.policy:
            quorum = outage.quorum
        self._check_round(picked["start"], deadline, policy, quorum, "the chosen window")
        now = self.clock()
        self._checked(outage.id, [picked], outage.affects, "window", notice=False)
        accepted = set(chosen["accepted_by"])
        if chosen["proposed_window_index"] is None:
            told_now = [c for c in outage.resolution if c["customerId"] not in accepted]
            if told_now:
                rules.check_notice([picked], told_now, now, "window")
        carried = [{**outage.responses[c], "answer": "accept", "windowIndex": 0,
                    "reason": None, "windows": []}
                   for c in chosen["accepted_by"]]
        outage.choose_window(picked, carried, now, actor, reason, deadline, policy, quorum)
        index, _ = rules.decide(outage.policy, outage.quorum, outage.resolution,
                                outage.responses, len(outage.windows))
        if index is not None:
            outage.agree(picked, now, actor, f"the chosen window: accepted already "
                                             f"({outage.policy}): {reason}",
                         self.reminder_plan(outage.resolution, picked))
        self.save(outage)
        return outage

    @staticmethod
    def _chosen(ranked: Sequence[dict[str, Any]], candidate: int | None,
                window: Window | None) -> dict[str, Any]:
        """The candidate a choice names: by its rank, or by its window."""
        if (candidate is None) == (window is None):
            raise InvalidValue({"candidate": [
                "name the candidate by its rank (candidate) or by its window (window), "
                "one of the two"]})
        if candidate is not None:
            if not 0 <= candidate < len(ranked):
                raise InvalidValue({"candidate": [
                    f"the ranking has {len(ranked)} candidate(s): 0 to {len(ranked) - 1}"]})
            return ranked[candidate]
        assert window is not None
        found = next((c for c in ranked if (c["window"]["start"], c["window"]["end"])
                      == (window["start"], window["end"])), None)
        if found is None:
            raise InvalidValue({"window": [
                "not a candidate: choose one of the round's proposed windows or a "
                "counter-proposed one (GET …/candidateWindow)"]})
        return found

    # --- customers' calendar feeds (``calendar.py``) ------------------------------------
    def calendar_link(self, customer_id: str) -> dict[str, Any]:
        """The token of a customer's calendar feed: signed, not stored, not expiring (the
        suite's key revokes it)."""
        if not self._replicas("purchasedOffering", CUSTOMER, [customer_id]):
            raise MissingReference({"customerId": [
                f"no purchased offering of customer {customer_id} is known here"]})
        return {"customerId": customer_id,
                "token": calendar.issue(self.server_key, customer_id)}

    def calendar_of(self, token: str) -> tuple[str, list[PlannedOutage]]:
        """The customer a feed token names, and its outages a calendar shows: those it is
        affected by that were agreed, starting at most ``calendar.PAST`` ago, read from
        the stored read model by the customer's tag (never every outage)."""
        customer_id = calendar.check(self.server_key, token)
        since = self.clock() - calendar.PAST
        start = self.index.tables[PlannedOutage].column("startDateTime")
        assert start is not None
        marks = ",".join("?" * len(calendar.SHOWN))
        found = self.index.select(PlannedOutage, conditions=[
            tagged(CUSTOMERS, customer_id),
            (f"{STATUS.sql} IN ({marks})", list(calendar.SHOWN)),
            (f"{start.sql} >= ?", [to_stored(since, "time")])],
            order=f"{start.sql} DESC", limit=calendar.LIMIT)
        return customer_id, [o for o, _ in found if calendar.status_of(o) is not None]
