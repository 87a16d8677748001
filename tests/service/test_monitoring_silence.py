"""Silence is not health: windows close on the clock too, and the standard says what
missing data means (unknown, counted as down, or a noData crossing). A purchased offering
that falls silent while its group keeps reporting, a regime whose feeds all stop, a status
that holds across windows without samples, and a restart in the middle of it all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.monitoring.application import Monitoring
from services.monitoring.clock import Ticker
from services.monitoring.evaluator import Evaluator

START = datetime(2026, 11, 24, tzinfo=UTC)
HOUR = 3600.0


class Clock:
    """Processing time the test moves by hand."""

    def __init__(self, at: float) -> None:
        self.now = at

    def __call__(self) -> float:
        return self.now


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def parameter(missing: str | None, after: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {"name": "availability", "unit": "%", "kind": "technical",
            "aggregation": "availability", "comparator": "GE", "conformanceTarget": 99.0,
            "thresholdTarget": None, "conformancePeriod": None, "evaluationWindow": "PT1H",
            "graceTimes": 0, "missingData": missing, "noDataAfter": after, **extra}


class Estate:
    """A group of purchased offerings in service since before the test, a standard with
    the given treatment of missing data, a PT1H regime (lateness PT10M), a clock, and the
    evaluator and ticker of an evaluator role (driven by hand)."""

    def __init__(self, path: Path, missing: str | None, after: int | None = 1,
                 products: int = 3, clock_at: float = 0.0,
                 sla_type: dict[str, Any] | None = None) -> None:
        self.clock = Clock(START.timestamp() + clock_at)
        self.path = path
        self.app = self.open()
        self.group, self.offering = str(uuid.uuid4()), str(uuid.uuid4())
        self.products = [f"po-{n}" for n in range(products)]
        standard_id = str(uuid.uuid4())
        version = {"version": 1, "lifecycleStatus": "approved", "name": "Fibre",
                   "slaTypeId": None, "parameters": [parameter(missing, after)],
                   "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None}}
        replicas = [
            ("productOffering", self.offering, {"id": self.offering, "version": 1,
                                                "offeringGroupId": self.group,
                                                "lifecycleStatus": "active"}),
            ("thresholdStandard", standard_id, {"id": standard_id, "version": 2,
                                                "offeringGroupId": self.group,
                                                "productOfferingId": None,
                                                "versions": [version]})]
        sla_type_id = None
        if sla_type is not None:
            sla_type_id = str(uuid.uuid4())
            replicas.append(("slaType", sla_type_id, {
                "id": sla_type_id, "version": 1, "maintenanceAccounting": "excluded",
                "timeZone": "UTC", **sla_type}))
        for product in self.products:
            replicas.append(("purchasedOffering", product, {
                "id": product, "customerId": "c", "productOfferingId": self.offering,
                "slaTypeId": sla_type_id, "customerGroup": None, "status": "active",
                "startDate": "2026-01-01T00:00:00Z", "endDate": None, "version": 1}))
        for kind, rid, resource in replicas:
            self.app.receive_replica(kind, rid, resource, int(resource["version"]))
        self.regime = self.app.start_regime(
            name="fibre", offering_group_id=uuid.UUID(self.group), offering_id=None,
            sla_type_id=None, customer_group=None, parameters=["availability"],
            window="PT1H", allowed_lateness="PT10M", clear_after=1)
        self.evaluator, self.ticker = self.role()
        self.ticker.tick()  # the clock starts watching the regime

    def open(self) -> Monitoring:
        return Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                           "SQLITE_DBNAME": str(self.path), "SINGLE_ROW_TRACKING": "n"},
                          clock=self.clock)

    def role(self) -> tuple[Evaluator, Ticker]:
        evaluator = Evaluator(self.app, batch=3)
        evaluator.recover()
        return evaluator, Ticker(self.app)

    def restart(self) -> None:
        """The evaluator role's process dies (nothing of it survives but the stores)."""
        self.app.close()
        self.app = self.open()
        self.evaluator, self.ticker = self.role()

    def send(self, batch_id: str, samples: list[dict[str, Any]]) -> Any:
        checked = self.app.check_batch(samples)
        self.app.record_batches([(batch_id, "test", checked)])
        return checked

    def hour(self, hour: int, reporting: list[str], value: float = 1.0) -> None:
        """The availability readings of one hour, sent when it ends (then time passes)."""
        self.clock.now = START.timestamp() + (hour + 1) * HOUR + 60
        if reporting:
            checked = self.send(f"h{hour}", [
                {"purchasedOfferingId": p, "parameter": "availability", "value": value,
                 "intervalSeconds": HOUR, "observedAt": ts((hour + 1) * HOUR)}
                for p in reporting])
            assert not checked.rejected, checked.rejected
        self.pass_time(START.timestamp() + (hour + 1) * HOUR + 700)

    def pass_time(self, to: float) -> None:
        self.clock.now = to
        self.ticker.tick()
        self.drain()

    def drain(self) -> None:
        while self.evaluator.run_once():
            pass

    def evaluations(self, scope_id: str) -> dict[float, dict[str, Any]]:
        return {(e.window_start - START.timestamp()) / HOUR: e.result
                for e in self.app.evaluations() if e.scope_id == scope_id}

    def crossings(self) -> list[tuple[str, str, float, tuple[str, ...]]]:
        return sorted((c.scope_id, c.level, (sem_epoch(c.raised["windowStart"])
                                             - START.timestamp()) / HOUR,
                       tuple(h["change"] for h in c.history)) for c in self.app.crossings())

    def close(self) -> None:
        self.app.close()


