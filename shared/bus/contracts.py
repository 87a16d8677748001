"""Validation of every published and consumed message against its JSON Schema.

The schemas live in ``contracts/``: ``asyncapi.yaml`` names each message (its
``name`` is the envelope's ``eventType``) and points at its JSON Schema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


class ContractViolation(ValueError):
    """A message that does not match its contract; the text says where and why."""


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@functools.lru_cache(maxsize=1)
def _registry() -> tuple[Registry, dict[str, str]]:
    """All schemas under contracts/schemas, and eventType -> schema URI from asyncapi."""
    resources = []
    for path in sorted((CONTRACTS_DIR / "schemas").rglob("*.json")):
        schema = _load_json(path)
        uri = schema.get("$id") or path.relative_to(CONTRACTS_DIR).as_posix()
        resources.append((uri, Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    spec = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())
    messages: dict[str, str] = {}
    for key, message in (spec.get("components", {}).get("messages", {}) or {}).items():
        ref = (message.get("payload") or {}).get("$ref")
        name = message.get("name") or key
        if ref:
            messages[name] = _schema_uri(ref)
    return registry, messages


def _schema_uri(ref: str) -> str:
    """asyncapi refs are paths relative to contracts/; schema $ids use the same paths."""
    path = (CONTRACTS_DIR / ref).resolve()
    schema = _load_json(path)
    return schema.get("$id") or path.relative_to(CONTRACTS_DIR).as_posix()


@functools.lru_cache(maxsize=256)
def _validator(event_type: str) -> Draft202012Validator:
    registry, messages = _registry()
    uri = messages.get(event_type)
    if uri is None:
        raise ContractViolation(f"no contract for event type {event_type!r}")
    schema = registry.contents(uri)
    return Draft202012Validator(schema, registry=registry)


def known_event_types() -> set[str]:
    return set(_registry()[1])


def validate(body: dict[str, Any]) -> None:
    """Validate one envelope (as a dict) against the contract of its ``eventType``."""
    event_type = body.get("eventType") if isinstance(body, dict) else None
    if not isinstance(event_type, str):
        raise ContractViolation("the message has no eventType")
    errors = sorted(_validator(event_type).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors[:5]
        )
        raise ContractViolation(f"{event_type} breaks its contract: {details}")
