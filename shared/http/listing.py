"""TMF630 list conventions over a read model: attribute filters with ``.gt/.gte/.lt/.lte``,
``fields=``, ``sort=``, ``offset``/``limit`` with ``X-Total-Count`` and ``X-Result-Count``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request

from shared.http.errors import ApiError

RESERVED = {"offset", "limit", "fields", "sort"}
OPERATORS = {"gt", "gte", "lt", "lte", "ne"}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
ALWAYS = ("id", "href", "@type")


def _lookup(item: Mapping[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _coerce(raw: str, sample: Any) -> Any:
    """Interpret a query value like the attribute it is compared with."""
    if isinstance(sample, bool):
        if raw.lower() in {"true", "false"}:
            return raw.lower() == "true"
        raise ValueError("expected true or false")
    if isinstance(sample, int | float):
        return float(raw)
    if isinstance(sample, str) and _looks_like_time(sample):
        return _parse_time(raw)
    return raw


def _looks_like_time(text: str) -> bool:
    return len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-"


def _parse_time(text: str) -> datetime:
    """Query and attribute times; a zone-less one keeps no zone (compared as given)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _comparable(value: Any, wanted: Any) -> Any:
    if isinstance(wanted, datetime) and isinstance(value, str):
        parsed = _parse_time(value)
        if parsed.tzinfo is None and wanted.tzinfo is not None:
            parsed = parsed.replace(tzinfo=wanted.tzinfo)
        if wanted.tzinfo is None and parsed.tzinfo is not None:
            wanted = wanted.replace(tzinfo=parsed.tzinfo)
        return parsed, wanted
    if isinstance(wanted, float) and isinstance(value, int | float | str):
        return float(value), wanted
    return value, wanted


def parse_filters(args: Mapping[str, str], allowed: Iterable[str],
                  extra_reserved: Iterable[str] = ()) -> list[tuple[str, str, list[str]]]:
    allowed = set(allowed)
    reserved = RESERVED | set(extra_reserved)
    filters = []
    for key, raw in args.items():
        if key in reserved:
            continue
        attr, op = key, "eq"
        head, _, tail = key.rpartition(".")
        if head and tail in OPERATORS:
            attr, op = head, tail
        if attr not in allowed:
            raise ApiError(400, f"cannot filter on '{attr}'", "INVALID_FILTER",
                           {key: [f"filterable attributes: {', '.join(sorted(allowed))}"]})
        filters.append((attr, op, raw.split(",") if op == "eq" else [raw]))
    return filters


def _matches(item: Mapping[str, Any], attr: str, op: str, raws: list[str]) -> bool:
    value = _lookup(item, attr)
    if op == "eq":
        for raw in raws:
            if value is None:
                if raw in {"null", ""}:
                    return True
                continue
            try:
                a, b = _comparable(value, _coerce(raw, value))
            except (ValueError, TypeError):
                continue
            if a == b:
                return True
        return False
    if value is None:
        return False
    try:
        a, b = _comparable(value, _coerce(raws[0], value))
    except (ValueError, TypeError):
        raise ApiError(400, f"'{attr}.{op}' needs a value comparable with {attr}",
                       "INVALID_FILTER",
                       {f"{attr}.{op}": [f"cannot compare {raws[0]!r}"]}) from None
    try:
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b, "ne": a != b}[op]
    except TypeError:
        return False


def _sort_key(value: Any) -> tuple[int, int, Any]:
    """Numbers numerically, everything else as text, missing values last."""
    if value is None:
        return (1, 0, 0)
    if isinstance(value, int | float):
        return (0, 0, float(value))
    return (0, 1, str(value))


def int_arg(args: Mapping[str, str], name: str, default: int,
            maximum: int | None = None) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a whole number", "INVALID_QUERY",
                       {name: [f"got {raw!r}"]}) from None
    if value < 0 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise ApiError(400, f"'{name}' must be at least 0{limit}", "INVALID_QUERY",
                       {name: [f"got {value}"]})
    return value


def parse_sort(sort: str | None, allowed: set[str]) -> list[tuple[str, bool]]:
    """``sort=a,-b`` as (attribute, descending) pairs, each a known attribute."""
    keys = []
    for key in (sort or "").split(","):
        key = key.strip()
        if not key:
            continue
        name = key.lstrip("-+")
        if name not in allowed:
            raise ApiError(400, f"cannot sort by '{name}'", "INVALID_QUERY",
                           {"sort": [f"sortable attributes: {', '.join(sorted(allowed))}"]})
        keys.append((name, key.startswith("-")))
    return keys


def refine(items: list[Mapping[str, Any]], filters: list[tuple[str, str, list[str]]],
           sort: list[tuple[str, bool]]) -> list[Mapping[str, Any]]:
    """Filter and sort representations (stable: ties keep their order)."""
    for attr, op, raws in filters:
        items = [i for i in items if _matches(i, attr, op, raws)]
    for name, desc in reversed(sort):
        items.sort(key=lambda i, n=name: _sort_key(_lookup(i, n)), reverse=desc)
    return items


def select_fields(item: Mapping[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return dict(item)
    return {k: v for k, v in item.items() if k in fields or k in ALWAYS}


def requested_fields() -> list[str] | None:
    """The attributes ``fields=`` asks for (None: all)."""
    fields_arg = request.args.get("fields")
    return [f.strip() for f in fields_arg.split(",") if f.strip()] if fields_arg else None


def page_of(items: Iterable[Mapping[str, Any]], allowed: Iterable[str] | None = None,
            extra_reserved: Iterable[str] = ()) -> tuple[list[dict[str, Any]], int]:
    """Filter, sort, page and project representations by the request's query; returns the
    page and the number of items that matched (``X-Total-Count``)."""
    items = list(items)
    allowed_set = set(allowed) if allowed is not None else {k for i in items for k in i}
    filters = parse_filters(request.args, allowed_set, extra_reserved)
    items = refine(items, filters, parse_sort(request.args.get("sort"), allowed_set))
    offset = int_arg(request.args, "offset", 0)
    limit = int_arg(request.args, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    fields = requested_fields()
    return [select_fields(i, fields) for i in items[offset:offset + limit]], len(items)


def list_response(items: Iterable[Mapping[str, Any]], allowed: Iterable[str] | None = None,
                  extra_reserved: Iterable[str] = ()) -> Response:
    """Filter, sort, page and project a list of resource representations."""
    page, total = page_of(items, allowed, extra_reserved)
    response = jsonify(page)
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(page))
    return response


def one_response(item: Mapping[str, Any], version: int | None = None,
                 status: int = 200, location: str | None = None) -> Response:
    response = jsonify(select_fields(item, requested_fields()))
    response.status_code = status
    if version is not None:
        response.headers["ETag"] = f'"{version}"'
    if location:
        response.headers["Location"] = location
    return response


def created_response(item: Mapping[str, Any], version: int) -> Response:
    """201 with the new resource, its ``Location`` (its ``href``) and ``ETag``."""
    return one_response(item, version=version, status=201, location=item["href"])


def expected_version() -> int | None:
    """The aggregate version an ``If-Match`` header names (None: no precondition)."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    try:
        return int(tag)
    except ValueError:
        raise ApiError(400, "If-Match must be an ETag this API gave out, like \"3\"",
                       "INVALID_HEADER", {"If-Match": [f"got {header!r}"]}) from None


def fields_of(schema: type) -> set[str]:
    """The attribute names of a representation schema: what lists may filter and sort by."""
    return {f.data_key or name for name, f in schema().fields.items()}
