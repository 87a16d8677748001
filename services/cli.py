"""``slactl``: run the suite, run a service's worker, and issue tokens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

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
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The suite's data directory, where an embedded suite keeps secret.key "
                   "(default: SLA_DATA_DIR, else ./var).")
def token_create(scopes: tuple[str, ...], subject: str, days: int,
                 data_dir: Path | None) -> None:
    """Print a token signed with the suite's key: SLA_SECRET_KEY, else the embedded
    suite's <data dir>/secret.key. It never makes a key: a token signed with a key the
    suite does not have would only be refused."""
    directory = data_dir.resolve() if data_dir else config.data_dir_of(os.environ)
    try:
        secret = config.existing_secret(os.environ, directory)
    except config.ConfigError as exc:
        _fail(str(exc))
    if secret is None:
        _fail(f"no key to sign the token with: SLA_SECRET_KEY is not set and "
              f"{directory / 'secret.key'} does not exist (the embedded suite writes it "
              f"on its first start). Point at the suite's key: run this where you ran "
              f"`make run`, or pass --data-dir (or set SLA_DATA_DIR) to the suite's data "
              f"directory, or set SLA_SECRET_KEY to the key the suite runs with.")
    click.echo(auth.issue(secret, scopes, subject, timedelta(days=days)))


def _fail(message: str, code: int = 2) -> None:
    """Stop with a plain message on stderr (not wrapped: it may carry paths to copy)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _settings(env: dict[str, str] | None = None, services: list[str] | None = None
              ) -> config.Settings:
    """The platform's settings and the own settings of every service (or of the ones
    named), validated before anything starts: a bad value stops here, naming it."""
    from services.catalogue import SERVICE_MODULES
    from services.catalogue import spec as find_spec

    try:
        settings = config.load(env)
        for name in services if services is not None else list(SERVICE_MODULES):
            find_spec(name).own_settings(settings)
    except config.ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    return settings


def _spec_named(service: str) -> Any:
    """The service's spec, or stop naming the services there are."""
    from services.catalogue import spec as find_spec

    try:
        return find_spec(service)
    except KeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None


# --- ports ---------------------------------------------------------------------------------
def service_ports(base: int) -> dict[str, int]:
    """Distributed mode: each service on ``base`` plus its offset (threshold-registry +1,
    monitoring +2, analysis +3, outage-negotiation +4, notification +5), so the default
    base 8080 gives 8081 to 8085."""
    return {name: base + int(s["port"]) - config.DEFAULT_BASE_PORT
            for name, s in config.SERVICES.items()}


def _busy_ports(host: str, ports: list[int]) -> list[int]:
    """The ports of ``host`` that something already listens on (bound the way gunicorn
    binds, so a port in TIME_WAIT does not count as busy)."""
    busy = []
    for port in ports:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        except socket.gaierror as exc:
            _fail(f"cannot listen on {host}: {exc}")
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError:
                busy.append(port)
    return busy


def _require_free(host: str, ports: list[int]) -> None:
    busy = _busy_ports(host, ports)
    if busy:
        listed = ", ".join(str(p) for p in busy)
        _fail(f"port{'s' if len(busy) > 1 else ''} {listed} on {host} "
              f"{'are' if len(busy) > 1 else 'is'} already in use (another suite, or an "
              f"earlier run still stopping?). Stop what listens there, or start on other "
              f"ports with --port.")


