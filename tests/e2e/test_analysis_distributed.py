"""analysis in the distributed wiring: registry, monitoring and analysis as gunicorn
processes plus their workers (as ``slactl run --distributed`` starts them) on RabbitMQ,
PostgreSQL and Redis; measurements over HTTP close windows in monitoring, whose
summaries reach analysis over the bus, and its aggregate answers over HTTP; its clock
closes the (past) month and keeps the credit it publishes to billing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import auth
from tests.conftest import SECRET
from tests.drivers.analysis import AnalysisDriver
from tests.drivers.http import NetworkHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.registry import RegistryDriver, availability
from tests.e2e.processes import distributed_suite, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def suite_processes(amqp_url: str, postgres: dict[str, str], redis_url: str,
                    tmp_path: Path, unique: str) -> Iterator[dict[str, Any]]:
    with distributed_suite(("threshold-registry", "monitoring", "analysis"),
                           amqp_url=amqp_url, postgres=postgres, redis_url=redis_url,
                           logs=tmp_path, unique=unique, secret=SECRET,
                           settings={"SLA_RELAY_POLL_INTERVAL": "0.05",
                                     "SLA_ANALYSIS_CREDIT_SETTLE": "PT2S",
                                     "SLA_ANALYSIS_TICK": "0.2"},
                           http_workers=1) as suite:
        yield suite


def test_closed_windows_are_aggregated_by_analysis(suite_processes: dict[str, Any]) -> None:
    bases = suite_processes["bases"]
    token = auth.issue(SECRET, ["admin"], "e2e")
    manager = RegistryDriver(NetworkHttp(bases["threshold-registry"], token))
    watcher = MonitoringDriver.at(bases["monitoring"], token)
    analysis = AnalysisDriver.at(bases["analysis"], token)
    fibre = manager.catalogue()
    manager.agree_standard(group=fibre.group, name="Fibre availability",
                           parameters=[availability(conformanceTarget=99.0,
                                                    thresholdTarget=None,
                                                    conformancePeriod="P1M")])
    products = [f"fibre-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    for product in products:
        manager.add_purchased_offering(product, fibre.offering, f"cust-{product}",
                                       sla_type=fibre.gold, monthlyCharge="100.00",
                                       currency="EUR")
    watcher.start_regime(name="Fibre watch", offeringGroupId=fibre.group["id"],
                         window="PT1H", allowedLateness="PT0S")

    def hour(n: int, down: float) -> list[dict[str, Any]]:
        return [{"purchasedOfferingId": p, "parameter": "availability",
                 "value": 1 - (down if i == 0 else 0), "intervalSeconds": 3600,
                 "observedAt": f"2026-11-25T{n + 1:02d}:00:00Z"} for i, p in enumerate(products)]

    wait_until(lambda: watcher.send_batch(hour(0, 0.5), "h0").status_code in (200, 201), 30,
               "monitoring knows the purchased offerings")
    assert watcher.send_batch(hour(1, 0.0), "h1").status_code == 201  # closes 0h

    def aggregated() -> Any:
        items = analysis.aggregate("2026-11-25T00:00:00Z", "2026-11-25T01:00:00Z",
                                   parameter="availability")
        return items if items and items[0]["windowCount"] == 2 else None

    (item,) = wait_until(aggregated, 30, "the window's summaries in analysis")
    assert item["availability"] == pytest.approx(75.0)  # pooled: 1.5 h up of 2 h
    assert (item["breachCount"], item["meetingTargetCount"], item["judgedCount"]) == (1, 1, 2)
    assert item["creditExposure"]["amount"] == [{"unit": "EUR", "value": "5.00"}]

    # November is over: two seconds after its first summary came, the clock closes it.
    (credit,) = wait_until(lambda: analysis.credits(purchasedOfferingId=products[0]), 30,
                           "the month's credit")
    assert (credit["status"], credit["amount"], credit["currency"]) == ("due", "5.00", "EUR")
    assert credit["period"] == {"startDateTime": "2026-11-01T00:00:00Z",
                                "endDateTime": "2026-12-01T00:00:00Z"}
    assert len(credit["crossingIds"]) == 1
    assert analysis.credits(purchasedOfferingId=products[1]) == []
