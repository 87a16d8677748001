"""analysis's aggregates: the window summaries it heard from monitoring (one per series
per closed window, never changed once kept) and its replicas of the registry's
resources. No Flask, no pika."""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

import orjson
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
    offering, group and SLA type it is about. Kept once, by the summary's id.

    The summary is kept as its JSON text (``figures``), as monitoring keeps a window's
    figures: one text value, so a rebuild of the read model stores a million of them
    straight off their stored events (``shared.bulkload``), and decoded when read."""

    @staticmethod
    def create_id(summary_id: str, figures: str) -> UUID:
        return stable_summary_id(summary_id)

    @event("Received")
    def __init__(self, summary_id: str, figures: str) -> None:
        self.summary_id = summary_id
        self.figures = figures

    @classmethod
    def of(cls, summary: dict[str, Any]) -> WindowSummary:
        """The aggregate keeping a summary (a ``WindowSummaryEvent``'s ``windowSummary``)."""
        return cls(summary_id=str(summary["id"]), figures=_encode(summary))

    @property
    def summary(self) -> dict[str, Any]:
        return _decoded(self.figures)

    def __getitem__(self, name: str) -> Any:
        return _decoded(self.figures).get(name)


def _encode(summary: dict[str, Any]) -> str:
    try:
        return orjson.dumps(summary).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(summary, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _decoded(figures: str) -> dict[str, Any]:
    """A summary's figures, decoded once while its row's columns are read (every column
    reads them). Not to be changed by callers."""
    try:
        return orjson.loads(figures)
    except orjson.JSONDecodeError:
        return json.loads(figures)


def stable_summary_id(monitoring_id: str) -> UUID:
    """The id analysis keeps a summary under, from the summary's own (monitoring's)."""
    return stable_id("analysis", "window-summary", monitoring_id)
