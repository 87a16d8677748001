"""Bearer tokens: signed JWTs whose scopes decide what a caller may do (README: tokens)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "sla-support-suite"
SCOPES = ("sla:read", "sla:write", "ingest", "audit:read", "admin")


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict)

    def allows(self, required: Iterable[str]) -> bool:
        """``admin`` may do everything; otherwise any one of the required scopes will do."""
        required = tuple(required)
        return "admin" in self.scopes or not required or bool(self.scopes.intersection(required))


def issue(secret: str, scopes: Iterable[str], subject: str = "slactl",
          ttl: timedelta = timedelta(days=30), **claims: Any) -> str:
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    now = datetime.now(UTC)
    payload = {"sub": subject, "scope": " ".join(scopes), "iss": ISSUER, "iat": now,
               "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify(secret: str, header: str | None) -> Principal:
    """Check an ``Authorization`` header; raises :class:`AuthError` with status 401."""
    if not header:
        raise AuthError(401, "an Authorization: Bearer <token> header is required")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "the token has expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(401, f"the token is not valid: {exc}") from None
    scopes = frozenset(str(claims.get("scope", "")).split())
    return Principal(subject=str(claims["sub"]), scopes=scopes, claims=claims)
