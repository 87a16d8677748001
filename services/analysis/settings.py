"""analysis's own settings, read from the environment and validated at start (a bad value
stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import ConfigError, seconds
from shared.durations import duration_seconds

#: How long after a conformance period's end its credits are computed, unless
#: SLA_ANALYSIS_CREDIT_SETTLE says otherwise.
DEFAULT_CREDIT_SETTLE = "PT6H"


@dataclass(frozen=True)
class AnalysisSettings:
    # The clock's loop wakes for the next due item, or for new events; at the latest
    # after this many seconds: SLA_ANALYSIS_TICK.
    tick: float = 1.0
    # How long after a conformance period's end (and after its first summary arrived)
    # the clock closes it and computes its SLA credits, so that late window summaries
    # are counted: SLA_ANALYSIS_CREDIT_SETTLE, an ISO 8601 duration (PT6H), in seconds.
    credit_settle: int = duration_seconds(DEFAULT_CREDIT_SETTLE)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnalysisSettings:
        return cls(tick=seconds(env, "SLA_ANALYSIS_TICK", 1.0, 0.01, 60),
                   credit_settle=settle(env.get("SLA_ANALYSIS_CREDIT_SETTLE")))


def settle(raw: str | None) -> int:
    """SLA_ANALYSIS_CREDIT_SETTLE as seconds: an ISO 8601 duration (``PT6H``, ``P1D``;
    ``PT0S`` closes a period at its end; a month counts 30 days), at most 31 days."""
    text = (raw or DEFAULT_CREDIT_SETTLE).strip()
    try:
        value = duration_seconds(text)
    except ValueError:
        value = -1
    if value < 0 or value > 31 * 86400:
        raise ConfigError("SLA_ANALYSIS_CREDIT_SETTLE",
                          f"expected an ISO 8601 duration such as PT6H (at most P31D), "
                          f"got {text!r}")
    return value
