"""The threshold-registry in its users' words: an SLA manager defines offering groups,
offerings and SLA types, drafts, approves and revises threshold standards; fulfilment adds
purchased offerings; anyone asks which version is in force. Each method answers the
resource as the API shows it (camelCase), and fails the test, naming the answer, when the
registry does not answer as expected (``expect=``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.drivers.http import Answer, Http

GOLD_TERMS: dict[str, Any] = {
    "maintenanceAccounting": "excluded", "minimumNoticeDays": 10,
    "creditPercentPerBreachedPeriod": 5, "creditCapPercent": 30}


def availability(**overrides: Any) -> dict[str, Any]:
    """An availability parameter: 99.9 % a month, a warning at 99.95 %, hourly windows."""
    return {"name": "availability", "unit": "%", "kind": "technical",
            "aggregation": "availability", "comparator": "GE", "conformanceTarget": 99.9,
            "thresholdTarget": 99.95, "conformancePeriod": "P30D",
            "evaluationWindow": "PT1H", "graceTimes": 0, **overrides}


def latency(**overrides: Any) -> dict[str, Any]:
    """A p99 latency parameter: at most 100 ms, a warning from 80 ms, hourly windows."""
    return {"name": "latency", "unit": "ms", "kind": "technical", "aggregation": "p99",
            "comparator": "LE", "conformanceTarget": 100, "thresholdTarget": 80,
            "evaluationWindow": "PT1H", **overrides}


@dataclass(frozen=True)
class Catalogue:
    """An offering group, an active offering in it, and the gold SLA type."""

    group: dict[str, Any]
    offering: dict[str, Any]
    gold: dict[str, Any]

    @property
    def ids(self) -> dict[str, str]:
        return {"group": self.group["id"], "offering": self.offering["id"],
                "gold": self.gold["id"]}


def _id(ref: Any) -> Any:
    """A resource (as answered) or its id."""
    return ref["id"] if isinstance(ref, dict) else str(ref)


class RegistryDriver:
    """Over the registry's API root (``/threshold-registry/v1``), in-process
    (``FlaskHttp``) or on the network (``NetworkHttp``)."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def call(self, method: str, path: str, expect: int | None = None, *, json: Any = None,
             query: dict[str, Any] | None = None) -> Answer:
        """A request; with ``expect``, the test fails unless the registry answers it."""
        if query:
            path = f"{path}?{urlencode(query)}"
        answer = self.http.request(method, path, json_body=json)
        if expect is not None:
            assert answer.status == expect, (method, path, answer.status, answer.body)
        return answer

    # --- offering groups and offerings ----------------------------------------------------
    def create_group(self, name: str = "Business fibre", expect: int = 201,
                     **fields: Any) -> dict[str, Any]:
        return self.call("POST", "/offeringGroup", expect, json={"name": name, **fields}).body

    def create_offering(self, name: str = "Fibre 1G", group: Any = None,
                        lifecycle_status: str = "active", expect: int = 201,
                        **fields: Any) -> dict[str, Any]:
        body = {"name": name, "lifecycleStatus": lifecycle_status, **fields}
        if group is not None:
            body["offeringGroupId"] = _id(group)
        return self.call("POST", "/productOffering", expect, json=body).body

    def move_offering(self, offering: Any, group: Any, reason: str | None = None,
                      expect: int = 200) -> dict[str, Any]:
        body: dict[str, Any] = {"offeringGroupId": None if group is None else _id(group)}
        if reason is not None:
            body["moveReason"] = reason
        return self.call("PATCH", f"/productOffering/{_id(offering)}", expect, json=body).body

    def delete_group(self, group: Any, expect: int | None = 204) -> Answer:
        return self.call("DELETE", f"/offeringGroup/{_id(group)}", expect)

    # --- SLA types ------------------------------------------------------------------------
    def create_sla_type(self, name: str = "gold", expect: int = 201, **terms: Any
                        ) -> dict[str, Any]:
        return self.call("POST", "/slaType", expect,
                         json={"name": name, **GOLD_TERMS, **terms}).body

    def catalogue(self, group: str = "Business fibre", offering: str = "Fibre 1G",
                  sla_type: str = "gold") -> Catalogue:
        """The usual start: a group, an active offering in it, the gold SLA type."""
        made = self.create_group(group)
        return Catalogue(made, self.create_offering(offering, group=made),
                         self.create_sla_type(sla_type))

    # --- threshold standards --------------------------------------------------------------
    def standard_body(self, group: Any = None, offering: Any = None, sla_type: Any = None,
                      **fields: Any) -> dict[str, Any]:
        """A standard's request body: scoped to a group or an offering, from 2026 on, with
        an availability parameter unless ``parameters`` says otherwise."""
        body: dict[str, Any] = {
            "name": "Fibre availability", "basis": "commerciallyAgreed",
            "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
            "parameters": [availability()]}
        if group is not None:
            body["offeringGroupId"] = _id(group)
        if offering is not None:
            body["productOfferingId"] = _id(offering)
        if sla_type is not None:
            body["slaTypeId"] = _id(sla_type)
        return {**body, **fields}

    def draft_standard(self, group: Any = None, offering: Any = None, sla_type: Any = None,
                       expect: int = 201, **fields: Any) -> dict[str, Any]:
        """Register a standard: its version 1 is a draft."""
        return self.call("POST", "/thresholdStandard", expect, json=self.standard_body(
            group, offering, sla_type, **fields)).body

    def approve_standard(self, standard: Any, version: int = 1, expect: int = 200
                         ) -> dict[str, Any]:
        return self.call("POST", f"/thresholdStandard/{_id(standard)}/approve", expect,
                         json={"version": version}).body

    def agree_standard(self, group: Any = None, offering: Any = None, sla_type: Any = None,
                       **fields: Any) -> dict[str, Any]:
        """Draft a standard and approve its version 1: in force from its validity on."""
        standard = self.draft_standard(group, offering, sla_type, **fields)
        return self.approve_standard(standard)

    def revise_standard(self, standard: Any, expect: int = 200, **changes: Any
                        ) -> dict[str, Any]:
        """A new draft version with these changes (camelCase, as the API takes them)."""
        return self.call("PATCH", f"/thresholdStandard/{_id(standard)}", expect,
                         json=changes).body

    def retire_standard(self, standard: Any, version: int | None = None, expect: int = 200
                        ) -> dict[str, Any]:
        body = {} if version is None else {"version": version}
        return self.call("POST", f"/thresholdStandard/{_id(standard)}/retire", expect,
                         json=body).body

    def standard_version(self, standard: Any, version: int, expect: int = 200
                         ) -> dict[str, Any]:
        return self.call("GET", f"/thresholdStandard/{_id(standard)}/version/{version}",
                         expect).body

    def standard_versions(self, standard: Any) -> list[dict[str, Any]]:
        return self.call("GET", f"/thresholdStandard/{_id(standard)}/version", 200).body

    def in_force(self, offering: Any, sla_type: Any = None, at: str | None = None,
                 as_known_at: str | None = None, expect: int = 200) -> list[dict[str, Any]]:
        """The standards in force for an offering (and SLA type) at ``at`` (business
        time), as known at ``as_known_at`` (record time)."""
        query: dict[str, str] = {}
        for key, value in (("productOfferingId", offering), ("slaTypeId", sla_type),
                           ("at", at), ("asKnownAt", as_known_at)):
            if value is not None:
                query[key] = _id(value)
        return self.call("GET", "/thresholdStandard/inForce", expect, query=query).body

    def versions_in_force(self, offering: Any, sla_type: Any = None, **when: Any
                          ) -> list[int]:
        return [found["inForceVersion"]["version"]
                for found in self.in_force(offering, sla_type, **when)]

    # --- inventory ------------------------------------------------------------------------
    def add_purchased_offering(self, product_id: str, offering: Any, customer_id: str = "acme",
                               sla_type: Any = None, expect: int = 201, **fields: Any
                               ) -> dict[str, Any]:
        body = {"id": product_id, "customerId": customer_id,
                "productOfferingId": _id(offering), **fields}
        if sla_type is not None:
            body["slaTypeId"] = _id(sla_type)
        return self.call("POST", "/purchasedOffering", expect, json=body).body

    def purchased_offering(self, product_id: str, expect: int | None = 200) -> Answer:
        return self.call("GET", f"/purchasedOffering/{product_id}", expect)

    def change_purchased_offering(self, product_id: str, expect: int = 200, **changes: Any
                                  ) -> dict[str, Any]:
        return self.call("PATCH", f"/purchasedOffering/{product_id}", expect,
                         json=changes).body
