"""The evaluator: a projection of the measurement batches in the order they were
recorded (in monitoring's intake log). It closes windows, evaluates them against the
standards in force, runs each series' crossing and error-budget state, and writes what it
concludes to a log of its own (``Monitoring.outcomes``). Its place in a measurement's way
to a message, and its partitions: docs/architecture.md.

Exactly once, deterministic: each round's evaluations, crossings and alerts are saved
with a tracking record of the last batch read, in one transaction. Its in-memory state
is checkpointed now and then; after a crash it reloads the checkpoint and replays the
batches after it without emitting what was already saved — so the results equal those
of an uninterrupted run, and a restart never replays all history.

One bad input never stops it: when evaluating a series fails (a value no aggregation
can hold, a replica it cannot read), the series is quarantined — a ``Quarantine`` in the
outcomes log, effective at the batch being read — and the round starts again from the
last saved position with that series set aside; when a failure cannot be put down to a
series, that one batch is set aside. Replays apply the same quarantines at the same
positions, so they isolate exactly as the first run did. Failures of the store or the
cache are not the data's fault: those rounds are retried until the store is back.
"""

from __future__ import annotations

import base64
import functools
import logging
import operator
import threading
import time
import zlib
from dataclasses import asdict
from typing import Any
from uuid import UUID, uuid4

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from prometheus_client import Counter, Gauge

from services.monitoring.availability import Availability, availability, pooled_availability
from services.monitoring.budget_ledger import BudgetLedger, LedgerFormatError
from services.monitoring.budgets import (
    BUDGET_UNIT,
    budget_denominator,
    projected_exhaustion,
    remaining_budget,
)
from services.monitoring.burn_rates import burn_alerts, burn_rate, burn_rules
from services.monitoring.crossing_state import CrossingState, Transition, is_planned, step
from services.monitoring.domain import (
    BurnAlert,
    Crossing,
    EvaluatedWindow,
    EvaluatorCheckpoint,
    EvaluatorCheckpointPart,
    MeasurementBatch,
    Quarantine,
    QuarantineRelease,
    Regime,
    RegimeClock,
    WindowEvaluation,
    decode_rows,
    seconds,
    window_figures,
)
from services.monitoring.levels import classify, normalise_comparator
from services.monitoring.measurement import (
    Measurement,
    Sample,
    gaps,
    in_outage,
    to_unit,
    value_in_unit,
)
from services.monitoring.periods import Period, conformance_period, longest_period_seconds
from services.monitoring.working_set import Level, WorkingSet, missing_data
from shared.store import topics_of
from shared.times import iso
from shared.wakeups import Wakeup, sleep

log = logging.getLogger(__name__)

SAMPLES = Counter("sla_monitoring_samples_total", "Samples read by the evaluator", ["outcome"])
WINDOWS = Counter("sla_monitoring_windows_total", "Windows evaluated", ["classification"])
_WINDOW_COUNTERS: dict[str, Any] = {}
LAG = Gauge("sla_monitoring_evaluator_position", "Last notification evaluated")
QUARANTINED = Counter("sla_monitoring_quarantined_total",
                      "Series and batches the evaluator set aside because evaluating them "
                      "failed", ["kind"])
