"""One bad input never stops evaluation: a series whose window cannot be evaluated is
quarantined with its reason and every other series goes on; a batch that cannot be put
down to a series is set aside alone; a restart (from a checkpoint or from nothing)
isolates exactly as the first run did; an operator's release resumes the series."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from services.monitoring.application import Monitoring
from services.monitoring.evaluator import Evaluator
from services.monitoring.ingestion import Checked
from tests.integration.test_monitoring_stream import GROUP, estate

START = datetime(2026, 11, 24, tzinfo=UTC)
PRODUCTS = [f"p{n}" for n in range(4)]


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def epoch(seconds: float) -> float:
    return (START + timedelta(seconds=seconds)).timestamp()


def with_throughput(replicas: list[tuple[str, str, dict[str, Any]]]
                    ) -> list[tuple[str, str, dict[str, Any]]]:
    """The estate's latency standard plus a ``sum`` parameter (throughput)."""
    out = []
    for kind, rid, resource in replicas:
        if kind == "thresholdStandard":
            resource = copy.deepcopy(resource)
            resource["versions"][0]["parameters"].append({
                "name": "throughput", "unit": "Mbit", "kind": "technical",
                "aggregation": "sum", "comparator": "GE", "conformanceTarget": 10,
                "thresholdTarget": None, "conformancePeriod": None,
                "evaluationWindow": "PT1M", "graceTimes": 0})
        out.append((kind, rid, resource))
    return out


def deployment(path: Path, bad: str | None = None, outage: dict[str, Any] | None = None
               ) -> Monitoring:
    """Two series (latency p99, throughput sum) of one regime, 40 one-minute windows of
    samples; ``bad`` records one batch as no intake would accept it today:
    ``overflow`` (two throughput values of 1.5e308: their sum overflows), ``row`` (a
    sample row of the wrong shape, which no series can be blamed for)."""
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                      "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})
    for kind, rid, resource in with_throughput(estate(PRODUCTS)):
        app.receive_replica(kind, rid, resource, int(resource["version"]))
    if outage is not None:
        app.receive_replica("plannedOutage", outage["id"], outage, 1)
    app.start_regime(name="watch", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                     sla_type_id=None, customer_group=None,
                     parameters=["latency", "throughput"], window="PT1M",
                     allowed_lateness="PT0S", clear_after=1)
    batches = []
    for m in range(80):
        samples = [{"purchasedOfferingId": PRODUCTS[i % 4], "parameter": parameter,
                    "value": (30 + m % 7 * 20) if parameter == "latency" else 5 + i,
                    "observedAt": ts(m * 30 + i)}
                   for i in range(8) for parameter in ("latency", "throughput")]
        batches.append((f"b{m}", "test", app.check_batch(samples)))
        if m == 30 and bad == "overflow":
            rows = [[PRODUCTS[0], "throughput", epoch(m * 30 + 10 + i), 1.5e308, None, None]
                    for i in range(2)]
            batches.append(("bad", "test", Checked(accepted=rows)))
        if m == 30 and bad == "row":
            batches.append(("bad", "test", Checked(accepted=[[PRODUCTS[0], "latency"]])))
    for batch in batches:
        app.record_batches([batch])
    return app


def results(app: Monitoring) -> dict[tuple, Any]:
    return {(e.parameter, e.scope_type, e.scope_id, e.window_start): (
        e.result["value"], e.result["classification"], tuple(e.result["batchIds"]))
        for e in app.evaluations()}


def quarantines(app: Monitoring) -> list[tuple]:
    """Each quarantine, with its key as ``<regime name>|parameter`` (ids differ between
    deployments)."""
    names = {str(r.id): r.name for r in app.regimes()}
    return sorted((q.kind, "|".join(names.get(p, p) for p in q.key.split("|")), q.position,
                   q.batch_id, q.reason, q.released) for q in app.quarantines())


def drain(evaluator: Evaluator) -> Evaluator:
    evaluator.recover()
    while evaluator.run_once():
        pass
    return evaluator


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("sla_monitoring_quarantined_total", {"kind": kind}) or 0.0


