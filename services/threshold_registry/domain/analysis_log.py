"""Analysis results logged on what they are about: a product offering, or a purchased
offering of the inventory. Analysis sends them over the bus; the registry keeps each one
(its id once), as analysis sent it, as a :class:`LoggedResult` of its own, listed by what
it concerns from the stored read model.

Why an aggregate per result, not a list on the offering: analysis sends results every
day (a trend per offering and parameter), so a list kept in the offering's state would
grow without end — every later change of the offering, every replay and every snapshot
carrying years of results. A result of its own is written once, named by its id (the
store refuses a second: a redelivery or a replay changes nothing), and read a page at a
time. :class:`AnalysisLog` keeps what an earlier release logged on the offerings
themselves, read beside the new ones."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.threshold_registry.domain.validation import copied_result
from shared.ids import stable_id

PRODUCT_OFFERING, PURCHASED_OFFERING = "productOffering", "purchasedOffering"


class LoggedResult(Aggregate):
    """One analysis result, as analysis sent it, logged on a product offering (by its
    id) or a purchased offering (by its product id)."""

    @staticmethod
    def create_id(result_id: str, **_: Any) -> UUID:
        return stable_id("threshold-registry", "analysis-result", result_id)

    @event("Logged")
    def __init__(self, result_id: str, target_type: str, target_id: str,
                 result: dict[str, Any]) -> None:
        self.result_id = result_id
        self.target_type = target_type
        self.target_id = target_id
        self.result = result

    @classmethod
    def of(cls, result: Mapping[str, Any], target_type: str, target_id: str) -> LoggedResult:
        kept = copied_result(result)
        return cls(result_id=str(kept["id"]), target_type=target_type, target_id=target_id,
                   result=kept)


class AnalysisLog(Aggregate):
    """An aggregate that kept the analysis results logged on it (``analysis_log``, which
    its creation sets to ``[]``), as an earlier release did: its log is read beside the
    :class:`LoggedResult` s about it, and it logs nothing new.

    Its event is a class of its own, triggered by ``type(self)``: every aggregate that
    keeps a log gets its own copy of it, so a result logged on a product offering is
    recorded as ``ProductOffering.AnalysisResultLogged`` and one on a purchased offering
    as ``PurchasedOffering.AnalysisResultLogged``, the topics they had before the log was
    shared.

    ``analysis_log`` is set by the creation of each aggregate (not annotated here: an
    annotation would make eventsourcing read this class as a dataclass)."""

    class AnalysisResultLogged(Aggregate.Event):
        result: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.analysis_log.append(copy.deepcopy(self.result))

    def log_analysis_result(self, result: Mapping[str, Any]) -> None:
        """Keep an analysis result about this aggregate; the same result id is kept once."""
        result = copied_result(result)
        if any(str(r.get("id")) == str(result["id"]) for r in self.analysis_log):
            return
        self.trigger_event(type(self).AnalysisResultLogged, result=result)