def sem_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def estates(tmp_path: Path) -> Any:
    made: list[Estate] = []

    def make(name: str, *args: Any, **kwargs: Any) -> Estate:
        estate = Estate(tmp_path / f"{name}.db", *args, **kwargs)
        made.append(estate)
        return estate

    yield make
    for estate in made:
        estate.close()


def test_a_silent_offering_is_left_out_as_unknown_by_default(estates: Any) -> None:
    estate = estates("unknown", "unknown")
    p0, p1, p2 = estate.products
    for hour in range(4):
        estate.hour(hour, [p0, p1, p2] if hour == 0 else [p0, p1])
    assert sorted(estate.evaluations(p2)) == [0]  # nothing made of its silence
    group = estate.evaluations(estate.group)
    assert sorted(group) == [0, 1, 2, 3]
    assert group[2]["eligibleSeconds"] == 2 * HOUR and group[2]["value"] == 100.0
    assert estate.crossings() == []


def test_a_silent_offering_counted_as_down_breaches_and_pulls_its_group_down(
        estates: Any) -> None:
    estate = estates("down", "counted-as-down")
    p0, p1, p2 = estate.products
    for hour in range(4):
        estate.hour(hour, [p0, p1, p2] if hour == 0 else [p0, p1])
    silent = estate.evaluations(p2)
    assert sorted(silent) == [0, 1, 2, 3]
    assert silent[2]["classification"] == "breached"
    assert silent[2]["value"] == 0.0 and silent[2]["badSeconds"] == HOUR
    assert silent[2]["count"] == 0  # no sample: the whole window counted down
    group = estate.evaluations(estate.group)
    assert group[2]["eligibleSeconds"] == 3 * HOUR and group[2]["badSeconds"] == HOUR
    assert group[0]["classification"] == "ok" and group[2]["classification"] == "breached"
    assert (p2, "breached", 1.0, ("raised",)) in estate.crossings()


def test_the_sla_type_says_what_missing_data_means_when_the_standard_does_not(
        estates: Any) -> None:
    estate = estates("sla", None, None, sla_type={"missingData": "counted-as-down"})
    p0, p1, p2 = estate.products
    for hour in range(3):
        estate.hour(hour, [p0, p1, p2] if hour == 0 else [p0, p1])
    assert estate.evaluations(p2)[2]["classification"] == "breached"
    assert estate.evaluations(estate.group)[2]["badSeconds"] == HOUR


def test_a_silent_offering_raises_a_nodata_crossing_after_the_configured_windows(
        estates: Any) -> None:
    estate = estates("nodata", "noData", after=2)
    p0, p1, p2 = estate.products
    for hour in range(4):
        estate.hour(hour, [p0, p1, p2] if hour == 0 else [p0, p1])
    silent = estate.evaluations(p2)
    assert [silent[h]["classification"] for h in range(4)] == ["ok", "noData", "noData",
                                                               "noData"]
    group = estate.evaluations(estate.group)
    assert {g["classification"] for g in group.values()} == {"ok"}
    # The first empty window (1 h) is tolerated, the second (2 h) raises it.
    assert estate.crossings() == [(p2, "noData", 2.0, ("raised",))]
    crossing = estate.app.crossings()[0]
    assert crossing.raised["silentSince"] == ts(1 * HOUR)
    assert crossing.raised["emptyWindows"] == 2 and crossing.raised["measuredValue"] is None
    estate.hour(4, [p0, p1, p2])  # it speaks again: the crossing clears
    assert estate.crossings() == [(p2, "noData", 2.0, ("raised", "cleared"))]
    assert estate.evaluations(p2)[4]["classification"] == "ok"


def test_windows_of_a_regime_whose_feeds_all_stop_close_on_the_clock(estates: Any) -> None:
    estate = estates("quiet", "noData", after=2)
    estate.hour(0, estate.products)
    estate.hour(1, estate.products)
    for hour in range(2, 6):  # nothing arrives any more; only time passes
        estate.hour(hour, [])
    group = estate.evaluations(estate.group)
    assert [group[h]["classification"] for h in range(6)] == [
        "ok", "ok", "noData", "noData", "noData", "noData"]
    raised = {(scope, level, at) for scope, level, at, _ in estate.crossings()}
    assert raised == {(scope, "noData", 3.0) for scope in [*estate.products, estate.group]}
    # A sample for a window the clock closed is refused as late, with that reason.
    late = estate.app.check_batch([{"purchasedOfferingId": estate.products[0],
                                    "parameter": "availability", "value": 1.0,
                                    "intervalSeconds": HOUR, "observedAt": ts(4 * HOUR)}])
    assert late.accepted == [] and "closed on the clock" in late.rejected[0]["reason"]


