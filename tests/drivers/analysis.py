"""The test driver of analysis's API: aggregate analyses of a period and the SLA credits
of closed periods, in the words of an SLA manager. Service tests build it over the Flask
test client, end-to-end tests over real HTTP::

    analysis = AnalysisDriver(FlaskHttp(client))         # tests/service
    analysis = AnalysisDriver.at(root, token)            # tests/e2e

``ask`` returns the :class:`Answer` (a test may expect a refusal); ``aggregate`` asserts
a 200 and returns the items, ``aggregate_csv`` the CSV's rows as dicts."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from tests.drivers.http import Answer, Http, NetworkHttp


class AnalysisDriver:
    def __init__(self, http: Http) -> None:
        self.http = http

    @classmethod
    def at(cls, root: str, token: str) -> AnalysisDriver:
        """Over the network: ``root`` is the service's API root (…/analysis/v1)."""
        return cls(NetworkHttp(root, token))

    def ask(self, query: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        return self.http.request("GET", f"/aggregateAnalysis?{urlencode(query)}",
                                 headers=headers)

    def aggregate(self, start: str, end: str, **query: str) -> list[dict[str, Any]]:
        answer = self.ask({"from": start, "to": end, **query})
        assert answer.status == 200, (answer.status, answer.body)
        return answer.body["item"]

    def aggregate_csv(self, start: str, end: str, *, by_accept: bool = True,
                      **query: str) -> tuple[Answer, list[dict[str, str]]]:
        asked = {"from": start, "to": end, **query}
        answer = self.ask(asked, {"Accept": "text/csv"}) if by_accept else \
            self.ask({**asked, "format": "csv"})
        assert answer.status == 200, (answer.status, answer.body)
        return answer, list(csv.DictReader(io.StringIO(answer.text)))

    def window_count(self, start: str, end: str) -> int:
        return sum(item["windowCount"] for item in self.aggregate(start, end))

    def credits(self, **filters: str) -> list[dict[str, Any]]:
        """The SLA credits of closed conformance periods (TMF630 filters)."""
        answer = self.http.request("GET", f"/slaCredit?{urlencode(filters)}")
        assert answer.status == 200, (answer.status, answer.body)
        return answer.body
