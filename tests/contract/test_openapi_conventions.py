"""The generated OpenAPI documents describe what the services do: what they send (errors
with ``@type``, health, metrics and exports in their own media types) and what they take
(merge-patch bodies, numbers as numbers, sorts by name, nullable objects that are null or
the documented object)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from services import openapi
from shared.http.errors import error_body


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return openapi.documents()


def operations(documents: dict[str, dict]) -> Iterator[tuple[str, str, str, dict]]:
    for name, doc in documents.items():
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    yield name, path, method, op


def walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def as_json_schema(doc: dict, name: str) -> dict:
    """A component as a JSON Schema validator can take it (refs resolved in the doc)."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def test_the_error_schema_documents_the_type_the_server_sends(
        documents: dict[str, dict]) -> None:
    for doc in documents.values():
        body = error_body(400, "bad", details={"name": ["required"]})
        jsonschema.validate(body, as_json_schema(doc, "Error"))
        assert "@type" in doc["components"]["schemas"]["Error"]["required"]


def test_patch_operations_document_merge_patch_bodies(documents: dict[str, dict]) -> None:
    patches = [(path, op) for _, path, method, op in operations(documents) if method == "patch"]
    assert len(patches) >= 5
    for path, op in patches:
        assert list(op["requestBody"]["content"]) == ["application/merge-patch+json"], path
        assert op["requestBody"]["required"] is True, path


def test_numeric_keywords_are_numbers_not_text(documents: dict[str, dict]) -> None:
    for doc in documents.values():
        for node in walk(doc):
            for key in ("minimum", "maximum", "minLength", "maxLength", "minItems",
                        "maxItems"):
                if key in node and not isinstance(node[key], dict):
                    assert isinstance(node[key], int | float), (key, node)
    charge = documents["threshold-registry"]["components"]["schemas"][
        "PurchasedOfferingCreate"]["properties"]["monthlyCharge"]
    assert charge["type"] == "string" and "pattern" in charge


@pytest.mark.parametrize(("path", "media_type"), [
    ("/healthz", "application/json"), ("/readyz", "application/json"),
    ("/metrics", "text/plain"), ("/audit/events", "application/json"),
    ("/audit/events/export", "application/x-ndjson"),
])
def test_every_service_documents_what_its_platform_endpoints_send(
        documents: dict[str, dict], path: str, media_type: str) -> None:
    for doc in documents.values():
        root = next(p for p in doc["paths"] if p.endswith("/healthz")).removesuffix("/healthz")
        responses = doc["paths"][root + path]["get"]["responses"]
        assert media_type in responses["200"]["content"], (root, path)
    readyz = documents["monitoring"]["paths"]["/monitoring/v1/readyz"]["get"]["responses"]
    assert "503" in readyz


def test_notification_documents_its_pages_and_exports(documents: dict[str, dict]) -> None:
    paths = documents["notification"]["paths"]
    ack = paths["/notification/v1/acknowledge"]["get"]["responses"]
    assert "text/html" in ack["200"]["content"] and "text/html" in ack["403"]["content"]
    export = paths["/notification/v1/delivery/export"]["get"]["responses"]
    assert "text/csv" in export["200"]["content"]


def test_list_sorts_name_the_attributes_of_the_listed_resource(
        documents: dict[str, dict]) -> None:
    listed = 0
    for _, path, method, op in operations(documents):
        sort = next((p for p in op.get("parameters", []) if p["name"] == "sort"), None)
        if method == "get" and sort is not None:
            listed += 1
            assert "pattern" in sort["schema"], path
    assert listed >= 15
    doc = documents["threshold-registry"]
    sort = next(p for p in doc["paths"]["/threshold-registry/v1/offeringGroup"]["get"][
        "parameters"] if p["name"] == "sort")
    pattern = sort["schema"]["pattern"]
    jsonschema.validate("-name,lifecycleStatus", {"type": "string", "pattern": pattern})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("colour", {"type": "string", "pattern": pattern})


def test_a_nullable_nested_object_is_null_or_the_documented_object(
        documents: dict[str, dict]) -> None:
    escalation = documents["notification"]["components"]["schemas"][
        "NotificationListPatch"]["properties"]["escalation"]
    null, documented = escalation["anyOf"]
    assert null["enum"] == [None]  # not any object at all
    assert documented == {"$ref": "#/components/schemas/Escalation"}


def test_exactly_one_scope_is_documented_where_it_is_enforced(
        documents: dict[str, dict]) -> None:
    for service, name, both in (
            ("threshold-registry", "ThresholdStandardCreate",
             ("productOfferingId", "offeringGroupId")),
            ("monitoring", "RegimeCreate", ("offeringGroupId", "productOfferingId"))):
        schema = documents[service]["components"]["schemas"][name]
        assert [b["required"] for b in schema["oneOf"]] == [[both[0]], [both[1]]]


def test_resources_document_the_type_they_carry(documents: dict[str, dict]) -> None:
    for doc in documents.values():
        for name, schema in doc["components"]["schemas"].items():
            props = schema.get("properties", {})
            if {"href", "version"} <= set(props) and schema.get("additionalProperties") is False:
                assert "@type" in props, name


def request_schemas(documents: dict[str, dict]) -> Iterator[tuple[str, dict]]:
    """Every schema a request body is validated against, its components resolved."""
    for name, doc in documents.items():
        components = doc.get("components", {}).get("schemas", {})
        for _, path, method, op in operations({name: doc}):
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                schema = media.get("schema", {})
                ref = schema.get("$ref", "")
                if ref:
                    schema = components[ref.rsplit("/", 1)[-1]]
                yield f"{name} {method.upper()} {path}", schema


def test_every_integer_a_body_takes_has_a_documented_maximum(
        documents: dict[str, dict]) -> None:
    """JSON integers beyond 64 bits reach the service as floats and are refused as "not an
    integer": a client (or schemathesis) sending one within the document would get a 400
    the document does not describe. Every integer of a request body therefore says how
    large it may be, and the service checks the same bound."""
    unbounded = []
    for where, schema in request_schemas(documents):
        for node in walk(schema):
            for prop, spec in (node.get("properties") or {}).items():
                if spec.get("type") == "integer" and not spec.get("readOnly") \
                        and "maximum" not in spec:
                    unbounded.append(f"{where}: {prop}")
    assert not unbounded, "integers without a maximum:\n" + "\n".join(sorted(set(unbounded)))
