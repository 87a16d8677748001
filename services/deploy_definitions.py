"""Write ``deploy/rabbitmq/definitions.json`` from the services' own bus declarations,
so the broker's pre-declared topology never drifts from the code
(``python -m services.deploy_definitions``; a contract test checks it is current)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.catalogue import all_specs
from shared.bus.topology import DEAD_LETTER, EXCHANGES, MEASUREMENTS, Binding, QueueSpec

OUT = Path(__file__).resolve().parents[1] / "deploy" / "rabbitmq" / "definitions.json"

# Queues that services consume besides their inbox (batched intake).
EXTRA_QUEUES = {"monitoring": [QueueSpec("monitoring.measurements",
                                         (Binding(MEASUREMENTS, "measurement.#"),))]}


def definitions() -> dict[str, Any]:
    queues: list[QueueSpec] = []
    for spec in all_specs():
        if spec.bindings:
            queues.append(spec.queue())
        queues.extend(EXTRA_QUEUES.get(spec.name, []))
    exchange = {"vhost": "/", "durable": True, "auto_delete": False, "internal": False,
                "arguments": {}}
    doc: dict[str, Any] = {
        "vhosts": [{"name": "/"}],
        "exchanges": [{"name": e, "type": "topic", **exchange} for e in EXCHANGES]
        + [{"name": DEAD_LETTER, "type": "direct", **exchange}],
        "queues": [], "bindings": [],
    }
    for q in queues:
        for name in (q.name, q.dead_letter_queue):
            doc["queues"].append({"name": name, "vhost": "/", "durable": True,
                                  "auto_delete": False, "arguments": {}})
        doc["bindings"].append({"source": DEAD_LETTER, "vhost": "/",
                                "destination": q.dead_letter_queue, "destination_type": "queue",
                                "routing_key": q.name, "arguments": {}})
        for b in q.bindings:
            doc["bindings"].append({"source": b.exchange, "vhost": "/", "destination": q.name,
                                    "destination_type": "queue", "routing_key": b.routing_key,
                                    "arguments": {}})
    return doc


def render() -> str:
    return json.dumps(definitions(), indent=2) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
