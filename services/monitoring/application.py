"""The monitoring application: regimes, measurement intake, replicas of the registry
and of planned outages, and the queries over evaluations, crossings and alerts.

Lists are answered from the stored read models (``views.py``: regimes over the main log;
crossings, burn alerts and quarantines over the outcomes log), which the blueprint pages
in the database; one item is read from its log's repository."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.monitoring import ingestion
from services.monitoring.budgets import BUDGET_UNIT
from services.monitoring.clock import read_clocks
from services.monitoring.domain import (
    BatchConflict,
    BurnAlert,
    Crossing,
    EvaluatedWindow,
    EvaluatorCheckpoint,
    MeasurementBatch,
    Quarantine,
    QuarantineRelease,
    Regime,
    RegimeClock,
    Replica,
    SeriesEvaluation,
    WindowEvaluation,
)
from services.monitoring.views import MonitoringIndex, OutcomesIndex
from services.monitoring.working_set import WorkingSet
from shared import replica as replicas
from shared.cache import Cache, MemoryCache
from shared.errors import InvalidTransition, InvalidValue, RefusedNow
from shared.readmodel import Listing, StoredIndex
from shared.replica import Copy
from shared.store import AggregateIndex, ServiceApplication


@dataclass
class Outcome:
    """What became of one measurement batch."""

    batch_id: str
    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False
    aggregate: MeasurementBatch | None = None
    # the batch id was recorded before with other samples: refused, nothing recorded
    conflict: bool = False

    @property
    def receipt(self) -> Receipt:
        assert self.aggregate is not None, "a batch refused has no receipt"
        return Receipt(self.aggregate, self.duplicate)


@dataclass(frozen=True)
class Receipt:
    """What the sender of a batch is told: the batch as recorded (the first time), and
    whether this sending was a repeat of it."""

    batch: MeasurementBatch
    duplicate: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch, name)


@dataclass(frozen=True)
class SeriesStatus:
    """The current status of one series: its latest evaluation, with its open crossing
    and open burn alert (if any)."""

    evaluation: WindowEvaluation | SeriesEvaluation
    crossing: Crossing | None = None
    alert: BurnAlert | None = None

    def __getattr__(self, name: str) -> Any:  # regime_id, parameter, scope_type, scope_id
        return getattr(self.evaluation, name)

    @property
    def id(self) -> str:
        e = self.evaluation
        return f"{e.regime_id}:{e.parameter}:{e.scope_type}:{e.scope_id}"

    @property
    def level(self) -> str:
        return self.crossing.level if self.crossing else "ok"

    @property
    def since(self) -> str | None:
        return self.crossing.history[0]["windowStart"] if self.crossing else None

    @property
    def crossing_id(self) -> str | None:
        return str(self.crossing.id) if self.crossing else None

    @property
    def burn_alert(self) -> str | None:
        """The severity of the open burn alert."""
        return self.alert.severity if self.alert else None

    budget_unit = BUDGET_UNIT


@dataclass(frozen=True)
class QuarantineStatus:
    """A quarantine as an operator sees it: with the release asked for, until the
    evaluator has released the series."""

    quarantine: Quarantine
    release: QuarantineRelease | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.quarantine, name)

    @property
    def status(self) -> str:
        if self.quarantine.released:
            return "released"
        return "releaseRequested" if self.release else "quarantined"

    @property
    def released_at(self) -> float | None:
        q = self.quarantine
        return q.modified_on.timestamp() if q.released else None

    @property
    def release_reason(self) -> str | None:
        if self.quarantine.released:
            return (self.quarantine.release or {}).get("reason")
        return self.release.reason if self.release else None


Evaluation = WindowEvaluation | SeriesEvaluation  # one series' evaluation of one window


class RecentEvaluations(AggregateIndex):
    """The most recent window evaluations of every series, for charts and status.

    Evaluations are immutable and many (one per series per window), so memory is bounded:
    each series keeps its last ``per_series``; older ones stay in the log (audit). A window
    is recorded as one :class:`EvaluatedWindow` with every series' figures inside (logs
    recorded before it hold a :class:`WindowEvaluation` per series): each is kept here as
    the series' evaluations it holds."""

    def __init__(self, app: ServiceApplication, per_series: int) -> None:
        super().__init__(app, kinds=(WindowEvaluation, EvaluatedWindow))
        self._series: dict[tuple, collections.deque[Evaluation]] = {}
        self._per_series = per_series

    def _current(self, aggregate_id: UUID) -> None:
        return None  # an evaluation has one event

    def _keep(self, evaluation: Any) -> None:
        for one in (evaluation.series() if isinstance(evaluation, EvaluatedWindow)
                    else (evaluation,)):
            key = (one.regime_id, one.parameter, one.scope_type, one.scope_id)
            recent = self._series.get(key)
            if recent is None:
                recent = self._series[key] = collections.deque(maxlen=self._per_series)
            recent.append(one)

    def all(self, kind: type = WindowEvaluation) -> list[Evaluation]:
        self.catch_up()
        return [e for recent in list(self._series.values()) for e in recent]

    def latest(self) -> list[Evaluation]:
        self.catch_up()
        return [max(recent, key=lambda e: e.window_start)
                for recent in list(self._series.values()) if recent]


