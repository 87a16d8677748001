"""Bus entrypoint of monitoring: replicas of the registry and of planned outages in,
measurement batches in (batched: many messages, one commit), crossings, burn alerts and
window summaries out (from the outcomes log: a summary per series per closed window, what
analysis aggregates), and the regimes' changes out (from the main log, so the registry
knows which regimes watch a group)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.monitoring import schemas
from services.monitoring.application import Monitoring
from services.monitoring.domain import (
    BatchConflict,
    BurnAlert,
    Crossing,
    EvaluatedWindow,
    Regime,
    Replica,
    WindowEvaluation,
)
from services.monitoring.working_set import WorkingSet
from shared.bus import contracts
from shared.bus.envelope import Envelope, EnvelopeError
from shared.bus.inbox import CONSUMED, Handler
from shared.bus.outbox import Publication, aggregate_after, remember
from shared.bus.topology import MEASUREMENTS, SLA_EVENTS, Binding, QueueSpec
from shared.bus.transport import Delivery, Settle, Transport, backoff
from shared.replica import Replicated, replica_handlers
from shared.times import iso

SERVICE = "monitoring"
log = logging.getLogger(__name__)

BINDINGS = (
    Binding(SLA_EVENTS, "threshold-registry.offering-group.*"),
    Binding(SLA_EVENTS, "threshold-registry.product-offering.*"),
    Binding(SLA_EVENTS, "threshold-registry.sla-type.*"),
    Binding(SLA_EVENTS, "threshold-registry.threshold-standard.*"),
    Binding(SLA_EVENTS, "threshold-registry.purchased-offering.*"),
    Binding(SLA_EVENTS, "outage-negotiation.planned-outage.*"),
)
MEASUREMENT_BINDINGS = (Binding(MEASUREMENTS, "measurement.#"),)


# --- outbound -----------------------------------------------------------------------------
# Each outcome travels with its resource as it was after the change, dumped by its
# message schema (``schemas.CrossingMessage`` / ``BurnAlertMessage``).
CROSSING, BURN_ALERT = schemas.CrossingMessage(), schemas.BurnAlertMessage()


def describer(app: Monitoring) -> Any:
    """The outbox mapping of the outcomes log: each crossing and burn alert change with
    the resource as it was after it (its ``raisedAt`` the change's time), and each closed
    window as one ``WindowSummaryEvent`` per series evaluated in it."""

    def describe(event: DomainEventProtocol) -> Publication | list[Publication] | None:
        if isinstance(event, EvaluatedWindow.Evaluated | WindowEvaluation.Evaluated):
            return window_publications(app, event)
        aggregate = aggregate_after(app.outcomes, event)
        change = type(event).__name__.lower()
        if isinstance(aggregate, Crossing):
            return Publication(f"{SERVICE}.crossing.{change}", "ThresholdCrossingEvent",
                               {"change": change, "crossing": CROSSING.dump(aggregate)})
        if isinstance(aggregate, BurnAlert):
            return Publication(f"{SERVICE}.burn-alert.{change}", "BurnRateAlertEvent",
                               {"change": change, "burnAlert": BURN_ALERT.dump(aggregate)})
        return None

    return describe


WINDOW_SUMMARY = f"{SERVICE}.window-summary.closed"


def window_publications(app: Monitoring, event: DomainEventProtocol) -> list[Publication]:
    """A closed window's summaries, one per series (in the order the window recorded
    them, so a re-sent page gives every summary its message id again). The inventory
    facts are the working set's when the relay describes the window (read once a page)."""
    evaluated = aggregate_after(app.outcomes, event)
    series = (evaluated.series() if isinstance(evaluated, EvaluatedWindow) else [evaluated])
    ws: WorkingSet = remember(app.outcomes, "working-set", lambda: app.working_set)
    regime = remember(app.outcomes, ("regime", evaluated.regime_id),
                      lambda: ws.regime(evaluated.regime_id)
                      or app.index.get(evaluated.regime_id, Regime))
    return [Publication(WINDOW_SUMMARY, "WindowSummaryEvent",
                        {"change": "closed", "windowSummary": window_summary(one, regime, ws)})
            for one in series]


