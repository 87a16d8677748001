"""Stories of trend analysis's users, in one process (in-process bus), on SQLite and
PostgreSQL: two months of daily windows of a fibre offering reach analysis from the bus;
an SLA manager asks for the trend and finds availability deteriorating, projected to
cross its target on a date, with the result logged on the offering in the inventory;
the clock asks the same question every day on its own, once however often it looks; a
question that cannot be asked is refused naming the field."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import yaml

from shared.bus.contracts import CONTRACTS_DIR
from shared.bus.envelope import Envelope
from shared.bus.topology import SLA_EVENTS
from shared.scheduler import SettableClock
from tests.drivers.http import FlaskHttp
from tests.drivers.registry import RegistryDriver
from tests.helpers import eventually
from tests.service.conftest import Client

pytestmark = pytest.mark.services("threshold-registry", "analysis")
EXAMPLE = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())[
    "components"]["messages"]["WindowSummaryEvent"]["examples"][0]["payload"]
FIRST_DAY = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 60
#: The clock starts just before the first scheduled run after the measured days.
NOW = FIRST_DAY + timedelta(days=DAYS, minutes=50)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def service_clocks(clock: SettableClock) -> dict[str, Any]:
    return {"analysis": clock}


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SLA_ANALYSIS_TICK": "0.05", "SLA_ANALYSIS_TREND_LOOKBACK": f"P{DAYS}D",
            "SLA_ANALYSIS_TREND_TEST": "original"}


@pytest.fixture
def analysis(suite: Any) -> Client:
    return Client(suite.app("analysis"), "/analysis/v1")


def summary(offering: str, product: str, day: int, availability: float) -> Envelope:
    """A day's window of one purchased offering, as monitoring publishes it."""
    body = copy.deepcopy(EXAMPLE)
    start = FIRST_DAY + timedelta(days=day)
    window = body["event"]["windowSummary"]
    window.update(id=str(uuid.uuid4()), purchasedOfferingId=product,
                  scope={"type": "purchasedOffering", "id": product},
                  productOfferingId=offering, windowStart=iso(start),
                  windowEnd=iso(start + timedelta(days=1)), value=availability,
                  eligibleSeconds=86400.0, badSeconds=86400.0 * (1 - availability / 100),
                  conformanceTarget=99.0, thresholdTarget=99.5, breached=availability < 99,
                  classification="breached" if availability < 99 else "ok",
                  periodStart=None, periodEnd=None, crossingId=None)
    body["eventId"] = f"monitoring:{window['id']}"
    return Envelope.from_dict(body)


