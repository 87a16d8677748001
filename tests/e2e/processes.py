"""Start suite processes (gunicorn, workers, ``slactl run``) and wait on them.

The end-to-end tests and the benchmarks (``bench/common.py``) both run the suite as real
processes; they start, watch and stop them with these helpers, so both run the suite the
way distributed mode does (``slactl run --distributed``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A suite process in a session of its own (so a signal reaches its children, e.g. a
    gunicorn master's workers), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path,
                 name: str | None = None) -> None:
        self.name = name or log.stem
        self.args, self.env, self.log_path = args, env, log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env},
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def restarted(self) -> Process:
        """The same process started again (after it was killed), logging beside the
        first one's log."""
        log = self.log_path.with_name(f"{self.log_path.stem}.again{self.log_path.suffix}")
        return Process(self.args, self.env, log, self.name)

    def send(self, sig: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.send(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            return self.proc.wait(5)
        finally:
            self._log.close()


def gunicorn(module: str, port: int, env: dict[str, str], log: Path,
             workers: int | None = 2) -> Process:
    """A service's HTTP processes (``services.<service>.wsgi:app``) as distributed mode runs
    them; ``workers=None`` leaves the count to ``SLA_HTTP_WORKERS``."""
    count = ["-w", str(workers)] if workers is not None else []
    return Process([sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
                    "-b", f"127.0.0.1:{port}", *count, module], env, log)


def worker(service: str, env: dict[str, str], log: Path, roles: str = "") -> Process:
    """``slactl worker SERVICE`` (``--only ROLES`` when given: comma-separated roles)."""
    only = ["--only", roles] if roles else []
    return Process([sys.executable, "-m", "services.cli", "worker", service, *only], env, log)


def service_processes(service: str, port: int, env: dict[str, str], logs: Path,
                      http_workers: int | None = 2,
                      worker_processes: tuple[str, ...] | None = None) -> dict[str, Process]:
    """One service as ``slactl run --distributed`` runs it: its gunicorn, and one worker
    process per entry of its spec's ``worker_processes`` (one with every role when it
    names none), or of ``worker_processes`` when given. Keyed ``<service>-http``,
    ``<service>-worker`` and, for further worker processes, ``<service>-<first role>``
    (``-2``, ``-3`` … for a further process of the same roles)."""
    from services.catalogue import spec

    found = spec(service)
    module = found.application.__module__.rsplit(".", 1)[0] + ".wsgi:app"
    started = {f"{service}-http": gunicorn(module, port, env, logs / f"{service}-http.log",
                                           http_workers)}
    entries = worker_processes if worker_processes is not None else found.worker_processes
    for n, roles in enumerate(entries or ("",)):
        name = f"{service}-worker" if n == 0 else f"{service}-{roles.split(',')[0]}"
        copy = 2
        while name in started:
            name = f"{service}-{roles.split(',')[0]}-{copy}"
            copy += 1
        started[name] = worker(service, env, logs / f"{name}.log", roles)
    return started


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition",
               process: Process | Iterable[Process] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy. Fails at once, with its output,
    when the process (or one of the processes) it depends on exits meanwhile."""
    watched = [] if process is None else [process] if isinstance(process, Process) \
        else list(process)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for p in watched:
            if not p.alive():
                raise AssertionError(f"{p.name} exited early:\n{p.tail()}")
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, AssertionError) as exc:
            last = exc
        time.sleep(0.05)
    detail = "\n".join(p.tail() for p in watched[:1])
    raise AssertionError(f"{what} not reached within {timeout}s ({last})\n{detail}")


def ready(base: str) -> bool:
    return requests.get(f"{base}/readyz", timeout=2).status_code == 200


@contextlib.contextmanager
def distributed_suite(services: Iterable[str], *, amqp_url: str, postgres: dict[str, str],
                      redis_url: str, logs: Path, unique: str, secret: str,
                      settings: dict[str, str] | None = None, http_workers: int = 1
                      ) -> Iterator[dict[str, Any]]:
    """Services as ``slactl run --distributed`` runs them (:func:`service_processes`), on
    RabbitMQ, PostgreSQL and Redis under names of this test's own (``SLA_SCHEMA_PREFIX``,
    ``SLA_BUS_PREFIX``), each ready before it yields ``{"bases": service → API root URL,
    "processes": name → Process, "prefix": the bus prefix}``; afterwards the processes are
    stopped and the schemas and queues dropped. ``settings``: more of the services'
    settings (or ones to override)."""
    from tests.helpers import delete_queues, drop_schemas

    services = list(services)
    schemas, prefix = f"s{unique}_", f"e2e-{unique}."
    env = {"SLA_BUS_URL": amqp_url, "PERSISTENCE_MODULE": "eventsourcing.postgres",
           **postgres, "SLA_SCHEMA_PREFIX": schemas, "SLA_BUS_PREFIX": prefix,
           "REDIS_URL": redis_url, "SLA_SECRET_KEY": secret, "SLA_DATA_DIR": str(logs),
           "SLA_HTTP_WORKERS": str(http_workers), **(settings or {})}
    started: dict[str, Process] = {}
    bases: dict[str, str] = {}
    try:
        for service in services:
            port = free_port()
            started.update(service_processes(service, port, env, logs, http_workers))
            bases[service] = f"http://127.0.0.1:{port}/{service}/v1"
        for service, base in bases.items():
            wait_until(lambda base=base: ready(base), 60, f"{service} ready",
                       started.values())
        yield {"bases": bases, "processes": started, "prefix": prefix}
    finally:
        for process in started.values():
            process.stop()
        drop_schemas(postgres, schemas)
        queues = [f"{service}.inbox" for service in services]
        if "monitoring" in services:
            queues.append("monitoring.measurements")
        delete_queues(amqp_url, *(f"{prefix}{queue}{suffix}" for queue in queues
                                  for suffix in ("", ".dead-letter")))
