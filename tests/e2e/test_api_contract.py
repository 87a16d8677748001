"""The three documented APIs as users reach them: `slactl run` (gunicorn, one port) with
its own data directory. Hostile bodies through gunicorn's own framing of chunked
requests, and schemathesis over every documented operation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared import auth
from tests.conftest import SECRET
from tests.e2e.processes import ROOT, Process, free_port, ready, wait_until

pytestmark = pytest.mark.e2e

LIMIT = 1_048_576  # SLA_MAX_BODY_BYTES's default, as users get it
APIS = ("threshold-registry", "monitoring", "analysis", "notification",
        "outage-negotiation")
# Cases per operation and phase: enough to find what the documents and the services
# disagree on, few enough for `make test` (the three APIs run side by side).
EXAMPLES = int(os.environ.get("SLA_SCHEMATHESIS_EXAMPLES", "10"))
SEED = os.environ.get("SLA_SCHEMATHESIS_SEED", "1")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded suite on a free port; its origin (``http://127.0.0.1:<port>``)."""
    tmp = Path(tmp_path_factory.mktemp("served"))
    port = free_port()
    env = {"SLA_DATA_DIR": str(tmp / "var"), "SLA_SECRET_KEY": SECRET, "SLA_BUS_URL": "",
           "PERSISTENCE_MODULE": "", "REDIS_URL": "", "SLA_MAX_BODY_BYTES": str(LIMIT),
           "SLA_LOG_JSON": "1"}
    process = Process([sys.executable, "-m", "services.cli", "run", "--port", str(port)],
                      env, tmp / "suite.log")
    origin = f"http://127.0.0.1:{port}"
    try:
        for api in APIS:
            wait_until(lambda a=api: ready(f"{origin}/{a}/v1"), 60, f"{api} ready", process)
        yield origin
    finally:
        assert process.stop(signal.SIGINT) == 0, process.output()[-3000:]


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(SECRET, ['admin'], 'e2e')}",
            "Content-Type": "application/json"}


def chunks(*parts: bytes) -> Iterator[bytes]:
    """A body requests sends chunked (no Content-Length)."""
    yield from parts


def test_a_chunked_body_over_the_limit_gets_413_through_gunicorn(served: str) -> None:
    url = f"{served}/threshold-registry/v1/offeringGroup"
    over = chunks(b'{"name": "', *[b"x" * 8192] * (LIMIT // 8192 + 1), b'"}')
    response = requests.post(url, data=over, headers=admin(), timeout=30)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert str(LIMIT) in response.json()["message"]
    # A chunked body within the limit is read whole, not cut short.
    within = chunks(b'{"name": "chunked", ', b'"description": "', b"d" * 1500, b'"}')
    created = requests.post(url, data=within, headers=admin(), timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "d" * 1500


def test_lone_surrogates_and_deep_nesting_get_400_through_gunicorn(served: str) -> None:
    url = f"{served}/monitoring/v1/measurementBatch"
    for raw, says in ((b'{"batchId": "\\ud800", "samples": []}', "surrogate"),
                      (b'{"samples": ' + b"[" * 1000 + b"]" * 1000 + b"}", "deeper than")):
        for body in (raw, chunks(raw[:7], raw[7:])):
            response = requests.post(url, data=body, headers=admin(), timeout=30)
            assert response.status_code == 400, response.text
            assert says in response.json()["message"]


def schemathesis(api: str, origin: str, workdir: Path) -> subprocess.Popen:
    """``st run`` over every operation of one committed document, with every check, as
    a user would run it (the reproduction of a failure is in its output)."""
    workdir.mkdir(parents=True, exist_ok=True)
    token = auth.issue(SECRET, ["admin"], "schemathesis")
    return subprocess.Popen(
        [sys.executable, "-m", "schemathesis.cli", "run",
         str(ROOT / "contracts" / "openapi" / f"{api}.json"), "--url", origin,
         "--header", f"Authorization: Bearer {token}", "--checks", "all",
         "--max-examples", str(EXAMPLES), "--seed", SEED, "--generation-database", "none",
         "--no-color", "--request-timeout", "30"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks"})


def report(output: str) -> str:
    """schemathesis' failures and summary (each with its curl reproduction), long
    generated values cut short."""
    start = output.find("=== FAILURES ===")
    text = output[start - 30:] if start >= 30 else output
    lines = [line if len(line) <= 600 else line[:600] + " …" for line in text.splitlines()]
    return "\n".join(lines)[-30000:]


@pytest.mark.timeout(900)  # ~75 s of CPU in all; a machine shared with others is slower
def test_every_documented_operation_holds_under_schemathesis(
        served: str, tmp_path: Path) -> None:
    runs = {api: schemathesis(api, served, tmp_path / api) for api in APIS}
    failed = []
    try:
        for api, run in runs.items():
            output, _ = run.communicate(timeout=840)
            if run.returncode != 0:
                failed.append(f"===== schemathesis on {api} (exit {run.returncode}) =====\n"
                              f"{report(output)}")
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    assert not failed, "\n".join(failed)
