"""Embedded mode keeps each of a service's logs in tables of its own (as PostgreSQL does):
monitoring's outcomes log is not read as part of its main log, so the audit lists every
event once; a data directory written when both shared one table is split on start."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from services.monitoring.application import Monitoring, MonitoringOutcomes
from services.monitoring.domain import EvaluatorCheckpoint
from shared import config
from tests.conftest import base_env
from tests.service.conftest import Client


def _settings(data_dir: Path) -> config.Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    return config.load(base_env(data_dir))


def _start_regime(app: Monitoring) -> None:
    app.start_regime(name="watch", offering_group_id=uuid.uuid4(), offering_id=None,
                     sla_type_id=None, customer_group=None, parameters=["latency"],
                     window="PT1M", allowed_lateness="PT10S", clear_after=1)


def _audit(data_dir: Path) -> list[dict[str, Any]]:
    from services.monitoring.service import SPEC
    from shared.wsgi import Suite

    suite = Suite([SPEC], _settings(data_dir), start_workers=False)
    try:
        auditor = Client(suite.app("monitoring"), "/monitoring/v1")
        response = auditor.get("/audit/events?limit=1000")
        assert response.status_code == 200, response.get_json()
        return response.get_json()
    finally:
        suite.stop()


def _types(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["eventType"] for e in events)


def test_the_embedded_monitoring_audit_lists_every_event_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    app = Monitoring(_settings(data_dir).store_env("monitoring"))
    _start_regime(app)
    app.outcomes.save(EvaluatorCheckpoint("0"))
    assert app.outcomes.recorder.select_notifications(start=0, limit=10) != []
    assert {n.topic for n in app.notifications()}.isdisjoint(
        n.topic for n in app.outcomes.notifications())
    app.close()

    events = _audit(data_dir)
    assert _types(events) == ["EvaluatorCheckpoint.Opened", "Regime.Started"]
    assert {e["log"] for e in events} == {"Monitoring", "MonitoringOutcomes"}
    assert (data_dir / "monitoring.outcomes.sqlite").exists()


class _SharedFileOutcomes(MonitoringOutcomes):
    """The outcomes log as earlier releases kept it: in monitoring's main file."""

    log_name = ""


def test_a_data_directory_from_when_both_logs_shared_a_table_is_split_on_start(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = _settings(data_dir).store_env("monitoring")
    app = Monitoring(env)
    _start_regime(app)
    app.close()
    legacy = _SharedFileOutcomes(env)
    checkpoint = EvaluatorCheckpoint("0")
    legacy.save(checkpoint)
    legacy.record_published(legacy.max_notification_id())  # the outbox's position
    legacy.close()
    (data_dir / "monitoring.outcomes.sqlite").unlink()  # as an earlier release left it

    events = _audit(data_dir)  # the first start of this release splits the file
    assert _types(events) == ["EvaluatorCheckpoint.Opened", "Regime.Started"]

    app = Monitoring(env)
    try:
        moved = list(app.outcomes.notifications())
        assert [n.originator_id for n in moved] == [checkpoint.id]
        assert checkpoint.id not in {n.originator_id for n in app.notifications()}
        # Same notification id as before, so the outbox's position still points at it.
        assert app.outcomes.published_position() == moved[-1].id
        assert app.outcomes.get(EvaluatorCheckpoint, checkpoint.id).id == checkpoint.id
    finally:
        app.close()