class MonitoringOutcomes(ServiceApplication):
    """What the evaluator concludes — window evaluations, crossings, burn alerts and its
    checkpoints — in a log (and tables) of their own, so evaluation never waits for the
    intake's writes, nor the intake for evaluation's."""

    name = "MonitoringOutcomes"
    log_name = "outcomes"  # embedded: var/monitoring.outcomes.sqlite
    log_kinds = (WindowEvaluation, EvaluatedWindow, Crossing, BurnAlert, EvaluatorCheckpoint)
    snapshotting_intervals = {EvaluatorCheckpoint: 5, Crossing: 50}  # noqa: RUF012


class Monitoring(ServiceApplication):
    """Regimes, replicas and the measurement intake; the outcomes live in ``outcomes``."""

    name = "Monitoring"
    snapshotting_intervals = {Regime: 50, Replica: 50, RegimeClock: 50}  # noqa: RUF012

    def __init__(self, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time, cache: Cache | None = None,
                 evaluations_kept: int = 1000) -> None:
        """``env``: the store's; ``cache``: shared by the service's processes (Redis in
        distributed mode), else one of this process; ``evaluations_kept``: per series, for
        the queries (``SLA_EVALUATIONS_KEPT``)."""
        super().__init__(env)
        self.clock = clock
        self.cache: Cache = cache if cache is not None else MemoryCache()
        self._working_set: WorkingSet | None = None
        self.outcomes = MonitoringOutcomes(env)
        self.index = MonitoringIndex(self)  # regimes and replicas
        self.outcomes_index = OutcomesIndex(self.outcomes)  # crossings, alerts, quarantines
        self.evaluations_index = RecentEvaluations(self.outcomes, evaluations_kept)

    @property
    def publishing_store(self) -> ServiceApplication:
        return self.outcomes  # crossings and alerts go out on the bus

    def stores(self) -> list[ServiceApplication]:
        return [self, self.outcomes]

    def read_models(self) -> list[StoredIndex]:
        return [self.index, self.outcomes_index]

    def close(self) -> None:
        self.outcomes_index.close()
        self.index.close()
        self.outcomes.close()
        super().close()

    @property
    def working_set(self) -> WorkingSet:
        """The replicas and regimes intake checks samples against, in memory (bounded by
        the estate), loaded from the stored ``monitoring`` index at first use."""
        if self._working_set is None:
            self._working_set = WorkingSet(self.index, self.cache)
        self._working_set.refresh()
        return self._working_set

    # --- regimes ------------------------------------------------------------------------
    def _get(self, kind: type, aggregate_id: UUID, expected_version: int | None = None) -> Any:
        return self.get(kind, aggregate_id, expected_version)

    def start_regime(self, *, name: str, window: str, offering_group_id: UUID | None = None,
                     offering_id: UUID | None = None, sla_type_id: UUID | None = None,
                     customer_group: str | None = None, parameters: list[str] | None = None,
                     allowed_lateness: str = "PT1M", clear_after: int = 1,
                     description: str | None = None) -> Regime:
        """Start watching an offering group's (or one offering's) purchased offerings."""
        fields: dict[str, Any] = {
            "name": name, "description": description, "offering_group_id": offering_group_id,
            "offering_id": offering_id, "sla_type_id": sla_type_id,
            "customer_group": customer_group, "parameters": list(parameters or []),
            "window": window, "allowed_lateness": allowed_lateness,
            "clear_after": clear_after}
        Regime.validate(**fields)
        group_id = fields.get("offering_group_id")
        if group_id is not None and self._group_retired(str(group_id)):
            raise InvalidValue({"offeringGroupId": [
                f"offering group {group_id} is retired in the registry; it is not watched"]})
        regime = Regime(**fields)
        self.save(regime)
        return regime

    def regime(self, regime_id: UUID) -> Regime:
        return self._get(Regime, regime_id)

    def regimes(self) -> Listing:
        return self.index.listing(Regime)

    def change_regime(self, regime_id: UUID, changes: Mapping[str, Any],
                      expected_version: int | None = None) -> Regime:
        regime = self._get(Regime, regime_id, expected_version)
        regime.change(**changes)
        self.save(regime)
        return regime

    def set_regime_status(self, regime_id: UUID, action: str, reason: str | None = None,
                          expected_version: int | None = None) -> Regime:
        regime = self._get(Regime, regime_id, expected_version)
        if action == "pause":
            regime.pause(reason)
        elif action == "resume":
            regime.resume()
        else:
            regime.stop(reason)
        self.save(regime)
        return regime

    # --- replicas -----------------------------------------------------------------------
    def receive_replica(self, kind: str, resource_id: str, resource: dict[str, Any],
                        source_version: int) -> None:
        """Keep the newest state of another service's resource (idempotent, any order).

        When an offering group is retired, the regimes watching it are stopped, with the
        reason, in the same save (the registry refuses to retire a group that offerings or
        standards still use, so such a regime had nothing left to watch)."""
        replica = replicas.receive(self.repository, Replica,
                                   Copy(kind, resource_id, resource, source_version))
        stopped = []
        if kind == "offeringGroup" and replica.resource.get("lifecycleStatus") == "retired":
            for listed in self.index.all(Regime, offeringGroupId=resource_id):
                if listed.status != "stopped":
                    # Stopped on a copy from the store, not on the index's object: a save
                    # that fails must not leave a reader believing it stopped.
                    regime = self._get(Regime, listed.id)
                    regime.stop(f"offering group {replica.resource.get('name')!r} "
                                f"({resource_id}) was retired in the registry")
                    stopped.append(regime)
        self.save(replica, *stopped)

    def _group_retired(self, group_id: str) -> bool:
        # not heard of (yet): the registry owns groups, do not guess
        group = replicas.find(self.repository, Replica, "offeringGroup", group_id)
        return group is not None and group.resource.get("lifecycleStatus") == "retired"

    # --- measurements -------------------------------------------------------------------
    def _watermarks(self, regime_ids: Sequence[str]) -> dict[str, float]:
        marks = {}
        for regime_id in regime_ids:
            raw = self.cache.get(f"watermark:{regime_id}")
            if raw is not None:
                marks[regime_id] = float(raw)
        return marks

    def check_batch(self, samples: Any) -> ingestion.Checked:
        return self.check_batches([samples])[0]

    def check_batches(self, batches: Sequence[Any]) -> list[ingestion.Checked]:
        """Check several batches against one view of the working set and watermarks."""
        ws = self.working_set
        regime_ids = [str(r.id) for r in ws.regimes()]
        marks = self._watermarks(regime_ids)
        clocks = read_clocks(self.cache, regime_ids)
        now = self.clock()
        return [ingestion.check(samples, ws, marks, now, clocks) for samples in batches]

    def record_batches(self, batches: Sequence[tuple[str, str, ingestion.Checked]]
                       ) -> list[Outcome]:
        """Record checked batches in one transaction (one commit for many messages).

        A batch id seen before is not counted twice: its aggregate id derives from it, so
        the store refuses the duplicate; then each is saved alone to tell which.
        """
        outcomes = []
        aggregates = []
        for batch_id, source, checked in batches:
            aggregate = MeasurementBatch.of(batch_id, source, checked.accepted,
                                            checked.rejected, checked.digest)
            aggregates.append(aggregate)
            outcomes.append(Outcome(batch_id, len(checked.accepted), checked.rejected,
                                    aggregate=aggregate))
        try:
            self.save(*aggregates)
        except IntegrityError:
            for outcome, aggregate in zip(outcomes, aggregates, strict=True):
                fresh = MeasurementBatch.of(aggregate.batch_id, aggregate.source,
                                            aggregate.samples, aggregate.rejected,
                                            aggregate.content_digest)
                try:
                    self.save(fresh)
                except IntegrityError:
                    outcome.duplicate = True
                    existing = self.batch(aggregate.batch_id)
                    if existing is not None:
                        outcome.aggregate = existing
                        outcome.conflict = not self._same_batch(existing, aggregate)
        newest: dict[str, float] = {}
        for (_, _, checked), outcome in zip(batches, outcomes, strict=True):
            if not outcome.duplicate:
                for regime_id, t in checked.newest.items():
                    newest[regime_id] = max(newest.get(regime_id, t), t)
        for regime_id, t in newest.items():
            self.cache.raise_to(f"watermark:{regime_id}", t)
        return outcomes

    @staticmethod
    def _same_batch(existing: MeasurementBatch, again: MeasurementBatch) -> bool:
        """Is ``again`` (just checked, not recorded) a repeat of the recorded batch?"""
        if existing.content_digest is not None:
            return existing.content_digest == again.content_digest
        # Recorded before digests were kept: compare what it recorded.
        return [list(r[:6]) for r in existing.samples] == again.samples and \
            existing.rejected == again.rejected

    def repeat_of(self, batch_id: str, samples: Any, digest: str | None = None
                  ) -> MeasurementBatch | None:
        """The recorded batch ``batch_id`` if these samples repeat it; None if there is
        none; :class:`BatchConflict` if it was recorded with other samples."""
        existing = self.batch(batch_id)
        if existing is None:
            return None
        if existing.content_digest is not None:
            same = existing.content_digest == (digest or ingestion.content_digest(samples))
        else:
            same = ingestion.same_samples(existing.samples, existing.rejected, samples)
        if not same:
            raise BatchConflict(f"batch {batch_id} was recorded before with other samples; "
                                f"send new samples under a new batchId")
        return existing

    def ingest(self, batch_id: str, source: str, samples: Any) -> Outcome:
        """Check and record one batch; a batch id seen before answers what it got then
        (the same samples) or is refused (other samples)."""
        existing = self.repeat_of(batch_id, samples)
        if existing is not None:
            return Outcome(batch_id, len(existing.samples), existing.rejected, duplicate=True,
                           aggregate=existing)
        checked = self.check_batch(samples)
        if not checked.accepted:
            reasons = ({f"samples.{r['index']}.{r['field']}".rstrip("."): [r["reason"]]
                        for r in checked.rejected[:100]} or {"samples": ["no sample"]})
            raise RefusedNow(reasons) if checked.rejected and not checked.malformed \
                else InvalidValue(reasons)
        outcome = self.record_batches([(batch_id, source, checked)])[0]
        if outcome.conflict:
            raise BatchConflict(f"batch {batch_id} was recorded before with other samples; "
                                f"send new samples under a new batchId")
        if outcome.duplicate and outcome.aggregate is not None:  # sent twice at once
            existing = outcome.aggregate
            return Outcome(batch_id, len(existing.samples), existing.rejected, duplicate=True,
                           aggregate=existing)
        return outcome

    def batch(self, batch_id: str) -> MeasurementBatch | None:
        try:
            return self.repository.get(MeasurementBatch.create_id(batch_id))
        except AggregateNotFoundError:
            return None

    # --- quarantine ---------------------------------------------------------------------
    def quarantines(self) -> list[Quarantine]:
        """What the evaluators set aside (series and batches), oldest first."""
        return self.outcomes_index.all(Quarantine)

    def quarantine(self, quarantine_id: UUID) -> Quarantine:
        return self.outcomes.get(Quarantine, quarantine_id)

    def quarantine_statuses(self) -> Listing:
        """Every quarantine with the release asked for, oldest first (its ``status`` and
        release come from the intake log: filtered after the database narrowed)."""
        return self.outcomes_index.listing(Quarantine,
                                           present=lambda q, _: self._status_of(q))

    def quarantine_status(self, quarantine_id: UUID) -> QuarantineStatus:
        return self._status_of(self.quarantine(quarantine_id))

    def _status_of(self, quarantine: Quarantine) -> QuarantineStatus:
        return QuarantineStatus(quarantine, None if quarantine.released
                                else self.release_requested(quarantine.id))

    def release_requested(self, quarantine_id: UUID) -> QuarantineRelease | None:
        try:
            return self.repository.get(QuarantineRelease.create_id(quarantine_id))
        except AggregateNotFoundError:
            return None

    def release_quarantine(self, quarantine_id: UUID, reason: str | None,
                           requested_by: str | None) -> QuarantineStatus:
        """Ask the evaluator to evaluate a quarantined series again (after the cause was
        fixed, e.g. a replica corrected). The request is recorded in the intake log, so
        the series resumes at this point of the log in every replay; a batch that was set
        aside is never evaluated again (send its samples in a new batch).

        Returns the status this request left (release requested): the evaluator wakes on
        the request at once and may have released the series before the caller reads it
        again, which the quarantine's own status then says."""
        quarantine = self.quarantine(quarantine_id)
        if quarantine.kind != "series":
            raise InvalidTransition("a quarantined batch is not evaluated again; send its "
                                    "samples again under a new batchId")
        if quarantine.released:
            raise InvalidTransition("the series was released already")
        release = QuarantineRelease(quarantine_id=quarantine.id,
                                    partition=quarantine.partition, key=quarantine.key,
                                    reason=reason, requested_by=requested_by)
        try:
            self.save(release)
        except IntegrityError:
            raise InvalidTransition("the release of this series was requested already"
                                    ) from None
        return QuarantineStatus(quarantine, release)

    # --- queries ------------------------------------------------------------------------
    def crossings(self) -> Listing:
        return self.outcomes_index.listing(Crossing)

    def crossing(self, crossing_id: UUID) -> Crossing:
        return self.outcomes.get(Crossing, crossing_id)

    def burn_alerts(self) -> Listing:
        return self.outcomes_index.listing(BurnAlert)

    def evaluations(self) -> list[Evaluation]:
        """The recent evaluations of every series (``SLA_EVALUATIONS_KEPT`` each)."""
        return self.evaluations_index.all()

    def status(self) -> list[SeriesStatus]:
        """The latest evaluation of every series, with its open crossing and alert."""
        latest = {(e.regime_id, e.parameter, e.scope_type, e.scope_id): e
                  for e in self.evaluations_index.latest()}
        open_crossings = {(c.regime_id, c.parameter, c.scope_type, c.scope_id): c
                          for c in self.outcomes_index.all(Crossing, open=True)}
        open_alerts = {(a.regime_id, a.parameter, a.scope_type, a.scope_id): a
                       for a in self.outcomes_index.all(BurnAlert, open=True)}
        return [SeriesStatus(evaluation, open_crossings.get(key), open_alerts.get(key))
                for key, evaluation in latest.items()]
