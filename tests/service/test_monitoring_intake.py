"""Monitoring's intake refuses what evaluation could not hold, each with its reason: values
no aggregation can sum, a batch id reused for other samples, replicas with unreadable
times; and what the evaluator set aside is visible and can be released over HTTP.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.monitoring.ingestion import Checked
from shared.bus.envelope import Envelope
from shared.bus.topology import SLA_EVENTS
from shared.bus.transport import REASON_HEADER
from shared.times import iso
from tests.drivers.monitoring import MonitoringDriver
from tests.helpers import eventually
from tests.service.test_monitoring import at, estate, monitoring  # noqa: F401 - fixtures


def test_an_overflowing_sample_is_refused_at_intake_with_its_reason(
        estate: dict[str, Any], monitoring: MonitoringDriver) -> None:  # noqa: F811
    product = estate["products"][0]
    good = {"purchasedOfferingId": product, "parameter": "latency", "value": 10,
            "observedAt": at(5)}
    response = monitoring.send_batch([
        good, {**good, "value": 1.5e308}, {**good, "value": -2e15}, {**good, "value": 10**400},
        {**good, "value": 1e15}], "huge")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "value"), (2, "value"), (3, "value")]
    assert all("1e15" in r["reason"] for r in body["rejected"])
    alone = monitoring.send_batch([{**good, "value": 1e300}])
    assert alone.status_code == 400
    assert "1e15" in alone.get_json()["details"]["samples.0.value"][0]


def test_a_batch_id_sent_again_with_other_samples_is_refused_with_409(
        estate: dict[str, Any], monitoring: MonitoringDriver) -> None:  # noqa: F811
    product = estate["products"][0]
    sample = {"purchasedOfferingId": product, "parameter": "latency", "value": 10,
              "observedAt": at(5)}
    first = monitoring.send_batch([sample], "twice")
    assert first.status_code == 201
    repeat = monitoring.send_batch([dict(reversed(list(sample.items())))],  # any key order
                                   "twice")
    assert repeat.status_code == 200 and repeat.get_json()["duplicate"] is True
    other = monitoring.send_batch([{**sample, "value": 11}], "twice")
    assert other.status_code == 409, other.get_json()
    assert other.get_json()["code"] == "BATCH_ID_REUSED"
    assert "other samples" in other.get_json()["message"]
    stored = monitoring.batch("twice").get_json()
    assert stored["accepted"] == 1


def test_a_batch_recorded_before_digests_is_still_told_from_other_samples(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver) -> None:  # noqa: F811
    """Batches recorded before the content digest was kept load with none: a repeat is
    recognised by the samples it accepted (what it refused was not kept)."""
    app = suite.runtime("monitoring").app
    sample = {"purchasedOfferingId": estate["products"][0], "parameter": "latency",
              "value": 10, "observedAt": at(5)}
    checked = app.check_batch([sample, {**sample, "value": "fast"}])
    checked.digest = None  # as upcast from a batch recorded before
    app.record_batches([("legacy", "test", checked)])
    assert app.batch("legacy").content_digest is None
    again = monitoring.send_batch([sample, {**sample, "value": "fast"}], "legacy")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    other = monitoring.send_batch([{**sample, "value": 12}, {**sample, "value": "fast"}],
                                  "legacy")
    assert other.status_code == 409
    fewer = monitoring.send_batch([sample], "legacy")
    assert fewer.status_code == 409


def test_a_planned_outage_with_an_unreadable_time_is_dead_lettered_with_the_reason(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver) -> None:  # noqa: F811
    # The consumer's side of the contract: outage-negotiation never publishes such a
    # time, but a message that reaches monitoring's inbox with one is refused with why.
    runtime = suite.runtime("monitoring")
    outage = {"id": "po-bad", "href": "/outage-negotiation/v1/plannedOutage/po-bad",
              "@type": "PlannedOutage", "status": "agreed",
              "window": {"startDateTime": "not-a-date", "endDateTime": at(3)},
              "reason": "fibre splice", "offeringGroupId": estate["group"]["id"],
              "affectedPurchasedOfferingIds": [estate["products"][0]], "version": 1}
    envelope = Envelope(event_id=str(uuid.uuid4()), event_time=iso(),
                        event_type="PlannedOutageChangeEvent", source="outage-negotiation",
                        event={"change": "agreed", "plannedOutage": outage})
    runtime.transport.publish_raw(SLA_EVENTS, "outage-negotiation.planned-outage.agreed",
                                  envelope.to_bytes(), envelope.event_id)
    letters = eventually(lambda: [m for m in runtime.transport.dead_letters(runtime.queue)
                                  if m.message_id == envelope.event_id])
    reason = letters[0].headers[REASON_HEADER]
    assert "breaks its contract" in reason and "startDateTime" in reason
    # Evaluation carries on.
    for hour, batch in ((6, "after-outage-1"), (8, "after-outage-2")):
        assert monitoring.send_batch([{
            "purchasedOfferingId": estate["products"][0], "parameter": "latency",
            "value": 10, "observedAt": at(hour)}], batch).status_code == 201
    eventually(lambda: monitoring.evaluations(parameter="latency", windowStart=at(6)))


def test_a_quarantined_series_is_shown_audited_and_released_over_http(
        suite: Any, estate: dict[str, Any], monitoring: MonitoringDriver) -> None:  # noqa: F811
    """A batch recorded with a value no intake accepts (a text, as an old producer
    or a store repair might leave): its window cannot be evaluated; the series is
    quarantined, the other series go on, and an operator's release resumes it."""
    app = suite.runtime("monitoring").app
    product = estate["products"][0]
    from datetime import datetime

    def epoch(hour: float) -> float:
        return datetime.fromisoformat(at(hour)).timestamp()

    rows = [[product, "latency", epoch(1) + i, "fast", None, None] for i in range(2)]
    app.record_batches([("recorded-before", "test", Checked(accepted=rows))])
    for hour in (2, 3):
        monitoring.send_batch([
            {"purchasedOfferingId": product, "parameter": parameter, "value": value,
             "observedAt": at(hour), "intervalSeconds": 3600 if parameter == "availability"
             else None} for parameter, value in (("latency", 10), ("availability", 1))],
            f"q{hour}")
    found = eventually(lambda: monitoring.quarantines(kind="series"))
    [quarantine] = found
    assert quarantine["status"] == "quarantined" and quarantine["parameter"] == "latency"
    assert quarantine["regimeId"] == estate["regime"]["id"]
    assert "ValueError" in quarantine["reason"] or "TypeError" in quarantine["reason"]
    # The other series goes on.
    eventually(lambda: monitoring.evaluations(parameter="availability", windowStart=at(1)))
    assert monitoring.quarantine(quarantine["id"]).status_code == 200
    audit = monitoring.aggregate_history(quarantine["id"]).get_json()
    assert audit, audit

    reader = monitoring.with_scopes("sla:read")
    assert reader.release(quarantine["id"]).status_code == 403
    released = monitoring.release(quarantine["id"], "bad feed replaced")
    assert released.status_code == 202, released.get_json()
    assert released.get_json()["status"] == "releaseRequested"
    again = monitoring.release(quarantine["id"])
    assert again.status_code == 409
    done = eventually(lambda: monitoring.quarantine(quarantine["id"]).get_json()[
        "status"] == "released")
    assert done
    for hour in (5, 7):
        monitoring.send_batch([{"purchasedOfferingId": product, "parameter": "latency",
                                "value": 10, "observedAt": at(hour)}], f"r{hour}")
    eventually(lambda: monitoring.evaluations(parameter="latency", scopeId=product,
                                              windowStart=at(5)))


