"""The refusals every service's application and domain raise, so the HTTP layer answers
them the same way everywhere (400 with field details, 404, 409). Plain Python: domain
code may import it.

Two views of one hierarchy: the HTTP meaning (``Invalid`` → 400, ``UnknownReference`` →
409, ``NotAllowed`` → 403, ``RefusedNow`` and ``Conflict`` → 409, ``NotFound`` → 404), and
the domain's names for them (``InvalidValue``, ``MissingReference``, ``InvalidTransition``,
``InUse``), which every service's domain raises. ``ErrorCollector`` gathers the problems of
one command so that all of them are reported at once."""

from __future__ import annotations

from collections.abc import Mapping


class Refusal(Exception):
    """A command or query the service refuses, for a reason the caller can act on."""


class Invalid(Refusal):
    """Values are invalid; ``errors`` maps API field paths to messages (→ 400)."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


class UnknownReference(Invalid):
    """The request names resources that do not exist (or no longer take part); ``errors``
    maps the fields that name them to why (→ 409 with those details: 404 is kept for the
    resource the URL names)."""


class NotAllowed(Invalid):
    """Well formed, but refused by a policy (a callback to an address not allowed);
    ``errors`` as for Invalid (→ 403 with those details)."""


class RefusedNow(Invalid):
    """Well formed, but nothing in it can be taken in the current state (unknown or
    unwatched series, late or future times); ``errors`` as for Invalid (→ 409)."""


class Conflict(Refusal):
    """Well formed, but not allowed in the resource's current state (→ 409)."""


class NotFound(Refusal, LookupError):
    """No such resource (→ 404)."""

    def __str__(self) -> str:  # LookupError subclasses like KeyError would quote it
        return str(self.args[0]) if self.args else ""


class StaleVersion(Conflict):
    """``If-Match`` named a version the resource has moved past (→ 409)."""

    def __init__(self, current: int, expected: int) -> None:
        super().__init__(f"the resource is at version {current}, not {expected}")
        self.current, self.expected = current, expected


# --- the domain's names ----------------------------------------------------------------


class DomainError(Refusal):
    """Base class of every refusal by a domain model."""


class InvalidValue(DomainError, Invalid):
    """One or more values are invalid; ``errors`` maps API field paths to messages."""


class MissingReference(InvalidValue, UnknownReference):
    """Values name resources that do not exist; ``errors`` maps the fields to why."""


class RefusedAddress(InvalidValue, NotAllowed):
    """An address a policy refuses (a webhook outside the allow-list); ``errors`` maps the
    field to why."""


class InvalidTransition(DomainError, Conflict):
    """The command is well formed but not allowed in the aggregate's current state."""


class InUse(InvalidTransition):
    """The resource cannot be retired while others use it; ``users`` maps each kind of user
    (API resource name) to the ids of those that do."""

    def __init__(self, message: str, users: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.users = users


class ErrorCollector:
    """Collects the problems of one command so that all of them are reported at once:
    ``add`` per field, then ``raise_if_any`` raises ``InvalidValue`` with every one."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self, error: type[InvalidValue] | None = None) -> None:
        if self.errors:
            raise (error or InvalidValue)(self.errors)
