"""The life of a burn-rate alert, as an operator sees it: a page raised by a fast burn,
resolved with the figures it had, falling to ticket level (resolved, and a ticket raised in
the same window), and resolved when the standard in force keeps no budget any more."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.monitoring.application import Monitoring
from services.monitoring.evaluator import Evaluator
from services.monitoring.messaging import describer
from tests.integration.test_monitoring_stream import GROUP, estate

START = datetime(2026, 11, 2, tzinfo=UTC)
PO = "po-burn"


def at(minute: float) -> str:
    return (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


class Deployment:
    """One purchased offering held to 99 % success (a ratio) over 30 days, minute windows."""

    def __init__(self, path: Path) -> None:
        self.app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                               "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})
        for kind, rid, resource in estate([PO]):
            if kind == "thresholdStandard":
                resource["versions"][0]["parameters"][0].update(
                    name="success", unit="ratio", aggregation="ratio", comparator="GE",
                    conformanceTarget=0.99, thresholdTarget=None, conformancePeriod="P30D",
                    graceTimes=0)
                self.standard = resource
            self.app.receive_replica(kind, rid, resource, int(resource["version"]))
        self.app.start_regime(name="burn", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                              sla_type_id=None, customer_group=None, parameters=["success"],
                              window="PT1M", allowed_lateness="PT0S", clear_after=1)
        self.evaluator = Evaluator(self.app)
        self.evaluator.recover()
        self.minute = 0

    def minutes(self, count: int, value: float) -> None:
        """``count`` one-minute windows of success ratio ``value`` (each closed by the next
        window's sample)."""
        batches = []
        for _ in range(count):
            batches.append((f"b{self.minute}", "test", self.app.check_batch([
                {"purchasedOfferingId": PO, "parameter": "success", "value": value,
                 "observedAt": at(self.minute + 0.5)}])))
            self.minute += 1
        self.app.record_batches(batches)
        while self.evaluator.run_once():
            pass

    def revise(self, **changes: Any) -> None:
        """Approve a new version of the standard, in force from the current minute."""
        standard = copy.deepcopy(self.standard)
        version = copy.deepcopy(standard["versions"][-1])
        version["version"] += 1
        version["validFor"] = {"startDateTime": at(self.minute - 1), "endDateTime": None}
        version["parameters"][0].update(changes)
        standard["versions"].append(version)
        standard["version"] += 1
        self.standard = standard
        self.app.receive_replica("thresholdStandard", standard["id"], standard,
                                 standard["version"])

    def alerts(self) -> list[Any]:
        """The purchased offering's alerts, oldest first (the group's follow the same)."""
        return sorted((a for a in self.app.burn_alerts() if a.scope_type == "purchasedOffering"),
                      key=lambda a: a.created_on)

    def published(self, alert: Any) -> list[dict[str, Any]]:
        describe = describer(self.app)
        events = self.app.outcomes.repository.event_store.get(alert.id)
        return [describe(e).event for e in events]


def test_a_page_that_falls_to_ticket_level_is_resolved_and_a_ticket_raised(
        tmp_path: Path) -> None:
    d = Deployment(tmp_path / "m.db")
    d.minutes(120, 1.0)   # two clean hours
    d.minutes(60, 0.5)    # an hour where every window breaches: burning 100x
    early, page = d.alerts()  # a ticket after 2 bad minutes, the page (6h & 30m) after 8
    assert early.severity == "ticket" and not early.open
    assert early.evidence["resolution"] == "escalatedToPage"
    assert page.severity == "page" and page.open
    assert page.evidence["factor"] == 6.0 and page.evidence["burnRate"] > 6.0

    d.minutes(40, 1.0)  # the 5- and 30-minute windows are clean: no page rule fires
    _, page, ticket = d.alerts()
    assert not page.open and page.severity == "page"
    assert page.evidence["resolution"] == "fellToTicket"
    assert ticket.open and ticket.severity == "ticket" and ticket.evidence["factor"] == 3.0
    assert ticket.evidence["windowStart"] == page.evidence["windowStart"]
    assert ticket.raised["burnRate"] > 3.0


def test_a_resolved_burn_alert_keeps_its_factor_and_burn_rates(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "m.db")
    d.minutes(120, 1.0)
    d.minutes(30, 0.5)
    d.minutes(40, 1.0)  # falls to ticket
    d.minutes(60 * 7, 1.0)  # the 2-hour and 6-hour windows are clean: the ticket subsides
    ticket = d.alerts()[-1]
    assert not ticket.open
    resolved = ticket.evidence
    assert resolved["resolution"] == "subsided"
    assert resolved["factor"] == 3.0 and resolved["longWindow"] == 86400
    assert resolved["shortWindow"] == 7200 and resolved["shortBurnRate"] == 0.0
    assert resolved["burnRate"] > 3.0  # the day still holds the bad half hour: the clean
    # short window is what ended it
    assert ticket.raised["factor"] == 3.0 and ticket.raised["burnRate"] > resolved["burnRate"]
    message = d.published(ticket)[-1]
    assert message["change"] == "resolved"
    assert message["burnAlert"]["factor"] == 3.0
    assert message["burnAlert"]["burnRate"] == resolved["burnRate"]
    assert message["burnAlert"]["resolution"] == "subsided"


def test_a_page_whose_budget_disappears_is_resolved(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "m.db")
    d.minutes(120, 1.0)
    d.minutes(60, 0.5)
    page = d.alerts()[-1]
    assert page.severity == "page" and page.open
    raised = dict(page.evidence)
    d.revise(conformancePeriod=None)  # version 2 keeps no error budget
    d.minutes(3, 0.5)
    page = d.alerts()[-1]
    assert not page.open
    assert page.evidence["resolution"] == "budgetRemoved"
    assert page.evidence["standardVersion"] == 2
    assert page.evidence["factor"] == raised["factor"] == 6.0
    assert page.evidence["burnRate"] == raised["burnRate"]
    assert d.evaluator.state.ledgers == {}  # nothing kept for a budget that is gone
    message = d.published(page)[-1]
    assert message["change"] == "resolved" and message["burnAlert"]["factor"] == 6.0


def test_a_page_under_a_standard_that_changes_its_aggregation_is_resolved(
        tmp_path: Path) -> None:
    d = Deployment(tmp_path / "m.db")
    d.minutes(120, 1.0)
    d.minutes(60, 0.5)
    d.revise(aggregation="mean")  # a mean keeps no error budget
    d.minutes(3, 0.5)
    page = d.alerts()[-1]
    assert not page.open and page.evidence["resolution"] == "budgetRemoved"