QUARANTINED_SERIES = Gauge("sla_monitoring_quarantined_series",
                           "Series currently quarantined", ["partition"])


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Failures of the store or the cache: not the data's fault, so retried, never
    quarantined."""
    errors: list[type[BaseException]] = [PersistenceError, OSError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


TRANSIENT = _transient_errors()


class SeriesFailed(Exception):
    """Evaluating a window of one series failed (raised by the per-series wrapper)."""

    def __init__(self, series: str, regime_id: str, parameter: str, cause: BaseException
                 ) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.series, self.regime_id, self.parameter = series, regime_id, parameter


class Isolated(Exception):
    """A quarantine was recorded: the round starts again from the last saved position."""

Series = tuple[str, str, str, str]  # regime id, parameter, scope type, scope id
SEVERITY_RANK = {"ticket": 1, "page": 2}
NEVER = float("-inf")
# A gap longer than this (no data, or a status held) is evaluated for its latest windows.
MAX_GAP_WINDOWS = 1000
# What a window without any data is judged, per treatment of missing data.
SILENT = {"unknown": "unknown", "counted-as-down": "breached", "noData": "noData"}
CHECKPOINT_FORMAT = 2
# Bytes of compressed state per checkpoint part: each part is one small event (and database
# parameter), whatever the number of series.
CHECKPOINT_PART_BYTES = 256 * 1024
# A checkpoint takes at most this share of the evaluator's time: after a save that took d
# seconds, the next waits at least d / CHECKPOINT_SHARE.
CHECKPOINT_SHARE = 0.05
# While it saves, a checkpoint rests as long as it worked (slice by slice), leaving at least
# half of a core — and of the interpreter, in embedded mode — to the intake.
CHECKPOINT_REST = 1.0
CHECKPOINT_SLICE = 2000  # ledgers encoded between rests
CHECKPOINT_BYTES = Gauge("sla_monitoring_checkpoint_bytes",
                         "Compressed bytes of the evaluator's last checkpoint")


_status_of = operator.itemgetter(5)
_po_of, _parameter_of, _observed_of, _interval_of = (operator.itemgetter(i)
                                                     for i in (0, 1, 2, 4))


@functools.lru_cache(maxsize=4096)
def _iso(moment: float) -> str:
    """A window boundary as text: every series of a window names the same two."""
    return iso(moment)


def _key(*parts: str) -> str:
    return "|".join(parts)


def covered_windows(observed: float, interval: float | None, w: int) -> tuple[float, float]:
    """The first and last window a sample touches: an interval sample covers the
    interval ending at its observed time (split over every window it overlaps)."""
    last = ((observed - 1e-6) // w) * w if interval else (observed // w) * w
    first = ((observed - interval) // w) * w if interval else last
    if last - first > 1000 * w:  # a very long interval: only the most recent windows
        first = last - 1000 * w
    return first, last


class State:
    """Everything the evaluator remembers between batches (JSON-able for checkpoints)."""

    def __init__(self) -> None:
        # "regime|parameter" -> window start -> purchased offering -> sample rows
        self.windows: dict[str, dict[float, dict[str, list[list[Any]]]]] = {}
        self.watermark: dict[str, float] = {}
        self.closed_until: dict[str, float] = {}
        self.clock: dict[str, list[float]] = {}          # regime -> [origin, until]
        # "regime|parameter" -> purchased offering -> its last status row (it holds)
        self.held: dict[str, dict[str, list[Any]]] = {}
        self.empty: dict[str, int] = {}                   # series key -> empty windows
        self.no_data: dict[str, str] = {}                 # series key -> noData crossing id
        self.crossing: dict[str, CrossingState] = {}  # series key -> state
        self.open_crossing: dict[str, str] = {}           # series key -> crossing id
        self.ledgers: dict[str, BudgetLedger] = {}
        self.alerts: dict[str, list[str]] = {}            # series key -> [severity, alert id]
        self.late: dict[str, int] = {}
        # series key -> [conformance period start, agreed-outage seconds excluded in it]
        self.excluded: dict[str, list[float]] = {}
        self.quarantined: dict[str, str] = {}             # "regime|parameter" -> quarantine id

    def to_dict(self, ledgers: dict[str, Any] | None = None) -> dict[str, Any]:
        """``ledgers``: the ledgers already encoded (the checkpoint encodes them in slices)."""
        return {
            "windows": {k: {repr(ws): v for ws, v in w.items()} for k, w in self.windows.items()},
            "watermark": self.watermark, "closedUntil": self.closed_until,
            "clock": self.clock, "held": self.held, "empty": self.empty,
            "noData": self.no_data,
            "crossing": {k: asdict(v) for k, v in self.crossing.items()},
            "openCrossing": self.open_crossing,
            "ledgers": ledgers if ledgers is not None else {
                k: v.to_dict() for k, v in self.ledgers.items()},
            "alerts": self.alerts, "late": self.late, "excluded": self.excluded,
            "quarantined": self.quarantined,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        state = cls()
        if not data:
            return state
        state.windows = {k: {float(ws): v for ws, v in w.items()}
                         for k, w in data["windows"].items()}
        state.watermark = dict(data["watermark"])
        state.closed_until = dict(data["closedUntil"])
        state.clock = {k: list(v) for k, v in data.get("clock", {}).items()}
        state.held = {k: dict(v) for k, v in data.get("held", {}).items()}
        for key, row in data.get("lastStatus", {}).items():  # checkpoints before "held"
            regime_id, parameter, po_id = key.split("|", 2)
            state.held.setdefault(_key(regime_id, parameter), {})[po_id] = row
        state.empty = dict(data.get("empty", {}))
        state.no_data = dict(data.get("noData", {}))
        state.crossing = {k: CrossingState(**v) for k, v in data["crossing"].items()}
        state.open_crossing = dict(data["openCrossing"])
        state.ledgers = {k: BudgetLedger.from_dict(v) for k, v in data["ledgers"].items()}
        state.alerts = dict(data["alerts"])
        state.late = dict(data["late"])
        state.excluded = {k: list(v) for k, v in data.get("excluded", {}).items()}
        state.quarantined = dict(data.get("quarantined") or {})
        return state


class Evaluator:
    # What the evaluator reads, in log order: the batches, the regimes' clocks, and the
    # operators' releases of quarantined series.
    BATCH_TOPICS = topics_of([MeasurementBatch, RegimeClock, QuarantineRelease])

    def __init__(self, app: Any, partition: int = 0, partitions: int = 1, batch: int = 50,
                 checkpoint_seconds: float = 10.0, poll_interval: float = 1.0,
                 wake: Wakeup | None = None) -> None:
        """``partition`` of ``partitions``: each evaluator takes the regimes whose id
        hashes to its partition, so several processes share the load while every series
        stays with one evaluator, in order.

        ``wake``: the intake log's wakeup (``app.recorded``): the evaluator sleeps until
        the log has new events, and at most ``poll_interval`` seconds (a lost wake-up
        delays an evaluation by that much at most); None: it polls every
        ``poll_interval``."""
        self.app = app
        self.index, self.partitions = partition, partitions
        self.partition = "main" if partitions == 1 else f"{partition}-of-{partitions}"
        self.tracking_name = f"evaluator:{self.partition}"
        self.batch = batch
        self.checkpoint_seconds = checkpoint_seconds
        self.poll_interval = poll_interval
        self._woken = wake.waiter() if wake is not None else None
        self.state = State()
        self.position = 0
        self.saved = 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_pause = 0.0
        self._pending: dict[UUID, Any] = {}
        self._routes_of: dict[tuple[str, str], list[Any]] = {}
        self._route_lists: dict[tuple[Any, ...], list[Any]] = {}
        # Place a usual batch whole (:meth:`_place_at_once`); False: always row by row
        # (the equivalence tests hold the two to the same state).
        self.at_once = True
        self._routes_generation = -1
        # the series judged in the window being evaluated: (scope type, scope id, result)
        self._window: list[tuple[str, str, dict[str, Any]]] = []
        self.last_error: str | None = None
        # intake position -> the quarantines that take effect there (this partition's)
        self._quarantine_at: dict[int, list[Quarantine]] = {}

    # --- lifecycle ------------------------------------------------------------------------
    def recover(self) -> None:
        """Load the checkpoint and replay what came after it, emitting nothing saved.

        A failure met while replaying is isolated like one met live (a quarantine at that
        position), and the replay starts again: each pass records one more quarantine, so
        it ends."""
        while True:
            try:
                self._recover()
                return
            except Isolated:
                continue

    def _recover(self) -> None:
        self._quarantine_at = {}
        for q in self.app.quarantines():
            if q.partition == self.partition:
                self._quarantine_at.setdefault(q.position, []).append(q)
        try:
            self.state, self.position = self._load_checkpoint()
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 - e.g. a state format older than this code
            # The log is the truth: replaying it all gives the same state, just slower.
            log.exception("evaluator %s cannot read its checkpoint; replaying the whole log",
                          self.partition)
            self.state, self.position = State(), 0
        self.saved = self.app.outcomes.process_recorder.max_tracking_id(self.tracking_name) or 0
        replayed = 0
        ws = self.app.working_set
        for n in self.app.notifications(after=self.position, topics=self.BATCH_TOPICS):
            if n.id > self.saved:
                break
            self._apply_isolated(n, emit=False, ws=ws)
            self.position = n.id
            replayed += 1
        self.position = max(self.position, self.saved)
        self._pending.clear()
        QUARANTINED_SERIES.labels(self.partition).set(len(self.state.quarantined))
        log.info("evaluator %s recovered at %s (replayed %s batches)", self.partition,
                 self.position, replayed)

    def run(self, stop: threading.Event) -> None:
        recovered = False
        while not stop.is_set():
            if self._woken is not None:
                self._woken.clear()  # before reading: a save from now on wakes it again
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                done = self.run_once()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - the store is down: recover, retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("evaluator round failed (not the data's fault); recovering")
                recovered = False
                stop.wait(1.0)
                continue
            if done < self.batch:
                if self._woken is None:
                    stop.wait(self.poll_interval)
                else:
                    sleep(self._woken, stop, self.poll_interval)

    def run_once(self) -> int:
        """Evaluate the batches recorded since the last round; returns how many."""
        notifications = self.app.recorder.select_notifications(
            start=self.position, limit=self.batch, inclusive_of_start=False,
            topics=self.BATCH_TOPICS)
        if not notifications:
            self._maybe_checkpoint()
            return 0
        self._pending = {}
        ws = self.app.working_set  # caught up once a round
        try:
            for n in notifications:
                self._apply_isolated(n, emit=True, ws=ws)
        except Isolated:
            # Nothing of this round was saved: start again from the last saved position,
            # now with the failing series (or batch) set aside.
            self._pending = {}
            self.recover()
            return len(notifications)
        last = notifications[-1].id
        self.app.outcomes.save_tracked(Tracking(self.tracking_name, last),
                                       *self._pending.values())
        self._pending = {}
        self.position = self.saved = last
        LAG.set(last)
        QUARANTINED_SERIES.labels(self.partition).set(len(self.state.quarantined))
        self._maybe_checkpoint()
        return len(notifications)

    def _maybe_checkpoint(self, force: bool = False) -> None:
        wait = max(self.checkpoint_seconds, self._checkpoint_pause)
        if not force and time.monotonic() - self._last_checkpoint < wait:
            return
        started = time.monotonic()
        checkpoint_id = self._checkpoint_id()
        try:
            checkpoint = self.app.outcomes.repository.get(checkpoint_id)
        except AggregateNotFoundError:
            checkpoint = EvaluatorCheckpoint(partition=self.partition)
        if checkpoint.position == self.position:
            self._last_checkpoint = time.monotonic()
            return
        manifest = self.save_state_parts(self.position)
        checkpoint.checkpoint(position=self.position, state=manifest)
        self.app.outcomes.save(checkpoint)
        self._last_checkpoint = time.monotonic()
        self._checkpoint_pause = (self._last_checkpoint - started) / CHECKPOINT_SHARE

    def _checkpoint_id(self) -> UUID:
        return EvaluatorCheckpoint.create_id(self.partition)

    def save_state_parts(self, position: int) -> dict[str, Any]:
        """Write the state as compressed parts, each in a transaction of its own (never one
        large parameter, never a long transaction); returns the manifest that makes them the
        checkpoint once saved."""
        def rest(since: float) -> None:
            time.sleep((time.perf_counter() - since) * CHECKPOINT_REST)

        items = list(self.state.ledgers.items())
        ledgers: dict[str, Any] = {}
        for offset in range(0, len(items), CHECKPOINT_SLICE):
            began = time.perf_counter()
            ledgers.update((k, v.to_dict()) for k, v in items[offset:offset + CHECKPOINT_SLICE])
            rest(began)
        began = time.perf_counter()
        blob = zlib.compress(orjson.dumps(self.state.to_dict(ledgers)), 1)
        rest(began)
        generation = uuid4().hex  # a save cut short never collides with the next one
        count = 0
        for count, offset in enumerate(range(0, len(blob), CHECKPOINT_PART_BYTES), start=1):
            began = time.perf_counter()
            data = base64.b64encode(blob[offset:offset + CHECKPOINT_PART_BYTES]).decode()
            self.app.outcomes.save(EvaluatorCheckpointPart(
                partition=self.partition, generation=generation, position=position,
                index=count - 1, data=data))
            rest(began)
        CHECKPOINT_BYTES.set(len(blob))
        return {"format": CHECKPOINT_FORMAT, "generation": generation, "parts": count,
                "bytes": len(blob)}

    def _load_checkpoint(self) -> tuple[State, int]:
        """The checkpointed state and position; nothing (replay from the start) when there
        is none or it holds budget ledgers of the old one-bucket-a-minute format."""
        try:
            checkpoint = self.app.outcomes.repository.get(self._checkpoint_id())
        except AggregateNotFoundError:
            return State(), 0
        manifest = checkpoint.state
        if manifest.get("format") != CHECKPOINT_FORMAT:  # the older inline form
            try:
                return State.from_dict(manifest), checkpoint.position
            except LedgerFormatError:
                log.warning("evaluator %s: checkpoint holds old-format budget ledgers; "
                            "rebuilding the state from the whole log", self.partition)
                return State(), 0
        blob = b"".join(
            base64.b64decode(self.app.outcomes.repository.get(
                EvaluatorCheckpointPart.create_id(self.partition, manifest["generation"], i)).data)
            for i in range(manifest["parts"]))
        return State.from_dict(orjson.loads(zlib.decompress(blob))), checkpoint.position

    def checkpoint(self) -> None:
        self._maybe_checkpoint(force=True)

    # --- isolation ------------------------------------------------------------------------
    def _apply_isolated(self, notification: Any, emit: bool, ws: WorkingSet) -> None:
        """Apply one notification; a failure that is the data's fault is quarantined (the
        series when it can be told, else the batch) and :class:`Isolated` raised."""
        try:
            self._apply(notification, emit, ws)
        except SeriesFailed as failure:
            self._quarantine(notification, failure.series, failure.regime_id,
                             failure.parameter, str(failure), live=emit)
            raise Isolated from failure
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure is the batch's
            self._quarantine(notification, None, None, None, f"{type(exc).__name__}: {exc}",
                             live=emit)
            raise Isolated from exc

    def _quarantine(self, notification: Any, series: str | None, regime_id: str | None,
                    parameter: str | None, reason: str, live: bool) -> None:
        """Record that ``series`` (or, with None, the batch) is set aside from this
        notification on. Recorded once: a series that fails again at the same position
        despite its quarantine takes the batch with it; a batch that still fails is not
        the data's fault, and the failure goes up (the round is retried)."""
        try:
            batch_id = str(getattr(self.app.mapper.to_domain_event(notification),
                                   "batch_id", ""))
        except Exception:  # noqa: BLE001 - an event that cannot even be read
            batch_id = ""
        position = int(notification.id)
        already = {q.key for q in self._quarantine_at.get(position, ())}
        if series is not None and series in already:
            series = regime_id = parameter = None
        key = series or f"batch:{position}"
        if key in already:
            raise RuntimeError(f"notification {position} still fails although set aside: "
                               f"{reason}")
        kind = "series" if series else "batch"
        quarantine = Quarantine(partition=self.partition, kind=kind, key=key,
                                regime_id=regime_id, parameter=parameter, batch_id=batch_id,
                                position=position, reason=reason[:1000])
        try:
            self.app.outcomes.save(quarantine)
        except IntegrityError:
            pass  # recorded by an earlier, interrupted run
        QUARANTINED.labels(kind).inc()
        log.error("evaluator %s quarantined %s %s at notification %s (batch %s)%s: %s",
                  self.partition, kind, key, position, batch_id,
                  "" if live else " while replaying", reason)

    def _set_aside(self, quarantine: Quarantine) -> None:
        """A quarantined series: its open windows (and the statuses they held) are dropped
        and its samples skipped until it is released; its crossing and budget state stay
        as they were."""
        st = self.state
        st.quarantined[quarantine.key] = str(quarantine.id)
        st.windows.pop(quarantine.key, None)
        st.held.pop(quarantine.key, None)  # statuses held from its samples
        st.late.pop(quarantine.key, None)

    def _release(self, request: Any, position: int, emit: bool) -> None:
        """An operator's release, read in its place in the log: the series is evaluated
        again from the next sample on."""
        if request.partition != self.partition:
            return
        if self.state.quarantined.get(request.key) != str(request.quarantine_id):
            return  # not quarantined here (any more)
        del self.state.quarantined[request.key]
        if emit:
            quarantine = self._load(request.quarantine_id)
            if not quarantine.released:
                quarantine.resumed(position=position, reason=request.reason,
                                   requested_by=request.requested_by)
        log.info("evaluator %s released series %s at notification %s", self.partition,
                 request.key, position)

    def _evaluate_series(self, regime: Regime, parameter: str, start: float, end: float,
                         by_po: dict[str, list[list[Any]]], ws: WorkingSet, emit: bool
                         ) -> None:
        """Evaluate one window of one series; a failure names the series."""
        try:
            self._evaluate(regime, parameter, start, end, by_po, ws, emit)
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - attributed to this series
            regime_id = str(regime.id)
            raise SeriesFailed(_key(regime_id, parameter), regime_id, parameter, exc) from exc

    # --- one batch ------------------------------------------------------------------------
    def _apply(self, notification: Any, emit: bool, ws: WorkingSet | None = None) -> None:
        quarantines = self._quarantine_at.get(notification.id)
        if quarantines:
            for quarantine in quarantines:
                if quarantine.kind == "batch":
                    SAMPLES.labels("quarantined").inc()
                    return  # set aside whole
                self._set_aside(quarantine)
        batch = self.app.mapper.to_domain_event(notification)
        if isinstance(batch, QuarantineRelease.Requested):
            self._release(batch, notification.id, emit)
            return
        ws = ws or self.app.working_set
        if isinstance(batch, RegimeClock.Started | RegimeClock.Advanced):
            self._tick(batch, ws, emit)
            return
        st = self.state
        quarantined = st.quarantined
        newest: dict[str, float] = {}
        evaluated = late = 0
        windows_of = st.windows
        closed_until = st.closed_until
        partitions, index = self.partitions, self.index
        batch_id = batch.batch_id
        skipped = 0
        # Each series' routes of this partition, kept while the working set is the same;
        # what each route needs, looked up once a batch (nothing below changes the closed
        # bounds or clocks: windows close after the batch is read).
        if self._routes_generation != ws.generation:
            self._routes_of = {}
            self._route_lists = {}
            self._routes_generation = ws.generation
        routes_of = self._routes_of
        contexts: dict[str, tuple[float, list[float] | None]] = {}
        rows = decode_rows(batch.rows)
        placed = self._place_at_once(rows, batch_id) if self.at_once and rows else None
        if placed is not None:
            regime_id, latest, evaluated, late = placed
            if latest is not None:
                newest[regime_id] = latest
            rows = []
        for row in rows:
            po_id, observed, interval = row[0], row[2], row[4]
            row.append(batch_id)  # rows are fresh from the store: the evidence rides along
            key = (po_id, row[1])
            routes = routes_of.get(key)
            if routes is None:
                routes = [r for r in ws.routes_for(po_id, row[1])
                          if partitions == 1 or r.partition % partitions == index]
                # the same regimes, the same list: a batch is told apart at a glance
                routes = routes_of[key] = self._route_lists.setdefault(tuple(routes), routes)
            for route in routes:
                regime_id, w, series = route.regime_id, route.window_seconds, route.series
                if quarantined and series in quarantined:
                    skipped += 1  # its time still moves the regime's windows on
                    if observed > newest.get(regime_id, NEVER):
                        newest[regime_id] = observed
                    continue
                context = contexts.get(series)
                if context is None:
                    context = contexts[series] = (closed_until.get(regime_id, NEVER),
                                                  st.clock.get(regime_id))
                closed, clock = context
                if interval:
                    first, last = covered_windows(observed, interval, w)
                else:
                    first = last = (observed // w) * w
                if last + w <= closed or (clock is not None and
                                          clock[0] < last + w <= clock[1]):
                    st.late[series] = st.late.get(series, 0) + 1
                    late += 1
                    continue
                windows = windows_of.get(series)
                if windows is None:
                    windows = windows_of[series] = {}
                if first == last and clock is None and last >= closed:  # the usual case
                    by_po = windows.get(last)
                    if by_po is None:
                        by_po = windows[last] = {}
                    rows = by_po.get(po_id)
                    if rows is None:
                        by_po[po_id] = [row]
                    else:
                        rows.append(row)
                else:
                    start = first if first >= closed else closed
                    while start <= last:
                        if clock is not None and clock[0] < start + w <= clock[1]:
                            start += w  # closed on the clock
                            continue
                        by_po = windows.get(start)
                        if by_po is None:
                            by_po = windows[start] = {}
                        rows = by_po.get(po_id)
                        if rows is None:
                            by_po[po_id] = [row]
                        else:
                            rows.append(row)
                        start += w
                if observed > newest.get(regime_id, NEVER):
                    newest[regime_id] = observed
                evaluated += 1
        SAMPLES.labels("evaluated").inc(evaluated)
        if late:
            SAMPLES.labels("late").inc(late)
        if skipped:
            SAMPLES.labels("quarantined").inc(skipped)
        for regime_id, t in newest.items():
            st.watermark[regime_id] = max(st.watermark.get(regime_id, t), t)
            regime = ws.regime(regime_id)
            if regime is not None:
                self._close(regime, ws, emit)

    def _place_at_once(self, rows: list[list[Any]], batch_id: str
                       ) -> tuple[str, float | None, int, int] | None:
        """Place a usual batch whole: each of its rows that this partition evaluates is
        watched by the same one regime, none is quarantined or covers an interval, and all
        fall in one window that is still open (or all in one that closed: all late). The
        rows then go to that window together, with the tests made once for the batch
        instead of once a row. Returns (regime, newest observed time or None when all were
        late, rows placed, rows late); None when the batch is not of that kind (or some
        of its series were not routed yet in this generation): nothing was changed, and
        :meth:`_apply` places it row by row — to the same state."""
        routes_of = self._routes_of
        lists = list(map(routes_of.get, zip(map(_po_of, rows), map(_parameter_of, rows),
                                             strict=True)))
        if None in lists:
            return None
        distinct = dict(zip(map(id, lists), lists, strict=True))
        mine = [routes for routes in distinct.values() if routes]
        if len(mine) != 1 or len(mine[0]) != 1:
            return None
        route = mine[0][0]
        st = self.state
        series = route.series
        if st.quarantined and series in st.quarantined:
            return None
        own = rows if len(distinct) == 1 else [
            row for row, routes in zip(rows, lists, strict=True) if routes]
        if list(map(_interval_of, own)).count(None) != len(own):
            return None
        observed = list(map(_observed_of, own))
        w = route.window_seconds
        start = (min(observed) // w) * w
        if (max(observed) // w) * w != start:
            return None  # across a window's end
        regime_id = route.regime_id
        closed = st.closed_until.get(regime_id, NEVER)
        clock = st.clock.get(regime_id)
        end = start + w
        if end <= closed or (clock is not None and clock[0] < end <= clock[1]):
            st.late[series] = st.late.get(series, 0) + len(own)
            return regime_id, None, 0, len(own)
        if start < closed:
            return None  # a window the clock closed part of the way: row by row
        windows = st.windows.get(series)
        if windows is None:
            windows = st.windows[series] = {}
        by_po = windows.get(start)
        if by_po is None:
            by_po = windows[start] = {}
        for row in own:
            row.append(batch_id)  # the evidence rides along
            kept = by_po.get(row[0])
            if kept is None:
                by_po[row[0]] = [row]
            else:
                kept.append(row)
        return regime_id, max(observed), len(own), 0

    def _tick(self, event: Any, ws: WorkingSet, emit: bool) -> None:
        """The regime's clock moved: close what processing time has passed."""
        regime_id = str(event.regime_id)
        if self.partitions > 1 and zlib.crc32(regime_id.encode()) % self.partitions != \
                self.index:
            return
        st = self.state
        if isinstance(event, RegimeClock.Started):
            st.clock.setdefault(regime_id, [event.origin, event.origin])
            return
        regime = ws.regime(regime_id)
        if regime is None:
            origin, until = st.clock.get(regime_id, [event.until, event.until])
            st.clock[regime_id] = [origin, max(until, event.until)]
            return
        self._close(regime, ws, emit, until=event.until)

    def _close(self, regime: Regime, ws: WorkingSet, emit: bool,
               until: float | None = None) -> None:
        """Evaluate every window of the regime that just closed — on event time (its
        newest sample passed the window's end plus the allowed lateness) or on the clock
        (``until``: processing time did) — including windows in which some or all of its
        purchased offerings sent nothing: a held status, or a silent offering the scope
        expects, is evaluated too."""
        st = self.state
        regime_id = str(regime.id)
        w, lateness = regime.window_seconds, regime.lateness_seconds
        closed = st.closed_until.get(regime_id, NEVER)
        origin, clock_until = st.clock.get(regime_id, (NEVER, NEVER))
        new_until = clock_until if until is None else max(clock_until, until)
        if until is not None and origin == NEVER:
            origin = clock_until = until  # its start was not seen: watch from here
        mark = st.watermark.get(regime_id)
        new_closed = closed
        if mark is not None:
            new_closed = max(closed, ((mark - lateness) // w) * w)
        if origin > NEVER and new_closed >= origin:
            new_closed = max(new_closed, new_until)  # event time reached the clock's range

        def was_closed(end: float) -> bool:
            return end <= closed or origin < end <= clock_until

        def is_closed(end: float) -> bool:
            return end <= new_closed or origin < end <= new_until

        prefix = regime_id + "|"
        row_series = [k for k in st.windows if k.startswith(prefix)]
        ends: set[float] = set()
        lowest = closed
        if lowest == NEVER:
            starts = [s for k in row_series for s in st.windows[k]]
            lowest = min(starts) if starts else NEVER
        for lo, hi in ((lowest, new_closed), (max(clock_until, origin), new_until)):
            if lo == NEVER or hi <= lo:
                continue
            end = max(lo + w, hi - (MAX_GAP_WINDOWS - 1) * w)
            while end <= hi:
                if not was_closed(end) and is_closed(end):
                    ends.add(end)
                end += w
        active = regime.status == "active"
        parameters = {k.split("|", 1)[1] for k in row_series}
        if active:
            parameters.update(k.split("|", 1)[1] for k in st.held if k.startswith(prefix))
            parameters.update(ws.missing_parameters(regime))
        for parameter in sorted(parameters):
            series = _key(regime_id, parameter)
            if series in st.quarantined:
                continue  # set aside until released
            windows = st.windows.get(series, {})
            closing = ends | {s + w for s in windows if is_closed(s + w)}
            held = st.held.get(series) if active else None
            expected = active and ws.treats_missing(parameter)
            for end in sorted(closing):
                start = end - w
                by_po = windows.pop(start, None) or {}
                if held:
                    for po_id in list(held):
                        po = ws.purchased_offering(po_id)
                        if po is None or not ws.watches(regime, po):
                            del held[po_id]  # left the scope: its status no longer counts
                        else:
                            by_po.setdefault(po_id, [])
                if expected:
                    for po in ws.expected(regime, start, end):
                        by_po.setdefault(str(po["id"]), [])
                if by_po:
                    self._evaluate_series(regime, parameter, start, end, by_po, ws, emit)
            if not windows:
                st.windows.pop(series, None)
            if held is not None and not held:
                st.held.pop(series, None)
        if new_closed > NEVER:
            st.closed_until[regime_id] = new_closed
        if origin > NEVER:
            st.clock[regime_id] = [origin, new_until]

    # --- one window -----------------------------------------------------------------------
    def _evaluate(self, regime: Regime, parameter: str, start: float, end: float,
                  by_po: dict[str, list[list[Any]]], ws: WorkingSet, emit: bool) -> None:
        """Measure and judge one closed window (:meth:`_measure_window`), and record
        what every series of it got in one :class:`EvaluatedWindow`."""
        self._window = []
        batch_ids = self._measure_window(regime, parameter, start, end, by_po, ws, emit)
        if emit and self._window:
            evaluated = EvaluatedWindow(
                regime_id=regime.id, parameter=parameter, window_start=start, window_end=end,
                batch_ids=batch_ids, figures=window_figures(self._window, batch_ids))
            self._pending[evaluated.id] = evaluated
        self._window = []

    def _measure_window(self, regime: Regime, parameter: str, start: float, end: float,
                        by_po: dict[str, list[list[Any]]], ws: WorkingSet, emit: bool
                        ) -> list[str]:
        """Measure and judge one closed window: each purchased offering against its own
        standard, then the regime's scope (group or offering) pooled. Where an agreed outage
        overlaps the window, the value without the outage's time is measured too (is the
        crossing planned?). Returns the batches that fed the window, sorted."""
        batch_ids = sorted({r[6] for rows in by_po.values() for r in rows})
        regime_id = str(regime.id)
        sla_types = {(ws.purchased_offering(po_id) or {}).get("slaTypeId") for po_id in by_po}
        members_sla_type = sla_types.pop() if len(sla_types) == 1 else None
        group_level = ws.level_for(None, parameter, start, regime, members_sla_type)
        group_aggregation = group_level.parameter["aggregation"] if group_level else None
        group_missing = missing_data(group_level.parameter)[0] if group_level else "unknown"
        pooled_parts: list[Availability] = []
        pooled_without: list[Availability] = []
        pooled_values: list[float] = []
        pooled_values_without: list[float] = []
        pooled_count = 0
        planned = overlap = False
        reported = False  # did any purchased offering send (or hold) data in the window
        holding = self.state.held.get(_key(regime_id, parameter), {})
        # The standard in force depends on the offering, group and SLA type only: looked up
        # once a window for the purchased offerings that share them.
        levels: dict[tuple[Any, Any, Any], Level | None] = {}
        for po_id in sorted(by_po):
            po = ws.purchased_offering(po_id)
            rows = by_po[po_id]
            if po:
                traits = (po.get("productOfferingId"), po.get("offeringGroupId"),
                          po.get("slaTypeId"))
                if traits in levels:
                    level = levels[traits]
                else:
                    level = levels[traits] = ws.level_for(po, parameter, start)
            else:
                level = None
            aggregation = level.parameter["aggregation"] if level else None
            outages = [o for o in ws.outages(po_id) if o.start < end and o.end > start]
            overlap = overlap or bool(outages)
            missing = missing_data(level.parameter)[0] if level else "unknown"
            silent = not rows and po_id not in holding
            reported = reported or not silent
            if silent and missing == "unknown" and group_missing == "unknown":
                continue  # nothing sent, and nothing to make of it
            measurement = None
            if "availability" in (aggregation, group_aggregation) or any(
                    map(_status_of, rows)):  # a status is "up" or "down", else None
                samples = self._samples(regime_id, parameter, po_id, rows, start)
                if "availability" in (aggregation, group_aggregation):
                    accounting = ws.accounting(po) if po else "excluded"
                    fill = self._down(samples, missing, start, end, po_id, parameter)
                    part = availability(samples + fill, start, end, outages, accounting)
                    without = part if not outages or accounting == "excluded" else (
                        availability(samples + fill, start, end, outages, "excluded"))
                    pooled_parts.append(part if missing == group_missing else
                                               availability(samples + self._down(
                                                   samples, group_missing, start, end, po_id,
                                                   parameter), start, end, outages, accounting))
                    pooled_without.append(without)
                    pooled_count += len(samples)
                    planned = planned or part.planned_down > 0
                    if aggregation == "availability":
                        unit = level.parameter.get("unit", "%")
                        measurement = Measurement(
                            to_unit(part.ratio, unit), len(samples), part.eligible,
                            part.down, part.planned_down > 0, part.excluded, bool(outages),
                            to_unit(without.ratio, unit))
            # The fast path for values: no sample objects.
            values = [r[3] for r in rows
                      if r[3] is not None and r[3] == r[3] and start <= r[2] < end]
            values_without = values if not outages else [
                r[3] for r in rows if r[3] is not None and r[3] == r[3]
                and start <= r[2] < end and not in_outage(r[2], outages)]
            pooled_values.extend(values)
            pooled_values_without.extend(values_without)
            if level is None or (silent and missing == "unknown"):
                continue
            if measurement is None:
                unit = level.parameter.get("unit")
                value = value_in_unit(aggregation, values, unit)
                measurement = Measurement(
                    value, len(values), 0.0, 0.0, False, 0.0, bool(outages),
                    value if values_without is values else value_in_unit(
                        aggregation, values_without, unit))
            self._judge(regime, parameter, ("purchasedOffering", po_id), start, end, level,
                        measurement, sorted({r[6] for r in rows}), emit,
                        time_zone=ws.time_zone(po.get("slaTypeId")))
        if group_level is None or (not reported and group_missing == "unknown"):
            return batch_ids
        scope = ("productOffering", str(regime.offering_id)) if regime.offering_id else (
            "offeringGroup", str(regime.offering_group_id))
        unit = group_level.parameter.get("unit", "%")
        members = 1
        if group_aggregation == "availability":
            pooled = pooled_availability(pooled_parts)
            measurement = Measurement(
                to_unit(pooled.ratio, unit), pooled_count, pooled.eligible, pooled.down,
                planned, pooled.excluded, overlap,
                to_unit(pooled_availability(pooled_without).ratio, unit))
            members = sum(1 for part in pooled_parts if part.eligible + part.excluded > 0)
        else:
            value = value_in_unit(group_aggregation, pooled_values, unit)
            measurement = Measurement(
                value, len(pooled_values), 0.0, 0.0, False, 0.0, overlap,
                value if len(pooled_values_without) == len(pooled_values) else
                value_in_unit(group_aggregation, pooled_values_without, unit))
        self._judge(regime, parameter, scope, start, end, group_level, measurement, batch_ids,
                    emit, time_zone=ws.time_zone(
                        str(regime.sla_type_id) if regime.sla_type_id else members_sla_type),
                    members=members)
        return batch_ids

    def _samples(self, regime_id: str, parameter: str, po_id: str, rows: list[list[Any]],
                 start: float) -> list[Sample]:
        """The window's samples of one offering, after the status it holds from before:
        a status sample holds until the next one, across windows without samples."""
        rows = sorted(rows, key=lambda r: (r[2], r[6]))
        samples = []
        series = _key(regime_id, parameter)
        held = self.state.held.get(series)
        carried = held.get(po_id) if held else None
        if carried is not None and carried[2] < start:
            samples.append(Sample(po_id, parameter, carried[2], carried[3], carried[4],
                                      carried[5], carried[6]))
        for r in rows:
            samples.append(Sample(po_id, parameter, r[2], r[3], r[4], r[5], r[6]))
            if r[5] is not None:
                if held is None:
                    held = self.state.held[series] = {}
                held[po_id] = r
        return samples

    @staticmethod
    def _down(samples: list[Sample], missing: str, start: float, end: float, po_id: str,
              parameter: str) -> list[Sample]:
        """Under ``counted-as-down``, the time no sample covers, as down samples."""
        if missing != "counted-as-down":
            return []
        return [Sample(po_id, parameter, b, 0.0, b - a, None, "")
                for a, b in gaps(samples, start, end)]

    def _judge(self, regime: Regime, parameter: str, scope: tuple[str, str], start: float,
               end: float, level: Level, m: Measurement, batch_ids: list[str],
               emit: bool, time_zone: str = "UTC", members: int = 1) -> None:
        """Classify one measured window of one series, keep its budget and crossing state.
        ``time_zone`` (the SLA type's) lays out its conformance periods; ``members`` is the
        number of offerings pooled in it (a group's budget is in offering-seconds)."""
        st = self.state
        regime_id = str(regime.id)
        series = _key(regime_id, parameter, *scope)
        p = level.parameter
        planned = False
        missing, no_data_after = missing_data(p)
        if m.value is None:
            classification = SILENT[missing] if m.count == 0 else "unknown"
        else:
            classification = classify(m.value, p["comparator"], p["conformanceTarget"],
                                          p.get("thresholdTarget"))
            if m.outage_overlap and classification != "ok":
                without = "ok" if m.value_without_outages is None else classify(
                    m.value_without_outages, p["comparator"], p["conformanceTarget"],
                    p.get("thresholdTarget"))
                planned = is_planned(classification, without)
        counter = _WINDOW_COUNTERS.get(classification)
        if counter is None:
            counter = _WINDOW_COUNTERS[classification] = WINDOWS.labels(classification)
        counter.inc()
        evaluation_id = WindowEvaluation.create_id(regime.id, parameter, scope[0], scope[1],
                                                   start)
        result: dict[str, Any] = {
            "value": m.value, "unit": p.get("unit"), "aggregation": p.get("aggregation"),
            "count": m.count, "eligibleSeconds": m.eligible_seconds,
            "badSeconds": m.bad_seconds, "excludedSeconds": m.excluded_seconds,
            "classification": classification,
            "planned": planned, "standardId": level.standard_id,
            "standardVersion": level.standard_version, "comparator": p["comparator"],
            "conformanceTarget": p["conformanceTarget"],
            "thresholdTarget": p.get("thresholdTarget"), "graceTimes": p.get("graceTimes", 0),
            "batchIds": batch_ids, "lateSamples": st.late.pop(_key(regime_id, parameter), 0),
            "remainingBudget": None, "budgetUnit": BUDGET_UNIT, "projectedExhaustion": None,
        }
        evidence = {
            "measuredValue": m.value, "unit": p.get("unit"), "aggregation": p.get("aggregation"),
            "conformanceTarget": p["conformanceTarget"],
            "thresholdTarget": p.get("thresholdTarget"), "comparator": p["comparator"],
            "standardId": level.standard_id, "standardVersion": level.standard_version,
            "windowStart": _iso(start), "windowEnd": _iso(end), "planned": planned,
            "batchIds": batch_ids, "evaluationId": str(evaluation_id),
        }
        if classification == "unknown" and m.excluded_seconds > 0 and seconds(
                p.get("conformancePeriod") or "PT0S") > 0:
            # A window wholly in an excluded outage: nothing to judge, but its time is no
            # longer eligible in the period's budget.
            self._exclude(series, conformance_period(end, p["conformancePeriod"],
                                                         time_zone), m.excluded_seconds)
        if missing == "noData" or series in st.empty or series in st.no_data:
            self._silence(regime, parameter, scope, series, start, end,
                          missing == "noData" and classification == "noData", no_data_after,
                          evidence, emit)
        if classification not in ("unknown", "noData"):
            self._budget(regime, parameter, scope, series, start, end, level, m,
                         classification, result, evidence, emit, time_zone, members)
            state = st.crossing.setdefault(series, CrossingState())
            has_warning = (p.get("thresholdTarget") is not None
                           and normalise_comparator(p["comparator"]) != "EQ")
            transition = step(state, classification, start, int(p.get("graceTimes", 0)),
                                  regime.clear_after, has_warning)
            if transition is not None:
                self._cross(regime, parameter, scope, series, start, transition, evidence, emit)
        result["crossingId"] = st.open_crossing.get(series) or st.no_data.get(series)
        if emit:
            self._window.append((scope[0], scope[1], result))

    def _load(self, aggregate_id: UUID) -> Any:
        if aggregate_id in self._pending:
            return self._pending[aggregate_id]
        aggregate = self.app.outcomes.repository.get(aggregate_id)
        self._pending[aggregate_id] = aggregate
        return aggregate

    def _cross(self, regime: Regime, parameter: str, scope: tuple[str, str], series: str,
               start: float, transition: Transition, evidence: dict[str, Any],
               emit: bool) -> None:
        st = self.state
        if transition.change == "raised":
            crossing_id = Crossing.id_for(regime.id, parameter, scope[0], scope[1], start)
            st.open_crossing[series] = str(crossing_id)
            if emit:
                self._pending[crossing_id] = Crossing(
                    id=crossing_id, regime_id=regime.id, parameter=parameter, scope_type=scope[0],
                    scope_id=scope[1], level=transition.to_level, evidence=evidence)
            return
        crossing_id = st.open_crossing.get(series)
        if crossing_id is None:
            return
        if transition.change == "cleared":
            st.open_crossing.pop(series, None)
        if not emit:
            return
        crossing = self._load(UUID(crossing_id))
        if transition.change == "escalated" and crossing.open and crossing.level != "breached":
            crossing.escalate(evidence)
        elif transition.change == "cleared" and crossing.open:
            crossing.clear(evidence)

    def _exclude(self, series: str, span: Period, excluded_seconds: float) -> float:
        """Add a window's excluded agreed-outage seconds to its conformance period's; the
        period's total so far (a new period starts from 0)."""
        excluded = self.state.excluded.get(series)
        if excluded is None or excluded[0] != span.start:
            excluded = self.state.excluded[series] = [span.start, 0.0]
        excluded[1] += excluded_seconds
        return excluded[1]

    def _silence(self, regime: Regime, parameter: str, scope: tuple[str, str], series: str,
                 start: float, end: float, empty: bool, after: int, evidence: dict[str, Any],
                 emit: bool) -> None:
        """The noData crossing of a series: raised after ``after`` consecutive windows
        without data, cleared by the first window with data again."""
        st = self.state
        if empty:
            count = st.empty[series] = st.empty.get(series, 0) + 1
            if count < after or series in st.no_data:
                return
            crossing_id = Crossing.id_for(regime.id, parameter, scope[0], scope[1], start,
                                          level="noData")
            st.no_data[series] = str(crossing_id)
            if emit:
                silent_since = start - (count - 1) * (end - start)
                self._pending[crossing_id] = Crossing(
                    id=crossing_id, regime_id=regime.id, parameter=parameter,
                    scope_type=scope[0], scope_id=scope[1], level="noData",
                    evidence={**evidence, "emptyWindows": count,
                              "silentSince": iso(silent_since)})
            return
        st.empty.pop(series, None)
        crossing_id = st.no_data.pop(series, None)
        if crossing_id is not None and emit:
            crossing = self._load(UUID(crossing_id))
            if crossing.open:
                crossing.clear(evidence)

    def _budget(self, regime: Regime, parameter: str, scope: tuple[str, str], series: str,
                start: float, end: float, level: Level, m: Measurement,
                classification: str, result: dict[str, Any], evidence: dict[str, Any],
                emit: bool, time_zone: str = "UTC", members: int = 1) -> None:
        """The series' error budget over its calendar conformance period (the one the window
        ends in) and its burn-rate alerts (rolling windows scaled by the period's nominal
        length). The budget's denominator is the period's eligible time."""
        p = level.parameter
        period = p.get("conformancePeriod")
        if not period or p.get("aggregation") not in ("availability", "ratio"):
            return self._budget_gone(series, evidence, emit)
        nominal = float(seconds(period))  # validated by the registry
        if nominal <= 0:
            return self._budget_gone(series, evidence, emit)
        unit = p.get("unit", "%")
        target = p["conformanceTarget"] / 100.0 if unit == "%" else float(p["conformanceTarget"])
        if not 0 < target < 1:
            return self._budget_gone(series, evidence, emit)
        st = self.state
        rules = burn_rules(nominal)
        keep = max(longest_period_seconds(period), max(r[1] for r in rules))
        ledger = st.ledgers.get(series)
        if ledger is None:
            ledger = st.ledgers[series] = BudgetLedger(60, keep, nominal)
        if p.get("aggregation") == "availability":
            ledger.add(start, end, m.eligible_seconds, m.bad_seconds)
        else:
            ledger.add(start, end, end - start, (end - start) if classification == "breached"
                       else 0.0)
        span = conformance_period(end, period, time_zone)
        eligible = budget_denominator(
            span, self._exclude(series, span, m.excluded_seconds), members)
        result.update(periodStart=iso(span.start), periodEnd=iso(span.end),
                      periodEligibleSeconds=eligible)
        result["remainingBudget"] = remaining_budget(ledger, span.start, end, target,
                                                         eligible)
        exhaustion = projected_exhaustion(ledger, span.start, end, target, eligible,
                                              period_end=span.end)
        result["projectedExhaustion"] = None if exhaustion is None else iso(exhaustion)
        self._burn(regime, parameter, scope, series, start, end, ledger, target,
                   nominal, result, evidence, emit)

    # --- burn alerts ----------------------------------------------------------------------
    # One alert has one severity for its whole life (pages and tickets reach different
    # people): when the worst firing rule changes severity, the open alert is resolved and
    # one of the new severity raised in the same window. Every resolution carries the
    # figures of the alert's own rule at that moment and why it was resolved.
    def _burn(self, regime: Regime, parameter: str, scope: tuple[str, str], series: str,
              start: float, end: float, ledger: BudgetLedger, target: float,
              period_seconds: float, result: dict[str, Any], evidence: dict[str, Any],
              emit: bool) -> None:
        st = self.state
        firing = burn_alerts(ledger, end, target, period_seconds)
        worst = max(firing, key=lambda a: (SEVERITY_RANK[a.severity], a.long_burn), default=None)
        current = st.alerts.get(series)
        alert_evidence = {**evidence, "remainingBudget": result["remainingBudget"],
                          "budgetUnit": BUDGET_UNIT,
                          "projectedExhaustion": result["projectedExhaustion"]}
        if current and (worst is None or worst.severity != current[0]):
            severity = current[0]
            rule = current[2:5] if len(current) >= 5 else next(
                r[1:] for r in burn_rules(period_seconds) if r[0] == severity)
            long_w, short_w, factor = rule
            burns = [burn_rate(ledger.error_ratio(end - w, end) or 0.0, target)
                     for w in (long_w, short_w)]
            resolution = "subsided" if worst is None else (
                "escalatedToPage" if SEVERITY_RANK[worst.severity] > SEVERITY_RANK[severity]
                else "fellToTicket")
            self._resolve_alert(series, {
                **alert_evidence, "burnRate": burns[0], "shortBurnRate": burns[1],
                "longWindow": long_w, "shortWindow": short_w, "factor": factor,
                "resolution": resolution}, emit)
            current = None
        if worst is not None and current is None:
            alert_id = BurnAlert.id_for(regime.id, parameter, scope[0], scope[1], start)
            st.alerts[series] = [worst.severity, str(alert_id), worst.long_window,
                                 worst.short_window, worst.factor]
            if emit:
                self._pending[alert_id] = BurnAlert(
                    id=alert_id, regime_id=regime.id, parameter=parameter, scope_type=scope[0],
                    scope_id=scope[1], severity=worst.severity, evidence={
                        **alert_evidence, "burnRate": worst.long_burn,
                        "shortBurnRate": worst.short_burn, "longWindow": worst.long_window,
                        "shortWindow": worst.short_window, "factor": worst.factor})

    def _resolve_alert(self, series: str, evidence: dict[str, Any], emit: bool) -> None:
        current = self.state.alerts.pop(series, None)
        if current is None or not emit:
            return
        alert = self._load(UUID(current[1]))
        if alert.open:
            alert.resolve(evidence)

    def _budget_gone(self, series: str, evidence: dict[str, Any], emit: bool) -> None:
        """The standard in force no longer keeps an error budget for the series (a revision
        without a conformance period, or an aggregation without one): its ledger goes, and
        an open burn alert is resolved with the last figures it had."""
        self.state.ledgers.pop(series, None)
        current = self.state.alerts.get(series)
        if current is None:
            return
        last = self._load(UUID(current[1])).evidence if emit else {}
        figures = {k: last[k] for k in ("burnRate", "shortBurnRate", "longWindow", "shortWindow",
                                        "factor", "remainingBudget", "projectedExhaustion")
                   if k in last}
        self._resolve_alert(series, {**evidence, **figures, "resolution": "budgetRemoved"},
                            emit)
