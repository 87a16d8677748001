"""Hostile request bodies get a 400 or a 413 from every service, never a 500: the body
handling and the JSON parsing all services share, through each service's HTTP stack."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config
from shared.http.body import MAX_DEPTH
from tests.conftest import base_env
from tests.service.conftest import Client

LIMIT = 16384

# One operation of each service that takes a body with free-text strings.
TARGETS = [
    ("threshold-registry", "/threshold-registry/v1", "/offeringGroup", "name"),
    ("monitoring", "/monitoring/v1", "/measurementBatch", "batchId"),
    ("notification", "/notification/v1", "/notificationList", "name"),
]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Client]]:
    """The whole suite on SQLite, with a small body limit."""
    from services.catalogue import all_specs
    from shared.wsgi import Suite

    data = Path(tmp_path_factory.mktemp("bodies")) / "var"
    running = Suite(all_specs(), config.load(base_env(data, SLA_MAX_BODY_BYTES=str(LIMIT))))
    try:
        yield {name: Client(running.app(name), root) for name, root, _, _ in TARGETS}
    finally:
        running.stop()


def send(client: Client, path: str, raw: bytes, chunked: bool = False) -> Any:
    headers = {"Content-Type": "application/json"}
    if not chunked:
        return client.post(path, data=raw, headers=headers)
    # A server that frames chunked bodies itself (as gunicorn does) hands them on without
    # a Content-Length and says so with wsgi.input_terminated.
    headers["Transfer-Encoding"] = "chunked"
    return client.post(path, input_stream=io.BytesIO(raw), headers=headers,
                       environ_overrides={"wsgi.input_terminated": True})


def assert_refused(response: Any, status: int, says: str) -> None:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["@type"] == "Error" and body["status"] == str(status)
    assert says in json.dumps(body), body


@pytest.mark.parametrize(("service", "root", "path", "field"), TARGETS)
def test_a_lone_surrogate_in_a_string_is_refused_with_400(
        clients: dict[str, Client], service: str, root: str, path: str, field: str) -> None:
    client = clients[service]
    escaped = json.dumps({field: "\ud800", "samples": []})  # json.dumps escapes it: \ud800
    assert "\\ud800" in escaped
    assert_refused(send(client, path, escaped.encode()), 400, "surrogate")
    # ... in a key, and as raw (invalid UTF-8) bytes
    assert_refused(send(client, path, b'{"\\udfff": 1}'), 400, "surrogate")
    assert_refused(send(client, path, b'{"' + field.encode() + b'": "\xed\xa0\x80"}'),
                   400, "not valid JSON")


@pytest.mark.parametrize(("service", "root", "path", "field"), TARGETS)
def test_json_nested_1000_levels_is_refused_with_400(
        clients: dict[str, Client], service: str, root: str, path: str, field: str) -> None:
    client = clients[service]
    deep_array = b"[" * 1000 + b"]" * 1000
    assert_refused(send(client, path, deep_array), 400, f"deeper than {MAX_DEPTH} levels")
    deep_value = (b'{"' + field.encode() + b'": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000
                  + b"}")
    assert_refused(send(client, path, deep_value), 400, f"deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize(("service", "root", "path", "field"), TARGETS)
def test_nan_and_overflowing_numbers_are_not_json(
        clients: dict[str, Client], service: str, root: str, path: str, field: str) -> None:
    for raw in (b'{"samples": [NaN]}', b'{"samples": [Infinity]}', b'{"samples": [-Infinity]}'):
        assert_refused(send(clients[service], path, raw), 400, "not valid JSON")


@pytest.mark.parametrize(("service", "root", "path", "field"), TARGETS)
def test_a_chunked_body_over_the_limit_gets_413(
        clients: dict[str, Client], service: str, root: str, path: str, field: str) -> None:
    over = json.dumps({field: "x" * LIMIT}).encode()
    assert_refused(send(clients[service], path, over, chunked=True), 413, "Too Large")
    assert_refused(send(clients[service], path, over), 413, "Too Large")


def padded(document: dict[str, Any], size: int) -> bytes:
    """``document`` as JSON of exactly ``size`` bytes (whitespace before the last brace)."""
    raw = json.dumps(document).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_a_chunked_body_within_the_limit_is_read_whole(clients: dict[str, Client]) -> None:
    for size in (LIMIT - 1, LIMIT):
        raw = padded({"name": f"chunked {size}", "description": "d" * 1000}, size)
        created = send(clients["threshold-registry"], "/offeringGroup", raw, chunked=True)
        assert created.status_code == 201, created.get_json()
        assert created.get_json()["name"] == f"chunked {size}"


def test_a_body_one_byte_over_the_limit_gets_413_chunked_or_not(
        clients: dict[str, Client]) -> None:
    for chunked in (False, True):
        raw = padded({"name": "one over"}, LIMIT + 1)
        response = send(clients["threshold-registry"], "/offeringGroup", raw, chunked=chunked)
        assert_refused(response, 413, "Too Large")
