"""Aggregate analysis: the figures of a period across customers, customer groups,
offering groups, offerings and SLA types, from the window summaries monitoring
published (docs/analysis.md).

The suite's definitions hold (docs/sla-figures.md): availability is **pooled by time** —
Σ (eligible − down) / Σ eligible over every window of every purchased offering in a
group of the answer, never a mean of percentages; percentiles are nearest-rank (the
⌈p/100 × n⌉-th smallest) of the windows' measured values; a window belongs to the period
containing its end (end inclusive). A purchased offering meets its target in a
conformance period when its pooled availability there satisfies the standard's
comparator and target (other aggregations: when none of its windows breached); it meets
it over the asked period when it met it in every conformance period the period touches.
A period it missed is a *breached period*; its SLA credit is the SLA type's
``creditPercentPerBreachedPeriod`` per breached period, at most ``creditCapPercent``, of
its ``monthlyCharge``.

The statements (:func:`statements`) do the summing in SQL over the stored read model's
columns, so what crosses to Python is one row per group, purchased offering and
conformance period (figures, targets and credits) and one or three per group
(percentiles); the functions below turn those rows into the answer and are pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared.readmodel import Column

PERCENTILES = (50, 90, 99)
#: What a query may filter and group by (the summaries' inventory facts).
DIMENSIONS = ("customerId", "customerGroup", "offeringGroupId", "productOfferingId",
              "slaTypeId", "purchasedOfferingId")
SCOPE_TYPES = ("purchasedOffering", "productOffering", "offeringGroup")


@dataclass(frozen=True)
class AggregateQuery:
    """What an aggregate analysis is asked: the period ``(start, end]`` in epoch seconds
    (windows ending in it), equality filters by dimension (each a set of values), the
    dimensions to group by, a parameter (None: each parameter its own rows) and the scope
    of the summaries (purchased offerings by default: a group's or offering's own
    pooled series would count the same time twice). ``period``: only the windows of one
    conformance period (its start and end in epoch seconds), as an SLA credit asks.
    """

    start: float
    end: float
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    parameter: str | None = None
    scope_type: str = "purchasedOffering"
    period: tuple[float, float] | None = None


# --- the statements ---------------------------------------------------------------------
def rows_where(query: AggregateQuery, columns: Mapping[str, Column]) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of a question's rows, with its values (trend analysis reads
    the same rows)."""
    parts = [f"{columns['scopeType'].sql} = ?", f"{columns['windowEnd'].sql} > ?",
             f"{columns['windowEnd'].sql} <= ?"]
    params: list[Any] = [query.scope_type, query.start, query.end]
    if query.parameter is not None:
        parts.insert(1, f"{columns['parameter'].sql} = ?")
        params.insert(1, query.parameter)
    for name in DIMENSIONS:
        values = list(query.filters.get(name) or ())
        if values:
            parts.append(f"{columns[name].sql} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    if query.period is not None:
        parts += [f"{columns['periodStart'].sql} = ?", f"{columns['periodEnd'].sql} = ?"]
        params += list(query.period)
    return " WHERE " + " AND ".join(parts), params


def statements(query: AggregateQuery, table: str, columns: Mapping[str, Column],
               postgres: bool = False) -> dict[str, tuple[str, list[Any]]]:
    """The two read-only statements of a query over ``table`` (its columns by wire
    name), with their parameters, each one pass over the period's rows:

    - ``offerings``: one row per group, parameter, purchased offering and conformance
      period, with the sums, counts and targets (the group's figures are the sums of
      its rows; the targets and credits are judged on each);
    - ``percentiles``: each group's nearest-rank values — on PostgreSQL
      ``percentile_disc`` (the first value whose position reaches the fraction: the
      ⌈p/100 × n⌉-th), elsewhere the rows ``ROW_NUMBER()`` ranks at ⌈p/100 × n⌉
      (integer division rounds the ranks up), the same answers.

    Each group key comes out as ``k0``, ``k1`` …, the parameter as ``parameter``."""
    c = {name: col.sql for name, col in columns.items()}
    keys = [c[name] for name in query.group_by] + [c["parameter"]]
    selected = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys[:-1]))
    selected = (selected + ", " if selected else "") + f"{c['parameter']} AS parameter"
    grouped = ", ".join(keys)
    where, params = rows_where(query, columns)
    breached_time = (f"CASE WHEN {c['breached']} = 1 THEN {c['windowEnd']} - "
                     f"{c['windowStart']} ELSE 0 END")
    per_offering = keys + [c["purchasedOfferingId"], c["periodStart"]]
    offerings = (
        f"SELECT {selected}, {c['purchasedOfferingId']} AS po, "
        f"{c['periodStart']} AS period, MIN({c['slaTypeId']}) AS sla_type, "
        f"COUNT(*) AS windows, SUM({c['sampleCount']}) AS samples, "
        f"SUM({c['eligibleSeconds']}) AS eligible, SUM({c['badSeconds']}) AS bad, "
        f"SUM({c['excludedSeconds']}) AS excluded, SUM({c['breached']}) AS breaches, "
        f"SUM({breached_time}) AS breached_seconds, SUM({c['warned']}) AS warnings, "
        f"SUM({c['planned']}) AS planned, "
        f"MIN({c['conformanceTarget']}) AS target_min, "
        f"MAX({c['conformanceTarget']}) AS target_max, MIN({c['comparator']}) AS comparator, "
        f"MIN({c['unit']}) AS unit, MAX({c['unit']}) AS unit_max, "
        f"MIN({c['aggregation']}) AS aggregation, MAX({c['aggregation']}) AS aggregation_max "
        f"FROM {table}{where} GROUP BY {', '.join(per_offering)}")
    outer = ", ".join([f"k{i}" for i in range(len(keys) - 1)] + ["parameter"])
    if postgres:
        fractions = ", ".join(str(p / 100) for p in PERCENTILES)
        percentiles = (
            f"SELECT {selected}, percentile_disc(ARRAY[{fractions}]) WITHIN GROUP "
            f"(ORDER BY {c['value']}) AS ps FROM {table}{where} AND {c['value']} IS NOT NULL "
            f"GROUP BY {grouped}")
    else:
        ranks = " OR ".join(f"rn = ({p} * n + 99) / 100" for p in PERCENTILES)
        percentiles = (
            f"SELECT {outer}, n, rn, value FROM (SELECT {selected}, {c['value']} AS value, "
            f"ROW_NUMBER() OVER (PARTITION BY {grouped} ORDER BY {c['value']}) AS rn, "
            f"COUNT(*) OVER (PARTITION BY {grouped}) AS n "
            f"FROM {table}{where} AND {c['value']} IS NOT NULL) ranked WHERE {ranks}")
    return {"offerings": (offerings, params), "percentiles": (percentiles, list(params))}


