"""Start suite processes (gunicorn, workers, ``slactl run``) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env},
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        if self.proc.poll() is None:
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


def gunicorn(module: str, port: int, env: dict[str, str], log: Path, workers: int = 2
             ) -> Process:
    return Process([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
                    "-b", f"127.0.0.1:{port}", "-w", str(workers), module], env, log)


def worker(service: str, env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, "-m", "services.cli", "worker", service], env, log)


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition",
               process: Process | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.output()[-3000:]}")
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, AssertionError) as exc:
            last = exc
        time.sleep(0.05)
    detail = process.output()[-3000:] if process else ""
    raise AssertionError(f"{what} not reached within {timeout}s ({last})\n{detail}")


def ready(base: str) -> bool:
    return requests.get(f"{base}/readyz", timeout=2).status_code == 200
