"""analysis's aggregates: the window summaries it heard from monitoring (one per series
per closed window, never changed once kept) and its replicas of the registry's
resources. No Flask, no pika."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared import replica
from shared.ids import stable_id


class Replica(replica.Replica):
    """A registry resource (purchased offering, offering, group, SLA type, standard) as
    its last event told it."""

    namespace = "analysis"


class WindowSummary(Aggregate):
    """One series' closed window as monitoring summarised it (``WindowSummaryEvent``):
    what was measured, against which target, how it was judged, and the customer,
    offering, group and SLA type it is about. Kept once, by the summary's id."""

    @staticmethod
    def create_id(summary: dict[str, Any]) -> UUID:
        return summary_id(str(summary["id"]))

    @event("Received")
    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def __getitem__(self, name: str) -> Any:
        return self.summary.get(name)


def summary_id(monitoring_id: str) -> UUID:
    """The id analysis keeps a summary under, from the summary's own (monitoring's)."""
    return stable_id("analysis", "window-summary", monitoring_id)
