"""notification answers from its stored read model (services/notification/views.py) what
it answered from an index in memory: the same lists with the same filters, sorts and
pages, the same history by event, alert and correlation, the same due work, once; after
a restart and after ``slactl readmodel rebuild notification`` — on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from services.notification import messaging, schemas
from services.notification.application import NotificationService
from services.notification.delivery import NotificationConfig, SendError
from services.notification.domain import Decision, Delivery, Incident, NotificationList
from services.notification.sending import Outgoing
from shared.bus.envelope import Envelope
from shared.http import listing
from shared.http.blueprint import wire_names
from shared.http.errors import ApiError
from shared.scheduler import SettableClock
from shared.store import AggregateIndex

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HISTORY = ("eventId", "correlationId", "alertId")


@dataclass
class Flaky:
    """A sender for every channel: refuses the addresses in ``down``."""

    channel: str = "any"
    down: set[str] = field(default_factory=set)
    sent: list[Outgoing] = field(default_factory=list)

    def send(self, message: Outgoing) -> str:
        if message.address in self.down:
            raise SendError("the relay is down", permanent=message.address.startswith("x"))
        self.sent.append(message)
        return "kept"


def service(env: dict[str, str], clock: SettableClock, sender: Flaky) -> NotificationService:
    return NotificationService(
        env, config=NotificationConfig(public_url="https://sla.example", backoff_base=10,
                                       backoff_cap=60, max_attempts=2,
                                       allow_hosts=("crm.example.com", "gone.example.com")),
        server_key="k", clock=clock, senders={"email": sender, "webhook": sender})


def alert(n: int, group: str, level: str, severity_type: str = "ThresholdCrossingEvent"
          ) -> Envelope:
    return Envelope(
        event_id=f"monitoring:{n}", event_time="2026-03-02T09:00:01Z",
        event_type=severity_type, source="monitoring", correlation_id=f"corr-{n % 4}",
        event={"change": "raised", "crossing": {
            "id": f"cr-{n % 9}", "regimeId": "rg-1", "parameter": ["availability",
                                                                  "latency"][n % 2],
            "scope": {"type": "offeringGroup", "id": group}, "level": level,
            "measuredValue": 99.1, "conformanceTarget": 99.9, "thresholdTarget": 99.95,
            "comparator": "GE", "standardId": "std-1", "standardVersion": 1,
            "window": {"startDateTime": f"2026-03-02T0{n % 9}:00:00Z",
                       "endDateTime": f"2026-03-02T0{n % 9}:30:00Z"},
            "planned": False, "raisedAt": "2026-03-02T09:00:01Z"}})


def an_estate(app: NotificationService, clock: SettableClock, sender: Flaky) -> None:
    """Lists (one deleted), hubs, alerts grouped, sent, failed, retried and escalated,
    acknowledged, cancelled: every status and many nulls, ties and times."""
    rng = random.Random(5)
    managers, _ = app.create_list(
        name="Duty managers", topics=[{"eventTypes": ["Nothing"], "minSeverity": "info"}],
        members=[{"name": "Ann", "channel": "email", "address": "ann@sla.example"}])
    lists = []
    for n, group in enumerate(("g-1", "g-2", "g-1")):
        nlist, _ = app.create_list(
            name=f"NOC {n}", owner=[None, "noc", "Ops"][n], offering_group_ids=[group],
            topics=[{"eventTypes": ["*"], "minSeverity": ["info", "warning", "major"][n]}],
            settings={"groupWait": [0, 30, 0][n], "escalation": {
                "nextListId": str(managers.id), "delay": 600}},
            members=[{"name": f"Member {n}", "channel": "email",
                      "address": f"{'x' if n == 2 else 'm'}{n}@sla.example"}])
        lists.append(nlist)
    app.register_hub("https://crm.example.com/sla", "severity=major")
    gone, _ = app.register_hub("https://gone.example.com/sla", None)
    sender.down = {"m1@sla.example", "x2@sla.example",
                   "https://crm.example.com/sla/listener/thresholdCrossingEvent"}
    on_bus = messaging.handlers(app)
    for n in range(30):
        level = rng.choice(["warning", "breached", "breached", "cleared"])
        on_bus["ThresholdCrossingEvent"](alert(n, rng.choice(["g-1", "g-2"]), level))
        if n % 5 == 4:
            clock.advance(rng.choice([1, 31, 300, 700]))
            run_everything(app)
        if n == 12:
            app.remove_hub(gone.id)
        if n == 20:
            app.delete_list(lists[1].id)
    for incident in list(app.incidents())[::3]:
        app.acknowledge(incident.id, "sam")
    clock.advance(900)
    run_everything(app)


def run_everything(app: NotificationService) -> None:
    scheduler = app.scheduler()
    while scheduler.run_due() or [app.attempt(d.id, resume=d.status == "sending")
                                  for d in app.due_deliveries()]:
        pass


def random_query(rng: random.Random, values: dict[str, list[Any]]) -> dict[str, str]:
    query: dict[str, str] = {}
    for _ in range(rng.randrange(3)):
        attr = rng.choice(sorted(values))
        sample = [str(v) for v in values[attr] if v is not None] or ["x"]
        op = rng.choice(["eq", "eq", "gt", "gte", "lt", "lte", "ne"])
        if op == "eq":
            picked = rng.sample(sample, min(len(sample), rng.randrange(1, 3)))
            if rng.random() < 0.2:
                picked.append(rng.choice(["null", ""]))
            query[attr] = ",".join(picked)
        else:
            query[f"{attr}.{op}"] = rng.choice([*sample, "2026-03-02T09:10:00Z", "1"])
    if rng.random() < 0.7:
        keys = rng.sample(sorted(values), rng.randrange(1, 3))
        query["sort"] = ",".join(("-" if rng.random() < 0.5 else "") + k for k in keys)
    if rng.random() < 0.5:
        query["offset"] = str(rng.randrange(0, 20))
    query["limit"] = str(rng.choice([3, 10, 1000]))
    return query


def answer(query: dict[str, str], compute: Any) -> Any:
    with Flask(__name__).test_request_context("/", query_string=query):
        try:
            return compute()
        except ApiError as exc:
            return ("error", exc.status, exc.code)


#: Each list: its schema, how the index in memory answered it, the attributes asked.
LISTS: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
    "lists": (schemas.NotificationList, lambda memory: [
        n for n in memory.all(NotificationList) if n.status == "active"],
        ("name", "owner", "kind", "groupWait", "status", "version", "purpose")),
    "incidents": (schemas.Incident, lambda memory: memory.all(Incident),
                  ("level", "severity", "parameter", "open", "acknowledged",
                   "acknowledgedBy", "acknowledgedAt", "offeringGroupId", "since", "version")),
    "deliveries": (schemas.Delivery, lambda memory: memory.all(Delivery),
                   ("status", "recipient", "listId", "hubId", "attemptCount", "createdAt",
                    "nextAttemptAt", "deliveredAt", "reason", "lastError", "eventType")),
    "dead_letters": (schemas.Delivery, lambda memory: [
        d for d in memory.all(Delivery) if d.status == "failed"],
        ("recipient", "attemptCount", "createdAt", "lastError")),
    "decisions": (schemas.Decision, lambda memory: memory.all(Decision),
                  ("decision", "listId", "hubId", "alertId", "eventId", "at", "severity",
                   "groupId")),
}


def every_answer(app: NotificationService, memory: AggregateIndex, queries: int,
                 seed: int) -> dict[str, list[Any]]:
    """Each list's answers to random queries, checked against the in-memory lists."""
    rng = random.Random(seed)
    answers: dict[str, list[Any]] = {}
    for name, (schema_class, in_memory, attrs) in LISTS.items():
        schema = schema_class(many=True)
        allowed = wire_names(schema)
        everything = schema.dump(in_memory(memory))
        assert everything, name
        values = {a: sorted({str(i.get(a)) if i.get(a) is not None else None
                             for i in everything}, key=str) for a in attrs}
        answers[name] = []
        for _ in range(queries):
            query = random_query(rng, values)
            expected = answer(query, partial(listing.page_of, everything, allowed))
            stored = answer(query, lambda listed=getattr(app, name), s=schema, a=allowed:
                            listed().page(listing.request.args, a, (), s.dump))
            assert stored == expected, (name, query)
            answers[name].append(stored)
    return answers


