"""Product offerings (TMF620 lifecycle) and the offering groups they are watched and
standardised in, with the analysis results logged on an offering."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from services.threshold_registry.domain.analysis_log import AnalysisLog
from services.threshold_registry.domain.validation import (
    UNSET,
    ValidatedCreation,
    check_choice,
    check_named,
    check_optional_uuid,
    name_changes,
)
from shared.changes import Changeable
from shared.errors import ErrorCollector, InvalidTransition, InvalidValue

OFFERING_LIFECYCLE = ("inDesign", "active", "retired")
OFFERING_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "inDesign": ("active", "retired"),
    "active": ("retired",),
    "retired": (),
}


class OfferingGroup(ValidatedCreation, Changeable):
    """A named group of product offerings, watched and standardised together."""

    @event("Registered")
    def __init__(self, name: str, description: str | None = None) -> None:
        self.name = name
        self.description = description
        self.lifecycle_status = "active"

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        check_named(errors, kwargs)
        errors.raise_if_any()
        return kwargs

    @property
    def is_retired(self) -> bool:
        return self.lifecycle_status == "retired"

    def update(self, name: str | None = None, description: str | None = UNSET) -> None:
        """Rename or re-describe; ``description=None`` clears it, omitted leaves it."""
        if self.is_retired:
            raise InvalidTransition(f"offering group {self.name!r} is retired; it cannot change")
        self._record_changes(name_changes(self, name, description))

    def retire(self) -> None:
        """Retire the group (once); its offerings keep their history."""
        if not self.is_retired:
            self._retired()

    @event("Retired")
    def _retired(self) -> None:
        self.lifecycle_status = "retired"


class ProductOffering(ValidatedCreation, AnalysisLog, Changeable):
    """A product offering (TMF620 lifecycle), in at most one offering group at a time."""

    @event("Registered")
    def __init__(
        self,
        name: str,
        description: str | None = None,
        lifecycle_status: str = "inDesign",
        group_id: UUID | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.lifecycle_status = lifecycle_status
        self.group_id = group_id
        self.analysis_log: list[dict[str, Any]] = []

    @classmethod
    def _validate_creation(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        errors = ErrorCollector()
        check_named(errors, kwargs)
        kwargs.setdefault("lifecycle_status", "inDesign")
        check_choice(errors, "lifecycleStatus", kwargs["lifecycle_status"], OFFERING_LIFECYCLE)
        kwargs["group_id"] = check_optional_uuid(
            errors, "offeringGroupId", kwargs.get("group_id"))
        errors.raise_if_any()
        return kwargs

    def update(self, name: str | None = None, description: str | None = UNSET) -> None:
        """Rename or re-describe; ``description=None`` clears it, omitted leaves it."""
        self._record_changes(name_changes(self, name, description))

    def change_lifecycle(self, status: str) -> None:
        """inDesign -> active -> retired, or inDesign -> retired; nothing else."""
        if status not in OFFERING_LIFECYCLE:
            raise InvalidValue({"lifecycleStatus": [
                f"{status!r} is not one of {', '.join(OFFERING_LIFECYCLE)}"]})
        if status == self.lifecycle_status:
            return
        if status not in OFFERING_TRANSITIONS[self.lifecycle_status]:
            raise InvalidTransition(
                f"offering {self.name!r} cannot go from {self.lifecycle_status} to {status}: "
                "the lifecycle only moves forward (inDesign -> active -> retired)"
            )
        self._lifecycle_changed(from_status=self.lifecycle_status, to_status=status)

    @event("LifecycleChanged")
    def _lifecycle_changed(self, from_status: str, to_status: str) -> None:
        self.lifecycle_status = to_status

    def move_to_group(self, group_id: UUID | None, reason: str | None = None) -> None:
        """Move into ``group_id`` (None: out of any group); the move and reason are recorded."""
        errors = ErrorCollector()
        target = check_optional_uuid(errors, "offeringGroupId", group_id)
        if reason is not None and not isinstance(reason, str):
            errors.add("moveReason", "moveReason must be text or null")
        errors.raise_if_any()
        if target == self.group_id:
            return
        self._moved_to_group(from_group_id=self.group_id, to_group_id=target, reason=reason)

    @event("MovedToGroup")
    def _moved_to_group(
        self, from_group_id: UUID | None, to_group_id: UUID | None, reason: str | None
    ) -> None:
        self.group_id = to_group_id

