"""Write or check the committed OpenAPI documents (``contracts/openapi/<service>.json``).

``python -m services.openapi write`` regenerates them from the code;
``python -m services.openapi check`` exits 1 when a committed file is stale.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from services.catalogue import all_specs

OUT = Path(__file__).resolve().parents[1] / "contracts" / "openapi"


def documents() -> dict[str, dict]:
    """Each service's OpenAPI document, generated from its blueprint and schemas."""
    from shared import config
    from shared.wsgi import Suite

    with tempfile.TemporaryDirectory() as tmp:
        settings = config.load({"SLA_DATA_DIR": tmp, "SLA_SECRET_KEY": "x" * 40})
        suite = Suite(all_specs(), settings, start_workers=False)
        try:
            docs = {}
            for rt in suite.runtimes:
                client = suite.app(rt.spec.name).test_client()
                docs[rt.spec.name] = client.get(f"{rt.spec.root}/openapi.json").get_json()
            return docs
        finally:
            suite.stop()


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "check"
    stale = []
    for name, doc in documents().items():
        path = OUT / f"{name}.json"
        text = render(doc)
        if mode == "write":
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(OUT.parents[1])}")
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(OUT.parents[1])))
    if stale:
        print("stale OpenAPI documents (run `make openapi`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