# --- pure figures -----------------------------------------------------------------------
def pooled_availability(eligible: float, bad: float) -> float | None:
    """Up time over eligible time, as a fraction (None when nothing was eligible)."""
    if not eligible or eligible <= 0:
        return None
    return max(0.0, eligible - (bad or 0.0)) / eligible


def in_unit(fraction: float | None, unit: str | None) -> float | None:
    """A fraction in the standard's unit (``%``: 0..100)."""
    if fraction is None:
        return None
    return fraction * 100 if unit == "%" else fraction


def nearest_rank(n: int, p: int) -> int:
    """The rank of the p-th percentile of n values: ⌈p/100 × n⌉ (at least 1)."""
    return max(1, (p * n + 99) // 100)


def percentiles(values: Iterable[float], ps: Sequence[int] = PERCENTILES
                ) -> dict[str, float | None]:
    """Nearest-rank percentiles of some values (what the percentile statement computes,
    for tests and small inputs)."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return {f"p{p}": None for p in ps}
    return {f"p{p}": ordered[nearest_rank(len(ordered), p) - 1] for p in ps}


def _comparator(raw: str | None) -> str:
    return (raw or "GE").lstrip(".").upper()


def strictest_target(comparator: str | None, low: float | None, high: float | None
                     ) -> float | None:
    """Of the targets a period's windows carried, the strictest for the comparator (a
    standard revised mid-period: the higher floor, the lower ceiling)."""
    if low is None or high is None:
        return low if high is None else high
    return high if _comparator(comparator) in ("GE", "GT") else low


def satisfies(value: float, comparator: str | None, target: float) -> bool:
    """Does a value meet a target under the standard's comparator (``EQ`` within 1e-9)."""
    op = _comparator(comparator)
    if op == "GE":
        return value >= target
    if op == "GT":
        return value > target
    if op == "LE":
        return value <= target
    if op == "LT":
        return value < target
    return abs(value - target) <= 1e-9


