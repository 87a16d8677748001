"""Threshold levels (docs/sla-figures.md, "Levels and grace"): a measured value
classified ok, warning or breached against a standard's levels by its comparator."""

from __future__ import annotations

import math

LEVELS = ("ok", "warning", "breached")
EQ_TOLERANCE = 1e-9
SEVERITY = {"ok": 0, "warning": 1, "breached": 2}

def normalise_comparator(comparator: str) -> str:
    """``GE``, ``ge``, ``.ge`` → ``GE``; unknown comparators raise ``ValueError``."""
    key = (comparator or "").strip().lstrip(".").upper()
    if key not in ("GE", "GT", "LE", "LT", "EQ"):
        raise ValueError(f"unknown comparator {comparator!r}")
    return key


def classify(value: float, comparator: str, breach: float, warning: float | None) -> str:
    """"ok" | "warning" | "breached"; good values compare with the level as the comparator says.

    GE: breached if value < breach, warning if value < warning. GT: breached if value <=
    breach, warning if value <= warning. LE / LT mirror. EQ: breached unless value equals
    breach within 1e-9 (absolute or relative); EQ has no warning band. NaN raises.
    """
    if value != value:
        raise ValueError("cannot classify NaN")
    op = normalise_comparator(comparator)
    if op == "EQ":
        close = math.isclose(value, breach, rel_tol=EQ_TOLERANCE, abs_tol=EQ_TOLERANCE)
        return "ok" if close else "breached"
    if op == "GE":
        bad, warn = value < breach, warning is not None and value < warning
    elif op == "GT":
        bad, warn = value <= breach, warning is not None and value <= warning
    elif op == "LE":
        bad, warn = value > breach, warning is not None and value > warning
    else:  # LT
        bad, warn = value >= breach, warning is not None and value >= warning
    return "breached" if bad else "warning" if warn else "ok"
