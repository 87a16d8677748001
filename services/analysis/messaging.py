"""Bus entrypoint of analysis: monitoring's window summaries in (one per series per
closed window, kept once each, many to a transaction), and the registry's purchased
offerings, offerings, groups, SLA types and standards in (replicas: what a summary's
customer, charge and credit terms are read from). Out, to billing, the SLA credits of
closed conformance periods (``SlaCreditDueEvent`` on ``billing.events``, routing key
``sla-credit.due``), each from its credit's one event: exactly once, by the outbox;
each trend run's results, one ``AnalysisResultEvent`` per series and product offering it
covers (the registry logs it on that offering in the inventory). And the violations
behind the offering-wide problems — Customer QoS/SLA Management's
``SlaViolationCreateEvent``s and ``CustomerSlaAnalysisEvent``s, monitoring's breaches
(``ThresholdCrossingEvent``) — in, and each problem's opening, update, resolution and
reopening out, twice: an ``AnalysisResultEvent`` the registry logs into the inventory,
and a ``ServiceProblemChangeEvent`` (TMF656) notification tells the offering's lists of."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.analysis import problems, schemas, trend_series
from services.analysis.application import Analysis
from services.analysis.credits import DUE
from services.analysis.domain import Replica, ServiceProblem, SlaCredit, stable_summary_id
from services.analysis.trend_runs import TrendRun
from shared import times
from shared.bus.envelope import Envelope
from shared.bus.inbox import Handler, Rejected, groupable
from shared.bus.outbox import Publication, aggregate_after
from shared.bus.topology import BILLING_EVENTS, CUSTOMER_SLA_EVENTS, SLA_EVENTS, Binding
from shared.ids import stable_id
from shared.replica import Replicated, replica_handlers
from shared.store import InboxGroup

SERVICE = "analysis"

BINDINGS = (
    Binding(SLA_EVENTS, "monitoring.window-summary.closed"),
    Binding(SLA_EVENTS, "threshold-registry.offering-group.*"),
    Binding(SLA_EVENTS, "threshold-registry.product-offering.*"),
    Binding(SLA_EVENTS, "threshold-registry.sla-type.*"),
    Binding(SLA_EVENTS, "threshold-registry.threshold-standard.*"),
    Binding(SLA_EVENTS, "threshold-registry.purchased-offering.*"),
    # The violations behind the offering-wide problems.
    Binding(SLA_EVENTS, "monitoring.crossing.*"),
    Binding(CUSTOMER_SLA_EVENTS, "sla-violation.create"),
    Binding(CUSTOMER_SLA_EVENTS, "sla-analysis.create"),
)

#: A problem's events that are published, and the change each one is.
PROBLEM_CHANGES = {"Opened": problems.OPENS, "Reopened": problems.REOPENS,
                   "Updated": problems.GROWS, "Resolved": problems.RESOLVED}


#: Where a credit billing can apply goes: the channel billing agreed.
CREDIT_DUE = "sla-credit.due"
RESULTS = f"{SERVICE}.analysis-result.produced"
#: A series' result as the event details carry it: its figures and projection (the
#: points and the offerings stay with the run).
RESULT_DETAILS = schemas.TrendResult(exclude=("points", "product_offering_ids"))


def trend_results(run: TrendRun) -> list[Publication]:
    """A run's results as ``AnalysisResultEvent``s: one per series and product offering
    it covers, each under an id of its own (run, series, offering), so the registry
    keeps each once on that offering however often it is delivered. The details carry
    the series' figures and projection, and the run's id to read the rest from."""
    published = []
    granularity = run.query["granularity"]
    for index, result in enumerate(run.results):
        details = {**RESULT_DETAILS.dump(result), "runId": str(run.id),
                   "trigger": run.trigger, "test": run.query["test"],
                   "alpha": run.query["alpha"], "granularity": granularity}
        line = trend_series.summary(result, granularity)
        for offering in result["product_offering_ids"]:
            published.append(Publication(RESULTS, "AnalysisResultEvent", {"analysisResult": {
                "id": str(stable_id("analysis", "trend-result", str(run.id), index, offering)),
                "kind": "trend",
                "target": {"type": "productOffering", "id": offering},
                "summary": line,
                "severity": trend_series.severity(result),
                "parameter": result["parameter"],
                "analysedAt": times.iso(run.analysed_at),
                "details": details}}))
    return published



def describer(app: Analysis) -> Any:
    """A credit billing can apply (``due``: a customer, an amount and its currency), from
    the event that computed it; a trend run's results (each series' for each offering it
    covers); a problem's opening, reopening, resolution and each update that affects a
    purchased offering or customer not affected before (not one that only adds evidence:
    the inventory's log and the lists hear of what changed the problem's reach), as an
    ``AnalysisResultEvent`` and a ``ServiceProblemChangeEvent``."""

    def describe(event: DomainEventProtocol) -> Publication | list[Publication] | None:
        if isinstance(event, TrendRun.Completed):
            run = app.repository.get(event.originator_id, version=event.originator_version)
            return trend_results(run) or None
        if isinstance(event, SlaCredit.Computed):
            if getattr(event, "status", None) != DUE:
                return None
            credit = app.repository.get(event.originator_id,
                                        version=event.originator_version)
            return Publication(CREDIT_DUE, "SlaCreditDueEvent",
                               {"slaCredit": schemas.CREDIT_MESSAGE.dump(credit)},
                               exchange=BILLING_EVENTS)
        if not isinstance(event, ServiceProblem.Event):
            return None
        change = PROBLEM_CHANGES.get(type(event).__name__)
        if change is None or (change == problems.GROWS and not vars(event).get("grew")):
            return None
        problem = aggregate_after(app, event)
        return problem_publications(problem, change)

    return describe


def problem_publications(problem: ServiceProblem, change: str) -> list[Publication]:
    resource = schemas.service_problem(problem)
    resolved = change == problems.RESOLVED
    result = {
        "id": str(stable_id("analysis", "problem-result", problem.id, problem.version)),
        "kind": "offering-wide-problem",
        "target": {"type": "productOffering", "id": problem.product_offering_id},
        "summary": resource["description"], "severity": "info" if resolved else "major",
        "parameter": None, "analysedAt": times.iso(problem.changed_at),
        "details": {"change": change, "serviceProblem": resource}}
    return [Publication(f"{SERVICE}.analysis-result.produced", "AnalysisResultEvent",
                        {"analysisResult": result}),
            Publication(f"{SERVICE}.service-problem.{change}", "ServiceProblemChangeEvent",
                        {"change": change, "serviceProblem": resource})]


REPLICATED = {
    "OfferingGroupChangeEvent": Replicated("offeringGroup", "offeringGroup"),
    "ProductOfferingChangeEvent": Replicated("productOffering", "productOffering"),
    "SlaTypeChangeEvent": Replicated("slaType", "slaType"),
    "ThresholdStandardChangeEvent": Replicated("thresholdStandard", "thresholdStandard"),
    "PurchasedOfferingChangeEvent": Replicated("purchasedOffering", "purchasedOffering"),
}


def _summary(envelope: Envelope) -> dict[str, Any]:
    summary = envelope.event.get("windowSummary")
    if not isinstance(summary, dict) or not summary.get("id"):
        raise Rejected("the WindowSummaryEvent carries no windowSummary with an id")
    return summary


def summary_handler(app: Analysis) -> Handler:
    """Keeps each summary once; groupable (a backfill or a busy hour's closes arrive by
    the thousand): a group's summaries are looked up in one read first."""

    def keep(envelope: Envelope) -> None:
        app.receive_summary(_summary(envelope))

    def prepare(envelopes: Sequence[Envelope]) -> None:
        group = InboxGroup.current()
        if group is None:
            return
        ids = []
        for envelope in envelopes:
            try:
                ids.append(stable_summary_id(str(_summary(envelope)["id"])))
            except Rejected:
                continue  # refused when its handler runs
        group.preload(ids)

    return groupable(keep, prepare)


