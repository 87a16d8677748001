"""Burn rates and their alerts (docs/error-budgets.md, "Burn-rate alerts"): the
multi-window multi-burn-rate rules (page and ticket, scaled from the 30-day rules to the
conformance period), the burn rate of an error ratio, and the rules that fire."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.monitoring.budgets import error_budget

if TYPE_CHECKING:
    from services.monitoring.budget_ledger import BudgetLedger


PERIOD_30D = 30 * 86400

BURN_RULES_30D: list[tuple[str, float, float, float]] = [
    ("page", 3600, 300, 14.4),
    ("page", 6 * 3600, 1800, 6.0),
    ("ticket", 86400, 7200, 3.0),
    ("ticket", 3 * 86400, 6 * 3600, 1.0),
]

def burn_rate(error_ratio: float, target_ratio: float) -> float:
    """error_ratio / B. With a 100 % target (B = 0) any error burns at infinite rate."""
    budget = error_budget(target_ratio)
    if budget == 0:
        return math.inf if error_ratio > 0 else 0.0
    return error_ratio / budget


def burn_rules(period_seconds: float) -> list[tuple[str, float, float, float]]:
    """The 30-day rules with both windows scaled by period / 30 days (factors unchanged)."""
    if period_seconds <= 0:
        raise ValueError("period_seconds must be positive")
    scale = period_seconds / PERIOD_30D
    return [(sev, long * scale, short * scale, f) for sev, long, short, f in BURN_RULES_30D]

@dataclass(frozen=True, slots=True)
class BurnAlert:
    severity: str
    long_window: float
    short_window: float
    factor: float
    long_burn: float
    short_burn: float


def burn_alerts(
    ledger: BudgetLedger, now: float, target_ratio: float, period_seconds: float
) -> list[BurnAlert]:
    """Every rule whose long AND short window burn rates both strictly exceed its factor
    (windows end at ``now``), in rule order (pages first). A window with no eligible time does
    not fire. The caller keeps the most severe."""
    fired = []
    for severity, long_w, short_w, factor in burn_rules(period_seconds):
        long_ratio = ledger.error_ratio(now - long_w, now)
        if long_ratio is None:
            continue
        long_burn = burn_rate(long_ratio, target_ratio)
        if not long_burn > factor:
            continue
        short_ratio = ledger.error_ratio(now - short_w, now)
        if short_ratio is None:
            continue
        short_burn = burn_rate(short_ratio, target_ratio)
        if short_burn > factor:
            fired.append(BurnAlert(severity, long_w, short_w, factor, long_burn, short_burn))
    return fired