def window_summary(one: Any, regime: Regime | None, ws: WorkingSet) -> dict[str, Any]:
    """One series' closed window as ``WindowSummaryEvent`` carries it: the evaluation's
    figures (``windowEvaluation``'s), its judgement, and who it is about — the purchased
    offering's customer, offering, group and SLA type, or the regime's scope."""
    r = one.result
    facts: dict[str, Any] = {}
    if one.scope_type == "purchasedOffering":
        po = ws.purchased_offering(one.scope_id) or {}
        facts = {"purchasedOfferingId": one.scope_id, "customerId": po.get("customerId"),
                 "customerGroup": po.get("customerGroup"),
                 "productOfferingId": po.get("productOfferingId"),
                 "offeringGroupId": ws.group_of(po) if po else None,
                 "slaTypeId": po.get("slaTypeId")}
    else:
        offering = one.scope_id if one.scope_type == "productOffering" else None
        group = one.scope_id if one.scope_type == "offeringGroup" else (
            (ws.offering(offering) or {}).get("offeringGroupId"))
        facts = {"purchasedOfferingId": None, "customerId": None,
                 "customerGroup": regime.customer_group if regime else None,
                 "productOfferingId": offering, "offeringGroupId": group,
                 "slaTypeId": str(regime.sla_type_id) if regime and regime.sla_type_id
                 else None}
    classification = r.get("classification") or "unknown"
    version = r.get("standardVersion")
    return {
        "id": str(one.id), "@type": "WindowSummary", "regimeId": str(one.regime_id),
        "parameter": one.parameter, "scope": {"type": one.scope_type, "id": one.scope_id},
        **facts,
        "windowStart": iso(one.window_start), "windowEnd": iso(one.window_end),
        "aggregation": r.get("aggregation"), "unit": r.get("unit"),
        "sampleCount": int(r.get("count") or 0), "value": r.get("value"),
        "comparator": r.get("comparator"), "conformanceTarget": r.get("conformanceTarget"),
        "thresholdTarget": r.get("thresholdTarget"),
        "eligibleSeconds": float(r.get("eligibleSeconds") or 0.0),
        "badSeconds": float(r.get("badSeconds") or 0.0),
        "excludedSeconds": float(r.get("excludedSeconds") or 0.0),
        "classification": classification, "breached": classification == "breached",
        "warned": classification == "warning", "planned": bool(r.get("planned")),
        "standardId": None if r.get("standardId") is None else str(r["standardId"]),
        "standardVersion": None if version is None else int(version),
        "periodStart": r.get("periodStart"), "periodEnd": r.get("periodEnd"),
        "crossingId": r.get("crossingId"),
    }


# What a regime's status change is called on the bus (routing key and ``change``).
REGIME_STATUS_CHANGES = {"paused": "paused", "active": "resumed", "stopped": "stopped"}


def regime_resource(regime: Regime) -> dict[str, Any]:
    """A regime as ``MonitoringRegimeChangeEvent`` carries it: its resource, when it was
    started and when this version of it was recorded."""
    return schemas.RegimeMessage().dump(regime)


def regime_describer(app: Monitoring) -> Any:
    """The outbox mapping of the main log: each regime change with the regime as it was
    then (other events of the log, measurements above all, are not read: see the spec's
    topics)."""

    def describe(event: DomainEventProtocol) -> Publication | None:
        aggregate = aggregate_after(app, event)
        if not isinstance(aggregate, Regime):
            return None
        kind = type(event).__name__
        change = ("started" if kind == "Started" else "changed" if kind == "Changed"
                  else REGIME_STATUS_CHANGES[aggregate.status])
        return Publication(f"{SERVICE}.monitoring-regime.{change}",
                           "MonitoringRegimeChangeEvent",
                           {"change": change, "monitoringRegime": regime_resource(aggregate)})

    return describe


