"""Request/message context that travels with every event: correlation, causation, actor.

Domain code never sees this; the store stamps it onto each stored event so that the
audit log and the bus envelope can carry it.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
causation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "causation_id", default=None
)
actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


def current() -> dict[str, str]:
    """The metadata to stamp on events saved now."""
    meta = {
        "correlationId": correlation_id.get(),
        "causationId": causation_id.get(),
        "actor": actor.get(),
    }
    return {k: v for k, v in meta.items() if v}


@contextlib.contextmanager
def bound(
    *, correlation: str | None = None, causation: str | None = None, who: str | None = None
) -> Iterator[None]:
    """Bind the context for the duration of a request or a consumed message."""
    tokens = [
        (correlation_id, correlation_id.set(correlation or correlation_id.get() or new_id())),
        (causation_id, causation_id.set(causation)),
        (actor, actor.set(who or actor.get())),
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
