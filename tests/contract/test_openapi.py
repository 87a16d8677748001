"""The OpenAPI documents: committed copies are current, and every operation in every
document is protected by the scopes it declares (so a new endpoint cannot slip through)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from services import openapi
from shared import auth
from tests.conftest import SECRET, base_env

PUBLIC = {"/healthz", "/readyz", "/openapi.json",
          "/notification/v1/acknowledge",  # the signed link in a message
          "/outage-negotiation/v1/plannedOutageResponse",  # a customer's response link
          "/outage-negotiation/v1/respond",  # the page that link opens
          "/outage-negotiation/v1/calendar/{token}.ics"}  # a customer's calendar feed
#: Public paths whose signed token is in the path: a made-up one is refused (403).
SIGNED = {"/outage-negotiation/v1/calendar/{token}.ics"}


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return openapi.documents()


def test_committed_openapi_documents_are_current(documents: dict[str, dict]) -> None:
    for name, doc in documents.items():
        path = openapi.OUT / f"{name}.json"
        assert path.exists(), f"{path} is missing: run `make openapi`"
        assert path.read_text() == openapi.render(doc), f"{path} is stale: run `make openapi`"


def _operations() -> list[tuple[str, str, str, list[str]]]:
    ops = []
    for name, doc in openapi.documents().items():
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                security = op.get("security")
                scopes = sorted({s for req in (security or []) for s in req.get("bearerAuth", [])})
                ops.append((name, path, method.upper(), scopes))
    return ops


OPERATIONS = _operations()


def _concrete(path: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        return "1" if name in {"number"} else str(uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from services.catalogue import all_specs
    from shared import config
    from shared.wsgi import Suite

    settings = config.load(base_env(tmp_path_factory.mktemp("var")))
    running = Suite(all_specs(), settings, start_workers=False)
    yield running
    running.stop()


@pytest.mark.parametrize(("service", "path", "method", "scopes"), OPERATIONS,
                         ids=[f"{m} {p}" for _, p, m, _ in OPERATIONS])
def test_every_operation_needs_its_scope(suite: Any, service: str, path: str, method: str,
                                         scopes: list[str]) -> None:
    client = suite.app(service).test_client()
    url = _concrete(path)
    if any(path.endswith(p) for p in PUBLIC):
        response = client.open(url, method=method)  # no token, yet no 401
        status = response.status_code
        if any(path.endswith(p) for p in SIGNED):
            assert status == 403 and response.get_json()["code"] == "INVALID_LINK", status
            return
        assert status == 200 or (method == "POST" and status == 400), status
        return
    assert scopes, f"{method} {path} declares no scope"
    kwargs: dict[str, Any] = {"json": {}} if method in {"POST", "PATCH"} else {}
    if method == "PATCH":
        kwargs = {"data": "{}", "content_type": "application/merge-patch+json"}
    anonymous = client.open(url, method=method, **kwargs)
    assert anonymous.status_code == 401, anonymous.get_json()
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    forged = auth.issue("another-secret-" + "x" * 40, ["admin"])
    assert client.open(url, method=method, headers={"Authorization": f"Bearer {forged}"},
                       **kwargs).status_code == 401
    others = [s for s in auth.SCOPES if s not in scopes and s != "admin"]
    if others:
        token = auth.issue(SECRET, others)
        wrong = client.open(url, method=method, headers={"Authorization": f"Bearer {token}"},
                            **kwargs)
        assert wrong.status_code == 403, (wrong.status_code, wrong.get_json())
    for scope in [*scopes, "admin"]:
        token = auth.issue(SECRET, [scope])
        allowed = client.open(url, method=method,
                              headers={"Authorization": f"Bearer {token}"}, **kwargs)
        allowed.get_data()  # consume a streamed body inside its request context
        assert allowed.status_code not in {401, 403}, (scope, allowed.get_json())
        assert allowed.status_code < 500, allowed.get_json()


def test_an_expired_token_is_refused(suite: Any) -> None:
    from datetime import timedelta

    token = auth.issue(SECRET, ["admin"], ttl=timedelta(seconds=-1))
    client = suite.app("threshold-registry").test_client()
    response = client.get("/threshold-registry/v1/offeringGroup",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "expired" in response.get_json()["message"]


def test_every_client_chosen_id_documents_the_one_safe_pattern(
        documents: dict[str, dict]) -> None:
    import json

    from shared.bus.contracts import CONTRACTS_DIR
    from shared.ids import CLIENT_ID_PATTERN

    schemas = {**documents["threshold-registry"]["components"]["schemas"],
               **documents["monitoring"]["components"]["schemas"]}
    assert schemas["PurchasedOfferingCreate"]["properties"]["id"]["pattern"] == CLIENT_ID_PATTERN
    assert schemas["MeasurementBatchIn"]["properties"]["batchId"]["pattern"] == CLIENT_ID_PATTERN
    batch = json.loads((CONTRACTS_DIR / "schemas/messages/MeasurementBatchEvent.json").read_text())
    event = next(p for p in batch["allOf"] if "properties" in p)["properties"]["event"]
    assert event["properties"]["batchId"]["pattern"] == CLIENT_ID_PATTERN
