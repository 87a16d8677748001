"""The notification application's story, in memory: no HTTP, no broker, no mail server.

The application is built as its service builds it — with settings, a key, a clock the
story moves and, at the edge, a sender that keeps what it is given (and refuses while the
story says the channel is down). A list is created, a breach arrives as monitoring
publishes it, the scheduler flushes the group, the first attempt fails and is retried,
the unacknowledged breach escalates, and the recipient acknowledges with the link in the
message, which stops the next escalation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.notification import messaging
from services.notification.application import NotificationService
from services.notification.delivery import NotificationConfig, SendError
from services.notification.sending import Outgoing
from shared.bus.envelope import Envelope
from shared.scheduler import SettableClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPICS = [{"eventTypes": ["ThresholdCrossingEvent"], "minSeverity": "major",
           "offeringGroupIds": [], "offeringIds": [], "customerIds": []}]


@dataclass
class Outbox:
    """A sender for every channel that keeps what it hands over; ``down`` refuses."""

    channel: str = "any"
    down: bool = False
    sent: list[Outgoing] = field(default_factory=list)

    def send(self, message: Outgoing) -> str:
        if self.down:
            raise SendError("the relay is down")
        self.sent.append(message)
        return "kept"

    def to(self, address: str) -> list[Outgoing]:
        return [m for m in self.sent if m.address == address]


def crossing(crossing_id: str, group: str) -> Envelope:
    return Envelope(
        event_id=f"monitoring:{crossing_id}", event_time="2026-03-02T09:00:01Z",
        event_type="ThresholdCrossingEvent", source="monitoring", correlation_id="corr-1",
        event={"change": "raised", "crossing": {
            "id": crossing_id, "regimeId": "rg-1", "parameter": "availability",
            "scope": {"type": "offeringGroup", "id": group}, "level": "breached",
            "measuredValue": 99.1, "conformanceTarget": 99.9, "thresholdTarget": 99.95,
            "comparator": "GE", "standardId": "std-1", "standardVersion": 1,
            "window": {"startDateTime": "2026-03-02T08:00:00Z",
                       "endDateTime": "2026-03-02T09:00:00Z"},
            "planned": False, "raisedAt": "2026-03-02T09:00:01Z"}})


def dispatch(app: NotificationService) -> list[str | None]:
    """What the dispatcher role does once: attempt every delivery that is due."""
    return [app.attempt(d.id, resume=d.status == "sending") for d in app.due_deliveries()]


def test_a_breach_is_sent_retried_escalated_and_acknowledged_by_its_link() -> None:
    clock, outbox = SettableClock(T0), Outbox()
    app = NotificationService(
        config=NotificationConfig(public_url="https://sla.example", backoff_base=10,
                                  backoff_cap=60, max_attempts=3),
        server_key="story-key", clock=clock, senders={"email": outbox, "webhook": outbox})
    scheduler = app.scheduler()
    on_bus = messaging.handlers(app)

    managers, _ = app.create_list(
        name="Duty managers", topics=[{**TOPICS[0], "eventTypes": ["NothingDirect"]}],
        members=[{"name": "Ann", "channel": "email", "address": "ann@sla.example"}])
    noc, _ = app.create_list(
        name="NOC", offering_group_ids=["g-1"], topics=TOPICS,
        settings={"groupWait": 0, "escalation": {"nextListId": str(managers.id),
                                                 "delay": 600}},
        members=[{"name": "Sam", "channel": "email", "address": "sam@sla.example"}])

    # A breach arrives; the group waits 0 s, so it is flushed at once, in the routing's
    # own save (no hop through the scheduler).
    on_bus["ThresholdCrossingEvent"](crossing("cr-1", "g-1"))
    assert [d.decision for d in app.decisions()] == ["queued"]
    assert scheduler.run_due() == 0
    [delivery] = app.deliveries()
    assert delivery.target_id == str(noc.id) and delivery.status == "pending"

    # The relay is down: the first attempt fails and is retried after the backoff.
    outbox.down = True
    assert dispatch(app) == ["retrying"]
    retry_in = (app.delivery(delivery.id).next_attempt_at - clock()).total_seconds()
    assert 5 <= retry_in <= 10
    assert dispatch(app) == []  # not due yet
    outbox.down = False
    clock.advance(10)
    assert dispatch(app) == ["delivered"]
    [sent] = outbox.to("sam@sla.example")
    assert sent.delivery_id == str(delivery.id) and len(app.delivery(delivery.id).attempts) == 2
    assert dispatch(app) == []  # exactly once

    # Unacknowledged after the list's delay: the duty managers are told.
    clock.advance(600)
    assert scheduler.run_due() == 1
    assert dispatch(app) == ["delivered"]
    [escalated] = outbox.to("ann@sla.example")
    assert "ESCALATION" in escalated.content["subject"]
    incident = app.incidents()[0]
    assert set(incident.notified_lists) == {str(noc.id), str(managers.id)}

    # Ann acknowledges with the link in her message (put in at hand-over, never stored).
    link = re.search(r"https://sla\.example/notification/v1/acknowledge\?token=\S+",
                     escalated.text(escalated.content["text"])).group(0)
    assert link not in str(app.delivery(app.deliveries()[-1].id).content)
    acknowledged, changed = app.acknowledge_link(link.split("token=", 1)[1])
    assert changed and acknowledged.acknowledged_by == "Ann <ann@sla.example>"
    assert acknowledged.escalations == {}
    clock.advance(3600)
    assert scheduler.run_due() == 0 and dispatch(app) == []
    assert len(outbox.sent) == 2



def test_facts_from_other_services_are_replicas_and_what_an_earlier_release_kept_is_read(
        ) -> None:
    from services.notification.domain import OutageWindow, ScopeEntry

    app = NotificationService(config=NotificationConfig(), server_key="k",
                              clock=SettableClock(T0), senders={"email": Outbox()})
    window = OutageWindow(outage_id="out-1", facts={"status": "proposed", "start": "x"})
    window.trigger_event(OutageWindow.Changed, facts={"status": "agreed", "start": "x"})
    app.save(ScopeEntry(scope_type="purchasedOffering", scope_id="po-old",
                        facts={"offeringGroupId": "g-old", "customerId": "acme"}), window)
    assert [r.topic for r in app.recorder.select_notifications(start=1, limit=10)] == [
        "services.notification.domain:ScopeEntry.Recorded",
        "services.notification.domain:OutageWindow.Recorded",
        "services.notification.domain:OutageWindow.Changed"]  # as an earlier release wrote
    assert app.scope_facts("purchasedOffering", "po-old")["customerId"] == "acme"
    assert app.outages() == [{"id": "out-1", "status": "agreed", "start": "x"}]

    on_bus = messaging.handlers(app)
    on_bus["PurchasedOfferingChangeEvent"](Envelope(
        event_id="registry:1", event_time="2026-03-02T09:00:00Z",
        event_type="PurchasedOfferingChangeEvent", source="threshold-registry",
        event={"change": "updated", "purchasedOffering": {
            "id": "po-old", "customerId": "globex", "productOfferingId": "o-1",
            "offeringGroupId": "g-new", "version": 2}}))
    assert app.scope_facts("purchasedOffering", "po-old")["customerId"] == "globex"
    on_bus["PlannedOutageChangeEvent"](Envelope(
        event_id="outage:2", event_time="2026-03-02T09:00:00Z",
        event_type="PlannedOutageChangeEvent", source="outage-negotiation",
        event={"change": "cancelled", "plannedOutage": {
            "id": "out-1", "status": "agreed", "offeringGroupId": "g-new", "version": 2,
            "window": {"startDateTime": "2026-03-02T08:00:00Z",
                       "endDateTime": "2026-03-02T10:00:00Z"}}}))
    [outage] = app.outages()
    assert (outage["id"], outage["status"]) == ("out-1", "cancelled")  # the replica's


def test_a_delivery_found_due_before_its_attempt_was_recorded_is_not_attempted_again(
        ) -> None:
    """The dispatcher finds due deliveries, then hands them to its pool: one found due
    just before an attempt of it finished (it is retrying now, later) is left alone."""
    clock, outbox = SettableClock(T0), Outbox(down=True)
    app = NotificationService(
        config=NotificationConfig(backoff_base=10, backoff_cap=60, max_attempts=3),
        server_key="k", clock=clock, senders={"email": outbox, "webhook": outbox})
    app.create_list(name="NOC", offering_group_ids=["g-1"], topics=TOPICS,
                    settings={"groupWait": 0},
                    members=[{"name": "Sam", "channel": "email", "address": "sam@x.example"}])
    messaging.handlers(app)["ThresholdCrossingEvent"](crossing("cr-1", "g-1"))
    found = app.due_deliveries()  # as the dispatcher saw it (flushed with the routing)
    assert [app.attempt(d.id) for d in found] == ["retrying"]
    outbox.down = False
    assert [app.attempt(d.id) for d in found] == [None]  # not due until its retry
    assert outbox.sent == [] and len(app.delivery(found[0].id).attempts) == 1
