"""Scope requirements declared on views: enforced before the view runs and written into
the OpenAPI document, so the authorisation test can walk every documented operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

SCOPES_ATTR = "_sla_scopes"
PUBLIC_ATTR = "_sla_public"


def requires(*scopes: str) -> Callable[[F], F]:
    """Any one of ``scopes`` (or ``admin``) grants access. Apply closest to the function."""

    def decorate(fn: F) -> F:
        setattr(fn, SCOPES_ATTR, tuple(scopes))
        apidoc = getattr(fn, "_apidoc", {})
        manual = apidoc.setdefault("manual_doc", {})
        manual["security"] = [{"bearerAuth": list(scopes)}]
        responses = manual.setdefault("responses", {})
        responses.setdefault("401", {"description": "Missing, expired or invalid bearer token",
                                     "content": {"application/json": {"schema": {
                                         "$ref": "#/components/schemas/Error"}}}})
        responses.setdefault("403", {"description": f"The token lacks the scope "
                                                   f"{' or '.join(scopes)}",
                                     "content": {"application/json": {"schema": {
                                         "$ref": "#/components/schemas/Error"}}}})
        fn._apidoc = apidoc  # type: ignore[attr-defined]
        return fn

    return decorate


def public(fn: F) -> F:
    """No token needed (liveness, readiness and the API description only)."""
    setattr(fn, PUBLIC_ATTR, True)
    apidoc = getattr(fn, "_apidoc", {})
    apidoc.setdefault("manual_doc", {})["security"] = []
    fn._apidoc = apidoc  # type: ignore[attr-defined]
    return fn
