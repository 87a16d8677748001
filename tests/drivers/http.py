"""The two ways a driver talks to a service: the in-process Flask test client of the
service tests, or real HTTP (``requests``) to a running suite in the end-to-end tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

import requests


@dataclass(frozen=True)
class Answer:
    """A response as a driver reads it."""

    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text of anything else
    text: str

    def json(self) -> Any:
        return self.body

    # Read also as the Flask test client's responses read, so that a test reads a
    # driver's answer as it reads any other response.
    @property
    def status_code(self) -> int:
        return self.status

    def get_json(self) -> Any:
        return self.body


class Http(Protocol):
    """Requests to one service's API root (paths below it, or absolute ones under it)."""

    root: str

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                anonymous: bool = False) -> Answer: ...


def _answer(status: int, headers: Any, text: str, content_type: str) -> Answer:
    body: Any = text
    if "json" in (content_type or "") and text:
        body = json.loads(text)
    return Answer(status, dict(headers), body, text)


class FlaskHttp:
    """Over a service test's client (``tests.service.conftest.Client``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.root = client.root

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                anonymous: bool = False) -> Answer:
        client = self.client.with_scopes() if anonymous else self.client
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if json_body is not None:
            kwargs["json"] = json_body
        if form is not None:
            kwargs["data"] = form
        response = client.request(method, path, **kwargs)
        return _answer(response.status_code, response.headers,
                       response.get_data(as_text=True), response.content_type or "")


class NetworkHttp:
    """Over the network, to a running suite's service at ``root`` (a full URL)."""

    def __init__(self, root: str, token: str, timeout: float = 10) -> None:
        self.root, self.token, self.timeout = root.rstrip("/"), token, timeout
        parsed = urlparse(self.root)
        self.origin, self.prefix = f"{parsed.scheme}://{parsed.netloc}", parsed.path
        self.session = requests.Session()

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return (self.origin if path.startswith(self.prefix + "/") else self.root) + path

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                anonymous: bool = False) -> Answer:
        headers = dict(headers or {})
        if not anonymous:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = self.url(path)
        if method == "PATCH" and json_body is not None:
            headers.setdefault("Content-Type", "application/merge-patch+json")
            response = self.session.request(method, url, data=json.dumps(json_body),
                                            headers=headers, timeout=self.timeout)
        else:
            response = self.session.request(method, url, json=json_body, data=form,
                                            headers=headers, timeout=self.timeout)
        return _answer(response.status_code, response.headers, response.text,
                       response.headers.get("Content-Type", ""))
