"""The analysis application: the window summaries monitoring publishes and the replicas
of the registry's resources, kept from the bus, and the aggregate analysis over them.

Built with everything it uses (docs/architecture.md, "Adding a service"): its store's
environment. Analysis reads nothing synchronously from another service: the summaries
carry what monitoring measured and judged, the replicas the SLA types' credit terms and
the purchased offerings' charges. Aggregates are summed in SQL over the stored read
model (``views.py``, ``aggregates.py``), so an answer over a million summaries reads one
row per group, not a million aggregates.

The offering-wide problems (``problems.py`` decides): each customer-level violation is
kept once and applied to its offering's problem in the same save, its counts read in
SQL from the violations' rows; the clock resolves a problem that went quiet.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.analysis import aggregates, credits, problems, trend_series
from services.analysis.domain import (
    CLOCK,
    CreditPeriod,
    ProblemRule,
    ProblemViolation,
    Replica,
    ServiceProblem,
    SlaCredit,
    WindowSummary,
    credit_period_id,
    stable_summary_id,
)
from services.analysis.scheduling import Scheduling, due_items
from services.analysis.settings import AnalysisSettings
from services.analysis.trend_runs import REQUEST, SCHEDULE, TrendRun, TrendSchedule
from services.analysis.views import (
    PROBLEM_OFFERING,
    REPLICA_KIND,
    REPLICA_OFFERING,
    REPLICA_STATUS,
    VIOLATION_AT,
    VIOLATION_CUSTOMER,
    VIOLATION_OFFERING,
    VIOLATION_PURCHASED,
    VIOLATION_RECEIVED,
    AnalysisIndex,
)
from shared import context, times
from shared import replica as replicas
from shared.errors import InvalidValue, MissingReference, NotFound, StaleVersion
from shared.readmodel import Listing, StoredTimetable, to_stored
from shared.replica import Copy
from shared.scheduler import Clock, DueLoop, SystemClock, Wakeup
from shared.store import InboxGroup, ServiceApplication

#: Replicas read a query (ids in one ``IN``).
CHUNK = 500
#: PostgreSQL's memory for an aggregate's sorts and hashes (a million values sorted in
#: memory rather than on disk), for its transaction only.
WORK_MEM = "64MB"


def _at(ref: Mapping[str, Any]) -> datetime:
    return times.parse(str(ref["dateTime"]))


class Analysis(ServiceApplication):
    """Window summaries and the registry facts they are read with; the offering-wide
    problems, the violations they count and their rules."""

    name = "Analysis"
    snapshotting_intervals = {Replica: 50, ServiceProblem: 50}  # noqa: RUF012

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 settings: AnalysisSettings | None = None, clock: Clock | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or AnalysisSettings()
        self.index = AnalysisIndex(self)
        self.wake = Wakeup()
        self.scheduling = Scheduling(self)
        self.timetable = StoredTimetable(self.index, due_items())
        self._periods: set[UUID] = set()  # credit periods known to be open or closed

    def read_models(self) -> list[AnalysisIndex]:
        return [self.index]

    def close(self) -> None:
        self.index.close()
        super().close()

    # --- the clock (``scheduling.py``) ---------------------------------------------------
    def scheduler(self) -> DueLoop:
        """The loop that runs analysis's due work when it falls due (the trend schedule
        planned first, as the settings say)."""
        self.plan_trend_schedule()
        return DueLoop(self.timetable, self.clock, self.scheduling.work(), self.wake,
                       idle=self.settings.tick)

    def tick(self) -> int:
        """Run the work due now; how many items were run."""
        return self.scheduler().run_due()

    # --- what the bus brings ------------------------------------------------------------
    def receive_replica(self, copy: Copy) -> None:
        """Keep a registry resource as its event told it (a newer version only)."""
        self.save(replicas.receive(self.repository, Replica, copy))

    def receive_summary(self, summary: dict[str, Any]) -> WindowSummary | None:
        """Keep a window summary once: one heard before (the same series and window,
        whatever message carried it: a redelivery, a backfill) changes nothing and
        returns None."""
        kept_id = stable_summary_id(str(summary["id"]))
        if self.known(kept_id) is not None:
            return None
        kept = WindowSummary.of(summary)
        assert kept.id == kept_id  # the id is the summary's own
        self.save(kept, self._opened_period(summary))
        return kept

    def _opened_period(self, summary: Mapping[str, Any]) -> CreditPeriod | None:
        """The conformance period a summary counts in, opened now if it is the first to
        (its close then due, ``credits.close_at``); None when it is open already or the
        summary counts in none. A period found in the store is remembered (this
        process's few periods), so a summary reads it once, not every time."""
        period = credits.period_of(summary)
        if period is None:
            return None
        period_id = credit_period_id(*period)
        if period_id in self._periods:
            return None
        group = InboxGroup.current()
        known = group.find(period_id) if group is not None else InboxGroup.UNSEEN
        if known is InboxGroup.UNSEEN:
            try:
                known = self.repository.get(period_id)
            except AggregateNotFoundError:
                known = None
            if known is not None:
                self._periods.add(period_id)  # committed: it cannot go away
        if known is not None:
            return None
        return CreditPeriod(start=period[0], end=period[1], first_seen=self.clock(),
                            settle_seconds=self.settings.credit_settle)

    # --- queries --------------------------------------------------------------------------
    def summary_count(self) -> int:
        """How many window summaries analysis keeps."""
        self.index.catch_up()
        return self.index.count(WindowSummary)

    def fact(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        found = self.index.get(Replica.create_id(kind, resource_id), Replica)
        return found.resource if isinstance(found, Replica) else None

    def facts(self, kind: str, resource_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The kept resources of one kind by id, read in a few queries (500 ids each)."""
        ids = sorted({str(Replica.create_id(kind, rid)) for rid in resource_ids})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            for replica, _ in self.index.select(
                    Replica, conditions=[(f"id IN ({','.join('?' * len(chunk))})", chunk)]):
                found[replica.resource_id] = replica.resource
        return found

    def aggregate(self, query: aggregates.AggregateQuery) -> list[dict[str, Any]]:
        """The figures of a period, grouped as asked (``aggregates.py`` defines them)."""
        table = self.index.tables[WindowSummary]
        columns = {c.name: c for c in table.columns}
        postgres = self.index.postgres
        asked = aggregates.statements(query, self.index.sql_table(WindowSummary), columns,
                                      postgres=postgres)
        with self.index.reading():
            offerings = self.index.query(*asked["offerings"], work_mem=WORK_MEM)
            ranked = self.index.query(*asked["percentiles"], work_mem=WORK_MEM) \
                if offerings else []
            slas, pos = aggregates.credited(offerings)
            terms = self.facts("slaType", slas)
            charges = self.facts("purchasedOffering", pos)
        groups = aggregates.assemble(query, offerings, ranked, terms.get, charges.get,
                                     postgres=postgres)
        return aggregates.rows_of(groups)

    # --- SLA credits (``credits.py``) ----------------------------------------------------
    def close_credit_period(self, period_id: UUID) -> int:
        """Close a conformance period whose time has come: each purchased offering judged
        in it that missed is owed a credit (``credits.owed``), kept as an ``SlaCredit``
        under its purchased offering and period, saved together with the period's close
        — one save, so a second clock's close conflicts and a restart finds it done.
        Those billing can apply are published (``SlaCreditDueEvent``). How many credits
        it kept (0: not due, or closed already)."""
        period: CreditPeriod = self.repository.get(period_id)
        now = self.clock()
        if period.closed_at is not None or period.close_at > now:
            return 0
        owed, windows, purchased = self._owed_in(period)
        behind = self._crossings_behind(period, owed)
        kept = []
        for o in owed:
            crossing_ids, customer = behind.get(o.purchased_offering_id, ([], None))
            o = credits.with_customer(o, customer)
            kept.append(SlaCredit(
                purchased_offering_id=o.purchased_offering_id, customer_id=o.customer_id,
                sla_type_id=o.sla_type_id, period_start=period.start, period_end=period.end,
                breached_periods=o.breached_periods,
                missed_parameters=list(o.missed_parameters),
                credit_percent=credits.percent_text(o.credit_percent),
                amount=None if o.amount is None else str(o.amount), currency=o.currency,
                crossing_ids=crossing_ids, status=o.status, window_count=o.window_count,
                computed_at=now))
        period.close(now, purchased_offering_count=purchased, window_count=windows,
                     credit_count=len(kept),
                     published_count=sum(1 for c in kept if c.status == credits.DUE))
        with context.bound(who=CLOCK):
            self.save(period, *kept)
        return len(kept)

    def _owed_in(self, period: CreditPeriod) -> tuple[list[credits.Owed], int, int]:
        """What each purchased offering judged in a period is owed, with the windows and
        purchased offerings counted: aggregate analysis's statement over the period's
        windows (one row per purchased offering and parameter), its terms and charges
        read from the replicas in a few queries."""
        start, end = period.start.timestamp(), period.end.timestamp()
        query = aggregates.AggregateQuery(start=start, end=end, period=(start, end))
        table = self.index.tables[WindowSummary]
        columns = {c.name: c for c in table.columns}
        asked = aggregates.statements(query, self.index.sql_table(WindowSummary), columns,
                                      postgres=self.index.postgres)
        rows = self.index.query(*asked["offerings"], work_mem=WORK_MEM)
        by_offering: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["po"] is not None:
                by_offering.setdefault(str(row["po"]), []).append(row)
        slas, pos = aggregates.credited(rows)
        terms = self.facts("slaType", slas)
        charges = self.facts("purchasedOffering", pos)
        owed = []
        for po in sorted(by_offering):
            its = by_offering[po]
            sla = next((str(r["sla_type"]) for r in its if r.get("sla_type")), None)
            found = credits.owed(po, its, terms.get(sla) if sla else None, charges.get(po))
            if found is not None:
                owed.append(found)
        windows = sum(int(r.get("windows") or 0) for r in rows)
        return owed, windows, len(by_offering)

    def _crossings_behind(self, period: CreditPeriod, owed: Iterable[credits.Owed]
                          ) -> dict[str, tuple[list[str], str | None]]:
        """By purchased offering owed a credit, the crossings its breached windows of the
        missed parameters raised (in window order), and the customer they name."""
        missed = {o.purchased_offering_id: set(o.missed_parameters) for o in owed}
        table = self.index.tables[WindowSummary]
        c = {col.name: col.sql for col in table.columns}
        name = self.index.sql_table(WindowSummary)
        found: dict[str, tuple[list[str], str | None]] = {}
        ids = sorted(missed)
        for at in range(0, len(ids), CHUNK):
            chunk = ids[at:at + CHUNK]
            rows = self.index.query(
                f"SELECT {c['purchasedOfferingId']} AS po, {c['parameter']} AS parameter, "
                f"{c['crossingId']} AS crossing, {c['customerId']} AS customer FROM {name} "
                f"WHERE {c['scopeType']} = ? AND {c['periodStart']} = ? "
                f"AND {c['periodEnd']} = ? AND {c['breached']} = 1 "
                f"AND {c['purchasedOfferingId']} IN ({','.join('?' * len(chunk))}) "
                f"ORDER BY {c['windowEnd']}, seq",
                ["purchasedOffering", period.start.timestamp(), period.end.timestamp(),
                 *chunk])
            for row in rows:
                po = str(row["po"])
                if row["parameter"] not in missed.get(po, ()):
                    continue
                ids_of, customer = found.get(po, ([], None))
                if row["crossing"] and row["crossing"] not in ids_of:
                    ids_of.append(str(row["crossing"]))
                found[po] = (ids_of, customer or row["customer"])
        return found

    def sla_credits(self) -> Listing:
        return self.index.listing(SlaCredit, present=self._credit_view)

    def sla_credit(self, credit_id: UUID) -> dict[str, Any]:
        credit = self.index.get(credit_id, SlaCredit)
        if not isinstance(credit, SlaCredit):
            raise NotFound(f"no SLA credit {credit_id}")
        return self._credit_view(credit, None)

    def _credit_view(self, credit: SlaCredit, _: Any) -> dict[str, Any]:
        """A credit with the windows of its purchased offering and period that arrived
        after it was computed (``lateWindowCount``: counted, not applied)."""
        table = self.index.tables[WindowSummary]
        c = {col.name: col.sql for col in table.columns}
        [row] = self.index.query(
            f"SELECT COUNT(*) AS n FROM {self.index.sql_table(WindowSummary)} "
            f"WHERE {c['purchasedOfferingId']} = ? AND {c['scopeType']} = ? "
            f"AND {c['periodStart']} = ? AND {c['periodEnd']} = ?",
            [credit.purchased_offering_id, "purchasedOffering",
             credit.period_start.timestamp(), credit.period_end.timestamp()])
        return {**{k: v for k, v in vars(credit).items() if not k.startswith("_")},
                "id": credit.id, "version": credit.version, "period": credit.period,
                "late_window_count": max(0, int(row["n"] or 0) - credit.window_count)}

    def credit_period(self, period_id: UUID) -> CreditPeriod | None:
        found = self.index.get(period_id, CreditPeriod)
        return found if isinstance(found, CreditPeriod) else None

    # --- trend analysis (``trend_series.py``, ``trend_runs.py``) ---------------------------
    def trend_series(self, query: trend_series.TrendQuery) -> list[trend_series.Series]:
        """The series of a question, read in two statements over the stored summaries."""
        table = self.index.tables[WindowSummary]
        columns = {c.name: c for c in table.columns}
        asked = trend_series.statements(query, self.index.sql_table(WindowSummary),
                                        columns, postgres=self.index.postgres)
        with self.index.reading():
            days = self.index.query(*asked["days"], work_mem=WORK_MEM)
            offerings = self.index.query(*asked["offerings"], work_mem=WORK_MEM) \
                if days else []
        return trend_series.series_of(query, days, offerings)

    def analyse_trends(self, query: trend_series.TrendQuery, actor: str) -> TrendRun:
        """Run a trend analysis now, as asked: every series tested, the deteriorating
        ones projected; the run recorded (and so each result published and logged into
        the inventory). A question with more series than ``SLA_ANALYSIS_TREND_MAX_SERIES``
        is refused, naming what narrows it."""
        series = self.trend_series(query)
        cap = self.settings.trend_max_series
        if len(series) > cap:
            raise InvalidValue({"groupBy": [
                f"the question has {len(series):,} series, more than the {cap:,} a run "
                f"may have: filter (productOfferingId, offeringGroupId, slaTypeId, "
                f"customerGroup, customerId), name a parameter, or group more coarsely"]})
        run = self._trend_run(query, series, actor, REQUEST, key=str(uuid.uuid4()))
        self.save(run)
        return run

    def _trend_run(self, query: trend_series.TrendQuery, series: list[trend_series.Series],
                   actor: str, trigger: str, key: str, omitted: int = 0) -> TrendRun:
        results = [trend_series.analyse(query, one) for one in series]
        return TrendRun(key=key, query=query.to_dict(), results=results,
                        analysed_at=self.clock(), actor=actor, trigger=trigger,
                        omitted=omitted)

    def trend_run(self, run_id: uuid.UUID) -> TrendRun:
        found = self.index.get(run_id, TrendRun)
        if not isinstance(found, TrendRun):
            raise NotFound(f"no trend analysis with id {run_id}")
        return found

    def trend_runs(self) -> Listing:
        return self.index.listing(TrendRun)

    # --- the trend schedule ------------------------------------------------------------------
    def _next_scheduled(self, after: datetime) -> datetime | None:
        """The first scheduled run after ``after``: each multiple of the interval since
        1970 (each midnight UTC, for P1D), ``delay`` later."""
        plan = self.settings.trends
        if plan.every <= 0:
            return None
        moment = after.timestamp()
        k = math.floor((moment - plan.delay) / plan.every) + 1
        return datetime.fromtimestamp(k * plan.every + plan.delay, UTC)

    def plan_trend_schedule(self) -> None:
        """Make the schedule the settings describe, or change it to them (a new interval
        or delay is planned from now); nothing when it already says so. Two clocks that
        start together: one makes it, the other finds it."""
        every = self.settings.trends.every
        try:
            schedule: TrendSchedule | None = self.repository.get(TrendSchedule.create_id())
        except AggregateNotFoundError:
            schedule = None
        now = self.clock()
        if schedule is None:
            if every <= 0:
                return
            schedule = TrendSchedule(every=every, delay=self.settings.trends.delay,
                                     next_at=self._next_scheduled(now))
        elif (schedule.every, schedule.delay) != (every, self.settings.trends.delay):
            schedule.replan(every, self.settings.trends.delay, self._next_scheduled(now))
        else:
            return
        try:
            self.save(schedule)
        except IntegrityError:
            pass  # another clock planned it first

    def run_scheduled_trends(self, due_at: datetime) -> int:
        """The scheduled run due at ``due_at``, if it still is: the question the settings
        describe over the lookback ending at the schedule's boundary, recorded with the
        schedule's next due time in one transaction. A clock that was stopped over
        several due times makes the latest one only (the earlier questions are not
        asked later). A question with more series than the cap is run on the first ones
        in order, and the run says how many were left out."""
        try:
            schedule: TrendSchedule = self.repository.get(TrendSchedule.create_id())
        except AggregateNotFoundError:
            return 0
        now = self.clock()
        if schedule.next_at is None or schedule.next_at > now:
            return 0
        plan = self.settings.trends
        following = self._next_scheduled(now)
        due = schedule.next_at if following is None else max(
            schedule.next_at, following - timedelta(seconds=schedule.every))
        end = due.timestamp() - schedule.delay
        query = trend_series.TrendQuery(
            start=end - plan.lookback, end=end, granularity=plan.granularity,
            group_by=plan.group_by, test=plan.test, alpha=plan.alpha, horizon=plan.horizon)
        series = self.trend_series(query)
        cap = self.settings.trend_max_series
        run = self._trend_run(query, series[:cap], "clock", SCHEDULE,
                              key=TrendRun.scheduled_key(due), omitted=max(0, len(series) - cap))
        schedule.ran(str(run.id), following)
        self.save(run, schedule)
        return 1

    # --- offering-wide problems (``problems.py``) --------------------------------------------
    def receive_violation(self, violation: problems.Violation) -> ServiceProblem | None:
        """Keep a customer-level violation once and apply it to its offering's problem
        (open, update or reopen it), in one save. The same violation heard again changes
        nothing and returns None; so does one that changes no problem. A violation whose
        purchased offering names no offering (in the message or the inventory's replica)
        is refused (``NotAViolation``)."""
        kept_id = ProblemViolation.create_id(violation.key)
        if self._stored(kept_id):
            return None
        violation = self._completed(violation)
        now = self.clock()
        kept = ProblemViolation(
            key=violation.key, kind=violation.kind, source_id=violation.source_id,
            purchased_offering_id=violation.purchased_offering_id,
            customer_id=violation.customer_id,
            product_offering_id=str(violation.product_offering_id), at=violation.at,
            received_at=now, parameter=violation.parameter, href=violation.href)
        problem = self._problem_after(violation, now)
        try:
            self.save(kept, *([problem] if problem is not None else []))
        except IntegrityError:
            if self._stored(kept_id):  # kept meanwhile by another consumer: changes nothing
                return None
            raise  # the problem changed meanwhile: handled again
        return problem

    def _stored(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def _completed(self, violation: problems.Violation) -> problems.Violation:
        """The violation with its offering and customer, from the inventory's replica
        where the message left them out."""
        if violation.product_offering_id and violation.customer_id:
            return violation
        item = self.fact("purchasedOffering", violation.purchased_offering_id) or {}
        offering = violation.product_offering_id or item.get("productOfferingId")
        if not offering:
            raise problems.NotAViolation(
                f"{violation.kind} {violation.source_id}: purchased offering "
                f"{violation.purchased_offering_id} names no offering and the inventory "
                f"has no such purchased offering")
        return dataclasses.replace(violation, product_offering_id=str(offering),
                                   customer_id=violation.customer_id
                                   or item.get("customerId"))

    def problem_rule(self, offering_id: str) -> problems.Rule:
        """The rule of an offering: its own, else the default one, else the built-in."""
        for rule_id in (offering_id, problems.DEFAULT):
            found = self.index.get(ProblemRule.create_id(rule_id), ProblemRule)
            if isinstance(found, ProblemRule):
                return found.rule
        return problems.DEFAULT_RULE

    def active_count(self, offering_id: str) -> int:
        """The offering's active purchased offerings, as the inventory's replica says."""
        table = self.index.sql_table(Replica)
        [row] = self.index.query(
            f"SELECT COUNT(*) AS n FROM {table} WHERE {REPLICA_KIND.sql} = ? AND "
            f"{REPLICA_OFFERING.sql} = ? AND {REPLICA_STATUS.sql} = ?",
            ["purchasedOffering", offering_id, "active"])
        return int(row["n"] or 0)

    def _counted(self, offering_id: str, after: datetime, until: datetime | None,
                 received_after: datetime | None) -> list[tuple[str, list[Any]]]:
        conditions = [(f"{VIOLATION_OFFERING.sql} = ?", [offering_id]),
                      (f"{VIOLATION_AT.sql} > ?", [to_stored(after, "time")])]
        if until is not None:
            conditions.append((f"{VIOLATION_AT.sql} <= ?", [to_stored(until, "time")]))
        if received_after is not None:
            conditions.append((f"{VIOLATION_RECEIVED.sql} >= ?",
                               [to_stored(received_after, "time")]))
        return conditions

    def _counts(self, violation: problems.Violation, conditions: list[tuple[str, list[Any]]]
                ) -> tuple[problems.Counts, bool, bool]:
        """The counts of the violations kept that match, and whether the violation's
        purchased offering and customer are among them (it is not kept yet)."""
        po, cu = VIOLATION_PURCHASED.sql, VIOLATION_CUSTOMER.sql
        where = " AND ".join(fragment for fragment, _ in conditions)
        [row] = self.index.query(
            f"SELECT COUNT(*) AS n, COUNT(DISTINCT {po}) AS pos, COUNT(DISTINCT {cu}) AS cus, "
            f"MIN({VIOLATION_AT.sql}) AS first, "
            f"MAX(CASE WHEN {po} = ? THEN 1 ELSE 0 END) AS po_seen, "
            f"MAX(CASE WHEN {cu} = ? THEN 1 ELSE 0 END) AS cu_seen "
            f"FROM {self.index.sql_table(ProblemViolation)} WHERE {where}",
            [violation.purchased_offering_id, violation.customer_id or "",
             *(v for _, values in conditions for v in values)])
        first = None if row["first"] is None else \
            datetime.fromtimestamp(float(row["first"]), UTC)
        counts = problems.Counts(int(row["n"] or 0), int(row["pos"] or 0),
                                 int(row["cus"] or 0), first)
        return counts, bool(row["po_seen"]), bool(row["cu_seen"]) or not violation.customer_id

    def _latest(self, conditions: list[tuple[str, list[Any]]], descending: bool = True,
                limit: int = problems.KEPT) -> list[problems.Violation]:
        order = f"{VIOLATION_AT.sql} {'DESC' if descending else 'ASC'}, seq"
        return [v.violation for v, _ in self.index.select(
            ProblemViolation, conditions=conditions, order=order, limit=limit)]

    def _problem_after(self, violation: problems.Violation, now: datetime
                       ) -> ServiceProblem | None:
        """The offering's problem as the violation leaves it (None: it changes none)."""
        offering_id = str(violation.product_offering_id)
        problem_id = ServiceProblem.create_id(offering_id)
        try:
            problem: ServiceProblem | None = self.repository.get(problem_id)
        except AggregateNotFoundError:
            problem = None
        status = problem.status if problem is not None else None
        rule = self.problem_rule(offering_id)
        active = self.active_count(offering_id)
        if status == problems.OPEN:
            assert problem is not None
            since, received_after = problem.since, problem.received_after
            conditions = self._counted(offering_id, since, None, received_after)
        else:
            since = problems.window_start(rule, violation.at)
            received_after = problem.resolved_at if problem is not None else None
            conditions = self._counted(offering_id, since, violation.at, received_after)
        counted, po_seen, cu_seen = self._counts(violation, conditions)
        counts = counted.plus(violation, po_seen, cu_seen)
        change = problems.decide(status, problems.reached(
            rule, counts.purchased_offerings, active), po_seen, cu_seen)
        if change is None:
            return None
        facts: dict[str, Any] = {
            "rule": rule.wire(), "since": since, "received_after": received_after,
            "last_received_at": now, "changed_at": now,
            "violation_count": counts.violations,
            "affected_count": counts.purchased_offerings,
            "customer_count": counts.customers, "active_count": active}
        ref = violation.ref()
        if change in (problems.OPENS, problems.REOPENS):
            earlier = list(reversed(self._latest(conditions)))
            first = self._latest(conditions, descending=False, limit=1)
            first_ref = first[0].ref() if first and first[0].at <= violation.at else ref
            evidence, affected, customers = [], [], []
            for seen in [*earlier, violation]:
                evidence = problems.latest(evidence, seen.ref())
                affected = problems.latest(affected, seen.purchased_offering_id)
                if seen.customer_id:
                    customers = problems.latest(customers, seen.customer_id)
            last_ref = max([*earlier, violation], key=lambda v: v.at).ref()
            facts.update(first_alert=first_ref, last_alert=last_ref, evidence=evidence,
                         affected=affected, customers=customers)
            if problem is None:
                offering = self.fact("productOffering", offering_id) or {}
                return ServiceProblem(product_offering_id=offering_id,
                                      offering_group_id=offering.get("offeringGroupId"),
                                      offering_name=offering.get("name"), facts=facts)
            assert problem is not None
            problem.reopen(facts)
            return problem
        assert problem is not None
        last = problem.last_alert if _at(problem.last_alert) > violation.at else ref
        first = ref if violation.at < _at(problem.first_alert) else problem.first_alert
        facts.update(first_alert=first, last_alert=last,
                     evidence=problems.latest(problem.evidence, ref),
                     affected=problems.latest(problem.affected,
                                              violation.purchased_offering_id),
                     customers=problems.latest(problem.customers, violation.customer_id)
                     if violation.customer_id else list(problem.customers))
        problem.update(facts, grew=change == problems.GROWS)
        return problem

    def resolve_problem(self, problem_id: UUID) -> int:
        """The clock's work: resolve an open problem once no violation arrived for its
        rule's quiet time (still so when reloaded: a violation just kept moved it on)."""
        problem: ServiceProblem = self.repository.get(problem_id)
        now = self.clock()
        due = problems.problem_due(problem)
        if not due or due[0].at > now:
            return 0
        problem.resolve(now, f"no violation for {problem.rule['quietTime']}")
        with context.bound(who=CLOCK):
            self.save(problem)
        return 1

    def service_problems(self, customer_id: str | None = None) -> Listing:
        """The problems (TMF656 shape, ``schemas.problem_view``); ``customer_id``: those
        of the offerings whose violations include one of the customer's."""
        from services.analysis.schemas import problem_view

        listing = self.index.listing(ServiceProblem, lambda p, _: problem_view(p))
        if customer_id is not None:
            listing.conditions = [(
                f"{PROBLEM_OFFERING.sql} IN (SELECT {VIOLATION_OFFERING.sql} FROM "
                f"{self.index.sql_table(ProblemViolation)} WHERE {VIOLATION_CUSTOMER.sql}"
                f" = ?)", [customer_id])]
        return listing

    def service_problem(self, problem_id: UUID) -> ServiceProblem:
        found = self.index.get(problem_id, ServiceProblem)
        if not isinstance(found, ServiceProblem):
            raise NotFound(f"no service problem with id {problem_id}")
        return found

    def problem_rules(self) -> Listing:
        return self.index.listing(ProblemRule)

    def problem_rule_of(self, rule_id: str) -> ProblemRule:
        found = self.index.get(ProblemRule.create_id(rule_id), ProblemRule)
        if not isinstance(found, ProblemRule):
            raise NotFound(f"no problem rule {rule_id} (the default rule applies: "
                           f"{problems.DEFAULT_RULE.wire()})")
        return found

    def set_problem_rule(self, rule_id: str, fields: Mapping[str, Any],
                         expected_version: int | None = None) -> ProblemRule:
        """Set the rule of an offering (or ``default``); replacing one names its version
        (``If-Match``). The offering must be one the registry told of."""
        if rule_id != problems.DEFAULT and self.fact("productOffering", rule_id) is None:
            raise MissingReference({"ruleId": [
                f"no product offering {rule_id} (or use {problems.DEFAULT})"]})
        try:
            rule = problems.Rule.of(fields)
        except ValueError as exc:
            raise InvalidValue({"body": [str(exc)]}) from None
        wire = rule.wire()
        values = {"count": wire["count"], "share": wire["share"], "period": wire["period"],
                  "quiet_time": wire["quietTime"]}
        try:
            existing: ProblemRule | None = self.repository.get(ProblemRule.create_id(rule_id))
        except AggregateNotFoundError:
            existing = None
        if existing is None:
            if expected_version is not None:
                raise StaleVersion(0, expected_version)
            existing = ProblemRule(rule_id=rule_id, **values)
        else:
            if expected_version is not None and existing.version != expected_version:
                raise StaleVersion(existing.version, expected_version)
            existing.change(**values)
        self.save(existing)
        return existing