def violation_handler(app: Analysis,
                      read: Callable[[Envelope], problems.Violation | None]) -> Handler:
    """A violation kept once and applied to its offering's problem; one that cannot be
    read (no offering known for it, a time that is not one) is dead-lettered naming why.
    Handled one message at a time: each counts the ones before it."""

    def handle(envelope: Envelope) -> None:
        try:
            violation = read(envelope)
        except problems.NotAViolation as exc:
            raise Rejected(str(exc)) from None
        if violation is None:
            return
        try:
            app.receive_violation(violation)
        except problems.NotAViolation as exc:
            raise Rejected(str(exc)) from None

    return handle


def _sla_violation(envelope: Envelope) -> problems.Violation | None:
    return problems.from_sla_violation(envelope.event.get("slaViolation") or {})


def _sla_analysis(envelope: Envelope) -> problems.Violation | None:
    return problems.from_sla_analysis(envelope.event.get("slaAnalysis") or {})


def _crossing(envelope: Envelope) -> problems.Violation | None:
    return problems.from_crossing(envelope.event.get("change"),
                                  envelope.event.get("crossing") or {})


def handlers(app: Analysis) -> dict[str, Handler]:
    return {**replica_handlers(REPLICATED, app.receive_replica, Replica),
            "WindowSummaryEvent": summary_handler(app),
            "SlaViolationCreateEvent": violation_handler(app, _sla_violation),
            "CustomerSlaAnalysisEvent": violation_handler(app, _sla_analysis),
            "ThresholdCrossingEvent": violation_handler(app, _crossing)}
