"""Threshold standards (after TMF657): agreed or internal levels for an offering's or a
group's parameters, kept as versions — drafted, approved (in force from the approval on,
within their validity), superseded, retired; old versions stay as they were."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.threshold_registry.domain.validation import (
    ValidatedCreation,
    as_utc,
    check_choice,
    check_description,
    check_name,
    check_optional_uuid,
    collect_parameters,
    now,
    validate_valid_for,
)
from shared.errors import DomainError, ErrorCollector, InvalidTransition, InvalidValue, NotFound
from shared.inflection import camel
from shared.standards import version_in_force


class UnknownVersion(DomainError, NotFound, KeyError):
    """A threshold standard has no version with the given number (also a ``KeyError``)."""


BASES = ("commerciallyAgreed", "internallyAcceptable")
VERSION_STATUSES = ("draft", "approved", "superseded", "retired")

#: What a version holds, as the standard's attributes; each version records it under the
#: API's (camelCase) names, ``valid_for`` as ``validFor``.
CONTENT = ("name", "description", "basis", "parameters", "valid_for", "sla_type_id")
_STANDARD_CONTENT = tuple(camel(attribute) for attribute in CONTENT)


def _validate_standard_content(content: Mapping[str, Any]) -> dict[str, Any]:
    """The versioned content of a threshold standard (camelCase keys), normalised."""
    errors = ErrorCollector()
    out = {
        "name": check_name(errors, "name", content.get("name")),
        "description": check_description(errors, "description", content.get("description")),
        "basis": check_choice(errors, "basis", content.get("basis"), BASES),
        "parameters": collect_parameters(content.get("parameters"), errors),
        "validFor": validate_valid_for(content.get("validFor"), errors),
        "slaTypeId": check_optional_uuid(errors, "slaTypeId", content.get("slaTypeId")),
    }
    errors.raise_if_any()
    return out


class ThresholdStandard(ValidatedCreation, Aggregate):
    """Agreed or internal levels for an offering's (or group's) parameters, after TMF657.

    Every change is a new version; old versions stay readable and unchanged. Only approved
    versions are ever in force, each from its approval on (``shared.standards`` has the
    rule); approving a version marks the versions approved before it ``superseded`` (they
    stay in force where the new one is not: before its approval or its validity).
    The scope (offering or group) is fixed at registration.
    """

    class Approved(Aggregate.Event):
        """A version was approved; ``superseded``: the versions it replaces (recorded since
        class version 2; None in older events, which derive them as the approval did)."""

        class_version = 2
        number: int
        approved_by: str
        at: datetime
        superseded: list[int] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["superseded"] = None

    @event("Registered")
    def __init__(
        self,
        name: str,
        basis: str,
        parameters: list[dict[str, Any]],
        valid_for: dict[str, Any],
        offering_id: UUID | None = None,
        offering_group_id: UUID | None = None,
        sla_type_id: UUID | None = None,
        description: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.offering_id = offering_id
        self.offering_group_id = offering_group_id
        self.versions: list[dict[str, Any]] = []
        content = {"name": name, "description": description, "basis": basis,
                   "parameters": parameters, "valid_for": valid_for, "sla_type_id": sla_type_id}
        self._add_version({camel(key): value for key, value in content.items()}, reason,
                          self.created_on)

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        unknown = set(kwargs) - {
            "name", "basis", "parameters", "valid_for", "offering_id", "offering_group_id",
            "sla_type_id", "description", "reason"}
        for key in sorted(unknown):
            errors.add(key, "unknown field")
        offering_id = check_optional_uuid(errors, "productOfferingId", kwargs.get("offering_id"))
        group_id = check_optional_uuid(
            errors, "offeringGroupId", kwargs.get("offering_group_id"))
        if (kwargs.get("offering_id") is None) == (kwargs.get("offering_group_id") is None):
            errors.add("productOfferingId",
                       "give exactly one of productOfferingId and offeringGroupId")
        try:
            content = _validate_standard_content(
                {camel(key): kwargs.get(key) for key in CONTENT})
        except InvalidValue as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    errors.add(field, message)
        errors.raise_if_any()
        return {**{key: content[camel(key)] for key in CONTENT}, "offering_id": offering_id,
                "offering_group_id": group_id, "reason": kwargs.get("reason")}

    def _add_version(self, content: dict[str, Any], reason: str | None, at: datetime) -> None:
        self.versions.append({
            "version": len(self.versions) + 1,
            "lifecycleStatus": "draft",
            **copy.deepcopy(content),
            "createdAt": at,
            "approvedAt": None,
            "approvedBy": None,
            "supersededAt": None,
            "supersededBy": None,
            "retiredAt": None,
            "changeReason": reason,
        })

    # queries
    def get_version(self, number: int) -> dict[str, Any]:
        """A copy of version ``number``; ``UnknownVersion`` (a KeyError) if there is none.

        (Named ``get_version`` because ``version`` is the aggregate's event count.)
        """
        return copy.deepcopy(self._version_ref(number))

    def _version_ref(self, number: int) -> dict[str, Any]:
        if isinstance(number, bool) or not isinstance(number, int) or not (
                1 <= number <= len(self.versions)):
            raise UnknownVersion(
                f"threshold standard {self.id} has no version {number!r} "
                f"(versions 1 to {len(self.versions)})"
            )
        return self.versions[number - 1]

    @property
    def latest(self) -> dict[str, Any]:
        """A copy of the newest version, whatever its status."""
        return copy.deepcopy(self.versions[-1])

    # The standard as its latest version shows it (what its resource shows).
    @property
    def name(self) -> str:
        return self.versions[-1]["name"]

    @property
    def description(self) -> str | None:
        return self.versions[-1].get("description")

    @property
    def basis(self) -> str:
        return self.versions[-1]["basis"]

    @property
    def lifecycle_status(self) -> str:
        return self.versions[-1]["lifecycleStatus"]

    @property
    def current_version(self) -> int:
        return self.versions[-1]["version"]

    @property
    def valid_for(self) -> dict[str, Any]:
        return copy.deepcopy(self.versions[-1]["validFor"])

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.versions[-1]["parameters"])

    @property
    def sla_type_id(self) -> UUID | None:
        return self.versions[-1].get("slaTypeId")

    @property
    def is_retired(self) -> bool:
        return all(v["lifecycleStatus"] == "retired" for v in self.versions)

    def in_force(self, at: datetime) -> dict[str, Any] | None:
        """The version in force at ``at`` as this state knows it (``shared.standards``:
        each approved version from its approval on, within its validity)."""
        found = version_in_force(self.versions, as_utc(at))
        return copy.deepcopy(dict(found)) if found is not None else None

    # commands
    def revise(self, changes: Mapping[str, Any], reason: str | None = None) -> dict | None:
        """Add a draft version: the latest merged with ``changes``, named as the content's
        attributes (``valid_for``) or as the version records them (``validFor``).

        Returns the new version, or None when the changes change nothing.
        """
        changes = {camel(key): value for key, value in changes.items()}
        if reason is None:
            reason = changes.get("changeReason")
        changes.pop("changeReason", None)
        errors = ErrorCollector()
        for key in changes:
            if key in ("productOfferingId", "offeringGroupId", "offeringId"):
                errors.add(key, "the scope of a standard cannot change; register a new standard")
            elif key not in _STANDARD_CONTENT:
                errors.add(key, f"unknown field; revisable: {', '.join(_STANDARD_CONTENT)}")
        if reason is not None and not isinstance(reason, str):
            errors.add("changeReason", "changeReason must be text or null")
        errors.raise_if_any()
        latest = self.versions[-1]
        merged = {key: changes.get(key, latest[key]) for key in _STANDARD_CONTENT}
        content = _validate_standard_content(merged)
        if all(content[key] == latest[key] for key in _STANDARD_CONTENT):
            return None
        self._revised(number=len(self.versions) + 1, content=content, reason=reason, at=now())
        return self.latest

    @event("Revised")
    def _revised(self, number: int, content: dict[str, Any], reason: str | None,
                 at: datetime) -> None:
        self._add_version(content, reason, at)

    def approve(self, version: int, approved_by: str) -> None:
        """Approve a draft version; only approved versions can come into force."""
        v = self._version_ref(version)
        if not isinstance(approved_by, str) or not approved_by.strip():
            raise InvalidValue({"approvedBy": ["approvedBy must name who approves"]})
        if v["lifecycleStatus"] != "draft":
            raise InvalidTransition(
                f"version {version} is {v['lifecycleStatus']}; only a draft can be approved"
                + (" (a retired version stays retired)" if v["lifecycleStatus"] == "retired"
                   else "")
            )
        self._approved(number=version, approved_by=approved_by.strip(), at=now(),
                       superseded=self._approved_others(version))

    def _approved_others(self, number: int) -> list[int]:
        return [v["version"] for v in self.versions
                if v["lifecycleStatus"] == "approved" and v["version"] != number]

    @event(Approved)
    def _approved(self, number: int, approved_by: str, at: datetime,
                  superseded: list[int] | None) -> None:
        if superseded is None:  # recorded before supersession was: derive it the same way
            superseded = self._approved_others(number)
        v = self.versions[number - 1]
        v.update(lifecycleStatus="approved", approvedAt=at, approvedBy=approved_by)
        for older in superseded:
            self.versions[older - 1].update(lifecycleStatus="superseded", supersededAt=at,
                                            supersededBy=number)

    def retire(self, version: int | None = None) -> None:
        """Retire one version (draft, approved or superseded) or, with None, every one not
        yet retired; a retired version is no longer in force from then on."""
        if version is None:
            numbers = [v["version"] for v in self.versions if v["lifecycleStatus"] != "retired"]
        else:
            v = self._version_ref(version)
            numbers = [version] if v["lifecycleStatus"] != "retired" else []
        if numbers:
            self._retired(numbers=numbers, at=now())

    @event("Retired")
    def _retired(self, numbers: list[int], at: datetime) -> None:
        for number in numbers:
            self.versions[number - 1].update(lifecycleStatus="retired", retiredAt=at)
