"""`slactl run` (what `make run` starts): one process, prints an admin token, stops
cleanly on Ctrl-C, and a second start keeps the data."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import requests

from tests.e2e.processes import Process, free_port, ready, wait_until


def start(tmp_path: Path, port: int, log: str) -> Process:
    import sys

    env = {"SLA_DATA_DIR": str(tmp_path / "var"), "SLA_SECRET_KEY": "",
           "SLA_BUS_URL": "", "PERSISTENCE_MODULE": "", "REDIS_URL": ""}
    return Process([sys.executable, "-m", "services.cli", "run", "--port", str(port)], env,
                   tmp_path / log)


def test_the_embedded_suite_starts_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/threshold-registry/v1"
    first = start(tmp_path, port, "first.log")
    wait_until(lambda: ready(base), 60, "embedded suite ready", first)
    token = re.search(r"^(ey[\w-]+\.[\w-]+\.[\w-]+)$", first.output(), re.M).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{base}/offeringGroup", headers=headers, json={"name": "Kept"})
    assert created.status_code == 201
    assert first.stop(signal.SIGINT) == 0, first.output()[-2000:]

    second = start(tmp_path, port, "second.log")
    try:
        wait_until(lambda: ready(base), 60, "embedded suite ready again", second)
        names = [g["name"] for g in requests.get(f"{base}/offeringGroup",
                                                 headers=headers).json()]
        assert names == ["Kept"]  # same data, and the same generated secret
    finally:
        assert second.stop(signal.SIGINT) == 0
