"""Exchanges and queues of the suite (mirrored in contracts/asyncapi.yaml and
deploy/rabbitmq/definitions.json).

The names below are logical: code, contracts and message headers speak of them. On a
broker, :class:`BrokerNames` turns them into the names one suite actually uses, so several
suites can share a broker (``SLA_BUS_PREFIX``) without consuming each other's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SLA_EVENTS = "sla.events"
FULFILMENT_EVENTS = "fulfilment.events"
MEASUREMENTS = "measurements"
CUSTOMER_SLA_EVENTS = "customer-sla.events"
BILLING_EVENTS = "billing.events"
DEAD_LETTER = "sla.dead-letter"

EXCHANGES = (SLA_EVENTS, FULFILMENT_EVENTS, MEASUREMENTS, CUSTOMER_SLA_EVENTS, BILLING_EVENTS)


@dataclass(frozen=True)
class BrokerNames:
    """One suite's names on a broker: every exchange and queue, the dead-letter ones
    included, carries the suite's prefix, so nothing one suite publishes is routed to
    another's queues (a prefix on queues alone would still bind every suite's inbox to the
    one ``sla.events``). The default exchange ``""`` has no name to prefix."""

    prefix: str = ""

    def exchange(self, name: str) -> str:
        return self.prefix + name if name else name

    def queue(self, name: str) -> str:
        return self.prefix + name

    def logical_exchange(self, name: str) -> str:
        """The logical name of a broker exchange (what handlers and headers speak of)."""
        if self.prefix and name.startswith(self.prefix):
            return name[len(self.prefix):]
        return name


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    """One consuming service's durable inbox queue and its dead-letter queue."""

    name: str
    bindings: tuple[Binding, ...] = field(default_factory=tuple)

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead-letter"


def inbox_queue(service: str, bindings: tuple[Binding, ...]) -> QueueSpec:
    return QueueSpec(name=f"{service}.inbox", bindings=bindings)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    p, k = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return any(match(i + 1, jj) for jj in range(j, len(k) + 1))
        if j == len(k):
            return False
        return (p[i] == "*" or p[i] == k[j]) and match(i + 1, j + 1)

    return match(0, 0)