def period_met(row: Mapping[str, Any]) -> bool:
    """Did one purchased offering meet its target in one conformance period (a row of
    the ``offerings`` statement)? Availability pooled over the period against the
    target; where nothing was measured as time (other aggregations), no breached window."""
    ratio = pooled_availability(row.get("eligible") or 0.0, row.get("bad") or 0.0)
    target = strictest_target(row.get("comparator"), row.get("target_min"),
                              row.get("target_max"))
    if ratio is not None and target is not None:
        value = in_unit(ratio, row.get("unit"))
        assert value is not None
        return satisfies(value, row.get("comparator"), target)
    return not (row.get("breaches") or 0)


def _met(row: Any) -> bool:
    """:func:`period_met`, judged once for a statement's row (kept in it)."""
    met = row.get("met")
    if met is None:
        met = row["met"] = period_met(row)
    return bool(met)


def credit_percent(breached_periods: int, terms: Mapping[str, Any] | None) -> Decimal | None:
    """The credit an SLA type's terms give for a number of breached periods, as a
    percentage of the monthly charge (capped); None when the terms give no percentage."""
    if not terms or terms.get("creditPercentPerBreachedPeriod") in (None, ""):
        return None
    percent = Decimal(str(terms["creditPercentPerBreachedPeriod"])) * breached_periods
    cap = terms.get("creditCapPercent")
    if cap not in (None, ""):
        percent = min(percent, Decimal(str(cap)))
    return percent


CENT = Decimal("0.01")


def credit_amount(percent: Decimal, monthly_charge: Any) -> Decimal | None:
    """That percentage of a monthly charge (to the cent); None without a charge."""
    if monthly_charge in (None, ""):
        return None
    return (Decimal(str(monthly_charge)) * percent / 100).quantize(CENT, ROUND_HALF_EVEN)


# --- the answer -------------------------------------------------------------------------
@dataclass
class Credit:
    """The SLA credit exposure of one group: breached periods, the purchased offerings
    owed a credit, the amounts by currency, and those owed one whose charge is unknown
    (or whose SLA type gives no credit terms)."""

    breached_periods: int = 0
    purchased_offerings: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)
    unpriced: int = 0
    without_terms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"breachedPeriods": self.breached_periods,
                "purchasedOfferingCount": self.purchased_offerings,
                "amount": [{"unit": currency, "value": str(value)}
                           for currency, value in sorted(self.amounts.items())],
                "unpricedCount": self.unpriced, "withoutTermsCount": self.without_terms}


@dataclass
class Group:
    """One row of the answer: a group's key, its parameter and its figures."""

    key: dict[str, Any]
    parameter: str
    figures: dict[str, Any]
    percentiles: dict[str, float | None] = field(default_factory=dict)
    judged: int = 0
    meeting: int = 0
    credit: Credit = field(default_factory=Credit)


def _key(row: Mapping[str, Any], group_by: Sequence[str]) -> tuple[Any, ...]:
    return (*(row[f"k{i}"] for i in range(len(group_by))), row["parameter"])


def _same(low: Any, high: Any) -> Any:
    return low if low == high else None


def _figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A group's figures: the sums of its rows (purchased offerings × periods)."""
    def total(name: str) -> float:
        return sum(float(r[name] or 0) for r in rows)

    units = {r["unit"] for r in rows} | {r["unit_max"] for r in rows}
    aggregations = {r["aggregation"] for r in rows} | {r["aggregation_max"] for r in rows}
    unit = units.pop() if len(units) == 1 else None
    eligible, bad = total("eligible"), total("bad")
    ratio = pooled_availability(eligible, bad)
    return {
        "unit": unit, "aggregation": aggregations.pop() if len(aggregations) == 1 else None,
        "windowCount": int(total("windows")), "sampleCount": int(total("samples")),
        "purchasedOfferingCount": len({r["po"] for r in rows if r["po"] is not None}),
        "availability": in_unit(ratio, unit if unit is not None else "ratio"),
        "availabilityUnit": None if ratio is None else (unit or "ratio"),
        "eligibleSeconds": eligible, "downSeconds": bad,
        "excludedSeconds": total("excluded"), "breachCount": int(total("breaches")),
        "breachedMinutes": total("breached_seconds") / 60,
        "warningCount": int(total("warnings")), "plannedCount": int(total("planned")),
    }


