"""analysis's own settings, read from the environment and validated at start (a bad value
stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import seconds


@dataclass(frozen=True)
class AnalysisSettings:
    # The clock's loop wakes for the next due item, or for new events; at the latest
    # after this many seconds: SLA_ANALYSIS_TICK.
    tick: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnalysisSettings:
        return cls(tick=seconds(env, "SLA_ANALYSIS_TICK", 1.0, 0.01, 60))
