"""Rules between the fields of a request that OpenAPI 3.0 cannot state (one number below
another, one time after another, a level's range set by the unit beside it), taught to
schemathesis' positive cases: a case generated as valid is made to keep them, so "valid
data must be accepted" tests what the document promises. Negative cases are left exactly
as generated. Loaded with ``SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks``.

Every rule here is also enforced by the service (400 with the field and why) and named in
its document's descriptions; the document states every rule it can.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from schemathesis import GenerationMode

from shared.durations import duration_seconds

Body = dict[str, Any]


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seconds(value: Any) -> int | None:
    try:
        return duration_seconds(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _end_after_start(body: Body, start: str, end: str, both_needed: bool) -> None:
    """``end`` after ``start``; a PATCH that moves one of them keeps only what it can."""
    begin, finish = _time(body.get(start)), _time(body.get(end))
    if finish is None:
        return
    if begin is None:
        if both_needed:
            body.pop(end)
        return
    if finish <= begin:
        body.pop(end)


def sla_type(body: Body, patch: bool) -> None:
    """The credit cap is at least one period's credit."""
    per, cap = body.get("creditPercentPerBreachedPeriod"), body.get("creditCapPercent")
    if patch and (per is None) != (cap is None):
        body["creditPercentPerBreachedPeriod"] = body["creditCapPercent"] = (
            per if per is not None else cap)
    elif isinstance(per, int | float) and isinstance(cap, int | float) and cap < per:
        body["creditCapPercent"] = per


def purchased_offering(body: Body, patch: bool) -> None:
    """An end date after the start date; a monthly charge in a currency."""
    _end_after_start(body, "startDate", "endDate", both_needed=patch)
    if body.get("monthlyCharge") is not None and body.get("currency") is None:
        body["currency"] = "EUR"


def standard(body: Body, patch: bool) -> None:
    """A validity that ends after it starts; levels within their unit's range, on the
    right side of each other for the comparator; a window no longer than the period;
    parameter names unique."""
    valid_for = body.get("validFor")
    if isinstance(valid_for, dict):
        _end_after_start(valid_for, "startDateTime", "endDateTime", both_needed=False)
    seen: set[str] = set()
    for i, p in enumerate(body.get("parameters") or []):
        if not isinstance(p, dict):
            continue
        if p.get("aggregation") == "availability" and p.get("unit") not in ("%", "ratio"):
            p["unit"] = "%"
        top = {"%": 100.0, "ratio": 1.0}.get(p.get("unit"))
        for level in ("conformanceTarget", "thresholdTarget"):
            value = p.get(level)
            if top is not None and isinstance(value, int | float):
                p[level] = min(max(float(value), 0.0), top)
        comparator = str(p.get("comparator", "")).lstrip(".").upper()
        breach, warning = p.get("conformanceTarget"), p.get("thresholdTarget")
        if comparator == "EQ":
            p["thresholdTarget"] = None
        elif isinstance(breach, int | float) and isinstance(warning, int | float) and (
                (comparator in ("GE", "GT") and warning < breach)
                or (comparator in ("LE", "LT") and warning > breach)):
            p["conformanceTarget"], p["thresholdTarget"] = warning, breach
        window, period = _seconds(p.get("evaluationWindow")), _seconds(
            p.get("conformancePeriod"))
        if window is not None and period is not None and window > period:
            p["evaluationWindow"], p["conformancePeriod"] = (p["conformancePeriod"],
                                                             p["evaluationWindow"])
        name = p.get("name")
        if isinstance(name, str):
            if name in seen:
                p["name"] = name = f"{name}-{i}"
            seen.add(name)


def regime(body: Body, patch: bool) -> None:
    """A window of at least a minute, a lateness of at most 7 days."""
    window = _seconds(body.get("window"))
    if window is not None and window < 60:
        body["window"] = "PT1M"
    lateness = _seconds(body.get("allowedLateness"))
    if lateness is not None and lateness > 7 * 86400:
        body["allowedLateness"] = "PT1M"


def _future(body: Body, member: str) -> None:
    """Windows (or periods) that start after now and end after they start: a month
    ahead, an hour each, one after the other."""
    items = body.get(member)
    if not isinstance(items, list):
        return
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    for n, item in enumerate(items):
        if isinstance(item, dict):
            start = first + timedelta(days=n)
            item["startDateTime"] = start.isoformat().replace("+00:00", "Z")
            item["endDateTime"] = (start + timedelta(hours=1)).isoformat().replace(
                "+00:00", "Z")


def planned_outage(body: Body, patch: bool) -> None:
    """Windows in the future, each ending after it starts."""
    _future(body, "windows")


def blackouts(body: Body, patch: bool) -> None:
    """Periods ending after they start."""
    _future(body, "periods")


def trend_analysis(body: Body, patch: bool) -> None:
    """A period that ends after it starts, of at most 5,000 points (a year, here)."""
    begin, finish = _time(body.get("from")), _time(body.get("to"))
    if begin is None or finish is None:
        return
    if not begin < finish <= begin + timedelta(days=365):
        try:
            body["to"] = (begin + timedelta(days=365)).isoformat()
        except OverflowError:
            body["from"] = (finish - timedelta(days=365)).isoformat()


def problem_rule(body: Body, patch: bool) -> None:
    """A count, a share or both (the document's anyOf, which the coverage phase's
    positive cases do not always keep)."""
    if body.get("count") is None and body.get("share") is None:
        body["count"] = 1


RULES: dict[str, Callable[[Body, bool], None]] = {
    "/outage-negotiation/v1/plannedOutage": planned_outage,
    "/outage-negotiation/v1/plannedOutage/{outage_id}/reschedule": planned_outage,
    "/outage-negotiation/v1/customerBlackout": blackouts,
    "/threshold-registry/v1/slaType": sla_type,
    "/threshold-registry/v1/purchasedOffering": purchased_offering,
    "/threshold-registry/v1/thresholdStandard": standard,
    "/monitoring/v1/monitoringRegime": regime,
    "/analysis/v1/trendAnalysis": trend_analysis,
    "/analysis/v1/serviceProblemRule": problem_rule,
}


def aggregate_analysis(query: dict[str, Any]) -> None:
    """A period that ends after it starts (a day after its start, when it does not)."""
    begin, finish = _time(query.get("from")), _time(query.get("to"))
    if begin is None or finish is None or finish > begin:
        return
    try:
        query["to"] = (begin + timedelta(days=1)).isoformat()
    except OverflowError:
        query["from"] = (finish - timedelta(days=1)).isoformat()


QUERY_RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    "/analysis/v1/aggregateAnalysis": aggregate_analysis,
}


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    query_rule = QUERY_RULES.get(case.operation.path)
    if query_rule is not None and isinstance(case.query, dict):
        query_rule(case.query)
    if not isinstance(case.body, dict):
        return case
    path = case.operation.path
    collection = path.rsplit("/{", 1)[0] if path.endswith("}") else path
    rule = RULES.get(collection)
    if rule is not None:
        rule(case.body, case.operation.method.upper() == "PATCH")
    return case
