"""Request/message context that travels with every event: correlation, causation, actor.

Domain code never sees this; the store stamps it onto each stored event so that the
audit log and the bus envelope can carry it.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Self

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


class UnitOfWork:
    """What a piece of batched work binds while it runs — an inbox group, a relay page —
    so that the code it calls finds it (:meth:`active`) without being handed it, and what
    that code looks up for it is looked up once (:meth:`memo`). Each subclass has a
    context variable of its own."""

    _active: contextvars.ContextVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._active = contextvars.ContextVar(cls.__qualname__, default=None)

    def __init__(self) -> None:
        self._memo: dict[Any, Any] = {}

    @contextlib.contextmanager
    def bound(self) -> Iterator[Self]:
        token = self._active.set(self)
        try:
            yield self
        finally:
            self._active.reset(token)

    @classmethod
    def active(cls) -> Self | None:
        return cls._active.get()

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once for this unit of work: what its steps look up that none of
        them changes. An exception is not remembered: the next step computes again."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]
