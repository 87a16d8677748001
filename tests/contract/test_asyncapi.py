"""The message contracts in contracts/: the AsyncAPI document is coherent, every message has a
resolvable schema and a valid example, and the schemas actually reject broken messages."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from shared.bus.contracts import CONTRACTS_DIR, ContractViolation, known_event_types, validate
from shared.bus.topology import DEAD_LETTER, EXCHANGES

ID_BASE = "https://sla-suite.example/contracts/"
SPEC: dict[str, Any] = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())
MESSAGES: dict[str, dict[str, Any]] = SPEC["components"]["messages"]
SCHEMA_FILES = sorted((CONTRACTS_DIR / "schemas").rglob("*.json"))

EXPECTED_EVENT_TYPES = {
    "OfferingGroupChangeEvent", "ProductOfferingChangeEvent", "SlaTypeChangeEvent",
    "ThresholdStandardChangeEvent", "PurchasedOfferingChangeEvent", "AnalysisResultLoggedEvent",
    "AnalysisResultEvent", "PlannedOutageChangeEvent", "PlannedOutageNoticeEvent",
    "ThresholdCrossingEvent",
    "BurnRateAlertEvent", "MonitoringRegimeChangeEvent", "ProductCreateEvent",
    "ProductStateChangeEvent",
    "ProductAttributeValueChangeEvent", "MeasurementBatchEvent", "SlaViolationCreateEvent",
    "CustomerSlaAnalysisEvent", "SlaCreditDueEvent",
    "NotificationDeliveryChangeEvent", "EscalationChangeEvent", "WindowSummaryEvent",
    "ServiceProblemChangeEvent",
}

# One nested required field per message (path inside the example's `event`): removing it must
# make the message invalid, which proves the nested (often $ref'd) shapes are enforced too.
NESTED_REQUIRED = {
    "OfferingGroupChangeEvent": ("offeringGroup", "lifecycleStatus"),
    "ProductOfferingChangeEvent": ("productOffering", "offeringGroupId"),
    "SlaTypeChangeEvent": ("slaType", "maintenanceAccounting"),
    "ThresholdStandardChangeEvent": ("thresholdStandard", "parameters", 0, "comparator"),
    "PurchasedOfferingChangeEvent": ("purchasedOffering", "monthlyCharge"),
    "AnalysisResultLoggedEvent": ("analysisResult", "target", "id"),
    "AnalysisResultEvent": ("analysisResult", "kind"),
    "PlannedOutageChangeEvent": ("plannedOutage", "window", "endDateTime"),
    "PlannedOutageNoticeEvent": ("notice", "recipients", 0, "customerId"),
    "ThresholdCrossingEvent": ("crossing", "scope", "type"),
    "BurnRateAlertEvent": ("burnAlert", "burnRate"),
    "MonitoringRegimeChangeEvent": ("monitoringRegime", "offeringGroupId"),
    "ProductCreateEvent": ("product", "id"),
    "ProductStateChangeEvent": ("product", "relatedParty", 0, "id"),
    "ProductAttributeValueChangeEvent": ("product", "productOffering", "id"),
    "MeasurementBatchEvent": ("samples", 0, "observedAt"),
    "SlaViolationCreateEvent": ("slaViolation", "sla", "id"),
    "CustomerSlaAnalysisEvent": ("slaAnalysis", "compliance"),
    "SlaCreditDueEvent": ("slaCredit", "amount"),
    "NotificationDeliveryChangeEvent": ("delivery", "status"),
    "EscalationChangeEvent": ("incident", "alertId"),
    "WindowSummaryEvent": ("windowSummary", "scope", "type"),
    "ServiceProblemChangeEvent": ("serviceProblem", "firstAlert", "dateTime"),
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _example(name: str) -> dict[str, Any]:
    return copy.deepcopy(MESSAGES[name]["examples"][0]["payload"])


def _message_schema(name: str) -> dict[str, Any]:
    return _load(CONTRACTS_DIR / MESSAGES[name]["payload"]["$ref"])


def _event_schema(name: str) -> dict[str, Any]:
    """The message-specific shape of `event` (the non-envelope half of the allOf)."""
    for part in _message_schema(name)["allOf"]:
        event = part.get("properties", {}).get("event")
        if event is not None:
            return event
    raise AssertionError(f"{name}: no event shape in its schema")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _local_ref(ref: str) -> Any:
    node: Any = SPEC
    assert ref.startswith("#/"), ref
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _invalid(body: dict[str, Any]) -> bool:
    try:
        validate(body)
    except ContractViolation:
        return True
    return False


# ---------------------------------------------------------------- document and schema files

def test_document_parses_as_asyncapi_3() -> None:
    assert SPEC["asyncapi"].startswith("3.")
    assert SPEC["info"]["title"] and SPEC["info"]["version"]
    description = SPEC["info"]["description"]
    for convention in ("x-sla-dead-letter-reason", "x-sla-attempt", "x-sla-original-exchange",
                       "x-sla-original-routing-key", "x-sla-queue", "message_id",
                       "publisher", "persistent", "<service>.inbox", DEAD_LETTER):
        assert convention in description


def test_every_expected_event_type_has_a_contract() -> None:
    names = {m.get("name", key) for key, m in MESSAGES.items()}
    assert names == EXPECTED_EVENT_TYPES
    assert known_event_types() == EXPECTED_EVENT_TYPES


def _schema_id(path: Path) -> str:
    return path.relative_to(CONTRACTS_DIR).as_posix()


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_schema_id)
def test_schema_file_is_valid_draft_2020_12_with_absolute_id(path: Path) -> None:
    schema = _load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == ID_BASE + path.relative_to(CONTRACTS_DIR).as_posix()


def test_every_schema_ref_resolves_through_the_registry() -> None:
    registry = Registry().with_resources(
        (_load(p)["$id"], Resource.from_contents(_load(p))) for p in SCHEMA_FILES)
    refs = {r for p in SCHEMA_FILES for r in _refs(_load(p))}
    assert refs, "schemas are expected to share definitions by $ref"
    for ref in refs:
        assert ref.startswith(ID_BASE), f"{ref} is not an absolute schema id"
        resolved = registry.resolver().lookup(ref)
        assert isinstance(resolved.contents, dict) and resolved.contents, ref


# ---------------------------------------------------------------- messages and examples

@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_is_complete(name: str) -> None:
    message = MESSAGES[name]
    assert message["name"] == name
    assert message["title"] and message["summary"]
    assert message["contentType"] == "application/json"
    payload = CONTRACTS_DIR / message["payload"]["$ref"]
    assert payload.is_file()
    schema = _load(payload)
    assert schema["allOf"][0] == {"$ref": ID_BASE + "schemas/envelope.json"}
    assert _event_schema(name)["required"], f"{name}: the event shape requires nothing"
    assert message["examples"], f"{name} has no example"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_examples_validate(name: str) -> None:
    for example in MESSAGES[name]["examples"]:
        assert example["payload"]["eventType"] == name
        validate(example["payload"])


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_example_without_a_required_event_field_is_rejected(name: str) -> None:
    field = _event_schema(name)["required"][0]
    body = _example(name)
    assert field in body["event"], f"{name}: example lacks required {field}"
    del body["event"][field]
    assert _invalid(body), f"{name} still validates without event.{field}"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_example_without_a_nested_required_field_is_rejected(name: str) -> None:
    *parents, leaf = NESTED_REQUIRED[name]
    body = _example(name)
    node = body["event"]
    for step in parents:
        node = node[step]
    del node[leaf]
    assert _invalid(body), f"{name} still validates without {'.'.join(map(str, parents))}.{leaf}"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_envelope_fields_are_enforced(name: str) -> None:
    for field in ("eventId", "eventTime", "event"):
        body = _example(name)
        del body[field]
        assert _invalid(body), f"{name} validates without {field}"
    body = _example(name)
    body["event"] = "not an object"
    assert _invalid(body)
    body = _example(name)
    body["domain"] = "slaManagement"  # further TMF688 properties are welcome
    validate(body)


def test_event_type_selects_the_schema() -> None:
    body = _example("OfferingGroupChangeEvent")
    body["eventType"] = "SlaTypeChangeEvent"
    assert _invalid(body)
    body["eventType"] = "NoSuchEvent"
    with pytest.raises(ContractViolation, match="no contract"):
        validate(body)
    with pytest.raises(ContractViolation, match="no eventType"):
        validate({"event": {}})


@pytest.mark.parametrize(("name", "path", "bad"), [
    ("ThresholdStandardChangeEvent", ("thresholdStandard", "parameters", 0, "comparator"), "ge"),
    ("ThresholdStandardChangeEvent", ("thresholdStandard", "parameters", 0, "aggregation"),
     "median"),
    ("ThresholdStandardChangeEvent", ("change",), "created"),
    ("ThresholdStandardChangeEvent", ("standardVersion", "parameters", 0, "graceTimes"), -1),
    ("PurchasedOfferingChangeEvent", ("purchasedOffering", "currency"), "pounds"),
    ("PurchasedOfferingChangeEvent", ("purchasedOffering", "monthlyCharge"), 1250),
    ("OfferingGroupChangeEvent", ("offeringGroup", "@type"), "ProductOffering"),
    ("AnalysisResultEvent", ("analysisResult", "severity"), "catastrophic"),
    ("ThresholdCrossingEvent", ("crossing", "level"), "red"),
    ("BurnRateAlertEvent", ("burnAlert", "severity"), "email"),
    ("MonitoringRegimeChangeEvent", ("monitoringRegime", "status"), "running"),
    ("MonitoringRegimeChangeEvent", ("change",), "created"),
    ("MonitoringRegimeChangeEvent", ("monitoringRegime", "version"), 0),
    ("MeasurementBatchEvent", ("samples",), []),
    ("MeasurementBatchEvent", ("samples", 0, "intervalSeconds"), 0),
    ("ProductCreateEvent", ("product", "status"), "live"),
    ("CustomerSlaAnalysisEvent", ("slaAnalysis", "compliance"), 101),
    ("SlaCreditDueEvent", ("slaCredit", "breachedPeriods"), 1.5),
    ("ServiceProblemChangeEvent", ("change",), "closed"),
    ("ServiceProblemChangeEvent", ("serviceProblem", "status"), "open"),
])
def test_bad_values_are_rejected(name: str, path: tuple[Any, ...], bad: Any) -> None:
    body = _example(name)
    node = body["event"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = bad
    assert _invalid(body)


@pytest.mark.parametrize(("name", "path", "bad"), [
    ("PlannedOutageChangeEvent", ("plannedOutage", "window", "startDateTime"), "not-a-date"),
    ("PlannedOutageChangeEvent", ("plannedOutage", "window", "endDateTime"),
     "2026-11-25 25:00"),
    ("MeasurementBatchEvent", ("samples", 0, "observedAt"), "yesterday"),
    ("ProductOfferingChangeEvent", ("productOffering", "offeringGroupId"), "group-1"),
    ("ThresholdCrossingEvent", ("crossing", "window", "startDateTime"), "2026-13-01T00:00:00Z"),
    ("MonitoringRegimeChangeEvent", ("monitoringRegime", "offeringGroupId"), "group-1"),
    ("MonitoringRegimeChangeEvent", ("monitoringRegime", "changedAt"), "just now"),
])
def test_a_value_that_breaks_its_format_is_rejected(name: str, path: tuple[Any, ...],
                                                    bad: Any) -> None:
    body = _example(name)
    node = body["event"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = bad
    with pytest.raises(ContractViolation, match=str(path[-1])):
        validate(body)


def test_an_envelope_time_that_is_not_a_time_is_rejected() -> None:
    body = _example("MeasurementBatchEvent")
    body["eventTime"] = "soon"
    assert _invalid(body)


def test_measurement_sample_needs_a_value_or_a_status() -> None:
    body = _example("MeasurementBatchEvent")
    sample = body["event"]["samples"][0]
    del sample["value"]
    assert _invalid(body)
    sample["status"] = "up"
    validate(body)


def test_sla_violation_needs_a_date() -> None:
    body = _example("SlaViolationCreateEvent")
    violation = body["event"]["slaViolation"]
    violation["date"] = violation.pop("violationDate")
    validate(body)
    del violation["date"]
    assert _invalid(body)


def test_minimal_tmf637_product_is_accepted() -> None:
    body = {"eventId": "e1", "eventTime": "2025-03-01T10:00:00Z",
            "eventType": "ProductStateChangeEvent",
            "event": {"product": {"id": "p1", "status": "terminated", "someTmfField": {"x": 1}}}}
    validate(body)


# ---------------------------------------------------------------- channels and operations

@pytest.mark.parametrize("key", sorted(SPEC["channels"]))
def test_channel_messages_exist_and_binding_names_an_exchange(key: str) -> None:
    channel = SPEC["channels"][key]
    assert channel["address"]
    assert channel["messages"]
    for message in channel["messages"].values():
        target = _local_ref(message["$ref"])
        assert target is MESSAGES[message["$ref"].rsplit("/", 1)[-1]]
    amqp = channel["bindings"]["amqp"]
    assert amqp["is"] == "routingKey"
    assert amqp["exchange"]["name"] in EXCHANGES
    assert amqp["exchange"]["type"] == "topic" and amqp["exchange"]["durable"] is True
    for parameter in channel.get("parameters", {}):
        assert "{" + parameter + "}" in channel["address"]


def test_every_message_travels_on_some_channel() -> None:
    carried = {m["$ref"].rsplit("/", 1)[-1]
               for c in SPEC["channels"].values() for m in c["messages"].values()}
    assert carried == set(MESSAGES)


def test_change_examples_match_their_channel_routing_key() -> None:
    for channel in SPEC["channels"].values():
        enum = channel.get("parameters", {}).get("change", {}).get("enum")
        if not enum:
            continue
        for message in channel["messages"].values():
            change = _local_ref(message["$ref"])["examples"][0]["payload"]["event"]["change"]
            assert change in enum


def test_own_routing_keys_start_with_their_publishing_service() -> None:
    senders: dict[str, set[str]] = {}
    for op in SPEC["operations"].values():
        if op["action"] == "send":
            channel = op["channel"]["$ref"].rsplit("/", 1)[-1]
            senders.setdefault(channel, set()).update(t["name"] for t in op["tags"])
    for key, channel in SPEC["channels"].items():
        if channel["bindings"]["amqp"]["exchange"]["name"] == "sla.events":
            assert len(senders.get(key, ())) == 1, f"{key} needs exactly one publishing service"
            (service,) = senders[key]
            assert channel["address"].startswith(service + ".")
            for message in channel["messages"].values():
                example = _local_ref(message["$ref"])["examples"][0]["payload"]
                assert example["source"] == service


@pytest.mark.parametrize("key", sorted(SPEC["operations"]))
def test_operation_references_an_existing_channel_and_its_messages(key: str) -> None:
    op = SPEC["operations"][key]
    assert op["action"] in ("send", "receive")
    ref = op["channel"]["$ref"]
    assert ref.startswith("#/channels/")
    channel = _local_ref(ref)
    assert op["messages"]
    for message in op["messages"]:
        assert message["$ref"].startswith(ref + "/messages/")
        assert _local_ref(message["$ref"]) is not None
    assert channel["messages"]


def test_every_channel_is_used_by_an_operation() -> None:
    """Every channel has a sender or receiver, but for contracts agreed ahead of their
    publisher (marked ``x-sla-status``)."""
    used = {op["channel"]["$ref"].rsplit("/", 1)[-1] for op in SPEC["operations"].values()}
    agreed_only = {name for name, c in SPEC["channels"].items() if "x-sla-status" in c}
    assert used | agreed_only == set(SPEC["channels"])


def test_component_schemas_point_at_existing_files() -> None:
    for name, schema in SPEC["components"]["schemas"].items():
        assert (CONTRACTS_DIR / schema["$ref"]).is_file(), name


def test_the_document_says_what_each_running_service_consumes() -> None:
    """For every service that exists, its receive operations are exactly what its queues
    are bound to — the AsyncAPI document describes the code, not an intention."""
    from services.catalogue import all_specs
    from services.deploy_definitions import EXTRA_QUEUES
    from shared.bus.topology import topic_matches

    doc = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())

    def address(channel: dict) -> tuple[str, str]:
        exchange = channel["bindings"]["amqp"]["exchange"]["name"]
        return exchange, re.sub(r"\{[^}]+\}", "x", channel["address"])

    for spec in all_specs():
        prefix = re.sub(r"-(\w)", lambda m: m.group(1).upper(), spec.name) + "Receive"
        received = [address(doc["channels"][op["channel"]["$ref"].split("/")[-1]])
                    for name, op in doc["operations"].items() if name.startswith(prefix)]
        bindings = list(spec.bindings) + [b for q in EXTRA_QUEUES.get(spec.name, [])
                                          for b in q.bindings]
        for exchange, key in received:
            assert any(b.exchange == exchange and topic_matches(b.routing_key, key)
                       for b in bindings), f"{spec.name} does not consume {exchange} {key}"
        for b in bindings:
            assert any(b.exchange == exchange and topic_matches(b.routing_key, key)
                       for exchange, key in received), (
                f"{spec.name} binds {b.exchange} {b.routing_key}; the document omits it")
