"""The refusals every service's application and domain raise, so the HTTP layer answers
them the same way everywhere (400 with field details, 404, 409). Plain Python: domain
code may import it."""

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
    maps the fields that name them to why (→ 404 with those details)."""


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
