"""Analysis results logged on what they are about: a product offering, or a purchased
offering of the inventory. Analysis sends them over the bus; the registry keeps each one
(its id once) on the aggregate it concerns, as analysis sent it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from eventsourcing.domain import Aggregate

from services.threshold_registry.domain.validation import copied_result


class AnalysisLog(Aggregate):
    """An aggregate that keeps the analysis results logged on it (``analysis_log``, which
    its creation sets to ``[]``).

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