def test_the_clock_records_each_window_boundary_once(estates: Any) -> None:
    estate = estates("ticks", "noData")
    before = estate.app.recorder.max_notification_id()
    for minute in range(0, 180, 7):  # many ticks, three boundaries (and a restart)
        estate.clock.now = START.timestamp() + minute * 60
        estate.ticker.tick()
        if minute == 63:
            estate.restart()
    ticks = [n for n in estate.app.recorder.select_notifications(
        start=before, limit=100, inclusive_of_start=False) if "RegimeClock" in n.topic]
    assert len(ticks) == 3


def test_a_status_holds_across_windows_without_samples(estates: Any) -> None:
    estate = estates("status", "unknown", products=1)
    (po,) = estate.products
    for at, status in ((0, "up"), (1, "down"), (3, "up"), (4, "up")):
        estate.clock.now = START.timestamp() + at * HOUR + 1
        estate.send(f"s{at}", [{"purchasedOfferingId": po, "parameter": "availability",
                                "status": status, "observedAt": ts(at * HOUR)}])
    estate.pass_time(START.timestamp() + 4 * HOUR + 700)
    windows = estate.evaluations(po)
    assert [windows[h]["badSeconds"] for h in range(4)] == [0, HOUR, HOUR, 0]
    assert sum(w["badSeconds"] for w in windows.values()) == 2 * HOUR


def results(estate: Estate) -> Any:
    """What was concluded, with the estate's own ids (group, crossings) named."""
    def name(scope_id: str) -> str:
        return "group" if scope_id == estate.group else scope_id

    crossings = {str(c.id): (name(c.scope_id), c.level, c.raised["windowStart"])
                 for c in estate.app.crossings()}
    return (sorted((name(e.scope_id), e.window_start, e.result["classification"],
                    e.result["value"], e.result["badSeconds"],
                    crossings.get(e.result["crossingId"]))
                   for e in estate.app.evaluations()),
            sorted((name(scope), level, at, changes)
                   for scope, level, at, changes in estate.crossings()))


def test_a_restart_in_the_middle_gives_the_results_of_an_uninterrupted_run(
        estates: Any) -> None:
    reference, restarted = estates("ref", "noData", 2), estates("re", "noData", 2)
    for estate in (reference, restarted):
        p0, p1, p2 = estate.products
        for hour in range(8):
            reporting = [p0, p1, p2] if hour < 2 else [p0, p1] if hour < 4 else []
            if estate is restarted and hour == 3:
                estate.evaluator.checkpoint()
                estate.restart()
            if estate is restarted and hour == 5:
                estate.restart()  # replays hours 3 and 4 from the checkpoint, emitting nothing
            if estate is restarted and hour == 6:
                # Killed after recording the clock, before evaluating what it closed.
                estate.clock.now = START.timestamp() + (hour + 1) * HOUR + 700
                estate.ticker.tick()
                estate.restart()
            estate.hour(hour, reporting)
        estate.hour(8, estate.products)
    assert results(restarted) == results(reference)
    assert any(level == "noData" for _, level, _, _ in reference.crossings())


def test_a_checkpoint_written_before_statuses_were_held_per_series_still_loads() -> None:
    from services.monitoring.evaluator import State

    row = ["po-1", "availability", 3600.0, None, None, "down", "b1"]
    old = {"windows": {}, "watermark": {"r": 3600.0}, "closedUntil": {"r": 3600.0},
           "lastStatus": {"r|availability|po-1": row}, "crossing": {}, "openCrossing": {},
           "ledgers": {}, "alerts": {}, "late": {}}
    state = State.from_dict(old)
    assert state.held == {"r|availability": {"po-1": row}}
    assert state.clock == {} and state.empty == {} and state.no_data == {}
    assert State.from_dict(state.to_dict()).held == state.held


def test_a_regime_started_while_its_clock_was_not_running_is_watched_from_its_start(
        estates: Any) -> None:
    """The evaluator role was down when the regime started: the first tick, five hours
    later, closes every window since the regime's start, not only those after it."""
    import time

    later = time.time() + 5 * HOUR - START.timestamp()
    estate = estates("late", "noData", clock_at=later)
    estate.drain()
    started = (estate.regime.created_on.timestamp() // HOUR) * HOUR
    group = estate.evaluations(estate.group)
    assert min(group) == (started - START.timestamp()) / HOUR
    assert len(group) >= 4 and {g["classification"] for g in group.values()} == {"noData"}
