"""What the generated OpenAPI documents say beyond what flask-smorest infers, written in
the same place as the behaviour it describes so the two cannot drift apart.

- ``PATCH`` bodies are ``application/merge-patch+json`` (the factory refuses any other)
  and required; other bodies without a required field may be left out.
- A list (a ``GET`` answering an array) documents its count headers: ``X-Result-Count``,
  and ``X-Total-Count`` — exact, or absent with ``X-Total-Count-At-Least`` when a filter
  matches more than the list counts (``shared.readmodel.COUNT_CAP``).
- A request schema may state rules between its fields in JSON Schema, as
  ``class Meta: openapi = {...}`` (``anyOf``, ``oneOf``, ``not`` ...); they are merged into
  its component (objects key by key), so clients and fuzzers see the rule the service enforces.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_instance

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"


class SuiteConventions(BasePlugin):
    def init_spec(self, spec: Any) -> None:
        super().init_spec(spec)
        self.spec = spec

    def operation_helper(self, path: str | None = None, operations: dict | None = None,
                         **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if method == "get" and isinstance(operation, dict):
                _count_headers(operation)
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            if method == "patch" and JSON in body["content"]:
                body["content"][MERGE_PATCH] = body["content"].pop(JSON)
            elif method != "patch" and not self._required_fields(body):
                # the parser takes a missing body as {} (only PATCH must have one)
                body["required"] = False

    def _required_fields(self, body: dict) -> list[str]:
        schema = next(iter(body["content"].values())).get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = self.spec.components.schemas.get(ref.rsplit("/", 1)[1], {})
        return list(schema.get("required", []))

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        _close_nullable_objects(definition)
        schema = kwargs.get("schema")
        if schema is None:
            return None
        instance = resolve_schema_instance(schema)
        extra = getattr(getattr(instance, "Meta", None), "openapi", None)
        if extra:
            _merge(definition, extra)
        return None


def _count_headers(operation: dict) -> None:
    """The headers of a list's 200 answer (what ``shared.http.blueprint`` sends)."""
    from shared.readmodel import COUNT_CAP

    responses = operation.get("responses", {})
    ok = responses.get(200, responses.get("200"))
    schema = (ok or {}).get("content", {}).get(JSON, {}).get("schema", {}) \
        if isinstance(ok, dict) else {}
    if schema.get("type") != "array":
        return
    number = {"schema": {"type": "integer", "minimum": 0}}
    ok.setdefault("headers", {}).update({
        "X-Result-Count": {**number, "description": "items in this page"},
        "X-Total-Count": {**number, "description": (
            "items matching the filters, always exact: a list whose filters match more "
            f"than {COUNT_CAP:,} items may leave it out rather than count them all "
            "(X-Total-Count-At-Least instead). A list without filters always has it.")},
        "X-Total-Count-At-Least": {**number, "description": (
            f"instead of X-Total-Count when a filter matches more than {COUNT_CAP:,} "
            "items: a lower bound of the total (page on while X-Result-Count equals the "
            "limit)")},
    })


def _merge(into: dict, extra: dict) -> None:
    """``extra`` merged into ``into``, objects key by key (so a schema may add to one
    property's ``items`` without restating the others)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _close_nullable_objects(node: Any) -> None:
    """apispec writes a nullable nested schema as ``anyOf: [{nullable object}, {$ref}]``,
    whose first branch admits any object at all; make it admit only null."""
    if isinstance(node, dict):
        branches = node.get("anyOf")
        if isinstance(branches, list):
            for branch in branches:
                if branch == {"nullable": True, "type": "object"}:
                    branch["enum"] = [None]
        for value in node.values():
            _close_nullable_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_nullable_objects(value)