def history_answers(app: NotificationService, memory: AggregateIndex) -> list[Any]:
    """The history by event, alert and correlation, as the API's view filtered it."""
    schema = schemas.Delivery(many=True)
    allowed = wire_names(schema)
    deliveries = memory.all(Delivery)
    found = []
    for d in deliveries[::4]:
        for wanted in ({"eventId": d.event_ids[0]}, {"alertId": d.alert_ids[-1]},
                       {"correlationId": d.correlation_ids[0], "status": d.status},
                       {"eventId": d.event_ids[0], "alertId": "nothing"}):
            expected = answer(wanted, lambda w=wanted: listing.page_of(schema.dump([
                x for x in deliveries
                if w.get("eventId", x.event_ids[0]) in x.event_ids
                and w.get("alertId", x.alert_ids[0]) in x.alert_ids
                and w.get("correlationId", x.correlation_ids[0]) in x.correlation_ids]),
                allowed, HISTORY))
            stored = answer(wanted, lambda w=wanted: app.history(
                event_id=w.get("eventId"), alert_id=w.get("alertId"),
                correlation_id=w.get("correlationId")).page(
                listing.request.args, allowed, HISTORY, schema.dump))
            assert stored == expected, wanted
            found.append(stored)
    assert any(total > 1 for _, total in found) and any(total == 0 for _, total in found)
    return found


