"""The evaluator's checkpoint on the real PostgreSQL: the state of many series with 30-day
error budgets is saved in bounded parts and reloads to the same state."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.monitoring.application import Monitoring
from services.monitoring.budget_ledger import BudgetLedger
from services.monitoring.budgets import remaining_budget
from services.monitoring.evaluator import CHECKPOINT_PART_BYTES, Evaluator
from shared import config
from shared.store import ensure_schema
from tests.conftest import base_env
from tests.helpers import drop_schemas

pytestmark = pytest.mark.integration

MONTH = 30 * 86400
T0 = 1_764_547_200.0  # a midnight


def month_of_minutes() -> BudgetLedger:
    """A 30-day ledger fed a month of one-minute windows, some of them bad."""
    ledger = BudgetLedger(60, MONTH)
    t = T0
    for n in range(30 * 24 * 60):
        ledger.add(t, t + 60, 60, 60.0 if n % 211 == 0 else 0.0)
        t += 60
        if n % 30 == 0:
            remaining_budget(ledger, T0, t, 0.999, MONTH)
    return ledger


@pytest.fixture
def monitoring(postgres: dict[str, str], tmp_path: Path) -> Monitoring:
    prefix = f"c{uuid.uuid4().hex[:8]}_"
    settings = config.load(base_env(tmp_path / "var", PERSISTENCE_MODULE="eventsourcing.postgres",
                                    **postgres, SLA_SCHEMA_PREFIX=prefix))
    store_env = settings.store_env("monitoring")
    ensure_schema(store_env)
    app = Monitoring(store_env)
    try:
        yield app
    finally:
        app.close()
        drop_schemas(postgres, prefix)


def test_a_checkpoint_of_many_thirty_day_budgets_saves_and_reloads_on_postgresql(
        monitoring: Monitoring) -> None:
    template = month_of_minutes().to_dict()
    evaluator = Evaluator(monitoring)
    for n in range(3000):
        ledger = BudgetLedger.from_dict(template)
        ledger.add(T0 + MONTH, T0 + MONTH + 60, 60, float(n % 60))  # each its own last minute
        evaluator.state.ledgers[f"regime|availability|purchasedOffering|po-{n}"] = ledger
    evaluator.position = 42  # the state as it stood after notification 42
    evaluator.checkpoint()

    manifest = monitoring.outcomes.repository.get(
        evaluator._checkpoint_id()).state  # noqa: SLF001 - the stored manifest itself
    assert manifest["format"] == 2
    assert manifest["parts"] == -(-manifest["bytes"] // CHECKPOINT_PART_BYTES)

    reloaded = Evaluator(monitoring)
    reloaded.recover()
    assert reloaded.position == 42
    assert reloaded.state.ledgers.keys() == evaluator.state.ledgers.keys()
    for key, ledger in evaluator.state.ledgers.items():
        assert reloaded.state.ledgers[key].to_dict() == ledger.to_dict()
    key = "regime|availability|purchasedOffering|po-7"
    assert reloaded.state.ledgers[key].totals(T0, T0 + MONTH + 60) == \
        evaluator.state.ledgers[key].totals(T0, T0 + MONTH + 60)
