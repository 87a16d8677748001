"""The negotiation's figures, for the capability report of the Customer QoS/SLA
Management process (the analysis service reads them off ``PlannedOutageChangeEvent``):
per agreed outage, and summed over a period.

Per outage, read off its own moves and answers (pure: no store):

- ``noticeGivenSeconds``: from when the customers were first told (the negotiation
  opened: their notices went out) to the agreed start — the notice they actually got;
- ``cycleTimeSeconds``: from the negotiation's opening to the agreement;
- ``rounds``: the rounds it took (a reschedule or a new round counts one more);
- ``customers``, ``accepted``: the customers affected, and those who accepted the
  agreed window in the last round; ``acceptanceRate`` = accepted / customers;
- ``silent``: customers who did not answer the last round; ``agreedBySilence``: the
  clock agreed it at the deadline under ``silenceIsConsent`` with some silent.

Over a period (:func:`summary`): the outages agreed in it, the median and least notice
given, the mean and median cycle time, the mean rounds, the acceptance rate pooled over
customers (accepted / customers of every outage, not the mean of rates) and the share of
outages agreed by silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import fmean, median
from typing import Any

from services.outage_negotiation.domain import CLOCK, PlannedOutage


def _last(moves: Iterable[Mapping[str, Any]], to: str) -> Mapping[str, Any] | None:
    found = None
    for move in moves:
        if move.get("to") == to:
            found = move
    return found


def negotiation_figures(outage: PlannedOutage) -> dict[str, Any] | None:
    """The figures of an outage's negotiation, once it was agreed (None before)."""
    window = outage.agreed_window
    opened = next((m for m in outage.moves if m.get("to") == "negotiating"), None)
    agreed = _last(outage.moves, "agreed")
    if window is None or opened is None or agreed is None:
        return None
    customers = len(outage.resolution)
    agreed_windows = [i for i, w in enumerate(outage.windows)
                      if w["start"] == window["start"]]
    accepted = sum(1 for r in outage.responses.values() if r.get("answer") == "accept"
                   and r.get("windowIndex") in agreed_windows)
    silent = sum(1 for c in outage.resolution if c["customerId"] not in outage.responses)
    return {
        "noticeGivenSeconds": round((window["start"] - opened["at"]).total_seconds()),
        "cycleTimeSeconds": round((agreed["at"] - opened["at"]).total_seconds()),
        "rounds": outage.round, "customers": customers, "accepted": accepted,
        "acceptanceRate": round(accepted / customers, 6) if customers else None,
        "silent": silent, "policy": outage.policy,
        "agreedBySilence": bool(agreed.get("actor") == CLOCK
                                and outage.policy == "silenceIsConsent" and silent),
        "agreedAt": agreed["at"]}


def summary(figures: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The period's figures from its outages' (pooled, see the module's docstring)."""
    found = list(figures)
    if not found:
        return {"outagesAgreed": 0}
    notice = [f["noticeGivenSeconds"] for f in found]
    cycle = [f["cycleTimeSeconds"] for f in found]
    customers = sum(f["customers"] for f in found)
    return {
        "outagesAgreed": len(found),
        "noticeGivenSeconds": {"median": median(notice), "least": min(notice)},
        "cycleTimeSeconds": {"mean": round(fmean(cycle), 1), "median": median(cycle)},
        "rounds": {"mean": round(fmean(f["rounds"] for f in found), 3),
                   "most": max(f["rounds"] for f in found)},
        "acceptanceRate": round(sum(f["accepted"] for f in found) / customers, 6)
        if customers else None,
        "agreedBySilenceShare": round(sum(1 for f in found if f["agreedBySilence"])
                                      / len(found), 6)}