def public_url(host: str, port: int) -> str:
    """The address links in messages point at when SLA_PUBLIC_URL does not say."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --- embedded mode -------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=config.DEFAULT_BASE_PORT, show_default=True,
              type=click.IntRange(1, 65535),
              help="Embedded: the suite's port. Distributed: the base port; each service "
                   "listens on base + its offset (threshold-registry +1, monitoring +2, "
                   "analysis +3, outage-negotiation +4, notification +5).")
@click.option("--distributed", is_flag=True,
              help="Each service as its own gunicorn process plus a worker process.")
def run(host: str, port: int, distributed: bool) -> None:
    """Start the suite: embedded by default (SQLite, in-process bus) on one port."""
    from services.catalogue import all_specs

    specs = all_specs()
    if distributed:
        ports = service_ports(port)
        if max(ports.values()) > 65535:
            _fail(f"--port {port} is too high: the services need up to {max(ports.values())}")
        _require_free(host, sorted(ports[s.name] for s in specs))
        _run_distributed(host, ports)
        return
    _require_free(host, [port])
    if not os.environ.get("SLA_PUBLIC_URL"):
        # The acknowledgement and details links in messages point at this very suite.
        os.environ["SLA_PUBLIC_URL"] = public_url(host, port)
    settings = _settings()
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
            self.cfg.set("limit_request_line", 8190)  # room for a link's token, encoded
            self.cfg.set("worker_exit", lambda _server, _worker: _stop(state))
            control = config.control_socket(os.environ, [f"{host}:{port}"])
            if control is None:
                self.cfg.set("control_socket_disable", True)
            else:
                self.cfg.set("control_socket", control)

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
def _run_distributed(host: str, ports: dict[str, int]) -> None:
    from services.catalogue import all_specs

    env = dict(os.environ)
    if not env.get("SLA_PUBLIC_URL"):
        env["SLA_PUBLIC_URL"] = public_url(host, ports["notification"])
    if not env.get("SLA_OUTAGE_PUBLIC_URL"):
        # Customers answer a notice on outage-negotiation's own response page.
        env["SLA_OUTAGE_PUBLIC_URL"] = public_url(host, ports["outage-negotiation"])
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
    settings = _settings(env)
    specs = all_specs()
    gunicorn_conf = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
    procs: list[subprocess.Popen] = []
    for s in specs:
        module = s.application.__module__.rsplit(".", 1)[0] + ".wsgi:app"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(gunicorn_conf),
             "-b", f"{host}:{ports[s.name]}", "--name", s.name, module], env=env))
        for roles in s.worker_processes or ("",):
            only = ["--only", roles] if roles else []
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker", s.name, *only], env=env))
    _banner(settings, [(s.name, f"http://{host}:{ports[s.name]}{s.root}") for s in specs],
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
    from shared.service import Runtime, tune_collector

    spec = _spec_named(service)
    settings = _settings(services=[spec.name])
    logs.configure(settings.log_level, settings.log_json, service)
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
    tune_collector()
    import logging

    logging.getLogger(__name__).info("worker of %s started: %s", service, ", ".join(started))
    while not stop.wait(1.0):
        if not runtime.workers_alive:
            logging.getLogger(__name__).error("a worker thread of %s died", service)
            runtime.stop()
            raise SystemExit(1)
    runtime.stop()



# --- read models ------------------------------------------------------------------------
@main.group()
def readmodel() -> None:
    """The stored read models the services answer their queries from."""


def _read_models_of(service: str) -> tuple[Any, list[Any]]:
    from shared.service import Runtime

    spec = _spec_named(service)
    settings = _settings(services=[spec.name])
    logs.configure("WARNING", settings.log_json, service)
    runtime = Runtime(spec, settings)
    from shared.audit import audit_indexes

    return runtime, [*runtime.app.read_models(), *audit_indexes(runtime.app)]


@readmodel.command("status")
@click.argument("service")
def readmodel_status(service: str) -> None:
    """Each read model of a service: how far it has applied its log, and its rows."""
    runtime, models = _read_models_of(service)
    table = Table("read model", "log", "position", "behind", "rows")
    try:
        for model in models:
            head = model.app.max_notification_id()
            position = model.stored_position()
            counts = model.row_counts() if hasattr(model, "row_counts") else {
                kind.__name__: model.count(kind) for kind in model.tables}
            rows = ", ".join(f"{label} {n:,}" for label, n in counts.items())
            table.add_row(model.name, model.app.name, f"{position:,}",
                          f"{max(head - position, 0):,}", rows)
        Console().print(table)
    finally:
        runtime.stop()


@readmodel.command("rebuild")
@click.argument("service")
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="Only this read model (repeatable); default: all of the service's.")
def readmodel_rebuild(service: str, names: tuple[str, ...]) -> None:
    """Drop a service's read models and replay its log into them again, with progress.
    The services may keep running: their queries wait for the rebuild's transactions
    and then see the rebuilt tables."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    runtime, models = _read_models_of(service)
    unknown = set(names) - {model.name for model in models}
    if unknown:
        _fail(f"{service} has no read model {', '.join(sorted(unknown))} "
              f"(it has: {', '.join(m.name for m in models) or 'none'})")
    try:
        for model in models:
            if names and model.name not in names:
                continue
            with Progress(TextColumn(f"{service} {model.name}"), BarColumn(),
                          MofNCompleteColumn(), TextColumn("events"), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=console) as progress:
                task = progress.add_task("rebuild", total=model.app.max_notification_id())
                report = model.rebuild(lambda done, total, t=task: progress.update(
                    t, completed=done, total=total))
            rate = report.events / report.seconds if report.seconds else 0.0
            console.print(f"{service} {model.name}: {report.events:,} events applied, "
                          f"{report.rows:,} rows, {report.seconds:.1f} s "
                          f"({rate:,.0f} events/s)")
    finally:
        runtime.stop()


# --- backfill -----------------------------------------------------------------------------
@main.group()
def backfill() -> None:
    """Publish again what a service recorded before a consumer of it existed."""


@backfill.command("window-summaries")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000),
              help="Notifications of monitoring's outcomes log read a page.")
def backfill_window_summaries(batch: int) -> None:
    """Monitoring's closed windows, from the first, as WindowSummaryEvents (the ids the
    relay gives them): for analysis added to a running installation. Start analysis
    first (its queue bound), then run this; running it again changes nothing."""
    from services.monitoring import backfill as summaries
    from shared.service import Runtime

    spec = _spec_named("monitoring")
    settings = _settings(services=[spec.name])
    if not settings.bus_url:
        _fail("the backfill publishes on the broker (SLA_BUS_URL): the embedded suite's "
              "in-process bus lives inside its own process")
    logs.configure("WARNING", settings.log_json, "monitoring")
    runtime = Runtime(spec, settings)
    try:
        sent = summaries.window_summaries(runtime, batch)
        console.print(f"monitoring: {sent:,} window summaries published")
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
