"""The evaluator as a projection: partitions share the load without changing a result,
and a restart (from a checkpoint, or from nothing) gives the results of an uninterrupted
run."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.monitoring.application import Monitoring
from services.monitoring.evaluator import Evaluator
from tests.integration.test_monitoring_stream import GROUP, estate

START = datetime(2026, 11, 24, tzinfo=UTC)
PRODUCTS = [f"p{n}" for n in range(6)]


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def deployment(path: Path, record: bool = True) -> Monitoring:
    """A monitoring store with the estate, three regimes and (``record``) 120 batches."""
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                      "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})
    for kind, rid, resource in estate(PRODUCTS):
        app.receive_replica(kind, rid, resource, int(resource["version"]))
    for n, window in enumerate(("PT1M", "PT2M", "PT5M")):
        app.start_regime(name=f"r{n}", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                         sla_type_id=None, customer_group=None, parameters=["latency"],
                         window=window, allowed_lateness="PT0S", clear_after=1)
    rng = random.Random(3)
    batches = []
    for m in range(120):
        samples = [{"purchasedOfferingId": PRODUCTS[i % 6], "parameter": "latency",
                    "value": rng.uniform(10, 60 if m < 60 else 150),
                    "observedAt": ts(m * 5 + i)} for i in range(10)]
        batches.append((f"b{m}", "test", app.check_batch(samples)))
    for i in range(0, 120 if record else 0, 10):
        app.record_batches(batches[i:i + 10])
    return app


def results(app: Monitoring) -> dict[tuple, Any]:
    regimes = {str(r.id): r.name for r in app.regimes()}
    return {(regimes[str(e.regime_id)], e.parameter, e.scope_type, e.scope_id,
             e.window_start): (e.result["value"], e.result["classification"],
                               tuple(e.result["batchIds"])) for e in app.evaluations()}


def drain(*evaluators: Evaluator) -> None:
    for evaluator in evaluators:
        evaluator.recover()
        while evaluator.run_once():
            pass


def test_partitions_share_the_regimes_and_change_no_result(tmp_path: Path) -> None:
    single, split = deployment(tmp_path / "one.db"), deployment(tmp_path / "two.db")
    drain(Evaluator(single))
    drain(Evaluator(split, 0, 2), Evaluator(split, 1, 2))
    assert results(single) and results(split) == results(single)


def test_a_restart_replays_from_its_checkpoint_to_the_same_results(tmp_path: Path) -> None:
    reference, restarted = deployment(tmp_path / "ref.db"), deployment(tmp_path / "re.db")
    drain(Evaluator(reference))
    first = Evaluator(restarted, batch=7)
    first.recover()
    for _ in range(3):
        first.run_once()
    first.checkpoint()
    checkpointed = first.position
    for _ in range(4):
        first.run_once()  # saved after the checkpoint: replayed without emitting again
    assert first.position > checkpointed  # some rounds were saved after the checkpoint
    second = Evaluator(restarted, batch=7)
    drain(second)
    assert results(restarted) == results(reference)
    crossings = sorted((c.scope_id, c.raised["windowStart"]) for c in restarted.crossings())
    assert crossings == sorted((c.scope_id, c.raised["windowStart"])
                               for c in reference.crossings())


def budget_deployment(path: Path) -> Monitoring:
    """Like ``deployment``, with a 30-day error budget: a ratio standard (99 % over P30D)."""
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                      "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})
    for kind, rid, resource in estate(PRODUCTS):
        if kind == "thresholdStandard":
            parameter = resource["versions"][0]["parameters"][0]
            parameter.update(name="success", unit="ratio", aggregation="ratio",
                             comparator="GE", conformanceTarget=0.99, thresholdTarget=None,
                             conformancePeriod="P30D", graceTimes=0)
        app.receive_replica(kind, rid, resource, int(resource["version"]))
    app.start_regime(name="budget", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                     sla_type_id=None, customer_group=None, parameters=["success"],
                     window="PT1M", allowed_lateness="PT0S", clear_after=1)
    rng = random.Random(5)
    batches = []
    for m in range(90):
        samples = [{"purchasedOfferingId": PRODUCTS[i % 6], "parameter": "success",
                    "value": 0.5 if 30 <= m < 45 and rng.random() < 0.5 else 1.0,
                    "observedAt": ts(m * 20 + i)} for i in range(10)]
        batches.append((f"b{m}", "test", app.check_batch(samples)))
    for i in range(0, 90, 10):
        app.record_batches(batches[i:i + 10])
    return app


def budget_results(app: Monitoring) -> dict[tuple, Any]:
    return {(e.scope_type, e.scope_id, e.window_start): (
        e.result["classification"], e.result["remainingBudget"], e.result["projectedExhaustion"])
        for e in app.evaluations()}


def test_a_checkpoint_with_old_format_budgets_is_rebuilt_from_the_log(tmp_path: Path) -> None:
    from services.monitoring.budget_ledger import MinuteLedger
    from services.monitoring.domain import EvaluatorCheckpoint

    reference, restarted = budget_deployment(tmp_path / "ref.db"), budget_deployment(
        tmp_path / "re.db")
    drain(Evaluator(reference))
    first = Evaluator(restarted, batch=7)
    first.recover()
    for _ in range(5):
        first.run_once()
    assert first.state.ledgers
    # what an earlier version checkpointed: minute buckets, here deliberately wrong
    legacy = first.state.to_dict()
    wrong = MinuteLedger(60, 30 * 86400)
    wrong.add(START.timestamp(), START.timestamp() + 60, 60, 60)
    legacy["ledgers"] = {key: wrong.to_dict() for key in legacy["ledgers"]}
    checkpoint = EvaluatorCheckpoint(partition=first.partition)
    checkpoint.checkpoint(position=first.position, state=legacy)
    restarted.outcomes.save(checkpoint)

    second = Evaluator(restarted, batch=7)
    drain(second)
    assert budget_results(restarted) == budget_results(reference)
    assert any(r[1] is not None and r[1] < 1 for r in budget_results(reference).values())


def test_a_checkpoint_cut_short_before_its_manifest_does_not_stop_the_next(
        tmp_path: Path) -> None:
    app = budget_deployment(tmp_path / "m.db")
    first = Evaluator(app, batch=7)
    first.recover()
    for _ in range(5):
        first.run_once()
    first.save_state_parts(first.position)  # the parts of a save that died before its manifest
    first.checkpoint()  # the same position again: new parts, then the manifest
    second = Evaluator(app)
    second.recover()
    assert second.position == first.position
    assert {k: v.to_dict() for k, v in second.state.ledgers.items()} == {
        k: v.to_dict() for k, v in first.state.ledgers.items()}


def test_logs_recorded_in_the_earlier_shapes_still_load_and_answer_alike(
        tmp_path: Path) -> None:
    """Batches recorded before rows were stored pre-encoded (a JSON list of ``samples``,
    class version 2) are evaluated as the new ones are; window evaluations recorded one
    aggregate per series (``WindowEvaluation``, before ``EvaluatedWindow`` held a window's
    series together) answer ``windowEvaluation`` and ``status`` exactly as the new
    records do."""
    import json

    from eventsourcing.persistence import StoredEvent

    from services.monitoring import schemas
    from services.monitoring.domain import EvaluatedWindow, MeasurementBatch, WindowEvaluation
    from shared.store import topics_of

    current = deployment(tmp_path / "current.db")
    drain(Evaluator(current))
    assert results(current)

    # The same batches as an earlier release recorded them, into a deployment of its own.
    legacy = deployment(tmp_path / "legacy.db", record=False)
    batch_topics = topics_of([MeasurementBatch])
    old_batches = []
    for stored in current.recorder.select_notifications(start=1, limit=10_000,
                                                        topics=batch_topics):
        state = json.loads(stored.state)
        state["samples"] = json.loads(state.pop("rows"))
        state["class_version"] = 2
        old_batches.append(StoredEvent(originator_id=stored.originator_id, originator_version=1,
                                       topic=stored.topic, state=json.dumps(state).encode()))
    legacy_log = deployment(tmp_path / "legacy-log.db", record=False)
    legacy_log.recorder.insert_events(old_batches)
    loaded = legacy_log.repository.get(old_batches[0].originator_id)
    assert isinstance(loaded, MeasurementBatch) and loaded.accepted == 10
    assert loaded.samples == current.repository.get(loaded.id).samples
    drain(Evaluator(legacy_log))
    assert results(legacy_log) == results(current)

    # Evaluations: the new records against one WindowEvaluation per series, as before.
    per_series = []
    for stored in current.outcomes.recorder.select_notifications(
            start=1, limit=10_000, topics=topics_of([EvaluatedWindow])):
        window = current.outcomes.mapper.to_domain_event(stored).mutate(None)
        audited = schemas.represent(window)  # the audit's state of the record: every series
        assert [e["scopeId"] for e in audited["evaluations"]] == [
            one.scope_id for one in window.series()]
        per_series.extend(WindowEvaluation(
            regime_id=one.regime_id, parameter=one.parameter, scope_type=one.scope_type,
            scope_id=one.scope_id, window_start=one.window_start,
            window_end=one.window_end, result=one.result) for one in window.series())
    legacy.outcomes.save(*per_series)
    legacy.evaluations_index = type(legacy.evaluations_index)(legacy.outcomes, 1000)

    def shown(app: Monitoring) -> list[dict[str, Any]]:
        return sorted((schemas.WindowEvaluation().dump(e) for e in app.evaluations()),
                      key=lambda d: (d["scopeType"], d["scopeId"], d["windowStart"]))

    assert len(per_series) == len(current.evaluations())
    old_shown = [{**d, "regimeId": None} for d in shown(legacy)]
    new_shown = [{**d, "regimeId": None} for d in shown(current)]
    assert old_shown == new_shown
    # (the legacy store holds no crossings: the fields drawn from them are left aside)
    status = [{**d, "regimeId": None, "id": None, "href": None, "level": None,
               "since": None, "crossingId": None}
              for app in (legacy, current)
              for d in [schemas.SeriesStatus().dump(s) for s in app.status()]]
    half = len(status) // 2
    assert half and sorted(status[:half], key=str) == sorted(status[half:], key=str)
