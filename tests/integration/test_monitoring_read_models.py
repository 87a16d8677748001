"""Monitoring's stored read models (``services/monitoring/views.py``) answer its lists —
regimes, crossings, burn alerts, quarantines — as the in-memory indexes did, rebuild to
the same answers, and give the working set its replicas and regimes at start without
replaying the log — on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask

from services.monitoring import schemas
from services.monitoring.application import Monitoring, QuarantineStatus
from services.monitoring.domain import BurnAlert, Crossing, Quarantine, Regime
from shared.http import listing
from shared.http.blueprint import wire_names
from shared.readmodel import Listing
from shared.store import AggregateIndex
from shared.times import iso
from tests.integration.bus_fixtures import sqlite_env
from tests.integration.test_stored_read_models import answer, random_query

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0


def some_outcomes(app: Monitoring, count: int, seed: int = 3) -> None:
    """Crossings (raised, escalated, cleared; noData ones), burn alerts (open, resolved)
    and quarantines (series and batches, some released), with figures sometimes missing,
    so filters and sorts meet nulls, ties, numbers and times."""
    rng = random.Random(seed)
    regimes = [str(uuid4()) for _ in range(3)]
    saved: list[Any] = []
    for n in range(count):
        start = T0 + 3600 * rng.randrange(48)
        series = {"regime_id": rng.choice(regimes), "parameter": rng.choice(["availability",
                                                                             "latency"]),
                  "scope_type": rng.choice(["offeringGroup", "purchasedOffering"]),
                  "scope_id": f"po-{rng.randrange(6)}"}
        evidence = {"windowStart": iso(start), "windowEnd": iso(start + 3600),
                    "measuredValue": rng.choice([None, 97, 99.5, 12.25]),
                    "unit": rng.choice([None, "%", "ms"]),
                    "standardId": rng.choice(["s-1", "s-2"]),
                    "standardVersion": rng.randrange(1, 4), "batchIds": [f"b{n}"]}
        if rng.random() < 0.7:
            evidence["planned"] = rng.random() < 0.3
        level = rng.choice(["warning", "breached", "noData"])
        crossing = Crossing(id=Crossing.id_for(series["regime_id"], series["parameter"],
                                               series["scope_type"], series["scope_id"],
                                               start + n, level),
                            level=level, evidence=evidence, **series)
        if level == "warning" and rng.random() < 0.5:
            crossing.escalate({**evidence, "measuredValue": 90})
        if rng.random() < 0.4:
            crossing.clear({**evidence, "windowStart": iso(start + 7200)})
        alert = BurnAlert(id=BurnAlert.id_for(series["regime_id"], series["parameter"],
                                              series["scope_type"], series["scope_id"],
                                              start + n),
                          severity=rng.choice(["page", "ticket"]), **series,
                          evidence={**evidence, "factor": rng.choice([14.4, 6, 3, 1]),
                                    "burnRate": rng.choice([None, 20.5, 7, 1.5])})
        if rng.random() < 0.5:
            alert.resolve({**alert.evidence, "resolution": rng.choice(
                ["subsided", "fellToTicket", "budgetRemoved"])})
        saved += [crossing, alert]
        if n % 4 == 0:
            kind = rng.choice(["series", "batch"])
            quarantine = Quarantine(
                partition=rng.choice(["0", "1"]), kind=kind,
                key=f"{series['regime_id']}|{series['parameter']}", position=n + 1,
                regime_id=series["regime_id"] if kind == "series" else None,
                parameter=series["parameter"] if kind == "series" else None,
                batch_id=f"b{n}", reason="boom")
            if kind == "series" and rng.random() < 0.5:
                quarantine.resumed(n + 5, "fixed", "ops")
            saved.append(quarantine)
    app.outcomes.save(*saved)


def some_regimes(app: Monitoring, count: int) -> None:
    rng = random.Random(5)
    for n in range(count):
        regime = app.start_regime(
            name=f"Regime {rng.randrange(5)}", window=rng.choice(["PT5M", "PT1H"]),
            offering_group_id=uuid4() if n % 3 else None,
            offering_id=None if n % 3 else uuid4(),
            customer_group=rng.choice([None, "smb"]), clear_after=rng.randrange(1, 4))
        if rng.random() < 0.3:
            app.set_regime_status(regime.id, rng.choice(["pause", "stop"]))


def values_of(items: list[dict[str, Any]], attrs: tuple[str, ...]) -> dict[str, list[Any]]:
    return {attr: sorted({str(item.get(attr)) if isinstance(item.get(attr), list | dict)
                          else item.get(attr) for item in items}, key=str) for attr in attrs}


LISTS: list[tuple[str, Any, Any, tuple[str, ...]]] = [
    ("crossings", schemas.Crossing, Crossing,
     ("regimeId", "parameter", "scopeType", "scopeId", "level", "open", "raisedAt", "since",
      "measuredValue", "unit", "standardVersion", "planned", "version", "id")),
    ("burn_alerts", schemas.BurnAlert, BurnAlert,
     ("regimeId", "scopeId", "severity", "open", "resolution", "factor", "burnRate",
      "windowStart", "planned", "raisedAt", "version")),
    ("quarantine_statuses", schemas.Quarantine, Quarantine,
     ("kind", "partition", "regimeId", "parameter", "batchId", "position", "status",
      "quarantinedAt", "releaseReason", "version")),
    ("regimes", schemas.Regime, Regime,
     ("name", "status", "offeringGroupId", "productOfferingId", "customerGroup", "window",
      "clearAfter", "version")),
]


def in_memory(app: Monitoring, kind: type) -> list[Any]:
    """The list as the in-memory index of the earlier release gave it."""
    log = app if kind is Regime else app.outcomes
    found = AggregateIndex(log, kinds=(kind,)).all(kind)
    if kind is Quarantine:
        return [QuarantineStatus(q, None if q.released else app.release_requested(q.id))
                for q in found]
    return found


@pytest.mark.parametrize(("query", "schema_class", "kind", "attrs"), LISTS,
                         ids=[entry[0] for entry in LISTS])
def test_monitoring_lists_page_in_the_database_as_they_did_in_memory(
        store_env: dict[str, str], query: str, schema_class: Any, kind: type,
        attrs: tuple[str, ...]) -> None:
    app = Monitoring(store_env)
    try:
        some_outcomes(app, 60)
        some_regimes(app, 25)
        quarantine = next(q for q in app.quarantines()
                          if q.kind == "series" and not q.released)
        app.release_quarantine(quarantine.id, "fixed it", "ops")  # releaseRequested
        schema = schema_class(many=True)
        allowed = wire_names(schema)
        everything = schema.dump(in_memory(app, kind))
        listed = getattr(app, query)()
        assert isinstance(listed, Listing)
        assert schema.dump(list(listed)) == everything
        values = values_of(everything, attrs)
        rng = random.Random(17)
        flask_app = Flask(__name__)
        for _ in range(250):
            wanted = random_query(rng, values)
            expected = answer(flask_app, wanted, lambda: listing.page_of(everything, allowed))
            stored = answer(flask_app, wanted, lambda: getattr(app, query)().page(
                listing.request.args, allowed, (), schema.dump))
            assert stored == expected, wanted
    finally:
        app.close()


def test_a_rebuilt_monitoring_read_model_gives_the_same_answers(
        store_env: dict[str, str]) -> None:
    app = Monitoring(store_env)
    try:
        some_outcomes(app, 30)
        some_regimes(app, 10)
        dumps = {name: (schema_class(many=True), lambda n=name: list(getattr(app, n)()))
                 for name, schema_class, _, _ in LISTS}
        before = {name: schema.dump(read()) for name, (schema, read) in dumps.items()}
        assert [model.name for model in app.read_models()] == ["monitoring", "outcomes"]
        for model in app.read_models():
            report = model.rebuild()
            assert report.events == model.app.max_notification_id()
        assert {name: schema.dump(read()) for name, (schema, read) in dumps.items()} == before
    finally:
        app.close()


def test_status_names_the_open_crossing_and_alert_of_a_series_from_the_stored_index(
        store_env: dict[str, str]) -> None:
    app = Monitoring(store_env)
    try:
        some_outcomes(app, 30)
        open_crossings = {c.id for c in in_memory(app, Crossing) if c.open}
        stored = app.outcomes_index.all(Crossing, open=True)
        assert {c.id for c in stored} == open_crossings
        assert {a.id for a in app.outcomes_index.all(BurnAlert, open=True)} == {
            a.id for a in in_memory(app, BurnAlert) if a.open}
    finally:
        app.close()


def test_the_working_set_starts_from_the_stored_replicas_not_the_log(
        store_env: dict[str, str]) -> None:
    first = Monitoring(store_env)
    group = str(uuid4())
    for n in range(30):
        first.receive_replica("purchasedOffering", f"po-{n}", {
            "id": f"po-{n}", "productOfferingId": "o-1", "offeringGroupId": group,
            "status": "active", "version": 1}, 1)
    for n in range(10):  # changes: the history is longer than the estate
        first.receive_replica("purchasedOffering", f"po-{n}", {
            "id": f"po-{n}", "productOfferingId": "o-1", "offeringGroupId": group,
            "status": "suspended", "version": 2}, 2)
    regime = first.start_regime(name="watch", window="PT5M", offering_group_id=group)
    ws = first.working_set
    members = [po["id"] for po in ws.members(ws.regime(regime.id))]
    statuses = {po["id"]: po["status"] for po in ws.members(ws.regime(regime.id))}
    first.close()

    again = Monitoring(store_env)
    try:
        ws = again.working_set
        assert ws._index.applied == 0  # nothing replayed: loaded from the stored rows
        assert [po["id"] for po in ws.members(ws.regime(regime.id))] == members
        assert {po["id"]: po["status"] for po in ws.members(ws.regime(regime.id))} == statuses
        # and followed from the log from there: a change after the start is seen
        generation = ws.generation
        again.receive_replica("purchasedOffering", "po-29", {
            "id": "po-29", "productOfferingId": "o-1", "offeringGroupId": group,
            "status": "terminated", "version": 2}, 2)
        ws = again.working_set
        assert ws.generation > generation
        assert ws.purchased_offering("po-29")["status"] == "terminated"
        assert again.index.stored_position() == again.max_notification_id()
    finally:
        again.close()


def test_slactl_readmodel_rebuilds_monitoring_to_the_same_answers(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from services.cli import main

    app = Monitoring(sqlite_env(tmp_path / "monitoring.sqlite"))
    try:
        some_outcomes(app, 20)
        some_regimes(app, 5)
        before = {name: schema_class(many=True).dump(list(getattr(app, name)()))
                  for name, schema_class, _, _ in LISTS}
    finally:
        app.close()
    env = {"SLA_DATA_DIR": str(tmp_path), "SLA_SECRET_KEY": "k" * 40}
    runner = CliRunner()
    status = runner.invoke(main, ["readmodel", "status", "monitoring"], env=env)
    assert status.exit_code == 0, status.output
    assert "outcomes" in status.output and "monitoring" in status.output
    rebuilt = runner.invoke(main, ["readmodel", "rebuild", "monitoring"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    applied = re.search(r"monitoring outcomes: ([\d,]+) events applied", rebuilt.output)
    assert applied and int(applied.group(1).replace(",", "")) > 0, rebuilt.output
    again = Monitoring(sqlite_env(tmp_path / "monitoring.sqlite"))
    try:
        assert {name: schema_class(many=True).dump(list(getattr(again, name)()))
                for name, schema_class, _, _ in LISTS} == before
    finally:
        again.close()
