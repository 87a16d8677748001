"""The evaluator places a usual batch whole (``Evaluator._place_at_once``): it must come to
the very state, evaluations, crossings and figures that placing the batch row by row
comes to — over random logs with late rows, rows of closed windows and of windows the
clock closed, duplicates, interval and status samples, batches across a window's end,
silent offerings, several regimes and partitions."""

from __future__ import annotations

import random
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.monitoring.application import Monitoring
from services.monitoring.domain import RegimeClock
from services.monitoring.evaluator import Evaluator
from services.monitoring.ingestion import Checked
from tests.integration.test_monitoring_stream import GROUP, estate

START = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
PRODUCTS = [f"p{n}" for n in range(6)]


def store(path: Path) -> Monitoring:
    return Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                       "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})


def deployment(path: Path, seed: int) -> tuple[Monitoring, list[str]]:
    """A store with the estate, one to three regimes and a random log of batches (and
    clock ticks), the same for the same seed."""
    rng = random.Random(seed)
    app = store(path)
    for kind, rid, resource in estate(PRODUCTS):
        app.receive_replica(kind, rid, resource, int(resource["version"]))
    regimes = []
    for n, window in enumerate(rng.choice([["PT1M"], ["PT1M"], ["PT2M"], ["PT1M", "PT5M"]])):
        regime = app.start_regime(
            name=f"r{n}", offering_group_id=uuid.UUID(GROUP), offering_id=None,
            sla_type_id=None, customer_group=None, parameters=["latency"], window=window,
            allowed_lateness=rng.choice(["PT0S", "PT1M"]), clear_after=1)
        regimes.append(regime.id)
    t = START
    rows: list[list[Any]] = []
    for m in range(rng.choice([40, 80])):
        batch = []
        odd = rng.random() < 0.4  # late, interval, status or repeated rows; else usual
        for _ in range(rng.choice([1, 10, 30])):
            t += rng.uniform(0, 3 if rng.random() < 0.9 else 40)
            observed = t - (rng.uniform(60, 400) if odd and rng.random() < 0.1 else 0)
            kind = rng.random() if odd else 1.0
            po = rng.choice(PRODUCTS[:-1] if m % 7 else PRODUCTS)  # some windows silent
            if kind < 0.1:
                row = [po, "latency", observed, rng.uniform(10, 150), 30.0, None]
            elif kind < 0.15:
                row = [po, "latency", observed, None, None, rng.choice(["up", "down"])]
            else:
                row = [po, "latency", observed, rng.uniform(10, 60 if m < 30 else 150),
                       None, None]
            batch.append(row)
            if odd and rows and rng.random() < 0.05:
                batch.append(list(rng.choice(rows)))  # a row sent again
        rows.extend(batch)
        app.record_batches([(f"b{m}", "test", Checked(accepted=batch))])
        if rng.random() < 0.1:  # processing time closes windows too
            regime_id = rng.choice(regimes)
            clock = _clock(app, regime_id, t - rng.uniform(0, 120))
            app.save(clock)
    return app, [str(r) for r in regimes]


def _clock(app: Monitoring, regime_id: Any, until: float) -> RegimeClock:
    try:
        clock = app.repository.get(RegimeClock.create_id(str(regime_id)))
    except Exception:  # noqa: BLE001 - the first tick of this regime
        return RegimeClock(regime_id=regime_id, origin=until - 600)
    clock.advance(until)
    return clock


def outcome(app: Monitoring, evaluators: list[Evaluator]) -> tuple[Any, ...]:
    for evaluator in evaluators:
        evaluator.recover()
        while evaluator.run_once():
            pass
    evaluations = sorted((str(e.regime_id), e.parameter, e.scope_type, e.scope_id,
                          e.window_start, repr(sorted(e.result.items())))
                         for e in app.evaluations())
    crossings = sorted((c.scope_id, c.level, c.open, repr(sorted(c.latest.items())))
                       for c in app.crossings())
    states = [e.state.to_dict() for e in evaluators]
    return evaluations, crossings, states


@pytest.mark.parametrize("seed", range(12))
def test_a_batch_placed_whole_gives_what_row_by_row_gives(tmp_path: Path, seed: int) -> None:
    partitions = 1 if seed % 3 else 2
    deployment(tmp_path / "log.db", seed)
    results = []
    for at_once in (True, False):
        copy = tmp_path / f"{at_once}.db"  # the same log, ids and all
        with sqlite3.connect(tmp_path / "log.db") as source, sqlite3.connect(copy) as target:
            source.backup(target)
        app = store(copy)
        evaluators = [Evaluator(app, n, partitions) for n in range(partitions)]
        for evaluator in evaluators:
            evaluator.at_once = at_once
        results.append(outcome(app, evaluators))
    assert results[0][0]  # something was evaluated
    assert results[0] == results[1]


def test_usual_batches_are_placed_whole(tmp_path: Path, monkeypatch: Any) -> None:
    placed = []
    original = Evaluator._place_at_once

    def spy(self: Evaluator, rows: list[list[Any]], batch_id: str) -> Any:
        found = original(self, rows, batch_id)
        placed.append(found is not None)
        return found

    monkeypatch.setattr(Evaluator, "_place_at_once", spy)
    app, _ = deployment(tmp_path / "spied.db", 1)
    outcome(app, [Evaluator(app)])
    assert sum(placed) > len(placed) / 4  # the usual ones; the rest row by row
