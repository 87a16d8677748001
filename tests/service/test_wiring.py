"""How the runtime wires a service: each spec builds its application from what it is given
(its own settings, the store's environment, the cache, the clock) and names its roles; a
service's bad setting stops the start naming the variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.analysis.service import SPEC as ANALYSIS
from services.catalogue import all_specs
from services.cli import main
from services.monitoring.service import SPEC as MONITORING
from services.notification.service import SPEC as NOTIFICATION
from shared import config
from shared.service import Runtime
from shared.wsgi import Suite
from tests.conftest import base_env


class Outbox:
    """A sender that keeps what it is handed (no SMTP server, no webhook receiver)."""

    def __init__(self, channel: str) -> None:
        self.channel, self.sent = channel, []

    def send(self, message: Any) -> str:
        self.sent.append(message)
        return "kept"


SENDERS = {"email": Outbox("email"), "webhook": Outbox("webhook")}


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Suite, list[float]]]:
    now = [1_800_000_000.0]
    settings = config.load(base_env(
        tmp_path / "var", SLA_EVALUATIONS_KEPT="7", SLA_EVALUATOR_PARTITIONS="2",
        SLA_SMTP_HOST="mail.example", SLA_PUBLIC_URL="https://sla.example"))
    suite = Suite(all_specs(), settings, start_workers=False,
                  clocks={"monitoring": lambda: now[0]},
                  senders={"notification": SENDERS})
    try:
        yield suite, now
    finally:
        suite.stop()


def test_each_application_is_built_with_what_its_runtime_was_given(
        wired: tuple[Suite, list[float]]) -> None:
    suite, now = wired
    monitoring = suite.runtime("monitoring")
    assert monitoring.app.cache is monitoring.cache  # the processes' shared cache
    assert monitoring.app.clock() == now[0]
    assert monitoring.wiring.settings.evaluations_kept == 7
    now[0] += 60
    assert monitoring.app.clock() == now[0]
    notification = suite.runtime("notification")
    assert notification.app.config.smtp_host == "mail.example"
    assert notification.app.config.public_url == "https://sla.example"
    assert notification.app.server_key == suite.settings.secret_key
    assert notification.app.senders == SENDERS  # handed over with what it was given


def test_every_background_role_has_a_name(wired: tuple[Suite, list[float]]) -> None:
    suite, _ = wired
    roles = {rt.spec.name: list(rt.roles()) for rt in suite.runtimes}
    assert roles == {
        "threshold-registry": ["relay", "inbox"],
        "notification": ["relay", "inbox", "scheduler", "dispatcher"],
        "monitoring": ["relay", "inbox", "intake", "evaluator-0", "evaluator-1"],
        "analysis": ["relay", "inbox", "clock"],
        "outage-negotiation": ["relay", "inbox", "clock"],
    }


def test_a_partitioned_role_is_started_by_its_family_name(
        wired: tuple[Suite, list[float]]) -> None:
    """``slactl worker monitoring --only evaluator`` (as ``slactl run --distributed``
    starts it) runs every partition when there are several, not an error."""
    suite, _ = wired
    monitoring = suite.runtime("monitoring")
    with pytest.raises(ValueError, match="evaluator-7"):
        monitoring.start_workers({"evaluator-7"})
    assert sorted(monitoring.start_workers({"evaluator"})) == ["evaluator-0", "evaluator-1"]


def test_the_event_stores_environment_carries_no_service_setting(tmp_path: Path) -> None:
    settings = config.load(base_env(tmp_path, SLA_EVALUATIONS_KEPT="7",
                                    SLA_CHECKPOINT_SECONDS="3"))
    for spec in all_specs():
        assert not [k for k in settings.store_env(spec.name) if k.startswith("SLA_")]


@pytest.mark.parametrize(("spec", "variable", "value"), [
    (MONITORING, "SLA_EVALUATOR_PARTITIONS", "0"),
    (MONITORING, "SLA_CHECKPOINT_SECONDS", "often"),
    (MONITORING, "SLA_EVALUATIONS_KEPT", "0"),
    (NOTIFICATION, "SLA_SMTP_PORT", "mail"),
    (ANALYSIS, "SLA_ANALYSIS_TICK", "soon"),
])
def test_a_bad_service_setting_stops_the_start_naming_the_variable(
        tmp_path: Path, spec: Any, variable: str, value: str) -> None:
    settings = config.load(base_env(tmp_path, **{variable: value}))
    with pytest.raises(config.ConfigError) as raised:
        Runtime(spec, settings)
    assert raised.value.variable == variable


def test_slactl_refuses_a_bad_service_setting_before_it_starts_anything(
        tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "SLA_EVALUATOR_PARTITIONS": "none"}
    result = CliRunner().invoke(main, ["worker", "monitoring"], env=env)
    assert result.exit_code == 2
    assert "SLA_EVALUATOR_PARTITIONS" in result.output
    assert not (tmp_path / "monitoring.sqlite").exists()
