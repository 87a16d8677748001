"""The test driver of outage-negotiation's API: planned outages and their moves, and
customers' blackout periods, in the words of a change manager. Service tests build it
over the Flask test client, end-to-end tests over real HTTP::

    outages = OutageDriver(FlaskHttp(client))            # tests/service
    outages = OutageDriver.at(root, token)               # tests/e2e

Every call returns the :class:`Answer` (a test may expect a refusal); ``plan`` and
``agreed`` assert their way through the lifecycle and return the outage."""

from __future__ import annotations

from typing import Any

from tests.drivers.http import Answer, Http, NetworkHttp


def window(start: str, end: str) -> dict[str, str]:
    return {"startDateTime": start, "endDateTime": end}


class OutageDriver:
    def __init__(self, http: Http) -> None:
        self.http = http

    @classmethod
    def at(cls, root: str, token: str) -> OutageDriver:
        """Over the network: ``root`` is the service's API root (…/outage-negotiation/v1)."""
        return cls(NetworkHttp(root, token))

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None,
             version: int | None = None) -> Answer:
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        answer = self.http.request(method, path, json_body=body, headers=headers)
        if expect is not None:
            assert answer.status == expect, (method, path, answer.status, answer.body)
        return answer

    def draft(self, affects: dict[str, Any], windows: list[dict[str, str]],
              reason: str = "core router upgrade", impact: str = "fullOutage",
              expect: int | None = 201, **fields: Any) -> Answer:
        return self.call("POST", "/plannedOutage", {"affects": affects, "windows": windows,
                                                    "reason": reason, "impact": impact,
                                                    **fields}, expect)

    def move(self, outage: Any, name: str, expect: int | None = 200,
             version: int | None = None, **body: Any) -> Answer:
        outage_id = outage["id"] if isinstance(outage, dict) else outage
        return self.call("POST", f"/plannedOutage/{outage_id}/{name}", body, expect, version)

    def outage(self, outage: Any) -> dict[str, Any]:
        outage_id = outage["id"] if isinstance(outage, dict) else outage
        return self.call("GET", f"/plannedOutage/{outage_id}", expect=200).body

    def outages(self, **query: str) -> list[dict[str, Any]]:
        suffix = "&".join(f"{k}={v}" for k, v in query.items())
        return self.call("GET", "/plannedOutage" + (f"?{suffix}" if suffix else ""),
                         expect=200).body

    def plan(self, affects: dict[str, Any], windows: list[dict[str, str]],
             **fields: Any) -> dict[str, Any]:
        """Drafted, proposed and in negotiation."""
        drafted = self.draft(affects, windows, **fields).body
        self.move(drafted, "propose")
        return self.move(drafted, "negotiate").body

    def agreed(self, affects: dict[str, Any], windows: list[dict[str, str]],
               window_index: int = 0, **fields: Any) -> dict[str, Any]:
        planned = self.plan(affects, windows, **fields)
        return self.move(planned, "agree", windowIndex=window_index).body

    def declare_blackouts(self, customer: str, periods: list[dict[str, Any]],
                          expect: int | None = 200) -> Answer:
        return self.call("PUT", f"/customerBlackout/{customer}", {"periods": periods}, expect)
