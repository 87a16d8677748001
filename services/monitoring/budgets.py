"""Error budgets of a conformance period (docs/error-budgets.md): the budget B = 1 −
target, its denominator (the period's eligible seconds), what is left of it and when it
runs out at the current burn. Every remaining budget is a fraction (``BUDGET_UNIT``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.monitoring.budget_ledger import BudgetLedger
    from services.monitoring.periods import Period


#: The unit of every remaining budget and error ratio on the wire: a fraction (1 = untouched).
BUDGET_UNIT = "ratio"

def error_budget(target_ratio: float) -> float:
    """B = 1 − target (target as a ratio, 0..1). Rounded to 12 decimals so that 0.999 gives
    exactly 0.001 rather than 0.0010000000000000009."""
    if not (0.0 <= target_ratio <= 1.0):
        raise ValueError(f"target must be a ratio in [0, 1], got {target_ratio!r}")
    return round(1.0 - target_ratio, 12)

def budget_denominator(period: Period, excluded_so_far: float = 0.0, members: int = 1
                       ) -> float:
    """The eligible seconds E of a conformance period, the denominator of its budget
    B × E: the period's length (times the offerings pooled in the series: a group's budget
    is in offering-seconds, as its availability is) minus the agreed-outage time excluded so
    far in the period (SLA types whose maintenance accounting is "excluded"; 0 otherwise).
    Never negative."""
    return max(0.0, period.seconds * max(1, members) - max(0.0, excluded_so_far))


def remaining_budget(
    ledger: BudgetLedger, period_start: float, now: float, target_ratio: float,
    eligible_seconds: float,
) -> float:
    """Fraction (0..1) of the period's error budget left: 1 − bad_so_far / (B × E), E the
    period's eligible seconds (:func:`budget_denominator`; the period's length when nothing
    is excluded). Bad seconds count from ``period_start`` (the period's start) to ``now``.
    Time-based SLO; may be negative, reported as is. With B × E = 0: 1.0 if nothing bad yet,
    else −inf."""
    _, bad = ledger.totals(period_start, now)
    allowed = error_budget(target_ratio) * eligible_seconds
    if allowed <= 0:
        return 1.0 if bad <= 0 else -math.inf
    return 1.0 - bad / allowed


def projected_exhaustion(
    ledger: BudgetLedger, period_start: float, now: float, target_ratio: float,
    eligible_seconds: float, lookback: float = 3600, period_end: float | None = None,
) -> float | None:
    """Epoch seconds when the budget B × E runs out at the current burn (bad seconds per
    second over ``[now - lookback, now)``). None when not burning or when the projection falls
    after ``period_end`` (default ``period_start + eligible_seconds``). When the budget is
    already exhausted (and still burning) returns ``now``."""
    if lookback <= 0:
        raise ValueError("lookback must be positive")
    _, recent_bad = ledger.totals(now - lookback, now)
    rate = recent_bad / lookback
    if rate <= 0:
        return None
    _, bad = ledger.totals(period_start, now)
    left = error_budget(target_ratio) * eligible_seconds - bad
    when = now + left / rate if left > 0 else now
    end = period_start + eligible_seconds if period_end is None else period_end
    return when if when <= end else None
