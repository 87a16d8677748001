"""The TMF630 error body ``{code, reason, message, status}`` for every error response."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
    412: "Precondition Failed", 413: "Payload Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Entity", 428: "Precondition Required", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}


class ApiError(Exception):
    """Raised anywhere below a view to answer with a TMF630 error body."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details
        self.code = code or REASONS.get(status, "Error").upper().replace(" ", "_")


def error_body(status: int, message: str, code: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@type": "Error",
        "code": code or REASONS.get(status, "Error").upper().replace(" ", "_"),
        "reason": REASONS.get(status, "Error"),
        "message": message,
        "status": str(status),
    }
    if details:
        body["details"] = details
    return body


def error_response(status: int, message: str, code: str | None = None,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error_body(status, message, code, details))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dicts as ``{"a.b.0.c": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(body)"
            flat.update(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "(body)"] = list(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        flat[prefix or "(body)"] = [str(messages)]
    return flat