def test_a_series_whose_window_overflows_is_quarantined_and_the_others_go_on(
        tmp_path: Path) -> None:
    reference = deployment(tmp_path / "ref.db")
    broken = deployment(tmp_path / "bad.db", bad="overflow")
    before = counted("series")
    drain(Evaluator(reference))
    evaluator = drain(Evaluator(broken))

    assert evaluator.last_error is None
    want, got = results(reference), results(broken)
    latency = {k: v for k, v in want.items() if k[0] == "latency"}
    assert latency and {k: v for k, v in got.items() if k[0] == "latency"} == latency
    [(kind, key, _, batch_id, reason, released)] = quarantines(broken)
    regime = broken.regimes()[0]
    assert (kind, key, released) == ("series", "watch|throughput", False)
    assert "OverflowError" in reason and batch_id.startswith("b")
    # Throughput was evaluated up to the window that holds the bad values, never after.
    bad_window = (epoch(30 * 30 + 10) // 60) * 60
    throughput = sorted(k[3] for k in got if k[0] == "throughput")
    assert throughput and max(throughput) < bad_window
    assert {k: v for k, v in got.items() if k[0] == "throughput"} == {
        k: v for k, v in want.items() if k[0] == "throughput" and k[3] < bad_window}
    assert counted("series") == before + 1
    assert evaluator.state.quarantined == {f"{regime.id}|throughput":
                                           str(broken.quarantines()[0].id)}


def test_a_batch_no_series_can_be_blamed_for_is_set_aside_alone(tmp_path: Path) -> None:
    reference = deployment(tmp_path / "ref.db")
    broken = deployment(tmp_path / "bad.db", bad="row")
    drain(Evaluator(reference))
    drain(Evaluator(broken))
    [(kind, key, position, batch_id, reason, _)] = quarantines(broken)
    assert (kind, batch_id) == ("batch", "bad") and key == f"batch:{position}"
    assert "IndexError" in reason
    assert results(broken) == results(reference)  # its one sample was all it held


def test_a_restart_isolates_as_the_first_run_did_and_emits_nothing_twice(
        tmp_path: Path) -> None:
    straight = deployment(tmp_path / "straight.db", bad="overflow")
    drain(Evaluator(straight))
    restarted = deployment(tmp_path / "restarted.db", bad="overflow")
    first = Evaluator(restarted, batch=7)
    first.recover()
    for _ in range(3):
        first.run_once()
    first.checkpoint()  # before the bad batch
    for _ in range(6):
        first.run_once()  # the quarantine is recorded in these rounds
    assert quarantines(restarted)
    drain(Evaluator(restarted, batch=7))  # from the checkpoint
    drain(Evaluator(restarted, batch=50))  # and once more, with other rounds
    assert results(restarted) == results(straight)
    assert quarantines(restarted) == quarantines(straight)
    assert sorted((c.scope_id, c.raised["windowStart"]) for c in restarted.crossings()) == \
        sorted((c.scope_id, c.raised["windowStart"]) for c in straight.crossings())
    # A checkpoint taken after the quarantine carries it: a restart from it knows.
    last = Evaluator(restarted)
    drain(last)
    last.checkpoint()
    assert drain(Evaluator(restarted)).state.quarantined == last.state.quarantined != {}


def test_a_released_series_is_evaluated_again_from_its_next_samples(tmp_path: Path) -> None:
    app = deployment(tmp_path / "bad.db", bad="overflow")
    evaluator = drain(Evaluator(app))
    [quarantine] = app.quarantines()
    app.release_quarantine(quarantine.id, "values fixed at the source", "operator")
    assert app.release_requested(quarantine.id) is not None
    later = [{"purchasedOfferingId": PRODUCTS[0], "parameter": "throughput", "value": 50,
              "observedAt": ts(80 * 30 + 60 * n)} for n in range(3)]
    app.record_batches([("after", "test", app.check_batch(later))])
    while evaluator.run_once():
        pass
    released = app.quarantine(quarantine.id)
    assert released.released and released.release["reason"] == "values fixed at the source"
    assert evaluator.state.quarantined == {}
    resumed = [e for e in app.evaluations() if e.parameter == "throughput"
               and e.window_start >= epoch(80 * 30)]
    assert resumed and all(e.result["batchIds"] == ["after"] for e in resumed)
    # A replay from nothing resumes it at the same point, and emits nothing again.
    before = results(app)
    assert drain(Evaluator(app)).state.to_dict() == evaluator.state.to_dict()
    assert results(app) == before


def test_an_outage_replica_with_an_unreadable_time_does_not_stop_evaluation(
        tmp_path: Path) -> None:
    outage = {"id": "outage-1", "status": "agreed", "version": 1,
              "affectedPurchasedOfferingIds": [PRODUCTS[0]],
              "window": {"startDateTime": "not-a-date", "endDateTime": ts(3600)}}
    reference = deployment(tmp_path / "ref.db")
    recorded = deployment(tmp_path / "outage.db", outage=outage)
    drain(Evaluator(reference))
    evaluator = drain(Evaluator(recorded))
    assert evaluator.last_error is None and quarantines(recorded) == []
    assert results(recorded) == results(reference)


def test_a_checkpoint_that_cannot_be_read_is_replaced_by_a_replay_of_the_log(
        tmp_path: Path) -> None:
    """A checkpoint in a state format this code cannot read (e.g. written by another
    version) must not wedge the evaluator: it replays the log instead, emitting nothing
    twice."""
    from services.monitoring.domain import EvaluatorCheckpoint

    app = deployment(tmp_path / "cp.db")
    first = drain(Evaluator(app, batch=7))
    first.checkpoint()
    checkpoint = app.outcomes.repository.get(EvaluatorCheckpoint.create_id("main"))
    checkpoint.checkpoint(position=first.position, state={"windows": "not a mapping"})
    app.outcomes.save(checkpoint)
    before = results(app)
    again = drain(Evaluator(app))
    assert again.last_error is None and again.position == first.position
    assert again.state.to_dict() == first.state.to_dict()
    assert results(app) == before