def test_every_list_pages_in_the_database_as_the_lists_did_in_memory(
        store_env: dict[str, str]) -> None:
    clock, sender = SettableClock(T0), Flaky()
    app = service(store_env, clock, sender)
    try:
        an_estate(app, clock, sender)
        statuses = {d.status for d in app.deliveries()}
        assert {"delivered", "failed", "cancelled"} <= statuses, statuses
        memory = AggregateIndex(app)
        every_answer(app, memory, 150, seed=3)
        history_answers(app, memory)
    finally:
        app.close()


def test_a_restarted_service_finds_its_due_work_where_it_was_and_does_it_once(
        store_env: dict[str, str]) -> None:
    clock, sender = SettableClock(T0), Flaky()
    first = service(store_env, clock, sender)
    nlist, _ = first.create_list(
        name="NOC", offering_group_ids=["g-1"], topics=[{"eventTypes": ["*"]}],
        settings={"groupWait": 60},
        members=[{"name": "Sam", "channel": "email", "address": "sam@sla.example"}])
    for n in range(3):
        messaging.handlers(first)["ThresholdCrossingEvent"](alert(n, "g-1", "breached"))
    first.index.catch_up()  # as its next query would
    assert first.index.stored_position() == first.max_notification_id()
    first.close()

    clock.advance(60)
    again = [service(store_env, clock, sender) for _ in range(2)]
    try:
        assert again[0].index.catch_up() == 0  # nothing replayed: stored
        assert [a.scheduler().run_due() for a in again] == [1, 0]  # one flush, once
        found = [a.due_deliveries() for a in again]
        assert [len(f) for f in found] == [1, 1]
        assert sorted(str(a.attempt(d.id)) for a, f in zip(again, found, strict=True)
                      for d in f) == ["None", "delivered"]
        assert len(sender.sent) == 1 and sender.sent[0].address == "sam@sla.example"
        assert [d.status for d in again[1].deliveries()] == ["delivered"]
        assert again[1].timetable.next_at(["group.repeat"]) is not None
    finally:
        for app in again:
            app.close()


def test_a_rebuilt_read_model_gives_the_same_answers(store_env: dict[str, str]) -> None:
    clock, sender = SettableClock(T0), Flaky()
    app = service(store_env, clock, sender)
    try:
        an_estate(app, clock, sender)
        memory = AggregateIndex(app)
        before = every_answer(app, memory, 20, seed=8), history_answers(app, memory)
        due_before = {kind: app.timetable.items(kind) for kind in (
            "group.flush", "group.repeat", "escalation", "delivery.attempt")}
        report = app.index.rebuild()
        assert report.events == app.max_notification_id()
        assert (every_answer(app, memory, 20, seed=8), history_answers(app, memory)) == before
        assert {kind: app.timetable.items(kind) for kind in due_before} == due_before
    finally:
        app.close()


def test_slactl_rebuilds_notification_s_read_model(tmp_path: Path) -> None:
    from services.catalogue import spec
    from services.cli import main
    from shared import config
    from shared.service import Runtime

    env = {"SLA_DATA_DIR": str(tmp_path / "var"), "SLA_LOG_JSON": "false"}
    runtime = Runtime(spec("notification"), config.load(env))
    app: NotificationService = runtime.app
    app.create_list(name="NOC", topics=[{"eventTypes": ["*"]}], members=[
        {"name": "Sam", "channel": "email", "address": "sam@sla.example"}])
    messaging.handlers(app)["ThresholdCrossingEvent"](alert(1, "g-1", "breached"))
    schema = schemas.Decision(many=True)
    before = schema.dump(list(app.decisions()))
    head = app.max_notification_id()
    runtime.stop()

    done = CliRunner().invoke(main, ["readmodel", "rebuild", "notification"], env=env)
    assert done.exit_code == 0, done.output
    assert f"notification notification: {head:,} events applied" in done.output
    status = CliRunner().invoke(main, ["readmodel", "status", "notification"], env=env)
    assert status.exit_code == 0 and "Decision 1" in status.output, status.output

    runtime = Runtime(spec("notification"), config.load(env))
    try:
        assert runtime.app.index.catch_up() == 0
        assert schema.dump(list(runtime.app.decisions())) == before
    finally:
        runtime.stop()
