"""The test driver of monitoring's API: regimes, measurement batches and the queries over
crossings, burn alerts, evaluations, status and quarantines, in the words of an SLA
manager, a probe and the NOC. Service tests build it over the Flask test client,
end-to-end tests over real HTTP::

    monitoring = MonitoringDriver(FlaskHttp(client))            # tests/service
    monitoring = MonitoringDriver.at(root, token)                # tests/e2e

Commands that a test may expect to be refused return the :class:`Answer`; queries return
the resources (lists as a :class:`Listing`, with ``total``); ``start_regime`` and the
``wait_for_…`` helpers assert that what they wait for happens."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from tests.drivers.http import Answer, FlaskHttp, Http, NetworkHttp
from tests.helpers import eventually

Query = Mapping[str, Any] | None


class Listing(list):
    """A page of a list with its headers (``X-Total-Count`` as ``total``)."""

    def __init__(self, items: list[Any], headers: Mapping[str, str]) -> None:
        super().__init__(items)
        self.headers = headers

    @property
    def total(self) -> int:
        return int(self.headers["X-Total-Count"])


def path_with(path: str, query: Query) -> str:
    """``path`` with a query string of wire names (``{"raisedAt.gte": t}``); ``None``
    values are left out, lists joined with commas (the TMF630 "any of")."""
    pairs = {k: ",".join(map(str, v)) if isinstance(v, list | tuple) else v
             for k, v in (query or {}).items() if v is not None}
    return f"{path}?{urlencode(pairs)}" if pairs else path


class MonitoringDriver:
    def __init__(self, http: Http) -> None:
        self.http = http

    @classmethod
    def at(cls, root: str, token: str) -> MonitoringDriver:
        """Over the network: ``root`` is monitoring's API root (…/monitoring/v1)."""
        return cls(NetworkHttp(root, token))

    def with_scopes(self, *scopes: str) -> MonitoringDriver:
        """The same API as a caller holding only ``scopes`` (service tests)."""
        assert isinstance(self.http, FlaskHttp), "scopes are chosen in service tests"
        return MonitoringDriver(FlaskHttp(self.http.client.with_scopes(*scopes)))

    def _call(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> Answer:
        return self.http.request(method, path, json_body=body, headers=headers)

    # --- regimes ------------------------------------------------------------------------
    def try_start_regime(self, **regime: Any) -> Answer:
        """POST a regime given in wire names (``offeringGroupId=…, window="PT1H"``)."""
        return self._call("POST", "/monitoringRegime", regime)

    def start_regime(self, **regime: Any) -> dict[str, Any]:
        """Start a regime (``name`` defaults to "watch"); fails the test unless started."""
        reply = self.try_start_regime(**{"name": "watch", **regime})
        assert reply.status_code == 201, reply.body
        return reply.body

    def regime(self, regime_id: str) -> Answer:
        return self._call("GET", f"/monitoringRegime/{regime_id}")

    def regimes(self, query: Query = None, **filters: Any) -> Listing:
        return self._list("/monitoringRegime", query, filters)

    def change_regime(self, regime_id: str, if_match: str | None = None,
                      **changes: Any) -> Answer:
        headers = {"If-Match": if_match} if if_match else None
        return self._call("PATCH", f"/monitoringRegime/{regime_id}", changes, headers)

    def pause(self, regime_id: str, reason: str | None = None) -> Answer:
        return self._act(regime_id, "pause", reason)

    def resume(self, regime_id: str) -> Answer:
        return self._act(regime_id, "resume", None)

    def stop(self, regime_id: str, reason: str | None = None) -> Answer:
        return self._act(regime_id, "stop", reason)

    def _act(self, regime_id: str, action: str, reason: str | None) -> Answer:
        body = {} if reason is None else {"reason": reason}
        return self._call("POST", f"/monitoringRegime/{regime_id}/{action}", body)

    # --- measurements -------------------------------------------------------------------
    def send_batch(self, samples: list[dict[str, Any]], batch_id: str | None = None,
                   **extra: Any) -> Answer:
        """POST a measurement batch (``extra``: other body members, as a client might)."""
        body: dict[str, Any] = {"samples": samples, **extra}
        if batch_id is not None:
            body["batchId"] = batch_id
        return self._call("POST", "/measurementBatch", body)

    def send_body(self, body: Any) -> Answer:
        """POST any body to the intake, well formed or not."""
        return self._call("POST", "/measurementBatch", body)

    def batch(self, batch_id: str) -> Answer:
        return self._call("GET", f"/measurementBatch/{batch_id}")

    def wait_until_watched(self, sample: dict[str, Any], timeout: float = 30) -> Answer:
        """Send ``sample`` until monitoring takes it (201): the registry's facts about its
        purchased offering have reached monitoring over the bus."""
        return eventually(lambda: (r := self.send_batch([sample])).status_code == 201 and r,
                          timeout)

    # --- queries ------------------------------------------------------------------------
    def crossings(self, query: Query = None, **filters: Any) -> Listing:
        """Crossings matching wire-name filters (``parameter="latency"``, or a query
        with operators: ``{"raisedAt.gte": t}``)."""
        return self._list("/crossing", query, filters)

    def crossing(self, crossing_id: str) -> Answer:
        return self._call("GET", f"/crossing/{crossing_id}")

    def burn_alerts(self, query: Query = None, **filters: Any) -> Listing:
        return self._list("/burnAlert", query, filters)

    def evaluations(self, query: Query = None, **filters: Any) -> Listing:
        return self._list("/windowEvaluation", query, filters)

    def status(self, query: Query = None, **filters: Any) -> Listing:
        return self._list("/status", query, filters)

    def quarantines(self, query: Query = None, **filters: Any) -> Listing:
        return self._list("/quarantine", query, filters)

    def quarantine(self, quarantine_id: str) -> Answer:
        return self._call("GET", f"/quarantine/{quarantine_id}")

    def release(self, quarantine_id: str, reason: str | None = None) -> Answer:
        body = {} if reason is None else {"reason": reason}
        return self._call("POST", f"/quarantine/{quarantine_id}/release", body)

    def audit_events(self, query: Query = None, **filters: Any) -> Answer:
        return self._call("GET", path_with("/audit/events", {**(query or {}),
                                                                    **filters}))

    def aggregate_history(self, aggregate_id: str) -> Answer:
        return self._call("GET", f"/audit/aggregates/{aggregate_id}/history")

    def ready(self) -> Answer:
        return self._call("GET", "/readyz")

    # --- waiting ------------------------------------------------------------------------
    def wait_for_crossing(self, query: Query = None, *, timeout: float = 30,
                          where: Callable[[dict[str, Any]], bool] = lambda c: True,
                          **filters: Any) -> dict[str, Any]:
        """The first crossing that matches the filters (and ``where``), once there is
        one; fails the test after ``timeout`` seconds."""
        return eventually(lambda: next(
            (c for c in self.crossings(query, **filters) if where(c)), None), timeout)

    def wait_for_status(self, query: Query = None, *, timeout: float = 30,
                        where: Callable[[dict[str, Any]], bool] = lambda s: True,
                        **filters: Any) -> dict[str, Any]:
        """The status row that matches, once there is one."""
        return eventually(lambda: next(
            (s for s in self.status(query, **filters) if where(s)), None), timeout)

    def _list(self, path: str, query: Query, filters: Mapping[str, Any]) -> Listing:
        reply = self._call("GET", path_with(path, {**(query or {}), **filters}))
        assert reply.status_code == 200, (path, reply.status_code, reply.body)
        return Listing(reply.body, reply.headers)
