"""The outage-negotiation service's aggregates: a planned outage (what it affects, the
windows proposed and the one agreed, who is affected as resolved when it was proposed,
and every move of its lifecycle), a customer's declared blackout periods, and the local
copies of the registry's inventory, offerings, groups and SLA types.

Pure Python plus ``eventsourcing``: no web framework, no broker. The rules a window must
pass are in ``rules.py``; when the clock moves an outage, in ``scheduling.py``.

Lifecycle (TMF655's approval states, plus the clock's part)::

    draft -> proposed -> negotiating -> agreed | rejected | cancelled
    agreed -> inProgress (at the agreed start) -> completed (at the agreed end)
    agreed -> negotiating (rescheduled: new windows, negotiated again)
    inProgress -> inProgress (extended: a later end, with a notice)

Every move is an event carrying its actor and reason, and is kept in ``moves``, so the
representation shows the whole path, not only where the outage is now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared import ids, replica
from shared.errors import InvalidTransition

STATUSES = ("draft", "proposed", "negotiating", "agreed", "rejected", "cancelled",
            "inProgress", "completed")
#: Statuses in which an outage still holds (or may come to hold) its purchased offerings:
#: what another outage's windows are checked against for overlaps.
OPEN = ("proposed", "negotiating", "agreed", "inProgress")
#: Statuses whose agreed window counts against a cap of planned minutes.
COUNTED = ("agreed", "inProgress", "completed")
IMPACTS = ("fullOutage", "degraded", "atRisk")
SCOPES = ("offeringGroup", "productOffering", "purchasedOffering", "customerSite")
CLOCK = "outage-negotiation:clock"

Window = dict[str, Any]  # {"start": datetime, "end": datetime}


def stable_id(kind: str, *parts: object) -> UUID:
    return ids.stable_id("outage-negotiation", kind, *parts)


class OutageRuleBroken(InvalidTransition):
    """A window breaks a rule a change manager expects enforced (minimum notice, a
    customer's blackout, an overlap refused by policy, a cap of planned minutes):
    ``rule`` names it, ``details`` say why and what would pass (→ 409)."""

    def __init__(self, rule: str, message: str, details: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.rule, self.details = rule, details


class AlreadyAnswered(InvalidTransition):
    """A customer answers a round it has answered (→ 409 ``ALREADY_ANSWERED``)."""


class DeadlinePassed(InvalidTransition):
    """An answer after the round's deadline (→ 409 ``DEADLINE_PASSED``)."""


POLICIES = ("all", "quorumCustomers", "quorumPurchasedOfferings", "silenceIsConsent")
ANSWERS = ("accept", "reject", "counterPropose")


class PlannedOutage(Aggregate):
    """One planned outage, from the planner's draft to its completion."""

    @event("Drafted")
    def __init__(self, affects: dict[str, Any], windows: list[Window], reason: str,
                 impact: str, planner: str, change_link: str | None, name: str | None,
                 at: datetime) -> None:
        self.affects = dict(affects)
        self.windows = [dict(w) for w in windows]
        self.reason, self.impact, self.planner = reason, impact, planner
        self.change_link, self.name = change_link, name
        self.status = "draft"
        self.created_at = at
        self.agreed_window: Window | None = None
        self.resolution: list[dict[str, Any]] = []
        self.purchased_offering_ids: list[str] = []
        self.offering_group_id: str | None = affects.get("offeringGroupId")
        self.overlaps: list[dict[str, Any]] = []
        self.extensions: list[dict[str, Any]] = []
        self.resolved_at: datetime | None = None
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.was_agreed = False
        self.round = 0
        self.deadline: datetime | None = None
        self.policy, self.quorum = "all", None
        self.responses: dict[str, dict[str, Any]] = {}
        self.deadline_summary: dict[str, Any] | None = None
        self.moves: list[dict[str, Any]] = [
            {"to": "draft", "at": at, "actor": planner, "reason": "drafted"}]

    # --- helpers --------------------------------------------------------------------------
    def _move(self, to: str, at: datetime, actor: str, reason: str | None) -> None:
        self.moves.append({"from": self.status, "to": to, "at": at, "actor": actor,
                           "reason": reason})
        self.status = to

    def require(self, action: str, *allowed: str) -> None:
        """Refuse (409, naming the status) a move the status does not allow: checked
        before the work a move implies, and again by the move itself."""
        if self.status not in allowed:
            raise InvalidTransition(
                f"planned outage {self.id} is {self.status}: it can be {action} only when "
                f"{' or '.join(allowed)}")

    @property
    def current_window(self) -> Window | None:
        """The window in force: the agreed one (extended, if it was), else none."""
        return self.agreed_window

    # --- the planner's moves ----------------------------------------------------------
    def revise(self, changes: dict[str, Any], at: datetime, actor: str) -> None:
        self.require("revised", "draft")
        if changes:
            self._revised(changes=changes, at=at, actor=actor)

    @event("Revised")
    def _revised(self, changes: dict[str, Any], at: datetime, actor: str) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        if "affects" in changes:
            self.offering_group_id = changes["affects"].get("offeringGroupId")
        self.moves.append({"from": "draft", "to": "draft", "at": at, "actor": actor,
                           "reason": "revised: " + ", ".join(sorted(changes))})

    def propose(self, resolution: list[dict[str, Any]], purchased: list[str],
                group_id: str | None, overlaps: list[dict[str, Any]], at: datetime,
                actor: str, reason: str | None) -> None:
        self.require("proposed", "draft")
        self._proposed(resolution=resolution, purchased=purchased, group_id=group_id,
                       overlaps=overlaps, at=at, actor=actor, reason=reason)

    @event("Proposed")
    def _proposed(self, resolution: list[dict[str, Any]], purchased: list[str],
                  group_id: str | None, overlaps: list[dict[str, Any]], at: datetime,
                  actor: str, reason: str | None) -> None:
        self.resolution, self.purchased_offering_ids = resolution, purchased
        self.offering_group_id = group_id
        self.overlaps, self.resolved_at = overlaps, at
        self._move("proposed", at, actor, reason)

    def open_negotiation(self, at: datetime, actor: str, reason: str | None,
                         deadline: datetime | None = None, policy: str = "all",
                         quorum: float | None = None) -> None:
        self.require("negotiated", "proposed")
        self._negotiating(at=at, actor=actor, reason=reason, deadline=deadline,
                          policy=policy, quorum=quorum)

    @event("NegotiationOpened")
    def _negotiating(self, at: datetime, actor: str, reason: str | None,
                     deadline: datetime | None = None, policy: str = "all",
                     quorum: float | None = None) -> None:
        # Opened by an earlier release without a deadline: negotiated by hand only.
        self.deadline, self.policy, self.quorum = deadline, policy, quorum
        self.round = getattr(self, "round", 0) + 1
        self.responses = {}
        self.deadline_summary = None
        self._move("negotiating", at, actor, reason)

    def respond(self, customer_id: str, answer: str, window_index: int | None,
                reason: str | None, windows: list[Window], at: datetime) -> None:
        """A customer's answer in the current round: once, before the deadline."""
        self.require("answered", "negotiating")
        if customer_id not in {c["customerId"] for c in self.resolution}:
            raise InvalidTransition(f"customer {customer_id} is not affected by planned "
                                    f"outage {self.id}")
        if customer_id in self.responses:
            raise AlreadyAnswered(f"customer {customer_id} already answered round "
                                  f"{self.round} of planned outage {self.id}")
        if self.deadline is not None and at >= self.deadline:
            raise DeadlinePassed(f"the deadline of planned outage {self.id} passed at "
                                 f"{self.deadline.isoformat()}")
        self._responded(customer_id=customer_id, answer=answer, window_index=window_index,
                        reason=reason, windows=[dict(w) for w in windows], at=at,
                        round=self.round)

    @event("Responded")
    def _responded(self, customer_id: str, answer: str, window_index: int | None,
                   reason: str | None, windows: list[Window], at: datetime,
                   round: int) -> None:
        # One answer an event: what an earlier release recorded (answers are now
        # CustomerAnswers, taken into the outage in batches by ``take_answers``).
        self.responses[customer_id] = {
            "customerId": customer_id, "answer": answer, "windowIndex": window_index,
            "reason": reason, "windows": windows, "at": at, "round": round}

    def take_answers(self, answers: list[dict[str, Any]], at: datetime) -> None:
        """Take the customers' answers of the current round (each a ``CustomerAnswer``'s
        record) into the outage, where its policy and its planner read them."""
        self.require("answered", "negotiating")
        fresh = [a for a in answers if a["round"] == self.round
                 and a["customerId"] not in self.responses]
        if fresh:
            self._answers_taken(answers=fresh, at=at)

    @event("AnswersTaken")
    def _answers_taken(self, answers: list[dict[str, Any]], at: datetime) -> None:
        for answer in answers:
            self.responses[answer["customerId"]] = dict(answer)

    def deadline_passed(self, summary: dict[str, Any], at: datetime) -> None:
        """The deadline came without an agreement: the outage waits for the planner, with
        what the customers said."""
        self.require("left to the planner", "negotiating")
        self._deadline_passed(summary=summary, at=at, actor=CLOCK)

    @event("DeadlinePassed")
    def _deadline_passed(self, summary: dict[str, Any], at: datetime, actor: str) -> None:
        self.deadline_summary = summary  # the deadline stays: later answers are refused
        self.moves.append({"from": "negotiating", "to": "negotiating", "at": at,
                           "actor": actor, "reason": "deadline passed: left to the planner"})

    def agree(self, window: Window, at: datetime, actor: str, reason: str | None,
              reminders: list[dict[str, Any]] | None = None) -> None:
        """Agree a window, with the reminders its customers will get before it starts
        (``reminders``: each lead, when it falls due, and the SLA types whose customers
        it is for — planned now, so a later change of settings does not move them)."""
        self.require("agreed", "negotiating")
        self._agreed(window=dict(window), at=at, actor=actor, reason=reason,
                     reminders=[dict(r) for r in reminders or []])

    @event("Agreed")
    def _agreed(self, window: Window, at: datetime, actor: str, reason: str | None,
                reminders: list[dict[str, Any]] | None = None) -> None:
        # Agreed by an earlier release: no reminders were planned.
        self.agreed_window, self.was_agreed = window, True
        self.deadline = None
        self.reminders, self.reminded = list(reminders or []), []
        self._move("agreed", at, actor, reason)

    @property
    def pending_reminders(self) -> list[dict[str, Any]]:
        """The planned reminders not yet sent (nor passed over), while the outage is
        agreed and has not started."""
        if self.status != "agreed":
            return []
        done = set(getattr(self, "reminded", ()))
        return [r for r in getattr(self, "reminders", ()) if r["lead"] not in done]

    def remind(self, lead: int, at: datetime, skipped: list[int]) -> None:
        """The reminder ``lead`` seconds before the start goes out (``skipped``: earlier
        leads whose time passed while no clock ran, so only the nearest is sent)."""
        self.require("reminded", "agreed")
        self._reminded(lead=lead, at=at, skipped=list(skipped), actor=CLOCK)

    @event("Reminded")
    def _reminded(self, lead: int, at: datetime, skipped: list[int], actor: str) -> None:
        self.reminded = [*getattr(self, "reminded", []), lead, *skipped]
        self.passed_over = [*getattr(self, "passed_over", []), *skipped]

    def reopen(self, at: datetime, actor: str, reason: str | None,
               deadline: datetime | None, policy: str, quorum: float | None) -> None:
        """A new round: the customers answer again (a rescheduled outage's windows, or
        the planner's choice after the last round)."""
        self.require("negotiated again", "negotiating")
        self._negotiating(at=at, actor=actor, reason=reason, deadline=deadline,
                          policy=policy, quorum=quorum)

    def reject(self, at: datetime, actor: str, reason: str) -> None:
        self.require("rejected", "proposed", "negotiating")
        self._rejected(at=at, actor=actor, reason=reason)

    @event("Rejected")
    def _rejected(self, at: datetime, actor: str, reason: str) -> None:
        self._move("rejected", at, actor, reason)

    def cancel(self, at: datetime, actor: str, reason: str) -> None:
        self.require("cancelled", "draft", "proposed", "negotiating", "agreed")
        self._cancelled(at=at, actor=actor, reason=reason)

    @event("Cancelled")
    def _cancelled(self, at: datetime, actor: str, reason: str) -> None:
        self._move("cancelled", at, actor, reason)

    def reschedule(self, windows: list[Window], resolution: list[dict[str, Any]],
                   purchased: list[str], overlaps: list[dict[str, Any]], at: datetime,
                   actor: str, reason: str) -> None:
        """New windows for an agreed outage: negotiated again with the customers it
        touches (resolved again now), the old window no longer in force."""
        self.require("rescheduled", "agreed")
        self._rescheduled(windows=[dict(w) for w in windows], resolution=resolution,
                          purchased=purchased, overlaps=overlaps, at=at, actor=actor,
                          reason=reason)

    @event("Rescheduled")
    def _rescheduled(self, windows: list[Window], resolution: list[dict[str, Any]],
                     purchased: list[str], overlaps: list[dict[str, Any]], at: datetime,
                     actor: str, reason: str) -> None:
        self.windows, self.agreed_window = windows, None
        self.resolution, self.purchased_offering_ids = resolution, purchased
        self.overlaps, self.resolved_at = overlaps, at
        self.round = getattr(self, "round", 0) + 1
        self.responses, self.deadline = {}, None
        self._move("negotiating", at, actor, reason)

    def extend(self, end: datetime, at: datetime, actor: str, reason: str) -> None:
        self.require("extended", "inProgress")
        assert self.agreed_window is not None
        if end <= self.agreed_window["end"]:
            from shared.errors import InvalidValue

            raise InvalidValue({"endDateTime": [
                f"must be after the current end {self.agreed_window['end'].isoformat()}"]})
        self._extended(end=end, at=at, actor=actor, reason=reason)

    @event("Extended")
    def _extended(self, end: datetime, at: datetime, actor: str, reason: str) -> None:
        assert self.agreed_window is not None
        self.extensions.append({"from": self.agreed_window["end"], "to": end, "at": at,
                                "actor": actor, "reason": reason})
        self.agreed_window = {**self.agreed_window, "end": end}
        self.moves.append({"from": "inProgress", "to": "inProgress", "at": at,
                           "actor": actor, "reason": f"extended: {reason}"})

    # --- the clock's moves --------------------------------------------------------------
    def start(self, at: datetime) -> None:
        self.require("started", "agreed")
        self._started(at=at, actor=CLOCK, reason="the agreed window started")

    @event("Started")
    def _started(self, at: datetime, actor: str, reason: str) -> None:
        self.started_at = at
        self._move("inProgress", at, actor, reason)

    def complete(self, at: datetime) -> None:
        self.require("completed", "inProgress")
        self._completed(at=at, actor=CLOCK, reason="the agreed window ended")

    @event("Completed")
    def _completed(self, at: datetime, actor: str, reason: str) -> None:
        self.completed_at = at
        self._move("completed", at, actor, reason)

    # --- the planner's choice among the candidate windows (``ranking.py``) ----------------
    def choose_window(self, window: Window, carried: list[dict[str, Any]], at: datetime,
                      actor: str, reason: str, deadline: datetime | None, policy: str,
                      quorum: float | None) -> None:
        """The planner's choice of one candidate window: a new round whose only window it
        is. ``carried``: the acceptances of the customers who had found it acceptable,
        carried into the new round as theirs (so they are not asked again, and the
        policy counts them); the others answer the new round."""
        self.require("given a chosen window", "negotiating")
        self._window_chosen(window=dict(window), carried=[dict(c) for c in carried], at=at,
                            actor=actor, reason=reason, deadline=deadline, policy=policy,
                            quorum=quorum)

    @event("WindowChosen")
    def _window_chosen(self, window: Window, carried: list[dict[str, Any]], at: datetime,
                       actor: str, reason: str, deadline: datetime | None, policy: str,
                       quorum: float | None) -> None:
        self.windows = [dict(window)]
        self.deadline, self.policy, self.quorum = deadline, policy, quorum
        self.round = getattr(self, "round", 0) + 1
        self.responses = {c["customerId"]: dict(c) for c in carried}
        self.deadline_summary = None
        self.moves.append({"from": "negotiating", "to": "negotiating", "at": at,
                           "actor": actor,
                           "reason": f"window chosen for round {self.round}: {reason}"})


class CustomerAnswer(Aggregate):
    """One customer's answer to one round of one outage's negotiation, as it came in by
    its response link: named by the three (``create_id``), so a second answer to the
    same round is refused by the store itself, however many processes take answers at
    once. The outage's clock takes the answers into the outage in batches
    (``PlannedOutage.take_answers``) and applies its policy; until then it is due."""

    @staticmethod
    def create_id(outage_id: UUID | str, round: int, customer_id: str) -> UUID:
        return stable_id("answer", str(outage_id), round, customer_id)

    @event("Given")
    def __init__(self, outage_id: str, round: int, customer_id: str, answer: str,
                 window_index: int | None, reason: str | None, windows: list[Window],
                 at: datetime) -> None:
        self.outage_id, self.round, self.customer_id = outage_id, round, customer_id
        self.answer, self.window_index, self.reason = answer, window_index, reason
        self.windows = [dict(w) for w in windows]
        self.at = at
        self.taken_at: datetime | None = None
        self.outcome: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        """The answer as the outage keeps it in ``responses``."""
        return {"customerId": self.customer_id, "answer": self.answer,
                "windowIndex": self.window_index, "reason": self.reason,
                "windows": [dict(w) for w in self.windows], "at": self.at,
                "round": self.round}

    def take(self, at: datetime, outcome: str) -> None:
        """Taken into the outage (``taken``), or not (``roundClosed``: the round was
        over, or the outage no longer in negotiation, when it was taken)."""
        if self.taken_at is None:
            self._taken(at=at, outcome=outcome)

    @event("Taken")
    def _taken(self, at: datetime, outcome: str) -> None:
        self.taken_at, self.outcome = at, outcome


class CustomerBlackouts(Aggregate):
    """The periods a customer declared "no maintenance then": declared once, checked by
    every outage that affects the customer. Named by the customer (``stable_id``)."""

    @classmethod
    def create_id(cls, customer_id: str) -> UUID:
        return stable_id("blackouts", customer_id)

    @event("Declared")
    def __init__(self, customer_id: str, periods: list[dict[str, Any]], actor: str) -> None:
        self.customer_id = customer_id
        self.periods = [dict(p) for p in periods]
        self.declared_by = actor

    def redeclare(self, periods: list[dict[str, Any]], actor: str) -> None:
        if periods != self.periods:
            self._redeclared(periods=[dict(p) for p in periods], actor=actor)

    @event("Redeclared")
    def _redeclared(self, periods: list[dict[str, Any]], actor: str) -> None:
        self.periods, self.declared_by = periods, actor


class Replica(replica.Replica):
    """outage-negotiation's copy of a registry resource — an offering group, a product
    offering, an SLA type, a purchased offering — kept from its events by
    ``shared.replica`` (newer versions only, in any order): what an outage's impact is
    resolved from, never by calling the registry."""

    namespace = "outage-negotiation"
