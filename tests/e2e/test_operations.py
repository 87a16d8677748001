"""Operating the suite through its real command line and processes: ``slactl run`` and
``slactl token create`` as a user types them, gunicorn masters side by side on one host."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.cli import service_ports
from shared import auth, config
from tests.conftest import SECRET
from tests.drivers.http import NetworkHttp
from tests.drivers.monitoring import MonitoringDriver
from tests.drivers.notification import NotificationDriver
from tests.drivers.registry import RegistryDriver, availability
from tests.e2e.processes import Process, free_port, gunicorn, ready, wait_until
from tests.helpers import drop_schemas
from tests.service.test_notification import Receiver

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment without any of the suite's own settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLA_", "POSTGRES_", "PERSISTENCE_", "REDIS_"))}
    env.update(extra)
    return env


def slactl(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "slactl"), *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A port something else already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken


# --- tokens -------------------------------------------------------------------------------
def test_token_create_outside_the_suite_fails_saying_where_it_looked_and_makes_no_key(
        tmp_path: Path) -> None:
    done = slactl("token", "create", "--scope", "sla:read", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # no token
    message = " ".join(done.stderr.split())
    assert str(tmp_path / "var" / "secret.key") in message
    for hint in ("SLA_SECRET_KEY", "SLA_DATA_DIR", "--data-dir"):
        assert hint in message
    assert not (tmp_path / "var").exists()  # and no key was made


def test_token_create_signs_with_the_key_of_the_data_directory_it_is_pointed_at(
        tmp_path: Path) -> None:
    suite_dir = tmp_path / "suite" / "var"
    suite_dir.mkdir(parents=True)
    (suite_dir / "secret.key").write_text(SECRET + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args, env in ((["--data-dir", str(suite_dir)], None),
                      ([], clean_env(SLA_DATA_DIR=str(suite_dir))),
                      ([], clean_env(SLA_SECRET_KEY=SECRET))):
        done = slactl("token", "create", "--scope", "sla:read", *args, cwd=elsewhere, env=env)
        assert done.returncode == 0, done.stderr
        principal = auth.verify(SECRET, f"Bearer {done.stdout.strip()}")
        assert "sla:read" in principal.scopes
    assert list(elsewhere.iterdir()) == []


# --- a busy port --------------------------------------------------------------------------
def test_run_on_a_busy_port_fails_at_once_before_any_banner_or_token(
        tmp_path: Path, listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    done = slactl("run", "--port", str(port), cwd=tmp_path,
                  env=clean_env(SLA_DATA_DIR=str(tmp_path / "var")))
    assert done.returncode == 2
    assert done.stdout == ""  # no admin token
    assert done.stderr.startswith("error: port ") and str(port) in done.stderr
    assert "--port" in done.stderr and "SLA Support Suite" not in done.stderr
    assert not (tmp_path / "var").exists()  # nothing was started, no key made


def test_a_distributed_run_with_one_busy_service_port_fails_at_once(
        tmp_path: Path, listening: socket.socket) -> None:
    busy = listening.getsockname()[1]
    base = busy - 2  # monitoring's port is the busy one
    done = slactl("run", "--distributed", "--port", str(base), cwd=tmp_path,
                  env=clean_env(SLA_DATA_DIR=str(tmp_path / "var")))
    assert done.returncode == 2 and done.stdout == ""
    assert re.match(rf"error: ports? [\d, ]*\b{busy}\b", done.stderr), done.stderr
    assert "SLA Support Suite" not in done.stderr


# --- the embedded suite on another port ---------------------------------------------------
def _hour(hours_ago: int) -> str:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_acknowledgement_link_points_at_the_port_the_embedded_suite_runs_on(
        tmp_path: Path, receiver: Receiver) -> None:
    """The first session, on --port: a breach reaches the NOC's webhook, and its
    acknowledgement link leads back to this suite and acknowledges the incident."""
    port = free_port()
    suite = Process([str(BIN / "slactl"), "run", "--port", str(port)], clean_env(
        SLA_DATA_DIR=str(tmp_path / "var"), SLA_WEBHOOK_ALLOW="127.0.0.1/32"),
        tmp_path / "suite.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(f"{base}/notification/v1"), 60, "embedded suite", suite)
        token = re.search(r"^(ey[\w-]+\.[\w-]+\.[\w-]+)$", suite.output(), re.M).group(1)
        r, m, n = (f"{base}/{s}/v1" for s in ("threshold-registry", "monitoring",
                                                "notification"))

        registry = RegistryDriver(NetworkHttp(r, token))
        fibre = registry.catalogue()
        group, offering, gold = (fibre.ids[k] for k in ("group", "offering", "gold"))
        registry.agree_standard(group=group, sla_type=gold,
                                validFor={"startDateTime": _hour(24 * 30)},
                                parameters=[availability(thresholdTarget=None,
                                                         conformancePeriod=None)])
        registry.add_purchased_offering("fibre-1", offering, "acme", sla_type=gold)
        monitoring = MonitoringDriver.at(m, token)
        monitoring.start_regime(name="Fibre watch", offeringGroupId=group, window="PT1H",
                                allowedLateness="PT10M")
        notification = NotificationDriver(NetworkHttp(n, token))
        notification.create_list("NOC", [{"name": "NOC pager", "channel": "webhook",
                                          "address": f"{receiver.url}/noc"}], groupWait=0)

        def sample(hours_ago: int) -> dict[str, Any]:
            return {"purchasedOfferingId": "fibre-1", "parameter": "availability",
                    "value": 0.97, "intervalSeconds": 3600, "observedAt": _hour(hours_ago)}

        # Monitoring learns the offering over the in-process bus; the second hour closes
        # the first one's window.
        monitoring.wait_until_watched(sample(3))
        assert monitoring.send_batch([sample(2)]).status_code == 201
        messages = wait_until(lambda: receiver.at("/noc"), 30, "the breach at the webhook",
                              suite)
        alerts = [a for msg in messages for a in json.loads(msg["body"])["alerts"]]
        link = next(a["ackUrl"] for a in alerts if a.get("ackUrl"))
        assert link.startswith(f"http://127.0.0.1:{port}/notification/v1/acknowledge?token=")
        assert notification.open_ack_link(link).status == 200  # the page that asks
        assert notification.confirm_ack_link(link).status == 200
        assert any(i["acknowledged"] for i in notification.incidents())
    finally:
        assert suite.stop(signal.SIGINT) == 0, suite.output()[-2000:]


# --- gunicorn masters side by side --------------------------------------------------------
def _control_pid(path: str) -> int | None:
    done = subprocess.run([str(BIN / "gunicornc"), "-s", path, "-c", "show stats", "-j"],
                          capture_output=True, text=True, timeout=20)
    if done.returncode != 0 or not done.stdout.strip().startswith("{"):
        return None
    return json.loads(done.stdout)["pid"]


def test_two_suites_gunicorns_on_one_host_keep_their_own_control_sockets(
        tmp_path: Path) -> None:
    home, runtime_dir = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    runtime_dir.mkdir()
    masters = {}
    for name in ("a", "b"):
        env = {"SLA_DATA_DIR": str(tmp_path / name), "SLA_SECRET_KEY": SECRET,
               "SLA_BUS_URL": "", "PERSISTENCE_MODULE": "", "REDIS_URL": "",
               "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime_dir),
               "SLA_HTTP_WORKERS": "1"}
        port = free_port()
        masters[name] = (gunicorn("services.threshold_registry.wsgi:app", port, env,
                                  tmp_path / f"{name}.log", workers=1),
                         config.control_socket(env, [f"127.0.0.1:{port}"]), port)
    try:
        for name, (process, control, port) in masters.items():
            assert control is not None and control.startswith(str(tmp_path / name / "run"))
            wait_until(lambda port=port: ready(
                f"http://127.0.0.1:{port}/threshold-registry/v1"), 60, f"{name} ready",
                process)
            wait_until(lambda p=process, c=control: _control_pid(c) == p.proc.pid, 30,
                       f"{name}'s own control socket", process)
        a, b = masters["a"], masters["b"]
        assert a[0].stop() == 0
        assert _control_pid(b[1]) == b[0].proc.pid  # b's socket outlived a
        assert not (runtime_dir / "gunicorn.ctl").exists()  # nobody used the shared one
        assert not (home / ".gunicorn").exists()
    finally:
        for process, _, _ in masters.values():
            process.stop()


def test_a_control_socket_path_too_long_for_a_socket_is_made_short_and_can_be_disabled(
        tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    path = config.control_socket({"SLA_DATA_DIR": str(deep)}, ["127.0.0.1:8081"])
    assert path is not None and len(path) <= 100
    other = config.control_socket({"SLA_DATA_DIR": str(deep)}, ["127.0.0.1:8082"])
    assert other != path
    assert config.control_socket({"SLA_CONTROL_SOCKET": "off"}, ["127.0.0.1:8081"]) is None


# --- distributed on a base port -----------------------------------------------------------
def _free_base() -> int:
    """A base whose service ports are free, below the ephemeral range (where outgoing
    connections of other processes could take one between the check and the start)."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 30000)
        ports = list(service_ports(base).values())
        if max(ports) < 65536 and all(_free(p) for p in ports):
            return base
    raise AssertionError("no free block of ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _children_env(pid: int) -> list[dict[str, str]]:
    """The environments of a process's children (what each suite process runs with)."""
    envs = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            raw = (stat.parent / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        envs.append(dict(item.split("=", 1) for item in raw.decode(errors="replace")
                         .split("\0") if "=" in item))
    return envs


def test_a_distributed_run_takes_port_as_its_base_and_links_point_at_notification(
        tmp_path: Path, amqp_url: str, postgres: dict[str, str], redis_url: str,
        unique: str) -> None:
    base = _free_base()
    ports = service_ports(base)
    env = clean_env(SLA_DATA_DIR=str(tmp_path / "var"), SLA_SECRET_KEY=SECRET,
                    SLA_BUS_URL=amqp_url, SLA_BUS_PREFIX=f"ops-{unique}.",
                    PERSISTENCE_MODULE="eventsourcing.postgres", **postgres,
                    SLA_SCHEMA_PREFIX=f"o{unique}_", REDIS_URL=redis_url,
                    SLA_HTTP_WORKERS="1", SLA_LOG_LEVEL="WARNING")
    suite = Process([str(BIN / "slactl"), "run", "--distributed", "--port", str(base)], env,
                    tmp_path / "suite.log")
    try:
        for name in ("threshold-registry", "monitoring", "notification"):
            wait_until(lambda name=name: ready(f"http://127.0.0.1:{ports[name]}/{name}/v1"),
                       90, f"{name} on {ports[name]}", suite)
        assert (ports["threshold-registry"], ports["monitoring"], ports["notification"]) == (
            base + 1, base + 2, base + 5)
        public = {e.get("SLA_PUBLIC_URL") for e in _children_env(suite.proc.pid)}
        assert public == {f"http://127.0.0.1:{ports['notification']}"}
    finally:
        suite.stop(signal.SIGINT, timeout=30)
        drop_schemas(postgres, f"o{unique}_")


def test_without_a_port_the_distributed_services_keep_their_usual_ports() -> None:
    ports = service_ports(config.DEFAULT_BASE_PORT)
    assert (ports["threshold-registry"], ports["monitoring"], ports["notification"]) == (
        8081, 8082, 8085)
    assert all(ports[name] == int(s["port"]) for name, s in config.SERVICES.items())

