"""Bus entrypoint of analysis: monitoring's window summaries in (one per series per
closed window, kept once each, many to a transaction), and the registry's purchased
offerings, offerings, groups, SLA types and standards in (replicas: what a summary's
customer, charge and credit terms are read from). Out, to billing, the SLA credits of
closed conformance periods (``SlaCreditDueEvent`` on ``billing.events``, routing key
``sla-credit.due``), each from its credit's one event: exactly once, by the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from services.analysis import schemas
from services.analysis.application import Analysis
from services.analysis.credits import DUE
from services.analysis.domain import Replica, SlaCredit, stable_summary_id
from shared.bus.envelope import Envelope
from shared.bus.inbox import Handler, Rejected, groupable
from shared.bus.outbox import Publication
from shared.bus.topology import BILLING_EVENTS, SLA_EVENTS, Binding
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
)


#: Where a credit billing can apply goes: the channel billing agreed.
CREDIT_DUE = "sla-credit.due"


def describer(app: Analysis) -> Any:
    """A credit billing can apply (``due``: a customer, an amount and its currency), from
    the event that computed it; nothing else of analysis's log is published yet."""

    def describe(event: DomainEventProtocol) -> Publication | None:
        if not isinstance(event, SlaCredit.Computed) or getattr(event, "status", None) != DUE:
            return None
        credit = app.repository.get(event.originator_id, version=event.originator_version)
        return Publication(CREDIT_DUE, "SlaCreditDueEvent",
                           {"slaCredit": schemas.CREDIT_MESSAGE.dump(credit)},
                           exchange=BILLING_EVENTS)

    return describe


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


def handlers(app: Analysis) -> dict[str, Handler]:
    return {**replica_handlers(REPLICATED, app.receive_replica, Replica),
            "WindowSummaryEvent": summary_handler(app)}
