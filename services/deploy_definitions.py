"""Write ``deploy/rabbitmq/definitions.json`` from the services' own bus declarations,
so the broker's pre-declared topology never drifts from the code
(``python -m services.deploy_definitions``; a contract test checks it is current).

The committed file is for one suite on the default vhost. For another suite on the same
broker, generate its own definitions with the suite's ``SLA_BUS_PREFIX`` and/or its vhost:
``python -m services.deploy_definitions --prefix staging. --vhost / --out staging.json``
(the names are the transport's own, :class:`shared.bus.topology.BrokerNames`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from services.catalogue import all_specs
from shared.bus.topology import (
    DEAD_LETTER,
    EXCHANGES,
    MEASUREMENTS,
    Binding,
    BrokerNames,
    QueueSpec,
)

OUT = Path(__file__).resolve().parents[1] / "deploy" / "rabbitmq" / "definitions.json"

# Queues that services consume besides their inbox (batched intake).
EXTRA_QUEUES = {"monitoring": [QueueSpec("monitoring.measurements",
                                         (Binding(MEASUREMENTS, "measurement.#"),))]}


def definitions(prefix: str = "", vhost: str = "/") -> dict[str, Any]:
    names = BrokerNames(prefix)
    queues: list[QueueSpec] = []
    for spec in all_specs():
        if spec.bindings:
            queues.append(spec.queue())
        queues.extend(EXTRA_QUEUES.get(spec.name, []))
    exchange = {"vhost": vhost, "durable": True, "auto_delete": False, "internal": False,
                "arguments": {}}
    dead_letter = names.exchange(DEAD_LETTER)
    doc: dict[str, Any] = {
        "vhosts": [{"name": vhost}],
        "exchanges": [{"name": names.exchange(e), "type": "topic", **exchange}
                      for e in EXCHANGES]
        + [{"name": dead_letter, "type": "direct", **exchange}],
        "queues": [], "bindings": [],
    }
    for q in queues:
        for name in (q.name, q.dead_letter_queue):
            doc["queues"].append({"name": names.queue(name), "vhost": vhost, "durable": True,
                                  "auto_delete": False, "arguments": {}})
        doc["bindings"].append({"source": dead_letter, "vhost": vhost,
                                "destination": names.queue(q.dead_letter_queue),
                                "destination_type": "queue", "routing_key": q.name,
                                "arguments": {}})
        for b in q.bindings:
            doc["bindings"].append({"source": names.exchange(b.exchange), "vhost": vhost,
                                    "destination": names.queue(q.name),
                                    "destination_type": "queue", "routing_key": b.routing_key,
                                    "arguments": {}})
    return doc


def render(prefix: str = "", vhost: str = "/") -> str:
    return json.dumps(definitions(prefix, vhost), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.deploy_definitions",
        description="Write the RabbitMQ definitions of one suite.")
    parser.add_argument("command", nargs="?", choices=("write", "check"), default="write",
                        help="check: exit 1 if the committed file is not current")
    parser.add_argument("--prefix", default="", help="the suite's SLA_BUS_PREFIX")
    parser.add_argument("--vhost", default="/", help="the vhost of the suite's SLA_BUS_URL")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render(args.prefix, args.vhost)
    if args.command == "check":
        return 0 if args.out.read_text() == text else 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
