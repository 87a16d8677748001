"""Validation of every published and consumed message against its JSON Schema.

The schemas live in ``contracts/``: ``asyncapi.yaml`` names each message (its ``name``
is the envelope's ``eventType``) and points at its JSON Schema (draft 2020-12). The
validators are compiled once with jsonschema-rs: validating a 100-sample measurement
message takes tens of microseconds, so it can stay on the hot path. Formats are checked
too (``date-time``, ``uuid``, ...): a value the schema names a time must be one, or the
message is refused here rather than failing whoever reads it later.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


class ContractViolation(ValueError):
    """A message that does not match its contract; the text says where and why."""


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _uri(path: Path, schema: dict[str, Any]) -> str:
    return schema.get("$id") or path.relative_to(CONTRACTS_DIR).as_posix()


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """All schemas under contracts/schemas by URI, and eventType -> schema URI."""
    schemas = {}
    for path in sorted((CONTRACTS_DIR / "schemas").rglob("*.json")):
        schema = _load_json(path)
        schemas[_uri(path, schema)] = schema
    spec = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())
    messages: dict[str, str] = {}
    for key, message in (spec.get("components", {}).get("messages", {}) or {}).items():
        ref = (message.get("payload") or {}).get("$ref")
        if ref:
            path = (CONTRACTS_DIR / ref).resolve()
            messages[message.get("name") or key] = _uri(path, _load_json(path))
    return schemas, messages


@functools.lru_cache(maxsize=1)
def _registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry(list(_catalogue()[0].items()))


@functools.lru_cache(maxsize=256)
def _validator(event_type: str) -> Any:
    schemas, messages = _catalogue()
    uri = messages.get(event_type)
    if uri is None:
        raise ContractViolation(f"no contract for event type {event_type!r}")
    return jsonschema_rs.validator_for(schemas[uri], registry=_registry(), validate_formats=True)


def schema_for(event_type: str) -> dict[str, Any]:
    schemas, messages = _catalogue()
    return schemas[messages[event_type]]


def known_event_types() -> set[str]:
    return set(_catalogue()[1])


def validate(body: dict[str, Any]) -> None:
    """Validate one envelope (as a dict) against the contract of its ``eventType``."""
    event_type = body.get("eventType") if isinstance(body, dict) else None
    if not isinstance(event_type, str):
        raise ContractViolation("the message has no eventType")
    validator = _validator(event_type)
    if validator.is_valid(body):
        return
    errors = list(validator.iter_errors(body))
    details = "; ".join(
        f"{'/'.join(str(p) for p in e.instance_path) or '(root)'}: {e.message}"
        for e in errors[:5]
    )
    raise ContractViolation(f"{event_type} breaks its contract: {details}")
