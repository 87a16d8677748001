"""Aggregates whose plain fields change by one event, ``Updated``, carrying the fields
that changed (``changes``: attribute name → new value).

The event is a class of its own, triggered by ``type(self)``: every aggregate that
subclasses :class:`Changeable` gets its own copy, recorded under its own topic
(``<module>:<Class>.Updated``), as if it had defined the event itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsourcing.domain import Aggregate


class Changeable(Aggregate):
    """An aggregate that records changes to its plain fields as one ``Updated`` event."""

    class Updated(Aggregate.Event):
        changes: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            for key, value in self.changes.items():
                setattr(aggregate, key, value)

    def _record_changes(self, changes: Mapping[str, Any]) -> None:
        """Record the fields that changed; nothing when none did."""
        if changes:
            self.trigger_event(type(self).Updated, changes=dict(changes))