def assemble(query: AggregateQuery, offerings: Sequence[Mapping[str, Any]],
             ranked: Sequence[Mapping[str, Any]],
             sla_type: Callable[[str], Mapping[str, Any] | None],
             purchased_offering: Callable[[str], Mapping[str, Any] | None],
             postgres: bool = False) -> list[Group]:
    """The groups of an answer from the statements' rows, with the SLA types' terms and
    the purchased offerings' charges looked up by id (the replicas), in the order of the
    groups' keys (nulls last)."""
    by_group: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in offerings:
        by_group.setdefault(_key(row, query.group_by), []).append(row)
    groups: dict[tuple[Any, ...], Group] = {}
    for key in sorted(by_group, key=lambda k: tuple((v is None, v or "") for v in k)):
        rows = by_group[key]
        groups[key] = Group(
            key={name: rows[0][f"k{i}"] for i, name in enumerate(query.group_by)},
            parameter=rows[0]["parameter"], figures=_figures(rows),
            percentiles={f"p{p}": None for p in PERCENTILES})
    for row in ranked:
        group = groups.get(_key(row, query.group_by))
        if group is None:
            continue
        if postgres:
            for p, value in zip(PERCENTILES, row["ps"] or (), strict=False):
                group.percentiles[f"p{p}"] = None if value is None else float(value)
            continue
        n, rank = int(row["n"]), int(row["rn"])
        for p in PERCENTILES:
            if nearest_rank(n, p) == rank:
                group.percentiles[f"p{p}"] = float(row["value"])
    by_offering: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in offerings:
        if row["po"] is not None:
            by_offering.setdefault((*_key(row, query.group_by), row["po"]), []).append(row)
    for (*key, po), periods in by_offering.items():
        group = groups[tuple(key)]
        breached = sum(1 for period in periods if not _met(period))
        group.judged += 1
        group.meeting += breached == 0
        group.credit.breached_periods += breached
        if not breached:
            continue
        terms = sla_type(periods[0]["sla_type"]) if periods[0]["sla_type"] else None
        percent = credit_percent(breached, terms)
        if percent is None:
            group.credit.without_terms += 1
            continue
        if percent <= 0:
            continue
        group.credit.purchased_offerings += 1
        item = purchased_offering(po) or {}
        amount = credit_amount(percent, item.get("monthlyCharge"))
        if amount is None or not item.get("currency"):
            group.credit.unpriced += 1
            continue
        currency = str(item["currency"])
        group.credit.amounts[currency] = group.credit.amounts.get(currency, Decimal(0)) + amount
    return list(groups.values())


def credited(offerings: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The SLA types and purchased offerings whose terms and charges an answer needs:
    those with a period that missed its target (looked up together, in one read each)."""
    slas, pos = set(), set()
    for row in offerings:
        if row["po"] is not None and not _met(row):
            pos.add(str(row["po"]))
            if row["sla_type"]:
                slas.add(str(row["sla_type"]))
    return slas, pos


def rows_of(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Each group as the resource's item (JSON)."""
    out = []
    for g in groups:
        share = None if not g.judged else g.meeting / g.judged
        out.append({"group": g.key, "parameter": g.parameter, **g.figures,
                    "percentile": g.percentiles,
                    "meetingTargetCount": g.meeting, "judgedCount": g.judged,
                    "meetingTargetShare": share,
                    "creditExposure": g.credit.as_dict()})
    return out


CSV_FIGURES = ("parameter", "unit", "aggregation", "windowCount", "sampleCount",
               "purchasedOfferingCount", "availability", "availabilityUnit",
               "eligibleSeconds", "downSeconds", "excludedSeconds", "breachCount",
               "breachedMinutes", "warningCount", "plannedCount", "p50", "p90", "p99",
               "meetingTargetCount", "judgedCount", "meetingTargetShare",
               "creditBreachedPeriods", "creditPurchasedOfferingCount", "creditAmount",
               "creditUnpricedCount", "creditWithoutTermsCount")


def csv_rows(group_by: Sequence[str], items: Sequence[Mapping[str, Any]]
             ) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of the answer as CSV: the group's dimensions, then the
    figures (credit amounts as ``<value> <currency>`` joined by ``;``)."""
    header = [*group_by, *CSV_FIGURES]
    rows = []
    for item in items:
        credit = item["creditExposure"]
        flat = {**item, **item["percentile"],
                "creditBreachedPeriods": credit["breachedPeriods"],
                "creditPurchasedOfferingCount": credit["purchasedOfferingCount"],
                "creditAmount": ";".join(f"{a['value']} {a['unit']}" for a in credit["amount"]),
                "creditUnpricedCount": credit["unpricedCount"],
                "creditWithoutTermsCount": credit["withoutTermsCount"]}
        rows.append([*(item["group"].get(name) for name in group_by),
                     *(flat.get(name) for name in CSV_FIGURES)])
    return header, [["" if v is None else v for v in row] for row in rows]