@pytest.fixture
def declining(suite: Any, registry: Client, analysis: Client) -> dict[str, Any]:
    """Sixty days of two purchased offerings of one offering, availability sliding from
    99.95 % by a hundredth of a percent a day (with noise): the target of 99 % is near."""
    manager = RegistryDriver(FlaskHttp(registry))
    fibre = manager.catalogue()
    offering = fibre.offering["id"]
    rng = np.random.default_rng(11)
    transport = suite.runtime("analysis").transport
    products = [f"fibre-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    for day in range(DAYS):
        for product in products:
            value = float(99.95 - 0.01 * day + rng.normal(0, 0.003))
            envelope = summary(offering, product, day, value)
            transport.publish_raw(SLA_EVENTS, "monitoring.window-summary.closed",
                                  envelope.to_bytes(), message_id=envelope.event_id)
    app = suite.runtime("analysis").app
    eventually(lambda: app.summary_count() == DAYS * len(products), timeout=30)
    return {"offering": offering, "products": products}


def ask(analysis: Client, **body: Any) -> Any:
    question = {"from": iso(FIRST_DAY), "to": iso(FIRST_DAY + timedelta(days=DAYS)),
                "parameter": "availability", **body}
    return analysis.post("/trendAnalysis", json=question)


def test_an_sla_manager_finds_a_deteriorating_offering_and_when_it_will_breach(
        declining: dict[str, Any], analysis: Client, registry: Client) -> None:
    answer = ask(analysis, granularity="day", groupBy=["productOfferingId"], test="original",
                 horizon="P180D")
    assert answer.status_code == 201, answer.get_json()
    run = answer.get_json()
    assert (run["@type"], run["trigger"], run["seriesCount"], run["deterioratingCount"]) == (
        "TrendAnalysis", "request", 1, 1)
    (result,) = run["result"]
    assert result["group"] == {"productOfferingId": declining["offering"]}
    assert (result["trend"], result["deteriorating"], result["n"]) == ("decreasing", True, DAYS)
    # Pooled over both purchased offerings, a hundredth of a percent a day.
    assert result["slope"] == pytest.approx(-0.01, abs=0.001)
    projection = result["projection"]
    assert projection["status"] == "crossing"
    # 99.95 % falls to 99 % in about 95 days from 1 September: early December.
    crossing = datetime.fromisoformat(projection["crossingDateTime"])
    assert FIRST_DAY + timedelta(days=85) < crossing < FIRST_DAY + timedelta(days=105)
    assert projection["earliestDateTime"] <= projection["crossingDateTime"] <= \
        projection["latestDateTime"]
    assert len(result["points"]) == DAYS and result["points"][0]["value"] > 99.9

    # The run is kept as it was answered, and listed.
    assert analysis.get(f"/trendAnalysis/{run['id']}").get_json()["result"] == run["result"]
    listed = analysis.get("/trendAnalysis?trigger=request").get_json()
    assert [r["id"] for r in listed] == [run["id"]] and "result" not in listed[0]

    # Its result is logged on the offering in the inventory.
    def logged() -> list[dict[str, Any]]:
        return registry.get(f"/productOffering/{declining['offering']}/analysisLog"
                            ).get_json()

    eventually(lambda: len(logged()) == 1, timeout=15)
    (entry,) = logged()
    assert (entry["kind"], entry["severity"], entry["parameter"]) == ("trend", "minor",
                                                                      "availability")
    assert "projected to cross 99.0 %" in entry["summary"]
    assert entry["details"]["runId"] == run["id"]
    assert entry["details"]["projection"]["crossingDateTime"] == \
        projection["crossingDateTime"]


def test_weekly_points_pool_the_days_and_an_improving_question_finds_nothing(
        declining: dict[str, Any], analysis: Client) -> None:
    weekly = ask(analysis, granularity="week", groupBy=[], test="hamed_rao").get_json()
    (result,) = weekly["result"]
    assert result["group"] == {} and result["pointCount"] == 9  # ISO weeks of 31 Aug to 26 Oct
    assert result["trend"] == "decreasing"
    by_product = ask(analysis, groupBy=["purchasedOfferingId"]).get_json()
    assert sorted(r["group"]["purchasedOfferingId"] for r in by_product["result"]) == \
        sorted(declining["products"])
    nothing = ask(analysis, filter={"customerId": ["nobody"]}).get_json()
    assert (nothing["seriesCount"], nothing["result"]) == (0, [])


def test_the_clock_runs_the_daily_trend_once_however_often_it_looks(
        declining: dict[str, Any], analysis: Client, clock: SettableClock,
        suite: Any) -> None:
    app = suite.runtime("analysis").app
    assert analysis.get("/trendAnalysis?trigger=schedule").get_json() == []
    clock.set(NOW + timedelta(minutes=11))  # 01:01 UTC: past the first run's due time
    app.wake.set()
    eventually(lambda: len(analysis.get("/trendAnalysis?trigger=schedule").get_json()) == 1,
               timeout=15)
    assert app.tick() == 0  # looked at again: nothing more is due
    (run,) = analysis.get("/trendAnalysis?trigger=schedule").get_json()
    assert (run["actor"], run["seriesCount"]) == ("clock", 1)
    # The question is the settings': the sixty days before midnight, by offering.
    assert run["question"]["from"] == iso(FIRST_DAY)
    assert run["question"]["to"] == iso(FIRST_DAY + timedelta(days=DAYS))
    assert run["question"]["groupBy"] == ["productOfferingId"]

    # Three days later (the clock stopped meanwhile), only the latest run is made.
    clock.set(NOW + timedelta(days=3, minutes=11))
    app.wake.set()
    eventually(lambda: len(analysis.get("/trendAnalysis?trigger=schedule").get_json()) == 2,
               timeout=15)
    assert app.tick() == 0
    latest = analysis.get("/trendAnalysis?trigger=schedule&sort=-analysedAt").get_json()[0]
    assert latest["question"]["to"] == iso(FIRST_DAY + timedelta(days=DAYS + 3))


REFUSED = [
    ({"granularity": "hour"}, "granularity"),
    ({"groupBy": ["region"]}, "groupBy"),
    ({"to": "2026-08-01T00:00:00Z"}, "to"),
    ({"test": "spearman"}, "test"),
    ({"alpha": 0.9}, "alpha"),
    ({"horizon": "soon"}, "horizon"),
    ({"from": "yesterday"}, "from"),
    ({"unknown": 1}, "unknown"),
    ({"from": "1900-01-01T00:00:00Z"}, "to"),  # 46,000 daily points
    ({"horizon": "P-1D"}, "horizon"),
]


def test_a_question_that_cannot_be_asked_is_refused_naming_the_field(
        analysis: Client) -> None:
    for body, field in REFUSED:
        answer = ask(analysis, **body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert any(field in key for key in answer.get_json()["details"]), answer.get_json()
    assert analysis.get("/trendAnalysis").get_json() == []  # nothing was run
    # A horizon past ten years is ten years; a dimension named twice, the same question.
    far = ask(analysis, horizon="P99999D")
    assert far.status_code == 201 and far.get_json()["question"]["horizon"] == "P3660D"
    twice = ask(analysis, groupBy=["slaTypeId", "slaTypeId"])
    assert twice.status_code == 201 and twice.get_json()["question"]["groupBy"] == [
        "slaTypeId"]
