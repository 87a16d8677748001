"""``slactl``: run the suite, run a service's worker, and issue tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shared import auth, config, logs

console = Console(stderr=True)


@click.group()
def main() -> None:
    """Operate the SLA Support Suite."""


# --- tokens -------------------------------------------------------------------------------
@main.group()
def token() -> None:
    """Bearer tokens for the API."""


@token.command("create")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(auth.SCOPES), help="A scope to grant (repeatable).")
@click.option("--subject", default="slactl", show_default=True, help="Who the token is for.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Days until it expires.")
def token_create(scopes: tuple[str, ...], subject: str, days: int) -> None:
    """Print a signed token (secret from SLA_SECRET_KEY, else the embedded var/secret.key)."""
    settings = _settings()
    click.echo(auth.issue(settings.secret_key, scopes, subject, timedelta(days=days)))


def _settings() -> config.Settings:
    try:
        return config.load()
    except config.ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None


# --- embedded mode -------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--distributed", is_flag=True,
              help="Each service as its own gunicorn process plus a worker process.")
def run(host: str, port: int, distributed: bool) -> None:
    """Start the suite: embedded by default (SQLite, in-process bus) on one port."""
    if distributed:
        _run_distributed(host)
        return
    from services.catalogue import all_specs

    settings = _settings()
    specs = all_specs()
    _banner(settings, [(s.name, f"http://{host}:{port}{s.root}") for s in specs],
            "embedded: SQLite under " + str(settings.data_dir) + ", in-process bus")
    from gunicorn.app.base import BaseApplication

    state: dict[str, object] = {}

    class Embedded(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)  # one process: SQLite and the in-process bus
            self.cfg.set("threads", 8)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("worker_exit", lambda _server, _worker: _stop(state))

        def load(self):  # noqa: ANN202 - gunicorn's signature
            from shared.wsgi import Suite

            logs.configure(settings.log_level, settings.log_json)
            suite = Suite(specs, settings)
            state["suite"] = suite
            return suite

    Embedded().run()


def _stop(state: dict[str, object]) -> None:
    suite = state.get("suite")
    if suite is not None:
        suite.stop()  # type: ignore[attr-defined]


def _banner(settings: config.Settings, urls: list[tuple[str, str]], mode: str) -> None:
    table = Table(title=f"SLA Support Suite — {mode}", show_lines=False)
    table.add_column("service")
    table.add_column("API root")
    for name, url in urls:
        table.add_row(name, url)
    console.print(table)
    admin = auth.issue(settings.secret_key, ["admin"], "admin", timedelta(days=1))
    console.print("Admin token (valid 1 day; `slactl token create` makes scoped ones):")
    click.echo(admin)
    click.echo(f"Try:   curl -H \"Authorization: Bearer $TOKEN\" {urls[0][1]}/productOffering",
               err=True)
    click.echo("Ctrl-C stops the suite.", err=True)


# --- distributed mode ---------------------------------------------------------------------
def _run_distributed(host: str) -> None:
    from services.catalogue import all_specs

    env = dict(os.environ)
    env.setdefault("SLA_BUS_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    env.setdefault("PERSISTENCE_MODULE", "eventsourcing.postgres")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not env.get("SLA_SECRET_KEY"):
        data_dir = Path(env.get("SLA_DATA_DIR") or "var")
        key_file = data_dir / "secret.key"
        if not key_file.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            import secrets

            key_file.write_text(secrets.token_urlsafe(48) + "\n")
            key_file.chmod(0o600)
        env["SLA_SECRET_KEY"] = key_file.read_text().strip()
    try:
        settings = config.load(env)
    except config.ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    specs = all_specs()
    gunicorn_conf = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
    procs: list[subprocess.Popen] = []
    for s in specs:
        module = s.application.__module__.rsplit(".", 1)[0] + ".wsgi:app"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(gunicorn_conf),
             "-b", f"{host}:{s.port}", "--name", s.name, module], env=env))
        for roles in s.worker_processes or ("",):
            only = ["--only", roles] if roles else []
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker", s.name, *only], env=env))
    _banner(settings, [(s.name, f"http://{host}:{s.port}{s.root}") for s in specs],
            "distributed: RabbitMQ, PostgreSQL, Redis")
    stopping = threading.Event()

    def _terminate(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    while not stopping.is_set():
        if any(p.poll() is not None for p in procs):
            console.print("[red]a suite process exited; stopping the others[/red]")
            break
        stopping.wait(0.5)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()


@main.command()
@click.argument("service")
@click.option("--only", default=None, metavar="ROLES",
              help="Comma-separated roles to run (e.g. relay,inbox,intake or evaluator); "
                   "default: all of the service's roles.")
def worker(service: str, only: str | None) -> None:
    """Run one service's background work: outbox relay, inbox, and its own loops."""
    from services.catalogue import spec as find_spec
    from shared.service import Runtime

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json, service)
    try:
        spec = find_spec(service)
    except KeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    runtime = Runtime(spec, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    roles = {r.strip() for r in only.split(",") if r.strip()} if only else None
    try:
        started = runtime.start_workers(roles)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    import logging

    logging.getLogger(__name__).info("worker of %s started: %s", service, ", ".join(started))
    while not stop.wait(1.0):
        if not runtime.workers_alive:
            logging.getLogger(__name__).error("a worker thread of %s died", service)
            runtime.stop()
            raise SystemExit(1)
    runtime.stop()


if __name__ == "__main__":
    main()
