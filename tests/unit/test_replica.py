"""The replica kit: a copy of another service's resource kept from its events, newer
versions only, in any order, under its own service's event topics."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from shared import replica
from shared.bus.envelope import Envelope
from shared.bus.inbox import Rejected
from shared.ids import stable_id
from shared.store import topics_of


class Copied(replica.Replica):
    namespace = "test-service"


def envelope(event_type: str, **event: Any) -> Envelope:
    return Envelope(event_id="e-1", event_time="2026-03-01T10:00:00Z",
                    event_type=event_type, event=event)


def test_a_newer_version_is_kept_an_older_or_equal_one_ignored() -> None:
    app = Application()
    kept: list[replica.Copy] = []
    handlers = replica.replica_handlers(
        {"OutageChangeEvent": replica.Replicated("plannedOutage", "plannedOutage")},
        kept.append)

    def deliver(version: int, status: str) -> replica.Replica:
        handlers["OutageChangeEvent"](envelope(
            "OutageChangeEvent", plannedOutage={"id": "o-1", "version": version,
                                                "status": status}))
        copied = replica.receive(app.repository, Copied, kept[-1])
        app.save(copied)
        return copied

    deliver(2, "agreed")
    deliver(1, "proposed")  # overtaken: arrives late
    deliver(2, "agreed")    # redelivered
    latest = replica.find(app.repository, Copied, "plannedOutage", "o-1")
    assert latest is not None
    assert (latest.resource["status"], latest.source_version, latest.version) == ("agreed", 2, 1)
    assert deliver(3, "cancelled").resource["status"] == "cancelled"
    assert replica.find(app.repository, Copied, "plannedOutage", "o-2") is None
    assert replica.by_kind(
        [replica.find(app.repository, Copied, "plannedOutage", "o-1")], ["slaType"]) == {
        "slaType": {}, "plannedOutage": {"o-1": {"id": "o-1", "version": 3,
                                                  "status": "cancelled"}}}


def test_the_rule_says_what_is_kept_and_how_id_and_version_are_read() -> None:
    rule = replica.Replicated(
        "outage", "plannedOutage", id_of=lambda r: r["ref"], version_of=lambda r: r["rev"],
        facts=lambda r, e: {"status": "cancelled" if e.event.get("change") == "cancelled"
                            else r["status"]})
    copy = rule.copy(envelope("X", change="cancelled",
                              plannedOutage={"ref": "o-7", "rev": 4, "status": "agreed"}))
    assert (copy.kind, copy.resource_id, copy.version, copy.resource) == (
        "outage", "o-7", 4, {"status": "cancelled"})


@pytest.mark.parametrize("event", [{}, {"plannedOutage": "o-1"}, {"plannedOutage": {}},
                                   {"plannedOutage": {"id": "o-1", "version": "new"}}])
def test_an_event_without_a_readable_resource_is_rejected(event: dict[str, Any]) -> None:
    with pytest.raises(Rejected):
        replica.Replicated("plannedOutage", "plannedOutage").copy(envelope("X", **event))


def test_a_service_replica_has_event_topics_of_its_own() -> None:
    assert Copied.create_id("slaType", "s-1") == stable_id(
        "test-service", "replica", "slaType", "s-1")
    assert get_topic(Copied.Updated) == f"{__name__}:Copied.Updated"
    assert f"{__name__}:Copied.Received" in topics_of([Copied])
    assert f"{__name__}:Copied.Updated" in topics_of([Copied])
