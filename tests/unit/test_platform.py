"""The shared platform's pure parts: configuration, envelope, topic matching, tokens,
JSON logs."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from shared import auth, config, context, logs
from shared.bus.envelope import Envelope, EnvelopeError
from shared.bus.topology import topic_matches


@pytest.mark.parametrize(("env", "variable"), [
    ({"SLA_BUS_URL": "http://broker"}, "SLA_BUS_URL"),
    ({"PERSISTENCE_MODULE": "eventsourcing.mysql"}, "PERSISTENCE_MODULE"),
    ({"SLA_PREFETCH": "many"}, "SLA_PREFETCH"),
    ({"SLA_MAX_DELIVERIES": "0"}, "SLA_MAX_DELIVERIES"),
    ({"SLA_SECRET_KEY": "short"}, "SLA_SECRET_KEY"),
    ({"SLA_BUS_URL": "amqp://127.0.0.1/"}, "SLA_SECRET_KEY"),  # distributed needs a key
    ({"SLA_LOG_JSON": "maybe"}, "SLA_LOG_JSON"),
    ({"SLA_SCHEMA_PREFIX": "a;drop"}, "SLA_SCHEMA_PREFIX"),
    ({"SLA_HEARTBEAT_SECONDS": "often"}, "SLA_HEARTBEAT_SECONDS"),
    ({"SLA_HEARTBEAT_SECONDS": "0"}, "SLA_HEARTBEAT_SECONDS"),
    ({"SLA_HEARTBEAT_SECONDS": "nan"}, "SLA_HEARTBEAT_SECONDS"),
    ({"SLA_RELAY_POLL_INTERVAL": "soon"}, "SLA_RELAY_POLL_INTERVAL"),
    ({"PERSISTENCE_MODULE": "eventsourcing.postgres", "SLA_SECRET_KEY": "k" * 40,
      "POSTGRES_MAX_OVERFLOW": "-1"}, "POSTGRES_MAX_OVERFLOW"),
])
def test_a_bad_setting_stops_the_process_naming_the_variable(
        tmp_path: object, env: dict[str, str], variable: str) -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.load({"SLA_DATA_DIR": str(tmp_path), **env})
    assert raised.value.variable == variable
    assert variable in str(raised.value)


def test_embedded_mode_generates_and_keeps_its_secret(tmp_path: object) -> None:
    first = config.load({"SLA_DATA_DIR": str(tmp_path)})
    second = config.load({"SLA_DATA_DIR": str(tmp_path)})
    assert first.embedded and first.secret_generated and not second.secret_generated
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32


def test_the_store_settings_use_per_id_tracking_and_one_schema_per_service(
        tmp_path: object) -> None:
    settings = config.load({"SLA_DATA_DIR": str(tmp_path), "SLA_SECRET_KEY": "k" * 40,
                            "PERSISTENCE_MODULE": "eventsourcing.postgres",
                            "SLA_SCHEMA_PREFIX": "x_"})
    env = settings.store_env("threshold-registry")
    assert env["SINGLE_ROW_TRACKING"] == "n"
    assert env["POSTGRES_SCHEMA"] == "x_threshold_registry"
    # Few connections kept per log and process, more only under load: a distributed
    # suite fits a default PostgreSQL (max_connections 100).
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("2", "8")


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("product.#", "product.create", True),
    ("product.#", "product", True),
    ("product.*", "product.state.change", False),
    ("*.crossing.*", "monitoring.crossing.raised", True),
    ("#", "anything.at.all", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.z", "a.b.c", False),
])
def test_topic_matching_follows_amqp(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_envelopes_round_trip_and_bad_bodies_say_why() -> None:
    envelope = Envelope(event_id="e1", event_time="2026-01-01T00:00:00Z", event_type="X",
                        event={"a": 1}, source="s", correlation_id="c",
                        extra={"domain": "sla"})
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    for raw, why in ((b"\xff", "not JSON"), (b"[]", "not a JSON object"),
                     (b'{"eventId": "1"}', "lacks eventTime, eventType, event"),
                     (b'{"eventId":"1","eventTime":"t","eventType":"X","event":[]}',
                      "'event' is not an object")):
        with pytest.raises(EnvelopeError, match=why):
            Envelope.from_bytes(raw)


def test_tokens_carry_scopes_and_admin_may_do_everything() -> None:
    secret = "s" * 40
    token = auth.issue(secret, ["sla:read", "ingest"], "noc")
    principal = auth.verify(secret, f"Bearer {token}")
    assert principal.subject == "noc" and principal.allows(["ingest"])
    assert not principal.allows(["sla:write"])
    assert auth.verify(secret, f"Bearer {auth.issue(secret, ['admin'])}").allows(["audit:read"])
    with pytest.raises(ValueError, match="unknown scope"):
        auth.issue(secret, ["root"])
    for header in (None, "Basic abc", "Bearer", f"Bearer {token}x"):
        with pytest.raises(auth.AuthError):
            auth.verify(secret, header)


def test_json_logs_carry_the_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=True, service="unit")
    with context.bound(correlation="corr-42", who="alice"):
        logging.getLogger("unit").info("standard approved")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "standard approved"
    assert record["correlationId"] == "corr-42" and record["actor"] == "alice"
    assert record["service"] == "unit" and record["level"] == "info"


@pytest.mark.parametrize(("value", "ok"), [
    ("fibre-0001", True), ("urn:acme:dsl.7_a~b", True), (str(uuid.uuid4()), True),
    ("x" * 200, True), ("x" * 201, False), ("", False), (None, False), (7, False),
    ("a\r\nb", False), ("trailing\n", False), ("with space", False), ("a/b", False),
    ("-lead", False), (".hidden", False), ("été", False), ("a%2Fb", False)])
def test_client_chosen_ids_take_one_safe_character_set(value: object, ok: bool) -> None:
    from shared.ids import client_id_problem

    assert (client_id_problem(value) is None) is ok


def test_the_bus_prefix_isolates_a_suite_and_the_queue_prefix_is_its_deprecated_alias(
        tmp_path: object) -> None:
    def prefix(**env: str) -> str:
        return config.load({"SLA_DATA_DIR": str(tmp_path), **env}).bus_prefix

    assert prefix(SLA_BUS_PREFIX="staging.") == "staging."
    assert prefix(SLA_QUEUE_PREFIX="legacy.") == "legacy."  # now prefixes exchanges too
    assert prefix(SLA_BUS_PREFIX="same.", SLA_QUEUE_PREFIX="same.") == "same."
    with pytest.raises(config.ConfigError) as both:
        prefix(SLA_BUS_PREFIX="a.", SLA_QUEUE_PREFIX="b.")
    assert both.value.variable == "SLA_QUEUE_PREFIX"
    with pytest.raises(config.ConfigError) as bad:
        prefix(SLA_BUS_PREFIX="a b")
    assert bad.value.variable == "SLA_BUS_PREFIX"
