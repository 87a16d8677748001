"""The SLA figures an auditor recomputes by hand, as the evaluator produces them from
recorded batches: the budget of a calendar conformance period in the SLA type's time zone,
the window on a period boundary, the eligible-time denominator with excluded maintenance,
planned crossings next to unplanned downtime, and grace without a warning level.

Each story builds its own deployment (SQLite, replicas as the registry would send them) and
drains the evaluator; every expected figure is worked out in a comment next to it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.monitoring import schemas
from services.monitoring.application import Monitoring
from services.monitoring.evaluator import Evaluator

DAY = datetime(2026, 11, 25, tzinfo=UTC)


def at(hours: float, base: datetime = DAY) -> str:
    return (base + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


class Deployment:
    """One offering group, one SLA type, one standard, ``n`` purchased offerings and a
    regime with windows of ``window`` (no lateness: a later sample closes a window)."""

    def __init__(self, path: Path, parameter: dict[str, Any], *, accounting: str = "excluded",
                 zone: str | None = "UTC", window: str = "PT1H", n: int = 1) -> None:
        self.app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                               "SQLITE_DBNAME": str(path), "SINGLE_ROW_TRACKING": "n"})
        self.group, offering, sla = (str(uuid.uuid4()) for _ in range(3))
        self.standard = str(uuid.uuid4())
        self.products = [f"po-{k}" for k in range(n)]
        sla_type = {"id": sla, "name": "gold", "maintenanceAccounting": accounting,
                    "lifecycleStatus": "active", "version": 1}
        if zone is not None:
            sla_type["timeZone"] = zone
        version = {"version": 1, "lifecycleStatus": "approved", "name": "SLOs",
                   "basis": "commerciallyAgreed", "slaTypeId": None,
                   "validFor": {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": None},
                   "parameters": [{"kind": "technical", "graceTimes": 0, **parameter}]}
        self.parameter = parameter["name"]
        replicas = [
            ("slaType", sla, sla_type),
            ("productOffering", offering, {"id": offering, "offeringGroupId": self.group,
                                           "lifecycleStatus": "active", "version": 1}),
            ("thresholdStandard", self.standard, {
                "id": self.standard, "offeringGroupId": self.group, "productOfferingId": None,
                "versions": [version], "version": 1})]
        for product in self.products:
            replicas.append(("purchasedOffering", product, {
                "id": product, "customerId": "c", "productOfferingId": offering,
                "slaTypeId": sla, "customerGroup": None, "status": "active", "version": 1}))
        for kind, rid, resource in replicas:
            self.app.receive_replica(kind, rid, resource, int(resource["version"]))
        self.app.start_regime(name="watch", offering_group_id=uuid.UUID(self.group),
                              offering_id=None, sla_type_id=None, customer_group=None,
                              parameters=[self.parameter], window=window,
                              allowed_lateness="PT0S", clear_after=1)
        self.batches = 0

    def outage(self, start: str, end: str, *products: str) -> None:
        outage_id = str(uuid.uuid4())
        self.app.receive_replica("plannedOutage", outage_id, {
            "id": outage_id, "status": "agreed", "version": 1,
            "window": {"startDateTime": start, "endDateTime": end},
            "affectedPurchasedOfferingIds": list(products or self.products)}, 1)

    def send(self, *samples: dict[str, Any]) -> None:
        self.batches += 1
        checked = self.app.check_batch(list(samples))
        assert checked.rejected == []
        self.app.record_batches([(f"b{self.batches}", "test", checked)])

    def reading(self, product: str, end: str, fraction: float, seconds: float = 3600
                ) -> dict[str, Any]:
        """An availability reading: the up fraction of the ``seconds`` before ``end``."""
        return {"purchasedOfferingId": product, "parameter": self.parameter,
                "value": fraction, "intervalSeconds": seconds, "observedAt": end}

    def up(self, product: str, end: str, fraction: float, seconds: float = 3600) -> None:
        self.send(self.reading(product, end, fraction, seconds))

    def evaluate(self) -> None:
        evaluator = Evaluator(self.app)
        evaluator.recover()
        while evaluator.run_once():
            pass

    def window(self, start: str, scope: str = "po-0") -> dict[str, Any]:
        self.evaluate()
        found = [e.result for e in self.app.evaluations()
                 if e.scope_id == scope and e.window_start == datetime.fromisoformat(
                     start).timestamp()]
        assert len(found) == 1, (start, scope)
        return found[0]


AVAILABILITY = {"name": "availability", "unit": "%", "aggregation": "availability",
                "comparator": "GE", "evaluationWindow": "PT1H"}


def test_the_last_window_of_a_day_spends_that_days_budget(tmp_path: Path) -> None:
    # P1D at 99 %: B x E = 0.01 x 86_400 = 864 s. The last hour (23:00-24:00) is 300 s down:
    # 1 - 300/864 = 0.652_78. Before: the window ending at midnight opened the next
    # period and showed 1.0. The next day's first window starts a fresh budget.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0,
                                       "conformancePeriod": "P1D"})
    for hour in range(24):
        d.up("po-0", at(hour + 1), 1 - 300 / 3600 if hour == 23 else 1.0)
    d.up("po-0", at(25), 1.0)
    d.up("po-0", at(26), 1.0)
    last = d.window(at(23))
    assert last["remainingBudget"] == pytest.approx(1 - 300 / 864)
    assert (last["periodStart"], last["periodEnd"]) == (at(0), at(24))
    assert last["periodEligibleSeconds"] == 86_400
    first = d.window(at(24))
    assert first["remainingBudget"] == 1.0 and first["periodStart"] == at(24)


def test_a_window_that_is_the_whole_period_shows_its_breach(tmp_path: Path) -> None:
    # One P1D window over a P1D period, 1728 s down at 99 %: 1 - 1728/864 = -1.0 (before:
    # 1.0, the window "belonged" to the next period).
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0,
                                       "conformancePeriod": "P1D", "evaluationWindow": "P1D"},
                   window="P1D")
    d.up("po-0", at(24), 1 - 1728 / 86_400, seconds=86_400)
    d.up("po-0", at(48), 1.0, seconds=86_400)
    d.up("po-0", at(72), 1.0, seconds=86_400)
    whole = d.window(at(0))
    assert whole["classification"] == "breached"
    assert whole["remainingBudget"] == pytest.approx(-1.0)


def test_a_monthly_budget_follows_the_calendar_month_of_the_sla_types_time_zone(
        tmp_path: Path) -> None:
    # P1M at 99.9 % in Europe/Paris: October 2026 runs 30 Sep 22:00Z -> 31 Oct 23:00Z
    # (31 days + the hour daylight saving gives back): E = 2_682_000 s, B x E = 2682 s.
    # The window [22:00Z, 23:00Z) of 31 October ends at Paris midnight: October's last.
    # 360 s down: 1 - 360/2682 = 0.865_77. The next window is November's first: 1.0.
    # Before: 30-day blocks from the epoch (2026-10-04 -> 2026-11-03), 1 - 360/2592, and
    # the November window still carried October's 360 s.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.9,
                                       "conformancePeriod": "P1M"}, zone="Europe/Paris")
    base = datetime(2026, 10, 31, 22, tzinfo=UTC)
    d.up("po-0", at(1, base), 0.9)
    d.up("po-0", at(2, base), 1.0)
    d.up("po-0", at(3, base), 1.0)
    october = d.window(at(0, base))
    assert october["remainingBudget"] == pytest.approx(1 - 360 / 2682)
    assert (october["periodStart"], october["periodEnd"]) == (
        "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z")
    assert october["periodEligibleSeconds"] == 31 * 86_400 + 3600
    november = d.window(at(1, base))
    assert november["remainingBudget"] == 1.0
    assert november["periodStart"] == "2026-10-31T23:00:00Z"


def test_an_sla_type_without_a_time_zone_has_utc_periods(tmp_path: Path) -> None:
    # A replica from before time zones: the calendar month in UTC (31 days in October).
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.9,
                                       "conformancePeriod": "P1M"}, zone=None)
    base = datetime(2026, 10, 31, 22, tzinfo=UTC)
    d.up("po-0", at(1, base), 0.9)
    d.up("po-0", at(3, base), 1.0)
    october = d.window(at(0, base))
    assert october["remainingBudget"] == pytest.approx(1 - 360 / 2678.4)
    assert (october["periodStart"], october["periodEnd"]) == (
        "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")


def test_with_excluded_maintenance_the_budget_is_a_share_of_the_eligible_time(
        tmp_path: Path) -> None:
    # P1D at 99 %, gold excludes maintenance; po-0 has an agreed outage 00:00-12:00 (fully
    # measured, so 43_200 s excluded by 12:00). At 12:00-13:00 po-0 is 300 s down.
    # Offering: E = 86_400 - 43_200 = 43_200, B x E = 432 -> 1 - 300/432 = 0.305_56
    # (before: 1 - 300/864 = 0.652_78).
    # Group of two (offering-seconds): E = 2 x 86_400 - 43_200 = 129_600, B x E = 1296 ->
    # 1 - 300/1296 = 0.768_52 (before: 1 - 300/864, as if one offering's period).
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0,
                                       "conformancePeriod": "P1D"}, n=2)
    d.outage(at(0), at(12), "po-0")
    for hour in range(15):
        d.send(*(d.reading(product, at(hour + 1), 1 - 300 / 3600
                           if (hour, product) == (12, "po-0") else 1.0)
                 for product in d.products))
    mine = d.window(at(12))
    assert mine["remainingBudget"] == pytest.approx(1 - 300 / 432)
    assert mine["periodEligibleSeconds"] == 43_200
    group = d.window(at(12), scope=d.group)
    assert group["remainingBudget"] == pytest.approx(1 - 300 / 1296)
    assert group["periodEligibleSeconds"] == 129_600


def test_counted_maintenance_keeps_the_period_as_the_denominator(tmp_path: Path) -> None:
    # counted-as-up: the outage's time is up time, nothing is excluded: E = 86_400,
    # B x E = 864 -> 300 s down: 1 - 300/864
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0,
                                       "conformancePeriod": "P1D"}, accounting="counted-as-up")
    d.outage(at(0), at(12))
    for hour in range(15):
        d.up("po-0", at(hour + 1), 1 - 300 / 3600 if hour == 12 else 1.0)
    mine = d.window(at(12))
    assert mine["remainingBudget"] == pytest.approx(1 - 300 / 864)
    assert mine["periodEligibleSeconds"] == 86_400


def test_unplanned_downtime_next_to_an_outage_is_not_planned(tmp_path: Path) -> None:
    # Outage 04:00-04:30 on po-0 (excluded); po-0 is down 04:30-05:00 — not in the outage.
    # po-0: 0 up of 1800 eligible s -> 0 %, breached, and just as breached without the
    # outage -> NOT planned (before: planned, as the window overlapped an outage, and
    # notification suppressed it). Group: 3600 up of 5400 -> 66.7 %, breached, unplanned.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0}, n=2)
    d.outage(at(4), at(4.5), "po-0")
    for hour in range(6):
        if hour == 4:
            d.send(d.reading("po-0", at(4.5), 1.0, seconds=1800),
                   d.reading("po-0", at(5), 0.0, seconds=1800), d.reading("po-1", at(5), 1.0))
        else:
            d.send(d.reading("po-0", at(hour + 1), 1.0), d.reading("po-1", at(hour + 1), 1.0))
    mine, group = d.window(at(4)), d.window(at(4), scope=d.group)
    assert mine["classification"] == "breached" and mine["planned"] is False
    assert group["classification"] == "breached" and group["planned"] is False
    assert group["value"] == pytest.approx(200 / 3)
    assert sorted((c.scope_id, c.raised["planned"]) for c in d.app.crossings()) == [
        (d.group, False), ("po-0", False)]


def test_downtime_inside_an_outage_counted_as_down_is_planned(tmp_path: Path) -> None:
    # counted-as-down, outage 02:00-02:30 on po-0, down exactly then: po-0 50 % (breached),
    # 100 % without the outage -> planned. Group: 5400 of 7200 = 75 % breached; without:
    # 1800 + 3600 up of 5400 -> 100 % -> planned. At 03:00 po-0 is down 30 minutes with no
    # outage: breached, unplanned.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0},
                   accounting="counted-as-down", n=2)
    d.outage(at(2), at(2.5), "po-0")
    for hour in range(5):
        if hour in (2, 3):
            d.send(d.reading("po-0", at(hour + 0.5), 0.0, seconds=1800),
                   d.reading("po-0", at(hour + 1), 1.0, seconds=1800),
                   d.reading("po-1", at(hour + 1), 1.0))
        else:
            d.send(d.reading("po-0", at(hour + 1), 1.0), d.reading("po-1", at(hour + 1), 1.0))
    mine, group = d.window(at(2)), d.window(at(2), scope=d.group)
    assert mine["value"] == 50.0 and mine["planned"] is True
    assert group["value"] == 75.0 and group["planned"] is True
    assert d.window(at(3))["planned"] is False


def test_without_a_warning_level_nothing_is_raised_within_the_grace(tmp_path: Path) -> None:
    # p99 latency <= 100 ms, no warning level, graceTimes 2: 150 ms in hours 0, 1, 2 raise
    # nothing for hours 0 and 1 and a breach at hour 2 (before: a warning at hour 0).
    d = Deployment(tmp_path / "m.db", {"name": "latency", "unit": "ms", "aggregation": "p99",
                                       "comparator": "LE", "conformanceTarget": 100,
                                       "graceTimes": 2, "evaluationWindow": "PT1H"})
    for hour in range(5):
        d.send({"purchasedOfferingId": "po-0", "parameter": "latency",
                "value": 150.0 if hour < 3 else 20.0, "observedAt": at(hour + 0.5)})
    assert [d.window(at(h))["classification"] for h in range(3)] == ["breached"] * 3
    raised = [(c.scope_id, c.history[0]["level"], c.history[0]["windowStart"])
              for c in d.app.crossings()]
    assert sorted(raised) == [(d.group, "breached", at(2)), ("po-0", "breached", at(2))]


# --- units -----------------------------------------------------------------------------------
def test_a_sample_may_state_its_unit_and_is_recorded_in_the_standards(tmp_path: Path) -> None:
    # 97 with unit % is the up fraction 0.97: the window measures 97.0 % (the standard's
    # unit), as the fraction 0.97 without a unit does.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.0})
    d.send({**d.reading("po-0", at(1), 0.0), "value": 97, "unit": "%"})
    d.send(d.reading("po-0", at(2), 0.97))
    d.send(d.reading("po-0", at(3), 1.0))
    first, second = d.window(at(0)), d.window(at(1))
    assert first["value"] == pytest.approx(97.0) and first["unit"] == "%"
    assert second["value"] == pytest.approx(97.0)
    refused = d.app.check_batch([
        {**d.reading("po-0", at(4), 0.0), "value": 150, "unit": "%"},
        {**d.reading("po-0", at(4), 0.0), "value": 0.5, "unit": "ms"},
        {**d.reading("po-0", at(4), 0.0), "value": 0.5, "unit": ""}]).rejected
    assert [(r["index"], r["field"]) for r in refused] == [(0, "unit"), (1, "unit"),
                                                           (2, "unit")]
    assert "fraction 0..1" in refused[0]["reason"]


def test_a_latency_sample_must_be_in_the_unit_its_standard_states(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "m.db", {"name": "latency", "unit": "ms", "aggregation": "p99",
                                       "comparator": "LE", "conformanceTarget": 100})
    sample = {"purchasedOfferingId": "po-0", "parameter": "latency", "value": 0.2,
              "observedAt": at(0.5)}
    checked = d.app.check_batch([{**sample, "unit": "s"}, {**sample, "unit": "ms"}, sample])
    assert [(r["index"], r["field"]) for r in checked.rejected] == [(0, "unit")]
    assert "in ms" in checked.rejected[0]["reason"]
    assert len(checked.accepted) == 2


def test_a_ratio_standard_in_percent_judges_the_fractions_it_is_sent_in_percent(
        tmp_path: Path) -> None:
    # Ratio samples are fractions: 0.995 and 0.999 -> mean 0.997 -> 99.7 % >= 99 %: ok
    # (before: 0.997 was compared with 99 and breached).
    d = Deployment(tmp_path / "m.db", {"name": "success", "unit": "%", "aggregation": "ratio",
                                       "comparator": "GE", "conformanceTarget": 99.0})
    for moment, value in ((0.2, 0.995), (0.7, 0.999), (1.5, 1.0)):
        d.send({"purchasedOfferingId": "po-0", "parameter": "success", "value": value,
                "observedAt": at(moment)})
    window = d.window(at(0))
    assert window["value"] == pytest.approx(99.7) and window["classification"] == "ok"


def test_budgets_are_fractions_and_rule_windows_durations_on_every_resource(
        tmp_path: Path) -> None:
    # P30D at 99.9 %: B x E = 2592 s. One hour fully down: remaining 1 - 3600/2592 = -0.3889
    # (a fraction), burn over 1 h = 1 / 0.001 = 1000x > 14.4 -> page over PT1H and PT5M.
    d = Deployment(tmp_path / "m.db", {**AVAILABILITY, "conformanceTarget": 99.9,
                                       "conformancePeriod": "P30D"})
    d.up("po-0", at(1), 0.0)
    d.up("po-0", at(2), 0.0)
    window = d.window(at(0))
    assert window["remainingBudget"] == pytest.approx(1 - 3600 / 2592)
    assert window["budgetUnit"] == "ratio" and window["unit"] == "%"
    [alert] = [a for a in d.app.burn_alerts() if a.scope_id == "po-0"]
    shown = schemas.BurnAlert().dump(alert)
    assert (shown["longWindow"], shown["shortWindow"]) == ("PT1H", "PT5M")
    assert (shown["longWindowSeconds"], shown["shortWindowSeconds"]) == (3600, 300)
    assert shown["budgetUnit"] == "ratio" and shown["burnRate"] == pytest.approx(1000)
    [crossing] = [c for c in d.app.crossings() if c.scope_id == "po-0"]
    assert schemas.Crossing().dump(crossing)["unit"] == "%"
    [status] = [s for s in d.app.status() if s.scope_id == "po-0"]
    assert schemas.SeriesStatus().dump(status)["budgetUnit"] == "ratio"