@pytest.mark.parametrize("suite", ["postgres"], indirect=True)
def test_readyz_names_a_failing_role_without_its_error_text(
        suite: Any, postgres: dict[str, str], monitoring: MonitoringDriver) -> None:  # noqa: F811
    """Embedded mode: the evaluator's log cannot be reached, so its loop keeps failing;
    readyz answers 503 naming the role and its state, not the error."""
    import psycopg

    runtime = suite.runtime("monitoring")
    schema = runtime.app.outcomes.factory.env.get("POSTGRES_SCHEMA")
    connect = {"host": postgres["POSTGRES_HOST"], "port": postgres["POSTGRES_PORT"],
               "user": postgres["POSTGRES_USER"], "dbname": postgres["POSTGRES_DBNAME"],
               "autocommit": True}
    with psycopg.connect(**connect) as conn:
        conn.execute(f'ALTER TABLE "{schema}".monitoringoutcomes_events RENAME TO moved')
    try:
        def failing() -> Any:
            response = monitoring.ready()
            body = response.get_json()
            return response.status_code == 503 and "evaluator" in body["down"] and body

        body = eventually(failing, 30)
        assert body["checks"]["evaluator"] == "failing"
        assert all(v in ("ok", "failing", "stopped") for v in body["checks"].values()), body
    finally:
        with psycopg.connect(**connect) as conn:
            conn.execute(f'ALTER TABLE "{schema}".moved RENAME TO monitoringoutcomes_events')
    eventually(lambda: monitoring.ready().status_code == 200, 30)