# --- inbound: replicas --------------------------------------------------------------------
REPLICATED = {
    # A retired group stops the regimes watching it (read from the regimes, not the
    # replica): handled alone, not in a group.
    "OfferingGroupChangeEvent": Replicated("offeringGroup", "offeringGroup", grouped=False),
    "ProductOfferingChangeEvent": Replicated("productOffering", "productOffering"),
    "SlaTypeChangeEvent": Replicated("slaType", "slaType"),
    "ThresholdStandardChangeEvent": Replicated("thresholdStandard", "thresholdStandard"),
    "PurchasedOfferingChangeEvent": Replicated("purchasedOffering", "purchasedOffering"),
    "PlannedOutageChangeEvent": Replicated("plannedOutage", "plannedOutage"),
}


def handlers(app: Monitoring) -> dict[str, Handler]:
    return replica_handlers(REPLICATED, lambda copy: app.receive_replica(
        copy.kind, copy.resource_id, copy.resource, copy.version), Replica)


# --- inbound: measurements ----------------------------------------------------------------
class MeasurementConsumer:
    """Consumes measurement messages in groups: one store commit for up to ``group``
    messages, then one ack for them all (``multiple``). A redelivered message is
    recognised by its batch id: the same samples are acknowledged as a duplicate, other
    samples under that id are dead-lettered. A store write that fails is backed off and
    retried behind newer messages, and dead-lettered with its reason after
    ``max_deliveries`` attempts — never dropped, never retried without end."""

    def __init__(self, app: Monitoring, transport: Transport, queue: QueueSpec,
                 group: int = 100, max_wait: float = 0.01, prefetch: int = 400,
                 max_deliveries: int = 5, backoff_cap: float = 5.0) -> None:
        self.app, self.transport, self.queue = app, transport, queue
        self.group, self.max_wait, self.prefetch = group, max_wait, prefetch
        self.max_deliveries, self.backoff_cap = max_deliveries, backoff_cap
        self._pending: list[tuple[Delivery, Settle, Envelope]] = []
        self._first = 0.0
        self.failures = 0
        self.last_error: str | None = None

    def run(self, stop: threading.Event) -> None:
        self.transport.consume(self.queue, self.receive, stop, prefetch=self.prefetch,
                               on_idle=self.flush, idle_timeout=self.max_wait)
        self.flush()

    def receive(self, delivery: Delivery, settle: Settle) -> None:
        try:
            envelope = Envelope.from_bytes(delivery.body)
            contracts.validate(envelope.to_dict())
            if envelope.event_type != "MeasurementBatchEvent":
                raise EnvelopeError(f"monitoring takes MeasurementBatchEvent here, "
                                    f"not {envelope.event_type}")
        except (EnvelopeError, contracts.ContractViolation) as exc:
            self._dead_letter(settle, str(exc))
            return
        if not self._pending:
            self._first = time.monotonic()
        self._pending.append((delivery, settle, envelope))
        if len(self._pending) >= self.group or time.monotonic() - self._first > self.max_wait:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            checks = self.app.check_batches([e.event["samples"] for _, _, e in pending])
        except Exception as exc:  # noqa: BLE001 - e.g. the store or the cache is down
            self._failed([(d, s) for d, s, _ in pending], exc)
            return
        to_record: list[tuple[str, str, Any]] = []
        settles: list[tuple[Delivery, Settle]] = []
        for (delivery, settle, envelope), checked in zip(pending, checks, strict=True):
            batch_id = str(envelope.event["batchId"])
            if not checked.accepted:
                self._nothing_accepted(delivery, settle, envelope, checked)
                continue
            to_record.append((batch_id, f"bus:{envelope.source or 'external'}", checked))
            settles.append((delivery, settle))
        if not to_record:
            return
        try:
            # A batch id seen before is recognised there and not counted twice.
            outcomes = self.app.record_batches(to_record)
        except Exception as exc:  # noqa: BLE001 - isolate, then back off and retry
            self._record_one_by_one(to_record, settles, exc)
            return
        self.failures, self.last_error = 0, None
        # One acknowledgement for the group: each recorded message is deferred, and the
        # last of them acknowledges every one before it (all settled by then).
        last = None
        for outcome, (_, settle) in zip(outcomes, settles, strict=True):
            if self._settle(outcome, settle, deferred=True):
                last = settle
        if last is not None:
            last.ack_through()

    def _nothing_accepted(self, delivery: Delivery, settle: Settle, envelope: Envelope,
                          checked: Any) -> None:
        """Every sample refused: a repeat of a recorded batch (whose samples may be late
        by now) is a duplicate; anything else is dead-lettered with the reasons."""
        batch_id = str(envelope.event["batchId"])
        try:
            recorded = self.app.repeat_of(batch_id, envelope.event["samples"], checked.digest)
        except BatchConflict as exc:
            self._dead_letter(settle, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the store is down: retry later
            self._failed([(delivery, settle)], exc)
            return
        if recorded is not None:
            CONSUMED.labels(SERVICE, "duplicate").inc()
            settle.ack()
            return
        reasons = "; ".join(f"sample {r['index']} {r['field']}: {r['reason']}"
                            for r in checked.rejected[:5])
        self._dead_letter(settle, f"batch {batch_id}: no sample accepted ({reasons})")

    def _record_one_by_one(self, records: list[tuple[str, str, Any]],
                           settles: list[tuple[Delivery, Settle]], exc: Exception) -> None:
        """The group's commit failed. If the first batch alone fails too, the store is
        down: every message is retried later. Otherwise one batch broke the commit: it
        alone is retried (and dead-lettered in the end); the others are recorded."""
        for n, (record, (delivery, settle)) in enumerate(zip(records, settles, strict=True)):
            try:
                outcome = self.app.record_batches([record])[0]
            except Exception as failure:  # noqa: BLE001
                if n == 0:
                    self._failed(settles, failure)
                    return
                self._failed([(delivery, settle)], failure)
                continue
            self._settle(outcome, settle)
        if len(records) == 1:
            return
        log.warning("recording %d measurement batches together failed (%s); recorded them "
                    "one by one", len(records), exc)

    def _settle(self, outcome: Any, settle: Settle, deferred: bool = False) -> bool:
        """Acknowledge a recorded message (``deferred``: by a later ``ack_through``;
        returns True) or dead-letter a conflicting one (False)."""
        if outcome.conflict:
            self._dead_letter(settle, f"batch {outcome.batch_id} was recorded before with "
                                      f"other samples; send new samples under a new batchId")
            return False
        CONSUMED.labels(SERVICE, "duplicate" if outcome.duplicate else "processed").inc()
        if deferred:
            settle.ack_deferred()
        else:
            settle.ack()
        return True

    def _failed(self, settles: list[tuple[Delivery, Settle]], exc: Exception) -> None:
        """Back off (the store may be down), then put each message behind newer ones, or
        dead-letter it once it has been tried ``max_deliveries`` times."""
        self.failures += 1
        reason = f"{type(exc).__name__}: {exc}"
        self.last_error = reason
        log.warning("recording %d measurement batches failed (%d in a row): %s",
                    len(settles), self.failures, reason)
        time.sleep(backoff(self.failures, base=0.1, cap=self.backoff_cap))
        for delivery, settle in settles:
            if delivery.attempt + 1 >= self.max_deliveries:
                self._dead_letter(settle, f"failed {delivery.attempt + 1} times; last: "
                                          f"{reason}")
            else:
                CONSUMED.labels(SERVICE, "retried").inc()
                settle.retry_later(reason)

    def _dead_letter(self, settle: Settle, reason: str) -> None:
        log.error("dead-lettering a measurement message on %s: %s", self.queue.name, reason)
        CONSUMED.labels(SERVICE, "dead-lettered").inc()
        settle.dead_letter(reason)
