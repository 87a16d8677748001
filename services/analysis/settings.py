"""analysis's own settings, read from the environment and validated at start (a bad value
stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import ConfigError, seconds, whole_number
from shared.durations import duration_seconds

#: How long after a conformance period's end its credits are computed, unless
#: SLA_ANALYSIS_CREDIT_SETTLE says otherwise.
DEFAULT_CREDIT_SETTLE = "PT6H"

DAY = 86400.0
TREND_GROUPINGS = ("offeringGroupId", "productOfferingId", "slaTypeId", "customerGroup",
                   "customerId", "purchasedOfferingId")
TREND_TESTS = ("original", "seasonal", "hamed_rao", "yue_wang")
TREND_GRANULARITIES = ("day", "week", "month")


def duration(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0
             ) -> float:
    """``name`` as an ISO 8601 duration (``P1D``, ``PT6H``), in seconds; ``default`` when
    unset."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(duration_seconds(raw))
    except ValueError:
        raise ConfigError(name, f"expected an ISO 8601 duration such as P1D, got {raw!r}"
                          ) from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum:g} seconds, got {raw}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip()
    if value not in choices:
        raise ConfigError(name, f"one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class TrendSchedule:
    """The trend run the clock makes on its own: every ``every`` seconds (0: never), the
    first of each day (at ``delay`` past midnight UTC, so the day's last windows have
    closed and arrived), over the ``lookback`` before it, a point per ``granularity``,
    a series per ``group_by`` and parameter, by ``test`` at level ``alpha``, a crossing
    projected ``horizon`` ahead."""

    every: float = DAY
    delay: float = 3600.0
    lookback: float = 90 * DAY
    granularity: str = "day"
    group_by: tuple[str, ...] = ("productOfferingId",)
    test: str = "hamed_rao"
    alpha: float = 0.05
    horizon: float = 90 * DAY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TrendSchedule:
        raw = (env.get("SLA_ANALYSIS_TREND_GROUP_BY") or "productOfferingId").strip()
        group_by = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        unknown = [g for g in group_by if g not in TREND_GROUPINGS]
        if unknown or not group_by:
            raise ConfigError("SLA_ANALYSIS_TREND_GROUP_BY",
                              f"one or more of {', '.join(TREND_GROUPINGS)}, got {raw!r}")
        return cls(
            every=duration(env, "SLA_ANALYSIS_TREND_EVERY", DAY),
            delay=duration(env, "SLA_ANALYSIS_TREND_DELAY", 3600.0),
            lookback=duration(env, "SLA_ANALYSIS_TREND_LOOKBACK", 90 * DAY, minimum=DAY),
            granularity=_choice(env, "SLA_ANALYSIS_TREND_GRANULARITY", TREND_GRANULARITIES,
                                "day"),
            group_by=group_by,
            test=_choice(env, "SLA_ANALYSIS_TREND_TEST", TREND_TESTS, "hamed_rao"),
            alpha=seconds(env, "SLA_ANALYSIS_TREND_ALPHA", 0.05, 1e-6, 0.5),
            horizon=duration(env, "SLA_ANALYSIS_TREND_HORIZON", 90 * DAY))


@dataclass(frozen=True)
class AnalysisSettings:
    # The clock's loop wakes for the next due item, or for new events; at the latest
    # after this many seconds: SLA_ANALYSIS_TICK.
    tick: float = 1.0
    # How long after a conformance period's end (and after its first summary arrived)
    # the clock closes it and computes its SLA credits, so that late window summaries
    # are counted: SLA_ANALYSIS_CREDIT_SETTLE, an ISO 8601 duration (PT6H), in seconds.
    credit_settle: int = duration_seconds(DEFAULT_CREDIT_SETTLE)
    # The scheduled trend run: SLA_ANALYSIS_TREND_EVERY (P1D; PT0S: none), _DELAY (PT1H
    # past midnight UTC), _LOOKBACK (P90D), _GRANULARITY (day), _GROUP_BY
    # (productOfferingId), _TEST (hamed_rao), _ALPHA (0.05), _HORIZON (P90D).
    trends: TrendSchedule = field(default_factory=TrendSchedule)
    # Series one trend run may have at most (a question over more is refused, naming
    # what to narrow): SLA_ANALYSIS_TREND_MAX_SERIES.
    trend_max_series: int = 2000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnalysisSettings:
        return cls(tick=seconds(env, "SLA_ANALYSIS_TICK", 1.0, 0.01, 60),
                   credit_settle=settle(env.get("SLA_ANALYSIS_CREDIT_SETTLE")),
                   trends=TrendSchedule.from_env(env),
                   trend_max_series=whole_number(env, "SLA_ANALYSIS_TREND_MAX_SERIES",
                                                 2000, 1, 100_000))


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
